/* SPDX-License-Identifier: MIT */
/*
 * bootstrap.c - the bootstrap's connections and point-to-point messages (bootstrap.h): connect
 * and accept with the job key's handshake (boot_auth.c, common/ibc_auth.h), bounded frames
 * matched by (rank, tag), strangers dropped after IBC_AUTH_DEADLINE_MS; setup and teardown.
 * The rendezvous is in boot_rdv.c, gather/bcast/allgather/barrier in boot_coll.c, launcher
 * detection in bootstrap_env.c. Sockets through common/ibc_sock.h.
 */
#include "boot_int.h"
#include "ibc_id.h"
#include "ibc_sock.h"
#include "launch.h"

#include <poll.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tag_name(uint32_t tag)
{
	switch (tag & 0xff000000u) {
	case BOOT_TAG_HELLO: return "rendezvous hello";
	case BOOT_TAG_TABLE: return "rendezvous table";
	case BOOT_TAG_ALLGATHER: return "allgather";
	case BOOT_TAG_GATHER: return "gather";
	case BOOT_TAG_BCAST: return "broadcast";
	case BOOT_TAG_SCATTER: return "scatter";
	default: return "point-to-point message";
	}
}

/* ---------------------------------------------------------------- sockets */

static int add_sock(struct ibc_boot *b, int fd, int src)
{
	if (b->nsocks == b->capsocks) {
		int cap = b->capsocks ? b->capsocks * 2 : 16;
		struct boot_sock *n = realloc(b->socks, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		b->socks = n;
		b->capsocks = cap;
	}
	b->socks[b->nsocks] = (struct boot_sock){
		.fd = fd, .src = src, .deadline = ibc_sock_deadline(IBC_AUTH_DEADLINE_MS)
	};
	b->nsocks++;
	return 0;
}

static void drop_sock(struct ibc_boot *b, int i)
{
	if (b->socks[i].src >= 0 && b->gone)
		b->gone[b->socks[i].src] = true;
	free(b->socks[i].auth);
	close(b->socks[i].fd);
	b->socks[i] = b->socks[--b->nsocks];
}

/* The client side of the handshake on a new connection. The other sockets are served while it
 * waits, so two ranks that connect to each other at once do not wait on each other. */
static int auth_connect(struct ibc_boot *b, int fd, const char *host, int port, uint64_t deadline)
{
	struct ibc_auth a;
	int rc;

	ibc_auth_start(&a, false, b->key.bytes, b->key.len, BOOT_AUTH_CONTEXT);
	while ((rc = ibc_auth_step(&a, fd)) == -EAGAIN) {
		struct pollfd pf = { .fd = fd, .events = ibc_auth_events(&a) };

		if (ibc__boot_aborted(b))
			return -ECANCELED;
		if (!ibc_sock_remaining_ms(deadline))
			return -ETIMEDOUT;
		rc = ibc__boot_pump(b, IBC_MIN(ibc_sock_remaining_ms(deadline), BOOT_SLICE_MS),
				    deadline, &pf);
		if (rc)
			return rc;
	}
	if (rc == -EACCES || rc == -EPROTO)
		ibc_err_set("bootstrap: rank %d: the handshake with %s:%d failed: %s", b->rank,
			    host, port, ibc_auth_strerror(&a, rc));
	return rc;
}

/* The handshake with rank 0 before the table came: rank 0 answers at once unless the port is
 * another job's (under --np the launcher's socket may hold us in its backlog a while). */
static int auth_root(struct ibc_boot *b, int fd, const char *host, int port, uint64_t deadline)
{
	uint64_t answer = ibc_sock_deadline(BOOT_ROOT_ANSWER_MS);
	int rc;

	if (b->abort_flag || answer >= deadline)
		return auth_connect(b, fd, host, port, deadline);
	rc = auth_connect(b, fd, host, port, answer);
	if (rc != -ETIMEDOUT)
		return rc;
	ibc_err_set("bootstrap: rank %d: %s:%d accepted the connection but did not answer within "
		    "%.1f s: the port is in use by another job (give each job its own IBCOLL_ROOT "
		    "port), or rank 0 is stuck",
		    b->rank, host, port, BOOT_ROOT_ANSWER_MS / 1e3);
	return -EADDRINUSE;
}

/* Connect to host:port, retrying while the listener is not up yet, and prove the job key. */
static int connect_to(struct ibc_boot *b, const char *host, int port, bool to_root,
		      uint64_t deadline, int *out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = ibc_sock_resolve(host, port, &ss, &sl);
	int delay_ms = 10, fd;

	if (rc)
		return rc;
	for (;;) {
		rc = ibc_sock_open(ss.ss_family, IBC_SOCK_NODELAY, 0, &fd);
		if (rc)
			return rc;
		rc = ibc_sock_connect(fd, (struct sockaddr *)&ss, sl);
		if (rc == 0 && to_root)
			rc = auth_root(b, fd, host, port, deadline);
		else if (rc == 0)
			rc = auth_connect(b, fd, host, port, deadline);
		if (rc == 0) {
			*out = fd;
			return 0;
		}
		close(fd);
		if (rc != -ECONNREFUSED && rc != -EHOSTUNREACH &&
		    rc != -ENETUNREACH && rc != -EAGAIN)
			return rc;
		if (ibc__boot_aborted(b))
			return -ECANCELED;
		if (!ibc_sock_remaining_ms(deadline))
			return -ETIMEDOUT;
		usleep((useconds_t)delay_ms * 1000);
		delay_ms = IBC_MIN(delay_ms * 2, 500);
	}
}

static int sock_for(struct ibc_boot *b, int peer, uint64_t deadline, int *fd)
{
	int i, rc;

	for (i = 0; i < b->nsocks; i++)
		if (b->socks[i].src == peer) {
			*fd = b->socks[i].fd;
			return 0;
		}
	if (peer == 0 && !b->peers)
		rc = connect_to(b, b->root_host, b->root_port, true, deadline, fd);
	else if (b->peers)
		rc = connect_to(b, b->peers[peer].addr, b->peers[peer].port, false, deadline, fd);
	else
		rc = -ENOTCONN;
	if (rc)
		return rc;
	rc = add_sock(b, *fd, peer);
	if (rc)
		close(*fd);
	return rc;
}

const char *ibc__boot_peer_host(const struct ibc_boot *b, int peer)
{
	if (b->peers)
		return b->peers[peer].host;
	return peer == 0 ? b->root_host : "?";
}

int ibc_boot_send(struct ibc_boot *b, int peer, uint32_t tag, const void *data, size_t len)
{
	uint64_t deadline = ibc_sock_deadline(b->timeout_ms);
	struct boot_hdr h = { BOOT_MAGIC, b->rank, tag, 0, len };
	int fd, rc;

	if (peer < 0 || peer >= b->nranks)
		return -EINVAL;
	if (len > BOOT_MAX_MSG) {
		ibc_err_set("bootstrap: %s to rank %d has %zu bytes, more than the %u a bootstrap "
			    "message may have",
			    tag_name(tag), peer, len, BOOT_MAX_MSG);
		return -EMSGSIZE;
	}
	rc = sock_for(b, peer, deadline, &fd);
	if (!rc)
		rc = ibc_sock_send_full(fd, &h, sizeof(h), deadline);
	if (!rc && len)
		rc = ibc_sock_send_full(fd, data, len, deadline);
	if (rc == -ETIMEDOUT)
		ibc_err_set("bootstrap: timed out after %.1f s sending %s to rank %d (host %s)",
			    b->timeout_ms / 1e3, tag_name(tag), peer, ibc__boot_peer_host(b, peer));
	else if (rc == -ECANCELED)
		ibc_err_set("bootstrap: aborted (another rank died)");
	else if (rc && rc != -EACCES && rc != -EPROTO && rc != -EADDRINUSE) /* worded already */
		ibc_err_set("bootstrap: cannot send %s to rank %d (host %s): %s", tag_name(tag),
			    peer, ibc__boot_peer_host(b, peer), strerror(-rc));
	return rc;
}

/* A hello that no rendezvous waits for (this rank is not rank 0, or the job has started):
 * another job's rank reached this port. Tell it so and drop it. */
static void refuse_late_hello(struct ibc_boot *b, int i, const struct boot_hdr *h)
{
	struct {
		struct boot_hdr h;
		struct boot_table_hdr th;
	} r = { { BOOT_MAGIC, b->rank, BOOT_TAG_TABLE, 0, sizeof(r.th) },
		{ .status = -EADDRINUSE, .nranks = b->nranks } };
	struct boot_peer p;
	uint64_t dl = ibc_sock_deadline(IBC_AUTH_DEADLINE_MS);

	snprintf(r.th.msg, sizeof(r.th.msg),
		 "the rendezvous at %.100s:%d is in use by another job (job %s, %d ranks, already "
		 "started, rank %d on host %s): give each job its own IBCOLL_ROOT port",
		 b->root_host, b->root_port, b->job_id, b->nranks, b->rank, ibc_hostname());
	if (h->len == sizeof(p) && !ibc_sock_recv_full(b->socks[i].fd, &p, sizeof(p), dl))
		(void)ibc_sock_send_full(b->socks[i].fd, &r, sizeof(r), dl);
	ibc__boot_log_drop(b->rank, b->socks[i].fd,
			   "a rendezvous hello for another job (the job has started)");
	drop_sock(b, i);
}

/* The header of a message on socket i: 0 (*ok set when it may be read), or an error. */
static int read_hdr(struct ibc_boot *b, int i, uint64_t deadline, struct boot_hdr *h, bool *ok)
{
	struct boot_sock *s = &b->socks[i];
	/* a connection not yet named by a message gets 2 s from now for its header */
	uint64_t first = IBC_MIN(deadline, ibc_sock_deadline(IBC_AUTH_DEADLINE_MS));
	unsigned char raw[sizeof(*h)];
	int rc = ibc_sock_recv_full(s->fd, raw, sizeof(raw), s->src < 0 ? first : deadline);

	*ok = false;
	if (rc == -ECONNRESET || rc == -EPIPE) {
		drop_sock(b, i);
		return 0;
	}
	if (rc == -ETIMEDOUT && s->src < 0) {
		ibc__boot_log_drop(b->rank, s->fd, "no whole message header within 2 s");
		drop_sock(b, i);
		return 0;
	}
	if (rc)
		return rc;
	if (ibc__boot_decode_hdr(raw, sizeof(raw), b->nranks, h) ||
	    (s->src >= 0 && h->src != s->src)) {
		ibc__boot_log_drop(b->rank, s->fd, "garbage, a wrong rank or an oversized length "
						   "(is another program using the port?)");
		drop_sock(b, i);
		return 0;
	}
	if (s->src < 0 && h->tag == BOOT_TAG_HELLO && (b->rank != 0 || b->joined)) {
		refuse_late_hello(b, i, h);
		return 0;
	}
	*ok = true;
	return 0;
}

/* Read one message from socket i and stash it. */
static int pump_sock(struct ibc_boot *b, int i, uint64_t deadline)
{
	struct boot_hdr h;
	struct boot_msg *m, **tail;
	bool ok;
	int rc = read_hdr(b, i, deadline, &h, &ok);

	if (rc || !ok)
		return rc;
	m = malloc(sizeof(*m) + h.len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->src = h.src;
	m->tag = h.tag;
	m->len = h.len;
	rc = h.len ? ibc_sock_recv_full(b->socks[i].fd, m->data, h.len, deadline) : 0;
	if (rc) {
		free(m);
		return rc;
	}
	if (b->socks[i].src < 0)
		b->socks[i].src = h.src;
	for (tail = &b->stash; *tail; tail = &(*tail)->next)
		;
	*tail = m;
	return 0;
}

/* A connection waits on the listener: take it and start its handshake (a failed accept is
 * left for the next poll). */
static int accept_one(struct ibc_boot *b)
{
	int fd, rc;

	if (ibc_sock_accept(b->listen_fd, IBC_SOCK_NODELAY, &fd))
		return 0;
	rc = add_sock(b, fd, -1);
	if (rc) {
		close(fd);
		return rc;
	}
	return ibc__boot_auth_accept(fd, &b->key, &b->socks[b->nsocks - 1].auth);
}

/* Socket i after a poll: step its handshake, read a message, or drop it when it has not proved
 * itself (or spoken, after the handshake) in time. */
static int serve_sock(struct ibc_boot *b, int i, short revents, uint64_t deadline)
{
	struct boot_sock *s = &b->socks[i];
	int rc;

	if (s->auth && revents) {
		rc = ibc_auth_step(s->auth, s->fd);
		if (rc == 0) {
			free(s->auth);
			s->auth = NULL;
			s->deadline = ibc_sock_deadline(IBC_AUTH_DEADLINE_MS);
			return 0;
		}
		if (rc != -EAGAIN) {
			ibc__boot_log_drop(b->rank, s->fd, ibc_auth_strerror(s->auth, rc));
			drop_sock(b, i);
			return 0;
		}
	} else if (revents & (POLLIN | POLLHUP | POLLERR)) {
		return pump_sock(b, i, deadline);
	}
	if (s->src < 0 && !ibc_sock_remaining_ms(s->deadline)) {
		ibc__boot_log_drop(b->rank, s->fd,
				   s->auth ? "no handshake within 2 s"
					   : "nothing sent within 2 s after the handshake");
		drop_sock(b, i);
	}
	return 0;
}

/* Wait (one slice) for incoming connections or messages; extra: a socket the caller waits on
 * as well (it is only polled, never read). */
int ibc__boot_pump(struct ibc_boot *b, int ms, uint64_t deadline, const struct pollfd *extra)
{
	struct pollfd pf[b->nsocks + 2];
	int n = 0, i, rc, first;

	if (extra)
		pf[n++] = *extra;
	if (b->listen_fd >= 0)
		pf[n++] = (struct pollfd){ .fd = b->listen_fd, .events = POLLIN };
	first = n;
	for (i = 0; i < b->nsocks; i++) {
		const struct ibc_auth *a = b->socks[i].auth;

		pf[n++] = (struct pollfd){ .fd = b->socks[i].fd,
					   .events = a ? ibc_auth_events(a) : POLLIN };
	}
	rc = poll(pf, (nfds_t)n, ms);
	if (rc < 0)
		return errno != EINTR ? -errno : 0;
	/* Socket indices may shift when one is dropped: walk from the end. */
	for (i = n - 1; i >= first; i--) {
		rc = serve_sock(b, i - first, pf[i].revents, deadline);
		if (rc)
			return rc;
	}
	if (b->listen_fd >= 0 && (pf[first - 1].revents & POLLIN))
		return accept_one(b);
	return 0;
}

struct boot_msg *ibc__boot_take(struct ibc_boot *b, int src, uint32_t tag)
{
	struct boot_msg **pp, *m;

	for (pp = &b->stash; (m = *pp); pp = &m->next)
		if ((src < 0 || m->src == src) && m->tag == tag) {
			*pp = m->next;
			return m;
		}
	return NULL;
}

/* Receive a message from src (or any rank when src < 0) with tag; *msg owned by caller. */
int ibc__boot_recv_msg(struct ibc_boot *b, int src, uint32_t tag, struct boot_msg **msg)
{
	uint64_t deadline = ibc_sock_deadline(b->timeout_ms);
	int rc;

	for (;;) {
		struct boot_msg *m = ibc__boot_take(b, src, tag);

		if (m) {
			*msg = m;
			return 0;
		}
		if (src >= 0 && b->gone && b->gone[src]) {
			ibc_err_set("bootstrap: rank %d (host %s) closed its connection while rank "
				    "%d waited for its %s: it exited or crashed",
				    src, ibc__boot_peer_host(b, src), b->rank, tag_name(tag));
			return -ECONNRESET;
		}
		if (ibc__boot_aborted(b)) {
			ibc_err_set("bootstrap: aborted (another rank died)");
			return -ECANCELED;
		}
		if (!ibc_sock_remaining_ms(deadline)) {
			if (src >= 0)
				ibc_err_set("bootstrap: timed out after %.1f s: rank %d waited for "
					    "the %s from rank %d (host %s)",
					    b->timeout_ms / 1e3, b->rank, tag_name(tag), src,
					    ibc__boot_peer_host(b, src));
			else
				ibc_err_set("bootstrap: timed out after %.1f s waiting for %s",
					    b->timeout_ms / 1e3, tag_name(tag));
			return -ETIMEDOUT;
		}
		rc = ibc__boot_pump(b, IBC_MIN(ibc_sock_remaining_ms(deadline), BOOT_SLICE_MS),
				    deadline, NULL);
		if (rc) {
			ibc_err_set("bootstrap: receive failed: %s", strerror(-rc));
			return rc;
		}
	}
}

int ibc_boot_recv(struct ibc_boot *b, int peer, uint32_t tag, void *data, size_t len)
{
	struct boot_msg *m;
	int rc;

	if (peer < 0 || peer >= b->nranks)
		return -EINVAL;
	rc = ibc__boot_recv_msg(b, peer, tag, &m);
	if (rc)
		return rc;
	if (m->len != len) {
		ibc_err_set("bootstrap: %s from rank %d has %zu bytes, expected %zu (do all ranks "
			    "run the same ibcoll version and options?)",
			    tag_name(tag), peer, m->len, len);
		free(m);
		return -EPROTO;
	}
	memcpy(data, m->data, len);
	free(m);
	return 0;
}

/* The address this host uses to reach host:port, 127.0.0.1 when there is no route. */
static void route_addr(const char *host, int port, char *buf, size_t len)
{
	if (ibc_sock_route_addr(host, port, buf, len))
		snprintf(buf, len, "127.0.0.1");
}

static void compute_locality(struct ibc_boot *b)
{
	int i, j;

	b->local_rank = 0;
	b->local_size = 0;
	b->nnodes = 0;
	for (i = 0; i < b->nranks; i++) {
		bool first = true;

		if (strcmp(b->peers[i].host, b->peers[b->rank].host) == 0) {
			if (i < b->rank)
				b->local_rank++;
			b->local_size++;
		}
		for (j = 0; j < i && first; j++)
			if (strcmp(b->peers[i].host, b->peers[j].host) == 0)
				first = false;
		if (first)
			b->nnodes++;
	}
}

static int boot_new(const struct ibc_boot_opts *o, struct ibc_boot **out)
{
	struct ibc_boot *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->rank = o->rank;
	b->nranks = o->nranks;
	b->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
	b->abort_flag = o->abort_flag;
	b->listen_fd = -1;
	b->gone = calloc((size_t)IBC_MAX(b->nranks, 1), sizeof(bool)); /* PMIx: size unknown yet */
	if (!b->gone) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

/* A job of one rank: no sockets, the table is this rank alone. */
static int boot_single(struct ibc_boot *b, const char *job)
{
	b->peers = calloc(1, sizeof(*b->peers));
	if (!b->peers)
		return -ENOMEM;
	snprintf(b->local_addr, sizeof(b->local_addr), "127.0.0.1");
	ibc__boot_fill_self(b, &b->peers[0]);
	snprintf(b->job_id, sizeof(b->job_id), "%s", job);
	return 0;
}

/* Rank 0's listener: the one the launcher bound (root_fd >= 0), or one on the root address. */
static int boot_listen_root(struct ibc_boot *b, int root_fd)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	if (root_fd >= 0) {
		b->listen_fd = root_fd;
		return 0;
	}
	rc = ibc_sock_resolve(b->root_host, b->root_port, &ss, &sl);
	if (!rc)
		rc = ibc_sock_listen((struct sockaddr *)&ss, sl, IBC_SOCK_REUSEADDR, 1024,
				     &b->listen_fd);
	if (rc == -EADDRINUSE)
		ibc_err_set("bootstrap: rank 0 cannot listen on %s:%d: the port is in use by "
			    "another job or program: give each job its own IBCOLL_ROOT port",
			    b->root_host, b->root_port);
	else if (rc)
		ibc_err_set("bootstrap: rank 0 cannot listen on %s:%d: %s (is IBCOLL_ROOT this "
			    "host?)",
			    b->root_host, b->root_port, strerror(-rc));
	return rc;
}

/* Any other rank listens on an ephemeral port of the address that reaches the root. */
static int boot_listen_member(struct ibc_boot *b)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	rc = ibc_sock_resolve(b->local_addr, 0, &ss, &sl);
	if (!rc)
		rc = ibc_sock_listen((struct sockaddr *)&ss, sl, IBC_SOCK_REUSEADDR, 1024,
				     &b->listen_fd);
	if (rc)
		ibc_err_set("bootstrap: rank %d cannot listen on %s: %s", b->rank, b->local_addr,
			    strerror(-rc));
	return rc;
}

/* A job of several ranks: listen, then meet the others at the root. */
static int boot_join(struct ibc_boot *b, const struct ibc_boot_opts *o, const char *job)
{
	int rc;

	if (!o->root || ibc_sock_split_hostport(o->root, b->root_host, sizeof(b->root_host),
						&b->root_port)) {
		ibc_err_set("bootstrap: rendezvous address '%s' is not host:port (IBCOLL_ROOT)",
			    o->root ? o->root : "");
		return -EINVAL;
	}
	route_addr(b->root_host, b->root_port, b->local_addr, sizeof(b->local_addr));
	if (b->rank == 0) {
		rc = boot_listen_root(b, o->root_fd);
		return rc ? rc : ibc__boot_root_rendezvous(b, job);
	}
	rc = boot_listen_member(b);
	return rc ? rc : ibc__boot_member_rendezvous(b);
}

/* The ranks meet through the launcher's PMIx server: its rank and size (checked against the
 * launcher's variables), a listener on this host's address, one exchange. */
static int boot_pmix(struct ibc_boot *b, const struct ibc_boot_opts *o, const char *job)
{
	char ifname[32];
	bool *gone;
	int rc, rank, nranks;

	rc = ibc__boot_pmix_init(b, &rank, &nranks);
	if (rc)
		return rc;
	b->pmix = true;
	if ((o->nranks > 0 && nranks != o->nranks) || rank != o->rank || rank < 0 ||
	    rank >= nranks) {
		ibc_err_set("bootstrap: PMIx says rank %d of %d, the launcher's variables say rank "
			    "%d of %d: the environment is another job's",
			    rank, nranks, o->rank, o->nranks);
		return -EINVAL;
	}
	b->rank = rank;
	b->nranks = nranks;
	gone = realloc(b->gone, (size_t)nranks * sizeof(*gone));
	if (!gone)
		return -ENOMEM;
	memset(gone, 0, (size_t)nranks * sizeof(*gone));
	b->gone = gone;
	if (nranks == 1)
		return boot_single(b, job);
	if (ibc_sock_pick_ip(getenv("IBCOLL_BOOT_IF"), b->local_addr, sizeof(b->local_addr),
			     ifname, sizeof(ifname))) {
		ibc_err_set("bootstrap: rank %d has no IPv4 address to listen on%s%s (set "
			    "IBCOLL_BOOT_IF to an interface that is up)",
			    rank, getenv("IBCOLL_BOOT_IF") ? " among IBCOLL_BOOT_IF=" : "",
			    getenv("IBCOLL_BOOT_IF") ? getenv("IBCOLL_BOOT_IF") : "");
		return -EADDRNOTAVAIL;
	}
	rc = boot_listen_member(b);
	if (rc)
		return rc;
	if (rank == 0 && !b->key.len) { /* rank 0 makes the job key, PMIx hands it out */
		randombytes_buf(b->key.bytes, IBC_AUTH_KEY_GEN);
		b->key.len = IBC_AUTH_KEY_GEN;
	}
	snprintf(b->job_id, sizeof(b->job_id), "%s", job);
	return ibc__boot_pmix_exchange(b);
}

int ibc_boot_init(const struct ibc_boot_opts *o, struct ibc_boot **out)
{
	struct ibc_boot *b;
	char job[40];
	int rc;

	rc = boot_new(o, &b);
	if (rc)
		return rc;
	rc = ibc__boot_key(o, o->root, &b->key);
	if (rc) {
		ibc_boot_fini(b);
		return rc;
	}
	if (o->job_id && *o->job_id)
		snprintf(job, sizeof(job), "%s", o->job_id);
	else
		ibc_new_id(job, sizeof(job));
	b->wireup = o->wireup;
	if (o->wireup == IBC_WIREUP_PMIX)
		rc = boot_pmix(b, o, job);
	else if (b->nranks == 1)
		rc = boot_single(b, job);
	else
		rc = boot_join(b, o, job);
	if (!rc && b->nranks == 1 && b->wireup != IBC_WIREUP_PMIX)
		b->wireup = IBC_WIREUP_SINGLE;
	else if (!rc && b->wireup == IBC_WIREUP_SINGLE)
		b->wireup = IBC_WIREUP_ROOT;
	if (rc) {
		ibc_boot_fini(b);
		return rc;
	}
	compute_locality(b);
	*out = b;
	return 0;
}

void ibc_boot_fini(struct ibc_boot *b)
{
	struct boot_msg *m;

	if (!b)
		return;
	while (b->nsocks)
		drop_sock(b, b->nsocks - 1);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	while ((m = b->stash)) {
		b->stash = m->next;
		free(m);
	}
	free(b->socks);
	free(b->peers);
	free(b->gone);
	if (b->pmix)
		ibc__boot_pmix_fini(b);
	sodium_memzero(&b->key, sizeof(b->key));
	free(b);
}

int ibc_boot_rank(const struct ibc_boot *b)
{
	return b->rank;
}
int ibc_boot_nranks(const struct ibc_boot *b)
{
	return b->nranks;
}
int ibc_boot_local_rank(const struct ibc_boot *b)
{
	return b->local_rank;
}
int ibc_boot_local_size(const struct ibc_boot *b)
{
	return b->local_size;
}
int ibc_boot_nnodes(const struct ibc_boot *b)
{
	return b->nnodes;
}
const char *ibc_boot_host(const struct ibc_boot *b, int rank)
{
	return rank >= 0 && rank < b->nranks ? b->peers[rank].host : "?";
}
const char *ibc_boot_job_id(const struct ibc_boot *b)
{
	return b->job_id;
}
const char *ibc_boot_local_addr(const struct ibc_boot *b)
{
	return b->local_addr;
}
bool ibc_boot_pmix_built(void)
{
	return ibc__boot_pmix_built();
}
int ibc_boot_wireup(const struct ibc_boot *b)
{
	return b->wireup;
}
int ibc_boot_pid(const struct ibc_boot *b, int rank)
{
	return rank >= 0 && rank < b->nranks ? b->peers[rank].pid : -1;
}
const unsigned char *ibc_boot_job_key(const struct ibc_boot *b, size_t *len)
{
	*len = b->key.len;
	return b->key.bytes;
}

uint32_t ibc__boot_seq(struct ibc_boot *b)
{
	return b->coll_seq++ & 0xffffff;
}
