/* SPDX-License-Identifier: MIT */
#include "comm.h"
#include "comm_int.h"
#include "ibc_common.h"
#include "launch.h"

#include <sched.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define CONN_TAG(stream) ((0x10u << 24) | ((uint32_t)(stream)&0xffffffu))
#define ENG_MAX_DEPTH IBC__ENG_MAX_DEPTH

static const char *host_of(const struct ibc_comm *c, int rank)
{
	return ibc_boot_host(c->boot, rank);
}

/* Turn a transport failure into a message naming both ends. */
static int tp_fail(struct ibc_comm *c, int rc, const struct ibc_link *l, const char *what)
{
	const char *detail = c->ops->last_error(c->ctx);

	if (rc == -ECANCELED)
		ibc_err_set("rank %d (host %s): aborted while %s rank %d: another rank died",
			    c->rank, host_of(c, c->rank), what, l ? l->peer : -1);
	else
		ibc_err_set("rank %d (host %s): %s: %s %s rank %d (host %s) failed: %s", c->rank,
			    host_of(c, c->rank), c->ops->name, what, l && l->is_send ? "to" : "from",
			    l ? l->peer : -1, l ? host_of(c, l->peer) : "?",
			    detail && *detail ? detail : strerror(-rc));
	return rc;
}

int ibc_comm_init(struct ibc_comm *c, struct ibc_boot *boot, const struct ibc_comm_opts *o)
{
	int rc, ndev = 0;

	memset(c, 0, sizeof(*c));
	c->boot = boot;
	c->ops = o->ops;
	c->cfg = o->cfg;
	c->cfg.size = sizeof(c->cfg); /* o->cfg is this header's struct, zero-filled */
	c->rank = ibc_boot_rank(boot);
	c->nranks = ibc_boot_nranks(boot);
	c->timeout_ms = o->timeout_ms;
	c->abort_flag = o->abort_flag;
	c->depth = IBC_MAX(1, IBC_MIN(o->depth, ENG_MAX_DEPTH));
	c->max_chunk = o->max_chunk;
	c->cfg.rank = c->rank;
	c->cfg.nranks = c->nranks;
	c->cfg.local_rank = ibc_boot_local_rank(boot);
	c->cfg.local_size = ibc_boot_local_size(boot);
	c->cfg.job_id = ibc_boot_job_id(boot);
	c->cfg.job_key = ibc_boot_job_key(boot, &c->cfg.job_key_len);
	c->cfg.hostname = ibc_boot_host(boot, c->rank);
	c->cfg.local_addr = ibc_boot_local_addr(boot);
	c->cfg.timeout_ms = o->timeout_ms;
	c->cfg.abort_flag = o->abort_flag;
	ibc_err_clear();
	rc = c->ops->init(&c->cfg, &c->ctx);
	if (rc) {
		ibc_err_prefix("rank %d (host %s): transport %s: ", c->rank, host_of(c, c->rank),
			       c->ops->name);
		return rc;
	}
	rc = c->ops->devices(c->ctx, &ndev);
	if (!rc && ndev < 1)
		rc = -ENODEV;
	if (!rc)
		rc = ibc_tp_get_props(c->ops, c->ctx, 0, &c->props);
	if (rc) {
		tp_fail(c, rc, NULL, "device query");
		c->ops->fini(c->ctx);
		c->ctx = NULL;
		return rc;
	}
	c->mem = o->mem;
	c->memctx = o->memctx;
	if (c->mem) {
		struct ibc_mem_info mi;

		c->device = c->mem->info(c->memctx, &mi) == 0 && mi.is_device;
		c->staged = c->device && !(c->props.mem_kinds & (IBC_MEM_CUDA | IBC_MEM_DMABUF));
	}
	{
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		const char *spin = getenv("IBCOLL_SPIN_NS");

		c->oversubscribed = c->cfg.local_size > ncpu;
		/* a peer answers within microseconds when it has a core; a futex or poll wake-up
		 * costs tens. With more ranks than cores, yield-spin longer instead. */
		c->spin_ns = c->oversubscribed ? 200000 : 50000;
		if (spin)
			c->spin_ns = atoi(spin);
		c->wait_ms = 100;
		if (getenv("IBCOLL_WAIT_MS"))
			c->wait_ms = IBC_MAX(atoi(getenv("IBCOLL_WAIT_MS")), 1);
	}
	c->direct = (c->props.caps & IBC_TP_CAP_DIRECT) && IBC_TP_HAS(c->ops, recv_direct) &&
		    IBC_TP_HAS(c->ops, recv_release) && !c->device;
	if (getenv("IBCOLL_NO_DIRECT"))
		c->direct = false;
	return 0;
}

int ibc_comm_alloc(struct ibc_comm *c, size_t len, struct ibc_buf *b)
{
	struct ibc_tp_buf d = { .kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1 };
	size_t alen = len ? len : 64;
	int rc;

	memset(b, 0, sizeof(*b));
	if ((c->props.caps & IBC_TP_CAP_SHARED_ALLOC) && IBC_TP_HAS(c->ops, mem_alloc)) {
		rc = c->ops->mem_alloc(c->ctx, alen, &b->ptr, &b->mr);
		if (rc)
			return tp_fail(c, rc, NULL, "allocating shared buffers");
		b->len = len;
		b->from_tp = true;
		return 0;
	}
	if (posix_memalign(&b->ptr, 4096, (alen + 4095) & ~(size_t)4095))
		return -ENOMEM;
	d.addr = b->ptr;
	d.len = alen;
	rc = c->ops->reg_mr(c->ctx, 0, &d, &b->mr);
	if (rc) {
		free(b->ptr);
		b->ptr = NULL;
		return tp_fail(c, rc, NULL, "registering memory");
	}
	b->len = len;
	return 0;
}

static int mem_fail(struct ibc_comm *c, int rc, const char *what)
{
	ibc_err_set("rank %d (host %s): %s memory: %s: %s", c->rank, host_of(c, c->rank),
		    c->mem ? c->mem->name : "host", what,
		    c->mem && c->mem->last_error ? c->mem->last_error(c->memctx) : strerror(-rc));
	return rc;
}

int ibc_comm_alloc_user(struct ibc_comm *c, size_t len, struct ibc_buf *b)
{
	struct ibc_tp_buf d = { .kind = IBC_MEM_CUDA, .dmabuf_fd = -1 };
	size_t alen = len ? len : 64;
	int rc;

	if (!c->device)
		return ibc_comm_alloc(c, len, b);
	memset(b, 0, sizeof(*b));
	rc = c->mem->alloc(c->memctx, alen, &b->ptr);
	if (rc)
		return mem_fail(c, rc, "allocating device buffers");
	b->len = len;
	b->device = true;
	if (c->staged)
		return 0;
	d.addr = b->ptr;
	d.len = alen;
	{
		struct ibc_mem_info mi;

		if (c->mem->info(c->memctx, &mi) == 0)
			d.cuda_device = mi.device;
	}
	rc = c->ops->reg_mr(c->ctx, 0, &d, &b->mr);
	if (rc) {
		c->mem->free(c->memctx, b->ptr);
		b->ptr = NULL;
		return tp_fail(c, rc, NULL, "registering device memory");
	}
	return 0;
}

/* Host memory the memory backend copies to/from fast (pinned), for staging. */
static int alloc_staging(struct ibc_comm *c, size_t len, struct ibc_buf *b)
{
	int rc = ibc_comm_alloc(c, len, b);

	if (rc || !c->device || !c->mem->host_register)
		return rc;
	if (c->mem->host_register(c->memctx, b->ptr, len) == 0)
		b->registered = true;
	return 0;
}

/* Receive slots in device memory (the transport writes device memory directly). */
static int alloc_device_slots(struct ibc_comm *c, size_t len, struct ibc_buf *b)
{
	return ibc_comm_alloc_user(c, len, b);
}

int ibc_comm_free(struct ibc_comm *c, struct ibc_buf *b)
{
	int rc = 0;

	if (!b->ptr)
		return 0;
	if (b->registered && c->mem->host_unregister)
		c->mem->host_unregister(c->memctx, b->ptr);
	if (b->device) {
		if (b->mr)
			rc = c->ops->dereg_mr(c->ctx, b->mr);
		c->mem->free(c->memctx, b->ptr);
	} else if (b->from_tp) {
		rc = c->ops->mem_free(c->ctx, b->ptr, b->mr);
	} else {
		if (b->mr)
			rc = c->ops->dereg_mr(c->ctx, b->mr);
		free(b->ptr);
	}
	memset(b, 0, sizeof(*b));
	return rc;
}

static struct ibc_link *find_link(struct ibc_comm *c, const struct ibc_link_req *r)
{
	int i;

	for (i = 0; i < c->nlinks; i++) {
		struct ibc_link *l = c->links[i];

		if (l->peer == r->peer && l->is_send == r->is_send && l->stream == r->stream)
			return l;
	}
	return NULL;
}

static int add_link(struct ibc_comm *c, const struct ibc_link_req *r, struct ibc_link **out)
{
	struct ibc_link *l;

	if (c->nlinks == c->caplinks) {
		int cap = c->caplinks ? c->caplinks * 2 : 16;
		struct ibc_link **n = realloc(c->links, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->links = n;
		c->caplinks = cap;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->peer = r->peer;
	l->is_send = r->is_send;
	l->stream = r->stream;
	c->links[c->nlinks++] = l;
	*out = l;
	return 0;
}

struct pending {
	struct ibc_link *l; /* borrowed from the comm */
	struct ibc_tp_listener *lst; /* owned; closed when ibc_comm_connect returns */
	char handle[IBC_TP_HANDLE_BYTES];
};

/* Phase 1: reuse the links the comm has; add the others to pend, where the receivers listen
 * and ship their handle to the sender. */
static int connect_listen(struct ibc_comm *c, const struct ibc_link_req *req, int n,
			  struct ibc_link **links, struct pending *pend, int *npend)
{
	int i, rc;

	for (i = 0; i < n; i++) {
		struct pending *pd = &pend[*npend];
		struct ibc_link *l = find_link(c, &req[i]);

		if (l) {
			links[i] = l;
			continue;
		}
		if (req[i].peer < 0 || req[i].peer >= c->nranks || req[i].peer == c->rank) {
			ibc_err_set("internal: bad link to rank %d", req[i].peer);
			return -EINVAL;
		}
		rc = add_link(c, &req[i], &l);
		if (rc)
			return rc;
		links[i] = l;
		pd->l = l;
		if (!l->is_send) {
			rc = c->ops->listen(c->ctx, 0, pd->handle, &pd->lst);
			if (rc)
				return tp_fail(c, rc, l, "listening for");
			rc = ibc_boot_send(c->boot, l->peer, CONN_TAG(l->stream), pd->handle,
					   IBC_TP_HANDLE_BYTES);
			if (rc) { /* not counted in *npend yet: the caller would not close it */
				c->ops->close_listen(pd->lst);
				pd->lst = NULL;
				return rc;
			}
		}
		(*npend)++;
	}
	return 0;
}

/* One pass of connect/accept over the links not yet up; *left counts those. */
static int connect_pass(struct ibc_comm *c, struct pending *pend, int npend, int *left)
{
	int i, rc;

	for (i = 0; i < npend; i++) {
		struct ibc_link *l = pend[i].l;

		if (l->s || l->r)
			continue;
		if (l->is_send)
			rc = c->ops->connect(c->ctx, 0, pend[i].handle, &l->s);
		else
			rc = c->ops->accept(pend[i].lst, &l->r);
		if (rc == -EAGAIN)
			continue;
		if (rc)
			return tp_fail(c, rc, l, l->is_send ? "connecting" : "accepting");
		(*left)--;
	}
	return 0;
}

/* Name the first link still down. */
static int connect_timeout(struct ibc_comm *c, const struct pending *pend, int npend)
{
	int i;

	for (i = 0; i < npend && (pend[i].l->s || pend[i].l->r); i++)
		;
	ibc_err_set("rank %d (host %s): timed out after %.1f s connecting %s rank %d (host %s) "
		    "over %s",
		    c->rank, host_of(c, c->rank), c->timeout_ms / 1e3,
		    pend[i].l->is_send ? "to" : "from", pend[i].l->peer,
		    host_of(c, pend[i].l->peer), c->ops->name);
	return -ETIMEDOUT;
}

/* Phase 3: poll connect/accept until every link is up, an abort or the timeout. */
static int connect_poll(struct ibc_comm *c, struct pending *pend, int npend, uint64_t t0)
{
	int rc, left = npend;

	for (;;) {
		rc = connect_pass(c, pend, npend, &left);
		if (rc || !left)
			return rc;
		if (c->abort_flag && *c->abort_flag) {
			ibc_err_set("rank %d: aborted while connecting: another rank died",
				    c->rank);
			return -ECANCELED;
		}
		ibc_launch_beat(ibc_now_ns(), c->timeout_ms);
		if (ibc_now_ns() - t0 > (uint64_t)c->timeout_ms * 1000000ull)
			return connect_timeout(c, pend, npend);
		sched_yield();
	}
}

int ibc_comm_connect(struct ibc_comm *c, const struct ibc_link_req *req, int n,
		     struct ibc_link **links)
{
	struct pending *pend = calloc((size_t)(n ? n : 1), sizeof(*pend));
	int npend = 0, i, rc;
	uint64_t t0 = ibc_now_ns();

	if (!pend)
		return -ENOMEM;
	/* 1. receivers listen and ship handles; 2. senders fetch handles; 3. connect */
	rc = connect_listen(c, req, n, links, pend, &npend);
	for (i = 0; i < npend && !rc; i++) {
		if (!pend[i].l->is_send)
			continue;
		rc = ibc_boot_recv(c->boot, pend[i].l->peer, CONN_TAG(pend[i].l->stream),
				   pend[i].handle, IBC_TP_HANDLE_BYTES);
	}
	if (!rc)
		rc = connect_poll(c, pend, npend, t0);
	for (i = 0; i < npend; i++)
		if (pend[i].lst)
			c->ops->close_listen(pend[i].lst);
	free(pend);
	return rc;
}

int ibc_comm_scratch(struct ibc_comm *c, size_t len, struct ibc_buf **b)
{
	int rc;

	if (!c->scratch.ptr || c->scratch.len < len) {
		ibc_comm_free(c, &c->scratch);
		rc = ibc_comm_alloc(c, len, &c->scratch);
		if (rc)
			return rc;
	}
	*b = &c->scratch;
	return 0;
}

int ibc_comm_fini(struct ibc_comm *c)
{
	int i, rc = 0, r;

	r = ibc_comm_free(c, &c->scratch);
	rc = rc ? rc : r;
	for (i = 0; i < c->ntmp; i++) {
		r = ibc_comm_free(c, &c->tmp[i]);
		rc = rc ? rc : r;
	}
	free(c->tmp);
	for (i = 0; i < c->nlinks; i++) {
		struct ibc_link *l = c->links[i];

		r = 0;
		if (l->s)
			r = c->ops->close_send(l->s);
		if (l->r)
			r = c->ops->close_recv(l->r);
		rc = rc ? rc : r;
		free(l);
	}
	free(c->links);
	if (c->ctx) {
		r = c->ops->fini(c->ctx);
		rc = rc ? rc : r;
	}
	memset(c, 0, sizeof(*c));
	return rc;
}

/* Staging slots for receive-and-reduce on a transport without direct reads. */
static int link_slots(struct ibc_comm *c, int link_index, struct ibc_buf **slots)
{
	size_t need = (size_t)c->depth * c->max_chunk;
	int rc;

	/* Grow to every link of the communicator at once: pointers into c->tmp handed out
	 * earlier in this run must stay valid (no realloc between two calls of one run). */
	if (c->captmp < c->nlinks) {
		struct ibc_buf *n = realloc(c->tmp, (size_t)c->nlinks * sizeof(*n));

		if (!n)
			return -ENOMEM;
		memset(n + c->captmp, 0, (size_t)(c->nlinks - c->captmp) * sizeof(*n));
		c->tmp = n;
		c->captmp = c->nlinks;
	}
	if (link_index < 0 || link_index >= c->captmp)
		return -EINVAL;
	if (c->ntmp <= link_index)
		c->ntmp = link_index + 1;
	if (!c->tmp[link_index].ptr || c->tmp[link_index].len < need) {
		ibc_comm_free(c, &c->tmp[link_index]);
		if (c->device && !c->staged)
			rc = alloc_device_slots(c, need, &c->tmp[link_index]);
		else
			rc = alloc_staging(c, need, &c->tmp[link_index]);
		if (rc)
			return rc;
	}
	*slots = &c->tmp[link_index];
	return 0;
}

static int link_index(const struct ibc_comm *c, const struct ibc_link *l)
{
	int i;

	for (i = 0; i < c->nlinks; i++)
		if (c->links[i] == l)
			return i;
	return -1;
}

/* ---------------------------------------------------------------- for the engine (comm_int.h) */

int ibc__comm_tp_fail(struct ibc_comm *c, int rc, const struct ibc_link *l, const char *what)
{
	return tp_fail(c, rc, l, what);
}

int ibc__comm_mem_fail(struct ibc_comm *c, int rc, const char *what)
{
	return mem_fail(c, rc, what);
}

int ibc__comm_link_slots(struct ibc_comm *c, const struct ibc_link *l, struct ibc_buf **slots)
{
	return link_slots(c, link_index(c, l), slots);
}
