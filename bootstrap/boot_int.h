/* SPDX-License-Identifier: MIT */
/*
 * boot_int.h - what bootstrap.c shares with boot_coll.c and boot_auth.c; not for other
 * modules.
 */
#ifndef IBC_BOOT_INT_H
#define IBC_BOOT_INT_H

#include "bootstrap.h"
#include "ibc_auth.h"
#include "ibc_common.h"

#include <stdbool.h>

enum {
	BOOT_TAG_HELLO = 1u << 24,
	BOOT_TAG_TABLE = 2u << 24,
	BOOT_TAG_ALLGATHER = 3u << 24,
	BOOT_TAG_GATHER = 4u << 24,
	BOOT_TAG_BCAST = 5u << 24,
	BOOT_TAG_SCATTER = 6u << 24,
};

/* The largest bootstrap message: a length above it is refused before anything is allocated. */
#define BOOT_MAX_MSG (256u << 20)
#define BOOT_AUTH_CONTEXT "ibcoll-boot-1"

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

#endif
