/* SPDX-License-Identifier: MIT */
/*
 * mem_host.c - the built-in memory backends (mem.h):
 *
 *   host    plain memory; reductions, fill and check are dtype.c's. info.is_device = 0.
 *   hostdev a test backend: the same host memory and data operations, but info.is_device = 1
 *           so the engine stages every transfer exactly as it does for CUDA memory, and
 *           copy_async behaves like a copy on a GPU stream: it is queued, and the queue moves
 *           one copy per done() call, in order. A ticket's data is in place only once done()
 *           returned 1 for it, so an engine that reads a staged buffer too early reads stale
 *           bytes and its check fails, on a machine without a GPU.
 *
 * Tickets are sequence numbers starting at 1. sync() (and the synchronous copy(), which
 * follows the queue as a copy on the same stream would) drain the queue.
 */
#include "mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc_common.h"

#define HOST_ALIGN 4096

struct mh_copy {
	void *dst;	 /* borrowed */
	const void *src; /* borrowed */
	size_t bytes;
};

struct ibc_mem_ctx {
	int deferred;	       /* hostdev: copy_async is queued */
	const char *name;      /* "host" or "hostdev" */
	uint64_t issued;       /* last ticket handed out */
	uint64_t completed;    /* every ticket <= completed is done */
	struct mh_copy *queue; /* owned ring of issued - completed pending copies */
	size_t qcap;	       /* ring capacity (power of two) */
	char err[256];
};

static int mh_err(struct ibc_mem_ctx *ctx, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int mh_err(struct ibc_mem_ctx *ctx, int rc, const char *fmt, ...)
{
	char buf[sizeof(ctx->err)];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "%s: ", ctx->name);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	memcpy(ctx->err, buf, sizeof(buf));
	ibc_err_set("%s", ctx->err);
	return rc;
}

static int mh_valid(struct ibc_mem_ctx *ctx, enum ibc_dtype dt, enum ibc_op op)
{
	if ((unsigned)dt >= IBC_DTYPE_COUNT)
		return mh_err(ctx, -EINVAL, "unknown dtype %d", (int)dt);
	if ((unsigned)op >= IBC_OP_COUNT)
		return mh_err(ctx, -EINVAL, "unknown op %d", (int)op);
	return 0;
}

static int mh_probe(char *err, size_t len)
{
	if (err && len)
		err[0] = '\0';
	return 1;
}

static int mh_open(int deferred, struct ibc_mem_ctx **out, char *err, size_t len)
{
	struct ibc_mem_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx) {
		if (err && len)
			snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	ctx->deferred = deferred;
	ctx->name = deferred ? "hostdev" : "host";
	*out = ctx;
	return 0;
}

static int mh_host_init_err(int local_rank, int device, struct ibc_mem_ctx **ctx, char *err,
			    size_t len)
{
	return mh_open(0, ctx, err, len);
}

static int mh_hostdev_init_err(int local_rank, int device, struct ibc_mem_ctx **ctx, char *err,
			       size_t len)
{
	return mh_open(1, ctx, err, len);
}

static int mh_host_init(int local_rank, int device, struct ibc_mem_ctx **ctx)
{
	return mh_open(0, ctx, NULL, 0);
}

static int mh_hostdev_init(int local_rank, int device, struct ibc_mem_ctx **ctx)
{
	return mh_open(1, ctx, NULL, 0);
}

static int mh_fini(struct ibc_mem_ctx *ctx)
{
	if (!ctx)
		return 0;
	free(ctx->queue);
	free(ctx);
	return 0;
}

static int mh_info(struct ibc_mem_ctx *ctx, struct ibc_mem_info *info)
{
	memset(info, 0, sizeof(*info));
	info->device = -1;
	snprintf(info->name, sizeof(info->name), "%s",
		 ctx->deferred ? "host memory posing as a device (test)" : "host memory");
	info->is_device = ctx->deferred;
	return 0;
}

static int mh_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr)
{
	void *p;

	if (!bytes)
		return mh_err(ctx, -EINVAL, "alloc of 0 bytes");
	if (posix_memalign(&p, HOST_ALIGN, bytes))
		return mh_err(ctx, -ENOMEM, "out of memory allocating %zu bytes", bytes);
	*ptr = p;
	return 0;
}

static int mh_free(struct ibc_mem_ctx *ctx, void *ptr)
{
	free(ptr);
	return 0;
}

static int mh_host_register(struct ibc_mem_ctx *ctx, void *ptr, size_t bytes)
{
	if (!ptr || !bytes)
		return mh_err(ctx, -EINVAL, "host_register of an empty range");
	return 0;
}

static int mh_host_unregister(struct ibc_mem_ctx *ctx, void *ptr)
{
	return 0;
}

/* Perform the oldest queued copy. */
static void mh_step(struct ibc_mem_ctx *ctx)
{
	struct mh_copy *c = &ctx->queue[ctx->completed % ctx->qcap];

	if (c->bytes)
		memmove(c->dst, c->src, c->bytes);
	ctx->completed++;
}

static void mh_drain(struct ibc_mem_ctx *ctx)
{
	while (ctx->completed < ctx->issued)
		mh_step(ctx);
}

static int mh_check_kind(struct ibc_mem_ctx *ctx, enum ibc_copy_kind kind)
{
	if ((unsigned)kind > IBC_COPY_H2H)
		return mh_err(ctx, -EINVAL, "unknown copy kind %d", (int)kind);
	return 0;
}

static int mh_copy(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
		   enum ibc_copy_kind kind)
{
	int rc = mh_check_kind(ctx, kind);

	if (rc)
		return rc;
	mh_drain(ctx);
	if (bytes)
		memmove(dst, src, bytes);
	return 0;
}

static int mh_grow(struct ibc_mem_ctx *ctx)
{
	size_t ncap = ctx->qcap ? ctx->qcap * 2 : 64, pending = ctx->issued - ctx->completed;
	struct mh_copy *q = calloc(ncap, sizeof(*q));

	if (!q)
		return mh_err(ctx, -ENOMEM, "out of memory queueing a copy");
	for (size_t k = 0; k < pending; k++)
		q[(ctx->completed + k) % ncap] = ctx->queue[(ctx->completed + k) % ctx->qcap];
	free(ctx->queue);
	ctx->queue = q;
	ctx->qcap = ncap;
	return 0;
}

static int mh_copy_async(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
			 enum ibc_copy_kind kind, uint64_t *ticket)
{
	int rc = mh_check_kind(ctx, kind);

	if (rc)
		return rc;
	if (!ctx->deferred) {
		if (bytes)
			memmove(dst, src, bytes);
		*ticket = ++ctx->issued;
		ctx->completed = ctx->issued;
		return 0;
	}
	if (ctx->issued - ctx->completed == ctx->qcap) {
		rc = mh_grow(ctx);
		if (rc)
			return rc;
	}
	ctx->queue[ctx->issued % ctx->qcap] = (struct mh_copy){dst, src, bytes};
	*ticket = ++ctx->issued;
	return 0;
}

static int mh_done(struct ibc_mem_ctx *ctx, uint64_t ticket)
{
	if (ticket == 0 || ticket > ctx->issued)
		return mh_err(ctx, -EINVAL, "done: ticket %llu was never issued (last %llu)",
			      (unsigned long long)ticket, (unsigned long long)ctx->issued);
	if (ticket <= ctx->completed)
		return 1;
	mh_step(ctx); /* the "stream" moves on; this ticket is seen done on a later call */
	return 0;
}

static int mh_reduce(struct ibc_mem_ctx *ctx, void *dst, const void *a, const void *b, size_t count,
		     enum ibc_dtype dt, enum ibc_op op)
{
	int rc = mh_valid(ctx, dt, op);

	if (rc)
		return rc;
	ibc_reduce(dst, a, b, count, dt, op);
	return 0;
}

static int mh_finish(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt,
		     enum ibc_op op, int nranks)
{
	int rc = mh_valid(ctx, dt, op);

	if (rc)
		return rc;
	ibc_reduce_finish(buf, count, dt, op, nranks);
	return 0;
}

static int mh_fill(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt,
		   enum ibc_op op, int rank, int nranks, uint64_t seed)
{
	int rc = mh_valid(ctx, dt, op);

	if (rc)
		return rc;
	ibc_fill(buf, 0, count, dt, op, rank, nranks, seed);
	return 0;
}

static int mh_poison(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt)
{
	int rc = mh_valid(ctx, dt, IBC_OP_SUM);

	if (rc)
		return rc;
	ibc_poison(buf, count, dt);
	return 0;
}

static int mh_check(struct ibc_mem_ctx *ctx, const void *buf, size_t count, enum ibc_dtype dt,
		    enum ibc_op op, int nranks, uint64_t seed, struct ibc_check_result *res)
{
	int rc = mh_valid(ctx, dt, op);

	if (rc)
		return rc;
	ibc_check(buf, count, dt, op, nranks, seed, res);
	return 0;
}

static int mh_sync(struct ibc_mem_ctx *ctx)
{
	mh_drain(ctx);
	return 0;
}

static const char *mh_last_error(struct ibc_mem_ctx *ctx)
{
	return ctx && ctx->err[0] ? ctx->err : "no error";
}

#define MH_COMMON_OPS                                                                              \
	.abi = IBC_MEM_ABI, .ops_size = sizeof(struct ibc_mem_ops), .fini = mh_fini,               \
	.info = mh_info, .alloc = mh_alloc, .free = mh_free, .host_alloc = mh_alloc,               \
	.host_free = mh_free, .host_register = mh_host_register,                                   \
	.host_unregister = mh_host_unregister, .copy = mh_copy, .copy_async = mh_copy_async,       \
	.done = mh_done, .reduce = mh_reduce, .finish = mh_finish, .fill = mh_fill,                \
	.poison = mh_poison, .check = mh_check, .sync = mh_sync, .last_error = mh_last_error,      \
	.probe = mh_probe

const struct ibc_mem_ops ibc_mem_host = {
	MH_COMMON_OPS,
	.name = "host",
	.init = mh_host_init,
	.init_err = mh_host_init_err,
};

const struct ibc_mem_ops ibc_mem_hostdev = {
	MH_COMMON_OPS,
	.name = "hostdev",
	.init = mh_hostdev_init,
	.init_err = mh_hostdev_init_err,
};
