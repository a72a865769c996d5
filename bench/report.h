/* SPDX-License-Identifier: MIT */
/*
 * report.h - results.csv and hosts.csv rows (docs/design.md#csv-reports) through common/ibc_csv.h.
 * Rank 0 only. Internal to bench/.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "bench.h"
#include "dtype.h"
#include "stats.h"

#include <stddef.h>
#include <stdint.h>

/* One row of results.csv. */
struct bench_row {
	const char *collective, *algo; /* borrowed */
	enum ibc_dtype dt;
	enum ibc_op op;
	int place; /* enum bench_place */
	uint64_t bytes, count;
	const struct bench_stats *st; /* borrowed; NULL when the measurement failed */
	double algbw, busbw;
	uint64_t wrong;
	const char *wrong_ranks; /* borrowed: "1;3" */
	const char *status; /* borrowed: ok, wrong, timeout, error */
	int channels;
};

/* Create the report directory and results.csv (exclusively) into d->csv. 0 or -errno, logged. */
int bench__report_open(struct bench_drv *d);
/* Append r to results.csv (nothing without one). 0 or -errno, logged. */
int bench__report_row(struct bench_drv *d, const struct bench_row *r);
/* Write hosts.csv: one row per rank from all[d->nranks]. 0 or -errno (creating it is logged). */
int bench__report_hosts(struct bench_drv *d, const struct bench_host *all);
/* Append rank to a ';'-separated list in buf (len bytes, *n used); cut when full. */
void bench__rank_list_add(char *buf, size_t len, size_t *n, int rank);

#endif
