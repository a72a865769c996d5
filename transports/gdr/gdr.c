/* SPDX-License-Identifier: MIT */
/*
 * gdr.c - the gdr transport: the verbs transport with GPU memory registered with the NIC
 * (GPUDirect RDMA), so that the NIC writes straight into CUDA buffers and reads from them.
 *
 * It is verbs' vtable (transports/verbs, through verbs_int.h) with these entries wrapped:
 *   init      vrb_init, then find how GPU memory can be registered; -ENOTSUP (the CLI exits 3)
 *             with what was tried and what to do when no way exists;
 *   get_props + IBC_TP_CAP_NEEDS_FLUSH, mem_kinds HOST | CUDA (| DMABUF when the HCAs take it);
 *   reg_mr    IBC_MEM_CUDA: dma-buf first - the allocation's dma-buf fd from libcuda
 *             (cuMemGetHandleForAddressRange, DMA_BUF_FD) registered with ibv_reg_dmabuf_mr -
 *             then nvidia-peermem (ibv_reg_mr on the device pointer). One fd per allocation
 *             (keyed by CUDA's buffer id), so the verbs registration cache hits again; it is
 *             closed with the allocation's last registration;
 *   dereg_mr  releases that fd with the last registration;
 *   flush     (new) after the NIC wrote into GPU memory and before a kernel reads it: an
 *             RDMA READ of one byte of the buffer on a loopback QP of each HCA that wrote
 *             (as NCCL's iflush). The READ completes only after the NIC's earlier PCIe
 *             writes to the GPU, so once test() says done the data is visible to kernels.
 *             IBCOLL_GDR_FLUSH=0 turns it off (platforms where NIC writes are coherent);
 *   test      flush requests are gdr's own (conn == NULL); others go to vrb_test;
 *   fini      loopback QPs, then vrb_fini, then the cached fds.
 * The gdr state hangs off the verbs context (ctx->ext).
 *
 * How GPU memory is registered, detected at init as NCCL does:
 *   dma-buf  every HCA accepts ibv_reg_dmabuf_mr (verbs probes it with fd -1: EBADF, not
 *            EOPNOTSUPP/EPROTONOSUPPORT) and libcuda.so.1 loads, initialises and reports
 *            CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED on device 0;
 *   peermem  SYSFS/module/nvidia_peermem/version exists (or the legacy nv_peer_mem's
 *            kernel/mm/memory_peers/nv_mem/version); SYSFS is the config's sysfs_root, else
 *            ${IBCOLL_SYSFS_ROOT:-/sys} (ibc_sysfs).
 * IBCOLL_GDR_REG=dmabuf|peermem restricts the choice (tests, troubleshooting).
 *
 * libcuda is loaded at run time (dlopen + a symbol table filled once, pthread_once): the
 * transport builds and runs without CUDA.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "verbs/verbs_int.h"

#define GDR_FLUSH_DEPTH 64 /* flush requests in flight per context (and per loopback QP) */
#define GDR_ACCESS	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

/* ---- libcuda, loaded at run time (the few driver API types and constants we use) ---- */

typedef int gdr_curesult;	      /* CUresult, CUDA_SUCCESS = 0 */
typedef unsigned long long gdr_cuptr; /* CUdeviceptr */
typedef void *gdr_cuctx;	      /* CUcontext */

enum {
	GDR_CU_POINTER_ATTRIBUTE_CONTEXT = 1,
	GDR_CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2,
	GDR_CU_POINTER_ATTRIBUTE_BUFFER_ID = 7,
	GDR_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9,
	GDR_CU_MEMORYTYPE_DEVICE = 2,
	GDR_CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD = 1,
	GDR_CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 124,
};

struct gdr_cu {
	int ok;	       /* 1: loaded and cuInit succeeded */
	char why[384]; /* when not */
	gdr_curesult (*init)(unsigned int flags);
	gdr_curesult (*get_error_string)(gdr_curesult e, const char **s);
	gdr_curesult (*device_get_attribute)(int *v, int attr, int dev);
	gdr_curesult (*pointer_get_attribute)(void *data, int attr, gdr_cuptr p);
	gdr_curesult (*mem_get_address_range)(gdr_cuptr *base, size_t *size, gdr_cuptr p);
	gdr_curesult (*mem_get_handle_for_address_range)(void *handle, gdr_cuptr p, size_t size,
							 int type, unsigned long long flags);
	gdr_curesult (*ctx_push_current)(gdr_cuctx c);
	gdr_curesult (*ctx_pop_current)(gdr_cuctx *c);
};

static struct gdr_cu gdr_cu; /* filled once by gdr_cu_load */
static pthread_once_t gdr_cu_once = PTHREAD_ONCE_INIT;

static void gdr_cu_load(void)
{
	struct gdr_cu *c = &gdr_cu;
	void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	gdr_curesult r;

	if (!dl) {
		snprintf(c->why, sizeof(c->why), "libcuda.so.1 cannot be loaded (%s)", dlerror());
		return;
	}
#define GDR_SYM(field, name)                                                                       \
	do {                                                                                       \
		*(void **)&c->field = dlsym(dl, name);                                             \
		if (!c->field) {                                                                   \
			snprintf(c->why, sizeof(c->why), "libcuda.so.1 lacks %s (driver too old)", \
				 name);                                                            \
			return;                                                                    \
		}                                                                                  \
	} while (0)
	GDR_SYM(init, "cuInit");
	GDR_SYM(get_error_string, "cuGetErrorString");
	GDR_SYM(device_get_attribute, "cuDeviceGetAttribute");
	GDR_SYM(pointer_get_attribute, "cuPointerGetAttribute");
	GDR_SYM(mem_get_address_range, "cuMemGetAddressRange_v2");
	GDR_SYM(mem_get_handle_for_address_range, "cuMemGetHandleForAddressRange");
	GDR_SYM(ctx_push_current, "cuCtxPushCurrent_v2");
	GDR_SYM(ctx_pop_current, "cuCtxPopCurrent_v2");
#undef GDR_SYM
	r = c->init(0);
	if (r) {
		snprintf(c->why, sizeof(c->why), "cuInit failed: CUDA error %d (no GPU?)", r);
		return;
	}
	c->ok = 1; /* the library stays loaded for the life of the process */
}

static const char *gdr_cu_str(gdr_curesult r)
{
	const char *s = NULL;

	if (gdr_cu.get_error_string && gdr_cu.get_error_string(r, &s) == 0 && s)
		return s;
	return "unknown CUDA error";
}

/* ---- gdr state (ctx->ext) ---- */

/* A loopback RC QP on one HCA: RDMA READs of the received buffer into `landing`. */
struct gdr_lb {
	int port;		    /* index into ctx->ports; -1 until created */
	struct ibv_cq *cq;	    /* owned */
	struct ibv_qp *qp;	    /* owned */
	uint64_t posted, completed; /* READs */
	int failed;		    /* sticky -errno */
};

/* A flush request: base.conn == NULL tells gdr_test it is ours. */
struct gdr_req {
	struct ibc_tp_req base;	     /* first: the handle given out */
	struct ibc_tp_ctx *ctx;	     /* borrowed */
	uint64_t need[VRB_MAX_HCAS]; /* done when lb[h].completed >= need[h]; 0: HCA unused */
};

/* A dma-buf fd for one CUDA allocation. */
struct gdr_dmabuf {
	unsigned long long buffer_id; /* CU_POINTER_ATTRIBUTE_BUFFER_ID */
	int fd;			      /* owned */
	uintptr_t start;	      /* device address at dma-buf offset 0 */
	size_t size;
	int mrs; /* live registrations using fd */
};

struct gdr_state {
	int dmabuf_ok, peermem_ok, flush_on;
	char paths[640]; /* what registration paths exist, for messages */
	struct gdr_lb lb[VRB_MAX_HCAS];
	struct ibv_mr *landing_mr[VRB_MAX_HCAS]; /* owned */
	unsigned char landing[64];		 /* where flush READs land (byte h for HCA h) */
	struct gdr_req reqs[GDR_FLUSH_DEPTH];
	struct gdr_dmabuf *bufs; /* owned array */
	int nbufs, capbufs;
};

static struct gdr_state *gdr_st(struct ibc_tp_ctx *ctx)
{
	return ctx->ext;
}

/* ---- detection ---- */

/* nvidia-peermem, or the legacy nv_peer_mem, below the context's sysfs root (ibc_sysfs). */
static void gdr_detect_peermem(const struct ibc_tp_ctx *ctx, struct gdr_state *st, char *pm,
			       size_t len)
{
	static const char *const files[] = {"module/nvidia_peermem/version",
					    "kernel/mm/memory_peers/nv_mem/version"};
	const char *root = ctx->sysfs_root ? ctx->sysfs_root : ibc_sysfs_root();
	char path[PATH_MAX];
	size_t k;

	for (k = 0; k < IBC_ARRAY_SIZE(files); k++) {
		if (!ibc_sysfs_exists(root, "%s", files[k]))
			continue;
		st->peermem_ok = 1;
		ibc_sysfs_path(root, path, sizeof(path), "%s", files[k]);
		snprintf(pm, len, "nvidia-peermem: loaded (%.400s)", path);
		return;
	}
	snprintf(pm, len, "nvidia-peermem: not loaded (%s/%s absent)", root, files[0]);
}

static void gdr_detect(struct ibc_tp_ctx *ctx, struct gdr_state *st, const char *force)
{
	char pm[512], dm[384] = "";
	int h, v = 0;
	gdr_curesult r;

	gdr_detect_peermem(ctx, st, pm, sizeof(pm));
	/* dma-buf: every HCA and the CUDA driver */
	st->dmabuf_ok = 1;
	for (h = 0; h < ctx->nhcas && st->dmabuf_ok; h++) {
		if (!ctx->hcas[h].dmabuf) {
			st->dmabuf_ok = 0;
			snprintf(
			    dm, sizeof(dm),
			    "dma-buf: %s does not take ibv_reg_dmabuf_mr (needs rdma-core >= 34, "
			    "kernel >= 5.12)",
			    ctx->hcas[h].name);
		}
	}
	if (st->dmabuf_ok) {
		pthread_once(&gdr_cu_once, gdr_cu_load);
		if (!gdr_cu.ok) {
			st->dmabuf_ok = 0;
			snprintf(dm, sizeof(dm), "dma-buf: %.360s", gdr_cu.why);
		} else if ((r = gdr_cu.device_get_attribute(
				&v, GDR_CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, 0)) ||
			   !v) {
			st->dmabuf_ok = 0;
			snprintf(
			    dm, sizeof(dm),
			    "dma-buf: the CUDA driver does not export GPU memory as dma-buf "
			    "(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = %d%s%s; needs the NVIDIA "
			    "open kernel module)",
			    v, r ? ", " : "", r ? gdr_cu_str(r) : "");
		} else {
			snprintf(dm, sizeof(dm), "dma-buf: supported");
		}
	}
	if (force && !strcmp(force, "peermem") && st->dmabuf_ok) {
		st->dmabuf_ok = 0;
		snprintf(dm, sizeof(dm), "dma-buf: not used (IBCOLL_GDR_REG=peermem)");
	}
	if (force && !strcmp(force, "dmabuf") && st->peermem_ok) {
		st->peermem_ok = 0;
		snprintf(pm, sizeof(pm), "nvidia-peermem: not used (IBCOLL_GDR_REG=dmabuf)");
	}
	snprintf(st->paths, sizeof(st->paths), "%s; %s", dm, pm);
}

/* ---- lifecycle ---- */

static int gdr_lb_destroy(struct ibc_tp_ctx *ctx, struct gdr_state *st)
{
	int first = 0, h;

	for (h = VRB_MAX_HCAS - 1; h >= 0; h--) {
		struct gdr_lb *lb = &st->lb[h];

		if (lb->qp && ctx->ibv->destroy_qp(lb->qp) && !first)
			first = vrb_errf(ctx, -EIO, "gdr: ibv_destroy_qp (flush QP) failed: %s",
					 strerror(errno));
		if (lb->cq && ctx->ibv->destroy_cq(lb->cq) && !first)
			first = vrb_errf(ctx, -EBUSY, "gdr: ibv_destroy_cq (flush CQ) failed: %s",
					 strerror(errno));
		if (st->landing_mr[h] && ctx->ibv->dereg_mr(st->landing_mr[h]) && !first)
			first = vrb_errf(ctx, -EIO, "gdr: ibv_dereg_mr (flush landing) failed: %s",
					 strerror(errno));
		lb->qp = NULL;
		lb->cq = NULL;
		st->landing_mr[h] = NULL;
	}
	return first;
}

static void gdr_state_free(struct gdr_state *st)
{
	for (int k = 0; k < st->nbufs; k++)
		close(st->bufs[k].fd);
	free(st->bufs);
	free(st);
}

static int gdr_fini(struct ibc_tp_ctx *ctx)
{
	struct gdr_state *st;
	int first, rc;

	if (!ctx)
		return 0;
	st = gdr_st(ctx);
	first = st ? gdr_lb_destroy(ctx, st) : 0;
	ctx->ext = NULL;
	rc = vrb_fini(ctx); /* deregisters what is still cached, dma-buf MRs included */
	if (rc && !first)
		first = rc;
	if (st)
		gdr_state_free(st); /* then the fds behind them */
	return first;
}

static int gdr_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out)
{
	const char *force = getenv("IBCOLL_GDR_REG");
	const char *fl = getenv("IBCOLL_GDR_FLUSH");
	struct ibc_tp_ctx *ctx;
	struct gdr_state *st;
	int rc, h, all_dmabuf = 1;

	if (force && *force && strcmp(force, "auto") && strcmp(force, "dmabuf") &&
	    strcmp(force, "peermem")) {
		ibc_err_set("IBCOLL_GDR_REG='%s': expected auto, dmabuf or peermem", force);
		return -EINVAL;
	}
	rc = vrb_init(cfg, &ctx);
	if (rc)
		return rc;
	st = calloc(1, sizeof(*st));
	if (!st) {
		vrb_fini(ctx);
		ibc_err_set("gdr: out of memory");
		return -ENOMEM;
	}
	for (h = 0; h < VRB_MAX_HCAS; h++)
		st->lb[h].port = -1;
	st->flush_on = !(fl && !strcmp(fl, "0"));
	gdr_detect(ctx, st, force);
	if (!st->dmabuf_ok && !st->peermem_ok) {
		char why[sizeof(st->paths)];

		snprintf(why, sizeof(why), "%s", st->paths);
		gdr_state_free(st);
		vrb_fini(ctx);
		ibc_err_set(
		    "--transport gdr: GPU memory cannot be registered with the NIC: tried %s. "
		    "Load nvidia-peermem (modprobe nvidia-peermem), use a kernel with "
		    "dma-buf (5.12+) and an NVIDIA open kernel module, or run --transport "
		    "verbs --mem cuda to stage through host memory",
		    why);
		return -ENOTSUP;
	}
	for (h = 0; h < ctx->nhcas; h++)
		all_dmabuf &= ctx->hcas[h].dmabuf;
	ctx->mem_kinds = IBC_MEM_HOST | IBC_MEM_CUDA | (all_dmabuf ? IBC_MEM_DMABUF : 0);
	ctx->ext = st;
	IBC_DBG("gdr: %s; flush %s", st->paths, st->flush_on ? "on" : "off (IBCOLL_GDR_FLUSH=0)");
	*out = ctx;
	return 0;
}

static int gdr_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props)
{
	struct ibc_tp_props p = {.size = sizeof(p)};
	int rc = vrb_get_props(ctx, dev, &p);

	if (rc)
		return rc;
	p.mem_kinds = ctx->mem_kinds;
	if (gdr_st(ctx)->flush_on)
		p.caps |= IBC_TP_CAP_NEEDS_FLUSH;
	ibc_tp_props_put(props, &p); /* no more than the caller's props->size */
	return 0;
}

/* ---- registration ---- */

static struct gdr_dmabuf *gdr_buf_by_fd(struct gdr_state *st, int fd)
{
	for (int k = 0; k < st->nbufs; k++)
		if (st->bufs[k].fd == fd)
			return &st->bufs[k];
	return NULL;
}

static void gdr_buf_drop(struct gdr_state *st, struct gdr_dmabuf *b)
{
	close(b->fd);
	*b = st->bufs[--st->nbufs];
}

/* The dma-buf of the allocation holding p: cached, or exported now. */
static int gdr_buf_get(struct ibc_tp_ctx *ctx, struct gdr_state *st, const void *p,
		       struct gdr_dmabuf **out)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long id = 0;
	gdr_cuptr ptr = (gdr_cuptr)(uintptr_t)p, base = 0;
	gdr_cuctx cctx = NULL, popped;
	size_t size = 0;
	uintptr_t start, end;
	gdr_curesult r;
	int fd = -1, k;

	r = gdr_cu.pointer_get_attribute(&cctx, GDR_CU_POINTER_ATTRIBUTE_CONTEXT, ptr);
	if (!r)
		r = gdr_cu.pointer_get_attribute(&id, GDR_CU_POINTER_ATTRIBUTE_BUFFER_ID, ptr);
	if (r)
		return vrb_errf(ctx, -EINVAL,
				"gdr: %p is not CUDA device memory (cuPointerGetAttribute: %s)", p,
				gdr_cu_str(r));
	for (k = 0; k < st->nbufs; k++) {
		if (st->bufs[k].buffer_id == id) {
			*out = &st->bufs[k];
			return 0;
		}
	}
	r = gdr_cu.ctx_push_current(cctx);
	if (r)
		return vrb_errf(ctx, -EIO, "gdr: cuCtxPushCurrent failed: %s", gdr_cu_str(r));
	r = gdr_cu.mem_get_address_range(&base, &size, ptr);
	start = (uintptr_t)base & ~((uintptr_t)page - 1);
	end = ((uintptr_t)base + size + page - 1) & ~((uintptr_t)page - 1);
	if (!r)
		r = gdr_cu.mem_get_handle_for_address_range(
		    &fd, (gdr_cuptr)start, end - start, GDR_CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
	gdr_cu.ctx_pop_current(&popped);
	if (r || fd < 0)
		return vrb_errf(ctx, -EOPNOTSUPP,
				"gdr: cuMemGetHandleForAddressRange(DMA_BUF_FD) of the allocation "
				"at %#llx (%zu bytes) holding %p failed: %s",
				(unsigned long long)base, size, p, gdr_cu_str(r));
	if (st->nbufs == st->capbufs) {
		int ncap = st->capbufs ? 2 * st->capbufs : 8;
		struct gdr_dmabuf *nb = realloc(st->bufs, ncap * sizeof(*nb));

		if (!nb) {
			close(fd);
			return vrb_errf(ctx, -ENOMEM, "gdr: out of memory");
		}
		st->bufs = nb;
		st->capbufs = ncap;
	}
	st->bufs[st->nbufs] = (struct gdr_dmabuf){id, fd, start, end - start, 0};
	*out = &st->bufs[st->nbufs++];
	return 0;
}

static int gdr_reg_dmabuf(struct ibc_tp_ctx *ctx, struct gdr_state *st, int dev,
			  const struct ibc_tp_buf *buf, struct ibc_tp_mr **mr)
{
	struct ibc_tp_buf db = *buf;
	struct gdr_dmabuf *b = NULL;
	int rc;

	rc = gdr_buf_get(ctx, st, buf->addr, &b);
	if (rc)
		return rc;
	if ((uintptr_t)buf->addr + buf->len > b->start + b->size) {
		rc = vrb_errf(ctx, -EINVAL,
			      "gdr: %zu bytes at %p run past the end of their CUDA allocation",
			      buf->len, buf->addr);
		goto drop;
	}
	db.kind = IBC_MEM_DMABUF;
	db.dmabuf_fd = b->fd;
	db.dmabuf_offset = (uintptr_t)buf->addr - b->start;
	rc = vrb_reg_mr(ctx, dev, &db, mr);
	if (rc)
		goto drop;
	if ((*mr)->refs == 1) /* a new registration, not a cache hit */
		b->mrs++;
	return 0;
drop:
	if (!b->mrs)
		gdr_buf_drop(st, b);
	return rc;
}

static int gdr_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		      struct ibc_tp_mr **mr)
{
	struct gdr_state *st = gdr_st(ctx);
	char dmabuf_err[sizeof(ctx->err)] = "";
	int rc;

	if (buf->kind != IBC_MEM_CUDA)
		return vrb_reg_mr(ctx, dev, buf, mr);
	if (st->dmabuf_ok) {
		rc = gdr_reg_dmabuf(ctx, st, dev, buf, mr);
		if (!rc || !st->peermem_ok)
			return rc;
		snprintf(dmabuf_err, sizeof(dmabuf_err), "%s", ctx->err);
	}
	if (!st->peermem_ok)
		return vrb_errf(ctx, -ENOTSUP, "gdr: cannot register GPU memory: %s", st->paths);
	rc = vrb_reg_mr(ctx, dev, buf, mr); /* ibv_reg_mr on the device pointer */
	if (rc && dmabuf_err[0]) {
		char peer[sizeof(ctx->err)];

		snprintf(peer, sizeof(peer), "%s", ctx->err);
		return vrb_errf(ctx, rc, "%.300s; then nvidia-peermem: %.300s", dmabuf_err, peer);
	}
	if (rc)
		return vrb_errf(ctx, rc, "gdr (nvidia-peermem): %.600s", ctx->err);
	return 0;
}

static int gdr_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr)
{
	struct gdr_state *st = gdr_st(ctx);
	int fd = mr && mr->kind == IBC_MEM_DMABUF && mr->refs == 1 ? mr->dmabuf_fd : -1;
	struct gdr_dmabuf *b = NULL;
	int rc;

	rc = vrb_dereg_mr(ctx, mr);
	if (rc || fd < 0)
		return rc;
	b = gdr_buf_by_fd(st, fd); /* NULL when the caller brought its own fd */
	if (b && --b->mrs <= 0)
		gdr_buf_drop(st, b);
	return 0;
}

/* ---- flush: RDMA READ on a loopback QP ---- */

static int gdr_lb_connect(struct ibc_tp_ctx *ctx, struct gdr_lb *lb)
{
	const struct vrb_port *p = &ctx->ports[lb->port];
	const char *dev = ctx->hcas[p->hca].name;
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = p->port;
	a.qp_access_flags = IBV_ACCESS_REMOTE_READ;
	if (ctx->ibv->modify_qp(
		lb->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		return vrb_errf(ctx, -EIO, "gdr: flush QP on %s port %d: INIT failed: %s", dev,
				p->port, strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = p->mtu;
	a.dest_qp_num = lb->qp->qp_num; /* itself */
	a.rq_psn = 0;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.dlid = p->lid;
	a.ah_attr.port_num = p->port;
	if (p->use_grh) {
		a.ah_attr.is_global = 1;
		a.ah_attr.grh.dgid = p->gid;
		a.ah_attr.grh.sgid_index = p->gid_index;
		a.ah_attr.grh.hop_limit = 255;
	}
	if (ctx->ibv->modify_qp(lb->qp, &a,
				IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				    IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				    IBV_QP_MIN_RNR_TIMER))
		return vrb_errf(ctx, -EIO,
				"gdr: flush QP 0x%x on %s port %d: RTR (loopback) "
				"failed: %s",
				lb->qp->qp_num, dev, p->port, strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = 0;
	a.max_rd_atomic = 1;
	if (ctx->ibv->modify_qp(lb->qp, &a,
				IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				    IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		return vrb_errf(ctx, -EIO, "gdr: flush QP 0x%x on %s port %d: RTS failed: %s",
				lb->qp->qp_num, dev, p->port, strerror(errno));
	return 0;
}

/* The loopback QP of HCA h, created on first use on the first selected port of h. */
static int gdr_lb_get(struct ibc_tp_ctx *ctx, struct gdr_state *st, int h, struct gdr_lb **out)
{
	struct gdr_lb *lb = &st->lb[h];
	struct ibv_qp_init_attr ia;
	struct vrb_hca *hca = &ctx->hcas[h];
	int p, rc;

	if (lb->failed)
		return vrb_errf(ctx, lb->failed, "gdr: the flush QP on %s failed earlier",
				hca->name);
	if (lb->qp) {
		*out = lb;
		return 0;
	}
	for (p = 0; p < ctx->nports && ctx->ports[p].hca != h; p++)
		;
	if (p == ctx->nports)
		return vrb_errf(ctx, -EINVAL, "gdr: no selected port on %s", hca->name);
	lb->port = p;
	if (!st->landing_mr[h]) {
		st->landing_mr[h] = ctx->ibv->reg_mr(hca->pd, st->landing, sizeof(st->landing),
						     IBV_ACCESS_LOCAL_WRITE);
		if (!st->landing_mr[h])
			return vrb_errf(ctx, -ENOMEM, "gdr: ibv_reg_mr (flush landing) on %s: %s",
					hca->name, strerror(errno));
	}
	lb->cq = ctx->ibv->create_cq(hca->ctx, 2 * GDR_FLUSH_DEPTH, NULL, NULL, 0);
	if (!lb->cq)
		return vrb_errf(ctx, -ENOMEM, "gdr: ibv_create_cq (flush) on %s: %s", hca->name,
				strerror(errno));
	memset(&ia, 0, sizeof(ia));
	ia.send_cq = lb->cq;
	ia.recv_cq = lb->cq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = GDR_FLUSH_DEPTH;
	ia.cap.max_recv_wr = 1;
	ia.cap.max_send_sge = 1;
	ia.cap.max_recv_sge = 1;
	lb->qp = ctx->ibv->create_qp(hca->pd, &ia);
	if (!lb->qp)
		return vrb_errf(ctx, -ENOMEM, "gdr: ibv_create_qp (flush, RC) on %s: %s", hca->name,
				strerror(errno));
	rc = gdr_lb_connect(ctx, lb);
	if (rc) {
		lb->failed = rc;
		return rc;
	}
	*out = lb;
	return 0;
}

static int gdr_lb_poll(struct ibc_tp_ctx *ctx, struct gdr_lb *lb, int h)
{
	struct ibv_wc wc[16];
	int n, i;

	if (lb->failed)
		return lb->failed;
	do {
		n = ibv_poll_cq(lb->cq, 16, wc);
		if (n < 0) {
			lb->failed = vrb_errf(ctx, -EIO, "gdr: ibv_poll_cq (flush) on %s failed",
					      ctx->hcas[h].name);
			return lb->failed;
		}
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				lb->failed = vrb_errf(
				    ctx, -EIO,
				    "gdr: flush (RDMA READ on loopback QP 0x%x, %s port %d) "
				    "failed: %s (status %d, vendor_err %#x)",
				    lb->qp->qp_num, ctx->hcas[h].name, ctx->ports[lb->port].port,
				    vrb_wc_status_str(ctx->ibv, wc[i].status), (int)wc[i].status,
				    wc[i].vendor_err);
				return lb->failed;
			}
			lb->completed++;
		}
	} while (n == 16);
	return 0;
}

static int gdr_lb_read(struct ibc_tp_ctx *ctx, struct gdr_state *st, int h, void *data,
		       const struct ibc_tp_mr *mr)
{
	struct gdr_lb *lb = NULL;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	int rc;

	rc = gdr_lb_get(ctx, st, h, &lb);
	if (rc)
		return rc;
	if (lb->posted - lb->completed >= GDR_FLUSH_DEPTH) {
		rc = gdr_lb_poll(ctx, lb, h);
		if (rc)
			return rc;
		if (lb->posted - lb->completed >= GDR_FLUSH_DEPTH)
			return -EAGAIN;
	}
	sge.addr = (uintptr_t)&st->landing[h];
	sge.length = 1;
	sge.lkey = st->landing_mr[h]->lkey;
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = lb->posted;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_READ;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = (uintptr_t)data;
	wr.wr.rdma.rkey = mr->mr[h]->rkey;
	rc = ibv_post_send(lb->qp, &wr, &bad);
	if (rc) {
		lb->failed = vrb_errf(ctx, -rc, "gdr: ibv_post_send (flush READ) on QP 0x%x: %s",
				      lb->qp->qp_num, strerror(rc));
		return lb->failed;
	}
	lb->posted++;
	return 0;
}

static int gdr_flush(struct ibc_tp_recv *r, void *data, size_t size, struct ibc_tp_mr *mr,
		     struct ibc_tp_req **out)
{
	struct vrb_conn *c = &r->c;
	struct ibc_tp_ctx *ctx = c->ctx;
	struct gdr_state *st = gdr_st(ctx);
	int used[VRB_MAX_HCAS] = {0};
	struct gdr_req *req = NULL;
	int q, h, k, rc;

	*out = NULL;
	if (!st->flush_on || !size || !mr || mr->kind == IBC_MEM_HOST)
		return 0; /* nothing the GPU could see stale */
	if (!vrb_mr_covers(mr, data, size))
		return vrb_errf(ctx, -EINVAL,
				"flush: %zu bytes at %p are not inside the given registration",
				size, data);
	for (k = 0; k < GDR_FLUSH_DEPTH && !req; k++)
		if (!st->reqs[k].base.used)
			req = &st->reqs[k];
	if (!req)
		return -EAGAIN;
	for (q = 0; q < c->nqps; q++)
		used[ctx->ports[c->qps[q].port].hca] = 1;
	memset(req, 0, sizeof(*req));
	for (h = 0; h < ctx->nhcas; h++) {
		if (!used[h])
			continue;
		rc = gdr_lb_read(ctx, st, h, data, mr);
		if (rc) /* reads posted on earlier HCAs complete unobserved: harmless */
			return rc;
		req->need[h] = st->lb[h].posted;
	}
	req->ctx = ctx;
	req->base.used = 1; /* base.conn stays NULL: a gdr request */
	*out = &req->base;
	return 0;
}

static int gdr_test(struct ibc_tp_req *base, int *done, size_t *size)
{
	struct gdr_req *req = (struct gdr_req *)base;
	struct ibc_tp_ctx *ctx;
	struct gdr_state *st;
	int h, rc;

	if (base->conn)
		return vrb_test(base, done, size);
	ctx = req->ctx;
	st = gdr_st(ctx);
	*done = 0;
	if (!base->used)
		return vrb_errf(ctx, -EINVAL, "test: flush request already completed");
	for (h = 0; h < ctx->nhcas; h++) {
		if (!req->need[h])
			continue;
		rc = gdr_lb_poll(ctx, &st->lb[h], h);
		if (!rc && st->lb[h].completed < req->need[h]) {
			if (!vrb_aborted(ctx))
				return 0;
			rc = vrb_errf(ctx, -ECANCELED, "flush cancelled: another rank failed");
		}
		if (rc) {
			*done = 1;
			base->used = 0;
			return rc;
		}
	}
	*done = 1;
	base->used = 0;
	if (size)
		*size = 0;
	return 0;
}

const struct ibc_tp_ops ibc_tp_gdr_ops = {
	.abi_major = IBC_TP_ABI_MAJOR,
	.ops_size = sizeof(struct ibc_tp_ops),
	.name = "gdr",
	.description = "verbs with GPU memory registered with the NIC (GPUDirect RDMA: dma-buf "
		   "or nvidia-peermem); the NIC reads and writes CUDA buffers directly",
	.init = gdr_init,
	.devices = vrb_devices,
	.get_props = gdr_get_props,
	.listen = vrb_listen,
	.connect = vrb_connect,
	.accept = vrb_accept,
	.reg_mr = gdr_reg_mr,
	.dereg_mr = gdr_dereg_mr,
	.post_send = vrb_post_send,
	.post_recv = vrb_post_recv,
	.test = gdr_test,
	.close_send = vrb_close_send,
	.close_recv = vrb_close_recv,
	.close_listen = vrb_close_listen,
	.fini = gdr_fini,
	.last_error = vrb_last_error,
	.flush = gdr_flush,
	.port_counters = vrb_port_counters,
};
