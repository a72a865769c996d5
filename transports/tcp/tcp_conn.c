/* SPDX-License-Identifier: MIT */
/*
 * tcp_conn.c - the tcp transport's connections (tcp_int.h): listen, non-blocking accept and
 * connect, the hello/ack handshake that checks the listener's nonce, connection errors and
 * teardown. The wire format is described at the top of tcp.c.
 */
#include "tcp_int.h"
#include "ibc_id.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* connection errors */

/* Break a connection: the first error sticks, every request on it fails with it. */
int tcp__conn_fail(struct tcp_conn *c, int rc, const char *fmt, ...)
{
	char what[TCP_ERR_LEN / 2];
	va_list ap;

	if (c->err)
		return c->err;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->errmsg, sizeof(c->errmsg), "%s (%s%s%s): %s", tcp_devname(c),
		 c->is_send ? "send" : "recv", c->local[0] ? " " : "", c->local, what);
	c->err = rc;
	c->ctx->epoch++;
	return rc;
}

int tcp__conn_report(struct tcp_conn *c)
{
	return tcp_err(c->ctx, c->err, "%s", c->errmsg);
}

/* err: a positive errno from a socket call, 0 for end of file. */
int tcp__conn_io_fail(struct tcp_conn *c, int err, const char *op)
{
	if (err == 0 || err == ECONNRESET || err == EPIPE)
		return tcp__conn_fail(c, -ECONNRESET, "connection closed by peer %s%s", c->peer,
				      c->state == TCP_CONN_UP ? "" : " during the handshake");
	return tcp__conn_fail(c, -err, "%s %s failed: %s", op, c->peer, strerror(err));
}

/* ---------------------------------------------------------------------------------------- */
/* connections: creation and teardown */

static struct tcp_conn *tcp_conn_new(struct ibc_tp_ctx *ctx, int dev, bool is_send)
{
	struct tcp_conn *c;

	if (is_send) {
		struct ibc_tp_send *s = calloc(1, sizeof(*s));

		c = s ? &s->c : NULL;
	} else {
		struct ibc_tp_recv *r = calloc(1, sizeof(*r));

		c = r ? &r->c : NULL;
	}
	if (!c)
		return NULL;
	tcp_list_init(&c->link);
	c->ctx = ctx;
	c->dev = dev;
	c->is_send = is_send;
	c->fd = -1;
	return c;
}

/* Unlink and free; 0 or the error of close(). */
int tcp__conn_free(struct tcp_conn *c)
{
	int rc = 0;

	tcp_list_del(&c->link);
	if (c->fd >= 0 && close(c->fd) != 0)
		rc = tcp_err(c->ctx, -errno, "%s: close of connection to %s failed: %s",
			     tcp_devname(c), c->peer, strerror(errno));
	free(c->dbuf);
	/* c is the first member of ibc_tp_send / ibc_tp_recv: this frees the allocation. */
	free(c);
	return rc;
}

static void tcp_hello_fill(struct tcp_hello *h, uint16_t kind, uint64_t nonce)
{
	h->magic = htonl(TCP_MAGIC);
	h->version = htons(TCP_VERSION);
	h->kind = htons(kind);
	h->nonce = nonce; /* opaque bytes, echoed as they came */
}

int tcp__decode_hello(const void *buf, size_t len, uint16_t kind, uint64_t nonce, uint16_t *version)
{
	struct tcp_hello h;

	*version = 0;
	if (len != sizeof(h))
		return 1;
	memcpy(&h, buf, sizeof(h));
	if (ntohl(h.magic) != TCP_MAGIC)
		return 1;
	*version = ntohs(h.version);
	if (*version != TCP_VERSION)
		return -EPROTONOSUPPORT;
	if (ntohs(h.kind) != kind || h.nonce != nonce)
		return -EPROTO;
	return 0;
}

/* Check a received hello; 0 or -EPROTO (with the connection failed), 1 = not ibcoll at all. */
static int tcp_hello_check(struct tcp_conn *c, uint16_t kind)
{
	uint16_t version;
	int rc = tcp__decode_hello(&c->hello, sizeof(c->hello), kind, c->nonce, &version);

	if (rc == -EPROTONOSUPPORT)
		return tcp__conn_fail(c, -EPROTO,
				      "peer %s speaks tcp transport protocol %u, this side %u: "
				      "run the same ibcoll version everywhere",
				      c->peer, version, TCP_VERSION);
	if (rc == -EPROTO)
		return tcp__conn_fail(c, -EPROTO,
				      "peer %s answered for another listener (stale handle or "
				      "reused port?)",
				      c->peer);
	return rc;
}

/* Move the handshake buffer; 0 when complete, -EAGAIN, or an error (connection failed). */
static int tcp_hello_io(struct tcp_conn *c, bool out)
{
	int rc;

	if (out)
		rc = ibc_sock_send_nb(c->fd, &c->hello, sizeof(c->hello), &c->hello_off);
	else
		rc = ibc_sock_recv_nb(c->fd, &c->hello, sizeof(c->hello), &c->hello_off);
	if (rc == -EAGAIN)
		return rc;
	if (rc)
		return tcp__conn_io_fail(c, -rc, out ? "handshake send to" : "handshake recv from");
	c->hello_off = 0;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* listen / accept */

int tcp__listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **out)
{
	struct ibc_tp_listener *l;
	struct tcp_handle h;
	struct sockaddr_storage ss;
	socklen_t len;
	const struct tcp_dev *d;
	int rc;

	*out = NULL;
	rc = tcp_check_dev(ctx, dev);
	if (rc)
		return rc;
	d = &ctx->devs[dev];
	l = calloc(1, sizeof(*l));
	if (!l)
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	tcp_list_init(&l->link);
	l->ctx = ctx;
	l->dev = dev;
	/* Buffer sizes before listen: accepted sockets inherit them, window scaling included. */
	rc = ibc_sock_open(d->addr.ss_family, IBC_SOCK_NONBLOCK, ctx->sockbuf, &l->fd);
	if (rc) {
		rc = tcp_err(ctx, rc, "%s: socket failed: %s", d->name, strerror(-rc));
		goto free_l;
	}
	rc = ibc_sock_bind_listen(l->fd, (const struct sockaddr *)&d->addr, d->addrlen, 128);
	if (!rc)
		rc = ibc_sock_local(l->fd, &ss, &len);
	if (rc) {
		ibc_sock_fmt_addr((const struct sockaddr *)&d->addr, l->local, sizeof(l->local));
		rc = tcp_err(ctx, rc, "%s: cannot listen on %s: %s", d->name, l->local,
			     strerror(-rc));
		goto close_fd;
	}
	ibc_sock_fmt_addr((struct sockaddr *)&ss, l->local, sizeof(l->local));
	l->nonce = ibc_random_u64();

	memset(&h, 0, sizeof(h));
	h.magic = htonl(TCP_MAGIC);
	h.version = htons(TCP_VERSION);
	h.nonce = l->nonce;
	snprintf(h.ifname, sizeof(h.ifname), "%s", d->ifname);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;

		h.family = htons(4);
		h.port = in->sin_port;
		memcpy(h.addr, &in->sin_addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;

		h.family = htons(6);
		h.port = in6->sin6_port;
		h.scope_id = htonl(in6->sin6_scope_id);
		memcpy(h.addr, &in6->sin6_addr, 16);
	}
	memset(handle, 0, IBC_TP_HANDLE_BYTES);
	memcpy(handle, &h, sizeof(h));
	tcp_list_add(&ctx->listeners, &l->link);
	*out = l;
	return 0;

close_fd:
	close(l->fd);
free_l:
	free(l);
	return rc;
}

/* Take the next connection off the backlog; 0, -EAGAIN, or an error. */
static int tcp_accept_start(struct ibc_tp_listener *l)
{
	struct ibc_tp_ctx *ctx = l->ctx;
	struct tcp_conn *c;
	int fd, rc;

	rc = ibc_sock_accept(l->fd, IBC_SOCK_NONBLOCK | IBC_SOCK_NODELAY, &fd);
	if (rc == -EAGAIN)
		return rc;
	if (rc)
		return tcp_err(ctx, rc, "%s: accept on %s failed: %s", ctx->devs[l->dev].name,
			       l->local, strerror(-rc));
	c = tcp_conn_new(ctx, l->dev, false);
	if (!c) {
		close(fd);
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	}
	c->fd = fd;
	c->state = TCP_CONN_HELLO;
	c->nonce = l->nonce;
	ibc_sock_fd_names(fd, c->local, c->peer);
	l->pending = tcp_container_of(c, struct ibc_tp_recv, c);
	l->pending_deadline = ibc_sock_deadline(IBC_AUTH_DEADLINE_MS);
	return 0;
}

/* The pending connection is not one of the job's (a stray, a stranger without the key, one
 * that stays silent): log it, drop it, keep listening. -EAGAIN. */
static int tcp_accept_drop(struct ibc_tp_listener *l, const char *why)
{
	struct tcp_conn *c = &l->pending->c;

	ibc_log("tcp: %s: dropped a connection from %s: %s", l->local, c->peer, why);
	tcp__conn_free(c);
	l->pending = NULL;
	return -EAGAIN;
}

/* Step the challenge-response; 0 when both sides proved the key, -EAGAIN, or an error with
 * the connection failed (*why: the text). */
static int tcp_auth_step(struct tcp_conn *c, const char **why)
{
	int rc = ibc_auth_step(&c->auth, c->fd);

	*why = NULL;
	if (rc == -EAGAIN || rc == 0)
		return rc;
	*why = ibc_auth_strerror(&c->auth, rc);
	if (rc == -ECONNRESET)
		return tcp__conn_io_fail(c, 0, "handshake with");
	return tcp__conn_fail(c, rc, "handshake with %s failed: %s", c->peer, *why);
}

/* Drive the pending accepted connection's handshake; 0 when up, -EAGAIN, or an error. */
static int tcp_accept_step(struct ibc_tp_listener *l)
{
	struct tcp_conn *c = &l->pending->c;
	const char *why;
	int rc;

	if (!ibc_sock_remaining_ms(l->pending_deadline))
		return tcp_accept_drop(l, "no handshake within 2 s (not an ibcoll rank?)");
	if (c->state == TCP_CONN_HELLO) {
		rc = tcp_hello_io(c, false);
		if (!rc)
			rc = tcp_hello_check(c, TCP_HELLO);
		if (rc == 1) /* not an ibcoll peer (a port scan?) */
			return tcp_accept_drop(l, "not an ibcoll tcp hello");
		if (rc)
			return rc == -EAGAIN ? rc : tcp_accept_drop(l, c->errmsg);
		tcp_hello_fill(&c->hello, TCP_HELLO_ACK, c->nonce);
		c->state = TCP_CONN_ACK;
	}
	if (c->state == TCP_CONN_ACK) {
		rc = tcp_hello_io(c, true);
		if (rc)
			return rc == -EAGAIN ? rc : tcp_accept_drop(l, c->errmsg);
		ibc_auth_start(&c->auth, true, c->ctx->key.bytes, c->ctx->key.len,
			       TCP_AUTH_CONTEXT);
		c->state = TCP_CONN_AUTH;
	}
	rc = tcp_auth_step(c, &why);
	if (rc == -EAGAIN)
		return rc;
	if (rc)
		return tcp_accept_drop(l, why);
	c->state = TCP_CONN_UP;
	return 0;
}

int tcp__accept(struct ibc_tp_listener *l, struct ibc_tp_recv **out)
{
	struct ibc_tp_ctx *ctx = l->ctx;
	struct tcp_conn *c;
	int rc;

	*out = NULL;
	l->accepting = true;
	do {
		if (!l->pending) {
			rc = tcp_accept_start(l);
			if (rc)
				break;
		}
		rc = tcp_accept_step(l);
	} while (rc == -EAGAIN && !l->pending); /* a stray was dropped: try the next one */
	if (rc == -EAGAIN) {
		if (!tcp_aborted(ctx))
			return -EAGAIN;
		rc = tcp_err(ctx, -ECANCELED, "%s: accept on %s cancelled: another rank failed",
			     ctx->devs[l->dev].name, l->local);
	}
	l->accepting = false;
	if (rc) {
		if (l->pending) {
			c = &l->pending->c;
			if (c->err)
				tcp__conn_report(c);
			tcp__conn_free(c);
			l->pending = NULL;
		}
		return rc;
	}
	c = &l->pending->c;
	l->pending = NULL;
	tcp_list_add(&ctx->conns, &c->link);
	ctx->epoch++;
	*out = tcp_container_of(c, struct ibc_tp_recv, c);
	return 0;
}

int tcp__close_listen(struct ibc_tp_listener *l)
{
	int rc = 0;

	if (!l)
		return 0;
	tcp_list_del(&l->link);
	if (l->pending)
		rc = tcp__conn_free(&l->pending->c);
	if (close(l->fd) != 0 && !rc)
		rc = tcp_err(l->ctx, -errno, "tcp: close of listener %s failed: %s", l->local,
			     strerror(errno));
	free(l);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* connect */

int tcp__decode_handle(const void *handle, struct sockaddr_storage *ss, socklen_t *len,
		       uint16_t *version, uint16_t *family)
{
	struct tcp_handle h;

	memcpy(&h, handle, sizeof(h));
	memset(ss, 0, sizeof(*ss));
	*version = ntohs(h.version);
	*family = ntohs(h.family);
	if (ntohl(h.magic) != TCP_MAGIC)
		return -EINVAL;
	if (*version != TCP_VERSION)
		return -EPROTONOSUPPORT;
	if (*family == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;

		in->sin_family = AF_INET;
		in->sin_port = h.port;
		memcpy(&in->sin_addr, h.addr, 4);
		*len = sizeof(*in);
	} else if (*family == 6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = h.port;
		in6->sin6_scope_id = ntohl(h.scope_id);
		memcpy(&in6->sin6_addr, h.addr, 16);
		*len = sizeof(*in6);
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

static int tcp_handle_addr(struct ibc_tp_ctx *ctx, const void *handle, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	uint16_t version, family;
	int rc = tcp__decode_handle(handle, ss, len, &version, &family);

	if (rc == -EINVAL)
		return tcp_err(ctx, -EINVAL,
			       "tcp: connect with a handle that is not a tcp "
			       "listener's (another transport's, or corrupted)");
	if (rc == -EPROTONOSUPPORT)
		return tcp_err(ctx, -EPROTO,
			       "tcp: listener speaks tcp transport protocol %u, this side %u: run "
			       "the same ibcoll version everywhere",
			       version, TCP_VERSION);
	if (rc)
		return tcp_err(ctx, -EINVAL, "tcp: handle has unknown address family %u", family);
	return 0;
}

static struct tcp_conn *tcp_find_connecting(struct ibc_tp_ctx *ctx, int dev, const void *handle)
{
	struct tcp_link *p;

	for (p = ctx->conns.next; p != &ctx->conns; p = p->next) {
		struct tcp_conn *c = tcp_container_of(p, struct tcp_conn, link);

		if (c->is_send && c->state != TCP_CONN_UP && c->dev == dev &&
		    memcmp(c->key, handle, IBC_TP_HANDLE_BYTES) == 0)
			return c;
	}
	return NULL;
}

/* Socket + non-blocking connect(); the connection joins ctx->conns in state CONNECTING. */
static int tcp_connect_start(struct ibc_tp_ctx *ctx, int dev, const void *handle,
			     struct tcp_conn **out)
{
	const struct tcp_dev *d = &ctx->devs[dev];
	struct sockaddr_storage ss;
	struct tcp_handle h;
	struct tcp_conn *c;
	socklen_t len = 0;
	unsigned flags;
	int rc, one = 1;

	rc = tcp_handle_addr(ctx, handle, &ss, &len);
	if (rc)
		return rc;
	c = tcp_conn_new(ctx, dev, true);
	if (!c)
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	memcpy(c->key, handle, IBC_TP_HANDLE_BYTES);
	memcpy(&h, handle, sizeof(h));
	c->nonce = h.nonce;
	ibc_sock_fmt_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	flags = IBC_SOCK_NONBLOCK | IBC_SOCK_NODELAY;
	rc = ibc_sock_open(ss.ss_family, flags, ctx->sockbuf, &c->fd);
	if (rc) {
		rc = tcp_err(ctx, rc, "%s: socket failed: %s", d->name, strerror(-rc));
		goto free_c;
	}
	/* Leave through the chosen interface (multi-rail); loopback addresses cannot reach out.
	 * The port is picked at connect time, so the ephemeral range is shared per destination. */
	(void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (!d->loopback && d->addr.ss_family == ss.ss_family &&
	    bind(c->fd, (const struct sockaddr *)&d->addr, d->addrlen) != 0)
		IBC_DBG("tcp: %s: bind before connect failed (%s), letting routing choose", d->name,
			strerror(errno));
	rc = ibc_sock_connect(c->fd, (struct sockaddr *)&ss, len);
	if (rc && rc != -EINPROGRESS) {
		rc = tcp_err(ctx, rc, "%s: connect to %s failed: %s", d->name, c->peer,
			     strerror(-rc));
		goto free_c;
	}
	c->state = TCP_CONN_CONNECTING;
	tcp_list_add(&ctx->conns, &c->link);
	*out = c;
	return 0;

free_c:
	tcp__conn_free(c);
	return rc;
}

/* Drive a pending connect; 0 when up, -EAGAIN, or an error (connection failed). */
static int tcp_connect_step(struct tcp_conn *c)
{
	const char *why;
	int rc;

	if (c->state == TCP_CONN_CONNECTING) {
		rc = ibc_sock_connect_done(c->fd);
		if (rc == -EAGAIN)
			return rc;
		if (rc)
			return tcp__conn_fail(c, rc, "connect to %s failed: %s", c->peer,
					      strerror(-rc));
		ibc_sock_fd_names(c->fd, c->local, NULL);
		tcp_hello_fill(&c->hello, TCP_HELLO, c->nonce);
		c->state = TCP_CONN_HELLO;
	}
	if (c->state == TCP_CONN_HELLO) {
		rc = tcp_hello_io(c, true);
		if (rc)
			return rc;
		c->state = TCP_CONN_ACK;
	}
	if (c->state == TCP_CONN_ACK) {
		rc = tcp_hello_io(c, false);
		if (rc)
			return rc;
		rc = tcp_hello_check(c, TCP_HELLO_ACK);
		if (rc == 1)
			return tcp__conn_fail(c, -EPROTO, "%s is not an ibcoll tcp listener",
					      c->peer);
		if (rc)
			return rc;
		ibc_auth_start(&c->auth, false, c->ctx->key.bytes, c->ctx->key.len,
			       TCP_AUTH_CONTEXT);
		c->state = TCP_CONN_AUTH;
	}
	rc = tcp_auth_step(c, &why);
	if (rc)
		return rc;
	c->state = TCP_CONN_UP;
	return 0;
}

int tcp__connect(struct ibc_tp_ctx *ctx, int dev, const void *handle, struct ibc_tp_send **out)
{
	struct tcp_conn *c;
	int rc;

	*out = NULL;
	rc = tcp_check_dev(ctx, dev);
	if (rc)
		return rc;
	c = tcp_find_connecting(ctx, dev, handle);
	if (!c) {
		rc = tcp_connect_start(ctx, dev, handle, &c);
		if (rc)
			return rc;
	}
	rc = tcp_connect_step(c);
	if (rc == -EAGAIN) {
		if (!tcp_aborted(ctx))
			return -EAGAIN;
		tcp__conn_fail(c, -ECANCELED, "connect to %s cancelled: another rank failed",
			       c->peer);
		rc = -ECANCELED;
	}
	if (rc) {
		tcp__conn_report(c);
		tcp__conn_free(c);
		return rc;
	}
	ctx->epoch++;
	*out = tcp_container_of(c, struct ibc_tp_send, c);
	return 0;
}

int tcp__close_send(struct ibc_tp_send *s)
{
	return s ? tcp__conn_free(&s->c) : 0;
}

int tcp__close_recv(struct ibc_tp_recv *r)
{
	return r ? tcp__conn_free(&r->c) : 0;
}
