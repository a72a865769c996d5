/* SPDX-License-Identifier: MIT */
/*
 * bootstrap.c - the rendezvous and the out-of-band messages built on it (bootstrap.h): rank 0
 * gathers every rank's hello and sends back the table, then point-to-point messages by (rank,
 * tag) and gather/bcast/allgather/barrier on top. Sockets through common/ibc_sock.h; launcher
 * detection is in bootstrap_env.c.
 */
#include "bootstrap.h"
#include "boot_wire.h"
#include "ibc_common.h"
#include "ibc_id.h"
#include "ibc_sock.h"

#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOOT_SLICE_MS 100

enum {
	TAG_HELLO = 1u << 24,
	TAG_TABLE = 2u << 24,
	TAG_ALLGATHER = 3u << 24,
	TAG_GATHER = 4u << 24,
	TAG_BCAST = 5u << 24,
	TAG_SCATTER = 6u << 24,
};

struct boot_sock {
	int fd;
	int src; /* rank at the other end, -1 until its first message */
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
	bool *gone; /* owned: rank closed its connection */
	uint32_t coll_seq;
	int local_rank, local_size, nnodes;
	char local_addr[64];
	char job_id[40];
	char root_host[256];
	int root_port;
};

static const char *tag_name(uint32_t tag)
{
	switch (tag & 0xff000000u) {
	case TAG_HELLO: return "rendezvous hello";
	case TAG_TABLE: return "rendezvous table";
	case TAG_ALLGATHER: return "allgather";
	case TAG_GATHER: return "gather";
	case TAG_BCAST: return "broadcast";
	case TAG_SCATTER: return "scatter";
	default: return "point-to-point message";
	}
}

/* ---------------------------------------------------------------- sockets */

static bool aborted(const struct ibc_boot *b)
{
	return b->abort_flag && *b->abort_flag;
}

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
	b->socks[b->nsocks].fd = fd;
	b->socks[b->nsocks].src = src;
	b->nsocks++;
	return 0;
}

static void drop_sock(struct ibc_boot *b, int i)
{
	if (b->socks[i].src >= 0 && b->gone)
		b->gone[b->socks[i].src] = true;
	close(b->socks[i].fd);
	b->socks[i] = b->socks[--b->nsocks];
}

/* Connect to host:port, retrying while the listener is not up yet. */
static int connect_to(struct ibc_boot *b, const char *host, int port, uint64_t deadline, int *out)
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
		if (rc == 0) {
			*out = fd;
			return 0;
		}
		close(fd);
		if (rc != -ECONNREFUSED && rc != -ETIMEDOUT && rc != -EHOSTUNREACH &&
		    rc != -ENETUNREACH && rc != -EAGAIN)
			return rc;
		if (aborted(b))
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
		rc = connect_to(b, b->root_host, b->root_port, deadline, fd);
	else if (b->peers)
		rc = connect_to(b, b->peers[peer].addr, b->peers[peer].port, deadline, fd);
	else
		rc = -ENOTCONN;
	if (rc)
		return rc;
	rc = add_sock(b, *fd, peer);
	if (rc)
		close(*fd);
	return rc;
}

static const char *peer_host(const struct ibc_boot *b, int peer)
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
	rc = sock_for(b, peer, deadline, &fd);
	if (!rc)
		rc = ibc_sock_send_full(fd, &h, sizeof(h), deadline);
	if (!rc && len)
		rc = ibc_sock_send_full(fd, data, len, deadline);
	if (rc == -ETIMEDOUT)
		ibc_err_set("bootstrap: timed out after %.1f s sending %s to rank %d (host %s)",
			    b->timeout_ms / 1e3, tag_name(tag), peer, peer_host(b, peer));
	else if (rc == -ECANCELED)
		ibc_err_set("bootstrap: aborted (another rank died)");
	else if (rc)
		ibc_err_set("bootstrap: cannot send %s to rank %d (host %s): %s", tag_name(tag),
			    peer, peer_host(b, peer), strerror(-rc));
	return rc;
}

/* Read one message from socket i and stash it. */
static int pump_sock(struct ibc_boot *b, int i, uint64_t deadline)
{
	struct boot_hdr h;
	struct boot_msg *m, **tail;
	unsigned char raw[sizeof(h)];
	int rc = ibc_sock_recv_full(b->socks[i].fd, raw, sizeof(raw), deadline);

	if (rc == -ECONNRESET || rc == -EPIPE) {
		drop_sock(b, i);
		return 0;
	}
	if (rc)
		return rc;
	if (ibc__boot_decode_hdr(raw, sizeof(raw), b->nranks, &h)) {
		ibc_err_set("bootstrap: garbage on a connection (is another program using the "
			    "port?)");
		drop_sock(b, i);
		return 0;
	}
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

/* A connection waits on the listener: take it (a failed accept is left for the next poll). */
static int accept_one(struct ibc_boot *b)
{
	int fd, rc;

	if (ibc_sock_accept(b->listen_fd, IBC_SOCK_NODELAY, &fd))
		return 0;
	rc = add_sock(b, fd, -1);
	if (rc)
		close(fd);
	return rc;
}

/* Wait (one slice) for incoming connections or messages. */
static int pump(struct ibc_boot *b, int ms, uint64_t deadline)
{
	struct pollfd pf[b->nsocks + 1];
	int n = 0, i, rc;

	if (b->listen_fd >= 0)
		pf[n++] = (struct pollfd){ .fd = b->listen_fd, .events = POLLIN };
	for (i = 0; i < b->nsocks; i++)
		pf[n++] = (struct pollfd){ .fd = b->socks[i].fd, .events = POLLIN };
	rc = poll(pf, (nfds_t)n, ms);
	if (rc <= 0)
		return rc < 0 && errno != EINTR ? -errno : 0;
	i = 0;
	if (b->listen_fd >= 0) {
		if (pf[0].revents & POLLIN) {
			rc = accept_one(b);
			if (rc)
				return rc;
		}
		i = 1;
	}
	/* Socket indices may shift when one is dropped: walk from the end. */
	for (n = n - 1; n >= i; n--) {
		if (!(pf[n].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		rc = pump_sock(b, n - i, deadline);
		if (rc)
			return rc;
	}
	return 0;
}

static struct boot_msg *take(struct ibc_boot *b, int src, uint32_t tag)
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
static int recv_msg(struct ibc_boot *b, int src, uint32_t tag, struct boot_msg **msg)
{
	uint64_t deadline = ibc_sock_deadline(b->timeout_ms);
	int rc;

	for (;;) {
		struct boot_msg *m = take(b, src, tag);

		if (m) {
			*msg = m;
			return 0;
		}
		if (src >= 0 && b->gone && b->gone[src]) {
			ibc_err_set("bootstrap: rank %d (host %s) closed its connection while rank "
				    "%d waited for its %s: it exited or crashed",
				    src, peer_host(b, src), b->rank, tag_name(tag));
			return -ECONNRESET;
		}
		if (aborted(b)) {
			ibc_err_set("bootstrap: aborted (another rank died)");
			return -ECANCELED;
		}
		if (!ibc_sock_remaining_ms(deadline)) {
			if (src >= 0)
				ibc_err_set("bootstrap: timed out after %.1f s: rank %d waited for "
					    "the %s from rank %d (host %s)",
					    b->timeout_ms / 1e3, b->rank, tag_name(tag), src,
					    peer_host(b, src));
			else
				ibc_err_set("bootstrap: timed out after %.1f s waiting for %s",
					    b->timeout_ms / 1e3, tag_name(tag));
			return -ETIMEDOUT;
		}
		rc = pump(b, IBC_MIN(ibc_sock_remaining_ms(deadline), BOOT_SLICE_MS), deadline);
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
	rc = recv_msg(b, peer, tag, &m);
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

/* ---------------------------------------------------------------- rendezvous */

static void fill_self(struct ibc_boot *b, struct boot_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->rank = b->rank;
	p->nranks = b->nranks;
	p->pid = getpid();
	snprintf(p->host, sizeof(p->host), "%s", ibc_hostname());
	snprintf(p->addr, sizeof(p->addr), "%s", b->local_addr);
}

/* Rank 0's bookkeeping while the ranks join. */
struct boot_root {
	struct boot_table_hdr th; /* the outcome, sent to every rank that said hello */
	char *table;		  /* owned: th + the peers, as sent */
	size_t tlen;
	bool *seen;  /* owned, nranks: joined */
	bool *heard; /* owned, nranks: sent a hello, even a bad one */
	int got;     /* ranks joined, rank 0 included */
};

/* One hello: the rank joins, or th.status says why the job cannot start. */
static void root_hello(struct ibc_boot *b, struct boot_root *r, const struct boot_peer *p)
{
	if (p->rank > 0 && p->rank < b->nranks)
		r->heard[p->rank] = true;
	if (p->nranks != b->nranks) {
		r->th.status = -EINVAL;
		snprintf(r->th.msg, sizeof(r->th.msg),
			 "inconsistent job size: rank 0 (host %s) was told %d ranks but "
			 "rank %d (host %s) was told %d: launch every rank with the same size",
			 ibc_hostname(), b->nranks, p->rank, p->host, p->nranks);
	} else if (p->rank <= 0 || p->rank >= b->nranks || r->seen[p->rank]) {
		r->th.status = -EINVAL;
		snprintf(r->th.msg, sizeof(r->th.msg),
			 "rank %d (host %s) joined twice or is out of range (size %d): two "
			 "jobs share IBCOLL_ROOT, or the launcher's rank variables are wrong",
			 p->rank, p->host, b->nranks);
	} else {
		r->seen[p->rank] = true;
		b->peers[p->rank] = *p;
		r->got++;
	}
}

/* Take hellos until every rank joined, one was refused, or the deadline passed (0 in all
 * three cases); -ECANCELED or a receive error end the rendezvous at once. */
static int root_collect(struct ibc_boot *b, struct boot_root *r, uint64_t deadline)
{
	struct boot_peer p;
	int rc;

	while (r->got < b->nranks && !r->th.status) {
		struct boot_msg *m = take(b, -1, TAG_HELLO);

		if (!m) {
			if (aborted(b)) {
				ibc_err_set("bootstrap: aborted (another rank died)");
				return -ECANCELED;
			}
			if (!ibc_sock_remaining_ms(deadline))
				return 0;
			rc = pump(b, IBC_MIN(ibc_sock_remaining_ms(deadline), BOOT_SLICE_MS),
				  deadline);
			if (rc)
				return rc;
			continue;
		}
		if (!ibc__boot_decode_hello(m->data, m->len, &p))
			root_hello(b, r, &p);
		free(m);
	}
	return 0;
}

/* The deadline passed: name the ranks that never joined, here and in th for the others. */
static int root_timeout(struct ibc_boot *b, struct boot_root *r)
{
	char list[256] = "";
	size_t n = 0;
	int i, missing = 0;

	for (i = 0; i < b->nranks; i++) {
		if (r->seen[i])
			continue;
		if (missing++ < 16)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d",
					      missing > 1 ? "," : "", i);
	}
	ibc_err_set("bootstrap: timed out after %.1f s at the rendezvous on %s:%d: %d of %d "
		    "ranks joined; missing rank(s) %s%s (did they start? is IBCOLL_ROOT "
		    "reachable from their hosts?)",
		    b->timeout_ms / 1e3, b->root_host, b->root_port, r->got, b->nranks, list,
		    missing > 16 ? ",..." : "");
	r->th.status = -ETIMEDOUT;
	snprintf(r->th.msg, sizeof(r->th.msg), "%s", ibc_err_get());
	return -ETIMEDOUT;
}

/* Everyone who said hello learns the outcome, also the rank whose hello was refused. */
static void root_send_table(struct ibc_boot *b, struct boot_root *r, const char *job_id)
{
	int i;

	r->th.nranks = b->nranks;
	snprintf(r->th.job_id, sizeof(r->th.job_id), "%s", job_id);
	memcpy(r->table, &r->th, sizeof(r->th));
	memcpy(r->table + sizeof(r->th), b->peers, (size_t)b->nranks * sizeof(struct boot_peer));
	for (i = 1; i < b->nranks; i++)
		if (r->seen[i] || r->heard[i])
			ibc_boot_send(b, i, TAG_TABLE, r->table, r->tlen);
}

static int root_rendezvous(struct ibc_boot *b, const char *job_id)
{
	struct boot_root r = { .got = 1 };
	uint64_t deadline = ibc_sock_deadline(b->timeout_ms);
	int rc = -ENOMEM;

	r.tlen = sizeof(r.th) + (size_t)b->nranks * sizeof(struct boot_peer);
	r.seen = calloc((size_t)b->nranks, sizeof(bool));
	r.heard = calloc((size_t)b->nranks, sizeof(bool));
	if (!r.seen || !r.heard)
		goto out;
	b->peers = calloc((size_t)b->nranks, sizeof(*b->peers));
	r.table = malloc(r.tlen);
	if (!b->peers || !r.table)
		goto out;
	r.seen[0] = true;
	fill_self(b, &b->peers[0]);
	b->peers[0].port = (uint16_t)b->root_port;
	rc = root_collect(b, &r, deadline);
	if (rc)
		goto out;
	if (r.got < b->nranks && !r.th.status)
		rc = root_timeout(b, &r);
	root_send_table(b, &r, job_id);
	if (r.th.status) {
		if (!rc)
			ibc_err_set("bootstrap: %s", r.th.msg);
		rc = r.th.status;
	}
	snprintf(b->job_id, sizeof(b->job_id), "%s", job_id);
out:
	free(r.table);
	free(r.seen);
	free(r.heard);
	return rc;
}

static int member_rendezvous(struct ibc_boot *b)
{
	struct boot_peer self;
	struct boot_table_hdr th;
	struct boot_msg *m = NULL;
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	fill_self(b, &self);
	rc = ibc_sock_local(b->listen_fd, &ss, &sl);
	if (rc)
		return rc;
	ibc_sock_fmt_ip((struct sockaddr *)&ss, self.addr, sizeof(self.addr));
	self.port = (uint16_t)ibc_sock_port((struct sockaddr *)&ss);
	rc = ibc_boot_send(b, 0, TAG_HELLO, &self, sizeof(self));
	if (rc) {
		if (rc == -ETIMEDOUT || rc == -ECONNREFUSED)
			ibc_err_set("bootstrap: rank %d could not reach the rendezvous at %s:%d "
				    "within %.1f s (is rank 0 running? is IBCOLL_ROOT right?)",
				    b->rank, b->root_host, b->root_port, b->timeout_ms / 1e3);
		return rc;
	}
	rc = recv_msg(b, 0, TAG_TABLE, &m);
	if (rc)
		return rc;
	b->peers = malloc((size_t)b->nranks * sizeof(*b->peers));
	if (!b->peers) {
		free(m);
		return -ENOMEM;
	}
	rc = ibc__boot_decode_table(m->data, m->len, b->nranks, &th, b->peers);
	free(m);
	if (rc && th.status)
		ibc_err_set("bootstrap: %s", th.msg);
	else if (rc == -EINVAL)
		ibc_err_set("bootstrap: inconsistent job size: this rank (%d) was told %d ranks, "
			    "rank 0 %d",
			    b->rank, b->nranks, th.nranks);
	if (rc)
		return rc;
	snprintf(b->job_id, sizeof(b->job_id), "%s", th.job_id);
	return 0;
}

/* ---------------------------------------------------------------- decoding (boot_wire.h) */

int ibc__boot_decode_hdr(const void *buf, size_t len, int nranks, struct boot_hdr *h)
{
	if (len != sizeof(*h))
		return -EPROTO;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != BOOT_MAGIC || h->src < 0 || h->src >= nranks || h->len > BOOT_MAX_LEN)
		return -EPROTO;
	return 0;
}

/* The strings of a peer as received: terminated (a sender's are; a stray one's need not be). */
static void peer_terminate(struct boot_peer *p)
{
	p->host[sizeof(p->host) - 1] = '\0';
	p->addr[sizeof(p->addr) - 1] = '\0';
}

int ibc__boot_decode_hello(const void *buf, size_t len, struct boot_peer *p)
{
	if (len != sizeof(*p))
		return -EPROTO;
	memcpy(p, buf, sizeof(*p));
	peer_terminate(p);
	return 0;
}

int ibc__boot_decode_table(const void *buf, size_t len, int nranks, struct boot_table_hdr *th,
			   struct boot_peer *peers)
{
	size_t tlen = sizeof(*th) + (size_t)nranks * sizeof(struct boot_peer);
	int i;

	memset(th, 0, sizeof(*th));
	if (len < sizeof(*th))
		return -EPROTO;
	memcpy(th, buf, sizeof(*th));
	th->job_id[sizeof(th->job_id) - 1] = '\0';
	th->msg[sizeof(th->msg) - 1] = '\0';
	if (th->status) /* rank 0 sends -errno: anything else is not a status */
		return th->status < 0 ? th->status : -EPROTO;
	if (len != tlen || th->nranks != nranks)
		return -EINVAL;
	for (i = 0; peers && i < nranks; i++) {
		memcpy(&peers[i], (const char *)buf + sizeof(*th) + (size_t)i * sizeof(*peers),
		       sizeof(*peers));
		peer_terminate(&peers[i]);
	}
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
	b->gone = calloc((size_t)b->nranks, sizeof(bool));
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
	fill_self(b, &b->peers[0]);
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
	if (rc)
		ibc_err_set("bootstrap: rank 0 cannot listen on %s:%d: %s (is the "
			    "port in use, or is IBCOLL_ROOT not this host?)",
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
		return rc ? rc : root_rendezvous(b, job);
	}
	rc = boot_listen_member(b);
	return rc ? rc : member_rendezvous(b);
}

int ibc_boot_init(const struct ibc_boot_opts *o, struct ibc_boot **out)
{
	struct ibc_boot *b;
	char job[40];
	int rc;

	rc = boot_new(o, &b);
	if (rc)
		return rc;
	if (o->job_id && *o->job_id)
		snprintf(job, sizeof(job), "%s", o->job_id);
	else
		ibc_new_id(job, sizeof(job));
	rc = b->nranks == 1 ? boot_single(b, job) : boot_join(b, o, job);
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
int ibc_boot_pid(const struct ibc_boot *b, int rank)
{
	return rank >= 0 && rank < b->nranks ? b->peers[rank].pid : -1;
}

/* ---------------------------------------------------------------- collectives */

int ibc_boot_gather(struct ibc_boot *b, const void *mine, void *all, size_t len)
{
	uint32_t tag = TAG_GATHER | (b->coll_seq++ & 0xffffff);
	int i, rc;

	if (b->rank != 0)
		return ibc_boot_send(b, 0, tag, mine, len);
	memcpy(all, mine, len);
	for (i = 1; i < b->nranks; i++) {
		rc = ibc_boot_recv(b, i, tag, (char *)all + (size_t)i * len, len);
		if (rc)
			return rc;
	}
	return 0;
}

int ibc_boot_bcast(struct ibc_boot *b, void *data, size_t len)
{
	uint32_t tag = TAG_BCAST | (b->coll_seq++ & 0xffffff);
	int i, rc;

	if (b->rank != 0)
		return ibc_boot_recv(b, 0, tag, data, len);
	for (i = 1; i < b->nranks; i++) {
		rc = ibc_boot_send(b, i, tag, data, len);
		if (rc)
			return rc;
	}
	return 0;
}

int ibc_boot_allgather(struct ibc_boot *b, const void *mine, void *all, size_t len)
{
	int rc = ibc_boot_gather(b, mine, all, len);

	if (rc)
		return rc;
	return ibc_boot_bcast(b, all, len * (size_t)b->nranks);
}

int ibc_boot_barrier(struct ibc_boot *b)
{
	char c = 0, *all = NULL;
	int rc;

	if (b->rank == 0) {
		all = malloc((size_t)b->nranks);
		if (!all)
			return -ENOMEM;
	}
	rc = ibc_boot_gather(b, &c, all, 1);
	if (!rc)
		rc = ibc_boot_bcast(b, &c, 1);
	free(all);
	return rc;
}
