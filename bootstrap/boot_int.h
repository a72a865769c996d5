/* SPDX-License-Identifier: MIT */
/*
 * boot_int.h - what bootstrap.c shares with boot_coll.c and boot_auth.c; not for other
 * modules.
 */
#ifndef IBC_BOOT_INT_H
#define IBC_BOOT_INT_H

#include "boot_wire.h"
#include "bootstrap.h"
#include "ibc_auth.h"
#include "ibc_common.h"
#include "launch.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	BOOT_TAG_HELLO = 1u << 24,
	BOOT_TAG_TABLE = 2u << 24,
	BOOT_TAG_ALLGATHER = 3u << 24,
	BOOT_TAG_GATHER = 4u << 24,
	BOOT_TAG_BCAST = 5u << 24,
	BOOT_TAG_SCATTER = 6u << 24,
};

#define BOOT_AUTH_CONTEXT "ibcoll-boot-1"

#define BOOT_SLICE_MS 100
/* Outside --np, rank 0 listens only from its rendezvous on and answers a handshake at once;
 * one that accepts but stays silent this long is another job's rank 0, busy with its run. */
#define BOOT_ROOT_ANSWER_MS 5000

struct boot_sock {
	int fd;
	int src;	       /* rank at the other end, -1 until its first message */
	struct ibc_auth *auth; /* owned: accepted, handshake in progress; NULL once proved */
	uint64_t deadline;     /* src < 0: dropped when it has not proved itself / spoken by then */
};

struct boot_msg {
	struct boot_msg *next;
	int src;
	uint32_t tag;
	size_t len;
	char data[]; /* owned */
};

struct ibc_boot {
	int rank, nranks, timeout_ms;
	const volatile int *abort_flag; /* borrowed */
	int listen_fd;
	struct boot_peer *peers; /* owned, nranks */
	struct boot_sock *socks; /* owned */
	int nsocks, capsocks;
	struct boot_msg *stash; /* owned list of early messages */
	bool *gone;		/* owned: rank closed its connection */
	uint32_t coll_seq;
	int local_rank, local_size, nnodes;
	char local_addr[64];
	char job_id[40];
	char root_host[256];
	int root_port;
	struct ibc_auth_key key;
	bool joined; /* the rendezvous is over: a late hello is another job's */
	int wireup;  /* enum ibc_wireup */
	bool pmix;   /* PMIx_Init succeeded: PMIx_Finalize at ibc_boot_fini() */
};

/* Every wait looks here between its slices: also the --np parent's heartbeat (launch.h). */
static inline bool ibc__boot_aborted(const struct ibc_boot *b)
{
	ibc_launch_beat(ibc_now_ns(), b->timeout_ms);
	return b->abort_flag && *b->abort_flag;
}

/* bootstrap.c: one slice of waiting for connections and messages (extra: a socket the caller
 * waits on as well, only polled); the next stashed message from src (-1: any) with tag, or
 * NULL; a message from src with tag within the timeout (*msg owned by the caller); a rank's
 * host for messages. */
int ibc__boot_pump(struct ibc_boot *b, int ms, uint64_t deadline, const struct pollfd *extra);
struct boot_msg *ibc__boot_take(struct ibc_boot *b, int src, uint32_t tag);
int ibc__boot_recv_msg(struct ibc_boot *b, int src, uint32_t tag, struct boot_msg **msg);
const char *ibc__boot_peer_host(const struct ibc_boot *b, int peer);

/* boot_rdv.c: this rank's hello record; the rendezvous at rank 0 and at the others. */
void ibc__boot_fill_self(struct ibc_boot *b, struct boot_peer *p);
int ibc__boot_root_rendezvous(struct ibc_boot *b, const char *job_id);
int ibc__boot_member_rendezvous(struct ibc_boot *b);

/* The next collective sequence number (24 bits, in the tag). */
uint32_t ibc__boot_seq(struct ibc_boot *b);

/* This rank's job key: the caller's (o->job_key), else IBCOLL_JOB_KEY / IBCOLL_JOB_KEY_FILE.
 * A job of several ranks without one warns once that the rendezvous is open, or fails with
 * -ENOKEY under o->require_auth. 0, or -ENOKEY (no key, a malformed one, a key file others may
 * read: a usage error) with ibc_err_get() set. */
int ibc__boot_key(const struct ibc_boot_opts *o, const char *root, struct ibc_auth_key *key);

/* An accepted connection's handshake, server side: *a owned by the caller (free()), started
 * and stepped once. 0 or -ENOMEM. */
int ibc__boot_auth_accept(int fd, const struct ibc_auth_key *key, struct ibc_auth **a);
/* Log why a connection that had not proved itself was dropped. */
void ibc__boot_log_drop(int rank, int fd, const char *why);

/* boot_pmix.c (docs/design.md#pmix): whether this build knows PMIx; PMIx_Init and the job's
 * size and this rank (-ENOTSUP: no PMIx library, -EHOSTDOWN: the server is gone, with
 * ibc_err_get() saying what to do); publish this rank's record (and rank 0's job id and key),
 * one fence, read every peer's: b->peers, b->job_id and b->key filled (-ETIMEDOUT naming the
 * ranks that never published); PMIx_Finalize. */
bool ibc__boot_pmix_built(void);
int ibc__boot_pmix_init(struct ibc_boot *b, int *rank, int *nranks);
int ibc__boot_pmix_exchange(struct ibc_boot *b);
void ibc__boot_pmix_fini(struct ibc_boot *b);

#endif
