/* SPDX-License-Identifier: MIT */
/*
 * expect.h - thresholds (docs/design.md#thresholds): what a run must reach, per results row.
 * One format, a CSV file (`--expect-file FILE`) with the header
 *     collective,algo,transport,bytes,min_busbw_GBps,max_time_us
 * where collective, algo, transport and bytes select rows (`*` = any; bytes with a K/M/G/T
 * suffix) and at least one of the two limits is given (the other left empty); and the
 * shorthand `--expect-busbw SIZE=GB/s[,SIZE=GB/s...]` (every row of that size). A selected row
 * that misses a limit, or was not measured (status wrong, timeout, error), is a finding of
 * check "threshold"; an expectation that selects no row is reported, not a finding.
 */
#ifndef RPT_EXPECT_H
#define RPT_EXPECT_H

#include "findings.h"
#include "ibc_csv.h"

#include <stdbool.h>
#include <stdint.h>

struct rpt_expect {
	char collective[24], algo[24], transport[64]; /* "" = any */
	bool any_bytes;
	uint64_t bytes;
	double min_busbw, max_time; /* NAN: not limited */
	char where[96];		    /* "FILE:LINE" or "--expect-busbw" */
};

struct rpt_expects {
	struct rpt_expect *v; /* owned */
	int n, cap;
};

/* Append the expectations of an expectations file. 0, or -EINVAL / -errno with err saying
 * "path:line:col: what" (a missing column, a bad size or number, no limit on a line). */
int rpt_expect_load(const char *path, struct rpt_expects *e, char *err, size_t errlen);
/* The same from a table already read (path: its name in messages); also what tests/fuzz
 * drives. */
int rpt_expect_from_table(const struct ibc_csv_table *t, const char *path,
			  struct rpt_expects *e, char *err, size_t errlen);
/* Append "SIZE=GB/s[,...]". 0 or -EINVAL with err naming the item. */
int rpt_expect_parse_busbw(const char *arg, struct rpt_expects *e, char *err, size_t errlen);
void rpt_expects_free(struct rpt_expects *e);

/* Check results (a results.csv) against e: a finding per selected row that misses a limit,
 * and a case per row check (cases may be NULL). *checked: row checks made; *idle:
 * expectations that selected no row (each named on stderr). 0 or -EINVAL (results lacks a
 * column) / -ENOMEM. */
int rpt_expect_check(const struct rpt_expects *e, const struct ibc_csv_table *results,
		     struct rpt_findings *f, struct rpt_cases *cases, int *checked, int *idle);

#endif
