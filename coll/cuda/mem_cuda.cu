/* SPDX-License-Identifier: MIT */
/*
 * mem_cuda.cu - the CUDA memory backend (mem.h), built into libibcoll-cuda.so and loaded by
 * ibc_mem_lookup("cuda") with dlopen. The CUDA runtime is linked statically (cudart_static):
 * the library needs only the driver (libcuda.so.1) at run time, and the ibcoll binary never
 * links CUDA.
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
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_int.h"
#include "mem.h"
#include "vdata.h"

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

/* A failure that is not a CUDA error. */
static int cu_err(struct ibc_mem_ctx *ctx, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cu_err(struct ibc_mem_ctx *ctx, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cu_msg(ctx, rc, fmt, ap);
	va_end(ap);
	return rc;
}

/* A CUDA call that returned e: "<call...> failed: cudaErrorX: text". */
static int cu_fail(struct ibc_mem_ctx *ctx, cudaError_t e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cu_fail(struct ibc_mem_ctx *ctx, cudaError_t e, const char *fmt, ...)
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

#define CU_CALL(ctx, call, ...)                                                                    \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			return cu_fail((ctx), e_, __VA_ARGS__);                                    \
	} while (0)

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

/* Make this context's GPU current for the calling thread. */
static int cu_enter(struct ibc_mem_ctx *ctx)
{
	CU_CALL(ctx, cudaSetDevice(ctx->device), "cudaSetDevice(%d)", ctx->device);
	return 0;
}

static int cu_valid(struct ibc_mem_ctx *ctx, int dt, int op)
{
	if ((unsigned)dt >= IBC_DTYPE_COUNT)
		return cu_err(ctx, -EINVAL, "unknown dtype %d", dt);
	if ((unsigned)op >= IBC_OP_COUNT)
		return cu_err(ctx, -EINVAL, "unknown op %d", op);
	return 0;
}

/* ---- ranges ---- */

static int cu_range_add(struct ibc_mem_ctx *ctx, void *p, size_t bytes, uintptr_t dev,
			enum cu_range_kind kind)
{
	if (ctx->nranges == ctx->cap) {
		size_t ncap = ctx->cap ? ctx->cap * 2 : 16;
		struct cu_range *r =
		    (struct cu_range *)realloc(ctx->ranges, ncap * sizeof(*ctx->ranges));

		if (!r)
			return cu_err(ctx, -ENOMEM, "out of host memory tracking allocations");
		ctx->ranges = r;
		ctx->cap = ncap;
	}
	ctx->ranges[ctx->nranges++] =
	    (struct cu_range){(uintptr_t)p, (uintptr_t)p + bytes, dev, kind};
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

/*
 * The device address a kernel uses for [p, p + bytes). A pageable host source is copied to
 * scratch at *scratch_off (advanced); a pageable destination is refused.
 */
static int cu_resolve(struct ibc_mem_ctx *ctx, const void *p, size_t bytes, int write,
		      const char *what, size_t *scratch_off, void **dev)
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
	/* pageable source: stage it */
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

/* ---- memory ---- */

static int cu_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr)
{
	void *p = NULL;
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	if (!bytes)
		return cu_err(ctx, -EINVAL, "alloc of 0 bytes");
	CU_CALL(ctx, cudaMalloc(&p, bytes), "cudaMalloc(%zu bytes)", bytes);
	rc = cu_range_add(ctx, p, bytes, (uintptr_t)p, CU_RANGE_DEVICE);
	if (rc) {
		cudaFree(p);
		return rc;
	}
	*ptr = p;
	return 0;
}

static int cu_free(struct ibc_mem_ctx *ctx, void *ptr)
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

static int cu_host_alloc(struct ibc_mem_ctx *ctx, size_t bytes, void **ptr)
{
	void *p = NULL, *dev = NULL;
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	if (!bytes)
		return cu_err(ctx, -EINVAL, "host_alloc of 0 bytes");
	CU_CALL(ctx, cudaHostAlloc(&p, bytes, cudaHostAllocPortable | cudaHostAllocMapped),
		"cudaHostAlloc(%zu bytes, portable|mapped)", bytes);
	if (cudaHostGetDevicePointer(&dev, p, 0) != cudaSuccess) {
		cudaError_t e = cudaGetLastError();

		cudaFreeHost(p);
		return cu_fail(ctx, e, "cudaHostGetDevicePointer(%p)", p);
	}
	rc = cu_range_add(ctx, p, bytes, (uintptr_t)dev, CU_RANGE_PINNED);
	if (rc) {
		cudaFreeHost(p);
		return rc;
	}
	*ptr = p;
	return 0;
}

static int cu_host_free(struct ibc_mem_ctx *ctx, void *ptr)
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

static int cu_host_register(struct ibc_mem_ctx *ctx, void *ptr, size_t bytes)
{
	void *dev = NULL;
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	if (!ptr || !bytes)
		return cu_err(ctx, -EINVAL, "host_register of an empty range");
	CU_CALL(ctx,
		cudaHostRegister(ptr, bytes, cudaHostRegisterPortable | cudaHostRegisterMapped),
		"cudaHostRegister(%p, %zu bytes, portable|mapped)", ptr, bytes);
	if (cudaHostGetDevicePointer(&dev, ptr, 0) != cudaSuccess) {
		cudaError_t e = cudaGetLastError();

		cudaHostUnregister(ptr);
		return cu_fail(ctx, e, "cudaHostGetDevicePointer(%p)", ptr);
	}
	rc = cu_range_add(ctx, ptr, bytes, (uintptr_t)dev, CU_RANGE_REGISTERED);
	if (rc)
		cudaHostUnregister(ptr);
	return rc;
}

static int cu_host_unregister(struct ibc_mem_ctx *ctx, void *ptr)
{
	struct cu_range *r = cu_range_at(ctx, ptr, CU_RANGE_REGISTERED);

	if (!r)
		return cu_err(ctx, -EINVAL, "host_unregister(%p): not registered by this context",
			      ptr);
	cu_range_del(ctx, r);
	CU_CALL(ctx, cudaHostUnregister(ptr), "cudaHostUnregister(%p)", ptr);
	return 0;
}

/* ---- copies ---- */

static const char *const cu_kind_name[] = {"H2D", "D2H", "D2D", "H2H"};

static int cu_check_kind(struct ibc_mem_ctx *ctx, enum ibc_copy_kind kind)
{
	if ((unsigned)kind > IBC_COPY_H2H)
		return cu_err(ctx, -EINVAL, "unknown copy kind %d", (int)kind);
	return 0;
}

static int cu_copy(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
		   enum ibc_copy_kind kind)
{
	int rc = cu_check_kind(ctx, kind);

	if (!rc)
		rc = cu_enter(ctx);
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

static int cu_copy_async(struct ibc_mem_ctx *ctx, void *dst, const void *src, size_t bytes,
			 enum ibc_copy_kind kind, uint64_t *ticket)
{
	uint64_t n = ctx->issued;
	struct cu_event *e = &ctx->ev[n % CU_EVENTS];
	int rc = cu_check_kind(ctx, kind);

	if (!rc)
		rc = cu_enter(ctx);
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

static int cu_done(struct ibc_mem_ctx *ctx, uint64_t ticket)
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

static const char *cu_dt_name(int dt)
{
	static const char *const names[IBC_DTYPE_COUNT] = {
	    "int8",   "uint8", "int32",	   "uint32", "int64",
	    "uint64", "half",  "bfloat16", "float",  "double",
	};

	return (unsigned)dt < IBC_DTYPE_COUNT ? names[dt] : "?";
}

static const char *cu_op_name(int op)
{
	static const char *const names[IBC_OP_COUNT] = {"sum", "prod", "min", "max", "avg"};

	return (unsigned)op < IBC_OP_COUNT ? names[op] : "?";
}

static int cu_kernel_done(struct ibc_mem_ctx *ctx, cudaError_t launch, const char *what,
			    size_t count, int dt, int op)
{
	if (launch != cudaSuccess)
		return cu_fail(ctx, launch, "launch of %s (%s %s, %zu elements)", what,
			       cu_dt_name(dt), cu_op_name(op), count);
	CU_CALL(ctx, cudaStreamSynchronize(ctx->compute_stream),
		"%s (%s %s, %zu elements): cudaStreamSynchronize", what, cu_dt_name(dt),
		cu_op_name(op), count);
	return 0;
}

static int cu_reduce(struct ibc_mem_ctx *ctx, void *dst, const void *a, const void *b, size_t count,
		     enum ibc_dtype dt, enum ibc_op op)
{
	size_t bytes = count * vd_size(dt), off = 0;
	void *d, *da, *db;
	int rc = cu_valid(ctx, dt, op);

	if (!rc)
		rc = cu_enter(ctx);
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

static int cu_finish(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt,
		     enum ibc_op op, int nranks)
{
	size_t off = 0;
	void *d;
	int rc = cu_valid(ctx, dt, op);

	if (!rc)
		rc = cu_enter(ctx);
	if (rc || !count || op != IBC_OP_AVG || nranks <= 1)
		return rc;
	rc = cu_resolve(ctx, buf, count * vd_size(dt), 1, "finish buf", &off, &d);
	if (rc)
		return rc;
	(void)cudaGetLastError();
	return cu_kernel_done(ctx, cu_finish_launch(&ctx->launch, d, count, dt, op, nranks),
				"avg kernel", count, dt, op);
}

static int cu_fill(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt,
		   enum ibc_op op, int rank, int nranks, uint64_t seed)
{
	size_t off = 0;
	void *d;
	int rc = cu_valid(ctx, dt, op);

	if (!rc)
		rc = cu_enter(ctx);
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

static int cu_poison(struct ibc_mem_ctx *ctx, void *buf, size_t count, enum ibc_dtype dt)
{
	size_t off = 0;
	void *d;
	int rc = cu_valid(ctx, dt, IBC_OP_SUM);

	if (!rc)
		rc = cu_enter(ctx);
	if (rc || !count)
		return rc;
	rc = cu_resolve(ctx, buf, count * vd_size(dt), 1, "poison buf", &off, &d);
	if (rc)
		return rc;
	(void)cudaGetLastError();
	return cu_kernel_done(ctx, cu_poison_launch(&ctx->launch, d, count, dt), "poison kernel",
				count, dt, IBC_OP_SUM);
}

static int cu_check(struct ibc_mem_ctx *ctx, const void *buf, size_t count, enum ibc_dtype dt,
		    enum ibc_op op, int nranks, uint64_t seed, struct ibc_check_result *res)
{
	size_t size = vd_size(dt), off = 0;
	uint64_t got = 0, want;
	struct vd v;
	const void *d;
	void *dv;
	int rc = cu_valid(ctx, dt, op);

	memset(res, 0, sizeof(*res));
	if (!rc)
		rc = cu_enter(ctx);
	if (rc || !count)
		return rc;
	rc = cu_resolve(ctx, buf, count * size, 0, "check buf", &off, &dv);
	if (rc)
		return rc;
	d = dv;
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
	/* the failing element, copied back for the report */
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

static int cu_sync(struct ibc_mem_ctx *ctx)
{
	int rc = cu_enter(ctx);

	if (rc)
		return rc;
	CU_CALL(ctx, cudaStreamSynchronize(ctx->copy_stream), "cudaStreamSynchronize(copy)");
	CU_CALL(ctx, cudaStreamSynchronize(ctx->compute_stream), "cudaStreamSynchronize(compute)");
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
