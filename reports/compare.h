/* SPDX-License-Identifier: MIT */
/*
 * compare.h - a run against a baseline (docs/design.md#baselines): results.csv rows of two runs
 * matched on their identity columns (collective, algo, transport, mem, dtype, op, placement,
 * nranks, nnodes, ranks_per_node, channels, bytes). A matched row is a regression only when
 * its p50 time is worse than the base's p50 by more than the tolerance AND above the base row's
 * own p99 (outside the base's min..p99 range), so that noise the base itself showed is not
 * called a regression; a row that was ok in the base and is not now (wrong, timeout, error) is
 * a finding too. Unmatched rows are listed, never dropped.
 */
#ifndef RPT_COMPARE_H
#define RPT_COMPARE_H

#include "findings.h"
#include "ibc_csv.h"

enum rpt_verdict {
	RPT_V_OK,	  /* within the tolerance */
	RPT_V_FASTER,	  /* better than the base's p50 by more than the tolerance */
	RPT_V_NOISE,	  /* worse by more than the tolerance but inside the base's min..p99 */
	RPT_V_REGRESSION, /* worse by more than the tolerance and above the base's p99 */
	RPT_V_STATUS,	  /* ok in the base, not ok now */
	RPT_V_UNMEASURED, /* no time in one of them (both failed, or failed before) */
	RPT_V_BASE_ONLY,
	RPT_V_NEW_ONLY,
};

struct rpt_cmp_row {
	int base, cur; /* row indexes into the tables, -1 when absent */
	enum rpt_verdict verdict;
	double time_ratio, busbw_ratio; /* new / base; NAN when not both measured */
};

struct rpt_compare {
	struct rpt_cmp_row *rows; /* owned */
	int n;
	int count[RPT_V_NEW_ONLY + 1];	/* rows per verdict */
	double tolerance;		/* fraction: 0.05 = 5% */
	const char *base_run, *new_run; /* borrowed from the tables: their first run_id */
};

/* Compare nw against base (names: how to call them in messages, e.g. their paths). Adds a
 * finding (check "baseline", kind "row") per regression and per status change, and a case per
 * matched row (cases may be NULL). 0, or -EINVAL
 * (a table is not a results.csv: a column is missing; or the two have other schemas) or
 * -ENOENT (no row in common: err says which identity columns differ). */
int rpt_compare(const struct ibc_csv_table *base, const char *base_name,
		const struct ibc_csv_table *nw, const char *new_name, double tolerance,
		struct rpt_compare *out, struct rpt_findings *f, struct rpt_cases *cases, char *err,
		size_t errlen);
void rpt_compare_free(struct rpt_compare *c);

const char *rpt_verdict_name(enum rpt_verdict v);

/* Write dir/compare.csv (exclusive create). 0 or -errno with err set. */
int rpt_compare_write(const char *dir, const char *run_id, const struct ibc_csv_table *base,
		      const struct ibc_csv_table *nw, const struct rpt_compare *c, char *err,
		      size_t errlen);

/* The identity columns, in compare.csv's order. */
extern const char *const rpt_compare_identity[12];

#endif
