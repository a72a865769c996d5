/* SPDX-License-Identifier: MIT */
/*
 * project_fit.c - weighted linear least squares for alpha, beta, gamma (project_fit.h).
 */
#include "project_fit.h"

#include "ibc_common.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NPAR 3

struct obs {
	double x[NPAR]; /* regressors for alpha, beta, gamma */
	double t;	/* measured time, us */
	int algo;	/* 0 ring, 1 tree, 2 sendrecv */
};

static void add_warn(struct rpt_fit *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warn(struct rpt_fit *f, const char *fmt, ...)
{
	size_t len = strlen(f->warn);
	va_list ap;

	if (len && len + 2 < sizeof(f->warn)) {
		strcat(f->warn, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(f->warn + len, sizeof(f->warn) - len, fmt, ap);
	va_end(ap);
}

static int ceil_log2(double p)
{
	int d = 0;

	while (d < 62 && (double)(1L << d) < p) /* rows hold at most 2^40 ranks; never past 62 */
		d++;
	return d;
}

/* Solve the weighted least-squares problem on the columns in use[] (others fixed at 0).
 * Columns are scaled to unit norm; a pivot below 1e-9 marks a column the data cannot separate
 * from the others. Returns the number of the first dependent column + 1, or 0 on success. */
static int solve(const struct obs *o, int n, const int *use, double *par)
{
	double a[NPAR][NPAR + 1] = {{0}}, scale[NPAR] = {0};
	int idx[NPAR], k = 0, i, j, r, col;

	for (j = 0; j < NPAR; j++)
		if (use[j])
			idx[k++] = j;
	for (i = 0; i < n; i++) {
		double w = 1.0 / o[i].t; /* relative residuals */

		for (j = 0; j < k; j++)
			scale[j] += (o[i].x[idx[j]] * w) * (o[i].x[idx[j]] * w);
	}
	for (j = 0; j < k; j++) {
		if (scale[j] <= 0)
			return idx[j] + 1;
		scale[j] = 1.0 / sqrt(scale[j]);
	}
	for (i = 0; i < n; i++) {
		double w = 1.0 / o[i].t, z[NPAR];

		for (j = 0; j < k; j++)
			z[j] = o[i].x[idx[j]] * w * scale[j];
		for (r = 0; r < k; r++) {
			for (j = 0; j < k; j++)
				a[r][j] += z[r] * z[j];
			a[r][k] += z[r] * (o[i].t * w);
		}
	}
	/* Gaussian elimination without pivoting on a symmetric positive semi-definite matrix:
	 * a tiny pivot means the column is (nearly) a combination of the previous ones. */
	for (col = 0; col < k; col++) {
		if (a[col][col] < 1e-9)
			return idx[col] + 1;
		for (r = col + 1; r < k; r++) {
			double f = a[r][col] / a[col][col];

			for (j = col; j <= k; j++)
				a[r][j] -= f * a[col][j];
		}
	}
	for (col = k - 1; col >= 0; col--) {
		double v = a[col][k];

		for (j = col + 1; j < k; j++)
			v -= a[col][j] * par[idx[j]];
		par[idx[col]] = v / a[col][col];
	}
	for (j = 0; j < k; j++)
		par[idx[j]] *= scale[j];
	return 0;
}

struct cols {
	int time, bytes, nranks, nnodes, algo, transport, status, collective, run_id;
};

static int find_cols(const char *name, const struct ibc_csv_table *t, struct cols *c, char *err,
		     size_t errlen)
{
	static const char *const need[] = {"time_us",	"bytes",  "nranks",	"nnodes", "algo",
					   "transport", "status", "collective", "run_id"};
	int *dst[] = {&c->time,	     &c->bytes,	 &c->nranks,	 &c->nnodes, &c->algo,
		      &c->transport, &c->status, &c->collective, &c->run_id};
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(need); i++) {
		*dst[i] = ibc_csv_col(t, need[i]);
		if (*dst[i] < 0)
			return ibc_err_buf(
			    err, errlen,
			    "%s:1: no column '%s' (is this an ibcoll results.csv? the "
			    "README's Reports section lists its columns)",
			    name, need[i]);
	}
	return 0;
}

/* What a results.csv row may hold: rank counts as --gpus takes them, sizes as --bytes, times
 * from 1 ns to about 11 days (0: no time measured, skipped). Beyond these the least squares
 * would overflow into inf and NaN. */
#define FIT_MAX_RANKS (1L << 40)
#define FIT_MAX_BYTES (1ull << 50)
#define FIT_MIN_TIME  1e-3
#define FIT_MAX_TIME  1e12
#define FIT_MIN_GBPS  0.001 /* as nvlink_GBps and nic_Gbps in a cluster file */
#define FIT_MAX_GBPS  1e5
#define FIT_MAX_REDUCE_GBPS 1e6 /* as reduce_GBps */

/* One data row being read, for "path:line:col" messages. */
struct row_src {
	const char *name; /* borrowed: the file */
	const struct ibc_csv_table *t; /* borrowed */
	int row;
	char *err; /* borrowed */
	size_t errlen;
};

static int bad_field(const struct row_src *r, int col, const char *expect)
{
	return ibc_err_buf(r->err, r->errlen, "%s:%d:%d: %s '%s': expected %s", r->name,
			   r->t->row_line[r->row], ibc_csv_field_col(r->t, r->row, col),
			   r->t->header[col], r->t->rows[r->row][col], expect);
}

/* nranks, nnodes, bytes and time_us of one row, each checked against its range. */
static int row_numbers(const struct row_src *r, const struct cols *c, double *p, double *nn,
		       double *n, double *tm)
{
	char **row = r->t->rows[r->row];
	char expect[96];
	uint64_t bytes;
	long v, nodes;

	if (ibc_parse_int(row[c->nranks], 1, FIT_MAX_RANKS, &v))
		return bad_field(r, c->nranks, "an integer rank count from 1 to 2^40");
	snprintf(expect, sizeof(expect), "an integer node count from 1 to nranks (%ld)", v);
	if (ibc_parse_int(row[c->nnodes], 1, v, &nodes))
		return bad_field(r, c->nnodes, expect);
	if (ibc_parse_u64(row[c->bytes], &bytes) || bytes > FIT_MAX_BYTES)
		return bad_field(r, c->bytes, "an integer byte count from 0 to 2^50");
	if (ibc_parse_double(row[c->time], tm) ||
	    (*tm != 0 && (*tm < FIT_MIN_TIME || *tm > FIT_MAX_TIME)))
		return bad_field(r, c->time, "0 or a time from 0.001 to 1e12 microseconds");
	*p = (double)v;
	*nn = (double)nodes;
	*n = (double)bytes;
	return 0;
}

/* Turn the usable rows into observations. */
static int collect(const char *name, const struct ibc_csv_table *t, const struct cols *c,
		   struct rpt_fit *fit, struct obs *o, int *nobs, char *err, size_t errlen)
{
	struct row_src src = {.name = name, .t = t, .err = err, .errlen = errlen};
	double sizes[64], ranks[64];
	int i, ns = 0, nr = 0, k, rc;

	*nobs = 0;
	for (i = 0; i < t->nrows; i++) {
		char **row = t->rows[i];
		double p = 0, nn = 0, n = 0, tm = 0, x0;
		int algo;

		if (strcmp(row[c->status], "ok") || strcmp(row[c->transport], fit->transport)) {
			fit->nskipped++;
			continue;
		}
		if (!strcmp(row[c->collective], "allreduce") && !strcmp(row[c->algo], "ring"))
			algo = 0;
		else if (!strcmp(row[c->collective], "allreduce") && !strcmp(row[c->algo], "tree"))
			algo = 1;
		else if (!strcmp(row[c->collective], "sendrecv"))
			algo = 2;
		else {
			fit->nskipped++;
			continue;
		}
		src.row = i;
		rc = row_numbers(&src, c, &p, &nn, &n, &tm);
		if (rc)
			return rc;
		if (p < 2 || tm <= 0) {
			fit->nskipped++; /* one rank moves nothing; a zero time carries no weight */
			continue;
		}
		if (!fit->run_id[0])
			snprintf(fit->run_id, sizeof(fit->run_id), "%s", row[c->run_id]);
		if (nn > 1)
			fit->multinode = 1;
		x0 = algo == 0 ? 2 * (p - 1) : algo == 1 ? 2 * ceil_log2(p) : 1;
		o[*nobs].x[0] = x0;
		o[*nobs].x[1] = algo == 0 ? 2 * (p - 1) / p * n : n;
		o[*nobs].x[2] = algo == 0 ? (p - 1) / p * n : algo == 1 ? n : 0;
		o[*nobs].t = tm;
		o[*nobs].algo = algo;
		(*nobs)++;
		for (k = 0; k < ns && sizes[k] != n; k++)
			;
		if (k == ns && ns < 64)
			sizes[ns++] = n;
		for (k = 0; k < nr && ranks[k] != p; k++)
			;
		if (k == nr && nr < 64)
			ranks[nr++] = p;
		fit->p_min = fit->p_min ? IBC_MIN(fit->p_min, (long)p) : (long)p;
		fit->p_max = IBC_MAX(fit->p_max, (long)p);
	}
	fit->nsizes = ns;
	fit->nranks = nr;
	return 0;
}

static int pick_transport(const char *name, const struct ibc_csv_table *t, const struct cols *c,
			  const char *want, struct rpt_fit *fit, char *err, size_t errlen)
{
	const char *first = NULL;
	int i;

	if (want) {
		snprintf(fit->transport, sizeof(fit->transport), "%s", want);
		return 0;
	}
	for (i = 0; i < t->nrows; i++) {
		const char *tr = t->rows[i][c->transport];

		if (strcmp(t->rows[i][c->status], "ok"))
			continue;
		if (!first)
			first = tr;
		else if (strcmp(first, tr))
			return ibc_err_buf(err, errlen,
				       "%s:%d: rows of transports '%s' and '%s': calibrate one "
				       "transport at a time (--transport NAME)",
				       name, t->row_line[i], first, tr);
	}
	if (!first)
		return ibc_err_buf(err, errlen, "%s: no row with status ok", name);
	snprintf(fit->transport, sizeof(fit->transport), "%s", first);
	return 0;
}

static void stats(const struct obs *o, int n, const double *par, struct rpt_fit *fit)
{
	double ss_res = 0, ss_tot = 0, lm = 0;
	int i, j;

	fit->max_rel_err = 0;
	for (i = 0; i < n; i++) {
		double m = 0, rel;

		for (j = 0; j < NPAR; j++)
			m += o[i].x[j] * par[j];
		rel = (m - o[i].t) / o[i].t;
		ss_res += rel * rel;
		fit->max_rel_err = IBC_MAX(fit->max_rel_err, fabs(rel));
	}
	/* R^2 on the log scale: relative residuals against the spread of log times over the
	 * sizes and rank counts (a relative residual r is a log residual of about r) */
	for (i = 0; i < n; i++)
		lm += log(o[i].t) / n;
	for (i = 0; i < n; i++)
		ss_tot += (log(o[i].t) - lm) * (log(o[i].t) - lm);
	fit->r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0;
}

/* One fit in progress: the observations and the parameters solved for. */
struct fit_run {
	const char *name; /* borrowed: the file, for messages */
	struct obs *o;	  /* owned by rpt_fit_table */
	int nobs;
	int use[NPAR]; /* parameters fitted (others fixed at 0) */
	double par[NPAR];
	struct rpt_fit *fit; /* borrowed: the result */
	char *err;	     /* borrowed */
	size_t errlen;
};

/* Refuse row sets no fit can come from. */
static int fit_check_rows(struct fit_run *r)
{
	const struct rpt_fit *fit = r->fit;

	if (r->nobs >= 1 && fit->nsizes < 2 && fit->nranks < 2)
		return ibc_err_buf(r->err, r->errlen,
			       "%s: every usable row has the same size and rank count (%ld ranks): "
			       "latency and bandwidth cannot be told apart; measure several sizes "
			       "(-b 1K -e 256M)",
			       r->name, fit->p_min);
	if (r->nobs < 2)
		return ibc_err_buf(
		    r->err, r->errlen,
		    "%s: %d usable row%s of transport '%s' (status ok, allreduce ring/tree "
		    "or sendrecv, 2+ ranks): a fit needs at least two",
		    r->name, r->nobs, r->nobs == 1 ? "" : "s", fit->transport);
	return 0;
}

/* alpha, beta and gamma; or alpha and beta, gamma folded into beta, when the rows cannot
 * separate gamma from beta. */
static int fit_solve(struct fit_run *r)
{
	int dep = solve(r->o, r->nobs, r->use, r->par);

	if (dep == 3) {
		/* gamma is proportional to beta for these rows: fit beta as beta + its share */
		r->use[2] = 0;
		r->par[2] = 0;
		dep = solve(r->o, r->nobs, r->use, r->par);
		add_warn(r->fit,
			 "reduction cost gamma cannot be separated from beta with these rows "
			 "(only one all-reduce algorithm, no sendrecv): the bandwidth includes it; "
			 "measure --algo ring,tree to separate them");
	} else {
		r->fit->have_gamma = 1;
	}
	if (!dep)
		return 0;
	if (r->fit->nsizes < 2)
		return ibc_err_buf(r->err, r->errlen,
			       "%s: every usable row has the same size and rank count: latency "
			       "and bandwidth cannot be told apart; measure several sizes "
			       "(-b 1K -e 256M)",
			       r->name);
	return ibc_err_buf(r->err, r->errlen, "%s: the rows cannot separate latency from bandwidth",
		       r->name);
}

/* One beta cannot serve every algorithm in this file (e.g. the tree's pipeline moves less than
 * its share on this machine): calibrate from the algorithm with the most rows, with gamma
 * folded into beta, rather than report nonsense. */
static int fit_one_algo(struct fit_run *r)
{
	static const char *const algo_names[3] = {"ring", "tree", "sendrecv"};
	int cnt[3] = {0, 0, 0}, best = 0, k, m = 0;

	for (k = 0; k < r->nobs; k++)
		cnt[r->o[k].algo]++;
	for (k = 1; k < 3; k++)
		if (cnt[k] > cnt[best])
			best = k;
	for (k = 0; k < r->nobs; k++)
		if (r->o[k].algo == best)
			r->o[m++] = r->o[k];
	r->nobs = m;
	r->fit->nrows = m;
	r->use[2] = 0;
	r->par[2] = 0;
	r->fit->have_gamma = 0;
	if (solve(r->o, r->nobs, r->use, r->par))
		return ibc_err_buf(r->err, r->errlen,
			       "%s: the rows cannot separate latency from bandwidth", r->name);
	add_warn(r->fit,
		 "ring, tree and sendrecv rows disagree on one bandwidth (a negative beta or "
		 "gamma when fitted together): calibrated from the %d %s rows alone, with "
		 "the reduction cost folded into the bandwidth",
		 m, algo_names[best]);
	return 0;
}

/* The parameters into fit, its statistics, and the warnings about them. */
static int fit_finish(struct fit_run *r)
{
	struct rpt_fit *fit = r->fit;
	const double *par = r->par;

	fit->alpha_us = par[0];
	fit->beta_us_per_byte = par[1];
	fit->gamma_us_per_byte = par[2];
	stats(r->o, r->nobs, par, fit);
	if (fit->nsizes < 3)
		add_warn(fit, "only %d message sizes: the fit is exact but not checked",
			 fit->nsizes);
	if (fit->nranks < 2)
		add_warn(fit,
			 "one rank count (%ld ranks): growth with the GPU count comes from the "
			 "model, not from the data",
			 fit->p_min);
	if (par[0] < 0)
		add_warn(fit, "negative latency %.3g us: the small sizes do not follow the model",
			 par[0]);
	if (par[1] <= 0)
		return ibc_err_buf(r->err, r->errlen,
			       "%s: the fitted bandwidth is not positive (beta = %.3g us/B): the "
			       "data do not follow alpha + n beta",
			       r->name, par[1]);
	if (!isfinite(par[0]) || !isfinite(par[2]) || !isfinite(fit->r2) ||
	    !isfinite(fit->max_rel_err) || !isfinite(1e-3 / par[1]))
		return ibc_err_buf(r->err, r->errlen,
				   "%s: the fit gave no finite latency, bandwidth or residual: the "
				   "rows' times and sizes are not a plausible measurement",
				   r->name);
	if (1e-3 / par[1] < FIT_MIN_GBPS || 1e-3 / par[1] > FIT_MAX_GBPS)
		return ibc_err_buf(r->err, r->errlen,
				   "%s: the fitted bandwidth %.6g GB/s is outside %g..%g GB/s (the "
				   "range a cluster file takes): the rows' times and sizes are not a "
				   "plausible measurement",
				   r->name, 1e-3 / par[1], FIT_MIN_GBPS, FIT_MAX_GBPS);
	if (fit->have_gamma && par[2] < 0)
		add_warn(fit, "negative reduction cost %.3g us/B (noise?)", par[2]);
	if (fit->max_rel_err > 0.25)
		add_warn(fit, "a row is off the fitted model by %.0f%%", 100 * fit->max_rel_err);
	return 0;
}

int rpt_fit_table(const char *name, const struct ibc_csv_table *t, const char *transport,
		  struct rpt_fit *fit, char *err, size_t errlen)
{
	struct fit_run r = {
	    .name = name, .use = {1, 1, 1}, .fit = fit, .err = err, .errlen = errlen};
	struct cols c;
	int rc;

	memset(fit, 0, sizeof(*fit));
	rc = find_cols(name, t, &c, err, errlen);
	if (!rc)
		rc = pick_transport(name, t, &c, transport, fit, err, errlen);
	if (rc)
		return rc;
	r.o = calloc((size_t)t->nrows + 1, sizeof(*r.o));
	if (!r.o)
		return -ENOMEM;
	rc = collect(name, t, &c, fit, r.o, &r.nobs, err, errlen);
	if (!rc)
		fit->nrows = r.nobs;
	rc = rc ? rc : fit_check_rows(&r);
	rc = rc ? rc : fit_solve(&r);
	if (!rc && fit->have_gamma && (r.par[1] <= 0 || r.par[2] < 0))
		rc = fit_one_algo(&r);
	rc = rc ? rc : fit_finish(&r);
	free(r.o);
	return rc;
}

double rpt_fit_reduce_GBps(const struct rpt_fit *fit)
{
	if (!fit->have_gamma || fit->gamma_us_per_byte <= 0)
		return 0;
	/* a reduction cost too small to measure is at most as fast as a cluster file allows */
	if (fit->gamma_us_per_byte < 1e-3 / FIT_MAX_REDUCE_GBPS)
		return FIT_MAX_REDUCE_GBPS;
	return 1e-3 / fit->gamma_us_per_byte;
}

void rpt_fit_apply(const struct rpt_fit *fit, struct rpt_cluster *c)
{
	double gbps = 1e-3 / fit->beta_us_per_byte; /* bytes/us -> GB/s */

	if (fit->multinode) {
		c->nic_Gbps = gbps * 8;
		c->nic_efficiency = 1;
		c->net_latency_us = IBC_MAX(0.0, fit->alpha_us);
	} else {
		c->nvlink_GBps = gbps;
		c->nvlink_efficiency = 1;
		c->nvlink_latency_us = IBC_MAX(0.0, fit->alpha_us);
	}
	if (fit->have_gamma && fit->gamma_us_per_byte > 0) {
		c->reduce_GBps = rpt_fit_reduce_GBps(fit);
		c->reduce_overlap = 0; /* the fit measured it as a serial term */
	}
}
