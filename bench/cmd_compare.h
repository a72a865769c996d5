/* SPDX-License-Identifier: MIT */
/*
 * cmd_compare.h - `ibcoll compare`: a run against a baseline (reports/compare.h).
 */
#ifndef BENCH_CMD_COMPARE_H
#define BENCH_CMD_COMPARE_H

/* argv[0] == "compare". The process exit code (docs/design.md#exit-codes). */
int bench_compare_main(int argc, char **argv);
/* Compare run nw (a run directory or its results.csv) with base: print the rows and findings,
 * write compare.csv and findings.csv into out (NULL: a new ibcoll-results/ directory) with
 * run_id (NULL: a new one). The exit code: 0, 1 (a regression or status change), 2 (a file
 * that is not a results.csv, nothing in common, a report that exists), 3 (I/O). */
int bench_compare_run(const char *base, const char *nw, double tol, const char *out,
		      const char *run_id);
/* "5", "5%", "2.5%" (percent, 0..1000) -> fraction. 0 or -EINVAL. */
int bench_parse_tolerance(const char *s, double *frac);

#endif
