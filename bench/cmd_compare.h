/* SPDX-License-Identifier: MIT */
/*
 * cmd_compare.h - `ibcoll compare`: a run against a baseline (reports/compare.h).
 */
#ifndef BENCH_CMD_COMPARE_H
#define BENCH_CMD_COMPARE_H

#include "findings.h"
#include "ibc_csv.h"

#include <stdbool.h>
#include <stddef.h>

/* argv[0] == "compare". The process exit code (docs/design.md#exit-codes). */
int bench_compare_main(int argc, char **argv);
/* Two runs read (each a run directory or its results.csv), their paths as read. */
struct bench_cmp_in {
	struct ibc_csv_table *b, *n; /* owned (b borrowed when b_borrowed) */
	char bp[600], np[600];
	bool b_borrowed;
};

/* A run directory's results.csv (or the file arg names) into *t; path gets the file's name.
 * 0 or -errno with err "path:line:col: what". */
int bench_results_read(const char *arg, struct ibc_csv_table **t, char *path, size_t len,
		       char *err, size_t errlen);

/* Read both; 0 or exit 2 (a message on stderr: missing, malformed). */
int bench_compare_load(const char *base, const char *nw, struct bench_cmp_in *in);
/* Compare, print one line per row, write dir/compare.csv (run_id), add the regressions and
 * status changes to f. 0 or the exit code: 2 (not results.csv files, nothing in common, a
 * compare.csv that exists), 3 (I/O). */
int bench_compare_do(struct bench_cmp_in *in, double tol, const char *dir, const char *run_id,
		     struct rpt_findings *f, struct rpt_cases *cases);
void bench_compare_unload(struct bench_cmp_in *in);
/* "5", "5%", "2.5%" (percent, 0..1000) -> fraction. 0 or -EINVAL. */
int bench_parse_tolerance(const char *s, double *frac);

#endif
