/* SPDX-License-Identifier: MIT */
/*
 * ibc_auth.h - the job key and the mutual challenge-response that every bootstrap connection
 * and every tcp data connection runs before anything else (docs/design.md#bootstrap).
 *
 * Three fixed-size messages, the accepting side is the "server":
 *   1. server -> client: magic "IBAU", version, nonce_s (32 random bytes)
 *   2. client -> server: magic, version, nonce_c (32 random bytes), mac_c
 *   3. server -> client: magic, status (0 accepted, 1 refused), mac_s
 * mac_X = HMAC-SHA256(key, context || nonce_s || nonce_c || role), role "client" or "server",
 * context names the channel ("ibcoll-boot-1", "ibcoll-tcp-1") so a proof for one is no proof
 * for the other. The server checks mac_c before it answers; the client checks mac_s before it
 * sends anything else: each side proves it holds the key, a recorded exchange cannot be
 * replayed (fresh nonces on both sides) or reflected (the role). A job without a key runs the
 * same exchange with an empty key: it then proves nothing, but framing and deadlines are the
 * same. Every length is fixed, so nothing read here is allocated.
 */
#ifndef IBC_AUTH_H
#define IBC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IBC_AUTH_KEY_MAX     64 /* bytes of a job key */
#define IBC_AUTH_KEY_GEN     32 /* bytes of a key the local launcher makes */
#define IBC_AUTH_NONCE	     32
#define IBC_AUTH_MAC	     32
#define IBC_AUTH_DEADLINE_MS 2000 /* a peer that has not proved itself by then is dropped */

/* A job key: len 0 = none. */
struct ibc_auth_key {
	size_t len;
	unsigned char bytes[IBC_AUTH_KEY_MAX];
};

/* The key from IBCOLL_JOB_KEY (hex) or the file IBCOLL_JOB_KEY_FILE (hex text; refused when
 * group or others may read it). 0 (key->len 0 when neither is set) or -EINVAL / -EACCES /
 * -errno with ibc_err_get() saying what to fix. */
int ibc_auth_key_from_env(struct ibc_auth_key *key);
/* Hex text (whitespace around it allowed) -> key; 16..IBC_AUTH_KEY_MAX bytes. 0 or -EINVAL. */
int ibc_auth_key_parse(const char *hex, struct ibc_auth_key *key);

/* One side of the exchange on one socket. */
struct ibc_auth {
	const unsigned char *key; /* borrowed */
	size_t klen;
	const char *context; /* borrowed, static text */
	bool server;
	int step;
	bool refused; /* server: the peer's proof was wrong (message 3 said so) */
	unsigned char nonce_s[IBC_AUTH_NONCE], nonce_c[IBC_AUTH_NONCE];
	unsigned char buf[80]; /* the message being sent or received */
	size_t off, len;
};

void ibc_auth_start(struct ibc_auth *a, bool server, const unsigned char *key, size_t klen,
		    const char *context);
/* Move the exchange on fd without blocking. 0: done, both proved; -EAGAIN: call again when fd
 * is readable or writable; -EACCES: the peer's proof was wrong, or (client) the server refused
 * ours: different job keys or another job; -EPROTO: not this protocol (another program, another
 * ibcoll version); -ECONNRESET: closed; else -errno. */
int ibc_auth_step(struct ibc_auth *a, int fd);
/* POLLIN or POLLOUT: what the exchange waits for next. */
short ibc_auth_events(const struct ibc_auth *a);
/* ibc_auth_step() until done or deadline (CLOCK_MONOTONIC ns): 0, -ETIMEDOUT or its error. */
int ibc_auth_run(struct ibc_auth *a, int fd, uint64_t deadline);
/* Text for an ibc_auth_step() error, as seen from this side. */
const char *ibc_auth_strerror(const struct ibc_auth *a, int rc);

#endif
