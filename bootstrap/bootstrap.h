/* SPDX-License-Identifier: MIT */
/*
 * bootstrap.h - rank discovery and rendezvous (docs/design.md#bootstrap).
 *
 * Rank and size come from the launcher's environment (ibcoll's own --np launcher, Open MPI,
 * PMIx, PMI, Slurm). The rendezvous address is IBCOLL_ROOT=host:port, or under Slurm the first
 * host of the job's node list. Every rank opens a small TCP listener; rank 0 listens on the
 * root address, gathers everyone's hello (rank, size, host, pid, listener address), checks that
 * all agree on the size and that each rank appears once, and sends the table back. After that,
 * point-to-point messages (send/recv by peer and tag) and allgather/gather/barrier built on them
 * carry transport handles and results. Every wait is bounded by the timeout, and a timeout
 * names the ranks and hosts that were waited for. Every connection first runs the job key's
 * challenge-response (common/ibc_auth.h); one that does not prove itself within
 * IBC_AUTH_DEADLINE_MS is dropped and logged, and the job goes on.
 */
#ifndef IBC_BOOTSTRAP_H
#define IBC_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ibc_boot;

/* Where rank/size came from, as detected from the environment. */
struct ibc_boot_env {
	int rank, nranks;
	char source[32]; /* "ibcoll", "ompi", "pmix", "pmi", "slurm", "single" */
	char root[256]; /* "host:port" or "" */
	int wireup;	/* enum ibc_wireup: how the ranks will meet */
	char job_id[40]; /* shared by all ranks when the launcher provides one, else "" */
};

/* How the ranks of a job meet, in order of precedence (docs/design.md#bootstrap): an explicit
 * IBCOLL_ROOT, the launcher's PMIx server, the Slurm environment without PMIx (a port derived
 * from the job id), ibcoll's own --np launcher; or nothing to meet (one rank). */
enum ibc_wireup {
	IBC_WIREUP_SINGLE,
	IBC_WIREUP_ROOT,  /* "root": TCP rendezvous at IBCOLL_ROOT */
	IBC_WIREUP_PMIX,  /* "pmix": PMIx_Put / PMIx_Fence / PMIx_Get */
	IBC_WIREUP_SLURM, /* "slurm": TCP rendezvous on the first host, port from the job id */
	IBC_WIREUP_LOCAL, /* "local": the --np fork launcher (its own root address) */
};
const char *ibc_wireup_name(int wireup);
/* Whether this build can wire up through PMIx (libpmix-dev was found at build time). */
bool ibc_boot_pmix_built(void);

/* Read rank/size/root from the environment. Returns 0, or -EINVAL with ibc_err_get() naming the
 * variables that are inconsistent or malformed. With no launcher at all: rank 0 of 1. Under
 * PMIx without a size variable (OMPI_COMM_WORLD_SIZE, SLURM_NTASKS) nranks is 0: PMIx tells
 * it at ibc_boot_init(). */
int ibc_boot_env_detect(struct ibc_boot_env *env);

/* First host of a Slurm node list ("n[01-04,7],gpu2" -> "n01"). 0 or -EINVAL. */
int ibc_boot_slurm_first_host(const char *nodelist, char *host, size_t len);

struct ibc_boot_opts {
	int rank, nranks; /* under IBC_WIREUP_PMIX checked against PMIx's (nranks 0: PMIx's) */
	int wireup;	  /* enum ibc_wireup; 0 (single) acts as root for nranks > 1 */
	const char *root; /* "host:port"; may be NULL when nranks == 1 or under PMIx */
	int root_fd; /* >= 0: an already-bound listening socket for rank 0 (--np launcher) */
	const char *job_id; /* NULL: rank 0 makes one and shares it */
	int timeout_ms;
	const volatile int *abort_flag; /* optional: a launcher says a rank died */
	/* The job key every connection proves it holds (borrowed; NULL: IBCOLL_JOB_KEY or
	 * IBCOLL_JOB_KEY_FILE, else none and a warning that the rendezvous is open). */
	const unsigned char *job_key;
	size_t job_key_len;
	int require_auth; /* no key for a job of several ranks: -EACCES instead of the warning */
};

/* 0, or -errno with ibc_err_get() saying why: -ENOKEY for a job key that is malformed, in a
 * file others may read, or missing under require_auth (usage errors); -EACCES when a peer or
 * rank 0 did not prove the key (another job on the port, different keys). */
int ibc_boot_init(const struct ibc_boot_opts *o, struct ibc_boot **b);
void ibc_boot_fini(struct ibc_boot *b);

int ibc_boot_rank(const struct ibc_boot *b);
int ibc_boot_nranks(const struct ibc_boot *b);
int ibc_boot_local_rank(const struct ibc_boot *b); /* index among ranks on this host */
int ibc_boot_local_size(const struct ibc_boot *b);
int ibc_boot_nnodes(const struct ibc_boot *b);
const char *ibc_boot_host(const struct ibc_boot *b, int rank); /* hostname of a rank */
const char *ibc_boot_job_id(const struct ibc_boot *b);
const char *ibc_boot_local_addr(const struct ibc_boot *b); /* IP that reaches the root */
int ibc_boot_wireup(const struct ibc_boot *b);		   /* enum ibc_wireup used */
int ibc_boot_pid(const struct ibc_boot *b, int rank);
/* The job key (borrowed, lives as long as b), *len 0 when the job has none. */
const unsigned char *ibc_boot_job_key(const struct ibc_boot *b, size_t *len);

/* Point-to-point: messages are matched by (source rank, tag), queued if they arrive early. */
int ibc_boot_send(struct ibc_boot *b, int peer, uint32_t tag, const void *data, size_t len);
int ibc_boot_recv(struct ibc_boot *b, int peer, uint32_t tag, void *data, size_t len);

/* all: nranks * len bytes, rank i's contribution at offset i * len. */
int ibc_boot_allgather(struct ibc_boot *b, const void *mine, void *all, size_t len);
/* Like allgather but only rank 0 receives (all may be NULL elsewhere). */
int ibc_boot_gather(struct ibc_boot *b, const void *mine, void *all, size_t len);
/* Rank 0's data to everyone. */
int ibc_boot_bcast(struct ibc_boot *b, void *data, size_t len);
int ibc_boot_barrier(struct ibc_boot *b);

#endif
