/* SPDX-License-Identifier: MIT */
/* engine.c - programs and the progress engine that runs them (comm.h says how). */
#include "comm.h"
#include "comm_int.h"
#include "ibc_common.h"
#include "launch.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define ENG_MAX_DEPTH IBC__ENG_MAX_DEPTH
#define ENG_MAX_SENDS 256

/* Engine state of one link during a program run. */
struct ibc_eng_link {
	struct ibc_link *l; /* borrowed */
	int lane;
	int *rops; /* owned: indices (in lane order) of this link's receive ops */
	int nrops, caprops;
	int posted, done; /* receives pre-posted / completed, indices into rops */
	struct ibc_tp_req *rreq[ENG_MAX_DEPTH];
	uint64_t rticket[ENG_MAX_DEPTH]; /* staged receive slot: its device copy */
	bool rbusy[ENG_MAX_DEPTH];
	struct send_ent {
		const void *src; /* borrowed: user buffer or staging slot */
		size_t bytes;
		struct ibc_tp_mr *mr; /* borrowed */
		uint64_t ticket; /* staged: the device-to-host copy */
		bool copying;
	} sq[ENG_MAX_SENDS]; /* sends in order: [stail, spost) posted, [spost, shead) not yet */
	struct ibc_tp_req *sreq[ENG_MAX_SENDS];
	int shead, spost, stail;
	int max_sends;
};

/* ---------------------------------------------------------------- programs */

int ibc_prog_init(struct ibc_prog *p, int nlanes, struct ibc_link **links, int nlinks,
		  enum ibc_dtype dt, enum ibc_op op, int nranks)
{
	memset(p, 0, sizeof(*p));
	p->lanes = calloc((size_t)(nlanes ? nlanes : 1), sizeof(*p->lanes));
	p->eng = calloc((size_t)(nlinks ? nlinks : 1), sizeof(*p->eng));
	if (!p->lanes || !p->eng) {
		ibc_prog_free(p);
		return -ENOMEM;
	}
	p->nlanes = nlanes;
	p->links = links;
	p->nlinks = nlinks;
	p->dt = dt;
	p->op = op;
	p->nranks = nranks;
	return 0;
}

int ibc_prog_set_links(struct ibc_prog *p, struct ibc_link **links, int nlinks)
{
	struct ibc_eng_link *eng = calloc((size_t)(nlinks ? nlinks : 1), sizeof(*eng));

	if (!eng) {
		free(links);
		return -ENOMEM;
	}
	free(p->eng);
	free(p->links);
	p->eng = eng;
	p->links = links;
	p->nlinks = nlinks;
	return 0;
}

int ibc_prog_add(struct ibc_prog *p, int lane, const struct ibc_step *op)
{
	struct ibc_lane *ln = &p->lanes[lane];

	if (ln->nops == ln->cap) {
		int cap = ln->cap ? ln->cap * 2 : 64;
		struct ibc_step *n = realloc(ln->ops, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		ln->ops = n;
		ln->cap = cap;
	}
	ln->ops[ln->nops++] = *op;
	if (op->kind == IBC_OPK_RECV_REDUCE || op->kind == IBC_OPK_RECV_COPY) {
		struct ibc_eng_link *el = &p->eng[op->link];

		if (el->nrops == el->caprops) {
			int cap = el->caprops ? el->caprops * 2 : 64;
			int *n = realloc(el->rops, (size_t)cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			el->rops = n;
			el->caprops = cap;
		}
		el->rops[el->nrops++] = ln->nops - 1;
		el->lane = lane;
	}
	return 0;
}

void ibc_prog_free(struct ibc_prog *p)
{
	int i;

	for (i = 0; p->lanes && i < p->nlanes; i++)
		free(p->lanes[i].ops);
	for (i = 0; p->eng && i < p->nlinks; i++)
		free(p->eng[i].rops);
	free(p->lanes);
	free(p->eng);
	free(p->links);
	memset(p, 0, sizeof(*p));
}

struct run {
	struct ibc_comm *c;
	struct ibc_prog *p;
	size_t esize;
	struct ibc_buf **slots; /* per program link, borrowed */
	/* device copies started and not yet seen done: only polling notices them finish (no
	 * transport event does), so the engine must not sleep in the transport's wait() */
	int dev_busy;
};

/* Staging slot `slot` of a link is free again once its previous copy to the device finished.
 * Returns 1 when free, 0 while that copy runs, or a negative errno. */
static inline int slot_free(struct run *R, struct ibc_eng_link *el, int slot)
{
	struct ibc_comm *c = R->c;
	int rc;

	if (!el->rbusy[slot])
		return 1;
	rc = c->mem->done(c->memctx, el->rticket[slot]);
	if (rc < 0)
		return ibc__comm_mem_fail(c, rc, "copying to the device");
	if (!rc)
		return 0;
	el->rbusy[slot] = false;
	R->dev_busy--;
	return 1;
}

static int prepost(struct run *R, int li, bool *progress)
{
	struct ibc_eng_link *el = &R->p->eng[li];
	struct ibc_link *l = el->l;
	struct ibc_comm *c = R->c;

	while (el->posted < el->nrops && el->posted - el->done < c->depth) {
		const struct ibc_step *op = &R->p->lanes[el->lane].ops[el->rops[el->posted]];
		size_t bytes = op->count * R->esize;
		int slot = el->posted % c->depth;
		void *dst;
		struct ibc_tp_mr *mr;
		int rc;

		if (op->kind == IBC_OPK_RECV_COPY && !c->staged) {
			dst = op->dst;
			mr = op->mr;
		} else {
			struct ibc_buf *s = R->slots[li];

			rc = slot_free(R, el, slot);
			if (rc <= 0) /* 0: its copy to the device is still running */
				return rc;
			dst = (char *)s->ptr + (size_t)slot * c->max_chunk;
			mr = s->mr;
		}
		rc = c->ops->post_recv(l->r, dst, bytes, l->seq, mr, &el->rreq[slot]);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return ibc__comm_tp_fail(c, rc, l, "posting a receive");
		l->seq++;
		el->posted++;
		*progress = true;
	}
	return 0;
}

/* Post queued sends in order (staged ones once their device copy finished), then reap
 * completions. */
static int poll_sends(struct run *R, int li, bool *progress)
{
	struct ibc_eng_link *el = &R->p->eng[li];
	struct ibc_comm *c = R->c;
	int rc;

	while (el->spost != el->shead) {
		struct send_ent *e = &el->sq[el->spost % ENG_MAX_SENDS];

		if (e->copying) {
			rc = c->mem->done(c->memctx, e->ticket);
			if (rc < 0)
				return ibc__comm_mem_fail(c, rc, "copying from the device");
			if (!rc)
				break;
			e->copying = false;
			R->dev_busy--;
		}
		rc = c->ops->post_send(el->l->s, e->src, e->bytes, el->l->seq, e->mr,
				       &el->sreq[el->spost % ENG_MAX_SENDS]);
		if (rc == -EAGAIN)
			break;
		if (rc)
			return ibc__comm_tp_fail(c, rc, el->l, "posting a send");
		el->l->seq++;
		el->spost++;
		*progress = true;
	}
	while (el->stail != el->spost) {
		int done = 0;
		size_t sz;

		rc = c->ops->test(el->sreq[el->stail % ENG_MAX_SENDS], &done, &sz);
		if (rc)
			return ibc__comm_tp_fail(c, rc, el->l, "sending");
		if (!done)
			break;
		el->stail++;
		*progress = true;
	}
	return 0;
}

/* Make data the NIC wrote into device memory visible before a kernel reads it. */
static int flush_recv(struct run *R, struct ibc_eng_link *el, void *data, size_t bytes,
		      struct ibc_tp_mr *mr)
{
	struct ibc_comm *c = R->c;
	struct ibc_tp_req *req = NULL;
	uint64_t t0 = ibc_now_ns();
	int rc, done = 0;

	if (!c->device || c->staged || !(c->props.caps & IBC_TP_CAP_NEEDS_FLUSH) ||
	    !IBC_TP_HAS(c->ops, flush))
		return 0;
	rc = c->ops->flush(el->l->r, data, bytes, mr, &req);
	while (!rc && req && !done) {
		uint64_t now;

		rc = c->ops->test(req, &done, NULL);
		now = ibc_now_ns();
		ibc_launch_beat(now, c->timeout_ms);
		if (!rc && !done && now - t0 > (uint64_t)c->timeout_ms * 1000000ull)
			rc = -ETIMEDOUT;
	}
	return rc ? ibc__comm_tp_fail(c, rc, el->l, "flushing a receive") : 0;
}

/* Queue a send (staged: first copy src from the device into the next staging slot) and post
 * what can go. Returns 1 when queued, 0 when the queue is full, <0 on error. */
static inline int step_send(struct run *R, const struct ibc_step *op, size_t bytes)
{
	struct ibc_comm *c = R->c;
	struct ibc_eng_link *el = &R->p->eng[op->link];
	struct send_ent *e;
	bool prog = false;
	int rc;

	if (el->shead - el->stail >= el->max_sends ||
	    (c->staged && el->shead - el->stail >= c->depth))
		return 0;
	e = &el->sq[el->shead % ENG_MAX_SENDS];
	e->bytes = bytes;
	e->copying = false;
	if (c->staged) {
		struct ibc_buf *s = R->slots[op->link];
		void *slot = (char *)s->ptr + (size_t)(el->shead % c->depth) * c->max_chunk;

		e->src = slot;
		e->mr = s->mr;
		if (bytes) {
			rc = c->mem->copy_async(c->memctx, slot, op->src, bytes, IBC_COPY_D2H,
						&e->ticket);
			if (rc)
				return ibc__comm_mem_fail(c, rc, "copying from the device");
			e->copying = true;
			R->dev_busy++;
		}
	} else {
		e->src = op->src;
		e->mr = op->mr;
	}
	el->shead++;
	rc = poll_sends(R, op->link, &prog);
	return rc ? rc : 1;
}

static int bad_size(const struct ibc_comm *c, const struct ibc_link *l, size_t sz, size_t bytes)
{
	ibc_err_set("rank %d: message of %zu bytes from rank %d, expected %zu: ranks disagree on "
		    "sizes or options",
		    c->rank, sz, l->peer, bytes);
	return -EPROTO;
}

/* A receive on a transport with direct reads: reduce or copy straight from its buffer. */
static inline int step_recv_direct(struct run *R, const struct ibc_step *op,
				   struct ibc_eng_link *el, size_t bytes)
{
	struct ibc_comm *c = R->c;
	struct ibc_prog *p = R->p;
	struct ibc_link *l = el->l;
	const void *data;
	size_t sz = 0;
	int rc;

	rc = c->ops->recv_direct(l->r, l->seq, &data, &sz);
	if (rc == -EAGAIN)
		return 0;
	if (rc)
		return ibc__comm_tp_fail(c, rc, l, "receiving");
	if (sz != bytes)
		return bad_size(c, l, sz, bytes);
	if (op->kind == IBC_OPK_RECV_REDUCE)
		ibc_reduce(op->dst, op->src, data, op->count, p->dt, p->op);
	else if (bytes)
		memcpy(op->dst, data, bytes);
	rc = c->ops->recv_release(l->r);
	if (rc)
		return ibc__comm_tp_fail(c, rc, l, "releasing a receive");
	l->seq++;
	el->done++;
	return 1;
}

/* A receive that landed in its staging slot: reduce it into dst, or (staged) start its copy
 * to the device. */
static inline int recv_from_slot(struct run *R, const struct ibc_step *op,
				 struct ibc_eng_link *el, size_t bytes)
{
	struct ibc_comm *c = R->c;
	struct ibc_prog *p = R->p;
	struct ibc_buf *s = R->slots[op->link];
	int k = el->done % c->depth, rc;
	char *slot = (char *)s->ptr + (size_t)k * c->max_chunk;

	rc = flush_recv(R, el, slot, bytes, s->mr);
	if (rc)
		return rc;
	if (op->kind == IBC_OPK_RECV_COPY) { /* staged: slot -> device */
		if (!bytes)
			return 0;
		rc = c->mem->copy_async(c->memctx, op->dst, slot, bytes, IBC_COPY_H2D,
					&el->rticket[k]);
		if (rc)
			return ibc__comm_mem_fail(c, rc, "copying to the device");
		el->rbusy[k] = true;
		R->dev_busy++;
		return 0;
	}
	if (c->device) {
		rc = c->mem->reduce(c->memctx, op->dst, op->src, slot, op->count, p->dt, p->op);
		return rc ? ibc__comm_mem_fail(c, rc, "reducing") : 0;
	}
	ibc_reduce(op->dst, op->src, slot, op->count, p->dt, p->op);
	return 0;
}

/* RECV_REDUCE, RECV_COPY: complete the oldest pre-posted receive of the link. */
static inline int step_recv(struct run *R, const struct ibc_step *op, size_t bytes)
{
	struct ibc_comm *c = R->c;
	struct ibc_eng_link *el = &R->p->eng[op->link];
	struct ibc_link *l = el->l;
	int rc, done = 0;
	size_t sz = 0;

	if (c->direct)
		return step_recv_direct(R, op, el, bytes);
	if (el->posted == el->done) {
		bool prog = false;

		rc = prepost(R, op->link, &prog);
		if (rc)
			return rc;
		if (el->posted == el->done)
			return 0;
	}
	rc = c->ops->test(el->rreq[el->done % c->depth], &done, &sz);
	if (rc)
		return ibc__comm_tp_fail(c, rc, l, "receiving");
	if (!done)
		return 0;
	if (sz != bytes)
		return bad_size(c, l, sz, bytes);
	if (op->kind == IBC_OPK_RECV_REDUCE || c->staged)
		rc = recv_from_slot(R, op, el, bytes);
	else
		rc = flush_recv(R, el, op->dst, bytes, op->mr);
	if (rc)
		return rc;
	el->done++;
	return 1;
}

static inline int step_finish(struct run *R, const struct ibc_step *op)
{
	struct ibc_comm *c = R->c;
	struct ibc_prog *p = R->p;
	int rc;

	if (c->device) {
		rc = c->mem->finish(c->memctx, op->dst, op->count, p->dt, p->op, p->nranks);
		return rc ? ibc__comm_mem_fail(c, rc, "finishing") : 1;
	}
	ibc_reduce_finish(op->dst, op->count, p->dt, p->op, p->nranks);
	return 1;
}

static inline int step_copy(struct run *R, const struct ibc_step *op, size_t bytes)
{
	struct ibc_comm *c = R->c;
	int rc;

	if (op->dst == op->src || !bytes)
		return 1;
	if (c->device) {
		rc = c->mem->copy(c->memctx, op->dst, op->src, bytes, IBC_COPY_D2D);
		return rc ? ibc__comm_mem_fail(c, rc, "copying") : 1;
	}
	memcpy(op->dst, op->src, bytes);
	return 1;
}

/* Execute the op at the lane's pc. Returns 1 when it completed, 0 when blocked, <0 error. */
static inline int step(struct run *R, const struct ibc_step *op)
{
	size_t bytes = op->count * R->esize;

	switch (op->kind) {
	case IBC_OPK_SEND:
		return step_send(R, op, bytes);
	case IBC_OPK_RECV_REDUCE:
	case IBC_OPK_RECV_COPY:
		return step_recv(R, op, bytes);
	case IBC_OPK_WAIT_LANE:
		return R->p->lanes[op->lane].pc >= op->pc;
	case IBC_OPK_WAIT_SENDS:
		return R->p->eng[op->link].stail == R->p->eng[op->link].shead;
	case IBC_OPK_FINISH:
		return step_finish(R, op);
	case IBC_OPK_COPY:
		return step_copy(R, op, bytes);
	}
	return -EINVAL;
}

static int timeout_error(struct run *R)
{
	struct ibc_comm *c = R->c;
	int i;

	for (i = 0; i < R->p->nlanes; i++) {
		struct ibc_lane *ln = &R->p->lanes[i];
		const struct ibc_step *op;
		const struct ibc_link *l;

		if (ln->pc >= ln->nops)
			continue;
		op = &ln->ops[ln->pc];
		if (op->kind == IBC_OPK_WAIT_LANE)
			continue;
		l = R->p->links[op->link];
		ibc_err_set("rank %d (host %s): timed out after %.1f s over %s waiting %s rank %d "
			    "(host %s): message %u on stream %d (%zu bytes) never %s",
			    c->rank, ibc__comm_host(c, c->rank), c->timeout_ms / 1e3, c->ops->name,
			    l->is_send ? "to send to" : "to receive from", l->peer,
			    ibc__comm_host(c, l->peer), l->seq, l->stream, op->count * R->esize,
			    l->is_send ? "found room (the peer stopped receiving)"
				       : "arrived (the peer stopped sending: dead, hung or slow)");
		return -ETIMEDOUT;
	}
	for (i = 0; i < R->p->nlinks; i++) {
		struct ibc_eng_link *el = &R->p->eng[i];

		if (el->stail != el->shead) {
			ibc_err_set("rank %d (host %s): timed out after %.1f s: a send to rank %d "
				    "(host %s) never completed",
				    c->rank, ibc__comm_host(c, c->rank), c->timeout_ms / 1e3,
				    el->l->peer, ibc__comm_host(c, el->l->peer));
			return -ETIMEDOUT;
		}
	}
	ibc_err_set("rank %d: timed out", c->rank);
	return -ETIMEDOUT;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* One pass over every link and lane. Sets *progress when anything moved and *all_done when
 * every op ran and every send completed (then device copies are synchronised). */
static int poll_all(struct run *R, bool *progress, bool *all_done)
{
	struct ibc_comm *c = R->c;
	struct ibc_prog *p = R->p;
	int i, rc;

	*all_done = true;
	for (i = 0; i < p->nlinks; i++) {
		rc = 0;
		if (p->eng[i].l->is_send)
			rc = poll_sends(R, i, progress);
		else if (!c->direct)
			rc = prepost(R, i, progress);
		if (rc)
			return rc;
	}
	for (i = 0; i < p->nlanes; i++) {
		struct ibc_lane *ln = &p->lanes[i];

		while (ln->pc < ln->nops) {
			rc = step(R, &ln->ops[ln->pc]);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
			ln->pc++;
			*progress = true;
		}
		if (ln->pc < ln->nops)
			*all_done = false;
	}
	for (i = 0; i < p->nlinks && *all_done; i++)
		if (p->eng[i].stail != p->eng[i].shead)
			*all_done = false;
	if (*all_done && c->device) {
		/* staged copies into the user's buffer must land before we return */
		rc = c->mem->sync(c->memctx);
		if (rc)
			return ibc__comm_mem_fail(c, rc, "synchronising");
	}
	return 0;
}

/* Whether link el needs staging slots for this program: every link when user buffers are
 * staged, else a receive link without direct reads that reduces. */
static bool needs_slots(const struct ibc_comm *c, const struct ibc_prog *p,
			const struct ibc_eng_link *el)
{
	int j, need = c->staged;

	if (!c->staged && (el->l->is_send || c->direct || !el->nrops))
		return false;
	for (j = 0; j < el->nrops; j++)
		need |= p->lanes[el->lane].ops[el->rops[j]].kind == IBC_OPK_RECV_REDUCE;
	return need;
}

/* Reset the engine state of every link and lane; find each link's staging slots. */
static int run_setup(struct run *R)
{
	struct ibc_comm *c = R->c;
	struct ibc_prog *p = R->p;
	int i, rc;

	for (i = 0; i < p->nlinks; i++) {
		struct ibc_eng_link *el = &p->eng[i];

		el->l = p->links[i];
		el->posted = el->done = el->shead = el->spost = el->stail = 0;
		memset(el->rbusy, 0, sizeof(el->rbusy));
		el->max_sends = IBC_MIN(IBC_MAX(c->props.max_requests, 1), ENG_MAX_SENDS);
		R->slots[i] = NULL;
		if (needs_slots(c, p, el)) {
			rc = ibc__comm_link_slots(c, el->l, &R->slots[i]);
			if (rc)
				return rc;
		}
	}
	for (i = 0; i < p->nlanes; i++)
		p->lanes[i].pc = 0;
	return 0;
}

/* Idle-time state of a run: when it last moved, since when it has been idle (0: it is not). */
struct idle {
	uint64_t last, idle_since, tmo;
	bool has_wait; /* the transport can sleep until an event (wait + epoch) */
};

/* Nothing moved and the spin budget is spent: arm the transport's wake-up (epoch), look once
 * more, then wait. Returns 1 when the program completed, 0 to go on, <0 on error. */
static inline int run_sleep(struct run *R, struct idle *I)
{
	struct ibc_comm *c = R->c;
	bool progress = false, all_done = false;
	uint64_t epoch = c->ops->epoch(c->ctx);
	int rc = poll_all(R, &progress, &all_done);

	c->ops->wait(c->ctx, epoch, rc || progress || all_done ? 0 : c->wait_ms);
	if (rc)
		return rc;
	if (all_done)
		return 1;
	if (progress) {
		I->last = ibc_now_ns();
		I->idle_since = 0;
	}
	return 0;
}

/* After a pass over the program: note progress, or check abort and timeout, then spin or
 * sleep. Returns 1 when the program completed, 0 to go on, <0 on error. */
static inline int run_idle(struct run *R, struct idle *I, bool progress)
{
	struct ibc_comm *c = R->c;
	uint64_t now = ibc_now_ns();
	int i;

	ibc_launch_beat(now, c->timeout_ms); /* the --np parent's view of this rank */
	if (progress) {
		I->last = now;
		I->idle_since = 0;
		return 0;
	}
	if (c->abort_flag && *c->abort_flag) {
		ibc_err_set("rank %d (host %s): aborted: another rank died", c->rank,
			    ibc__comm_host(c, c->rank));
		return -ECANCELED;
	}
	if (now - I->last > I->tmo)
		return timeout_error(R);
	if (!I->idle_since)
		I->idle_since = now;
	/* Spin: poll the queues directly, which costs no peer anything. With more ranks than
	 * cores, yield every round so the rank we wait for gets this core. While a device copy
	 * is in flight keep polling: no transport event announces its end. */
	if (I->has_wait && !R->dev_busy && now - I->idle_since >= (uint64_t)c->spin_ns)
		return run_sleep(R, I);
	if (c->oversubscribed || now - I->idle_since > 4000 || !I->has_wait)
		sched_yield();
	else
		for (i = 0; i < 32; i++)
			cpu_relax();
	return 0;
}

int ibc_prog_run(struct ibc_comm *c, struct ibc_prog *p)
{
	struct ibc_buf *slots_store[64];
	struct run R = { .c = c, .p = p, .esize = ibc_dtype_size(p->dt) };
	struct idle I = { .last = ibc_now_ns(), .tmo = (uint64_t)c->timeout_ms * 1000000ull,
			  .has_wait = IBC_TP_HAS(c->ops, wait) && IBC_TP_HAS(c->ops, epoch) };
	int rc;

	R.slots = p->nlinks <= 64 ? slots_store : calloc((size_t)p->nlinks, sizeof(*R.slots));
	if (!R.slots)
		return -ENOMEM;
	rc = run_setup(&R);
	while (!rc) {
		bool progress = false, all_done = false;

		rc = poll_all(&R, &progress, &all_done);
		if (rc || all_done)
			break;
		rc = run_idle(&R, &I, progress);
	}
	if (R.slots != slots_store)
		free(R.slots);
	return rc < 0 ? rc : 0;
}
