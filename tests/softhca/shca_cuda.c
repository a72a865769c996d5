/* SPDX-License-Identifier: MIT */
/*
 * shca_cuda.c - device memory for the software HCA (docs/softhca.md): where a GPU is present, MRs
 * may cover CUDA device memory and the HCA's "DMA" into and out of them is a CUDA copy, so
 * the gdr transport's paths run in tests. Without a GPU (no libcuda.so.1, or cuInit fails)
 * everything here answers "no" and the HCA is host-only, as before.
 *
 *  - ibv_reg_mr on a device pointer (what nvidia-peermem allows on a real HCA): detected with
 *    cuPointerGetAttribute(MEMORY_TYPE); the MR gets kind SHCA_MEM_CUDA, and the wire code
 *    moves its bytes through the bounce buffer and shca__dma_copy, which calls
 *    shca__cuda_copy.
 *  - ibv_reg_dmabuf_mr: a real HCA maps the dma-buf fd; user space cannot turn an fd back
 *    into a device address, so the soft HCA trusts iova to be the device address of the
 *    registered range (ibcoll's gdr transport registers with iova = the buffer's device
 *    address) and checks that it is device memory and that fd is an open descriptor. Without
 *    a GPU it answers EOPNOTSUPP, which is what a probe with fd -1 expects from a stack
 *    without dma-buf; with one, EBADF for fd -1, so the probe finds dma-buf supported.
 *  - copies: cuMemcpy (unified addressing) in the context that owns the device pointer
 *    (pushed on the calling thread: the progress thread has none), then the legacy stream
 *    is synchronised, so the data is in place before the HCA completes the request.
 *
 * libcuda is loaded with dlopen once per process (pthread_once): the soft HCA never links
 * CUDA.
 */
#include "shca.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

/* the driver API types and constants used (cuda.h is not needed to build) */
typedef int shca_curesult;
typedef unsigned long long shca_cuptr;
typedef void *shca_cuctx;
#define SHCA_CU_POINTER_ATTRIBUTE_CONTEXT     1
#define SHCA_CU_POINTER_ATTRIBUTE_MEMORY_TYPE 2
#define SHCA_CU_MEMORYTYPE_DEVICE	      2

static struct {
	int ok; /* libcuda loaded and initialised */
	shca_curesult (*init)(unsigned int flags);
	shca_curesult (*pointer_get_attribute)(void *data, int attr, shca_cuptr p);
	shca_curesult (*ctx_push_current)(shca_cuctx c);
	shca_curesult (*ctx_pop_current)(shca_cuctx *c);
	shca_curesult (*memcpy)(shca_cuptr dst, shca_cuptr src, size_t len);
	shca_curesult (*stream_synchronize)(void *stream);
	shca_curesult (*get_error_string)(shca_curesult e, const char **s);
} shca_cu; /* the symbol table: filled once by shca_cu_load */
static pthread_once_t shca_cu_once = PTHREAD_ONCE_INIT;

static void shca_cu_load(void)
{
	void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!dl)
		return; /* no driver: device memory is simply not supported */
#define SHCA_CU_SYM(field, name)                                                                   \
	do {                                                                                       \
		*(void **)&shca_cu.field = dlsym(dl, name);                                        \
		if (!shca_cu.field) {                                                              \
			shca__log("libcuda.so.1 lacks %s: device memory disabled", name);          \
			return;                                                                    \
		}                                                                                  \
	} while (0)
	SHCA_CU_SYM(init, "cuInit");
	SHCA_CU_SYM(pointer_get_attribute, "cuPointerGetAttribute");
	SHCA_CU_SYM(ctx_push_current, "cuCtxPushCurrent_v2");
	SHCA_CU_SYM(ctx_pop_current, "cuCtxPopCurrent_v2");
	SHCA_CU_SYM(memcpy, "cuMemcpy");
	SHCA_CU_SYM(stream_synchronize, "cuStreamSynchronize");
	SHCA_CU_SYM(get_error_string, "cuGetErrorString");
#undef SHCA_CU_SYM
	if (shca_cu.init(0) != 0)
		return; /* a driver but no usable GPU */
	shca_cu.ok = 1;
	SHCA_DBG("libcuda loaded: device memory MRs enabled");
}

int shca__cuda_present(void)
{
	pthread_once(&shca_cu_once, shca_cu_load);
	return shca_cu.ok;
}

int shca__cuda_is_device(const void *addr)
{
	unsigned int type = 0;

	if (!addr || !shca__cuda_present())
		return 0;
	if (shca_cu.pointer_get_attribute(&type, SHCA_CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
					  (shca_cuptr)(uintptr_t)addr))
		return 0; /* not known to CUDA: host memory */
	return type == SHCA_CU_MEMORYTYPE_DEVICE;
}

int shca__cuda_dmabuf_addr(int fd, uint64_t iova, size_t len, void **addr)
{
	if (!shca__cuda_present())
		return EOPNOTSUPP;
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return EBADF;
	if (!len || !shca__cuda_is_device((void *)(uintptr_t)iova) ||
	    !shca__cuda_is_device((void *)(uintptr_t)(iova + len - 1)))
		return EINVAL; /* the soft HCA needs iova = the device address */
	*addr = (void *)(uintptr_t)iova;
	return 0;
}

static const char *shca_cu_str(shca_curesult r)
{
	const char *s = NULL;

	return shca_cu.get_error_string(r, &s) == 0 && s ? s : "unknown CUDA error";
}

void shca__cuda_copy(void *dst, int dst_dev, const void *src, int src_dev, size_t len)
{
	const void *dev = dst_dev ? dst : src;
	shca_cuctx cctx = NULL, popped;
	shca_curesult r;

	if (!len)
		return;
	if (!shca__cuda_present()) {
		shca__log("DMA into device memory without CUDA: %zu bytes dropped", len);
		return;
	}
	r = shca_cu.pointer_get_attribute(&cctx, SHCA_CU_POINTER_ATTRIBUTE_CONTEXT,
					  (shca_cuptr)(uintptr_t)dev);
	if (!r)
		r = shca_cu.ctx_push_current(cctx);
	if (r) {
		shca__log("CUDA copy of %zu bytes %p -> %p: no context for %p: %s", len, src, dst,
			  dev, shca_cu_str(r));
		return;
	}
	r = shca_cu.memcpy((shca_cuptr)(uintptr_t)dst, (shca_cuptr)(uintptr_t)src, len);
	if (!r) /* a copy from pageable memory may still be in flight: wait for it */
		r = shca_cu.stream_synchronize(NULL);
	if (r)
		shca__log("CUDA copy of %zu bytes %p -> %p failed: %s", len, src, dst,
			  shca_cu_str(r));
	shca_cu.ctx_pop_current(&popped);
}
