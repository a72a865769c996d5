/* SPDX-License-Identifier: MIT */
/*
 * launch.h - `--np N`: fork N local ranks (the default job) and watch them.
 *
 * The parent binds the rendezvous socket on 127.0.0.1 before forking (so no port can be
 * stolen), hands it to rank 0, and waits. When a rank dies (signal, or exit code 3 before the
 * others finished) the parent raises the job's abort flag in shared memory: the survivors stop
 * at their next wait and exit 3 naming the dead rank; stragglers are killed after a grace
 * period. Shared-memory segments of the job are removed at the end.
 */
#ifndef IBC_LAUNCH_H
#define IBC_LAUNCH_H

/* Shared between the parent and all ranks of a local job (MAP_SHARED before fork). */
struct ibc_job_state {
	volatile int abort; /* non-zero: a rank died */
	int dead_rank;
	int dead_pid;
	int dead_status; /* exit code, or -signal */
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

/* Describe a dead rank for messages: "killed by signal 9 (Killed)" / "exited with code 3". */
void ibc_launch_describe(int status, char *buf, int len);

#endif
