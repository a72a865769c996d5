/* SPDX-License-Identifier: MIT */
/*
 * shca_qp.c - RC queue pairs: creation, the RESET->INIT->RTR->RTS state machine with the
 * attribute checks of the IB spec (ib_modify_qp_is_ok), post_send/post_recv, and the
 * completion helpers the progress thread uses (in-order completion, flush on error).
 */
#include "shca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- timers */

/* Local ACK timeout 4.096 us * 2^timeout, (retry_cnt + 1) tries, capped so tests stay quick. */
uint64_t shca__retry_ns(const struct shca_qp *qp)
{
	uint64_t per, total;

	if (qp->timeout == 0 || qp->timeout > 24)
		return SHCA_RETRY_CAP_NS;
	per = 4096ull << qp->timeout;
	total = per * (qp->retry_cnt + 1u);
	if (total < 1000000)
		total = 1000000;
	return total < SHCA_RETRY_CAP_NS ? total : SHCA_RETRY_CAP_NS;
}

/* IB min RNR NAK timer encodings (IBTA table 45), in microseconds. */
uint64_t shca__rnr_ns(uint8_t t)
{
	static const uint32_t us[32] = {
	    655360, 10,	   20,	  30,	 40,	60,	80,	120,	160,	240,	320,
	    480,    640,   960,	  1280,	 1920,	2560,	3840,	5120,	7680,	10240,	15360,
	    20480,  30720, 40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
	};

	return (uint64_t)us[t & 31] * 1000;
}

/* ---------------------------------------------------------------- completions */

static enum ibv_wc_opcode shca_wc_opcode(enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return IBV_WC_RDMA_WRITE;
	case IBV_WR_RDMA_READ:
		return IBV_WC_RDMA_READ;
	default:
		return IBV_WC_SEND;
	}
}

/* Complete one send WQE (qp->lock held). Errors always make a CQE; success only if signaled. */
void shca__sq_complete(struct shca_qp *qp, struct shca_swqe *w, enum ibv_wc_status st)
{
	struct ibv_wc wc;

	if (st == IBV_WC_SUCCESS && !w->signaled)
		return;
	memset(&wc, 0, sizeof(wc));
	wc.wr_id = w->wr_id;
	wc.status = st;
	wc.opcode = shca_wc_opcode(w->opcode);
	wc.vendor_err = st == IBV_WC_SUCCESS ? 0 : 0x81;
	wc.byte_len = w->opcode == IBV_WR_RDMA_READ ? w->len : 0;
	wc.qp_num = qp->ibqp.qp_num;
	shca__cq_push(qp->scq, &wc);
	if (st != IBV_WC_SUCCESS)
		SHCA_DBG("qp 0x%x: wr_id %llu completes with %s", qp->ibqp.qp_num,
			 (unsigned long long)w->wr_id, ibv_wc_status_str(st));
}

static void shca_rq_flush_one(struct shca_qp *qp, struct shca_rwqe *r)
{
	struct ibv_wc wc;

	memset(&wc, 0, sizeof(wc));
	wc.wr_id = r->wr_id;
	wc.status = IBV_WC_WR_FLUSH_ERR;
	wc.opcode = IBV_WC_RECV;
	wc.vendor_err = 0xf9;
	wc.qp_num = qp->ibqp.qp_num;
	shca__cq_push(qp->rcq, &wc);
}

/* Everything still queued completes with IBV_WC_WR_FLUSH_ERR (progress thread, lock held). */
void shca__qp_flush(struct shca_qp *qp)
{
	while (qp->sq_tail != qp->sq_head) {
		shca__sq_complete(qp, &qp->sq[qp->sq_tail % qp->sq_size], IBV_WC_WR_FLUSH_ERR);
		qp->sq_tail++;
	}
	qp->sq_next_tx = qp->sq_tail;
	while (qp->rq_tail != qp->rq_head) {
		shca_rq_flush_one(qp, &qp->rq[qp->rq_tail % qp->rq_size]);
		qp->rq_tail++;
	}
}

void shca__qp_to_err(struct shca_qp *qp)
{
	if (qp->state != IBV_QPS_ERR)
		SHCA_DBG("qp 0x%x: -> ERR", qp->ibqp.qp_num);
	qp->state = IBV_QPS_ERR;
	qp->ibqp.state = IBV_QPS_ERR;
}

/* ---------------------------------------------------------------- create / destroy */

static int shca_qp_check_init(const struct ibv_qp_init_attr *a)
{
	if (a->qp_type != IBV_QPT_RC)
		return -EOPNOTSUPP;
	if (!a->send_cq || !a->recv_cq || a->srq)
		return -EINVAL;
	if (a->cap.max_send_wr > SHCA_MAX_QP_WR || a->cap.max_recv_wr > SHCA_MAX_QP_WR ||
	    a->cap.max_send_sge > SHCA_MAX_SGE || a->cap.max_recv_sge > SHCA_MAX_SGE ||
	    a->cap.max_inline_data > SHCA_MAX_INLINE)
		return -EINVAL;
	return 0;
}

static int shca_qp_rings(struct shca_qp *qp)
{
	size_t sge_bytes, inl, slot;
	uint32_t i;

	qp->sq_size = qp->cap.max_send_wr ? qp->cap.max_send_wr : 1;
	qp->rq_size = qp->cap.max_recv_wr ? qp->cap.max_recv_wr : 1;
	sge_bytes = (qp->cap.max_send_sge ? qp->cap.max_send_sge : 1) * sizeof(struct ibv_sge);
	inl = (qp->cap.max_inline_data + 7) & ~(size_t)7;
	slot = sge_bytes + inl;
	qp->sq = calloc(qp->sq_size, sizeof(*qp->sq));
	qp->sq_store = calloc(qp->sq_size, slot);
	qp->rq = calloc(qp->rq_size, sizeof(*qp->rq));
	qp->rq_store =
	    calloc((size_t)qp->rq_size * (qp->cap.max_recv_sge ? qp->cap.max_recv_sge : 1),
		   sizeof(struct ibv_sge));
	if (!qp->sq || !qp->sq_store || !qp->rq || !qp->rq_store)
		return -ENOMEM;
	for (i = 0; i < qp->sq_size; i++) {
		qp->sq[i].sge = (struct ibv_sge *)(qp->sq_store + i * slot);
		qp->sq[i].inline_buf = inl ? qp->sq_store + i * slot + sge_bytes : NULL;
	}
	for (i = 0; i < qp->rq_size; i++)
		qp->rq[i].sge =
		    qp->rq_store + (size_t)i * (qp->cap.max_recv_sge ? qp->cap.max_recv_sge : 1);
	return 0;
}

static void shca_qp_free(struct shca_qp *qp)
{
	free(qp->rq_store);
	free(qp->rq);
	free(qp->sq_store);
	free(qp->sq);
	free(qp);
}

/* A QPN: index in ctx->qps + SHCA_QPN_BASE. Never reused while the context lives. */
static int shca_qp_number(struct shca_ctx *ctx, struct shca_qp *qp)
{
	struct shca_qp **grown;
	uint32_t n;

	pthread_mutex_lock(&ctx->lock);
	if (ctx->nqps % 64 == 0) {
		if (ctx->nqps >= SHCA_MAX_QPS) {
			pthread_mutex_unlock(&ctx->lock);
			return -ENOMEM;
		}
		n = ctx->nqps + 64;
		grown = realloc(ctx->qps, n * sizeof(*grown));
		if (!grown) {
			pthread_mutex_unlock(&ctx->lock);
			return -ENOMEM;
		}
		ctx->qps = grown;
	}
	qp->ibqp.qp_num = SHCA_QPN_BASE + ctx->nqps;
	ctx->qps[ctx->nqps++] = qp;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

SHCA_EXPORT struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct shca_ctx *ctx = shca_ctx_of(pd->context);
	struct shca_qp *qp;
	int rc;

	rc = shca_qp_check_init(attr);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		errno = ENOMEM;
		return NULL;
	}
	qp->ctx = ctx;
	qp->cap = attr->cap;
	qp->sq_sig_all = attr->sq_sig_all;
	qp->scq = (struct shca_cq *)attr->send_cq;
	qp->rcq = (struct shca_cq *)attr->recv_cq;
	qp->new_out_fd = -1;
	qp->state = IBV_QPS_RESET;
	rc = shca_qp_rings(qp);
	if (rc)
		goto free_qp;
	pthread_mutex_init(&qp->lock, NULL);
	qp->ibqp.context = pd->context;
	qp->ibqp.qp_context = attr->qp_context;
	qp->ibqp.pd = pd;
	qp->ibqp.send_cq = attr->send_cq;
	qp->ibqp.recv_cq = attr->recv_cq;
	qp->ibqp.state = IBV_QPS_RESET;
	qp->ibqp.qp_type = IBV_QPT_RC;
	pthread_mutex_init(&qp->ibqp.mutex, NULL);
	pthread_cond_init(&qp->ibqp.cond, NULL);
	rc = shca_qp_number(ctx, qp);
	if (rc)
		goto destroy_locks;
	qp->ibqp.handle = qp->ibqp.qp_num;
	SHCA_DBG("create_qp 0x%x: sq %u x %u sge, rq %u x %u sge, inline %u", qp->ibqp.qp_num,
		 qp->sq_size, qp->cap.max_send_sge, qp->rq_size, qp->cap.max_recv_sge,
		 qp->cap.max_inline_data);
	return &qp->ibqp;

destroy_locks:
	pthread_cond_destroy(&qp->ibqp.cond);
	pthread_mutex_destroy(&qp->ibqp.mutex);
	pthread_mutex_destroy(&qp->lock);
free_qp:
	shca_qp_free(qp);
	errno = -rc;
	return NULL;
}

SHCA_EXPORT int ibv_destroy_qp(struct ibv_qp *ibqp)
{
	struct shca_qp *qp = (struct shca_qp *)ibqp;
	struct shca_ctx *ctx = qp->ctx;
	uint32_t idx = ibqp->qp_num - SHCA_QPN_BASE;

	pthread_mutex_lock(&ctx->lock);
	if (idx < ctx->nqps && ctx->qps[idx] == qp)
		ctx->qps[idx] = NULL;
	pthread_mutex_unlock(&ctx->lock);
	pthread_mutex_lock(&qp->lock);
	qp->destroyed = 1;
	pthread_mutex_unlock(&qp->lock);
	shca__sync(ctx); /* the progress thread has dropped every connection of this QP */
	if (qp->new_out_fd >= 0)
		close(qp->new_out_fd);
	SHCA_DBG("destroy_qp 0x%x", ibqp->qp_num);
	pthread_cond_destroy(&qp->ibqp.cond);
	pthread_mutex_destroy(&qp->ibqp.mutex);
	pthread_mutex_destroy(&qp->lock);
	shca_qp_free(qp);
	return 0;
}

/* ---------------------------------------------------------------- modify */

enum { S_RESET, S_INIT, S_RTR, S_RTS, S_ERR, S_N };

struct shca_trans {
	int valid;
	int req, opt;
};

/* RC rows of the IBTA QP state transition table (as the kernel's qp_state_table). */
static const struct shca_trans shca_trans[S_N][S_N] =
    {
	[S_RESET] =
	    {
		[S_RESET] = {1, 0, 0},
		[S_ERR] = {1, 0, 0},
		[S_INIT] = {1, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, 0},
	    },
	[S_INIT] =
	    {
		[S_RESET] = {1, 0, 0},
		[S_ERR] = {1, 0, 0},
		[S_INIT] = {1, 0, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS},
		[S_RTR] = {1,
			   IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			       IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
			   IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS | IBV_QP_PKEY_INDEX},
	    },
	[S_RTR] =
	    {
		[S_RESET] = {1, 0, 0},
		[S_ERR] = {1, 0, 0},
		[S_RTS] = {1,
			   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
			       IBV_QP_MAX_QP_RD_ATOMIC,
			   IBV_QP_CUR_STATE | IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS |
			       IBV_QP_MIN_RNR_TIMER | IBV_QP_PATH_MIG_STATE},
	    },
	[S_RTS] =
	    {
		[S_RESET] = {1, 0, 0},
		[S_ERR] = {1, 0, 0},
		[S_RTS] = {1, 0,
			   IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS | IBV_QP_ALT_PATH |
			       IBV_QP_PATH_MIG_STATE | IBV_QP_MIN_RNR_TIMER},
	    },
	[S_ERR] =
	    {
		[S_RESET] = {1, 0, 0},
		[S_ERR] = {1, 0, 0},
	    },
};

static int shca_state_idx(enum ibv_qp_state s)
{
	switch (s) {
	case IBV_QPS_RESET:
		return S_RESET;
	case IBV_QPS_INIT:
		return S_INIT;
	case IBV_QPS_RTR:
		return S_RTR;
	case IBV_QPS_RTS:
		return S_RTS;
	case IBV_QPS_ERR:
		return S_ERR;
	default:
		return -1; /* SQD, SQE: not modelled */
	}
}

#define SHCA_QP_ACCESS                                                                             \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |               \
	 IBV_ACCESS_REMOTE_ATOMIC)

/* Is the address vector usable on this port? */
static int shca_check_av(struct shca_ctx *ctx, const struct ibv_ah_attr *ah)
{
	if (ah->port_num != 1)
		return -EINVAL;
	if (ah->is_global) {
		if (!shca__gid(ctx, ah->grh.sgid_index))
			return -EINVAL;
		return 0;
	}
	if (shca__config()->link_layer == IBV_LINK_LAYER_ETHERNET)
		return -EINVAL; /* RoCE needs a GRH */
	return ah->dlid ? 0 : -EINVAL;
}

static int shca_check_values(struct shca_qp *qp, const struct ibv_qp_attr *a, int mask)
{
	if ((mask & IBV_QP_PORT) && a->port_num != 1)
		return -EINVAL;
	if ((mask & IBV_QP_PKEY_INDEX) && a->pkey_index != 0)
		return -EINVAL;
	if ((mask & IBV_QP_ACCESS_FLAGS) && (a->qp_access_flags & ~(unsigned)SHCA_QP_ACCESS))
		return -EINVAL;
	if ((mask & IBV_QP_PATH_MTU) && (a->path_mtu < IBV_MTU_256 || a->path_mtu > IBV_MTU_4096))
		return -EINVAL;
	if ((mask & IBV_QP_DEST_QPN) && a->dest_qp_num > 0xffffff)
		return -EINVAL;
	if ((mask & IBV_QP_MAX_DEST_RD_ATOMIC) && a->max_dest_rd_atomic > SHCA_MAX_RD_ATOMIC)
		return -EINVAL;
	if ((mask & IBV_QP_MAX_QP_RD_ATOMIC) && a->max_rd_atomic > SHCA_MAX_RD_ATOMIC)
		return -EINVAL;
	if ((mask & IBV_QP_TIMEOUT) && a->timeout > 31)
		return -EINVAL;
	if ((mask & IBV_QP_RETRY_CNT) && a->retry_cnt > 7)
		return -EINVAL;
	if ((mask & IBV_QP_RNR_RETRY) && a->rnr_retry > 7)
		return -EINVAL;
	if ((mask & IBV_QP_MIN_RNR_TIMER) && a->min_rnr_timer > 31)
		return -EINVAL;
	if ((mask & IBV_QP_AV) && shca_check_av(qp->ctx, &a->ah_attr))
		return -EINVAL;
	return 0;
}

static void shca_apply(struct shca_qp *qp, const struct ibv_qp_attr *a, int mask)
{
	if (mask & IBV_QP_PORT)
		qp->port_num = a->port_num;
	if (mask & IBV_QP_PKEY_INDEX)
		qp->pkey_index = a->pkey_index;
	if (mask & IBV_QP_ACCESS_FLAGS)
		qp->access = a->qp_access_flags;
	if (mask & IBV_QP_PATH_MTU)
		qp->path_mtu = a->path_mtu;
	if (mask & IBV_QP_DEST_QPN)
		qp->dest_qpn = a->dest_qp_num;
	if (mask & IBV_QP_RQ_PSN)
		qp->rq_psn = a->rq_psn & 0xffffff;
	if (mask & IBV_QP_SQ_PSN)
		qp->sq_psn = a->sq_psn & 0xffffff;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		qp->max_dest_rd_atomic = a->max_dest_rd_atomic;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		qp->max_rd_atomic = a->max_rd_atomic;
	if (mask & IBV_QP_TIMEOUT)
		qp->timeout = a->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		qp->retry_cnt = a->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		qp->rnr_retry = a->rnr_retry;
	if (mask & IBV_QP_MIN_RNR_TIMER)
		qp->min_rnr_timer = a->min_rnr_timer;
	if (mask & IBV_QP_AV) {
		qp->ah = a->ah_attr;
		qp->peer_lid = a->ah_attr.is_global ? shca__lid_from_gid(&a->ah_attr.grh.dgid)
						    : a->ah_attr.dlid;
	}
}

/* Back to a fresh QP: the progress thread has let go of it (shca__sync) first. */
static void shca_qp_reset(struct shca_qp *qp)
{
	pthread_mutex_lock(&qp->lock);
	qp->generation++; /* connections attached before this are closed by the next pass */
	pthread_mutex_unlock(&qp->lock);
	shca__sync(qp->ctx);
	pthread_mutex_lock(&qp->lock);
	qp->sq_head = qp->sq_tail = qp->sq_next_tx = 0;
	qp->rq_head = qp->rq_tail = 0;
	qp->tx_seq = 0;
	qp->acked_seq = 0;
	qp->tx_stopped = 0;
	qp->out_dead = 0;
	qp->retry_deadline_ns = 0;
	if (qp->new_out_fd >= 0)
		close(qp->new_out_fd);
	qp->new_out_fd = -1;
	pthread_mutex_unlock(&qp->lock);
}

/* INIT->RTR: call the peer. A peer that cannot be reached is found out when sending. */
static void shca_qp_connect(struct shca_qp *qp)
{
	int fd = shca__connect(qp->ctx, qp);

	pthread_mutex_lock(&qp->lock);
	if (fd >= 0)
		qp->new_out_fd = fd;
	else
		qp->out_dead = 1;
	pthread_mutex_unlock(&qp->lock);
	shca__wake(qp->ctx);
}

SHCA_EXPORT int ibv_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask)
{
	struct shca_qp *qp = (struct shca_qp *)ibqp;
	enum ibv_qp_state cur, next;
	const struct shca_trans *t;
	int ci, ni, rc = 0;

	pthread_mutex_lock(&qp->lock);
	cur = qp->state;
	next = (mask & IBV_QP_STATE) ? attr->qp_state : cur;
	ci = shca_state_idx(cur);
	ni = shca_state_idx(next);
	if (ci < 0 || ni < 0 || !shca_trans[ci][ni].valid) {
		rc = EINVAL;
		goto unlock;
	}
	t = &shca_trans[ci][ni];
	if ((mask & IBV_QP_CUR_STATE) &&
	    (attr->cur_qp_state != cur || (cur != IBV_QPS_RTR && cur != IBV_QPS_RTS))) {
		rc = EINVAL;
		goto unlock;
	}
	if ((mask & t->req) != t->req || (mask & ~(t->req | t->opt | IBV_QP_STATE))) {
		rc = EINVAL;
		goto unlock;
	}
	if (shca_check_values(qp, attr, mask)) {
		rc = EINVAL;
		goto unlock;
	}
	shca_apply(qp, attr, mask);
	qp->state = next;
	qp->ibqp.state = next;
unlock:
	pthread_mutex_unlock(&qp->lock);
	if (rc) {
		SHCA_DBG("modify_qp 0x%x %d->%d mask 0x%x: EINVAL", ibqp->qp_num, cur, next, mask);
		errno = rc;
		return rc;
	}
	SHCA_DBG("modify_qp 0x%x %d->%d mask 0x%x", ibqp->qp_num, cur, next, mask);
	if (next == IBV_QPS_RESET && cur != IBV_QPS_RESET)
		shca_qp_reset(qp);
	else if (next == IBV_QPS_RTR && cur == IBV_QPS_INIT)
		shca_qp_connect(qp);
	else if (next == IBV_QPS_ERR)
		shca__wake(qp->ctx);
	return 0;
}

SHCA_EXPORT int ibv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *a, int mask,
			     struct ibv_qp_init_attr *init)
{
	struct shca_qp *qp = (struct shca_qp *)ibqp;

	memset(a, 0, sizeof(*a));
	memset(init, 0, sizeof(*init));
	pthread_mutex_lock(&qp->lock);
	a->qp_state = qp->state;
	a->cur_qp_state = qp->state;
	a->path_mtu = qp->path_mtu;
	a->path_mig_state = IBV_MIG_MIGRATED;
	a->rq_psn = qp->rq_psn;
	a->sq_psn = qp->sq_psn;
	a->dest_qp_num = qp->dest_qpn;
	a->qp_access_flags = qp->access;
	a->cap = qp->cap;
	a->ah_attr = qp->ah;
	a->pkey_index = qp->pkey_index;
	a->max_rd_atomic = qp->max_rd_atomic;
	a->max_dest_rd_atomic = qp->max_dest_rd_atomic;
	a->min_rnr_timer = qp->min_rnr_timer;
	a->port_num = qp->port_num;
	a->timeout = qp->timeout;
	a->retry_cnt = qp->retry_cnt;
	a->rnr_retry = qp->rnr_retry;
	pthread_mutex_unlock(&qp->lock);
	init->qp_context = ibqp->qp_context;
	init->send_cq = ibqp->send_cq;
	init->recv_cq = ibqp->recv_cq;
	init->cap = qp->cap;
	init->qp_type = IBV_QPT_RC;
	init->sq_sig_all = qp->sq_sig_all;
	return 0;
}

SHCA_EXPORT int ibv_query_qp_data_in_order(struct ibv_qp *qp, enum ibv_wr_opcode op, uint32_t flags)
{
	return 1; /* IBV_QUERY_QP_DATA_IN_ORDER_WHOLE_MSG: data lands in order */
}

SHCA_EXPORT int ibv_query_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	return EOPNOTSUPP;
}

SHCA_EXPORT int ibv_set_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	return EOPNOTSUPP;
}

/* ---------------------------------------------------------------- post */

static int shca_wr_supported(enum ibv_wr_opcode op)
{
	return op == IBV_WR_SEND || op == IBV_WR_SEND_WITH_IMM || op == IBV_WR_RDMA_WRITE ||
	       op == IBV_WR_RDMA_WRITE_WITH_IMM || op == IBV_WR_RDMA_READ;
}

/* Copy one WR into its slot (qp->lock held). */
static int shca_post_one(struct shca_qp *qp, const struct ibv_send_wr *wr, uint64_t now)
{
	struct shca_swqe *w;
	uint64_t len = 0;
	int i, inl;

	if (!shca_wr_supported(wr->opcode) || wr->num_sge < 0 ||
	    (uint32_t)wr->num_sge > qp->cap.max_send_sge)
		return EINVAL;
	if (qp->sq_head - qp->sq_tail >= qp->sq_size)
		return ENOMEM;
	for (i = 0; i < wr->num_sge; i++)
		len += wr->sg_list[i].length;
	if (len > SHCA_MAX_MSG)
		return EINVAL;
	inl = (wr->send_flags & IBV_SEND_INLINE) && wr->opcode != IBV_WR_RDMA_READ;
	if (inl && len > qp->cap.max_inline_data)
		return EINVAL;
	w = &qp->sq[qp->sq_head % qp->sq_size];
	w->wr_id = wr->wr_id;
	w->opcode = wr->opcode;
	w->send_flags = wr->send_flags;
	w->signaled = qp->sq_sig_all || (wr->send_flags & IBV_SEND_SIGNALED);
	w->imm = wr->imm_data;
	w->raddr = wr->wr.rdma.remote_addr;
	w->rkey = wr->wr.rdma.rkey;
	w->len = (uint32_t)len;
	w->post_ns = now;
	w->stage = SHCA_SWQE_QUEUED;
	w->status = IBV_WC_SUCCESS;
	w->nsge = inl ? 0 : wr->num_sge;
	if (inl) {
		uint8_t *p = w->inline_buf;

		for (i = 0; i < wr->num_sge; i++) {
			if (!wr->sg_list[i].length)
				continue;
			memcpy(p, (void *)(uintptr_t)wr->sg_list[i].addr, wr->sg_list[i].length);
			p += wr->sg_list[i].length;
		}
	} else if (wr->num_sge) {
		memcpy(w->sge, wr->sg_list, (size_t)wr->num_sge * sizeof(*w->sge));
	}
	w->seq = 0;
	qp->sq_head++;
	return 0;
}

int shca__post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	struct shca_qp *qp = (struct shca_qp *)ibqp;
	uint64_t now = shca__now_ns();
	int rc = 0, posted = 0;

	pthread_mutex_lock(&qp->lock);
	if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR)
		rc = EINVAL;
	for (; wr && !rc; wr = wr->next) {
		rc = shca_post_one(qp, wr, now);
		if (rc)
			break;
		posted++;
	}
	pthread_mutex_unlock(&qp->lock);
	if (rc && bad)
		*bad = wr;
	if (posted)
		shca__wake(qp->ctx);
	return rc;
}

int shca__post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	struct shca_qp *qp = (struct shca_qp *)ibqp;
	int rc = 0, posted = 0, err;

	pthread_mutex_lock(&qp->lock);
	if (qp->state == IBV_QPS_RESET)
		rc = EINVAL;
	for (; wr && !rc; wr = wr->next) {
		struct shca_rwqe *r;

		if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_recv_sge) {
			rc = EINVAL;
			break;
		}
		if (qp->rq_head - qp->rq_tail >= qp->rq_size) {
			rc = ENOMEM;
			break;
		}
		r = &qp->rq[qp->rq_head % qp->rq_size];
		r->wr_id = wr->wr_id;
		r->nsge = wr->num_sge;
		if (wr->num_sge)
			memcpy(r->sge, wr->sg_list, (size_t)wr->num_sge * sizeof(*r->sge));
		qp->rq_head++;
		posted++;
	}
	err = qp->state == IBV_QPS_ERR;
	pthread_mutex_unlock(&qp->lock);
	if (rc && bad)
		*bad = wr;
	if (posted && (err || atomic_load(&qp->rnr_waiting)))
		shca__wake(qp->ctx);
	return rc;
}
