/* SPDX-License-Identifier: MIT */
/*
 * bench.h - what the files of bench/ share: one rank's state during a run, the record every
 * rank reports for one measurement, the per-rank topology facts, and the entry points of the
 * rank setup (rank.c), the options rendezvous (opts_sync.c) and the commands (cmd_*.c).
 * Internal to bench/.
 */
#ifndef BENCH_H
#define BENCH_H

#include "bootstrap.h"
#include "comm.h"
#include "launch.h"
#include "opts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ibc_csv_writer;

/* One rank's state for a run. */
struct bench_drv {
	struct bench_opts *o; /* borrowed: this rank's options; the stamp is rank 0's */
	struct ibc_boot *boot; /* owned (rank.c) */
	struct ibc_comm comm;
	const struct ibc_tp_ops *ops; /* borrowed from the transport registry */
	const struct ibc_job_state *job; /* borrowed; NULL outside --np */
	const volatile int *abort_flag; /* borrowed: the job's abort flag; NULL outside --np */
	int rank, nranks, nnodes, ranks_per_node;
	struct ibc_buf in, out;
	const struct ibc_mem_ops *mem; /* borrowed; NULL for host memory */
	struct ibc_mem_ctx *memctx; /* owned */
	struct ibc_csv_writer *csv; /* owned; rank 0 only */
	double bw_sum; /* allreduce: busbw summed over rows, for the average */
	int bw_n;
	bool progress; /* rank 0 with stderr on a terminal: a progress line */
	size_t wrong_total;
};

/* What each rank reports for one measurement (gathered at rank 0). */
struct bench_rank_rec {
	int32_t rc;
	int32_t pad;
	uint64_t wrong, first;
	char exp[64], got[64];
	double times[]; /* iters, microseconds */
};

/* Bytes of one record with iters times: a whole number of doubles, so that the times of the
 * records gathered back to back lie at a fixed stride (BENCH_REC_STRIDE samples). */
#define BENCH_REC_LEN(iters) (sizeof(struct bench_rank_rec) + sizeof(double) * (size_t)(iters))
#define BENCH_REC_STRIDE(iters) (BENCH_REC_LEN(iters) / sizeof(double))
_Static_assert(sizeof(struct bench_rank_rec) % sizeof(double) == 0,
	       "gathered records keep their times at a whole-sample stride");

/* One rank's topology facts (a row of hosts.csv; gathered at rank 0). */
struct bench_host {
	int32_t local_rank;
	int32_t numa;
	int32_t nic_port;
	int32_t local_size;
	double link_gbps;
	char host[64];
	char cpus[256];
	char gpu[32], gpu_busid[32], nic[64], nic_busid[32], path[8];
};

/* rank.c: the function every rank runs (ibc_rank_fn); arg is this rank's struct bench_opts
 * (a private copy: its stamp is overwritten with rank 0's). ctx NULL: rank and size from the
 * environment. Returns the rank's exit code (docs/design.md#exit-codes). */
int bench__rank_main(const struct ibc_rank_ctx *ctx, void *arg);
/* resources.c: every host can hold the sweep (else exit 2, rank 0 naming the host and the
 * largest -e that fits) and a warning for more ranks than cores; collective. 0 or the exit
 * code. */
int bench__resources_check(struct bench_drv *d, const struct bench_host *me);
/* Gather every rank's record of len bytes at rank 0: *all (rank 0: nranks records, caller
 * frees; elsewhere NULL). 0 or -errno. */
int bench__gather_rec(struct bench_drv *d, const struct bench_rank_rec *mine, size_t len,
		      char **all);
/* Log why this rank cannot go on (naming a dead rank when the launcher saw one); returns the
 * exit code, IBC_EXIT_ENV. */
int bench__report_failure(struct bench_drv *d, int rc);
/* The status column of a row that failed with rc: "timeout" or "error". */
const char *bench__status_of(int rc);

/* opts_sync.c: every rank runs rank 0's benchmark. Rank 0's options message goes to every
 * rank, which compares it with its own options and takes rank 0's stamp; rank 0 gathers the
 * verdicts and names the first rank that disagrees. Collective. 0, -EINVAL (the ranks
 * disagree: a usage error, exit 2) or another -errno (bootstrap failure); logged. */
int bench__opts_agree(struct ibc_boot *b, struct bench_opts *o);

/* cmd_allreduce.c, cmd_sendrecv.c: run the command on a set-up rank; the exit code. */
int bench__allreduce_run(struct bench_drv *d);
int bench__sendrecv_run(struct bench_drv *d);

#endif
