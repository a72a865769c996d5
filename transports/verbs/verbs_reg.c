/* SPDX-License-Identifier: MIT */
/*
 * verbs_reg.c - memory registration with a cache keyed by address range.
 *
 * A registration covers whole pages and is made in every HCA's PD (a connection's QPs may sit
 * on several HCAs). reg_mr of a range that lies inside a cached entry of the same kind (and
 * dma-buf fd) takes a reference on it instead of registering again; dereg_mr drops the
 * reference and deregisters at zero, so freed memory never keeps a stale registration.
 * fini deregisters whatever is left.
 *
 * Kinds: IBC_MEM_HOST and IBC_MEM_CUDA (a device pointer, which needs peer memory:
 * nvidia-peermem) go through ibv_reg_mr; IBC_MEM_DMABUF through ibv_reg_dmabuf_mr, probed at
 * init. This is the seam the gdr transport uses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "verbs_int.h"

#define VRB_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

int vrb_mr_covers(const struct ibc_tp_mr *mr, const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;

	return mr && a >= mr->start && a <= mr->end && len <= mr->end - a;
}

static struct ibc_tp_mr *vrb_cache_find(struct ibc_tp_ctx *ctx, const struct ibc_tp_buf *buf)
{
	struct ibc_tp_mr *m;

	for (m = ctx->mrs; m; m = m->next) {
		if (m->kind != buf->kind || !vrb_mr_covers(m, buf->addr, buf->len))
			continue;
		if (buf->kind == IBC_MEM_DMABUF &&
		    (m->dmabuf_fd != buf->dmabuf_fd ||
		     m->dmabuf_offset + ((uintptr_t)buf->addr - m->start) != buf->dmabuf_offset))
			continue;
		return m;
	}
	return NULL;
}

/* Deregister every HCA's MR of m; keep going after an error, return the first. */
static int vrb_mr_release(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *m)
{
	int first = 0, h;

	for (h = ctx->nhcas - 1; h >= 0; h--) {
		if (!m->mr[h])
			continue;
		if (ctx->ibv->dereg_mr(m->mr[h]) && !first)
			first = vrb_errf(ctx, -EIO, "ibv_dereg_mr(%s) failed: %s",
					 ctx->hcas[h].name, strerror(errno));
		m->mr[h] = NULL;
	}
	return first;
}

static struct ibv_mr *vrb_mr_one(struct ibc_tp_ctx *ctx, struct vrb_hca *h,
				 const struct ibc_tp_mr *m)
{
	size_t len = m->end - m->start;

	if (m->kind == IBC_MEM_DMABUF)
		return ctx->ibv->reg_dmabuf_mr(h->pd, m->dmabuf_offset, len, m->start, m->dmabuf_fd,
					       VRB_ACCESS);
	return ctx->ibv->reg_mr(h->pd, (void *)m->start, len, VRB_ACCESS);
}

static int vrb_check_kind(struct ibc_tp_ctx *ctx, const struct ibc_tp_buf *buf)
{
	int h;

	switch (buf->kind) {
	case IBC_MEM_HOST:
	case IBC_MEM_CUDA:
		return 0;
	case IBC_MEM_DMABUF:
		for (h = 0; h < ctx->nhcas; h++)
			if (!ctx->hcas[h].dmabuf)
				return vrb_errf(ctx, -EOPNOTSUPP,
						"%s cannot register dma-buf memory "
						"(ibv_reg_dmabuf_mr unsupported: needs rdma-core "
						">= 34 and kernel >= 5.12)",
						ctx->hcas[h].name);
		return 0;
	}
	return vrb_errf(ctx, -EINVAL, "reg_mr: unknown memory kind %d", (int)buf->kind);
}

int vrb_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
	       struct ibc_tp_mr **out)
{
	long page = sysconf(_SC_PAGESIZE);
	struct ibc_tp_mr *m;
	int h, rc;

	if (dev < 0 || dev >= ctx->nports)
		return vrb_errf(ctx, -EINVAL, "reg_mr: no device %d (0..%d)", dev, ctx->nports - 1);
	if (!buf->addr || !buf->len)
		return vrb_errf(ctx, -EINVAL, "reg_mr: empty buffer");
	rc = vrb_check_kind(ctx, buf);
	if (rc)
		return rc;
	m = vrb_cache_find(ctx, buf);
	if (m) {
		m->refs++;
		ctx->stats.cache_hits++;
		*out = m;
		return 0;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return vrb_errf(ctx, -ENOMEM, "reg_mr: out of memory");
	m->kind = buf->kind;
	m->dmabuf_fd = buf->kind == IBC_MEM_DMABUF ? buf->dmabuf_fd : -1;
	if (buf->kind == IBC_MEM_DMABUF) { /* dma-buf offsets are exact, not page-rounded */
		m->start = (uintptr_t)buf->addr;
		m->end = m->start + buf->len;
		m->dmabuf_offset = buf->dmabuf_offset;
	} else {
		m->start = (uintptr_t)buf->addr & ~((uintptr_t)page - 1);
		m->end = ((uintptr_t)buf->addr + buf->len + page - 1) & ~((uintptr_t)page - 1);
	}
	for (h = 0; h < ctx->nhcas; h++) {
		m->mr[h] = vrb_mr_one(ctx, &ctx->hcas[h], m);
		if (!m->mr[h]) {
			rc = vrb_errf(ctx, errno ? -errno : -ENOMEM,
				      "registering %zu bytes at %p on %s failed: %s%s", buf->len,
				      buf->addr, ctx->hcas[h].name, strerror(errno),
				      errno == ENOMEM ? " (raise ulimit -l: locked memory)" : "");
			goto clean_mr;
		}
	}
	m->refs = 1;
	m->next = ctx->mrs;
	ctx->mrs = m;
	ctx->stats.registrations++;
	ctx->stats.cached++;
	*out = m;
	return 0;

clean_mr:
	vrb_mr_release(ctx, m);
	free(m);
	return rc;
}

static int vrb_cache_remove(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *m)
{
	struct ibc_tp_mr **pp;

	for (pp = &ctx->mrs; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			ctx->stats.cached--;
			return 0;
		}
	}
	return -ENOENT;
}

int vrb_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *m)
{
	int rc;

	if (!m)
		return 0;
	if (m->refs <= 0)
		return vrb_errf(ctx, -EINVAL, "dereg_mr: registration already released");
	if (--m->refs > 0)
		return 0;
	if (vrb_cache_remove(ctx, m))
		return vrb_errf(ctx, -EINVAL, "dereg_mr: registration not from this context");
	rc = vrb_mr_release(ctx, m);
	ctx->stats.deregistrations++;
	free(m);
	return rc;
}

int vrb_reg_cache_fini(struct ibc_tp_ctx *ctx)
{
	int first = 0, n = 0, rc;

	while (ctx->mrs) {
		struct ibc_tp_mr *m = ctx->mrs;

		ctx->mrs = m->next;
		ctx->stats.cached--;
		rc = vrb_mr_release(ctx, m);
		if (rc && !first)
			first = rc;
		ctx->stats.deregistrations++;
		n++;
		free(m);
	}
	if (n)
		IBC_DBG("verbs: fini deregistered %d registration(s) still referenced", n);
	return first;
}
