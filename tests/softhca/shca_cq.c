/* SPDX-License-Identifier: MIT */
/*
 * shca_cq.c - completion queues (a ring under a mutex, filled by the progress thread and by
 * post_* for immediate flushes, drained by ibv_poll_cq) and completion channels.
 */
#include "shca.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

SHCA_EXPORT struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *context)
{
	struct shca_channel *ch = calloc(1, sizeof(*ch));
	int p[2];

	if (!ch) {
		errno = ENOMEM;
		return NULL;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(ch);
		return NULL;
	}
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	ch->ibch.context = context;
	ch->ibch.fd = p[0];
	ch->wfd = p[1];
	return &ch->ibch;
}

SHCA_EXPORT int ibv_destroy_comp_channel(struct ibv_comp_channel *channel)
{
	struct shca_channel *ch = (struct shca_channel *)channel;

	if (channel->refcnt)
		return EBUSY;
	close(ch->ibch.fd);
	close(ch->wfd);
	free(ch);
	return 0;
}

SHCA_EXPORT int ibv_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq,
				 void **cq_context)
{
	struct shca_cq *scq;
	ssize_t n = read(channel->fd, &scq, sizeof(scq));

	if (n != (ssize_t)sizeof(scq)) {
		if (n >= 0)
			errno = EIO;
		return -1;
	}
	*cq = &scq->ibcq;
	*cq_context = scq->ibcq.cq_context;
	return 0;
}

SHCA_EXPORT void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	pthread_mutex_lock(&cq->mutex);
	cq->comp_events_completed += nevents;
	pthread_mutex_unlock(&cq->mutex);
}

SHCA_EXPORT struct ibv_cq *ibv_create_cq(struct ibv_context *context, int cqe, void *cq_context,
					 struct ibv_comp_channel *channel, int comp_vector)
{
	struct shca_cq *cq;

	if (cqe < 1 || cqe > SHCA_MAX_CQE || comp_vector < 0 ||
	    comp_vector >= context->num_comp_vectors) {
		errno = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		errno = ENOMEM;
		return NULL;
	}
	cq->size = (uint32_t)cqe;
	cq->ring = calloc(cq->size, sizeof(*cq->ring));
	if (!cq->ring) {
		free(cq);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&cq->lock, NULL);
	cq->ibcq.context = context;
	cq->ibcq.channel = channel;
	cq->ibcq.cq_context = cq_context;
	cq->ibcq.cqe = cqe;
	pthread_mutex_init(&cq->ibcq.mutex, NULL);
	pthread_cond_init(&cq->ibcq.cond, NULL);
	if (channel)
		channel->refcnt++;
	return &cq->ibcq;
}

SHCA_EXPORT int ibv_resize_cq(struct ibv_cq *cq, int cqe)
{
	return EOPNOTSUPP;
}

SHCA_EXPORT int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	struct shca_cq *cq = (struct shca_cq *)ibcq;
	struct shca_ctx *ctx = shca_ctx_of(ibcq->context);
	uint32_t i;
	int busy = 0;

	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < ctx->nqps && !busy; i++)
		busy = ctx->qps[i] && (ctx->qps[i]->scq == cq || ctx->qps[i]->rcq == cq);
	pthread_mutex_unlock(&ctx->lock);
	if (busy)
		return EBUSY;
	if (ibcq->channel)
		ibcq->channel->refcnt--;
	pthread_cond_destroy(&ibcq->cond);
	pthread_mutex_destroy(&ibcq->mutex);
	pthread_mutex_destroy(&cq->lock);
	free(cq->ring);
	free(cq);
	return 0;
}

/* Add one completion. A full ring is an overrun: the CQ is in error from then on. */
void shca__cq_push(struct shca_cq *cq, const struct ibv_wc *wc)
{
	struct shca_channel *ch = (struct shca_channel *)cq->ibcq.channel;
	uint64_t head;

	pthread_mutex_lock(&cq->lock);
	head = atomic_load_explicit(&cq->head, memory_order_relaxed);
	if (cq->overflow) {
		pthread_mutex_unlock(&cq->lock);
		return;
	}
	if (head - atomic_load(&cq->tail) >= cq->size) {
		cq->overflow = 1;
		atomic_store(&cq->head, head); /* publish the flag with the release below */
		pthread_mutex_unlock(&cq->lock);
		shca__log("CQ %p overrun (%u entries): completion of wr_id %llu lost", (void *)cq,
			  cq->size, (unsigned long long)wc->wr_id);
		shca__async_event(shca_ctx_of(cq->ibcq.context), IBV_EVENT_CQ_ERR, &cq->ibcq);
		return;
	}
	cq->ring[head % cq->size] = *wc;
	atomic_store_explicit(&cq->head, head + 1, memory_order_release);
	if (cq->armed && ch) {
		struct shca_cq *self = cq;

		cq->armed = 0;
		if (write(ch->wfd, &self, sizeof(self)) != (ssize_t)sizeof(self))
			SHCA_DBG("completion event on CQ %p dropped", (void *)cq);
	}
	pthread_mutex_unlock(&cq->lock);
}

int shca__poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct shca_cq *cq = (struct shca_cq *)ibcq;
	uint64_t head, tail;
	int got = 0;

	if (atomic_load_explicit(&cq->head, memory_order_acquire) ==
		atomic_load_explicit(&cq->tail, memory_order_relaxed) &&
	    !cq->overflow) {
		/* Nothing yet: give the CPU to the progress threads. A software HCA shares the
		 * cores with the pollers; on an oversubscribed machine a spinning poller would
		 * otherwise starve the thread that moves its data. */
		sched_yield();
		return 0;
	}
	pthread_mutex_lock(&cq->lock);
	head = atomic_load(&cq->head);
	tail = atomic_load(&cq->tail);
	while (got < n && tail != head) {
		wc[got++] = cq->ring[tail % cq->size];
		tail++;
	}
	atomic_store(&cq->tail, tail);
	if (!got && cq->overflow)
		got = -EOVERFLOW;
	pthread_mutex_unlock(&cq->lock);
	return got;
}

int shca__req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct shca_cq *cq = (struct shca_cq *)ibcq;

	if (!ibcq->channel)
		return EINVAL;
	pthread_mutex_lock(&cq->lock);
	cq->armed = 1;
	pthread_mutex_unlock(&cq->lock);
	return 0;
}
