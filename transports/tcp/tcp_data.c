/* SPDX-License-Identifier: MIT */
/*
 * tcp_data.c - the tcp transport's data path (tcp_int.h): memory registration, message framing,
 * post/test with the socket moved as far as it goes without blocking, and epoch/wait, which
 * sleeps in poll() on the connections that have work. The wire format is described at the top
 * of tcp.c.
 */
#include "tcp_int.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdlib.h>
#include <sys/uio.h>

/* ---------------------------------------------------------------------------------------- */
/* memory registration */

int tcp__reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		struct ibc_tp_mr **out)
{
	struct ibc_tp_mr *mr;
	int rc;

	*out = NULL;
	rc = tcp_check_dev(ctx, dev);
	if (rc)
		return rc;
	if (buf->kind != IBC_MEM_HOST)
		return tcp_err(ctx, -ENOTSUP,
			       "tcp: %s cannot register %s memory: sockets move host memory only "
			       "(use --mem host, or the verbs/gdr transport for GPU memory)",
			       ctx->devs[dev].name,
			       buf->kind == IBC_MEM_CUDA     ? "CUDA"
			       : buf->kind == IBC_MEM_DMABUF ? "dma-buf"
							     : "unknown");
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	mr->ctx = ctx;
	mr->addr = (uintptr_t)buf->addr;
	mr->len = buf->len;
	tcp_list_add(&ctx->mrs, &mr->link);
	*out = mr;
	return 0;
}

int tcp__dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr)
{
	if (!mr)
		return 0;
	tcp_list_del(&mr->link);
	free(mr);
	return 0;
}

static int tcp_check_mr(struct tcp_conn *c, const void *data, size_t size,
			const struct ibc_tp_mr *mr)
{
	uintptr_t a = (uintptr_t)data;

	if (size == 0)
		return 0;
	if (!mr)
		return tcp_err(c->ctx, -EINVAL, "%s: %s of %zu bytes without a memory registration",
			       tcp_devname(c), c->is_send ? "post_send" : "post_recv", size);
	if (mr->ctx != c->ctx || a < mr->addr || a - mr->addr > mr->len ||
	    size > mr->len - (a - mr->addr))
		return tcp_err(c->ctx, -EINVAL,
			       "%s: %s buffer %p + %zu lies outside its memory registration "
			       "%p + %zu%s",
			       tcp_devname(c), c->is_send ? "post_send" : "post_recv", data, size,
			       (void *)mr->addr, mr->len,
			       mr->ctx != c->ctx ? " (of another context)" : "");
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* data path */

static struct ibc_tp_req *tcp_slot(struct tcp_conn *c, unsigned i)
{
	return &c->reqs[i % TCP_MAX_REQS];
}

static void tcp_req_done(struct tcp_conn *c, struct ibc_tp_req *r, int err)
{
	r->state = TCP_REQ_DONE;
	r->err = err;
	c->prog++;
	c->ctx->epoch++;
}

/* Write queued messages, header and payload of several at once, until the socket is full. */
static void tcp_send_progress(struct tcp_conn *c)
{
	struct iovec iov[TCP_MAX_IOV];
	struct msghdr msg = {.msg_iov = iov};
	size_t want, left;
	unsigned i;
	ssize_t n;

	while (c->prog != c->tail && !c->err) {
		msg.msg_iovlen = 0;
		want = 0;
		for (i = c->prog; i != c->tail && msg.msg_iovlen + 2 <= TCP_MAX_IOV; i++) {
			struct ibc_tp_req *r = tcp_slot(c, i);
			size_t off = r->off;

			if (off < sizeof(r->hdr)) {
				iov[msg.msg_iovlen].iov_base = (char *)&r->hdr + off;
				iov[msg.msg_iovlen++].iov_len = sizeof(r->hdr) - off;
				want += sizeof(r->hdr) - off;
				off = 0;
			} else {
				off -= sizeof(r->hdr);
			}
			if (r->size > off) {
				iov[msg.msg_iovlen].iov_base = (char *)r->data + off;
				iov[msg.msg_iovlen++].iov_len = r->size - off;
				want += r->size - off;
			}
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tcp__conn_io_fail(c, errno, "send to");
			return;
		}
		for (left = (size_t)n; left;) {
			struct ibc_tp_req *r = tcp_slot(c, c->prog);
			size_t rest = sizeof(r->hdr) + r->size - r->off;

			if (left < rest) {
				r->off += left;
				break;
			}
			r->off += rest;
			left -= rest;
			tcp_req_done(c, r, 0);
		}
		if ((size_t)n < want)
			return; /* the socket is full: the next call would say EAGAIN */
	}
}

/* Read and drop the payload of a refused message; false when the socket has nothing more. */
static bool tcp_recv_discard(struct tcp_conn *c)
{
	ssize_t n;

	if (!c->dbuf) {
		c->dbuf = malloc(TCP_DISCARD_BYTES);
		if (!c->dbuf) {
			tcp__conn_fail(c, -ENOMEM, "out of memory");
			return false;
		}
	}
	n = recv(c->fd, c->dbuf, IBC_MIN(c->discard, (uint64_t)TCP_DISCARD_BYTES), MSG_DONTWAIT);
	if (n > 0) {
		c->discard -= (uint64_t)n;
		return true;
	}
	if (n < 0 && errno == EINTR)
		return true;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		tcp__conn_io_fail(c, n == 0 ? 0 : errno, "recv from");
	return false;
}

int tcp__decode_hdr(const void *buf, size_t len, uint32_t *tag, uint64_t *size)
{
	struct tcp_hdr h;

	if (len != sizeof(h))
		return -EPROTO;
	memcpy(&h, buf, sizeof(h));
	*tag = ntohl(h.tag);
	*size = be64toh(h.size);
	return 0;
}

/* Match the complete header in c->rhdr against the oldest open receive. */
static void tcp_recv_match(struct tcp_conn *c, struct ibc_tp_req *r)
{
	uint32_t tag;
	uint64_t size;

	tcp__decode_hdr(&c->rhdr, sizeof(c->rhdr), &tag, &size);
	c->rhdr_got = 0;
	r->got_tag = tag;
	r->got_size = size;
	if (tag != r->tag || size > r->size) {
		c->discard = size;
		tcp_req_done(c, r, tag != r->tag ? -EPROTO : -EMSGSIZE);
		return;
	}
	r->matched = true;
	r->len = (size_t)size;
	r->off = 0;
}

/* Read headers and payloads into the open receives until the socket is empty. */
static void tcp_recv_progress(struct tcp_conn *c)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	struct ibc_tp_req *r;
	size_t need;
	ssize_t n;

	while (!c->err) {
		if (c->discard) {
			if (!tcp_recv_discard(c))
				return;
			continue;
		}
		r = c->prog != c->tail ? tcp_slot(c, c->prog) : NULL;
		if (r && r->matched && r->off == r->len) {
			tcp_req_done(c, r, 0);
			continue;
		}
		if (!r || !r->matched) {
			if (c->rhdr_got == sizeof(c->rhdr)) {
				if (!r)
					return; /* a header waits for the next post_recv */
				tcp_recv_match(c, r);
				continue;
			}
			/* the next header; its payload goes straight to the buffer after matching
			 */
			iov[0].iov_base = (char *)&c->rhdr + c->rhdr_got;
			iov[0].iov_len = sizeof(c->rhdr) - c->rhdr_got;
			msg.msg_iovlen = 1;
		} else {
			/* payload straight into the caller's buffer, then the next header */
			iov[0].iov_base = (char *)r->data + r->off;
			iov[0].iov_len = r->len - r->off;
			iov[1].iov_base = (char *)&c->rhdr + c->rhdr_got;
			iov[1].iov_len = sizeof(c->rhdr) - c->rhdr_got;
			msg.msg_iovlen = 2;
		}
		n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			tcp__conn_io_fail(c, n == 0 ? 0 : errno, "recv from");
			return;
		}
		if (msg.msg_iovlen == 1) {
			c->rhdr_got += (size_t)n;
			continue;
		}
		need = r->len - r->off;
		r->off += IBC_MIN((size_t)n, need);
		if ((size_t)n > need)
			c->rhdr_got += (size_t)n - need;
	}
}

static void tcp_progress(struct tcp_conn *c)
{
	if (c->is_send)
		tcp_send_progress(c);
	else
		tcp_recv_progress(c);
}

static int tcp_post(struct tcp_conn *c, void *data, size_t size, uint32_t tag,
		    const struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct ibc_tp_req *r;
	int rc;

	*out = NULL;
	if (c->err)
		return tcp__conn_report(c);
	rc = tcp_check_mr(c, data, size, mr);
	if (rc)
		return rc;
	if (c->tail - c->head == TCP_MAX_REQS)
		return -EAGAIN;
	r = tcp_slot(c, c->tail);
	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->data = data;
	r->size = size;
	r->tag = tag;
	r->state = TCP_REQ_PENDING;
	if (c->is_send) {
		r->hdr.tag = htonl(tag);
		r->hdr.size = htobe64((uint64_t)size);
	}
	c->tail++;
	*out = r;
	return 0;
}

int tcp__post_send(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
		   struct ibc_tp_mr *mr, struct ibc_tp_req **req)
{
	int rc = tcp_post(&s->c, (void *)data, size, tag, mr, req);

	if (rc == 0)
		tcp_send_progress(&s->c); /* start now: latency, and the peer may be waiting */
	return rc;
}

int tcp__post_recv(struct ibc_tp_recv *rv, void *data, size_t size, uint32_t tag,
		   struct ibc_tp_mr *mr, struct ibc_tp_req **req)
{
	return tcp_post(&rv->c, data, size, tag, mr, req);
}

/* Release a completed or failed slot; the ring's head moves past released slots. */
static void tcp_req_free(struct tcp_conn *c, struct ibc_tp_req *r)
{
	r->state = TCP_REQ_FREE;
	while (c->head != c->tail && tcp_slot(c, c->head)->state == TCP_REQ_FREE)
		c->head++;
	if ((int)(c->prog - c->head) < 0) /* only on a failed connection */
		c->prog = c->head;
}

static int tcp_req_error(struct tcp_conn *c, const struct ibc_tp_req *r)
{
	if (r->err == -EPROTO)
		return tcp_err(c->ctx, r->err,
			       "%s (recv %s): tag mismatch: expected %u got %u (message of %llu "
			       "bytes from %s dropped)",
			       tcp_devname(c), c->local, r->tag, r->got_tag,
			       (unsigned long long)r->got_size, c->peer);
	return tcp_err(c->ctx, r->err,
		       "%s (recv %s): message of %llu bytes (tag %u) from %s is larger than the "
		       "posted receive of %zu bytes (dropped)",
		       tcp_devname(c), c->local, (unsigned long long)r->got_size, r->got_tag,
		       c->peer, r->size);
}

int tcp__test(struct ibc_tp_req *r, int *done, size_t *size)
{
	struct tcp_conn *c = r->conn;
	int rc = 0;

	*done = 0;
	if (r->state == TCP_REQ_FREE)
		return tcp_err(c->ctx, -EINVAL, "tcp: test of a request that already completed");
	if (r->state == TCP_REQ_PENDING && !c->err)
		tcp_progress(c);
	if (r->state == TCP_REQ_PENDING && !c->err && tcp_aborted(c->ctx))
		tcp__conn_fail(c, -ECANCELED, "cancelled: another rank failed");
	if (r->state == TCP_REQ_DONE) {
		if (r->err)
			rc = tcp_req_error(c, r);
		else if (size)
			*size = c->is_send ? r->size : r->len;
	} else if (c->err) {
		rc = tcp__conn_report(c);
	} else {
		return 0;
	}
	*done = 1;
	tcp_req_free(c, r);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* sleeping: epoch + wait */

uint64_t tcp__epoch(struct ibc_tp_ctx *ctx)
{
	return ctx->epoch;
}

static int tcp_pfd_add(struct ibc_tp_ctx *ctx, size_t *n, int fd, short events)
{
	if (*n == ctx->npfds_cap) {
		size_t cap = ctx->npfds_cap ? 2 * ctx->npfds_cap : 16;
		struct pollfd *p = realloc(ctx->pfds, cap * sizeof(*p));

		if (!p)
			return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
		ctx->pfds = p;
		ctx->npfds_cap = cap;
	}
	ctx->pfds[*n].fd = fd;
	ctx->pfds[*n].events = events;
	ctx->pfds[*n].revents = 0;
	(*n)++;
	return 0;
}

/* What would a connection wait for: 0 nothing, POLLIN/POLLOUT, or -1 = ready right now. */
static int tcp_conn_events(const struct tcp_conn *c)
{
	if (c->state == TCP_CONN_CONNECTING)
		return POLLOUT;
	if (c->state == TCP_CONN_AUTH)
		return ibc_auth_events(&c->auth);
	if (c->state != TCP_CONN_UP)
		return (c->state == TCP_CONN_HELLO) == c->is_send ? POLLOUT : POLLIN;
	if (c->prog == c->tail)
		return 0;
	if (c->err)
		return -1;
	if (c->is_send)
		return POLLOUT;
	if (!c->discard && c->rhdr_got == sizeof(c->rhdr) &&
	    !c->reqs[c->prog % TCP_MAX_REQS].matched)
		return -1;
	return POLLIN;
}

/* A receiver in the middle of a large payload sleeps until much of it is there, not until
 * the next segment: one wakeup per TCP_LOWAT_MAX bytes instead of one per 64 KiB. The kernel
 * caps the value at half the receive buffer, and end of file or an error wake it anyway. */
static void tcp_set_lowat(struct tcp_conn *c)
{
	const struct ibc_tp_req *r = tcp_slot(c, c->prog);
	int want = 1;

	if (c->state == TCP_CONN_UP && !c->discard && c->prog != c->tail && r->matched)
		want = (int)IBC_MIN(r->len - r->off, (size_t)c->ctx->lowat_max);
	if (want < 1)
		want = 1;
	if (want == (c->lowat ? c->lowat : 1))
		return;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) == 0)
		c->lowat = want;
}

/* Fill ctx->pfds; 1 when something is ready without waiting. */
static int tcp_collect(struct ibc_tp_ctx *ctx, size_t *n)
{
	struct tcp_link *p;
	int ev, rc = 0;

	*n = 0;
	for (p = ctx->conns.next; p != &ctx->conns && !rc; p = p->next) {
		struct tcp_conn *c = tcp_container_of(p, struct tcp_conn, link);

		ev = tcp_conn_events(c);
		if (ev < 0)
			return 1;
		if (ev == POLLIN)
			tcp_set_lowat(c);
		if (ev)
			rc = tcp_pfd_add(ctx, n, c->fd, (short)ev);
	}
	for (p = ctx->listeners.next; p != &ctx->listeners && !rc; p = p->next) {
		struct ibc_tp_listener *l = tcp_container_of(p, struct ibc_tp_listener, link);

		if (!l->accepting)
			continue;
		if (l->pending)
			rc = tcp_pfd_add(ctx, n, l->pending->c.fd,
					 (short)tcp_conn_events(&l->pending->c));
		else
			rc = tcp_pfd_add(ctx, n, l->fd, POLLIN);
	}
	return rc;
}

int tcp__wait(struct ibc_tp_ctx *ctx, uint64_t epoch, int timeout_ms)
{
	uint64_t end = ibc_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	int rc, slice;
	size_t n;

	if (timeout_ms == 0) /* the engine disarms: nothing to wait for */
		return 0;
	for (;;) {
		if (ctx->epoch != epoch || tcp_aborted(ctx))
			return 0;
		rc = tcp_collect(ctx, &n);
		if (rc)
			return rc > 0 ? 0 : rc;
		slice = TCP_WAIT_SLICE_MS;
		if (timeout_ms >= 0) {
			uint64_t now = ibc_now_ns();

			if (now >= end)
				return 0;
			slice = (int)IBC_MIN((end - now + 999999) / 1000000, (uint64_t)slice);
		}
		rc = poll(ctx->pfds, (nfds_t)n, slice);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return tcp_err(ctx, -errno, "tcp: poll failed: %s", strerror(errno));
		if (timeout_ms == 0)
			return 0;
	}
}
