/* SPDX-License-Identifier: MIT */
/*
 * cu_ctx.h - the CUDA backend's context and what its three files share (C++, nvcc only):
 *   mem_cuda.cu  errors, device choice, context lifecycle (init, fini), the vtable
 *   cu_mem.cu    memory: allocations and registrations, pointer resolution, staging
 *   cu_ops.cu    what runs on the streams: copies and tickets, the kernel operations
 * Functions here are the vtable's entries and the helpers between those files; hidden like
 * everything in libibcoll-cuda.so but ibcoll_mem_cuda. All return 0 or a negative errno and
 * leave the reason in ctx->err (cu_err, cu_fail).
 */
#ifndef IBC_CU_CTX_H
#define IBC_CU_CTX_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "cu_int.h"
#include "mem.h"

#define CU_EVENTS 256 /* copies in flight before a slot is reused */

enum cu_range_kind { CU_RANGE_DEVICE, CU_RANGE_PINNED, CU_RANGE_REGISTERED };

/* A range this context allocated or registered. */
struct cu_range {
	uintptr_t start, end;
	uintptr_t dev; /* device address of start */
	enum cu_range_kind kind;
};

struct cu_event {
	cudaEvent_t ev; /* owned */
	uint64_t gen;	/* generation of the copy recorded last; 0: never used */
	int complete;	/* that copy is known to have completed */
};

struct ibc_mem_ctx {
	int device; /* CUDA ordinal */
	int local_rank;
	struct ibc_mem_info info;
	cudaStream_t copy_stream;      /* owned */
	cudaStream_t compute_stream;   /* owned */
	struct cu_launch launch;       /* compute stream + SM count */
	struct cu_event ev[CU_EVENTS]; /* owned events */
	uint64_t issued;	       /* copy_async calls so far */
	unsigned long long *d_check;   /* owned, device: check's [wrong, first] */
	unsigned long long *h_check;   /* owned, pinned host: their copy */
	void *scratch;		       /* owned, device: staging for pageable sources */
	size_t scratch_bytes;
	struct cu_range *ranges; /* owned array */
	size_t nranges, cap;
	char err[768];
};

/* ---- mem_cuda.cu ---- */

/* A failure that is not a CUDA error: the text goes to ctx->err; returns rc. */
int cu_err(struct ibc_mem_ctx *ctx, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A CUDA call that returned e: "<call...> failed: cudaErrorX: text"; returns e as -errno. */
int cu_fail(struct ibc_mem_ctx *ctx, cudaError_t e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define CU_CALL(ctx, call, ...)                                                                    \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			return cu_fail((ctx), e_, __VA_ARGS__);                                    \
	} while (0)

/* Make this context's GPU current for the calling thread. */
int cu_enter(struct ibc_mem_ctx *ctx);

/* ---- cu_mem.cu ---- */

int cu_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr);
int cu_free(struct ibc_mem_ctx *ctx, void *ptr);
int cu_host_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr);
int cu_host_free(struct ibc_mem_ctx *ctx, void *ptr);
int cu_host_register(struct ibc_mem_ctx *ctx, void *ptr, size_t bytes);
int cu_host_unregister(struct ibc_mem_ctx *ctx, void *ptr);
/*
 * The device address (*dev, borrowed) a kernel uses for [p, p + bytes). A pageable host source
 * is copied to the context's scratch at *scratch_off (advanced); a pageable destination
 * (write) is refused with -EFAULT. what names the operand in messages.
 */
int cu_resolve(struct ibc_mem_ctx *ctx, const void *p, size_t bytes, int write, const char *what,
	       size_t *scratch_off, void **dev);

/* ---- cu_ops.cu ---- */

int cu_copy(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
	    enum ibc_copy_kind kind);
int cu_copy_async(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
		  enum ibc_copy_kind kind, uint64_t *ticket);
int cu_done(struct ibc_mem_ctx *ctx, uint64_t ticket);
int cu_reduce(struct ibc_mem_ctx *ctx, void *dst, const void *a, const void *b, size_t count,
	      enum ibc_dtype dt, enum ibc_op op);
int cu_finish(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt, enum ibc_op op,
	      int nranks);
int cu_fill(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt, enum ibc_op op,
	    int rank, int nranks, uint64_t seed);
int cu_poison(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt);
int cu_check(struct ibc_mem_ctx *ctx, const void *buf, size_t count, enum ibc_dtype dt,
	     enum ibc_op op, int nranks, uint64_t seed, struct ibc_check_result *res);
int cu_sync(struct ibc_mem_ctx *ctx);

#endif
