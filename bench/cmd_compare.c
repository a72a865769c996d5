/* SPDX-License-Identifier: MIT */
/*
 * cmd_compare.c - `ibcoll compare BASE NEW [--tolerance PCT] [--out DIR]`: a run against a
 * baseline (reports/compare.h). Prints one line per matched row and the findings, writes
 * compare.csv and findings.csv into its own run directory, exits 1 on a regression.
 */
#include "cmd_compare.h"
#include "compare.h"
#include "findings.h"
#include "ibc_common.h"
#include "machine.h"
#include "opts.h"
#include "verdict.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ibcoll compare BASE NEW [--tolerance PCT] [--out DIR]\n\n"
		"Compare the results.csv of run NEW with baseline run BASE (each a run directory\n"
		"or a results.csv). Rows are matched on collective, algo, transport, mem, dtype,\n"
		"op, placement, nranks, nnodes, ranks_per_node, channels and bytes. A row is a\n"
		"regression when its p50 time is worse than the base's p50 by more than the\n"
		"tolerance and also above the base row's p99; a row ok in the base and wrong,\n"
		"timed out or failed now is a finding too. Unmatched rows are listed.\n\n"
		"  -t, --tolerance PCT  allowed slowdown in percent, e.g. 5 or 5%% (default 5)\n"
		"      --out DIR        where compare.csv and findings.csv go (default\n"
		"                       ibcoll-results/<time>-<run_id>)\n"
		"  -h, --help           this text\n\n"
		"exit codes: 0 no regression, 1 a regression or status change, 2 usage error or a\n"
		"file that is not an ibcoll results.csv, 3 a report that cannot be written\n");
}

/* "5", "5%", "2.5%": percent in 0..1000, as a fraction. */
int bench_parse_tolerance(const char *s, double *frac)
{
	char buf[32];
	size_t n = strlen(s);
	double v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	if (buf[n - 1] == '%')
		buf[n - 1] = '\0';
	if (ibc_parse_double(buf, &v) || !(v >= 0 && v <= 1000))
		return -EINVAL;
	*frac = v / 100;
	return 0;
}

/* A run directory or a results.csv: the table, or exit 2 with a message. */
int bench_results_read(const char *arg, struct ibc_csv_table **t, char *path, size_t len,
		       char *err, size_t errlen)
{
	struct stat st;

	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(path, len, "%s/results.csv", arg);
	else
		snprintf(path, len, "%s", arg);
	return ibc_csv_read(path, t, err, errlen);
}

static int load(const char *arg, struct ibc_csv_table **t, char *path, size_t len)
{
	char err[600];
	int rc = bench_results_read(arg, t, path, len, err, sizeof(err));

	if (rc) {
		fprintf(stderr, "ibcoll compare: %s\n", err);
		return IBC_EXIT_USAGE;
	}
	return 0;
}

static void print_rows(const struct ibc_csv_table *b, const struct ibc_csv_table *n,
		       const struct rpt_compare *c)
{
	static const char *const show[] = {"collective", "algo",      "transport", "dtype",
					   "op",	 "placement", "nranks",	   "bytes"};
	int i, k;

	printf("#%10s %6s %9s %8s %4s %5s %6s %12s %12s %12s %8s  %s\n", "collective", "algo",
	       "transport", "dtype", "op", "place", "ranks", "bytes", "base_p50_us", "new_p50_us",
	       "ratio", "verdict");
	for (i = 0; i < c->n; i++) {
		const struct rpt_cmp_row *r = &c->rows[i];
		const struct ibc_csv_table *t = r->cur >= 0 ? n : b;
		int row = r->cur >= 0 ? r->cur : r->base;
		const char *v[8], *bp, *np;

		for (k = 0; k < 8; k++)
			v[k] = t->rows[row][ibc_csv_col(t, show[k])];
		bp = r->base >= 0 ? b->rows[r->base][ibc_csv_col(b, "time_p50_us")] : "-";
		np = r->cur >= 0 ? n->rows[r->cur][ibc_csv_col(n, "time_p50_us")] : "-";
		printf(" %10s %6s %9s %8s %4s %5s %6s %12s %12s %12s ", v[0], v[1], v[2], v[3],
		       v[4][0] ? v[4] : "-", v[5], v[6], v[7], bp[0] ? bp : "-", np[0] ? np : "-");
		if (isnan(r->time_ratio))
			printf("%8s  %s\n", "-", rpt_verdict_name(r->verdict));
		else
			printf("%8.3f  %s\n", r->time_ratio, rpt_verdict_name(r->verdict));
	}
	printf("# matched %d: ok %d, faster %d, slower within the base's noise %d, regressions "
	       "%d, status changes %d, unmeasured %d; only in the base %d, only in the new run "
	       "%d\n",
	       c->n - c->count[RPT_V_BASE_ONLY] - c->count[RPT_V_NEW_ONLY], c->count[RPT_V_OK],
	       c->count[RPT_V_FASTER], c->count[RPT_V_NOISE], c->count[RPT_V_REGRESSION],
	       c->count[RPT_V_STATUS], c->count[RPT_V_UNMEASURED], c->count[RPT_V_BASE_ONLY],
	       c->count[RPT_V_NEW_ONLY]);
}

int bench_compare_load(const char *base, const char *nw, struct bench_cmp_in *in)
{
	int rc;

	memset(in, 0, sizeof(*in));
	rc = load(base, &in->b, in->bp, sizeof(in->bp));
	return rc ? rc : load(nw, &in->n, in->np, sizeof(in->np));
}

void bench_compare_unload(struct bench_cmp_in *in)
{
	if (!in->b_borrowed)
		ibc_csv_free(in->b);
	ibc_csv_free(in->n);
	memset(in, 0, sizeof(*in));
}

int bench_compare_do(struct bench_cmp_in *in, double tol, const char *dir, const char *run_id,
		     struct rpt_findings *f, struct rpt_cases *cases)
{
	struct rpt_compare c;
	char err[1200];
	int rc;

	printf("# ibcoll compare: base %s, new %s, tolerance %.1f%%\n", in->bp, in->np, tol * 100);
	rc = rpt_compare(in->b, in->bp, in->n, in->np, tol, &c, f, cases, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ibcoll compare: %s\n", err);
		return rc == -ENOMEM ? IBC_EXIT_ENV : IBC_EXIT_USAGE;
	}
	print_rows(in->b, in->n, &c);
	rc = rpt_compare_write(dir, run_id, in->b, in->n, &c, err, sizeof(err));
	rpt_compare_free(&c);
	if (rc) {
		fprintf(stderr, "ibcoll compare: %s\n", err);
		return rc == -EEXIST ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	return 0;
}

/* The CLI's flow: both files read before its run directory is made. */
static int compare_cli(const char *base, const char *nw, double tol, const char *out)
{
	struct bench_report_cfg r = {.out = out};
	struct bench_cmp_in in;
	struct rpt_findings f = {0};
	struct rpt_cases cases = {0};
	int rc = bench_compare_load(base, nw, &in), mk = 0;

	if (!rc) {
		bench__stamp(&r);
		mk = ibc_mkdir_p(r.outdir);
	}
	if (mk) {
		fprintf(stderr, "ibcoll compare: cannot create %s: %s\n", r.outdir, strerror(-mk));
		rc = IBC_EXIT_ENV;
	}
	rc = rc ? rc : bench_compare_do(&in, tol, r.outdir, r.run_id, &f, &cases);
	if (!rc) {
		struct rpt_run_info info = {"compare", r.run_id, r.started, 0};

		printf("# Report: %s/compare.csv\n", r.outdir);
		rc = bench__conclude(r.outdir, &info, NULL, &f, &cases);
	}
	rpt_cases_free(&cases);
	rpt_findings_free(&f);
	bench_compare_unload(&in);
	return rc;
}

int bench_compare_main(int argc, char **argv)
{
	static const struct option lo[] = {{"tolerance", required_argument, NULL, 't'},
					   {"out", required_argument, NULL, 'O'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *out = NULL;
	double tol = 0.05;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":t:h", lo, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 't' && bench_parse_tolerance(optarg, &tol)) {
			fprintf(stderr,
				"ibcoll compare: --tolerance %s: give a percentage 0..1000, "
				"e.g. 5 or 5%%\n",
				optarg);
			return IBC_EXIT_USAGE;
		} else if (opt == 'O') {
			out = optarg;
		} else if (opt == '?' || opt == ':') {
			fprintf(stderr, "ibcoll compare: %s '%s' (see ibcoll compare --help)\n",
				opt == ':' ? "missing value for" : "unknown option",
				argv[optind - 1]);
			return IBC_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr,
			"ibcoll compare: give two runs, BASE and NEW (%d given); see "
			"ibcoll compare --help\n",
			argc - optind);
		return IBC_EXIT_USAGE;
	}
	return compare_cli(argv[optind], argv[optind + 1], tol, out);
}
