/* SPDX-License-Identifier: MIT */
/*
 * compare.c - results.csv of a run against a baseline's (compare.h).
 */
#include "compare.h"
#include "ibc_common.h"
#include "schema.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rpt_compare_identity[12] = {
    "collective", "algo",   "transport",      "mem",	  "dtype", "op", "placement",
    "nranks",	  "nnodes", "ranks_per_node", "channels", "bytes"};
#define NID 12

/* the measured columns compare reads, besides the identity */
static const char *const measured[] = {"schema",      "run_id",	    "time_p50_us", "time_min_us",
				       "time_p99_us", "busbw_GBps", "status"};

struct cols {
	int id[NID];
	int schema, run_id, p50, min, p99, busbw, status;
};

const char *rpt_verdict_name(enum rpt_verdict v)
{
	static const char *const names[] = {"ok",     "faster",	    "noise",	 "regression",
					    "status", "unmeasured", "base_only", "new_only"};

	return v >= 0 && v <= RPT_V_NEW_ONLY ? names[v] : "?";
}

static int find_cols(const struct ibc_csv_table *t, const char *name, struct cols *c, char *err,
		     size_t errlen)
{
	int *dst[] = {&c->schema, &c->run_id, &c->p50, &c->min, &c->p99, &c->busbw, &c->status};
	size_t i;

	for (i = 0; i < NID + IBC_ARRAY_SIZE(measured); i++) {
		const char *col = i < NID ? rpt_compare_identity[i] : measured[i - NID];
		int k = ibc_csv_col(t, col);

		if (k < 0) {
			snprintf(err, errlen,
				 "%s has no column '%s': it is not an ibcoll results.csv (give a "
				 "run directory or its results.csv)",
				 name, col);
			return -EINVAL;
		}
		if (i < NID)
			c->id[i] = k;
		else
			*dst[i - NID] = k;
	}
	return 0;
}

/* Every row of both files carries one schema, the same in both. */
static int check_schema(const struct ibc_csv_table *b, const struct cols *cb, const char *bn,
			const struct ibc_csv_table *n, const struct cols *cn, const char *nn,
			char *err, size_t errlen)
{
	const char *want = b->nrows ? b->rows[0][cb->schema] : NULL;
	int r;

	if (!want && n->nrows)
		want = n->rows[0][cn->schema];
	for (r = 0; want && r < b->nrows; r++)
		if (strcmp(b->rows[r][cb->schema], want))
			goto mixed;
	for (r = 0; want && r < n->nrows; r++) {
		if (strcmp(n->rows[r][cn->schema], want)) {
			snprintf(err, errlen,
				 "%s is report schema %s, %s schema %s: results of different "
				 "report versions cannot be compared row by row",
				 bn, want, nn, n->rows[r][cn->schema]);
			return -EINVAL;
		}
	}
	return 0;
mixed:
	snprintf(err, errlen, "%s mixes report schemas %s and %s (line %d)", bn, want,
		 b->rows[r][cb->schema], b->row_line[r]);
	return -EINVAL;
}

static bool same_identity(const struct ibc_csv_table *b, const struct cols *cb, int rb,
			  const struct ibc_csv_table *n, const struct cols *cn, int rn)
{
	int i;

	for (i = 0; i < NID; i++)
		if (strcmp(b->rows[rb][cb->id[i]], n->rows[rn][cn->id[i]]))
			return false;
	return true;
}

/* A number from a field; NAN when empty or not a plain decimal. */
static double num(const char *s)
{
	double v;

	return s[0] && !ibc_parse_double(s, &v) ? v : NAN;
}

struct ctx {
	const struct ibc_csv_table *b, *n;
	struct cols cb, cn;
	double tol;
	struct rpt_findings *f;
	struct rpt_cases *cases;
};

/* The JUnit case of a matched row: failed with the finding's evidence, else passed. */
static int add_case(struct ctx *x, const struct rpt_cmp_row *cr, const char *failure)
{
	char what[300];

	rpt_row_words(x->n, cr->cur, what, sizeof(what));
	return rpt_cases_add(x->cases, "baseline", what, failure);
}

static int add_finding(struct ctx *x, const struct rpt_cmp_row *cr)
{
	struct rpt_finding *fd = rpt_findings_add(x->f, "baseline", "row");
	const char *bs = x->b->rows[cr->base][x->cb.status];
	const char *ns = x->n->rows[cr->cur][x->cn.status];
	char what[300];

	if (!fd)
		return -ENOMEM;
	rpt_row_words(x->n, cr->cur, what, sizeof(what));
	if (cr->verdict == RPT_V_STATUS) {
		snprintf(fd->evidence, sizeof(fd->evidence),
			 "%s: status %s in the baseline, %s now", what, bs, ns);
		return add_case(x, cr, fd->evidence);
	}
	fd->measured = num(x->n->rows[cr->cur][x->cn.p50]);
	fd->expected = num(x->b->rows[cr->base][x->cb.p50]);
	snprintf(fd->unit, sizeof(fd->unit), "us");
	snprintf(fd->evidence, sizeof(fd->evidence),
		 "%s: p50 %.2f us against the baseline's %.2f us (%+.1f%%), above its p99 %.2f us "
		 "(tolerance %.1f%%)",
		 what, fd->measured, fd->expected, (cr->time_ratio - 1) * 100,
		 num(x->b->rows[cr->base][x->cb.p99]), x->tol * 100);
	return add_case(x, cr, fd->evidence);
}

static enum rpt_verdict judge(struct ctx *x, struct rpt_cmp_row *cr)
{
	const char *bs = x->b->rows[cr->base][x->cb.status];
	const char *ns = x->n->rows[cr->cur][x->cn.status];
	double bp50 = num(x->b->rows[cr->base][x->cb.p50]);
	double bp99 = num(x->b->rows[cr->base][x->cb.p99]);
	double np50 = num(x->n->rows[cr->cur][x->cn.p50]);
	double bbw = num(x->b->rows[cr->base][x->cb.busbw]);
	double nbw = num(x->n->rows[cr->cur][x->cn.busbw]);

	cr->busbw_ratio = bbw > 0 && !isnan(nbw) ? nbw / bbw : NAN;
	cr->time_ratio = bp50 > 0 && !isnan(np50) ? np50 / bp50 : NAN;
	if (!strcmp(bs, "ok") && strcmp(ns, "ok"))
		return RPT_V_STATUS;
	if (strcmp(bs, "ok") || isnan(cr->time_ratio) || isnan(bp99))
		return RPT_V_UNMEASURED;
	if (cr->time_ratio < 1 - x->tol)
		return RPT_V_FASTER;
	if (cr->time_ratio <= 1 + x->tol)
		return RPT_V_OK;
	return np50 > bp99 ? RPT_V_REGRESSION : RPT_V_NOISE;
}

/* For -ENOENT: the identity columns whose values of nw never occur in base. */
static void say_differ(struct ctx *x, const char *bn, const char *nn, char *err, size_t errlen)
{
	size_t o;
	int i, r, k;

	o = (size_t)snprintf(err, errlen,
			     "no row of %s matches a row of %s on the identity "
			     "columns; they differ in:",
			     nn, bn);
	for (i = 0; i < NID && o < errlen; i++) {
		const char *v = x->n->nrows ? x->n->rows[0][x->cn.id[i]] : "";
		bool seen = false;

		for (r = 0; r < x->n->nrows && !seen; r++)
			for (k = 0; k < x->b->nrows && !seen; k++)
				seen =
				    !strcmp(x->n->rows[r][x->cn.id[i]], x->b->rows[k][x->cb.id[i]]);
		if (!seen && x->b->nrows)
			o += (size_t)snprintf(err + o, errlen - o, " %s (%s %s, %s %s)",
					      rpt_compare_identity[i], bn,
					      x->b->rows[0][x->cb.id[i]], nn, v);
	}
	if (o < errlen && err[o - 1] == ':')
		snprintf(err + o, errlen - o, " no single column (their combinations differ)");
}

/* Pair every new row with the first unpaired base row of the same identity. */
static int pair_rows(struct ctx *x, struct rpt_compare *c, bool *used)
{
	int r, k, rc = 0;

	for (r = 0; r < x->n->nrows; r++) {
		struct rpt_cmp_row *cr = &c->rows[c->n++];

		cr->base = -1;
		cr->cur = r;
		cr->time_ratio = cr->busbw_ratio = NAN;
		for (k = 0; k < x->b->nrows && cr->base < 0; k++)
			if (!used[k] && same_identity(x->b, &x->cb, k, x->n, &x->cn, r))
				cr->base = k;
		if (cr->base < 0) {
			cr->verdict = RPT_V_NEW_ONLY;
		} else {
			used[cr->base] = true;
			cr->verdict = judge(x, cr);
		}
		c->count[cr->verdict]++;
		if (cr->verdict == RPT_V_REGRESSION || cr->verdict == RPT_V_STATUS)
			rc = add_finding(x, cr);
		else if (cr->verdict != RPT_V_NEW_ONLY)
			rc = add_case(x, cr, NULL);
		if (rc)
			return -ENOMEM;
	}
	for (k = 0; k < x->b->nrows; k++) {
		if (used[k])
			continue;
		c->rows[c->n++] = (struct rpt_cmp_row){k, -1, RPT_V_BASE_ONLY, NAN, NAN};
		c->count[RPT_V_BASE_ONLY]++;
	}
	return 0;
}

int rpt_compare(const struct ibc_csv_table *base, const char *base_name,
		const struct ibc_csv_table *nw, const char *new_name, double tolerance,
		struct rpt_compare *out, struct rpt_findings *f, struct rpt_cases *cases, char *err,
		size_t errlen)
{
	struct ctx x = {.b = base, .n = nw, .tol = tolerance, .f = f, .cases = cases};
	bool *used;
	int rc;

	memset(out, 0, sizeof(*out));
	out->tolerance = tolerance;
	rc = find_cols(base, base_name, &x.cb, err, errlen);
	rc = rc ? rc : find_cols(nw, new_name, &x.cn, err, errlen);
	rc = rc ? rc : check_schema(base, &x.cb, base_name, nw, &x.cn, new_name, err, errlen);
	if (rc)
		return rc;
	out->base_run = base->nrows ? base->rows[0][x.cb.run_id] : "";
	out->new_run = nw->nrows ? nw->rows[0][x.cn.run_id] : "";
	out->rows = calloc((size_t)(base->nrows + nw->nrows) + 1, sizeof(*out->rows));
	used = calloc((size_t)base->nrows + 1, sizeof(*used));
	rc = out->rows && used ? pair_rows(&x, out, used) : -ENOMEM;
	free(used);
	if (rc) {
		rpt_compare_free(out);
		snprintf(err, errlen, "out of memory comparing %s with %s", new_name, base_name);
		return rc;
	}
	if (out->count[RPT_V_NEW_ONLY] == nw->nrows) {
		say_differ(&x, base_name, new_name, err, errlen);
		rpt_compare_free(out); /* the caller frees only what a success returns */
		return -ENOENT;
	}
	return 0;
}

void rpt_compare_free(struct rpt_compare *c)
{
	free(c->rows);
	memset(c, 0, sizeof(*c));
}

static void fmt_ratio(char *buf, size_t len, double v)
{
	if (isnan(v))
		buf[0] = '\0';
	else
		snprintf(buf, len, "%.4f", v);
}

/* One compare.csv row into v (RPT_COMPARE_NCOLS), strings in f. */
static void compare_fields(const struct ibc_csv_table *b, const struct ibc_csv_table *n,
			   const struct cols *cb, const struct cols *cn,
			   const struct rpt_cmp_row *cr, const char **v, char f[2][16])
{
	static const char *const none = "";
	const char *const *br = cr->base >= 0 ? (const char *const *)b->rows[cr->base] : NULL;
	const char *const *nr = cr->cur >= 0 ? (const char *const *)n->rows[cr->cur] : NULL;
	int i;

	for (i = 0; i < NID; i++)
		v[4 + i] = nr ? nr[cn->id[i]] : br[cb->id[i]];
	v[16] = br ? br[cb->p50] : none;
	v[17] = br ? br[cb->min] : none;
	v[18] = br ? br[cb->p99] : none;
	v[19] = nr ? nr[cn->p50] : none;
	fmt_ratio(f[0], 16, cr->time_ratio);
	v[20] = f[0];
	v[21] = br ? br[cb->busbw] : none;
	v[22] = nr ? nr[cn->busbw] : none;
	fmt_ratio(f[1], 16, cr->busbw_ratio);
	v[23] = f[1];
	v[24] = br ? br[cb->status] : none;
	v[25] = nr ? nr[cn->status] : none;
	v[26] = rpt_verdict_name(cr->verdict);
}

int rpt_compare_write(const char *dir, const char *run_id, const struct ibc_csv_table *base,
		      const struct ibc_csv_table *nw, const struct rpt_compare *c, char *err,
		      size_t errlen)
{
	static const char *const cols[] = {RPT_COMPARE_COLUMNS};
	struct ibc_csv_writer *w;
	struct cols cb, cn;
	char path[600], sv[8], f[2][16];
	const char *v[RPT_COMPARE_NCOLS];
	int i, rc;

	if (find_cols(base, "base", &cb, err, errlen) || find_cols(nw, "new", &cn, err, errlen))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/compare.csv", dir);
	rc = ibc_csv_create(path, cols, RPT_COMPARE_NCOLS, &w);
	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s%s", path, strerror(-rc),
			 rc == -EEXIST ? " (ibcoll never overwrites a report)" : "");
		return rc;
	}
	snprintf(sv, sizeof(sv), "%d", RPT_SCHEMA_VERSION);
	v[0] = sv;
	v[1] = run_id;
	v[2] = c->base_run;
	v[3] = c->new_run;
	for (i = 0; i < c->n && !rc; i++) {
		compare_fields(base, nw, &cb, &cn, &c->rows[i], v, f);
		rc = ibc_csv_add(w, v);
	}
	if (!rc)
		rc = ibc_csv_commit(w);
	ibc_csv_close(w);
	if (rc)
		snprintf(err, errlen, "writing %s failed: %s", path, strerror(-rc));
	return rc;
}
