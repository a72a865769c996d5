/* SPDX-License-Identifier: MIT */
/*
 * mem.h - memory backends (docs/design.md#memory-backends: alloc, copy, reduce).
 *
 * The collectives run the same programs over host or GPU memory; what differs is where buffers
 * live, how a chunk is copied and who reduces it. A backend is a vtable:
 *   host - plain memory, CPU reductions (dtype.c);
 *   cuda - device memory, CUDA kernels; built with nvcc into libibcoll-cuda.so and loaded with
 *          dlopen only when --mem cuda is asked for, so the ibcoll binary runs without CUDA;
 *   hostdev - test backend: host memory that the engine must treat as "device" memory (staged
 *          through pinned buffers exactly as CUDA memory is), so the staging paths are tested
 *          on machines without a GPU.
 *
 * Asynchronous copies: copy_async starts a copy and returns a ticket; done(ticket) polls it.
 * The engine uses this to copy chunk k+1 between device and staging while chunk k is on the wire.
 */
#ifndef IBC_MEM_H
#define IBC_MEM_H

#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* included by the CUDA backend (coll/cuda) */
#endif

#define IBC_MEM_ABI 1
#define IBC_MEM_CUDA_SYMBOL "ibcoll_mem_cuda" /* exported by libibcoll-cuda.so */

struct ibc_mem_ctx;

enum ibc_copy_kind { IBC_COPY_H2D, IBC_COPY_D2H, IBC_COPY_D2D, IBC_COPY_H2H };

struct ibc_mem_info {
	int device; /* ordinal in use, -1 for host */
	char name[64]; /* "NVIDIA H100 80GB HBM3" */
	char busid[32]; /* "0000:18:00.0" */
	int is_device; /* buffers are not host-addressable: transports need staging/GDR */
};

struct ibc_mem_ops {
	uint32_t abi; /* IBC_MEM_ABI */
	uint32_t ops_size;
	const char *name;
	/* device < 0: pick local_rank % device count. -ENODEV when there is no device. */
	int (*init)(int local_rank, int device, struct ibc_mem_ctx **ctx);
	int (*fini)(struct ibc_mem_ctx *ctx);
	int (*info)(struct ibc_mem_ctx *ctx, struct ibc_mem_info *info);
	int (*alloc)(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr); /* device memory */
	int (*free)(struct ibc_mem_ctx *ctx, void *ptr);
	/* page-locked host memory usable for staging (cudaHostAlloc), and its release */
	int (*host_alloc)(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr);
	int (*host_free)(struct ibc_mem_ctx *ctx, void *ptr);
	/* register existing host memory (e.g. a transport's shared segment) as pinned */
	int (*host_register)(struct ibc_mem_ctx *ctx, void *ptr, size_t bytes);
	int (*host_unregister)(struct ibc_mem_ctx *ctx, void *ptr);
	int (*copy)(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
		    enum ibc_copy_kind kind); /* synchronous */
	/* start an asynchronous copy; *ticket identifies it for done() */
	int (*copy_async)(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
			  enum ibc_copy_kind kind, uint64_t *ticket);
	/* 1 when the operation behind ticket finished, 0 if not yet, <0 error */
	int (*done)(struct ibc_mem_ctx *ctx, uint64_t ticket);
	/* dst = a OP b on the device; b may be pinned host memory (staged data). Synchronous. */
	int (*reduce)(struct ibc_mem_ctx *ctx, void *dst, const void *a, const void *b,
		      size_t count, enum ibc_dtype dt, enum ibc_op op);
	int (*finish)(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt,
		      enum ibc_op op, int nranks);
	/* verifiable data, same values as ibc_fill/ibc_check in dtype.h, computed on the device */
	int (*fill)(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt,
		    enum ibc_op op, int rank, int nranks, uint64_t seed);
	int (*poison)(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt);
	int (*check)(struct ibc_mem_ctx *ctx, const void *buf, size_t count, enum ibc_dtype dt,
		     enum ibc_op op, int nranks, uint64_t seed, struct ibc_check_result *res);
	int (*sync)(struct ibc_mem_ctx *ctx);
	const char *(*last_error)(struct ibc_mem_ctx *ctx);

	/* ---- appended; present when ops_size covers them (IBC_MEM_HAS) ---- */
	/* Count devices without creating a context or touching GPU memory: > 0, or -ENODEV with
	 * the reason (no driver, no device) in err. ibc_mem_lookup() calls it. */
	int (*probe)(char *err, size_t len);
	/* init, with the reason of a failure written to err (init alone cannot say why: there is
	 * no context to ask last_error). Prefer it to init when present. */
	int (*init_err)(int local_rank, int device, struct ibc_mem_ctx **ctx, char *err,
			size_t len);
};

/* Is entry `field` of ops present (within ops_size and non-NULL)? */
#define IBC_MEM_HAS(ops, field)                                                                    \
	((ops)->ops_size >= offsetof(struct ibc_mem_ops, field) + sizeof((ops)->field) &&         \
	 (ops)->field != NULL)

/* Look up a backend: "host", "hostdev" (built in), "cuda" (dlopen of libibcoll-cuda.so found
 * next to the executable, in IBCOLL_CUDA_LIB, or on the library path). -ENOENT/-ENODEV with
 * ibc_err_get() saying what was tried. */
int ibc_mem_lookup(const char *name, const struct ibc_mem_ops **ops);

/* ops->init_err (or init) with the reason of a failure in ibc_err_get(), prefixed with the
 * backend's name: "cuda: no CUDA device: ...". 0 or the backend's -errno. */
int ibc_mem_open(const struct ibc_mem_ops *ops, int local_rank, int device,
		 struct ibc_mem_ctx **ctx);

#ifdef __cplusplus
}
#endif

#endif
