/* SPDX-License-Identifier: MIT */
/*
 * mem_cuda.cu - the CUDA memory backend (mem.h), built into libibcoll-cuda.so and loaded by
 * ibc_mem_lookup("cuda") with dlopen. The CUDA runtime is linked statically (cudart_static):
 * the library needs only the driver (libcuda.so.1) at run time, and the ibcoll binary never
 * links CUDA. This file: errors, the device count and choice, the context's lifecycle and the
 * vtable; memory is cu_mem.cu's, copies and kernels cu_ops.cu's (cu_ctx.h joins them).
 *
 * A context owns one GPU (local_rank % device count, or the ordinal asked for), two
 * non-blocking streams and a ring of events:
 *  - copy stream: copy() and copy_async(). copy_async records event slot n % CU_EVENTS after
 *    the copy; the ticket is gen * CU_EVENTS + slot with gen = n / CU_EVENTS + 1 (never 0).
 *    done() answers 1 for a ticket whose slot has been reused since (a slot is reused only
 *    after its event completed), else cudaEventQuery.
 *  - compute stream: reduce, finish, fill, poison, check, each synchronous (the stream is
 *    synchronised before returning). They do not wait for copies still in flight on the copy
 *    stream: wait for those with done() first, as for any asynchronous copy.
 * Copies use cudaMemcpyDefault (unified addressing): the kind argument is validated but the
 * driver infers the direction from the pointers.
 *
 * Pointers given to kernels are resolved through the ranges this context allocated or
 * registered (device memory as is; pinned host memory through its mapped device address),
 * else through cudaPointerGetAttributes. A pageable host source is staged into device
 * scratch memory first; a pageable host destination is refused (-EFAULT).
 *
 * Every CUDA call is checked; the error text (last_error) names the GPU (ordinal, PCI bus id,
 * name), the local rank, the call and CUDA's error name and string.
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_ctx.h"

/* ---- errors ---- */

static int cu_errno(cudaError_t e)
{
	switch (e) {
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorInvalidValue:
	case cudaErrorInvalidDevicePointer:
	case cudaErrorInvalidMemcpyDirection:
		return -EINVAL;
	case cudaErrorNoDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorInvalidDevice:
	case cudaErrorNoKernelImageForDevice:
	case cudaErrorDevicesUnavailable:
		return -ENODEV;
	case cudaErrorHostMemoryAlreadyRegistered:
		return -EEXIST;
	default:
		return -EIO;
	}
}

/* Errors after which the context cannot be used any more. */
static int cu_sticky(cudaError_t e)
{
	switch (e) {
	case cudaErrorIllegalAddress:
	case cudaErrorLaunchFailure:
	case cudaErrorHardwareStackError:
	case cudaErrorIllegalInstruction:
	case cudaErrorMisalignedAddress:
	case cudaErrorInvalidAddressSpace:
	case cudaErrorInvalidPc:
	case cudaErrorAssert:
	case cudaErrorECCUncorrectable:
	case cudaErrorLaunchTimeout:
		return 1;
	default:
		return 0;
	}
}

static int cu_msg(struct ibc_mem_ctx *ctx, int rc, const char *fmt, va_list ap)
{
	char what[512];

	vsnprintf(what, sizeof(what), fmt, ap);
	snprintf(ctx->err, sizeof(ctx->err), "GPU %d (%s, %s), local rank %d: %s", ctx->device,
		 ctx->info.busid[0] ? ctx->info.busid : "?",
		 ctx->info.name[0] ? ctx->info.name : "?", ctx->local_rank, what);
	return rc;
}

int cu_err(struct ibc_mem_ctx *ctx, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cu_msg(ctx, rc, fmt, ap);
	va_end(ap);
	return rc;
}

int cu_fail(struct ibc_mem_ctx *ctx, cudaError_t e, const char *fmt, ...)
{
	char call[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call, sizeof(call), fmt, ap);
	va_end(ap);
	(void)cudaGetLastError(); /* clear a non-sticky error so later calls report their own */
	return cu_err(ctx, cu_errno(e), "%s failed: %s: %s%s", call, cudaGetErrorName(e),
		      cudaGetErrorString(e),
		      cu_sticky(e) ? " (the CUDA context is no longer usable: the process must "
				     "restart; run under compute-sanitizer to find the fault)"
				   : "");
}

static const char *cu_driver_text(char *buf, size_t len)
{
	int v = 0;

	if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0)
		snprintf(buf, len,
			 "not loaded (libcuda.so.1 not found: is the NVIDIA driver "
			 "installed and visible in this container?)");
	else
		snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
	return buf;
}

/* Device count, or -ENODEV with the reason in err. */
static int cu_count(char *err, size_t len)
{
	const char *vis = getenv("CUDA_VISIBLE_DEVICES");
	char drv[160];
	cudaError_t e;
	int n = 0;

	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		if (err && len)
			snprintf(
			    err, len,
			    "no CUDA device: cudaGetDeviceCount returned %d (%s: %s), driver %s",
			    (int)e, cudaGetErrorName(e), cudaGetErrorString(e),
			    cu_driver_text(drv, sizeof(drv)));
		(void)cudaGetLastError();
		return -ENODEV;
	}
	if (n <= 0) {
		if (err && len)
			snprintf(err, len,
				 "no CUDA device: cudaGetDeviceCount found 0 devices (driver %s, "
				 "CUDA_VISIBLE_DEVICES=%s)",
				 cu_driver_text(drv, sizeof(drv)), vis ? vis : "(unset)");
		return -ENODEV;
	}
	return n;
}

static int cu_probe(char *err, size_t len)
{
	if (err && len)
		err[0] = '\0';
	return cu_count(err, len);
}

int cu_enter(struct ibc_mem_ctx *ctx)
{
	CU_CALL(ctx, cudaSetDevice(ctx->device), "cudaSetDevice(%d)", ctx->device);
	return 0;
}

/* ---- lifecycle ---- */

static int cu_fini(struct ibc_mem_ctx *ctx);

static int cu_make_streams(struct ibc_mem_ctx *ctx)
{
	CU_CALL(ctx, cudaStreamCreateWithFlags(&ctx->copy_stream, cudaStreamNonBlocking),
		"cudaStreamCreateWithFlags(copy stream)");
	CU_CALL(ctx, cudaStreamCreateWithFlags(&ctx->compute_stream, cudaStreamNonBlocking),
		"cudaStreamCreateWithFlags(compute stream)");
	for (int k = 0; k < CU_EVENTS; k++)
		CU_CALL(ctx, cudaEventCreateWithFlags(&ctx->ev[k].ev, cudaEventDisableTiming),
			"cudaEventCreateWithFlags(event %d)", k);
	CU_CALL(ctx, cudaMalloc(&ctx->d_check, 2 * sizeof(*ctx->d_check)),
		"cudaMalloc(check counters)");
	CU_CALL(ctx, cudaHostAlloc(&ctx->h_check, 2 * sizeof(*ctx->h_check), cudaHostAllocDefault),
		"cudaHostAlloc(check counters)");
	ctx->launch.stream = ctx->compute_stream;
	return 0;
}

/* A first kernel: fails here, clearly, when this build has no code for the GPU. */
static int cu_smoke(struct ibc_mem_ctx *ctx, int major, int minor)
{
	cudaError_t e = cu_poison_launch(&ctx->launch, ctx->d_check, 2, IBC_UINT64);

	if (e == cudaSuccess)
		e = cudaStreamSynchronize(ctx->compute_stream);
	if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion ||
	    e == cudaErrorInvalidKernelImage)
		return cu_fail(ctx, e,
			       "first kernel launch: libibcoll-cuda has code for compute "
			       "capability 9.0 (sm_90 + PTX) and this GPU is %d.%d: rebuild with "
			       "-DIBCOLL_CUDA_ARCHITECTURES=%d%d, or update the driver",
			       major, minor, major, minor);
	if (e != cudaSuccess)
		return cu_fail(ctx, e, "first kernel launch (poison, 2 elements)");
	return 0;
}

static int cu_open(struct ibc_mem_ctx *ctx, int local_rank, int device)
{
	struct cudaDeviceProp prop;
	char why[512];
	int n, rc;

	ctx->local_rank = local_rank;
	ctx->device = device;
	n = cu_count(why, sizeof(why));
	if (n < 0)
		return cu_err(ctx, n, "%s", why);
	if (device < 0)
		ctx->device = (local_rank < 0 ? 0 : local_rank) % n;
	else if (device >= n)
		return cu_err(ctx, -ENODEV,
			      "GPU %d was asked for, but this process sees %d (0..%d)", device, n,
			      n - 1);
	rc = cu_enter(ctx);
	if (rc)
		return rc;
	CU_CALL(ctx, cudaGetDeviceProperties(&prop, ctx->device), "cudaGetDeviceProperties(%d)",
		ctx->device);
	ctx->info.device = ctx->device;
	snprintf(ctx->info.name, sizeof(ctx->info.name), "%.63s", prop.name);
	snprintf(ctx->info.busid, sizeof(ctx->info.busid), "%04x:%02x:%02x.0", prop.pciDomainID,
		 prop.pciBusID, prop.pciDeviceID);
	ctx->info.is_device = 1;
	ctx->launch.sms = prop.multiProcessorCount;
	if (!prop.unifiedAddressing || !prop.canMapHostMemory)
		return cu_err(ctx, -ENOTSUP,
			      "the GPU lacks unified addressing or mapped host memory, which the "
			      "backend needs");
	rc = cu_make_streams(ctx);
	if (rc)
		return rc;
	return cu_smoke(ctx, prop.major, prop.minor);
}

static int cu_init_err(int local_rank, int device, struct ibc_mem_ctx **out, char *err, size_t len)
{
	struct ibc_mem_ctx *ctx = (struct ibc_mem_ctx *)calloc(1, sizeof(*ctx));
	int rc;

	*out = NULL;
	if (!ctx) {
		if (err && len)
			snprintf(err, len, "out of host memory");
		return -ENOMEM;
	}
	ctx->info.device = -1;
	rc = cu_open(ctx, local_rank, device);
	if (rc) {
		if (err && len)
			snprintf(err, len, "%s", ctx->err);
		cu_fini(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

static int cu_init(int local_rank, int device, struct ibc_mem_ctx **out)
{
	return cu_init_err(local_rank, device, out, NULL, 0);
}

/* Release everything, in reverse order of acquisition; keep going, return the first error. */
static int cu_fini(struct ibc_mem_ctx *ctx)
{
	int first = 0, rc;

	if (!ctx)
		return 0;
	if (cudaSetDevice(ctx->device < 0 ? 0 : ctx->device) != cudaSuccess)
		(void)cudaGetLastError();
#define CU_KEEP(expr)                                                                              \
	do {                                                                                       \
		rc = (expr);                                                                       \
		if (rc && !first)                                                                  \
			first = rc;                                                                \
	} while (0)
#define CU_REL(call, ...)                                                                          \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			CU_KEEP(cu_fail(ctx, e_, __VA_ARGS__));                                    \
	} while (0)
	if (ctx->copy_stream)
		CU_REL(cudaStreamSynchronize(ctx->copy_stream),
		       "fini: cudaStreamSynchronize(copy)");
	if (ctx->compute_stream)
		CU_REL(cudaStreamSynchronize(ctx->compute_stream),
		       "fini: cudaStreamSynchronize(compute)");
	while (ctx->nranges) {
		struct cu_range *r = &ctx->ranges[ctx->nranges - 1];
		void *p = (void *)r->start;

		if (r->kind == CU_RANGE_DEVICE)
			CU_REL(cudaFree(p), "fini: cudaFree(%p) of memory still allocated", p);
		else if (r->kind == CU_RANGE_PINNED)
			CU_REL(cudaFreeHost(p), "fini: cudaFreeHost(%p)", p);
		else
			CU_REL(cudaHostUnregister(p), "fini: cudaHostUnregister(%p)", p);
		ctx->nranges--;
	}
	free(ctx->ranges);
	if (ctx->scratch)
		CU_REL(cudaFree(ctx->scratch), "fini: cudaFree(staging scratch)");
	if (ctx->h_check)
		CU_REL(cudaFreeHost(ctx->h_check), "fini: cudaFreeHost(check counters)");
	if (ctx->d_check)
		CU_REL(cudaFree(ctx->d_check), "fini: cudaFree(check counters)");
	for (int k = CU_EVENTS - 1; k >= 0; k--)
		if (ctx->ev[k].ev)
			CU_REL(cudaEventDestroy(ctx->ev[k].ev), "fini: cudaEventDestroy(%d)", k);
	if (ctx->compute_stream)
		CU_REL(cudaStreamDestroy(ctx->compute_stream), "fini: cudaStreamDestroy(compute)");
	if (ctx->copy_stream)
		CU_REL(cudaStreamDestroy(ctx->copy_stream), "fini: cudaStreamDestroy(copy)");
#undef CU_REL
#undef CU_KEEP
	free(ctx);
	return first;
}

static int cu_info(struct ibc_mem_ctx *ctx, struct ibc_mem_info *info)
{
	*info = ctx->info;
	return 0;
}

static const char *cu_last_error(struct ibc_mem_ctx *ctx)
{
	if (!ctx) /* init failed: there is no context to hold the reason */
		return "no CUDA context: call init_err (or ibc_mem_open) to learn why init failed";
	return ctx->err[0] ? ctx->err : "no error";
}

/* The library's one exported symbol. */
extern "C" {
__attribute__((visibility("default"))) extern const struct ibc_mem_ops ibcoll_mem_cuda;

const struct ibc_mem_ops ibcoll_mem_cuda = {
	.abi = IBC_MEM_ABI,
	.ops_size = sizeof(struct ibc_mem_ops),
	.name = "cuda",
	.init = cu_init,
	.fini = cu_fini,
	.info = cu_info,
	.alloc = cu_alloc,
	.free = cu_free,
	.host_alloc = cu_host_alloc,
	.host_free = cu_host_free,
	.host_register = cu_host_register,
	.host_unregister = cu_host_unregister,
	.copy = cu_copy,
	.copy_async = cu_copy_async,
	.done = cu_done,
	.reduce = cu_reduce,
	.finish = cu_finish,
	.fill = cu_fill,
	.poison = cu_poison,
	.check = cu_check,
	.sync = cu_sync,
	.last_error = cu_last_error,
	.probe = cu_probe,
	.init_err = cu_init_err,
};
}
