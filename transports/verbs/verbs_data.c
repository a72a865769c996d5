/* SPDX-License-Identifier: MIT */
/*
 * verbs_data.c - the data path: advertised buffers, RDMA WRITE with immediate, credits.
 *
 * Protocol (one direction, VRB_DEPTH slots, request n uses slot n % VRB_DEPTH):
 *  - post_recv(n) first posts one receive WR (no scatter entries) on every QP of the
 *    connection, then RDMA-WRITEs a FIFO entry {addr, size, rkey per HCA, tag, idx = n + 1,
 *    check} into slot n of the sender's FIFO over QP 0. A receive is therefore posted before
 *    the sender can know about the buffer: no RNR in normal operation. The FIFO depth is the
 *    credit count: a slot is written again only after its request completed, i.e. after the
 *    sender consumed it.
 *  - post_send(n) returns -EAGAIN until slot n holds idx n + 1 and a matching check word (so a
 *    torn entry is never used), checks tag and size, then splits the message over the QPs
 *    (slice = size / nqps rounded up to 128 bytes) and posts one signaled
 *    RDMA_WRITE_WITH_IMM per QP, imm = that slice's length (zero-length slices too, so every QP
 *    completes exactly one receive per message). A wrong tag or an oversize message is not
 *    written: every QP gets imm = VRB_IMM_ERR | reason, and both sides fail the request.
 *  - test() polls the connection's CQs; a request is done when all its QPs completed. Any
 *    error completion fails the connection with a message naming the status, QP, device and
 *    port, and every later call on it returns -EIO.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "verbs_int.h"

#define VRB_SLICE_ALIGN 128
#define VRB_POLL_BATCH	16

uint32_t vrb_fifo_check(const struct vrb_fifo_entry *e)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;
	int i;

	h = (h ^ e->addr) * 0x100000001b3ull;
	h = (h ^ e->size) * 0x100000001b3ull;
	for (i = 0; i < VRB_MAX_HCAS; i++)
		h = (h ^ e->rkey[i]) * 0x100000001b3ull;
	h = (h ^ e->tag) * 0x100000001b3ull;
	h = (h ^ e->idx) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32)) | 1u; /* never 0: a zeroed slot never checks */
}

static const char *vrb_opcode_str(enum ibv_wc_opcode op, int kind)
{
	switch (kind) {
	case VRB_WR_DATA:
		return "RDMA write with immediate (data)";
	case VRB_WR_FIFO:
		return "RDMA write (FIFO entry)";
	case VRB_WR_RECV:
		return "receive (RDMA write with immediate)";
	}
	return op & IBV_WC_RECV ? "receive" : "send";
}

/* The first fatal error of a connection: remembered, so every later call reports it. */
static int vrb_conn_fail(struct vrb_conn *c, int rc)
{
	if (!c->failed) {
		c->failed = rc;
		snprintf(c->failure, sizeof(c->failure), "%s", c->ctx->err);
	} else {
		vrb_errf(c->ctx, c->failed, "%s", c->failure);
	}
	return c->failed;
}

/* A request-level failure (wrong tag, too large): the connection goes on. */
static int vrb_req_fail(struct ibc_tp_req *r, int rc)
{
	if (!r->rc) {
		r->rc = rc;
		snprintf(r->err, sizeof(r->err), "%.255s", r->conn->ctx->err);
	}
	return rc;
}

static int vrb_wc_error(struct vrb_conn *c, int q, const struct ibv_wc *wc)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	const struct vrb_qp *qp = &c->qps[q];
	const struct vrb_port *p = &ctx->ports[qp->port];

	if (c->failed) /* flush errors follow the first error: keep its text */
		return c->failed;
	vrb_errf(ctx, -EIO,
		 "work completion error: %s (status %d, vendor_err %#x) on QP 0x%x, %s port %d, "
		 "%s of request %u; peer QP 0x%x on %s (%.32s port %u)",
		 vrb_wc_status_str(ctx->ibv, wc->status), (int)wc->status, wc->vendor_err,
		 wc->qp_num ? wc->qp_num : qp->qp->qp_num, ctx->hcas[p->hca].name, p->port,
		 vrb_opcode_str(wc->opcode, VRB_WR_KIND(wc->wr_id)), VRB_WR_SEQ(wc->wr_id),
		 qp->remote.qpn, c->remote.host, qp->remote.dev, qp->remote.port);
	return vrb_conn_fail(c, -EIO);
}

static struct ibc_tp_req *vrb_req_of(struct vrb_conn *c, uint32_t seq)
{
	struct ibc_tp_req *r = &c->reqs[seq % VRB_DEPTH];

	return r->used && r->seq == seq ? r : NULL;
}

static int vrb_recv_event(struct vrb_conn *c, int q, const struct ibv_wc *wc)
{
	struct ibc_tp_req *r = vrb_req_of(c, VRB_WR_SEQ(wc->wr_id));
	uint32_t imm = ntohl(wc->imm_data);

	if (!r || wc->opcode != IBV_WC_RECV_RDMA_WITH_IMM || !(wc->wc_flags & IBV_WC_WITH_IMM)) {
		vrb_errf(c->ctx, -EPROTO,
			 "protocol error on QP 0x%x: unexpected receive completion (opcode %d, "
			 "request %u)",
			 c->qps[q].qp->qp_num, (int)wc->opcode, VRB_WR_SEQ(wc->wr_id));
		return vrb_conn_fail(c, -EPROTO);
	}
	r->events++;
	if (imm & VRB_IMM_ERR) {
		if (r->rc)
			return 0;
		if ((imm & ~VRB_IMM_ERR) == VRB_IMM_ERR_TAG)
			vrb_req_fail(r, vrb_errf(c->ctx, -EPROTO,
						 "tag mismatch: the sender's message %u does not "
						 "carry tag %u of this receive (QP 0x%x)",
						 r->seq, r->tag, c->qps[q].qp->qp_num));
		else
			vrb_req_fail(r, vrb_errf(c->ctx, -EMSGSIZE,
						 "message %u is larger than the %zu-byte receive "
						 "buffer (tag %u, QP 0x%x)",
						 r->seq, r->max, r->tag, c->qps[q].qp->qp_num));
		return 0;
	}
	r->size += imm;
	if (r->size > r->max && !r->rc)
		vrb_req_fail(r, vrb_errf(c->ctx, -EMSGSIZE,
					 "message %u: %zu bytes arrived in a %zu-byte receive",
					 r->seq, r->size, r->max));
	return 0;
}

static int vrb_poll_qp(struct vrb_conn *c, int q)
{
	struct ibv_wc wc[VRB_POLL_BATCH];
	struct ibc_tp_req *r;
	int n, i, rc = 0;

	n = ibv_poll_cq(c->qps[q].cq, VRB_POLL_BATCH, wc);
	if (n < 0) {
		vrb_errf(c->ctx, -EIO, "ibv_poll_cq on QP 0x%x failed (%d)", c->qps[q].qp->qp_num,
			 n);
		return vrb_conn_fail(c, -EIO);
	}
	for (i = 0; i < n; i++) {
		if (wc[i].status != IBV_WC_SUCCESS) {
			rc = vrb_wc_error(c, q, &wc[i]);
			continue;
		}
		switch (VRB_WR_KIND(wc[i].wr_id)) {
		case VRB_WR_DATA:
			r = vrb_req_of(c, VRB_WR_SEQ(wc[i].wr_id));
			if (r)
				r->events++;
			break;
		case VRB_WR_RECV:
			if (vrb_recv_event(c, q, &wc[i]))
				rc = c->failed;
			break;
		default: /* FIFO writes: only errors matter */
			break;
		}
	}
	return rc ? rc : n;
}

int vrb_progress(struct vrb_conn *c)
{
	int q, n;

	if (c->failed)
		return vrb_conn_fail(c, c->failed);
	for (q = 0; q < c->nqps; q++) {
		do {
			n = vrb_poll_qp(c, q);
		} while (n == VRB_POLL_BATCH);
		if (n < 0)
			return n;
	}
	return 0;
}

static int vrb_check_buf(struct vrb_conn *c, const void *data, size_t size,
			 const struct ibc_tp_mr *mr, const char *what)
{
	if (!size)
		return 0;
	if (!mr || !vrb_mr_covers(mr, data, size))
		return vrb_errf(c->ctx, -EINVAL,
				"%s: %zu bytes at %p are not inside the given registration", what,
				size, data);
	return 0;
}

static struct ibc_tp_req *vrb_req_take(struct vrb_conn *c, uint32_t tag, size_t max, int nevents)
{
	struct ibc_tp_req *r = &c->reqs[c->seq % VRB_DEPTH];

	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->used = 1;
	r->seq = c->seq++;
	r->tag = tag;
	r->max = max;
	r->nevents = nevents;
	return r;
}

/* ---- receiver ---- */

static int vrb_post_fifo(struct vrb_conn *c, uint32_t seq)
{
	struct vrb_fifo_entry *e = &c->fifo_src[seq % VRB_DEPTH];
	struct ibv_sge sge = {
	    .addr = (uintptr_t)e,
	    .length = sizeof(*e),
	    .lkey = c->fifo_src_mr->lkey,
	};
	struct ibv_send_wr wr = {
	    .wr_id = VRB_WR_ID(VRB_WR_FIFO, seq),
	    .sg_list = &sge,
	    .num_sge = 1,
	    .opcode = IBV_WR_RDMA_WRITE,
	    .send_flags = IBV_SEND_SIGNALED | (c->inline_fifo ? IBV_SEND_INLINE : 0),
	    .wr.rdma =
		{
		    .remote_addr = c->rem_fifo_addr + (seq % VRB_DEPTH) * sizeof(*e),
		    .rkey = c->rem_fifo_rkey,
		},
	};
	struct ibv_send_wr *bad;
	int rc;

	rc = ibv_post_send(c->qps[0].qp, &wr, &bad);
	if (rc)
		return vrb_errf(c->ctx, -rc, "ibv_post_send (FIFO entry) on QP 0x%x failed: %s",
				c->qps[0].qp->qp_num, strerror(rc));
	return 0;
}

int vrb_post_recv(struct ibc_tp_recv *rcv, void *data, size_t size, uint32_t tag,
		  struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct vrb_conn *c = &rcv->c;
	struct ibc_tp_ctx *ctx = c->ctx;
	struct vrb_fifo_entry *e;
	struct ibc_tp_req *r;
	int q, h, rc;

	rc = vrb_check_buf(c, data, size, mr, "post_recv");
	if (rc)
		return rc;
	rc = vrb_progress(c);
	if (rc)
		return rc;
	if (c->reqs[c->seq % VRB_DEPTH].used)
		return -EAGAIN;
	for (q = 0; q < c->nqps; q++) {
		struct ibv_recv_wr wr = {.wr_id = VRB_WR_ID(VRB_WR_RECV, c->seq)}, *bad;

		rc = ibv_post_recv(c->qps[q].qp, &wr, &bad);
		if (rc) { /* earlier QPs hold a receive now: the connection cannot go on */
			vrb_errf(ctx, -rc, "ibv_post_recv on QP 0x%x failed: %s",
				 c->qps[q].qp->qp_num, strerror(rc));
			return vrb_conn_fail(c, -rc);
		}
	}
	e = &c->fifo_src[c->seq % VRB_DEPTH];
	memset(e, 0, sizeof(*e));
	e->addr = (uintptr_t)data;
	e->size = size;
	for (h = 0; size && h < ctx->nhcas; h++)
		e->rkey[h] = mr->mr[h]->rkey;
	e->tag = tag;
	e->idx = (uint64_t)c->seq + 1;
	e->check = vrb_fifo_check(e);
	rc = vrb_post_fifo(c, c->seq);
	if (rc)
		return vrb_conn_fail(c, rc);
	r = vrb_req_take(c, tag, size, c->nqps);
	*out = r;
	return 0;
}

/* ---- sender ---- */

/* Copy slot seq out of the FIFO if the receiver has written it whole; 0 or -EAGAIN. */
static int vrb_fifo_read(struct vrb_conn *c, uint32_t seq, struct vrb_fifo_entry *out)
{
	const volatile struct vrb_fifo_entry *e = &c->fifo[seq % VRB_DEPTH];
	int i;

	if (e->idx != (uint64_t)seq + 1)
		return -EAGAIN;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	out->addr = e->addr;
	out->size = e->size;
	for (i = 0; i < VRB_MAX_HCAS; i++)
		out->rkey[i] = e->rkey[i];
	out->tag = e->tag;
	out->check = e->check;
	out->idx = e->idx;
	if (out->idx != (uint64_t)seq + 1 || out->check != vrb_fifo_check(out))
		return -EAGAIN; /* still being written */
	return 0;
}

static int vrb_post_slices(struct vrb_conn *c, const struct ibc_tp_req *r,
			   const struct vrb_fifo_entry *e, const void *data, size_t size,
			   struct ibc_tp_mr *mr, uint32_t err)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	size_t slice = (size + c->nqps - 1) / c->nqps, off = 0;
	int q, rc;

	slice = (slice + VRB_SLICE_ALIGN - 1) / VRB_SLICE_ALIGN * VRB_SLICE_ALIGN;
	for (q = 0; q < c->nqps; q++) {
		size_t len = err || off >= size ? 0 : IBC_MIN(slice, size - off);
		int hca = ctx->ports[c->qps[q].port].hca;
		struct ibv_sge sge = {
		    .addr = (uintptr_t)data + off,
		    .length = (uint32_t)len,
		    .lkey = len ? mr->mr[hca]->lkey : 0,
		};
		struct ibv_send_wr
		    wr =
			{
			    .wr_id = VRB_WR_ID(VRB_WR_DATA, r->seq),
			    .sg_list = len ? &sge : NULL,
			    .num_sge = len ? 1 : 0,
			    .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
			    .send_flags = IBV_SEND_SIGNALED,
			    .imm_data = htonl(err ? err : (uint32_t)len),
			    .wr.rdma =
				{
				    .remote_addr = len ? e->addr + off : 0,
				    .rkey = len ? e->rkey[c->qps[q].remote.hca % VRB_MAX_HCAS] : 0,
				},
			},
		    *bad;

		rc = ibv_post_send(c->qps[q].qp, &wr, &bad);
		if (rc) {
			vrb_errf(ctx, -rc, "ibv_post_send (%zu bytes) on QP 0x%x failed: %s", len,
				 c->qps[q].qp->qp_num, strerror(rc));
			return vrb_conn_fail(c, -rc);
		}
		off += len;
	}
	return 0;
}

int vrb_post_send(struct ibc_tp_send *snd, const void *data, size_t size, uint32_t tag,
		  struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct vrb_conn *c = &snd->c;
	struct vrb_fifo_entry e;
	struct ibc_tp_req *r;
	uint32_t err = 0;
	int rc;

	rc = vrb_check_buf(c, data, size, mr, "post_send");
	if (rc)
		return rc;
	if (size > (size_t)c->nqps * VRB_MAX_SLICE)
		return vrb_errf(c->ctx, -EMSGSIZE,
				"post_send: %zu bytes is more than %d QP(s) carry in one message "
				"(%llu bytes each): send it in chunks",
				size, c->nqps, (unsigned long long)VRB_MAX_SLICE);
	rc = vrb_progress(c);
	if (rc)
		return rc;
	if (c->reqs[c->seq % VRB_DEPTH].used || vrb_fifo_read(c, c->seq, &e))
		return -EAGAIN;
	r = vrb_req_take(c, tag, size, c->nqps);
	r->size = size;
	if (e.tag != tag) {
		err = VRB_IMM_ERR | VRB_IMM_ERR_TAG;
		vrb_req_fail(r, vrb_errf(c->ctx, -EPROTO,
					 "tag mismatch: message %u has tag %u but the receiver "
					 "posted tag %u (QP 0x%x)",
					 r->seq, tag, e.tag, c->qps[0].qp->qp_num));
	} else if (size > e.size) {
		err = VRB_IMM_ERR | VRB_IMM_ERR_SIZE;
		vrb_req_fail(r, vrb_errf(c->ctx, -EMSGSIZE,
					 "message %u (%zu bytes, tag %u) is larger than the "
					 "receiver's %llu-byte buffer",
					 r->seq, size, tag, (unsigned long long)e.size));
	}
	rc = vrb_post_slices(c, r, &e, data, size, mr, err);
	if (rc) {
		r->used = 0;
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- completion ---- */

int vrb_test(struct ibc_tp_req *r, int *done, size_t *size)
{
	struct vrb_conn *c = r->conn;
	int rc;

	*done = 0;
	if (!r->used)
		return vrb_errf(c->ctx, -EINVAL, "test: request already completed");
	rc = vrb_progress(c);
	if (r->events < r->nevents && !rc && vrb_aborted(c->ctx)) {
		vrb_errf(c->ctx, -ECANCELED, "cancelled: another rank failed");
		rc = vrb_conn_fail(c, -ECANCELED);
	}
	if (r->events < r->nevents && !rc)
		return 0;
	*done = 1;
	r->used = 0;
	if (r->events < r->nevents)
		return rc;
	if (size)
		*size = r->size;
	if (r->rc)
		return vrb_errf(c->ctx, r->rc, "%s", r->err);
	return 0;
}
