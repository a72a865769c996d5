/* SPDX-License-Identifier: MIT */
/*
 * shm.c - the shared-memory transport for ranks on one host.
 *
 * Single copy: buffers come from mem_alloc, which places them in shared memory segments
 * (memfds named ibcoll-<job>-r<rank>-m<n>). A send only publishes a descriptor {segment, offset,
 * size, tag} in the connection's FIFO; the receiver maps the sender's segment once and copies
 * straight from it into its own buffer (post_recv), or reads it in place (recv_direct), e.g. to
 * reduce from the peer's buffer into its output without any intermediate copy. The send
 * completes when the receiver has released the message.
 *
 * Waiting: the engine spins on the queues themselves; only a rank about to sleep arms its
 * "doorbell" (epoch()), a word in shared memory it then futex-waits on. Posting a message
 * rings the receiver's bell, releasing one rings the sender's, but only when that bell is
 * armed, so a message to a spinning peer writes nothing but the queue.
 *
 * Peer death: a connection with pending work checks every 100 ms that the peer process still
 * exists; the launcher also raises cfg->abort_flag when a rank dies.
 *
 * No names: every segment is a memfd, never a file in /dev/shm, so a rank killed at any moment
 * (SIGKILL included) leaves nothing behind, and the kernel frees a segment with its last
 * mapping. A peer opens one through /proc/<owner pid>/fd/<n>, finding n by the memfd's name
 * (unique in the job); the owner keeps that fd open while the segment lives.
 */
#include "transport.h"
#include "ibc_common.h"
#include "shm_seg.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC 0x69624353u /* "ibCS" */
#define SHM_FIFO 64 /* messages in flight per connection */
#define SHM_NAME_MAX SHM_SEG_NAME_MAX
#define SHM_LIVENESS_NS 100000000ull

#define SHM_INLINE 32 /* messages up to this size travel inside the descriptor */
#define SHM_EAGER 4096 /* eager slot size: the most IBCOLL_SHM_EAGER may ask for */
/* Default eager limit. Above 1 KiB the receiver reading the sender's buffer directly is the
 * faster path (2 ranks, 2-4 KiB: 0.8 us against 1.2-2.2 us through the slot, whose lines the
 * sender must first take from the receiver's cache); below it the eager copy lets a ring's
 * send complete without the release round trip. */
#define SHM_EAGER_DEFAULT 1024
#define SHM_SEG_EAGER (UINT32_MAX - 1)

/* One cache line: the receiver polls `ready` (sequence + 1 once the slot is written), so a
 * small message costs the receiver a single cache-line transfer, and its sender's request
 * completes at once (the data is already copied). */
struct shm_desc {
	_Atomic uint64_t ready;
	uint32_t tag;
	uint32_t seg; /* sender's segment number; UINT32_MAX: inline or empty */
	uint64_t off;
	uint64_t size;
	unsigned char data[SHM_INLINE];
} __attribute__((aligned(64)));

/* Lives in shared memory; created by the receiver (listen), mapped by the sender (connect). */
struct shm_ctrl {
	uint32_t magic;
	_Atomic uint32_t connected;
	int32_t recv_pid, recv_rank;
	int32_t send_pid, send_rank;
	_Alignas(64) _Atomic uint64_t tail; /* messages released by the receiver */
	_Alignas(64) struct shm_desc ring[SHM_FIFO];
	/* Eager slots: a small message is copied here by the sender, whose request then
	 * completes at once, instead of waiting a round trip for the receiver's release. */
	_Alignas(64) unsigned char eager[SHM_FIFO][SHM_EAGER];
};

struct shm_bell {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
};

struct shm_seg {
	uint32_t id;
	int fd; /* owned memfd; -1 once freed */
	void *base; /* owned mapping */
	size_t len;
	char name[SHM_NAME_MAX];
};

/* A mapping of a peer's segment or bell, cached for the life of the context. */
struct shm_peer_map {
	int rank;
	uint32_t id; /* segment id, or UINT32_MAX for the bell */
	void *base; /* owned mapping */
	size_t len;
};

struct shm_ctx {
	struct ibc_tp_config cfg; /* copy (within the caller's cfg->size); strings borrowed */
	char job[64];
	struct shm_bell *bell; /* owned mapping of our doorbell */
	int bell_fd; /* owned memfd of the bell */
	char bell_name[SHM_NAME_MAX];
	uint32_t next_seg, next_conn;
	size_t eager_max; /* messages up to this size go through eager slots */
	struct shm_seg *segs; /* owned array */
	int nsegs, capsegs;
	struct shm_peer_map *maps; /* owned array */
	int nmaps, capmaps;
	char err[512];
};

struct shm_mr {
	void *base;
	size_t len;
	int seg; /* index into ctx->segs, -1 when not shared memory */
};

struct shm_req {
	struct shm_conn *conn; /* borrowed */
	int is_send;
	uint64_t seq;
	void *data;
	size_t size;
	uint32_t tag;
	bool posted;
	bool inline_done; /* send: the data went inside the descriptor */
};

struct shm_conn {
	struct shm_ctx *ctx; /* borrowed */
	struct shm_ctrl *ctrl; /* owned mapping */
	char name[SHM_NAME_MAX];
	bool owner; /* receiver created the control segment (and holds its memfd) */
	int fd; /* owner: the control segment's memfd */
	struct shm_bell *peer_bell; /* borrowed from ctx->maps */
	int peer_pid, peer_rank;
	/* receiver side */
	uint64_t posted; /* receives posted */
	uint64_t consumed; /* messages copied (post_recv) */
	uint64_t peeked; /* messages handed out by recv_direct */
	/* sender side */
	uint64_t sent;
	uint64_t tail_seen; /* last value of ctrl->tail read (saves a cache miss per send) */
	struct shm_req reqs[SHM_FIFO]; /* request slots, indexed by seq % SHM_FIFO */
	uint64_t last_check_ns;
};

struct shm_listener {
	struct shm_conn *conn; /* owned until accept hands it out */
};

struct shm_handle {
	uint32_t magic;
	int32_t recv_rank;
	int32_t recv_pid;
	char name[SHM_NAME_MAX];
};
_Static_assert(sizeof(struct shm_handle) <= IBC_TP_HANDLE_BYTES, "handle too large");

static int shm_fail(struct shm_ctx *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int shm_fail(struct shm_ctx *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	ibc_err_set("shm: %s", c->err);
	return rc;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

/* Wake the peer only if it is about to sleep (armed by epoch()); a spinning peer polls the
 * queues itself, so most messages cost no write to its bell at all. The fence orders our
 * queue update before the read of waiters (the peer orders its waiters++ before its last
 * look at the queues): one of the two always sees the other. */
static void bell_ring(struct shm_bell *b)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&b->waiters, memory_order_relaxed)) {
		atomic_fetch_add(&b->seq, 1);
		futex(&b->seq, FUTEX_WAKE, INT_MAX, NULL);
	}
}

/* The segment calls of shm_seg.c, with their error recorded as this context's. */
static int seg_create(struct shm_ctx *c, const char *name, size_t len, int *fd, void **out)
{
	int rc = shm__seg_create(name, len, fd, out, c->err, sizeof(c->err));

	if (rc)
		ibc_err_set("shm: %s", c->err);
	return rc;
}

static int seg_open(struct shm_ctx *c, int pid, int rank, const char *name, size_t minlen,
		    void **base, size_t *len)
{
	int rc = shm__seg_open(pid, rank, name, minlen, base, len, c->err, sizeof(c->err));

	if (rc)
		ibc_err_set("shm: %s", c->err);
	return rc;
}

static void seg_name(const struct shm_ctx *c, int rank, const char *what, uint32_t id, char *buf)
{
	snprintf(buf, SHM_NAME_MAX, "ibcoll-%s-r%d-%s%u", c->job, rank, what, id);
}

/* Map (once) segment id of rank (process pid), or its bell when id == UINT32_MAX. */
static int peer_map(struct shm_ctx *c, int rank, int pid, uint32_t id, size_t minlen,
		    void **base, size_t *len)
{
	char name[SHM_NAME_MAX];
	struct shm_peer_map *m;
	size_t l;
	void *p;
	int i, rc;

	for (i = 0; i < c->nmaps; i++) {
		m = &c->maps[i];
		if (m->rank == rank && m->id == id) {
			*base = m->base;
			if (len)
				*len = m->len;
			return 0;
		}
	}
	if (id == UINT32_MAX)
		seg_name(c, rank, "bell", 0, name);
	else
		seg_name(c, rank, "m", id, name);
	rc = seg_open(c, pid, rank, name, minlen, &p, &l);
	if (rc)
		return rc;
	if (c->nmaps == c->capmaps) {
		int cap = c->capmaps ? c->capmaps * 2 : 16;
		struct shm_peer_map *n = realloc(c->maps, (size_t)cap * sizeof(*n));

		if (!n) {
			munmap(p, l);
			return shm_fail(c, -ENOMEM, "out of memory");
		}
		c->maps = n;
		c->capmaps = cap;
	}
	c->maps[c->nmaps++] = (struct shm_peer_map){ .rank = rank, .id = id, .base = p, .len = l };
	*base = p;
	if (len)
		*len = l;
	return 0;
}

static int shm_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out)
{
	struct shm_ctx *c;
	int rc;

	if (ibc_tp_config_check(cfg)) {
		ibc_err_set("shm: init without a configuration of at least %zu bytes (cfg->size)",
			    (size_t)IBC_TP_CFG_BASE_SIZE);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ibc_tp_config_copy(&c->cfg, cfg);
	cfg = &c->cfg;
	snprintf(c->job, sizeof(c->job), "%s", cfg->job_id ? cfg->job_id : "nojob");
	c->eager_max = SHM_EAGER_DEFAULT;
	if (getenv("IBCOLL_SHM_EAGER"))
		c->eager_max = IBC_MIN((size_t)atol(getenv("IBCOLL_SHM_EAGER")), (size_t)SHM_EAGER);
	seg_name(c, cfg->rank, "bell", 0, c->bell_name);
	rc = seg_create(c, c->bell_name, sizeof(struct shm_bell), &c->bell_fd, (void **)&c->bell);
	if (rc) {
		ibc_err_set("shm: %s", c->err);
		free(c);
		return rc;
	}
	*out = (struct ibc_tp_ctx *)c;
	return 0;
}

static int shm_devices(struct ibc_tp_ctx *ctx, int *ndev)
{
	*ndev = 1;
	return 0;
}

static int shm_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props)
{
	struct ibc_tp_props p = {0};

	if (dev != 0)
		return -EINVAL;
	snprintf(p.name, sizeof(p.name), "shm");
	snprintf(p.link_layer, sizeof(p.link_layer), "memory");
	p.mem_kinds = IBC_MEM_HOST;
	p.max_requests = SHM_FIFO;
	p.caps = IBC_TP_CAP_SHARED_ALLOC | IBC_TP_CAP_DIRECT;
	ibc_tp_props_put(props, &p);
	return 0;
}

static int shm_listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **out)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	struct shm_listener *l = calloc(1, sizeof(*l));
	struct shm_conn *conn = calloc(1, sizeof(*conn));
	struct shm_handle *h = handle;
	int rc;

	if (!l || !conn) {
		rc = -ENOMEM;
		goto clean_alloc;
	}
	conn->ctx = c;
	conn->owner = true;
	seg_name(c, c->cfg.rank, "c", c->next_conn++, conn->name);
	rc = seg_create(c, conn->name, sizeof(struct shm_ctrl), &conn->fd, (void **)&conn->ctrl);
	if (rc)
		goto clean_alloc;
	conn->ctrl->magic = SHM_MAGIC;
	conn->ctrl->recv_pid = getpid();
	conn->ctrl->recv_rank = c->cfg.rank;
	memset(handle, 0, IBC_TP_HANDLE_BYTES);
	h->magic = SHM_MAGIC;
	h->recv_rank = c->cfg.rank;
	h->recv_pid = getpid();
	snprintf(h->name, sizeof(h->name), "%s", conn->name);
	l->conn = conn;
	*out = (struct ibc_tp_listener *)l;
	return 0;

clean_alloc:
	free(conn);
	free(l);
	return rc;
}

static int shm_connect(struct ibc_tp_ctx *ctx, int dev, const void *handle,
		       struct ibc_tp_send **out)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	const struct shm_handle *h = handle;
	struct shm_conn *conn;
	void *bell;
	size_t len;
	int rc;

	if (h->magic != SHM_MAGIC)
		return shm_fail(c, -EPROTO, "connection handle is not from the shm transport");
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return -ENOMEM;
	conn->ctx = c;
	snprintf(conn->name, sizeof(conn->name), "%.*s", (int)sizeof(h->name) - 1, h->name);
	rc = seg_open(c, h->recv_pid, h->recv_rank, conn->name, sizeof(struct shm_ctrl),
		      (void **)&conn->ctrl, &len);
	if (rc)
		goto clean_conn;
	rc = peer_map(c, h->recv_rank, h->recv_pid, UINT32_MAX, sizeof(struct shm_bell), &bell,
		      NULL);
	if (rc)
		goto clean_ctrl;
	conn->peer_bell = bell;
	conn->peer_pid = h->recv_pid;
	conn->peer_rank = h->recv_rank;
	conn->ctrl->send_pid = getpid();
	conn->ctrl->send_rank = c->cfg.rank;
	atomic_store_explicit(&conn->ctrl->connected, 1, memory_order_release);
	bell_ring(conn->peer_bell);
	*out = (struct ibc_tp_send *)conn;
	return 0;

clean_ctrl:
	munmap(conn->ctrl, len);
clean_conn:
	free(conn);
	return rc;
}

static bool aborted(const struct shm_ctx *c)
{
	return c->cfg.abort_flag && *c->cfg.abort_flag;
}

static int shm_accept(struct ibc_tp_listener *lst, struct ibc_tp_recv **out)
{
	struct shm_listener *l = (struct shm_listener *)lst;
	struct shm_conn *conn = l->conn;
	struct shm_ctx *c;
	void *bell;
	int rc;

	if (!conn)
		return -EINVAL;
	c = conn->ctx;
	if (aborted(c))
		return -ECANCELED;
	if (!atomic_load_explicit(&conn->ctrl->connected, memory_order_acquire))
		return -EAGAIN;
	rc = peer_map(c, conn->ctrl->send_rank, conn->ctrl->send_pid, UINT32_MAX,
		      sizeof(struct shm_bell), &bell, NULL);
	if (rc)
		return rc;
	conn->peer_bell = bell;
	conn->peer_pid = conn->ctrl->send_pid;
	conn->peer_rank = conn->ctrl->send_rank;
	l->conn = NULL;
	*out = (struct ibc_tp_recv *)conn;
	return 0;
}

static int shm_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		      struct ibc_tp_mr **out)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	struct shm_mr *mr;
	int i;

	if (buf->kind != IBC_MEM_HOST)
		return shm_fail(c, -ENOTSUP,
				"shm moves host memory only; GPU buffers are staged by the caller");
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	mr->base = buf->addr;
	mr->len = buf->len;
	mr->seg = -1;
	for (i = 0; i < c->nsegs; i++) {
		char *b = c->segs[i].base;

		if ((char *)buf->addr >= b && (char *)buf->addr + buf->len <= b + c->segs[i].len)
			mr->seg = i;
	}
	*out = (struct ibc_tp_mr *)mr;
	return 0;
}

static int shm_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr)
{
	free(mr);
	return 0;
}

static int shm_mem_alloc(struct ibc_tp_ctx *ctx, size_t size, void **ptr, struct ibc_tp_mr **out)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	struct shm_seg *s;
	struct shm_mr *mr;
	size_t len = size ? (size + 4095) & ~(size_t)4095 : 4096;
	int rc;

	if (c->nsegs == c->capsegs) {
		int cap = c->capsegs ? c->capsegs * 2 : 8;
		struct shm_seg *n = realloc(c->segs, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->segs = n;
		c->capsegs = cap;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	s = &c->segs[c->nsegs];
	s->id = c->next_seg++;
	s->len = len;
	seg_name(c, c->cfg.rank, "m", s->id, s->name);
	rc = seg_create(c, s->name, len, &s->fd, &s->base);
	if (rc) {
		free(mr);
		return rc;
	}
	mr->base = s->base;
	mr->len = len;
	mr->seg = c->nsegs++;
	*ptr = s->base;
	*out = (struct ibc_tp_mr *)mr;
	return 0;
}

static int shm_mem_free(struct ibc_tp_ctx *ctx, void *ptr, struct ibc_tp_mr *m)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	struct shm_mr *mr = (struct shm_mr *)m;
	struct shm_seg *s;
	int rc = 0;

	if (!mr || mr->seg < 0 || mr->seg >= c->nsegs || c->segs[mr->seg].base != ptr)
		return shm_fail(c, -EINVAL, "mem_free of memory not from mem_alloc");
	s = &c->segs[mr->seg];
	if (munmap(s->base, s->len) != 0)
		rc = -errno;
	if (close(s->fd) != 0 && !rc)
		rc = -errno;
	s->fd = -1;
	s->base = NULL; /* slot stays so other MR indices remain valid */
	s->len = 0;
	free(mr);
	return rc;
}

static int check_peer(struct shm_conn *conn)
{
	uint64_t now = ibc_now_ns();

	if (aborted(conn->ctx))
		return -ECANCELED;
	if (now - conn->last_check_ns < SHM_LIVENESS_NS)
		return 0;
	conn->last_check_ns = now;
	if (conn->peer_pid > 0 && kill(conn->peer_pid, 0) != 0 && errno == ESRCH)
		return shm_fail(conn->ctx, -ECONNRESET,
				"peer process %d (rank %d) is gone: it exited or was killed",
				conn->peer_pid, conn->peer_rank);
	return 0;
}

static int shm_post_send(struct ibc_tp_send *sc, const void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *m, struct ibc_tp_req **out)
{
	struct shm_conn *conn = (struct shm_conn *)sc;
	struct shm_ctx *c = conn->ctx;
	struct shm_mr *mr = (struct shm_mr *)m;
	struct shm_ctrl *ctrl = conn->ctrl;
	struct shm_desc *d;
	struct shm_req *r;
	uint64_t seq = conn->sent;

	if (seq - conn->tail_seen >= SHM_FIFO) {
		conn->tail_seen = atomic_load_explicit(&ctrl->tail, memory_order_acquire);
		if (seq - conn->tail_seen >= SHM_FIFO)
			return -EAGAIN;
	}
	r = &conn->reqs[seq % SHM_FIFO];
	if (r->posted) /* previous occupant not yet tested to completion */
		return -EAGAIN;
	d = &ctrl->ring[seq % SHM_FIFO];
	d->tag = tag;
	d->size = size;
	d->seg = UINT32_MAX;
	d->off = 0;
	r->inline_done = size <= SHM_INLINE || size <= c->eager_max;
	if (size <= SHM_INLINE) {
		if (size)
			memcpy(d->data, data, size);
	} else if (size <= c->eager_max) {
		memcpy(ctrl->eager[seq % SHM_FIFO], data, size);
		d->seg = SHM_SEG_EAGER;
	} else {
		struct shm_seg *s;

		if (!mr || mr->seg < 0)
			return shm_fail(c, -EINVAL,
					"send buffer %p is not in shared memory (allocate it with "
					"mem_alloc)",
					data);
		s = &c->segs[mr->seg];
		if ((const char *)data < (char *)s->base ||
		    (const char *)data + size > (char *)s->base + s->len)
			return shm_fail(c, -EINVAL, "send of %zu bytes at %p lies outside its MR",
					size, data);
		d->seg = s->id;
		d->off = (uint64_t)((const char *)data - (char *)s->base);
	}
	r->conn = conn;
	r->is_send = 1;
	r->seq = seq;
	r->size = size;
	r->posted = true;
	conn->sent = seq + 1;
	atomic_store_explicit(&d->ready, seq + 1, memory_order_release);
	bell_ring(conn->peer_bell);
	/* take the next descriptor's line for writing now, off the next message's path */
	__builtin_prefetch(&ctrl->ring[(seq + 1) % SHM_FIFO], 1, 3);
	*out = (struct ibc_tp_req *)r;
	return 0;
}

static int shm_post_recv(struct ibc_tp_recv *rc_, void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct shm_conn *conn = (struct shm_conn *)rc_;
	uint64_t seq = conn->posted;
	struct shm_req *r;

	if (seq - conn->consumed >= SHM_FIFO)
		return -EAGAIN;
	r = &conn->reqs[seq % SHM_FIFO];
	if (r->posted)
		return -EAGAIN;
	r->conn = conn;
	r->is_send = 0;
	r->seq = seq;
	r->data = data;
	r->size = size;
	r->tag = tag;
	r->posted = true;
	conn->posted = seq + 1;
	*out = (struct ibc_tp_req *)r;
	return 0;
}

/* Resolve a descriptor to a readable pointer in the sender's segment. */
static int desc_ptr(struct shm_conn *conn, const struct shm_desc *d, const void **p)
{
	void *base;
	size_t len;
	int rc;

	if (d->size == 0) {
		*p = NULL;
		return 0;
	}
	if (d->size <= SHM_INLINE) {
		*p = d->data;
		return 0;
	}
	if (d->seg == SHM_SEG_EAGER) {
		*p = conn->ctrl->eager[d - conn->ctrl->ring];
		return 0;
	}
	rc = peer_map(conn->ctx, conn->peer_rank, conn->peer_pid, d->seg, 0, &base, &len);
	if (rc)
		return rc;
	if (d->off > len || d->size > len - d->off)
		return shm_fail(conn->ctx, -EPROTO, "descriptor outside rank %d's segment %u",
				conn->peer_rank, d->seg);
	*p = (char *)base + d->off;
	return 0;
}

/* Copy arrived messages into posted receives, in order. */
static int recv_progress(struct shm_conn *conn)
{
	struct shm_ctrl *ctrl = conn->ctrl;

	while (conn->consumed < conn->posted) {
		struct shm_req *r = &conn->reqs[conn->consumed % SHM_FIFO];
		const struct shm_desc *d = &ctrl->ring[conn->consumed % SHM_FIFO];
		const void *src;
		int rc;

		if (atomic_load_explicit(&((struct shm_desc *)d)->ready, memory_order_acquire) !=
		    conn->consumed + 1)
			break;
		if (d->tag != r->tag)
			return shm_fail(conn->ctx, -EPROTO,
					"tag mismatch from rank %d: expected %u, got %u",
					conn->peer_rank, r->tag, d->tag);
		if (d->size > r->size)
			return shm_fail(conn->ctx, -EMSGSIZE,
					"message of %llu bytes from rank %d exceeds the %zu-byte "
					"receive",
					(unsigned long long)d->size, conn->peer_rank, r->size);
		rc = desc_ptr(conn, d, &src);
		if (rc)
			return rc;
		if (d->size)
			memcpy(r->data, src, d->size);
		r->size = d->size;
		conn->consumed++;
		atomic_store_explicit(&ctrl->tail, conn->consumed, memory_order_release);
		bell_ring(conn->peer_bell);
	}
	return 0;
}

static int shm_test(struct ibc_tp_req *req, int *done, size_t *size)
{
	struct shm_req *r = (struct shm_req *)req;
	struct shm_conn *conn = r->conn;
	int rc;

	*done = 0;
	if (r->is_send) {
		if (r->inline_done ||
		    atomic_load_explicit(&conn->ctrl->tail, memory_order_acquire) > r->seq) {
			*done = 1;
			if (size)
				*size = r->size;
			r->posted = false;
			return 0;
		}
		return check_peer(conn);
	}
	rc = recv_progress(conn);
	if (rc) {
		r->posted = false;
		return rc;
	}
	if (conn->consumed > r->seq) {
		*done = 1;
		if (size)
			*size = r->size;
		r->posted = false;
		return 0;
	}
	return check_peer(conn);
}

static int shm_recv_direct(struct ibc_tp_recv *rc_, uint32_t tag, const void **data,
			   size_t *size)
{
	struct shm_conn *conn = (struct shm_conn *)rc_;
	struct shm_ctrl *ctrl = conn->ctrl;
	const struct shm_desc *d;
	int rc;

	if (conn->peeked - conn->consumed >= SHM_FIFO)
		return shm_fail(conn->ctx, -ENOBUFS, "too many unreleased direct receives");
	d = &ctrl->ring[conn->peeked % SHM_FIFO];
	if (atomic_load_explicit(&((struct shm_desc *)d)->ready, memory_order_acquire) !=
	    conn->peeked + 1) {
		rc = check_peer(conn);
		return rc ? rc : -EAGAIN;
	}
	if (d->tag != tag)
		return shm_fail(conn->ctx, -EPROTO, "tag mismatch from rank %d: expected %u, got %u",
				conn->peer_rank, tag, d->tag);
	rc = desc_ptr(conn, d, data);
	if (rc)
		return rc;
	*size = d->size;
	conn->peeked++;
	return 0;
}

static int shm_recv_release(struct ibc_tp_recv *rc_)
{
	struct shm_conn *conn = (struct shm_conn *)rc_;

	if (conn->consumed >= conn->peeked)
		return shm_fail(conn->ctx, -EINVAL, "recv_release without recv_direct");
	conn->consumed++;
	conn->posted = conn->consumed;
	atomic_store_explicit(&conn->ctrl->tail, conn->consumed, memory_order_release);
	bell_ring(conn->peer_bell);
	return 0;
}

/* Arm: from now on every peer event bumps our bell. The engine looks at the queues once more
 * and then calls wait() exactly once, which disarms. */
static uint64_t shm_epoch(struct ibc_tp_ctx *ctx)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;

	atomic_fetch_add(&c->bell->waiters, 1);
	return atomic_load(&c->bell->seq);
}

static int shm_wait(struct ibc_tp_ctx *ctx, uint64_t epoch, int timeout_ms)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	struct shm_bell *b = c->bell;

	if (timeout_ms > 0 && atomic_load(&b->seq) == (uint32_t)epoch && !aborted(c)) {
		struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };

		futex(&b->seq, FUTEX_WAIT, (uint32_t)epoch, &ts);
	}
	atomic_fetch_sub(&b->waiters, 1);
	return 0;
}

static int conn_close(struct shm_conn *conn)
{
	int rc = 0;

	if (!conn)
		return 0;
	if (conn->ctrl && munmap(conn->ctrl, sizeof(struct shm_ctrl)) != 0)
		rc = -errno;
	if (conn->owner && close(conn->fd) != 0 && !rc)
		rc = -errno;
	free(conn);
	return rc;
}

static int shm_close_send(struct ibc_tp_send *s)
{
	return conn_close((struct shm_conn *)s);
}

static int shm_close_recv(struct ibc_tp_recv *r)
{
	return conn_close((struct shm_conn *)r);
}

static int shm_close_listen(struct ibc_tp_listener *lst)
{
	struct shm_listener *l = (struct shm_listener *)lst;
	int rc = conn_close(l->conn);

	free(l);
	return rc;
}

static int shm_fini(struct ibc_tp_ctx *ctx)
{
	struct shm_ctx *c = (struct shm_ctx *)ctx;
	int i, rc = 0;

	for (i = 0; i < c->nmaps; i++)
		if (munmap(c->maps[i].base, c->maps[i].len) != 0 && !rc)
			rc = -errno;
	for (i = 0; i < c->nsegs; i++) {
		if (!c->segs[i].base)
			continue;
		munmap(c->segs[i].base, c->segs[i].len);
		if (close(c->segs[i].fd) != 0 && !rc)
			rc = -errno;
	}
	if (munmap(c->bell, sizeof(struct shm_bell)) != 0 && !rc)
		rc = -errno;
	if (close(c->bell_fd) != 0 && !rc)
		rc = -errno;
	free(c->maps);
	free(c->segs);
	free(c);
	return rc;
}

static const char *shm_last_error(struct ibc_tp_ctx *ctx)
{
	return ((struct shm_ctx *)ctx)->err;
}

const struct ibc_tp_ops ibc_tp_shm_ops = {
	.abi_major = IBC_TP_ABI_MAJOR,
	.ops_size = sizeof(struct ibc_tp_ops),
	.name = "shm",
	.description = "shared memory between ranks on one host, single copy",
	.init = shm_init,
	.devices = shm_devices,
	.get_props = shm_get_props,
	.listen = shm_listen,
	.connect = shm_connect,
	.accept = shm_accept,
	.reg_mr = shm_reg_mr,
	.dereg_mr = shm_dereg_mr,
	.post_send = shm_post_send,
	.post_recv = shm_post_recv,
	.test = shm_test,
	.close_send = shm_close_send,
	.close_recv = shm_close_recv,
	.close_listen = shm_close_listen,
	.fini = shm_fini,
	.last_error = shm_last_error,
	.mem_alloc = shm_mem_alloc,
	.mem_free = shm_mem_free,
	.recv_direct = shm_recv_direct,
	.recv_release = shm_recv_release,
	.epoch = shm_epoch,
	.wait = shm_wait,
};
