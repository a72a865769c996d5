/* SPDX-License-Identifier: MIT */
/*
 * launch.h - `--np N`: fork N local ranks (the default job) and watch them.
 *
 * The parent binds the rendezvous socket on 127.0.0.1 before forking (so no port can be
 * stolen), hands it to rank 0, and waits. When a rank dies (signal, or exit code 3 before the
 * others finished) the parent raises the job's abort flag in shared memory: the survivors stop
 * at their next wait and exit 3 naming the dead rank; stragglers are killed after a grace
 * period.
 *
 * Hygiene: each rank dies with the parent (PR_SET_PDEATHSIG SIGKILL, set before the rank does
 * anything; its waits also notice an orphaned rank). Each rank stamps a heartbeat from its wait
 * loops (ibc_launch_beat); a rank stopped longer than its timeout, or found without a heartbeat
 * for that long when another rank gave up waiting, is named as the culprit and killed.
 */
#ifndef IBC_LAUNCH_H
#define IBC_LAUNCH_H

#include <stdint.h>

/* dead_status of a rank the parent found hung: IBC_LAUNCH_HUNG + the signal that stopped it
 * (0: running, but no heartbeat). Exit codes are below it, signals negative. */
#define IBC_LAUNCH_HUNG 1000

/* One rank's heartbeat, a cache line of its own: written by the rank, read by the parent. */
struct ibc_job_beat {
	uint64_t ns; /* CLOCK_MONOTONIC of the last stamp; 0: none yet */
	int32_t limit_ms; /* how long the rank may go without one: its wait timeout */
} __attribute__((aligned(64)));

/* Shared between the parent and all ranks of a local job (MAP_SHARED before fork). */
struct ibc_job_state {
	volatile int abort; /* non-zero: a rank died or hung, or the launcher is gone */
	int dead_rank; /* -1: none named */
	int dead_pid;
	int dead_status; /* exit code, -signal, or IBC_LAUNCH_HUNG + stop signal */
	int nranks;
	struct ibc_job_beat beat[]; /* nranks slots */
};

struct ibc_rank_ctx {
	int rank, nranks;
	int root_fd; /* rank 0: bound listening socket; else -1 */
	char root[64]; /* "127.0.0.1:port" */
	char job_id[40];
	unsigned char job_key[32]; /* random per job, inherited through fork (never exported) */
	struct ibc_job_state *job; /* shared mapping; NULL outside --np */
};

typedef int (*ibc_rank_fn)(const struct ibc_rank_ctx *rc, void *arg);

/* Run fn in np forked ranks; returns the job's exit code (docs/design.md#exit-codes). grace_ms bounds how long
 * survivors get to notice a death before they are killed. */
int ibc_launch_local(int np, ibc_rank_fn fn, void *arg, int grace_ms);

/* Describe a dead rank for messages: "killed by signal 9 (Killed)" / "exited with code 3" /
 * "was stopped by signal 19 (...) and made no progress within its --timeout". */
void ibc_launch_describe(int status, char *buf, int len);

/* Every wait loop calls this with the time it just read and the timeout it waits under: in a
 * rank forked by ibc_launch_local it stamps the rank's heartbeat (one store), and every 100 ms
 * it looks whether the launcher is still there (if not it raises the job's abort flag, so the
 * wait stops). Elsewhere it does nothing. */
void ibc_launch_beat(uint64_t now_ns, int limit_ms);

#endif
