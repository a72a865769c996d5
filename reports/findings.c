/* SPDX-License-Identifier: MIT */
/*
 * findings.c - findings.csv rows and the closing lines that state them (findings.h).
 */
#include "findings.h"
#include "ibc_common.h"
#include "ibc_csv.h"
#include "schema.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int rpt__grow(void **v, int n, int *cap, size_t elem, int first)
{
	int c = *cap ? 2 * *cap : first;
	void *nv;

	if (n < *cap)
		return 0;
	nv = realloc(*v, (size_t)c * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

void rpt_row_words(const struct ibc_csv_table *t, int row, char *out, size_t len)
{
	static const char *const cols[] = { "collective", "algo",   "transport", "mem",
					    "dtype",	  "op",	    "placement", "nranks",
					    "nnodes",	  "bytes" };
	const char *v[IBC_ARRAY_SIZE(cols)];
	char sz[32] = "?";
	uint64_t bytes;
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(cols); i++) {
		int c = ibc_csv_col(t, cols[i]);

		v[i] = c >= 0 ? t->rows[row][c] : "?";
	}
	if (!ibc_parse_u64(v[9], &bytes))
		ibc_format_size(bytes, sz, sizeof(sz));
	snprintf(out, len, "%s %s over %s (%s, %s %s, %s-place, %s ranks on %s nodes, %s bytes)",
		 v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], sz);
}

struct rpt_finding *rpt_findings_add(struct rpt_findings *f, const char *check, const char *kind)
{
	struct rpt_finding *x;

	if (rpt__grow((void **)&f->v, f->n, &f->cap, sizeof(*f->v), 16))
		return NULL;
	x = &f->v[f->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->check, sizeof(x->check), "%s", check);
	snprintf(x->kind, sizeof(x->kind), "%s", kind);
	x->measured = NAN;
	x->expected = NAN;
	return x;
}

int rpt_cases_add(struct rpt_cases *c, const char *check, const char *name, const char *message)
{
	struct rpt_case *x;

	if (!c)
		return 0;
	if (rpt__grow((void **)&c->v, c->n, &c->cap, sizeof(*c->v), 64))
		return -ENOMEM;
	x = &c->v[c->n++];
	snprintf(x->check, sizeof(x->check), "%s", check);
	snprintf(x->name, sizeof(x->name), "%s", name);
	snprintf(x->message, sizeof(x->message), "%s", message ? message : "");
	x->failed = message != NULL;
	return 0;
}

void rpt_cases_free(struct rpt_cases *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

void rpt_findings_free(struct rpt_findings *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static void fmt_num(char *buf, size_t len, double v)
{
	if (isnan(v))
		buf[0] = '\0';
	else
		snprintf(buf, len, "%.6g", v);
	/* %g never gives an exponent for the magnitudes used here; guard anyway */
	if (strchr(buf, 'e'))
		snprintf(buf, len, "%.6f", v);
}

int rpt_findings_write(const char *dir, const char *run_id, const struct rpt_findings *f, char *err,
		       size_t errlen)
{
	static const char *const cols[] = {RPT_FINDINGS_COLUMNS};
	struct ibc_csv_writer *w;
	char path[600], sv[8], me[48], ex[48];
	int i, rc;

	snprintf(path, sizeof(path), "%s/findings.csv", dir);
	rc = ibc_csv_create(path, cols, RPT_FINDINGS_NCOLS, &w);
	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s%s", path, strerror(-rc),
			 rc == -EEXIST ? " (ibcoll never overwrites a report)" : "");
		return rc;
	}
	snprintf(sv, sizeof(sv), "%d", RPT_SCHEMA_VERSION);
	for (i = 0; i < f->n && !rc; i++) {
		const struct rpt_finding *x = &f->v[i];
		const char *v[RPT_FINDINGS_NCOLS] = {sv,      run_id, x->check,	    x->kind,
						     x->host, x->nic, x->peer_host, x->peer_nic,
						     me,      ex,     x->unit,	    x->evidence};

		fmt_num(me, sizeof(me), x->measured);
		fmt_num(ex, sizeof(ex), x->expected);
		rc = ibc_csv_add(w, v);
	}
	if (!rc)
		rc = ibc_csv_commit(w);
	ibc_csv_close(w);
	if (rc)
		snprintf(err, errlen, "writing %s failed: %s", path, strerror(-rc));
	return rc;
}

void rpt_findings_print(FILE *out, const struct rpt_findings *f)
{
	int i;

	if (!f->n) {
		fprintf(out, "# findings: none\n");
		return;
	}
	fprintf(out, "# findings: %d\n", f->n);
	for (i = 0; i < f->n; i++) {
		const struct rpt_finding *x = &f->v[i];

		fprintf(out, "#   %s %s%s%s%s%s: %s\n", x->check, x->kind, x->host[0] ? " " : "",
			x->host, x->nic[0] ? " " : "", x->nic, x->evidence);
	}
}
