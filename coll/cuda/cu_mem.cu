/* SPDX-License-Identifier: MIT */
/*
 * cu_mem.cu - the CUDA backend's memory (cu_ctx.h): device allocations, pinned host
 * allocations and registrations, each tracked as a range of the context, and the resolution
 * of a pointer to the device address a kernel uses: through those ranges (pinned host memory
 * by its mapped device address), else cudaPointerGetAttributes; a pageable host source is
 * staged into device scratch memory, a pageable destination refused (-EFAULT).
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cu_ctx.h"

/* ---- ranges ---- */

static int cu_range_add(struct ibc_mem_ctx *ctx, void *p, size_t bytes, uintptr_t dev,
			enum cu_range_kind kind)
{
	struct cu_range *r;

	if (ctx->nranges == ctx->cap) {
		size_t ncap = ctx->cap ? ctx->cap * 2 : 16;

		r = (struct cu_range *)realloc(ctx->ranges, ncap * sizeof(*ctx->ranges));
		if (!r)
			return cu_err(ctx, -ENOMEM, "out of host memory tracking allocations");
		ctx->ranges = r;
		ctx->cap = ncap;
	}
	r = &ctx->ranges[ctx->nranges++];
	r->start = (uintptr_t)p;
	r->end = (uintptr_t)p + bytes;
	r->dev = dev;
	r->kind = kind;
	return 0;
}

/* The range that starts at p, of the given kind; NULL if none. */
static struct cu_range *cu_range_at(struct ibc_mem_ctx *ctx, const void *p, enum cu_range_kind kind)
{
	for (size_t k = 0; k < ctx->nranges; k++)
		if (ctx->ranges[k].start == (uintptr_t)p && ctx->ranges[k].kind == kind)
			return &ctx->ranges[k];
	return NULL;
}

static void cu_range_del(struct ibc_mem_ctx *ctx, struct cu_range *r)
{
	*r = ctx->ranges[--ctx->nranges];
}

static const struct cu_range *cu_range_find(const struct ibc_mem_ctx *ctx, const void *p)
{
	uintptr_t a = (uintptr_t)p;

	for (size_t k = 0; k < ctx->nranges; k++)
		if (a >= ctx->ranges[k].start && a < ctx->ranges[k].end)
			return &ctx->ranges[k];
	return NULL;
}

/* A pageable host source: copied to scratch at *scratch_off (advanced), grown if need be. */
static int cu_stage(struct ibc_mem_ctx *ctx, const void *p, size_t bytes, const char *what,
		    size_t *scratch_off, void **dev)
{
	if (*scratch_off + bytes > ctx->scratch_bytes) {
		size_t want = *scratch_off + bytes;

		if (*scratch_off)
			return cu_err(ctx, -ENOMEM, "%s: staging more than one pageable source",
				      what);
		if (ctx->scratch)
			CU_CALL(ctx, cudaFree(ctx->scratch), "cudaFree(staging scratch)");
		ctx->scratch = NULL;
		ctx->scratch_bytes = 0;
		CU_CALL(ctx, cudaMalloc(&ctx->scratch, want),
			"cudaMalloc(%zu bytes of staging scratch for %s)", want, what);
		ctx->scratch_bytes = want;
	}
	*dev = (char *)ctx->scratch + *scratch_off;
	CU_CALL(ctx, cudaMemcpyAsync(*dev, p, bytes, cudaMemcpyHostToDevice, ctx->compute_stream),
		"cudaMemcpyAsync(staging %zu pageable bytes of %s)", bytes, what);
	*scratch_off += (bytes + 255) & ~(size_t)255;
	return 0;
}

int cu_resolve(struct ibc_mem_ctx *ctx, const void *p, size_t bytes, int write, const char *what,
	       size_t *scratch_off, void **dev)
{
	const struct cu_range *r = cu_range_find(ctx, p);
	struct cudaPointerAttributes at;
	cudaError_t e;

	if (r) {
		if (bytes > r->end - (uintptr_t)p)
			return cu_err(ctx, -EINVAL,
				      "%s: %zu bytes at %p run past the end of its %zu-byte "
				      "allocation at %p",
				      what, bytes, p, (size_t)(r->end - r->start),
				      (void *)r->start);
		*dev = (void *)(r->dev + ((uintptr_t)p - r->start));
		return 0;
	}
	memset(&at, 0, sizeof(at));
	e = cudaPointerGetAttributes(&at, p);
	if (e != cudaSuccess) {
		(void)cudaGetLastError();
		at.type = cudaMemoryTypeUnregistered;
	}
	switch (at.type) {
	case cudaMemoryTypeDevice:
	case cudaMemoryTypeManaged:
		*dev = at.devicePointer ? at.devicePointer : (void *)p;
		return 0;
	case cudaMemoryTypeHost:
		if (at.devicePointer) {
			*dev = at.devicePointer;
			return 0;
		}
		break;
	default:
		break;
	}
	if (write)
		return cu_err(ctx, -EFAULT,
			      "%s: %p is pageable host memory, which the GPU cannot write: use "
			      "device memory or pinned host memory (host_alloc/host_register)",
			      what, p);
	return cu_stage(ctx, p, bytes, what, scratch_off, dev);
}

/* ---- memory ---- */

/* Release what cu_track could not track (the error reported is the tracking's). */
static void cu_untracked(void *p, enum cu_range_kind kind)
{
	if (kind == CU_RANGE_DEVICE)
		cudaFree(p);
	else if (kind == CU_RANGE_PINNED)
		cudaFreeHost(p);
	else
		cudaHostUnregister(p);
}

/* Track [p, p + bytes) as a range of kind: device memory as is, pinned or registered host
 * memory by its mapped device address. On failure p is released (unregistered). */
static int cu_track(struct ibc_mem_ctx *ctx, void *p, size_t bytes, enum cu_range_kind kind)
{
	void *dev = p;
	int rc;

	if (kind != CU_RANGE_DEVICE && cudaHostGetDevicePointer(&dev, p, 0) != cudaSuccess) {
		cudaError_t e = cudaGetLastError();

		cu_untracked(p, kind);
		return cu_fail(ctx, e, "cudaHostGetDevicePointer(%p)", p);
	}
	rc = cu_range_add(ctx, p, bytes, (uintptr_t)dev, kind);
	if (rc)
		cu_untracked(p, kind);
	return rc;
}

int cu_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr)
{
	void *p = NULL;
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	if (!bytes)
		return cu_err(ctx, -EINVAL, "alloc of 0 bytes");
	CU_CALL(ctx, cudaMalloc(&p, bytes), "cudaMalloc(%zu bytes)", bytes);
	rc = cu_track(ctx, p, bytes, CU_RANGE_DEVICE);
	if (!rc)
		*ptr = p;
	return rc;
}

int cu_free(struct ibc_mem_ctx *ctx, void *ptr)
{
	struct cu_range *r;
	int rc;

	if (!ptr)
		return 0;
	r = cu_range_at(ctx, ptr, CU_RANGE_DEVICE);
	if (!r)
		return cu_err(ctx, -EINVAL, "free(%p): not an allocation of this context", ptr);
	rc = cu_enter(ctx);
	if (rc)
		return rc;
	cu_range_del(ctx, r);
	CU_CALL(ctx, cudaFree(ptr), "cudaFree(%p)", ptr);
	return 0;
}

int cu_host_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr)
{
	void *p = NULL;
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	if (!bytes)
		return cu_err(ctx, -EINVAL, "host_alloc of 0 bytes");
	CU_CALL(ctx, cudaHostAlloc(&p, bytes, cudaHostAllocPortable | cudaHostAllocMapped),
		"cudaHostAlloc(%zu bytes, portable|mapped)", bytes);
	rc = cu_track(ctx, p, bytes, CU_RANGE_PINNED);
	if (!rc)
		*ptr = p;
	return rc;
}

int cu_host_free(struct ibc_mem_ctx *ctx, void *ptr)
{
	struct cu_range *r;

	if (!ptr)
		return 0;
	r = cu_range_at(ctx, ptr, CU_RANGE_PINNED);
	if (!r)
		return cu_err(ctx, -EINVAL, "host_free(%p): not a host_alloc of this context", ptr);
	cu_range_del(ctx, r);
	CU_CALL(ctx, cudaFreeHost(ptr), "cudaFreeHost(%p)", ptr);
	return 0;
}

int cu_host_register(struct ibc_mem_ctx *ctx, void *ptr, size_t bytes)
{
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	if (!ptr || !bytes)
		return cu_err(ctx, -EINVAL, "host_register of an empty range");
	CU_CALL(ctx,
		cudaHostRegister(ptr, bytes, cudaHostRegisterPortable | cudaHostRegisterMapped),
		"cudaHostRegister(%p, %zu bytes, portable|mapped)", ptr, bytes);
	return cu_track(ctx, ptr, bytes, CU_RANGE_REGISTERED);
}

int cu_host_unregister(struct ibc_mem_ctx *ctx, void *ptr)
{
	struct cu_range *r = cu_range_at(ctx, ptr, CU_RANGE_REGISTERED);

	if (!r)
		return cu_err(ctx, -EINVAL, "host_unregister(%p): not registered by this context",
			      ptr);
	cu_range_del(ctx, r);
	CU_CALL(ctx, cudaHostUnregister(ptr), "cudaHostUnregister(%p)", ptr);
	return 0;
}
