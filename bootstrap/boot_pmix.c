/* SPDX-License-Identifier: MIT */
/*
 * boot_pmix.c - the wire-up through the launcher's PMIx server (bootstrap.h,
 * docs/design.md#pmix). Every rank publishes its hello record (rank, size, host, pid, listener
 * address) with PMIx_Put and PMIx_Commit; rank 0 also publishes the job id and the job key;
 * one PMIx_Fence that collects the data exchanges them; PMIx_Get reads every peer's record.
 * The result is the same rank table the TCP rendezvous builds, without a port to agree on.
 *
 * Built against Debian's PMIx headers (libpmix-dev, found by pkg-config: IBC_HAVE_PMIX), the
 * library is loaded with dlopen at run time: a binary built with PMIx still runs where
 * libpmix.so.2 is absent, and a binary built without it says so when PMIx is asked for.
 */
#include "boot_int.h"
#include "ibc_sock.h"

#include <stdlib.h>
#include <string.h>

#define PMIX_KEY_PEER "ibcoll.boot.peer"
#define PMIX_KEY_JOB  "ibcoll.boot.job"

/* Rank 0's part of the table: the job id and the key every connection proves. */
struct boot_pmix_job {
	char job_id[40];
	uint32_t key_len, pad;
	unsigned char key[IBC_AUTH_KEY_MAX];
};

#ifndef IBC_HAVE_PMIX

bool ibc__boot_pmix_built(void)
{
	return false;
}

int ibc__boot_pmix_init(struct ibc_boot *b, int *rank, int *nranks)
{
	(void)b;
	(void)rank;
	(void)nranks;
	ibc_err_set("bootstrap: the launcher runs a PMIx server (PMIX_RANK is set) but this "
		    "ibcoll was built without PMIx (libpmix-dev was absent at build time): "
		    "rebuild with libpmix-dev installed, or set IBCOLL_ROOT=host:port");
	return -ENOTSUP;
}

int ibc__boot_pmix_exchange(struct ibc_boot *b)
{
	(void)b;
	return -ENOTSUP;
}

void ibc__boot_pmix_fini(struct ibc_boot *b)
{
	(void)b;
}

#else

#include <dlfcn.h>
#include <pmix.h>
#include <sodium.h>
#include <unistd.h>

#define PMIX_LIB "libpmix.so.2"

/* The few PMIx calls ibcoll makes, resolved from the library at run time. */
static struct {
	void *dl;
	pmix_status_t (*init)(pmix_proc_t *proc, pmix_info_t *info, size_t n);
	pmix_status_t (*finalize)(const pmix_info_t *info, size_t n);
	pmix_status_t (*put)(pmix_scope_t scope, const pmix_key_t key, pmix_value_t *val);
	pmix_status_t (*commit)(void);
	pmix_status_t (*fence)(const pmix_proc_t *procs, size_t np, const pmix_info_t *info,
			       size_t ni);
	pmix_status_t (*get)(const pmix_proc_t *proc, const pmix_key_t key, const pmix_info_t *info,
			     size_t ni, pmix_value_t **val);
	const char *(*error_string)(pmix_status_t st);
	void (*value_destruct)(pmix_value_t *v);
	pmix_proc_t me;
	int users; /* PMIx_Init calls not yet finalized */
} px;

bool ibc__boot_pmix_built(void)
{
	return true;
}

static int pmix_load(void)
{
	static const char *const names[] = {"PMIx_Init",	 "PMIx_Finalize",      "PMIx_Put",
					    "PMIx_Commit",	 "PMIx_Fence",	       "PMIx_Get",
					    "PMIx_Error_string", "PMIx_Value_destruct"};
	void **slots[] = {(void **)&px.init,	     (void **)&px.finalize,	 (void **)&px.put,
			  (void **)&px.commit,	     (void **)&px.fence,	 (void **)&px.get,
			  (void **)&px.error_string, (void **)&px.value_destruct};
	size_t i;

	if (px.dl)
		return 0;
	px.dl = dlopen(PMIX_LIB, RTLD_NOW | RTLD_GLOBAL);
	if (!px.dl) {
		ibc_err_set("bootstrap: the launcher runs a PMIx server (PMIX_RANK is set) but "
			    "%s cannot be loaded (%s): install libpmix2, or set "
			    "IBCOLL_ROOT=host:port",
			    PMIX_LIB, dlerror());
		return -ENOTSUP;
	}
	for (i = 0; i < IBC_ARRAY_SIZE(names); i++) {
		*slots[i] = dlsym(px.dl, names[i]);
		if (!*slots[i]) {
			ibc_err_set("bootstrap: %s has no %s: PMIx 4 or newer is needed", PMIX_LIB,
				    names[i]);
			dlclose(px.dl);
			px.dl = NULL;
			return -ENOTSUP;
		}
	}
	return 0;
}

static void info_int(pmix_info_t *in, const char *key, int v)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->key, sizeof(in->key), "%s", key);
	in->value.type = PMIX_INT;
	in->value.data.integer = v;
}

static void info_bool(pmix_info_t *in, const char *key, bool v)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->key, sizeof(in->key), "%s", key);
	in->value.type = PMIX_BOOL;
	in->value.data.flag = v;
}

static void value_release(pmix_value_t *v)
{
	if (!v)
		return;
	px.value_destruct(v);
	free(v);
}

/* A PMIx server whose tcp URI no longer answers is gone: say so now, where PMIx_Init would
 * retry for a while. 0 when it answers or the URI is not tcp. */
static int server_alive(void)
{
	static const char *const vars[] = {"PMIX_SERVER_URI41", "PMIX_SERVER_URI4",
					   "PMIX_SERVER_URI3", "PMIX_SERVER_URI2"};
	const char *uri = NULL, *p;
	char host[256];
	int port, fd, rc;
	struct sockaddr_storage ss;
	socklen_t sl;
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(vars) && !uri; i++)
		uri = getenv(vars[i]);
	p = uri ? strstr(uri, "://") : NULL;
	if (!p || ibc_sock_split_hostport(p + 3, host, sizeof(host), &port))
		return 0;
	rc = ibc_sock_resolve(host, port, &ss, &sl);
	if (rc)
		return 0;
	rc = ibc_sock_open(ss.ss_family, IBC_SOCK_NONBLOCK, 0, &fd);
	if (rc)
		return 0;
	rc = ibc_sock_connect(fd, (struct sockaddr *)&ss, sl);
	if (rc == -EINPROGRESS || rc == -EAGAIN) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};

		rc = poll(&pf, 1, 3000) == 1 ? ibc_sock_connect_done(fd) : -ETIMEDOUT;
	}
	close(fd);
	if (rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EHOSTUNREACH) {
		ibc_err_set("bootstrap: the PMIx server of this job (%s) does not answer (%s): "
			    "the launcher (mpirun, srun, prterun) is gone or this environment was "
			    "copied from another job; start the run under its launcher again, or "
			    "unset the PMIX_* variables and set IBCOLL_ROOT=host:port",
			    uri, strerror(-rc));
		return -EHOSTDOWN;
	}
	return 0;
}

int ibc__boot_pmix_init(struct ibc_boot *b, int *rank, int *nranks)
{
	pmix_proc_t wild;
	pmix_value_t *v = NULL;
	pmix_info_t in;
	pmix_status_t st;
	int rc = pmix_load();

	if (!rc)
		rc = server_alive();
	if (rc)
		return rc;
	st = px.init(&px.me, NULL, 0);
	if (st != PMIX_SUCCESS) {
		ibc_err_set(
		    "bootstrap: PMIx_Init failed (%s): the launcher's PMIx server is not "
		    "reachable; start the run under mpirun or srun --mpi=pmix again, or set "
		    "IBCOLL_ROOT=host:port",
		    px.error_string(st));
		return -EHOSTDOWN;
	}
	px.users++;
	memset(&wild, 0, sizeof(wild));
	memcpy(wild.nspace, px.me.nspace, sizeof(wild.nspace));
	wild.rank = PMIX_RANK_WILDCARD;
	info_int(&in, PMIX_TIMEOUT, IBC_MAX(1, b->timeout_ms / 1000));
	st = px.get(&wild, PMIX_JOB_SIZE, &in, 1, &v);
	if (st != PMIX_SUCCESS || !v || v->type != PMIX_UINT32) {
		value_release(v);
		ibc_err_set("bootstrap: PMIx gave no job size (%s)",
			    px.error_string(st == PMIX_SUCCESS ? PMIX_ERR_BAD_PARAM : st));
		return -EPROTO;
	}
	*nranks = (int)v->data.uint32;
	*rank = (int)px.me.rank;
	value_release(v);
	return 0;
}

void ibc__boot_pmix_fini(struct ibc_boot *b)
{
	(void)b;
	if (px.users > 0 && --px.users == 0)
		px.finalize(NULL, 0);
}

static int put_bytes(const char *key, const void *data, size_t len)
{
	pmix_value_t v;
	pmix_status_t st;

	memset(&v, 0, sizeof(v));
	v.type = PMIX_BYTE_OBJECT;
	v.data.bo.bytes = (char *)data;
	v.data.bo.size = len;
	st = px.put(PMIX_GLOBAL, key, &v); /* copies the value */
	if (st != PMIX_SUCCESS) {
		ibc_err_set("bootstrap: PMIx_Put(%s) failed: %s", key, px.error_string(st));
		return -EPROTO;
	}
	return 0;
}

/* A peer's byte object of exactly len bytes. */
static int get_bytes(int rank, const char *key, int timeout_s, void *data, size_t len)
{
	pmix_proc_t p;
	pmix_value_t *v = NULL;
	pmix_info_t in;
	pmix_status_t st;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	memcpy(p.nspace, px.me.nspace, sizeof(p.nspace));
	p.rank = (pmix_rank_t)rank;
	info_int(&in, PMIX_TIMEOUT, timeout_s);
	st = px.get(&p, key, &in, 1, &v);
	if (st == PMIX_ERR_TIMEOUT)
		rc = -ETIMEDOUT;
	else if (st != PMIX_SUCCESS || !v)
		rc = -ENOENT;
	else if (v->type != PMIX_BYTE_OBJECT || v->data.bo.size != len)
		rc = -EPROTO;
	else
		memcpy(data, v->data.bo.bytes, len);
	value_release(v);
	return rc;
}

/* A rank's host as PMIx knows it (for a rank that never published), "?" when unknown. */
static void pmix_host_of(int rank, char *host, size_t len)
{
	pmix_proc_t p;
	pmix_value_t *v = NULL;
	pmix_info_t in;

	snprintf(host, len, "?");
	memset(&p, 0, sizeof(p));
	memcpy(p.nspace, px.me.nspace, sizeof(p.nspace));
	p.rank = (pmix_rank_t)rank;
	info_bool(&in, PMIX_OPTIONAL, true);
	if (px.get(&p, PMIX_HOSTNAME, &in, 1, &v) == PMIX_SUCCESS && v && v->type == PMIX_STRING &&
	    v->data.string)
		snprintf(host, len, "%s", v->data.string);
	value_release(v);
}

/* The fence timed out: name the ranks whose record cannot be fetched (at most 16 probed
 * with a short timeout each, so that the error comes within seconds). */
static int fence_timeout(struct ibc_boot *b)
{
	char list[512] = "", host[64];
	size_t n = 0;
	int i, missing = 0, probed = 0;
	struct boot_peer p;

	for (i = 0; i < b->nranks && probed < 16; i++) {
		if (i == b->rank)
			continue;
		probed++;
		if (!get_bytes(i, PMIX_KEY_PEER, 1, &p, sizeof(p)))
			continue;
		pmix_host_of(i, host, sizeof(host));
		if (missing++ < 8)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d (host %s)",
					      missing > 1 ? ", " : "", i, host);
	}
	if (missing)
		ibc_err_set("bootstrap: rank %d timed out after %.1f s in the PMIx fence: rank(s) "
			    "%s%s never published its wire-up record (did it start ibcoll? is it "
			    "stuck before the bootstrap?)",
			    b->rank, b->timeout_ms / 1e3, list, missing > 8 ? " and more" : "");
	else
		ibc_err_set("bootstrap: rank %d timed out after %.1f s in the PMIx fence, though "
			    "the %d rank(s) probed of %d published: a rank beyond them is missing "
			    "or the launcher's PMIx server is stuck",
			    b->rank, b->timeout_ms / 1e3, probed, b->nranks);
	return -ETIMEDOUT;
}

static int fence(struct ibc_boot *b)
{
	pmix_info_t in[2];
	pmix_status_t st;

	info_bool(&in[0], PMIX_COLLECT_DATA, true);
	info_int(&in[1], PMIX_TIMEOUT, IBC_MAX(1, b->timeout_ms / 1000));
	st = px.fence(NULL, 0, in, 2);
	if (st == PMIX_ERR_TIMEOUT)
		return fence_timeout(b);
	if (st != PMIX_SUCCESS) {
		ibc_err_set("bootstrap: PMIx_Fence failed (%s): a rank of the job died or the "
			    "launcher's PMIx server went away",
			    px.error_string(st));
		return -EHOSTDOWN;
	}
	return 0;
}

/* Every peer's record, checked like a hello at the rendezvous. */
static int read_peers(struct ibc_boot *b)
{
	int i, rc;

	for (i = 0; i < b->nranks; i++) {
		struct boot_peer *p = &b->peers[i], raw;

		if (i == b->rank)
			continue;
		rc = get_bytes(i, PMIX_KEY_PEER, IBC_MAX(1, b->timeout_ms / 1000), &raw,
			       sizeof(raw));
		if (!rc)
			rc = ibc__boot_decode_hello(&raw, sizeof(raw), p);
		if (!rc && (p->rank != i || p->nranks != b->nranks))
			rc = -EINVAL;
		if (rc) {
			const char *what =
			    rc == -EINVAL ? "for another rank or job size" : "missing or malformed";

			ibc_err_set("bootstrap: rank %d's PMIx record is %s (is every rank the "
				    "same ibcoll build?)",
				    i, what);
			return rc == -EINVAL ? -EINVAL : -EPROTO;
		}
	}
	return 0;
}

/* Rank 0's job id and key; a rank without a key of its own takes rank 0's. */
static int take_job(struct ibc_boot *b)
{
	struct boot_pmix_job j;
	int rc = get_bytes(0, PMIX_KEY_JOB, IBC_MAX(1, b->timeout_ms / 1000), &j, sizeof(j));

	if (rc || j.key_len > IBC_AUTH_KEY_MAX) {
		ibc_err_set("bootstrap: rank 0's PMIx job record is missing or malformed");
		return -EPROTO;
	}
	j.job_id[sizeof(j.job_id) - 1] = '\0';
	snprintf(b->job_id, sizeof(b->job_id), "%s", j.job_id);
	if (!b->key.len) {
		memcpy(b->key.bytes, j.key, j.key_len);
		b->key.len = j.key_len;
	}
	sodium_memzero(&j, sizeof(j));
	return 0;
}

int ibc__boot_pmix_exchange(struct ibc_boot *b)
{
	struct boot_peer *self;
	struct boot_pmix_job j;
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	b->peers = calloc((size_t)b->nranks, sizeof(*b->peers));
	if (!b->peers)
		return -ENOMEM;
	self = &b->peers[b->rank];
	ibc__boot_fill_self(b, self);
	rc = ibc_sock_local(b->listen_fd, &ss, &sl);
	if (rc)
		return rc;
	self->port = (uint16_t)ibc_sock_port((struct sockaddr *)&ss);
	rc = put_bytes(PMIX_KEY_PEER, self, sizeof(*self));
	if (!rc && b->rank == 0) {
		memset(&j, 0, sizeof(j));
		snprintf(j.job_id, sizeof(j.job_id), "%s", b->job_id);
		j.key_len = (uint32_t)b->key.len;
		memcpy(j.key, b->key.bytes, b->key.len);
		rc = put_bytes(PMIX_KEY_JOB, &j, sizeof(j));
		sodium_memzero(&j, sizeof(j));
	}
	if (!rc && px.commit() != PMIX_SUCCESS) {
		ibc_err_set("bootstrap: PMIx_Commit failed");
		rc = -EPROTO;
	}
	if (!rc)
		rc = fence(b);
	if (!rc)
		rc = read_peers(b);
	if (!rc && b->rank != 0)
		rc = take_job(b);
	b->joined = true;
	return rc;
}

#endif
