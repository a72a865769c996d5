/* SPDX-License-Identifier: MIT */
/*
 * cu_ops.cu - what the CUDA backend runs on its streams (cu_ctx.h): copies on the copy
 * stream (copy, and copy_async with its tickets and done), and the kernel operations on the
 * compute stream (reduce, finish, fill, poison, check; each synchronous), whose operands are
 * resolved by cu_resolve first. Ticket scheme and stream rules: mem_cuda.cu's header.
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "cu_ctx.h"
#include "vdata.h"

/* ---- copies ---- */

static const char *const cu_kind_name[] = {"H2D", "D2H", "D2D", "H2H"};

/* A copy's checks: a known kind, this context's GPU current. */
static int cu_copy_begin(struct ibc_mem_ctx *ctx, enum ibc_copy_kind kind)
{
	if ((unsigned)kind > IBC_COPY_H2H)
		return cu_err(ctx, -EINVAL, "unknown copy kind %d", (int)kind);
	return cu_enter(ctx);
}

int cu_copy(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
	    enum ibc_copy_kind kind)
{
	int rc = cu_copy_begin(ctx, kind);

	if (rc)
		return rc;
	if (!bytes)
		return 0;
	CU_CALL(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ctx->copy_stream),
		"cudaMemcpyAsync(%s, %zu bytes, %p -> %p)", cu_kind_name[kind], bytes, src, dst);
	CU_CALL(ctx, cudaStreamSynchronize(ctx->copy_stream),
		"cudaStreamSynchronize after a %s copy of %zu bytes (%p -> %p)", cu_kind_name[kind],
		bytes, src, dst);
	return 0;
}

int cu_copy_async(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
		  enum ibc_copy_kind kind, uint64_t *ticket)
{
	uint64_t n = ctx->issued;
	struct cu_event *e = &ctx->ev[n % CU_EVENTS];
	int rc = cu_copy_begin(ctx, kind);

	if (rc)
		return rc;
	if (e->gen && !e->complete) /* the copy CU_EVENTS ago: long done in practice */
		CU_CALL(ctx, cudaEventSynchronize(e->ev),
			"cudaEventSynchronize(slot %d) before reusing it", (int)(n % CU_EVENTS));
	e->complete = 1;
	if (bytes)
		CU_CALL(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ctx->copy_stream),
			"cudaMemcpyAsync(%s, %zu bytes, %p -> %p)", cu_kind_name[kind], bytes, src,
			dst);
	CU_CALL(ctx, cudaEventRecord(e->ev, ctx->copy_stream), "cudaEventRecord(slot %d)",
		(int)(n % CU_EVENTS));
	e->gen = n / CU_EVENTS + 1;
	e->complete = 0;
	ctx->issued++;
	*ticket = e->gen * CU_EVENTS + n % CU_EVENTS;
	return 0;
}

int cu_done(struct ibc_mem_ctx *ctx, uint64_t ticket)
{
	uint64_t gen = ticket / CU_EVENTS;
	struct cu_event *e = &ctx->ev[ticket % CU_EVENTS];
	cudaError_t q;

	if (gen == 0 || gen > e->gen)
		return cu_err(ctx, -EINVAL, "done: ticket %" PRIu64 " was never issued", ticket);
	if (gen < e->gen || e->complete)
		return 1;
	q = cudaEventQuery(e->ev);
	if (q == cudaErrorNotReady)
		return 0;
	if (q != cudaSuccess)
		return cu_fail(ctx, q, "cudaEventQuery (copy ticket %" PRIu64 ")", ticket);
	e->complete = 1;
	return 1;
}

/* ---- kernels ---- */

/* A kernel operation's checks: a known dtype and op, this context's GPU current. */
static int cu_begin(struct ibc_mem_ctx *ctx, int dt, int op)
{
	if ((unsigned)dt >= IBC_DTYPE_COUNT)
		return cu_err(ctx, -EINVAL, "unknown dtype %d", dt);
	if ((unsigned)op >= IBC_OP_COUNT)
		return cu_err(ctx, -EINVAL, "unknown op %d", op);
	return cu_enter(ctx);
}

/* The launch's error, else the kernel's (the compute stream synchronised). */
static int cu_kernel_done(struct ibc_mem_ctx *ctx, cudaError_t launch, const char *what,
			  size_t count, enum ibc_dtype dt, enum ibc_op op)
{
	if (launch != cudaSuccess)
		return cu_fail(ctx, launch, "launch of %s (%s %s, %zu elements)", what,
			       ibc_dtype_name(dt), ibc_op_name(op), count);
	CU_CALL(ctx, cudaStreamSynchronize(ctx->compute_stream),
		"%s (%s %s, %zu elements): cudaStreamSynchronize", what, ibc_dtype_name(dt),
		ibc_op_name(op), count);
	return 0;
}

int cu_reduce(struct ibc_mem_ctx *ctx, void *dst, const void *a, const void *b, size_t count,
	      enum ibc_dtype dt, enum ibc_op op)
{
	size_t bytes = count * vd_size(dt), off = 0;
	void *d, *da, *db;
	int rc = cu_begin(ctx, dt, op);

	if (rc || !count)
		return rc;
	rc = cu_resolve(ctx, dst, bytes, 1, "reduce dst", &off, &d);
	if (!rc)
		rc = cu_resolve(ctx, a, bytes, 0, "reduce a", &off, &da);
	if (!rc)
		rc = cu_resolve(ctx, b, bytes, 0, "reduce b", &off, &db);
	if (rc)
		return rc;
	(void)cudaGetLastError();
	return cu_kernel_done(ctx, cu_reduce_launch(&ctx->launch, d, da, db, count, dt, op),
			      "reduce kernel", count, dt, op);
}

int cu_finish(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt, enum ibc_op op,
	      int nranks)
{
	size_t off = 0;
	void *d;
	int rc = cu_begin(ctx, dt, op);

	if (rc || !count || op != IBC_OP_AVG || nranks <= 1)
		return rc;
	rc = cu_resolve(ctx, buf, count * vd_size(dt), 1, "finish buf", &off, &d);
	if (rc)
		return rc;
	(void)cudaGetLastError();
	return cu_kernel_done(ctx, cu_finish_launch(&ctx->launch, d, count, dt, op, nranks),
			      "avg kernel", count, dt, op);
}

int cu_fill(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt, enum ibc_op op,
	    int rank, int nranks, uint64_t seed)
{
	size_t off = 0;
	void *d;
	int rc = cu_begin(ctx, dt, op);

	if (rc || !count)
		return rc;
	rc = cu_resolve(ctx, buf, count * vd_size(dt), 1, "fill buf", &off, &d);
	if (rc)
		return rc;
	(void)cudaGetLastError();
	return cu_kernel_done(ctx,
			      cu_fill_launch(&ctx->launch, d, count, dt, op, rank, nranks, seed),
			      "fill kernel", count, dt, op);
}

int cu_poison(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt)
{
	size_t off = 0;
	void *d;
	int rc = cu_begin(ctx, dt, IBC_OP_SUM);

	if (rc || !count)
		return rc;
	rc = cu_resolve(ctx, buf, count * vd_size(dt), 1, "poison buf", &off, &d);
	if (rc)
		return rc;
	(void)cudaGetLastError();
	return cu_kernel_done(ctx, cu_poison_launch(&ctx->launch, d, count, dt), "poison kernel",
			      count, dt, IBC_OP_SUM);
}

/* check found res->wrong > 0: the first wrong element of d, copied back, and the value
 * expected there (vdata.h on the host), printed as ibc_check prints them. */
static int cu_check_report(struct ibc_mem_ctx *ctx, const void *d, enum ibc_dtype dt,
			   enum ibc_op op, int nranks, uint64_t seed, struct ibc_check_result *res)
{
	size_t size = vd_size(dt);
	uint64_t got = 0, want;
	struct vd v;

	CU_CALL(ctx,
		cudaMemcpyAsync(&got, (const char *)d + res->first_index * size, size,
				cudaMemcpyDeviceToHost, ctx->compute_stream),
		"cudaMemcpyAsync(element %zu D2H)", res->first_index);
	CU_CALL(ctx, cudaStreamSynchronize(ctx->compute_stream),
		"cudaStreamSynchronize(element %zu D2H)", res->first_index);
	vd_init(&v, dt, op, nranks, seed);
	want = vd_want(&v, vd_rank_key(seed, 0), vd_check_kn(&v), res->first_index);
	ibc_dtype_format(res->expected, sizeof(res->expected), dt, want);
	ibc_dtype_format(res->got, sizeof(res->got), dt, got);
	return 0;
}

int cu_check(struct ibc_mem_ctx *ctx, const void *buf, size_t count, enum ibc_dtype dt,
	     enum ibc_op op, int nranks, uint64_t seed, struct ibc_check_result *res)
{
	size_t off = 0;
	void *d;
	int rc = cu_begin(ctx, dt, op);

	memset(res, 0, sizeof(*res));
	if (rc || !count)
		return rc;
	rc = cu_resolve(ctx, buf, count * vd_size(dt), 0, "check buf", &off, &d);
	if (rc)
		return rc;
	CU_CALL(ctx, cudaMemsetAsync(ctx->d_check, 0, sizeof(*ctx->d_check), ctx->compute_stream),
		"cudaMemsetAsync(check counters)");
	CU_CALL(ctx,
		cudaMemsetAsync(ctx->d_check + 1, 0xff, sizeof(*ctx->d_check), ctx->compute_stream),
		"cudaMemsetAsync(check counters)");
	(void)cudaGetLastError();
	rc = cu_kernel_done(
	    ctx, cu_check_launch(&ctx->launch, d, count, dt, op, nranks, seed, ctx->d_check),
	    "check kernel", count, dt, op);
	if (rc)
		return rc;
	CU_CALL(ctx,
		cudaMemcpyAsync(ctx->h_check, ctx->d_check, 2 * sizeof(*ctx->h_check),
				cudaMemcpyDeviceToHost, ctx->compute_stream),
		"cudaMemcpyAsync(check counters D2H)");
	CU_CALL(ctx, cudaStreamSynchronize(ctx->compute_stream),
		"cudaStreamSynchronize(check counters D2H)");
	res->wrong = (size_t)ctx->h_check[0];
	if (!res->wrong)
		return 0;
	res->first_index = (size_t)ctx->h_check[1];
	return cu_check_report(ctx, d, dt, op, nranks, seed, res);
}

int cu_sync(struct ibc_mem_ctx *ctx)
{
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	CU_CALL(ctx, cudaStreamSynchronize(ctx->copy_stream), "cudaStreamSynchronize(copy)");
	CU_CALL(ctx, cudaStreamSynchronize(ctx->compute_stream), "cudaStreamSynchronize(compute)");
	return 0;
}
