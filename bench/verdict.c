/* SPDX-License-Identifier: MIT */
/*
 * verdict.c - the checks at the end of a measuring run and findings.csv (verdict.h).
 */
#include "verdict.h"
#include "cmd_compare.h"
#include "expect.h"
#include "findings.h"
#include "ibc_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The thresholds the options name into o->report.expects; 0 or -EINVAL with err set. */
static int load_expects(struct bench_opts *o, char *err, size_t len)
{
	struct rpt_expects *e;
	int rc = 0;

	if (!o->report.expect_busbw && !o->report.expect_file)
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, len, "out of memory");
		return -EINVAL;
	}
	o->report.expects = e;
	if (o->report.expect_busbw)
		rc = rpt_expect_parse_busbw(o->report.expect_busbw, e, err, len);
	if (!rc && o->report.expect_file) {
		rc = rpt_expect_load(o->report.expect_file, e, err, len);
		if (rc && rc != -EINVAL)
			rc = -EINVAL; /* a file named by a flag that cannot be read: usage */
	}
	return rc;
}

/* --baseline: a run directory (or its results.csv) read now, not after the run. */
static int load_baseline(struct bench_opts *o)
{
	struct bench_report_cfg *r = &o->report;
	char err[700];

	if (!r->baseline)
		return 0;
	if (bench_results_read(r->baseline, &r->base, r->base_path, sizeof(r->base_path), err,
			       sizeof(err)))
		return bench__usage_err(o, "--baseline: %s", err);
	if (ibc_csv_col(r->base, "time_p50_us") < 0 || ibc_csv_col(r->base, "collective") < 0)
		return bench__usage_err(o, "--baseline: %s is not an ibcoll results.csv",
					r->base_path);
	return 0;
}

void bench__verdict_release(struct bench_opts *o)
{
	if (o->report.expects) {
		rpt_expects_free(o->report.expects);
		free(o->report.expects);
		o->report.expects = NULL;
	}
	ibc_csv_free(o->report.base);
	o->report.base = NULL;
}

int bench__verdict_validate(struct bench_opts *o)
{
	char err[700];
	int rc = load_expects(o, err, sizeof(err));

	if (rc)
		rc = bench__usage_err(
		    o, "%s%s",
		    o->report.expect_file && !strstr(err, "--expect") ? "--expect-file: " : "",
		    err);
	if (!rc)
		rc = load_baseline(o);
	if (rc)
		bench__verdict_release(o);
	return rc;
}

/* A correctness case per row; rows not ok are findings too, of check "correctness" (wrong
 * data) or "run" (timeout, error). */
static int rows_not_ok(const struct ibc_csv_table *t, struct rpt_findings *f,
		       struct rpt_cases *cases)
{
	int st = ibc_csv_col(t, "status"), wr = ibc_csv_col(t, "wrong_ranks"), r;

	if (st < 0 || wr < 0)
		return -EINVAL;
	for (r = 0; r < t->nrows; r++) {
		const char *s = t->rows[r][st], *check = strcmp(s, "wrong") ? "run" : "correctness";
		struct rpt_finding *x;
		char name[240];

		rpt_row_words(t, r, name, sizeof(name));
		if (strcmp(s, "ok") == 0) {
			if (rpt_cases_add(cases, "correctness", name, NULL))
				return -ENOMEM;
			continue;
		}
		x = rpt_findings_add(f, check, "row");
		if (!x)
			return -ENOMEM;
		snprintf(x->evidence, sizeof(x->evidence), "%s: status %s%s%s", name, s,
			 t->rows[r][wr][0] ? ", wrong on ranks " : "", t->rows[r][wr]);
		if (rpt_cases_add(cases, "correctness", name, x->evidence))
			return -ENOMEM;
	}
	return 0;
}

static int run_checks(const struct bench_opts *o, const struct ibc_csv_table *t,
		      struct rpt_findings *f, struct rpt_cases *cases)
{
	const struct rpt_expects *e = o->report.expects;
	int checked = 0, idle = 0, rc = rows_not_ok(t, f, cases);

	if (!rc && e && e->n) {
		rc = rpt_expect_check(e, t, f, cases, &checked, &idle);
		printf("# thresholds: %d expectation(s), %d row check(s), %d selecting no row\n", e->n,
		       checked, idle);
	}
	return rc;
}

int bench__conclude(const char *dir, struct rpt_run_info *info, const struct ibc_csv_table *rows,
		    const struct rpt_findings *f, const struct rpt_cases *cases)
{
	char err[700];

	info->exit_code = f->n ? IBC_EXIT_CHECK : IBC_EXIT_OK;
	if (rpt_findings_write(dir, info->run_id, f, err, sizeof(err)) ||
	    rpt_machine_write(dir, info, rows, f, cases, err, sizeof(err))) {
		ibc_log("%s", err);
		return IBC_EXIT_ENV;
	}
	printf("# Reports: %s/findings.csv, summary.json, junit.xml, ibcoll.prom\n", dir);
	rpt_findings_print(stdout, f);
	fflush(stdout);
	return info->exit_code;
}

int bench__verdict(const struct bench_opts *o, int code, struct rpt_findings *f,
		   struct rpt_cases *cases)
{
	const struct bench_report_cfg *r = &o->report;
	struct rpt_run_info info = {o->sendrecv ? "sendrecv" : "allreduce", r->run_id, r->started,
				    0};
	struct bench_cmp_in in;
	char err[700];
	int rc;

	fflush(stdout);
	memset(&in, 0, sizeof(in)); /* this run's rows, read once; the baseline's read at start */
	rc = bench_results_read(r->outdir, &in.n, in.np, sizeof(in.np), err, sizeof(err));
	if (rc) {
		ibc_log("%s", err);
		return code ? code : IBC_EXIT_ENV;
	}
	in.b = r->base;
	in.b_borrowed = true;
	snprintf(in.bp, sizeof(in.bp), "%s", r->base_path);
	rc = run_checks(o, in.n, f, cases) ? IBC_EXIT_ENV : 0;
	if (!rc && r->base)
		rc = bench_compare_do(&in, r->tolerance, r->outdir, r->run_id, f, cases);
	if (!rc)
		rc = bench__conclude(r->outdir, &info, in.n, f, cases);
	bench_compare_unload(&in);
	/* an environment failure of the checks wins; else the worse of the run and the checks */
	return rc == IBC_EXIT_ENV || rc == IBC_EXIT_USAGE ? rc : IBC_MAX(code, rc);
}
