/* SPDX-License-Identifier: MIT */
/*
 * machine.h - the run's results for machines (docs/design.md#machine-outputs), rendered from
 * the same rows (results.csv) and findings: summary.json (cJSON), junit.xml (a testcase per
 * check made: every row's correctness, every thresholded row, every row compared with a
 * baseline) and ibcoll.prom (the Prometheus text format, for node_exporter's textfile
 * collector). Each file is created exclusively and atomically (common/ibc_csv.h).
 */
#ifndef RPT_MACHINE_H
#define RPT_MACHINE_H

#include "findings.h"
#include "ibc_csv.h"

struct rpt_run_info {
	const char *command; /* allreduce, sendrecv, compare */
	const char *run_id;
	const char *started_utc; /* "2026-12-07T00:00:00Z" or "" */
	int exit_code;		 /* the run's exit code, findings included */
};

/* Write dir/summary.json, dir/junit.xml and dir/ibcoll.prom. rows may be NULL (compare: no
 * rows of its own). 0 or -errno with err saying which file failed. */
int rpt_machine_write(const char *dir, const struct rpt_run_info *info,
		      const struct ibc_csv_table *rows, const struct rpt_findings *f,
		      const struct rpt_cases *cases, char *err, size_t errlen);

/* The three renderings into malloc'd text (for tests and the writer): NULL when out of
 * memory. */
char *rpt_summary_json(const struct rpt_run_info *info, const struct ibc_csv_table *rows,
		       const struct rpt_findings *f, const struct rpt_cases *cases);
char *rpt_junit_xml(const struct rpt_run_info *info, const struct rpt_cases *cases);
char *rpt_prometheus(const struct rpt_run_info *info, const struct ibc_csv_table *rows,
		     const struct rpt_findings *f);

#endif
