/* SPDX-License-Identifier: MIT */
/*
 * table.h - the human output on stdout, laid out as nccl-tests' tables
 * (docs/design.md#timing-and-checks), and the progress line on stderr. Rank 0 prints; internal to
 * bench/.
 */
#ifndef BENCH_TABLE_H
#define BENCH_TABLE_H

#include "bench.h"
#include "coll.h"
#include "dtype.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_CELL_LEN 96 /* one placement's cell of an allreduce line */

/* The job: command, ranks, transport, run id, and one line per rank (hosts[d->nranks]). */
void bench__table_banner(const struct bench_drv *d, const struct bench_host *hosts);

/* allreduce: the column heads; a cell (time, algbw, busbw, #wrong; st NULL: dashes); an empty
 * cell (placement not run); one line per size; the summary after the last line. */
void bench__table_ar_header(void);
void bench__table_ar_cell(char *buf, size_t len, const struct bench_stats *st, double algbw,
			  double busbw, uint64_t wrong, bool checked);
void bench__table_ar_blank(char *buf, size_t len);
void bench__table_ar_line(uint64_t bytes, uint64_t count, enum ibc_dtype dt, enum ibc_op op,
			  enum ibc_algo algo, const char *out_cell, const char *in_cell);
void bench__table_ar_footer(const struct bench_drv *d);

/* The progress line (only when d->progress): what runs now; cleared at the end. */
void bench__table_progress(const struct bench_drv *d, enum ibc_algo algo, enum ibc_dtype dt,
			   enum ibc_op op, int place, uint64_t bytes);
void bench__table_progress_end(const struct bench_drv *d);

/* sendrecv: the pairing and column heads; one line per size (bandwidth, latency of the
 * ping-pong, wrong bytes); the report path after the last line. */
void bench__table_sr_header(const struct bench_drv *d);
void bench__table_sr_line(uint64_t bytes, double gbps, const struct bench_stats *lat,
			  uint64_t wrong);
void bench__table_sr_footer(const struct bench_drv *d);

#endif
