/* SPDX-License-Identifier: MIT */
/*
 * shca_mem.c - protection domains, memory regions (lkey/rkey table with references held by
 * in-flight I/O) and the DMA seam: shca__dma_copy is the one function that copies bytes into
 * or out of MR memory that the socket cannot reach directly (device memory: a CUDA copy).
 */
#include "shca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- DMA seam */

/*
 * Host MRs (SHCA_MEM_HOST) are read and written by the kernel straight from the socket
 * (sendmsg/readv on the MR's pages, see shca_wire.c). Any other kind is staged through the
 * instance's bounce buffer and copied here: SHCA_MEM_STAGED (IBCOLL_SOFTHCA_DMA=staged: host
 * memory forced through this path, to keep it tested) and SHCA_MEM_CUDA (device memory where
 * a GPU is present: a CUDA copy, shca_cuda.c).
 */
void shca__dma_copy(void *dst, enum shca_mem_kind dst_kind, const void *src,
		    enum shca_mem_kind src_kind, size_t len)
{
	if (dst_kind == SHCA_MEM_CUDA || src_kind == SHCA_MEM_CUDA) { /* shca_cuda.c */
		shca__cuda_copy(dst, dst_kind == SHCA_MEM_CUDA, src, src_kind == SHCA_MEM_CUDA,
				len);
		return;
	}
	memcpy(dst, src, len);
}

/* ---------------------------------------------------------------- PD */

SHCA_EXPORT struct ibv_pd *ibv_alloc_pd(struct ibv_context *context)
{
	static atomic_uint shca_pd_handles;
	struct shca_pd *pd = calloc(1, sizeof(*pd));

	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	pd->ctx = shca_ctx_of(context);
	pd->ibpd.context = context;
	pd->ibpd.handle = atomic_fetch_add(&shca_pd_handles, 1);
	return &pd->ibpd;
}

SHCA_EXPORT int ibv_dealloc_pd(struct ibv_pd *ibpd)
{
	struct shca_pd *pd = (struct shca_pd *)ibpd;
	struct shca_ctx *ctx = pd->ctx;
	uint32_t i;
	int busy = 0;

	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < ctx->nmrs && !busy; i++)
		busy = ctx->mrs[i] && ctx->mrs[i]->pd == pd;
	for (i = 0; i < ctx->nqps && !busy; i++)
		busy = ctx->qps[i] && ctx->qps[i]->ibqp.pd == ibpd;
	pthread_mutex_unlock(&ctx->lock);
	if (busy)
		return EBUSY;
	free(pd);
	return 0;
}

/* ---------------------------------------------------------------- MR */

#define SHCA_ACCESS_KNOWN                                                                          \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |               \
	 IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND | IBV_ACCESS_ZERO_BASED |                   \
	 IBV_ACCESS_ON_DEMAND | IBV_ACCESS_HUGETLB | IBV_ACCESS_OPTIONAL_RANGE)

/* Slot in ctx->mrs; ctx->lock held. */
static int shca_mr_slot(struct shca_ctx *ctx, uint32_t *slot)
{
	struct shca_mr **grown;
	uint32_t i, n;

	for (i = 0; i < ctx->nmrs; i++) {
		if (!ctx->mrs[i]) {
			*slot = i;
			return 0;
		}
	}
	if (ctx->nmrs >= SHCA_MAX_MRS)
		return -ENOMEM;
	n = ctx->nmrs ? ctx->nmrs * 2 : 64;
	grown = realloc(ctx->mrs, n * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	memset(grown + ctx->nmrs, 0, (n - ctx->nmrs) * sizeof(*grown));
	*slot = ctx->nmrs;
	ctx->mrs = grown;
	ctx->nmrs = n;
	return 0;
}

static struct ibv_mr *shca_reg(struct ibv_pd *ibpd, void *addr, size_t length, uint64_t iova,
			       unsigned int access)
{
	struct shca_pd *pd = (struct shca_pd *)ibpd;
	struct shca_ctx *ctx = pd->ctx;
	struct shca_mr *mr;
	uint32_t slot;
	int rc;

	if (!addr || !length || (access & ~(unsigned)SHCA_ACCESS_KNOWN) ||
	    ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	     !(access & IBV_ACCESS_LOCAL_WRITE))) {
		errno = EINVAL;
		return NULL;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr) {
		errno = ENOMEM;
		return NULL;
	}
	mr->pd = pd;
	mr->kind = shca__config()->dma_staged ? SHCA_MEM_STAGED : SHCA_MEM_HOST;
	if (shca__cuda_is_device(addr)) /* shca_cuda.c: only where a GPU is present */
		mr->kind = SHCA_MEM_CUDA;
	mr->iova = iova;
	mr->access = access;
	mr->ibmr.context = ibpd->context;
	mr->ibmr.pd = ibpd;
	mr->ibmr.addr = addr;
	mr->ibmr.length = length;

	pthread_mutex_lock(&ctx->lock);
	rc = shca_mr_slot(ctx, &slot);
	if (rc) {
		pthread_mutex_unlock(&ctx->lock);
		free(mr);
		errno = -rc;
		return NULL;
	}
	mr->slot = slot;
	mr->ibmr.lkey = ((slot + 1) << 8) | ctx->mr_gen++;
	mr->ibmr.rkey = mr->ibmr.lkey;
	mr->ibmr.handle = mr->ibmr.lkey;
	ctx->mrs[slot] = mr;
	pthread_mutex_unlock(&ctx->lock);
	SHCA_DBG("reg_mr %p+%zu iova 0x%llx access 0x%x -> key 0x%x", addr, length,
		 (unsigned long long)iova, access, mr->ibmr.lkey);
	return &mr->ibmr;
}

#undef ibv_reg_mr
#undef ibv_reg_mr_iova

SHCA_EXPORT struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	return shca_reg(pd, addr, length, (uintptr_t)addr, (unsigned int)access);
}

SHCA_EXPORT struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length,
					   uint64_t iova, int access)
{
	return shca_reg(pd, addr, length, iova, (unsigned int)access);
}

SHCA_EXPORT struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
					    uint64_t iova, unsigned int access)
{
	return shca_reg(pd, addr, length, iova, access);
}

/* dma-buf registration (shca_cuda.c): without a GPU EOPNOTSUPP, which is what a probe with
 * fd -1 expects from a stack without dma-buf support; with one, iova is taken as the device
 * address of the range (a real HCA maps the fd; user space cannot). */
SHCA_EXPORT struct ibv_mr *ibv_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t offset, size_t length,
					     uint64_t iova, int fd, int access)
{
	void *addr;
	int err = shca__cuda_dmabuf_addr(fd, iova, length, &addr); /* shca_cuda.c */

	if (err) {
		errno = err;
		return NULL;
	}
	return shca_reg(pd, addr, length, iova, (unsigned int)access);
}

SHCA_EXPORT int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr,
			     size_t length, int access)
{
	errno = EOPNOTSUPP;
	return IBV_REREG_MR_ERR_INPUT;
}

/* Remove the key (new lookups fail), then wait until no I/O uses the memory. */
SHCA_EXPORT int ibv_dereg_mr(struct ibv_mr *ibmr)
{
	struct shca_mr *mr = (struct shca_mr *)ibmr;
	struct shca_ctx *ctx = mr->pd->ctx;

	pthread_mutex_lock(&ctx->lock);
	if (mr->slot < ctx->nmrs && ctx->mrs[mr->slot] == mr)
		ctx->mrs[mr->slot] = NULL;
	while (mr->refs > 0)
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	pthread_mutex_unlock(&ctx->lock);
	free(mr);
	return 0;
}

struct shca_mr *shca__mr_get(struct shca_ctx *ctx, uint32_t key)
{
	struct shca_mr *mr = NULL;
	uint32_t slot = (key >> 8) - 1;

	pthread_mutex_lock(&ctx->lock);
	if ((key >> 8) && slot < ctx->nmrs && ctx->mrs[slot] && ctx->mrs[slot]->ibmr.lkey == key) {
		mr = ctx->mrs[slot];
		mr->refs++;
	}
	pthread_mutex_unlock(&ctx->lock);
	return mr;
}

void shca__mr_put(struct shca_ctx *ctx, struct shca_mr *mr)
{
	pthread_mutex_lock(&ctx->lock);
	if (--mr->refs == 0)
		pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->lock);
}
