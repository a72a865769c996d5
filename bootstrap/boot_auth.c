/* SPDX-License-Identifier: MIT */
/*
 * boot_auth.c - the bootstrap's job key (where it comes from, the warning without one) and the
 * server side of the handshake on accepted connections (common/ibc_auth.h).
 */
#include "boot_int.h"
#include "ibc_sock.h"

#include <stdlib.h>
#include <string.h>

int ibc__boot_key(const struct ibc_boot_opts *o, const char *root, struct ibc_auth_key *key)
{
	static bool warned;
	int rc;

	memset(key, 0, sizeof(*key));
	if (o->job_key && o->job_key_len) {
		if (o->job_key_len > IBC_AUTH_KEY_MAX)
			return -ENOKEY;
		memcpy(key->bytes, o->job_key, o->job_key_len);
		key->len = o->job_key_len;
		return 0;
	}
	rc = ibc_auth_key_from_env(key);
	if (rc) {
		ibc_err_prefix("bootstrap: ");
		return -ENOKEY;
	}
	if (key->len || o->nranks == 1 || o->wireup == IBC_WIREUP_PMIX)
		return 0; /* under PMIx rank 0 makes the key and PMIx hands it to the others */
	if (o->require_auth) {
		ibc_err_set(
		    "bootstrap: --require-auth but no job key: set IBCOLL_JOB_KEY (hex, e.g. "
		    "from openssl rand -hex 32) or IBCOLL_JOB_KEY_FILE=path (mode 600) to "
		    "the same key on every rank");
		return -ENOKEY;
	}
	if (o->rank == 0 && !warned) {
		warned = true;
		ibc_log("warning: no job key: the rendezvous at %s is open, anyone who reaches it "
			"can join the job; set IBCOLL_JOB_KEY or IBCOLL_JOB_KEY_FILE on every rank "
			"(--require-auth makes this an error)",
			root ? root : "?");
	}
	return 0;
}

int ibc__boot_auth_accept(int fd, const struct ibc_auth_key *key, struct ibc_auth **out)
{
	struct ibc_auth *a = malloc(sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	ibc_auth_start(a, true, key->bytes, key->len, BOOT_AUTH_CONTEXT);
	rc = ibc_auth_step(a, fd);
	(void)rc; /* -EAGAIN now; an error shows at the next step */
	*out = a;
	return 0;
}

void ibc__boot_log_drop(int rank, int fd, const char *why)
{
	char peer[IBC_SOCK_ADDR_LEN] = "?";

	ibc_sock_fd_names(fd, NULL, peer);
	ibc_log("bootstrap: rank %d dropped a connection from %s: %s", rank, peer, why);
}
