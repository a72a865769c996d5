/* SPDX-License-Identifier: MIT */
/*
 * fuzz_csv.c - the CSV reader (common/ibc_csv.h: ibc_csv_parse) and what reads its tables
 * (ibc_csv_col, the calibration's rpt_fit_table). Properties: a failed parse returns a
 * negative errno with a message; a parsed table is rectangular and, written back with the
 * writer's quoting, parses to the same table.
 */
#include "fuzz.h"
#include "ibc_csv.h"
#include "project_fit.h"

#include <errno.h>
#include <string.h>

/* The table as the writer would write it (header and rows, '\n' line ends); caller frees. */
static char *csv_print(const struct ibc_csv_table *t, size_t *len)
{
	size_t cap = 64, n = 0;
	char *out = malloc(cap);
	int r, c;

	for (r = -1; out && r < t->nrows; r++) {
		char *const *row = r < 0 ? t->header : t->rows[r];

		for (c = 0; c < t->ncols; c++) {
			size_t need = 2 * strlen(row[c]) + 4;

			if (n + need > cap) {
				char *nb;

				while (n + need > cap)
					cap *= 2;
				nb = realloc(out, cap);
				if (!nb) {
					free(out);
					return NULL;
				}
				out = nb;
			}
			if (c)
				out[n++] = ',';
			FUZZ_CHECK(ibc_csv_quote(row[c], out + n, cap - n) == 0);
			n += strlen(out + n);
		}
		out[n++] = '\n';
	}
	*len = n;
	return out;
}

static void same_table(const struct ibc_csv_table *a, const struct ibc_csv_table *b)
{
	int r, c;

	FUZZ_CHECK(a->ncols == b->ncols && a->nrows == b->nrows);
	for (c = 0; c < a->ncols; c++)
		FUZZ_CHECK(strcmp(a->header[c], b->header[c]) == 0);
	for (r = 0; r < a->nrows; r++)
		for (c = 0; c < a->ncols; c++)
			FUZZ_CHECK(strcmp(a->rows[r][c], b->rows[r][c]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ibc_csv_table *t, *t2;
	struct rpt_fit fit;
	char err[256], *text;
	size_t len;
	int rc, r, c;

	rc = ibc_csv_parse("fuzz.csv", (const char *)data, size, &t, err, sizeof(err));
	if (rc) {
		FUZZ_CHECK(rc < 0 && !t && err[0]);
		return 0;
	}
	FUZZ_CHECK(t && t->ncols >= 1 && t->nrows >= 0);
	for (c = 0; c < t->ncols; c++)
		FUZZ_CHECK(ibc_csv_col(t, t->header[c]) == c);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			fuzz_strlen(t->rows[r][c]);
	/* A first column whose name starts with a byte order mark loses it when read back (the
	 * reader skips one BOM at the start of a file): not compared. */
	text = strncmp(t->header[0], "\xEF\xBB\xBF", 3) ? csv_print(t, &len) : NULL;
	if (text) {
		rc = ibc_csv_parse("again.csv", text, len, &t2, err, sizeof(err));
		if (rc)
			fprintf(stderr, "reparse: %s\n", err);
		FUZZ_CHECK(rc == 0);
		same_table(t, t2);
		ibc_csv_free(t2);
		free(text);
	}
	rc = rpt_fit_table("fuzz.csv", t, NULL, &fit, err, sizeof(err));
	FUZZ_CHECK(rc <= 0);
	if (!rc)
		fuzz_strlen(fit.warn);
	ibc_csv_free(t);
	return 0;
}
