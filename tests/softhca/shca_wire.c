/* SPDX-License-Identifier: MIT */
/*
 * shca_wire.c - the progress thread: one per HCA instance. It owns every connection
 * (struct shca_conn), transmits requests from the send queues (requester role), executes the
 * peer's requests against local MRs and answers with ACK/NAK/READ_RESP (responder role),
 * and applies the fault injections (latency, bandwidth cap, link drop, bit flip).
 *
 * Each QP has one outgoing connection (made at RTR, carries its requests and brings back the
 * answers) and accepts incoming connections from its peer's outgoing one. A message is a
 * struct shca_hdr followed by hdr.len payload bytes for SEND/WRITE/READ_RESP. Requests on a
 * connection are executed in order; the responder reads a WRITE's payload straight into the
 * target MR after checking the rkey, bounds and access, and a SEND's into the posted receive.
 */
#include "shca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SHCA_SOCKBUF   (4 << 20)
#define SHCA_RX_BUDGET (16u << 20) /* bytes read from one connection before others get a turn */
#define SHCA_IOV       64

enum shca_role {
	SHCA_CONN_NEW, /* accepted, waiting for HELLO */
	SHCA_CONN_OUT, /* our QP's requests go out here, answers come back */
	SHCA_CONN_IN,  /* the peer's requests come in here, our answers go out */
};

enum shca_rx_state {
	SHCA_RX_HDR,
	SHCA_RX_PAYLOAD,
	SHCA_RX_STALL_RNR, /* request needs a receive WQE and none is posted */
	SHCA_RX_STALL_QP,  /* the target QP is not in RTR yet */
};

enum shca_rx_end {
	SHCA_END_NONE,
	SHCA_END_WRITE,	    /* responder: WRITE / WRITE_IMM payload placed */
	SHCA_END_SEND,	    /* responder: SEND payload scattered */
	SHCA_END_READ_RESP, /* requester: READ data arrived */
	SHCA_END_READ_FAIL, /* requester: READ data discarded, WQE fails LOC_PROT_ERR */
};

struct shca_tx {
	struct shca_tx *next;
	struct shca_hdr hdr;
	size_t hdr_done;
	struct shca_seg seg[SHCA_MAX_SGE];
	int nseg, seg_idx;
	size_t seg_off;
	size_t payload_left;
	uint64_t not_before;
};

struct shca_conn {
	struct shca_conn *next;
	int fd; /* owned; -1 once closed */
	enum shca_role role;
	struct shca_qp *qp; /* borrowed: kept alive by destroy_qp's shca__sync */
	uint64_t gen;	    /* qp->generation when attached */
	uint16_t peer_lid;
	uint32_t peer_qpn;
	int want_out;
	uint32_t ev_mask; /* events registered with epoll */
	int closing;	  /* close once the answers queued are sent */
	int tx_broken;
	/* rx */
	enum shca_rx_state rx_state;
	struct shca_hdr rh;
	size_t rh_got;
	struct shca_seg rseg[SHCA_MAX_SGE]; /* refs held */
	int rnseg, rseg_idx;
	size_t rseg_off;
	size_t rx_left;
	int rx_discard;
	enum shca_rx_end rx_end;
	struct shca_rwqe rwqe; /* peeked receive (SEND / WRITE_IMM) */
	struct ibv_sge rwqe_sge[SHCA_MAX_SGE];
	int have_rwqe;
	uint64_t rnr_next_ns, rnr_start_ns;
	int rnr_tries;
	/* tx */
	struct shca_tx *txq, *txq_tail; /* owned */
};

/* ---------------------------------------------------------------- helpers */

static void shca_segs_put(struct shca_ctx *ctx, struct shca_seg *seg, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (seg[i].mr)
			shca__mr_put(ctx, seg[i].mr);
		seg[i].mr = NULL;
	}
}

static void shca_tx_free(struct shca_ctx *ctx, struct shca_tx *t)
{
	shca_segs_put(ctx, t->seg, t->nseg);
	free(t);
}

/* Listen for what the connection can use now: input unless stalled or closing, output while
 * the socket is full. */
static void shca_conn_update_epoll(struct shca_ctx *ctx, struct shca_conn *c)
{
	struct epoll_event ev = {.data.ptr = c};
	int reading = (c->rx_state == SHCA_RX_HDR || c->rx_state == SHCA_RX_PAYLOAD) && !c->closing;

	ev.events = (reading ? EPOLLIN : 0) | (c->want_out ? EPOLLOUT : 0);
	if (c->fd < 0 || ev.events == c->ev_mask)
		return;
	c->ev_mask = ev.events;
	epoll_ctl(ctx->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct shca_conn *shca_conn_new(struct shca_ctx *ctx, int fd, enum shca_role role)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct shca_conn *c = calloc(1, sizeof(*c));
	int sz = SHCA_SOCKBUF;

	if (!c) {
		close(fd);
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	c->fd = fd;
	c->role = role;
	c->ev_mask = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = ctx->conns;
	ctx->conns = c;
	return c;
}

/* Close now: the fd, the queued answers and the references of a half-done message. The
 * struct itself is freed by shca_conns_reap. */
static void shca_conn_close(struct shca_ctx *ctx, struct shca_conn *c)
{
	struct shca_tx *t;

	if (c->fd < 0)
		return;
	SHCA_DBG("conn fd %d (%s, qp 0x%x): closed", c->fd,
		 c->role == SHCA_CONN_OUT  ? "out"
		 : c->role == SHCA_CONN_IN ? "in"
					   : "new",
		 c->qp ? c->qp->ibqp.qp_num : 0);
	close(c->fd);
	c->fd = -1;
	while ((t = c->txq)) {
		c->txq = t->next;
		shca_tx_free(ctx, t);
	}
	c->txq_tail = NULL;
	shca_segs_put(ctx, c->rseg, c->rnseg);
	c->rnseg = 0;
	if (c->rx_state == SHCA_RX_STALL_RNR && c->qp)
		atomic_store(&c->qp->rnr_waiting, 0);
	c->qp = NULL;
}

static void shca_conns_reap(struct shca_ctx *ctx)
{
	struct shca_conn **pp = &ctx->conns, *c;

	while ((c = *pp)) {
		if (c->fd >= 0) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		free(c);
	}
}

void shca__conns_close_all(struct shca_ctx *ctx)
{
	struct shca_conn *c;

	for (c = ctx->conns; c; c = c->next)
		shca_conn_close(ctx, c);
	shca_conns_reap(ctx);
}

/* The link to the peer is gone: outstanding requests end in RETRY_EXC_ERR. */
static void shca_out_dead(struct shca_conn *c)
{
	struct shca_qp *qp = c->qp;

	if (!qp)
		return;
	pthread_mutex_lock(&qp->lock);
	if (!qp->out_dead)
		SHCA_DBG("qp 0x%x: link to peer lost", qp->ibqp.qp_num);
	qp->out_dead = 1;
	pthread_mutex_unlock(&qp->lock);
}

static void shca_conn_eof(struct shca_ctx *ctx, struct shca_conn *c)
{
	if (c->role == SHCA_CONN_OUT)
		shca_out_dead(c);
	shca_conn_close(ctx, c);
}

static struct shca_tx *shca_tx_alloc(uint8_t type, uint64_t seq)
{
	struct shca_tx *t = calloc(1, sizeof(*t));

	if (t) {
		t->hdr.type = type;
		t->hdr.seq = seq;
	}
	return t;
}

static void shca_tx_queue(struct shca_conn *c, struct shca_tx *t)
{
	if (c->txq_tail)
		c->txq_tail->next = t;
	else
		c->txq = t;
	c->txq_tail = t;
}

/* Queue an ACK (merged into a queued one that has not started) or a NAK. */
static void shca_answer(struct shca_conn *c, uint8_t type, uint64_t seq, enum ibv_wc_status st)
{
	struct shca_tx *t = c->txq_tail;

	if (type == SHCA_MSG_ACK && t && t->hdr.type == SHCA_MSG_ACK && !t->hdr_done) {
		t->hdr.seq = seq;
		return;
	}
	t = shca_tx_alloc(type, seq);
	if (!t) {
		shca__log("out of memory for an answer: dropping the connection");
		c->closing = 1;
		return;
	}
	t->hdr.status = (uint8_t)st;
	shca_tx_queue(c, t);
}

/* Resolve a local SGE into a referenced segment: lkey, PD, bounds and access. */
static int shca_sge_seg(struct shca_ctx *ctx, struct shca_qp *qp, const struct ibv_sge *sge,
			unsigned int need, struct shca_seg *seg)
{
	struct shca_mr *mr = shca__mr_get(ctx, sge->lkey);
	uintptr_t a = (uintptr_t)sge->addr, base;

	if (!mr)
		return -EACCES;
	base = (uintptr_t)mr->ibmr.addr;
	if (mr->pd != (struct shca_pd *)qp->ibqp.pd || a < base ||
	    a + sge->length > base + mr->ibmr.length || a + sge->length < a ||
	    (mr->access & need) != need) {
		shca__mr_put(ctx, mr);
		return -EACCES;
	}
	seg->addr = (void *)a;
	seg->len = sge->length;
	seg->mr = mr;
	return 0;
}

/* Local SGE list -> segments; returns the count or -EACCES (no refs left held). */
static int shca_sges_segs(struct shca_ctx *ctx, struct shca_qp *qp, const struct ibv_sge *sge,
			  int n, unsigned int need, struct shca_seg *seg)
{
	int i, k = 0;

	for (i = 0; i < n; i++) {
		if (!sge[i].length)
			continue;
		if (shca_sge_seg(ctx, qp, &sge[i], need, &seg[k]) < 0) {
			shca_segs_put(ctx, seg, k);
			return -EACCES;
		}
		k++;
	}
	return k;
}

/* Remote address -> referenced segment of a local MR, or -EACCES. */
static int shca_rkey_seg(struct shca_ctx *ctx, struct shca_qp *qp, uint32_t rkey, uint64_t raddr,
			 uint32_t len, unsigned int need, struct shca_seg *seg)
{
	struct shca_mr *mr = shca__mr_get(ctx, rkey);

	if (!mr)
		return -EACCES;
	if (mr->pd != (struct shca_pd *)qp->ibqp.pd || !(mr->access & need) || raddr < mr->iova ||
	    raddr + len > mr->iova + mr->ibmr.length || raddr + len < raddr) {
		shca__mr_put(ctx, mr);
		return -EACCES;
	}
	seg->addr = (uint8_t *)mr->ibmr.addr + (raddr - mr->iova);
	seg->len = len;
	seg->mr = mr;
	return 0;
}

/* ---------------------------------------------------------------- requester: send queue */

/* Complete what the answers so far allow, in order (qp->lock held). */
static void shca_sq_advance(struct shca_qp *qp)
{
	while (qp->sq_tail != qp->sq_next_tx && qp->state != IBV_QPS_ERR) {
		struct shca_swqe *w = &qp->sq[qp->sq_tail % qp->sq_size];

		if (w->stage == SHCA_SWQE_FAILED) {
			shca__sq_complete(qp, w, w->status);
			qp->sq_tail++;
			shca__qp_to_err(qp);
			return;
		}
		if (w->seq > qp->acked_seq)
			return;
		shca__sq_complete(qp, w, IBV_WC_SUCCESS);
		qp->sq_tail++;
	}
}

/* The request w failed at the responder (NAK) or locally: complete it, QP to error. */
static void shca_sq_fail_head(struct shca_qp *qp, uint64_t seq, enum ibv_wc_status st)
{
	struct shca_swqe *w;

	if (seq)
		qp->acked_seq = seq - 1;
	shca_sq_advance(qp);
	if (qp->state == IBV_QPS_ERR || qp->sq_tail == qp->sq_head)
		return;
	w = &qp->sq[qp->sq_tail % qp->sq_size];
	shca__sq_complete(qp, w, st);
	qp->sq_tail++;
	if (qp->sq_next_tx < qp->sq_tail)
		qp->sq_next_tx = qp->sq_tail;
	shca__qp_to_err(qp);
}

/* Build the next request of an outgoing connection. Returns 1 with *out set, 0 when there is
 * nothing to send yet (*wait_ns: when to look again, 0 = on the next post). */
static int shca_build_request(struct shca_ctx *ctx, struct shca_conn *c, struct shca_tx **out,
			      uint64_t now, uint64_t *wait_ns)
{
	const struct shca_config *cfg = shca__config();
	struct shca_qp *qp = c->qp;
	struct shca_swqe *w;
	struct shca_tx *t;
	static const uint8_t type_of[] = {
	    [IBV_WR_RDMA_WRITE] = SHCA_MSG_WRITE, [IBV_WR_RDMA_WRITE_WITH_IMM] = SHCA_MSG_WRITE_IMM,
	    [IBV_WR_SEND] = SHCA_MSG_SEND,	  [IBV_WR_SEND_WITH_IMM] = SHCA_MSG_SEND_IMM,
	    [IBV_WR_RDMA_READ] = SHCA_MSG_READ,
	};
	int n;

	pthread_mutex_lock(&qp->lock);
	if (qp->state != IBV_QPS_RTS || qp->tx_stopped || qp->sq_next_tx == qp->sq_head) {
		pthread_mutex_unlock(&qp->lock);
		return 0;
	}
	w = &qp->sq[qp->sq_next_tx % qp->sq_size];
	if (cfg->latency_ns && now < w->post_ns + cfg->latency_ns) {
		*wait_ns = w->post_ns + cfg->latency_ns;
		pthread_mutex_unlock(&qp->lock);
		return 0;
	}
	pthread_mutex_unlock(&qp->lock);

	/* The WQE slot is stable until sq_tail passes it, which only this thread does. */
	t = shca_tx_alloc(type_of[w->opcode], 0);
	if (!t)
		return 0;
	t->hdr.rnr_retry = qp->rnr_retry;
	t->hdr.imm = w->imm;
	t->hdr.raddr = w->raddr;
	t->hdr.rkey = w->rkey;
	t->hdr.len = w->len;
	n = 0;
	if (w->opcode != IBV_WR_RDMA_READ) {
		if (w->nsge == 0 && w->len) { /* inline */
			t->seg[0].addr = w->inline_buf;
			t->seg[0].len = w->len;
			n = 1;
		} else {
			n = shca_sges_segs(ctx, qp, w->sge, w->nsge, 0, t->seg);
		}
	}
	pthread_mutex_lock(&qp->lock);
	if (n < 0) {
		w->stage = SHCA_SWQE_FAILED;
		w->status = IBV_WC_LOC_PROT_ERR;
		qp->tx_stopped = 1;
		qp->sq_next_tx++;
		shca_sq_advance(qp);
		pthread_mutex_unlock(&qp->lock);
		free(t);
		return 0;
	}
	t->nseg = n;
	t->payload_left = w->opcode == IBV_WR_RDMA_READ ? 0 : w->len;
	w->seq = ++qp->tx_seq;
	w->stage = SHCA_SWQE_SENT;
	t->hdr.seq = w->seq;
	qp->sq_next_tx++;
	pthread_mutex_unlock(&qp->lock);
	*out = t;
	return 1;
}

/* ---------------------------------------------------------------- segment I/O */

static void shca_segs_advance(const struct shca_seg *seg, int nseg, int *idx, size_t *off, size_t n)
{
	while (n && *idx < nseg) {
		size_t room = seg[*idx].len - *off;

		if (n < room) {
			*off += n;
			return;
		}
		n -= room;
		(*idx)++;
		*off = 0;
	}
}

static int shca_seg_direct(const struct shca_seg *s)
{
	return !s->mr || s->mr->kind == SHCA_MEM_HOST;
}

/* iovecs for up to max bytes of directly reachable segments from (idx, off). */
static int shca_segs_iov(const struct shca_seg *seg, int nseg, int idx, size_t off, size_t max,
			 struct iovec *iov, int niov)
{
	int n = 0;

	while (max && idx < nseg && n < niov && shca_seg_direct(&seg[idx])) {
		size_t len = seg[idx].len - off;

		if (len > max)
			len = max;
		iov[n].iov_base = (uint8_t *)seg[idx].addr + off;
		iov[n].iov_len = len;
		n++;
		max -= len;
		idx++;
		off = 0;
	}
	return n;
}

/* ---------------------------------------------------------------- transmit */

enum {
	SHCA_TX_DONE,	 /* the message is out */
	SHCA_TX_PARTIAL, /* some went out: call again */
	SHCA_TX_AGAIN,	 /* socket full: wait for EPOLLOUT */
	SHCA_TX_WAIT,	 /* shaping: wait for *next */
	SHCA_TX_BROKEN,	 /* the peer is gone */
	SHCA_TX_LINK,	 /* our link died (DROP_AFTER_BYTES) */
};

/* Payload bytes we may send now: bandwidth cap, link drop budget, bit flip position. */
static size_t shca_tx_allow(struct shca_ctx *ctx, size_t want, uint64_t now, uint64_t *wait_ns,
			    int *flip, int *dead)
{
	const struct shca_config *cfg = shca__config();
	uint64_t sent = atomic_load(&shca__tx_bytes);
	size_t allow = want;

	*flip = 0;
	*dead = 0;
	if (cfg->bw_bytes_per_ns > 0) {
		double rate = cfg->bw_bytes_per_ns, cap = rate * 1e6; /* 1 ms worth */

		if (cap < 65536)
			cap = 65536;
		ctx->tokens += (double)(now - ctx->tokens_ns) * rate;
		ctx->tokens_ns = now;
		if (ctx->tokens > cap)
			ctx->tokens = cap;
		if (ctx->tokens < 1) {
			double need = want < 65536 ? (double)want : 65536.0;

			*wait_ns = now + (uint64_t)((need - ctx->tokens) / rate) + 1;
			return 0;
		}
		if ((double)allow > ctx->tokens)
			allow = (size_t)ctx->tokens;
	}
	if (cfg->drop_set) {
		uint64_t budget = cfg->drop_after > sent ? cfg->drop_after - sent : 0;

		if (!budget) {
			*dead = 1;
			return 0;
		}
		if (allow > budget)
			allow = (size_t)budget;
	}
	if (cfg->flip_set && !atomic_load(&shca__flip_done) && cfg->flip_byte >= sent) {
		uint64_t d = cfg->flip_byte - sent;

		if (d == 0) {
			*flip = 1;
			return 1;
		}
		if (allow > d)
			allow = (size_t)d;
	}
	return allow;
}

static void shca_tx_account(struct shca_ctx *ctx, size_t payload, int flip)
{
	const struct shca_config *cfg = shca__config();
	uint64_t sent = atomic_fetch_add(&shca__tx_bytes, payload) + payload;

	if (cfg->bw_bytes_per_ns > 0)
		ctx->tokens -= (double)payload;
	if (flip && payload) {
		atomic_store(&shca__flip_done, 1);
		SHCA_DBG("fault: flipped bit 0 of payload byte %llu",
			 (unsigned long long)cfg->flip_byte);
	}
	if (cfg->drop_set && sent >= cfg->drop_after)
		shca__kill_link();
}

/* One sendmsg of t: header rest + as much payload as allowed. */
static int shca_tx_once(struct shca_ctx *ctx, struct shca_conn *c, struct shca_tx *t, uint64_t now,
			uint64_t *next)
{
	struct iovec iov[SHCA_IOV];
	struct msghdr msg = {.msg_iov = iov};
	size_t hdr_left = sizeof(t->hdr) - t->hdr_done, allow = 0, h;
	uint64_t wait = 0;
	int n = 0, flip = 0, dead = 0;
	uint8_t fb;
	ssize_t r;

	if (!hdr_left && !t->payload_left)
		return SHCA_TX_DONE;
	if (hdr_left) {
		iov[n].iov_base = (uint8_t *)&t->hdr + t->hdr_done;
		iov[n++].iov_len = hdr_left;
	}
	if (t->payload_left) {
		allow = shca_tx_allow(ctx, t->payload_left, now, &wait, &flip, &dead);
		if (dead) {
			shca__kill_link();
			return SHCA_TX_LINK;
		}
		if (!allow && !hdr_left) {
			if (wait && wait < *next)
				*next = wait;
			return SHCA_TX_WAIT;
		}
	}
	if (allow && flip && !hdr_left) {
		const struct shca_seg *s = &t->seg[t->seg_idx];

		shca__dma_copy(&fb, SHCA_MEM_HOST, (uint8_t *)s->addr + t->seg_off,
			       s->mr ? s->mr->kind : SHCA_MEM_HOST, 1);
		fb ^= 0x01;
		iov[n].iov_base = &fb;
		iov[n++].iov_len = 1;
	} else if (allow && !flip) {
		const struct shca_seg *s = &t->seg[t->seg_idx];

		if (shca_seg_direct(s)) {
			n += shca_segs_iov(t->seg, t->nseg, t->seg_idx, t->seg_off, allow, iov + n,
					   SHCA_IOV - n);
		} else { /* staged: one bounce buffer's worth through the DMA seam */
			size_t len = s->len - t->seg_off;

			if (len > allow)
				len = allow;
			if (len > SHCA_BOUNCE_BYTES)
				len = SHCA_BOUNCE_BYTES;
			shca__dma_copy(ctx->bounce, SHCA_MEM_HOST, (uint8_t *)s->addr + t->seg_off,
				       s->mr->kind, len);
			iov[n].iov_base = ctx->bounce;
			iov[n++].iov_len = len;
		}
	}
	msg.msg_iovlen = (size_t)n;
	r = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return SHCA_TX_AGAIN;
		SHCA_DBG("conn fd %d: send: %s", c->fd, strerror(errno));
		return SHCA_TX_BROKEN;
	}
	h = (size_t)r < hdr_left ? (size_t)r : hdr_left;
	t->hdr_done += h;
	r -= (ssize_t)h;
	if (r > 0) {
		shca_segs_advance(t->seg, t->nseg, &t->seg_idx, &t->seg_off, (size_t)r);
		t->payload_left -= (size_t)r;
		shca_tx_account(ctx, (size_t)r, flip);
		if (!shca__link_up())
			return SHCA_TX_LINK;
	}
	return t->payload_left || t->hdr_done < sizeof(t->hdr) ? SHCA_TX_PARTIAL : SHCA_TX_DONE;
}

/* Send queued answers / requests until the socket is full or nothing is left. */
static void shca_conn_tx(struct shca_ctx *ctx, struct shca_conn *c, uint64_t now, uint64_t *next)
{
	int want_out = 0;

	while (c->fd >= 0 && !c->tx_broken) {
		struct shca_tx *t = c->txq;
		uint64_t wait = 0;
		int rc;

		if (!t) {
			if (c->role != SHCA_CONN_OUT || c->closing)
				break;
			if (!shca_build_request(ctx, c, &t, now, &wait)) {
				if (wait && wait < *next)
					*next = wait;
				break;
			}
			shca_tx_queue(c, t);
		}
		rc = shca_tx_once(ctx, c, t, now, next);
		if (rc == SHCA_TX_DONE) {
			c->txq = t->next;
			if (!c->txq)
				c->txq_tail = NULL;
			shca_tx_free(ctx, t);
			continue;
		}
		if (rc == SHCA_TX_PARTIAL)
			continue; /* the socket says when it is full */
		if (rc == SHCA_TX_AGAIN)
			want_out = 1;
		if (rc == SHCA_TX_BROKEN) {
			c->tx_broken = 1;
			if (c->role == SHCA_CONN_OUT)
				shca_out_dead(c); /* keep reading: a NAK may be waiting */
			else
				shca_conn_close(ctx, c);
		}
		break;
	}
	c->want_out = want_out;
}

/* ---------------------------------------------------------------- responder */

static void shca_rx_finish(struct shca_ctx *ctx, struct shca_conn *c);

/* Complete the peeked receive WQE (qp->lock held). */
static void shca_recv_complete(struct shca_conn *c, struct shca_qp *qp, enum ibv_wc_status st)
{
	struct ibv_wc wc;

	if (!c->have_rwqe || qp->rq_tail == qp->rq_head || qp->state == IBV_QPS_ERR)
		return; /* flushed meanwhile */
	c->have_rwqe = 0;
	qp->rq_tail++;
	memset(&wc, 0, sizeof(wc));
	wc.wr_id = c->rwqe.wr_id;
	wc.status = st;
	wc.opcode = c->rh.type == SHCA_MSG_WRITE_IMM ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
	wc.byte_len = st == IBV_WC_SUCCESS ? c->rh.len : 0;
	if (c->rh.type == SHCA_MSG_WRITE_IMM || c->rh.type == SHCA_MSG_SEND_IMM) {
		wc.imm_data = c->rh.imm;
		wc.wc_flags |= IBV_WC_WITH_IMM;
	}
	wc.qp_num = qp->ibqp.qp_num;
	wc.src_qp = c->peer_qpn;
	wc.slid = shca__config()->link_layer == IBV_LINK_LAYER_ETHERNET ? 0 : c->peer_lid;
	if (st != IBV_WC_SUCCESS)
		wc.vendor_err = 0x82;
	shca__cq_push(qp->rcq, &wc);
}

/* A request cannot be executed: NAK it, read nothing more from this requester, and (for
 * everything but RNR) move our QP to the error state as an RC responder does (class C). */
static void shca_resp_fail(struct shca_ctx *ctx, struct shca_conn *c, enum ibv_wc_status req_st,
			   enum ibv_wc_status recv_st, int qp_err, enum ibv_event_type ev)
{
	struct shca_qp *qp = c->qp;

	SHCA_DBG("qp 0x%x: request seq %llu (type %d) rejected: %s", qp->ibqp.qp_num,
		 (unsigned long long)c->rh.seq, c->rh.type, ibv_wc_status_str(req_st));
	shca_answer(c, SHCA_MSG_NAK, c->rh.seq, req_st);
	c->closing = 1;
	c->rx_state = SHCA_RX_HDR;
	if (!qp_err) {
		c->have_rwqe = 0;
		return;
	}
	pthread_mutex_lock(&qp->lock);
	if (recv_st != IBV_WC_SUCCESS)
		shca_recv_complete(c, qp, recv_st);
	shca__qp_to_err(qp);
	pthread_mutex_unlock(&qp->lock);
	c->have_rwqe = 0;
	if (ev != IBV_EVENT_COMM_EST)
		shca__async_event(ctx, ev, &qp->ibqp);
}

static void shca_rnr_stall(struct shca_conn *c, struct shca_qp *qp, uint8_t timer, uint64_t now)
{
	if (c->rx_state == SHCA_RX_STALL_RNR)
		return;
	c->rx_state = SHCA_RX_STALL_RNR;
	c->rnr_tries = 0;
	c->rnr_start_ns = now;
	c->rnr_next_ns = now + shca__rnr_ns(timer);
	atomic_store(&qp->rnr_waiting, 1);
	SHCA_DBG("qp 0x%x: no receive posted for seq %llu: RNR", qp->ibqp.qp_num,
		 (unsigned long long)c->rh.seq);
}

/* SEND: the posted receive's SGEs, trimmed to the message length. */
static int shca_resp_send_segs(struct shca_ctx *ctx, struct shca_conn *c)
{
	size_t need = c->rh.len, have = 0;
	int n, i;

	n = shca_sges_segs(ctx, c->qp, c->rwqe_sge, c->rwqe.nsge, IBV_ACCESS_LOCAL_WRITE, c->rseg);
	if (n < 0) {
		shca_resp_fail(ctx, c, IBV_WC_REM_OP_ERR, IBV_WC_LOC_PROT_ERR, 1,
			       IBV_EVENT_QP_ACCESS_ERR);
		return -1;
	}
	for (i = 0; i < n; i++)
		have += c->rseg[i].len;
	if (have < need) {
		shca_segs_put(ctx, c->rseg, n);
		shca_resp_fail(ctx, c, IBV_WC_REM_INV_REQ_ERR, IBV_WC_LOC_LEN_ERR, 1,
			       IBV_EVENT_QP_REQ_ERR);
		return -1;
	}
	for (i = 0; i < n && need; i++) {
		if (c->rseg[i].len > need)
			c->rseg[i].len = need;
		need -= c->rseg[i].len;
	}
	shca_segs_put(ctx, c->rseg + i, n - i); /* past the message */
	c->rnseg = i;
	return 0;
}

/* A request header arrived (or a stalled one is looked at again). */
static void shca_resp_begin(struct shca_ctx *ctx, struct shca_conn *c, uint64_t now)
{
	struct shca_qp *qp = c->qp;
	struct shca_hdr *h = &c->rh;
	int need_recv = h->type == SHCA_MSG_SEND || h->type == SHCA_MSG_SEND_IMM ||
			h->type == SHCA_MSG_WRITE_IMM;
	enum ibv_qp_state st;
	unsigned int access;
	struct shca_tx *t;

	if (h->type < SHCA_MSG_SEND || h->type > SHCA_MSG_READ) {
		shca__log("qp 0x%x: protocol error (message type %d)", qp->ibqp.qp_num, h->type);
		shca_conn_close(ctx, c);
		return;
	}
	pthread_mutex_lock(&qp->lock);
	st = qp->state;
	if (qp->destroyed || c->gen != qp->generation || st == IBV_QPS_ERR) {
		pthread_mutex_unlock(&qp->lock);
		shca_conn_close(ctx, c); /* dropped: the requester times out */
		return;
	}
	if (st == IBV_QPS_RESET || st == IBV_QPS_INIT) {
		pthread_mutex_unlock(&qp->lock);
		c->rx_state = SHCA_RX_STALL_QP; /* the peer was faster: wait for our RTR */
		return;
	}
	if (c->peer_qpn != qp->dest_qpn || c->peer_lid != qp->peer_lid) {
		pthread_mutex_unlock(&qp->lock);
		SHCA_DBG("qp 0x%x: request from lid 0x%x qp 0x%x, connected to lid 0x%x qp 0x%x: "
			 "dropped",
			 qp->ibqp.qp_num, c->peer_lid, c->peer_qpn, qp->peer_lid, qp->dest_qpn);
		shca_conn_close(ctx, c);
		return;
	}
	if (need_recv && qp->rq_tail == qp->rq_head) {
		uint8_t timer = qp->min_rnr_timer;

		pthread_mutex_unlock(&qp->lock);
		shca_rnr_stall(c, qp, timer, now);
		return;
	}
	if (need_recv) {
		const struct shca_rwqe *r = &qp->rq[qp->rq_tail % qp->rq_size];

		c->rwqe.wr_id = r->wr_id;
		c->rwqe.nsge = r->nsge;
		memcpy(c->rwqe_sge, r->sge, (size_t)r->nsge * sizeof(*r->sge));
		c->have_rwqe = 1;
	}
	access = qp->access;
	pthread_mutex_unlock(&qp->lock);
	if (c->rx_state == SHCA_RX_STALL_RNR)
		atomic_store(&qp->rnr_waiting, 0);
	c->rx_state = SHCA_RX_HDR;
	c->rnseg = 0;
	c->rx_end = SHCA_END_NONE;

	switch (h->type) {
	case SHCA_MSG_WRITE:
	case SHCA_MSG_WRITE_IMM:
		if (h->len && !(access & IBV_ACCESS_REMOTE_WRITE)) {
			shca_resp_fail(ctx, c, IBV_WC_REM_INV_REQ_ERR, IBV_WC_REM_INV_REQ_ERR, 1,
				       IBV_EVENT_QP_REQ_ERR);
			return;
		}
		if (h->len && shca_rkey_seg(ctx, qp, h->rkey, h->raddr, h->len,
					    IBV_ACCESS_REMOTE_WRITE, &c->rseg[0]) < 0) {
			shca_resp_fail(ctx, c, IBV_WC_REM_ACCESS_ERR, IBV_WC_REM_ACCESS_ERR, 1,
				       IBV_EVENT_QP_ACCESS_ERR);
			return;
		}
		c->rnseg = h->len ? 1 : 0;
		c->rx_end = SHCA_END_WRITE;
		break;
	case SHCA_MSG_SEND:
	case SHCA_MSG_SEND_IMM:
		if (shca_resp_send_segs(ctx, c) < 0)
			return;
		c->rx_end = SHCA_END_SEND;
		break;
	case SHCA_MSG_READ:
		if (!(access & IBV_ACCESS_REMOTE_READ)) {
			shca_resp_fail(ctx, c, IBV_WC_REM_INV_REQ_ERR, IBV_WC_SUCCESS, 1,
				       IBV_EVENT_QP_REQ_ERR);
			return;
		}
		t = shca_tx_alloc(SHCA_MSG_READ_RESP, h->seq);
		if (!t) {
			shca_conn_close(ctx, c);
			return;
		}
		if (h->len && shca_rkey_seg(ctx, qp, h->rkey, h->raddr, h->len,
					    IBV_ACCESS_REMOTE_READ, &t->seg[0]) < 0) {
			free(t);
			shca_resp_fail(ctx, c, IBV_WC_REM_ACCESS_ERR, IBV_WC_SUCCESS, 1,
				       IBV_EVENT_QP_ACCESS_ERR);
			return;
		}
		t->nseg = h->len ? 1 : 0;
		t->hdr.len = h->len;
		t->payload_left = h->len;
		shca_tx_queue(c, t);
		return; /* no payload follows a READ request */
	}
	c->rx_left = h->len;
	c->rseg_idx = 0;
	c->rseg_off = 0;
	c->rx_discard = 0;
	c->rx_state = SHCA_RX_PAYLOAD;
	if (!c->rx_left)
		shca_rx_finish(ctx, c);
}

/* ---------------------------------------------------------------- requester answers */

static void shca_read_resp_begin(struct shca_ctx *ctx, struct shca_conn *c)
{
	struct shca_qp *qp = c->qp;
	struct ibv_sge sge[SHCA_MAX_SGE];
	struct shca_swqe *w = NULL;
	int nsge = 0, n;

	pthread_mutex_lock(&qp->lock);
	if (c->rh.seq && c->rh.seq - 1 > qp->acked_seq)
		qp->acked_seq = c->rh.seq - 1;
	shca_sq_advance(qp);
	if (qp->state == IBV_QPS_RTS && qp->sq_tail != qp->sq_next_tx)
		w = &qp->sq[qp->sq_tail % qp->sq_size];
	if (w && (w->seq != c->rh.seq || w->opcode != IBV_WR_RDMA_READ || w->len != c->rh.len))
		w = NULL;
	if (w) {
		nsge = w->nsge;
		memcpy(sge, w->sge, (size_t)nsge * sizeof(*sge));
	}
	pthread_mutex_unlock(&qp->lock);

	c->rx_left = c->rh.len;
	c->rseg_idx = 0;
	c->rseg_off = 0;
	c->rnseg = 0;
	c->rx_discard = 1;
	c->rx_end = SHCA_END_NONE;
	if (w) {
		n = shca_sges_segs(ctx, qp, sge, nsge, IBV_ACCESS_LOCAL_WRITE, c->rseg);
		if (n < 0) {
			c->rx_end = SHCA_END_READ_FAIL;
		} else {
			c->rnseg = n;
			c->rx_discard = 0;
			c->rx_end = SHCA_END_READ_RESP;
		}
	}
	c->rx_state = SHCA_RX_PAYLOAD;
	if (!c->rx_left)
		shca_rx_finish(ctx, c);
}

static void shca_answer_in(struct shca_ctx *ctx, struct shca_conn *c)
{
	struct shca_qp *qp = c->qp;

	switch (c->rh.type) {
	case SHCA_MSG_ACK:
		pthread_mutex_lock(&qp->lock);
		if (c->rh.seq > qp->acked_seq)
			qp->acked_seq = c->rh.seq;
		shca_sq_advance(qp);
		pthread_mutex_unlock(&qp->lock);
		break;
	case SHCA_MSG_NAK:
		pthread_mutex_lock(&qp->lock);
		if (qp->state == IBV_QPS_RTS)
			shca_sq_fail_head(qp, c->rh.seq, (enum ibv_wc_status)c->rh.status);
		pthread_mutex_unlock(&qp->lock);
		break;
	case SHCA_MSG_READ_RESP:
		shca_read_resp_begin(ctx, c);
		break;
	default:
		shca__log("qp 0x%x: protocol error (answer type %d)", qp->ibqp.qp_num, c->rh.type);
		shca_conn_eof(ctx, c);
	}
}

/* ---------------------------------------------------------------- receive */

static void shca_hello(struct shca_ctx *ctx, struct shca_conn *c)
{
	uint32_t idx = c->rh.len - SHCA_QPN_BASE;
	struct shca_qp *qp = NULL;

	if (c->rh.type != SHCA_MSG_HELLO || c->rh.imm != SHCA_HELLO_MAGIC) {
		shca__log("protocol error: connection without HELLO");
		shca_conn_close(ctx, c);
		return;
	}
	pthread_mutex_lock(&ctx->lock);
	if (c->rh.len >= SHCA_QPN_BASE && idx < ctx->nqps)
		qp = ctx->qps[idx];
	if (qp) {
		pthread_mutex_lock(&qp->lock);
		c->gen = qp->generation;
		pthread_mutex_unlock(&qp->lock);
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!qp) {
		SHCA_DBG("HELLO for unknown qp 0x%x from lid 0x%llx: refused", c->rh.len,
			 (unsigned long long)c->rh.raddr);
		shca_conn_close(ctx, c);
		return;
	}
	c->role = SHCA_CONN_IN;
	c->qp = qp;
	c->peer_lid = (uint16_t)c->rh.raddr;
	c->peer_qpn = c->rh.rkey;
	SHCA_DBG("qp 0x%x: connection from lid 0x%x qp 0x%x", qp->ibqp.qp_num, c->peer_lid,
		 c->peer_qpn);
}

static void shca_rx_finish(struct shca_ctx *ctx, struct shca_conn *c)
{
	struct shca_qp *qp = c->qp;
	enum shca_rx_end end = c->rx_end;

	shca_segs_put(ctx, c->rseg, c->rnseg);
	c->rnseg = 0;
	c->rx_state = SHCA_RX_HDR;
	c->rx_end = SHCA_END_NONE;
	switch (end) {
	case SHCA_END_WRITE:
	case SHCA_END_SEND:
		pthread_mutex_lock(&qp->lock);
		shca_recv_complete(c, qp, IBV_WC_SUCCESS);
		pthread_mutex_unlock(&qp->lock);
		c->have_rwqe = 0;
		shca_answer(c, SHCA_MSG_ACK, c->rh.seq, IBV_WC_SUCCESS);
		break;
	case SHCA_END_READ_RESP:
		pthread_mutex_lock(&qp->lock);
		if (c->rh.seq > qp->acked_seq)
			qp->acked_seq = c->rh.seq;
		shca_sq_advance(qp);
		pthread_mutex_unlock(&qp->lock);
		break;
	case SHCA_END_READ_FAIL:
		pthread_mutex_lock(&qp->lock);
		if (qp->state == IBV_QPS_RTS)
			shca_sq_fail_head(qp, c->rh.seq, IBV_WC_LOC_PROT_ERR);
		pthread_mutex_unlock(&qp->lock);
		break;
	case SHCA_END_NONE:
		break;
	}
}

static void shca_dispatch(struct shca_ctx *ctx, struct shca_conn *c, uint64_t now)
{
	switch (c->role) {
	case SHCA_CONN_NEW:
		shca_hello(ctx, c);
		break;
	case SHCA_CONN_OUT:
		shca_answer_in(ctx, c);
		break;
	case SHCA_CONN_IN:
		shca_resp_begin(ctx, c, now);
		break;
	}
}

/* Read payload into the segments (or the discard buffer); bytes read, 0 at EOF, -1 error. */
static ssize_t shca_rx_payload(struct shca_ctx *ctx, struct shca_conn *c, size_t max)
{
	const struct shca_seg *s = &c->rseg[c->rseg_idx];
	struct iovec iov[SHCA_IOV];
	size_t want = c->rx_left < max ? c->rx_left : max;
	ssize_t r;
	int n;

	if (c->rx_discard || c->rseg_idx >= c->rnseg) {
		if (want > SHCA_BOUNCE_BYTES)
			want = SHCA_BOUNCE_BYTES;
		return recv(c->fd, ctx->bounce, want, MSG_DONTWAIT);
	}
	if (!shca_seg_direct(s)) { /* staged through the DMA seam */
		size_t len = s->len - c->rseg_off;

		if (len > want)
			len = want;
		if (len > SHCA_BOUNCE_BYTES)
			len = SHCA_BOUNCE_BYTES;
		r = recv(c->fd, ctx->bounce, len, MSG_DONTWAIT);
		if (r > 0)
			shca__dma_copy((uint8_t *)s->addr + c->rseg_off, s->mr->kind, ctx->bounce,
				       SHCA_MEM_HOST, (size_t)r);
	} else {
		n = shca_segs_iov(c->rseg, c->rnseg, c->rseg_idx, c->rseg_off, want, iov, SHCA_IOV);
		r = readv(c->fd, iov, n);
	}
	if (r > 0)
		shca_segs_advance(c->rseg, c->rnseg, &c->rseg_idx, &c->rseg_off, (size_t)r);
	return r;
}

/* Read what is there: headers, then payloads, until the socket is empty or a stall. */
static void shca_conn_rx(struct shca_ctx *ctx, struct shca_conn *c, uint64_t now)
{
	size_t budget = SHCA_RX_BUDGET;
	ssize_t r;

	while (c->fd >= 0 && !c->closing && budget) {
		if (c->rx_state == SHCA_RX_HDR) {
			r = recv(c->fd, (uint8_t *)&c->rh + c->rh_got, sizeof(c->rh) - c->rh_got,
				 MSG_DONTWAIT);
		} else if (c->rx_state == SHCA_RX_PAYLOAD) {
			r = shca_rx_payload(ctx, c, budget);
		} else {
			return; /* stalled */
		}
		if (r == 0 ||
		    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			shca_conn_eof(ctx, c);
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (c->rx_state == SHCA_RX_HDR) {
			c->rh_got += (size_t)r;
			if (c->rh_got < sizeof(c->rh))
				continue;
			c->rh_got = 0;
			shca_dispatch(ctx, c, now);
			continue;
		}
		budget -= (size_t)r < budget ? (size_t)r : budget;
		c->rx_left -= (size_t)r;
		if (!c->rx_left)
			shca_rx_finish(ctx, c);
	}
}

/* ---------------------------------------------------------------- connections */

int shca__connect(struct shca_ctx *ctx, struct shca_qp *qp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct shca_hdr h;
	size_t done = 0;
	int fd, rc, sz = SHCA_SOCKBUF;

	if (!shca__link_up())
		return -ENETDOWN;
	if (!qp->peer_lid)
		return -EHOSTUNREACH;
	if (shca__sock_path(sa.sun_path, sizeof(sa.sun_path), qp->peer_lid) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		SHCA_DBG("qp 0x%x: connect %s: %s", qp->ibqp.qp_num, sa.sun_path, strerror(-rc));
		goto close_fd;
	}
	memset(&h, 0, sizeof(h));
	h.type = SHCA_MSG_HELLO;
	h.imm = SHCA_HELLO_MAGIC;
	h.len = qp->dest_qpn;
	h.rkey = qp->ibqp.qp_num;
	h.raddr = ctx->lid;
	while (done < sizeof(h)) {
		ssize_t r = send(fd, (uint8_t *)&h + done, sizeof(h) - done, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto close_fd;
		}
		done += (size_t)r;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	SHCA_DBG("qp 0x%x: connected to lid 0x%x qp 0x%x", qp->ibqp.qp_num, qp->peer_lid,
		 qp->dest_qpn);
	return fd;

close_fd:
	close(fd);
	return rc;
}

static void shca_accept(struct shca_ctx *ctx)
{
	int fd;

	while ((fd = accept4(ctx->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (!shca__link_up()) {
			close(fd);
			continue;
		}
		shca_conn_new(ctx, fd, SHCA_CONN_NEW);
	}
}

/* Close connections whose QP went away, was reset, failed, or whose link died. */
static void shca_conn_check(struct shca_ctx *ctx, struct shca_conn *c)
{
	struct shca_qp *qp = c->qp;
	int gone, err;

	if (!shca__link_up()) {
		if (c->role == SHCA_CONN_OUT)
			shca_out_dead(c);
		shca_conn_close(ctx, c);
		return;
	}
	if (!qp)
		return;
	pthread_mutex_lock(&qp->lock);
	gone = qp->destroyed || c->gen != qp->generation;
	err = qp->state == IBV_QPS_ERR;
	pthread_mutex_unlock(&qp->lock);
	if (gone || (err && c->role == SHCA_CONN_OUT))
		shca_conn_close(ctx, c);
	else if (err)
		c->closing = 1; /* send the answers queued (a NAK), then go */
}

/* A stalled request: look again (a receive may be posted, the QP may be in RTR now). */
static void shca_stall_check(struct shca_ctx *ctx, struct shca_conn *c, uint64_t now,
			     uint64_t *next)
{
	struct shca_qp *qp = c->qp;
	uint8_t timer;

	shca_resp_begin(ctx, c, now);
	if (c->fd < 0)
		return;
	if (c->rx_state == SHCA_RX_STALL_QP) {
		if (now + 1000000 < *next)
			*next = now + 1000000;
		return;
	}
	if (c->rx_state != SHCA_RX_STALL_RNR)
		return;
	if (now >= c->rnr_next_ns) {
		pthread_mutex_lock(&qp->lock);
		timer = qp->min_rnr_timer;
		pthread_mutex_unlock(&qp->lock);
		c->rnr_tries++;
		if (c->rh.rnr_retry != 7 &&
		    (c->rnr_tries > c->rh.rnr_retry || now - c->rnr_start_ns > SHCA_RNR_CAP_NS)) {
			atomic_store(&qp->rnr_waiting, 0);
			shca_resp_fail(ctx, c, IBV_WC_RNR_RETRY_EXC_ERR, IBV_WC_SUCCESS, 0,
				       IBV_EVENT_COMM_EST);
			return;
		}
		c->rnr_next_ns = now + shca__rnr_ns(timer);
	}
	if (c->rnr_next_ns < *next)
		*next = c->rnr_next_ns;
}

static void shca_conns_pass(struct shca_ctx *ctx, uint64_t now, uint64_t *next)
{
	struct shca_conn *c;

	for (c = ctx->conns; c; c = c->next) {
		if (c->fd < 0)
			continue;
		shca_conn_check(ctx, c);
		if (c->fd >= 0 && !c->closing &&
		    (c->rx_state == SHCA_RX_STALL_QP || c->rx_state == SHCA_RX_STALL_RNR))
			shca_stall_check(ctx, c, now, next);
		if (c->fd >= 0)
			shca_conn_tx(ctx, c, now, next);
		if (c->fd >= 0 && c->closing && !c->txq)
			shca_conn_close(ctx, c);
		if (c->fd >= 0)
			shca_conn_update_epoll(ctx, c);
	}
}

/* ---------------------------------------------------------------- QP housekeeping */

static void shca_qp_adopt(struct shca_ctx *ctx, struct shca_qp *qp)
{
	struct shca_conn *c;
	int fd = qp->new_out_fd;

	qp->new_out_fd = -1;
	if ((qp->state != IBV_QPS_RTR && qp->state != IBV_QPS_RTS) || !shca__link_up()) {
		close(fd);
		if (qp->state != IBV_QPS_ERR)
			qp->out_dead = 1;
		return;
	}
	c = shca_conn_new(ctx, fd, SHCA_CONN_OUT);
	if (!c) {
		qp->out_dead = 1;
		return;
	}
	c->qp = qp;
	c->gen = qp->generation;
}

/* Retry exceeded: the peer (or our link) is gone and requests are waiting. */
static void shca_qp_retry(struct shca_qp *qp, uint64_t now, uint64_t *next)
{
	if (qp->sq_tail == qp->sq_head) {
		qp->retry_deadline_ns = 0;
		return;
	}
	if (!qp->retry_deadline_ns)
		qp->retry_deadline_ns = now + shca__retry_ns(qp);
	if (now < qp->retry_deadline_ns) {
		if (qp->retry_deadline_ns < *next)
			*next = qp->retry_deadline_ns;
		return;
	}
	SHCA_DBG("qp 0x%x: transport retries exhausted", qp->ibqp.qp_num);
	shca__sq_complete(qp, &qp->sq[qp->sq_tail % qp->sq_size], IBV_WC_RETRY_EXC_ERR);
	qp->sq_tail++;
	if (qp->sq_next_tx < qp->sq_tail)
		qp->sq_next_tx = qp->sq_tail;
	shca__qp_to_err(qp);
	shca__qp_flush(qp);
}

static void shca_qps_pass(struct shca_ctx *ctx, uint64_t now, uint64_t *next)
{
	uint32_t i;

	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < ctx->nqps; i++) {
		struct shca_qp *qp = ctx->qps[i];

		if (!qp)
			continue;
		pthread_mutex_lock(&qp->lock);
		if (qp->new_out_fd >= 0)
			shca_qp_adopt(ctx, qp);
		if (qp->state == IBV_QPS_ERR)
			shca__qp_flush(qp);
		else if (qp->state == IBV_QPS_RTS)
			shca_sq_advance(qp);
		if (qp->state == IBV_QPS_RTS && qp->out_dead)
			shca_qp_retry(qp, now, next);
		if (qp->state == IBV_QPS_ERR)
			shca__qp_flush(qp);
		pthread_mutex_unlock(&qp->lock);
	}
	pthread_mutex_unlock(&ctx->lock);
}

/* ---------------------------------------------------------------- the thread */

static void shca_event(struct shca_ctx *ctx, struct epoll_event *ev, uint64_t now)
{
	struct shca_conn *c;
	uint64_t v;

	if (ev->data.ptr == &ctx->listen_fd) {
		shca_accept(ctx);
		return;
	}
	if (ev->data.ptr == &ctx->wake_fd) {
		if (read(ctx->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			shca__log("wake: %s", strerror(errno));
		atomic_store(&ctx->wake_pending, 0);
		return;
	}
	c = ev->data.ptr;
	if (c->fd < 0)
		return;
	if (!(c->ev_mask & EPOLLIN) && (ev->events & (EPOLLHUP | EPOLLERR))) {
		shca_conn_eof(ctx, c); /* stalled or closing, and the peer is gone */
		return;
	}
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		shca_conn_rx(ctx, c, now);
}

void *shca__progress(void *arg)
{
	struct shca_ctx *ctx = arg;
	struct epoll_event ev[64];

	for (;;) {
		uint64_t req, now = shca__now_ns(), next = UINT64_MAX;
		int stop, timeout, n, i;

		pthread_mutex_lock(&ctx->lock);
		req = ctx->sync_req;
		stop = ctx->stop;
		pthread_mutex_unlock(&ctx->lock);
		shca_qps_pass(ctx, now, &next);
		shca_conns_pass(ctx, now, &next);
		shca_conns_reap(ctx);
		pthread_mutex_lock(&ctx->lock);
		ctx->sync_done = req;
		pthread_cond_broadcast(&ctx->cond);
		pthread_mutex_unlock(&ctx->lock);
		if (stop)
			break;
		now = shca__now_ns();
		if (next == UINT64_MAX)
			timeout = 100;
		else if (next <= now)
			timeout = 0;
		else
			timeout = (int)((next - now + 999999) / 1000000 > 100
					    ? 100
					    : (next - now + 999999) / 1000000);
		n = epoll_wait(ctx->epfd, ev, (int)SHCA_ARRAY_SIZE(ev), timeout);
		now = shca__now_ns();
		for (i = 0; i < n; i++)
			shca_event(ctx, &ev[i], now);
	}
	shca__conns_close_all(ctx);
	return NULL;
}
