/* SPDX-License-Identifier: MIT */
/*
 * verdict.h - what a measuring run concludes (docs/design.md#findings): after the last row,
 * rank 0 reads the run's results.csv back and runs the checks the options ask for: rows not
 * ok (wrong data, timeouts, errors), thresholds (--expect-busbw, --expect-file), a baseline
 * (--baseline, compare.csv); it writes findings.csv (always, header only when clean) and
 * states each finding in the last lines on stdout.
 */
#ifndef BENCH_VERDICT_H
#define BENCH_VERDICT_H

#include "findings.h"
#include "ibc_csv.h"
#include "machine.h"
#include "opts.h"

/* Read the options' thresholds and baseline before the run, into o->report.expects and
 * o->report.base (the verdict uses them; the files are not read again): 0 or -EINVAL (usage,
 * message printed naming the flag and file:line; nothing kept). */
int bench__verdict_validate(struct bench_opts *o);
/* Free what bench__verdict_validate kept. */
void bench__verdict_release(struct bench_opts *o);
/* Rank 0 after the run with the run's exit code so far and what checks made during the run
 * found (the port counters; f and cases owned by the caller, added to here): the run's exit
 * code (1 when a check found something, unless it already failed worse). */
int bench__verdict(const struct bench_opts *o, int code, struct rpt_findings *f,
		   struct rpt_cases *cases);

/* The end of every checking command: dir/findings.csv and the machine outputs (summary.json,
 * junit.xml, ibcoll.prom: reports/machine.h) written, each finding stated on stdout. info's
 * exit_code is set from the findings. rows may be NULL. 0, 1 (findings) or 3 (a file that
 * cannot be written). */
int bench__conclude(const char *dir, struct rpt_run_info *info, const struct ibc_csv_table *rows,
		    const struct rpt_findings *f, const struct rpt_cases *cases);

#endif
