/* SPDX-License-Identifier: MIT */
/*
 * expect.c - thresholds against results rows (expect.h).
 */
#include "expect.h"
#include "ibc_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const file_cols[] = {"collective", "algo",		"transport",
					"bytes",      "min_busbw_GBps", "max_time_us"};

static struct rpt_expect *grow(struct rpt_expects *e)
{
	struct rpt_expect *x;

	if (rpt__grow((void **)&e->v, e->n, &e->cap, sizeof(*e->v), 16))
		return NULL;
	x = &e->v[e->n++];
	memset(x, 0, sizeof(*x));
	x->any_bytes = true;
	x->min_busbw = x->max_time = NAN;
	return x;
}

void rpt_expects_free(struct rpt_expects *e)
{
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* A selector field: "*" is any (""), else copied; 0 or -EINVAL when too long. */
static int selector(const char *s, char *out, size_t len)
{
	if (strcmp(s, "*") == 0) {
		out[0] = '\0';
		return 0;
	}
	if (!s[0] || strlen(s) >= len)
		return -EINVAL;
	snprintf(out, len, "%s", s);
	return 0;
}

/* A limit: empty is none (NAN); else a plain decimal > 0. */
static int limit(const char *s, double *out)
{
	if (!s[0])
		return 0;
	return ibc_parse_double(s, out) || !(*out > 0) ? -EINVAL : 0;
}

/* One line of the file into x; on error *bad is the column. */
static int parse_line(char **row, const int *col, struct rpt_expect *x, int *bad)
{
	char *fld[IBC_ARRAY_SIZE(file_cols)];
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(file_cols); i++)
		fld[i] = row[col[i]];
	*bad = 0;
	if (selector(fld[0], x->collective, sizeof(x->collective)))
		return -EINVAL;
	*bad = 1;
	if (selector(fld[1], x->algo, sizeof(x->algo)))
		return -EINVAL;
	*bad = 2;
	if (selector(fld[2], x->transport, sizeof(x->transport)))
		return -EINVAL;
	*bad = 3;
	x->any_bytes = strcmp(fld[3], "*") == 0;
	if (!x->any_bytes && ibc_parse_size(fld[3], &x->bytes))
		return -EINVAL;
	*bad = 4;
	if (limit(fld[4], &x->min_busbw))
		return -EINVAL;
	*bad = 5;
	if (limit(fld[5], &x->max_time))
		return -EINVAL;
	return isnan(x->min_busbw) && isnan(x->max_time) ? -ENODATA : 0;
}

int rpt_expect_from_table(const struct ibc_csv_table *t, const char *path,
			  struct rpt_expects *e, char *err, size_t errlen)
{
	static const char *const what[] = { "a collective name or *", "an algorithm name or *",
					     "a transport name or *", "a size (8, 1M, 4G) or *",
					     "a busbw in GB/s > 0, or empty", "a time in us > 0, or empty" };
	int col[IBC_ARRAY_SIZE(file_cols)], r, bad = 0, rc = 0;
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(file_cols); i++) {
		col[i] = ibc_csv_col(t, file_cols[i]);
		if (col[i] < 0) {
			snprintf(err, errlen,
				 "%s:1: no column '%s' (the header is "
				 "collective,algo,transport,bytes,min_busbw_GBps,max_time_us)",
				 path, file_cols[i]);
			return -EINVAL;
		}
	}
	for (r = 0; r < t->nrows && !rc; r++) {
		struct rpt_expect *x = grow(e);

		rc = x ? parse_line(t->rows[r], col, x, &bad) : -ENOMEM;
		if (rc == -ENODATA)
			snprintf(err, errlen, "%s:%d: neither min_busbw_GBps nor max_time_us is given",
				 path, t->row_line[r]);
		else if (rc == -EINVAL)
			snprintf(err, errlen, "%s:%d:%d: %s '%s': expected %s", path, t->row_line[r],
				 ibc_csv_field_col(t, r, col[bad]), file_cols[bad], t->rows[r][col[bad]],
				 what[bad]);
		else if (x)
			snprintf(x->where, sizeof(x->where), "%.80s:%d", path, t->row_line[r]);
	}
	if (rc == -ENODATA)
		rc = -EINVAL;
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", path);
	return rc;
}

int rpt_expect_load(const char *path, struct rpt_expects *e, char *err, size_t errlen)
{
	struct ibc_csv_table *t;
	int rc = ibc_csv_read(path, &t, err, errlen);

	if (rc)
		return rc;
	rc = rpt_expect_from_table(t, path, e, err, errlen);
	ibc_csv_free(t);
	return rc;
}

int rpt_expect_parse_busbw(const char *arg, struct rpt_expects *e, char *err, size_t errlen)
{
	char buf[1024], *save = NULL, *item;
	int n = 0;

	if (strlen(arg) >= sizeof(buf) || !arg[0]) {
		snprintf(err, errlen, "--expect-busbw: expected SIZE=GB/s[,SIZE=GB/s...]");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		struct rpt_expect *x;

		if (eq)
			*eq = '\0';
		x = grow(e);
		if (!x)
			return -ENOMEM;
		x->any_bytes = false;
		if (!eq || ibc_parse_size(item, &x->bytes) || limit(eq + 1, &x->min_busbw) ||
		    isnan(x->min_busbw)) {
			snprintf(
			    err, errlen,
			    "--expect-busbw '%s%s%s': expected SIZE=GB/s, e.g. 1M=20 or 8G=180",
			    item, eq ? "=" : "", eq ? eq + 1 : "");
			return -EINVAL;
		}
		snprintf(x->where, sizeof(x->where), "--expect-busbw %.30s=%.30s", item, eq + 1);
		n++;
	}
	if (!n) { /* "," or ",,": strtok_r finds no item (found by tests/fuzz) */
		snprintf(err, errlen, "--expect-busbw '%s': expected SIZE=GB/s[,SIZE=GB/s...]", arg);
		return -EINVAL;
	}
	return 0;
}

struct rcols {
	int coll, algo, tp, bytes, busbw, p50, status;
};

static int result_cols(const struct ibc_csv_table *t, struct rcols *c)
{
	const char *names[] = {"collective", "algo",	    "transport", "bytes",
			       "busbw_GBps", "time_p50_us", "status"};
	int *dst[] = {&c->coll, &c->algo, &c->tp, &c->bytes, &c->busbw, &c->p50, &c->status};
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(names); i++) {
		*dst[i] = ibc_csv_col(t, names[i]);
		if (*dst[i] < 0)
			return -EINVAL;
	}
	return 0;
}

static bool selects(const struct rpt_expect *x, char **row, const struct rcols *c)
{
	uint64_t b = 0;

	if ((x->collective[0] && strcmp(x->collective, row[c->coll])) ||
	    (x->algo[0] && strcmp(x->algo, row[c->algo])) ||
	    (x->transport[0] && strcmp(x->transport, row[c->tp])))
		return false;
	return x->any_bytes || (!ibc_parse_u64(row[c->bytes], &b) && b == x->bytes);
}

/* The JUnit case of one row check: the row and the expectation that selected it. */
static int case_of(struct rpt_cases *cases, const char *what, const struct rpt_expect *x,
		   const char *failure)
{
	char name[240];

	snprintf(name, sizeof(name), "%.180s [%.50s]", what, x->where);
	return rpt_cases_add(cases, "threshold", name, failure);
}

/* One selected row against x: a finding (and a failed case) when it misses a limit. */
static int check_row(const struct rpt_expect *x, const struct ibc_csv_table *t, int r,
		     const struct rcols *c, struct rpt_findings *f, struct rpt_cases *cases)
{
	char *const *row = t->rows[r];
	double bw = NAN, us = NAN;
	bool ok_bw, ok_t, measured = strcmp(row[c->status], "ok") == 0;
	struct rpt_finding *fd;
	char what[300];

	if (measured)
		measured = !ibc_parse_double(row[c->busbw], &bw) && !ibc_parse_double(row[c->p50], &us);
	ok_bw = isnan(x->min_busbw) || (measured && bw >= x->min_busbw);
	ok_t = isnan(x->max_time) || (measured && us <= x->max_time);
	rpt_row_words(t, r, what, sizeof(what));
	if (ok_bw && ok_t)
		return case_of(cases, what, x, NULL);
	fd = rpt_findings_add(f, "threshold", "row");
	if (!fd)
		return -ENOMEM;
	if (!measured) {
		snprintf(fd->evidence, sizeof(fd->evidence),
			 "%.230s: not measured (status %.16s), so %.90s is not met", what, row[c->status],
			 x->where);
		return case_of(cases, what, x, fd->evidence);
	}
	fd->measured = ok_bw ? us : bw;
	fd->expected = ok_bw ? x->max_time : x->min_busbw;
	snprintf(fd->unit, sizeof(fd->unit), "%s", ok_bw ? "us" : "GB/s");
	snprintf(fd->evidence, sizeof(fd->evidence), "%.230s: %s %.3f %s, %s %.3f %s (%.90s)", what,
		 ok_bw ? "p50 time" : "busbw", fd->measured, fd->unit,
		 ok_bw ? "the limit is at most" : "the minimum is", fd->expected, fd->unit, x->where);
	return case_of(cases, what, x, fd->evidence);
}

int rpt_expect_check(const struct rpt_expects *e, const struct ibc_csv_table *results,
		     struct rpt_findings *f, struct rpt_cases *cases, int *checked, int *idle)
{
	struct rcols c;
	int i, r, n, rc = 0;

	*checked = *idle = 0;
	if (result_cols(results, &c))
		return -EINVAL;
	for (i = 0; i < e->n && !rc; i++) {
		for (r = 0, n = 0; r < results->nrows && !rc; r++) {
			if (!selects(&e->v[i], results->rows[r], &c))
				continue;
			n++;
			rc = check_row(&e->v[i], results, r, &c, f, cases);
		}
		*checked += n;
		if (!n) {
			(*idle)++;
			ibc_log("threshold %s selects no row of this run", e->v[i].where);
		}
	}
	return rc;
}
