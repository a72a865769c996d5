/* SPDX-License-Identifier: MIT */
/*
 * test_gdr_tp.c - the gdr transport (transports/gdr) against the software HCA.
 *
 * Without a GPU (here):
 *  - no dma-buf (the soft HCA answers EOPNOTSUPP) and no nvidia-peermem (IBCOLL_SYSFS_ROOT
 *    points at an empty directory): init fails with -ENOTSUP and a message that says what
 *    was tried and what to do;
 *  - cfg->sysfs_root, when set, is the tree probed instead of IBCOLL_SYSFS_ROOT;
 *  - with a fake ${IBCOLL_SYSFS_ROOT}/module/nvidia_peermem/version: init succeeds; props say
 *    NEEDS_FLUSH and CUDA memory; IBC_MEM_CUDA registrations go through ibv_reg_mr (the
 *    peermem path; the soft HCA takes host memory posing as device memory); messages arrive;
 *    flush() posts RDMA READs on a loopback QP and its requests complete through test(), many
 *    in flight; host MRs need no flush; IBCOLL_GDR_FLUSH=0 turns flushing off;
 *  - IBCOLL_GDR_REG: a bad value is -EINVAL; "dmabuf" with no dma-buf is -ENOTSUP.
 * With a GPU (libibcoll-cuda loadable and a device present): device buffers from the cuda
 * memory backend are registered (dma-buf when the driver exports it, else peermem), a message
 * moves device to device through the soft HCA's CUDA copies, flush completes, the bytes are
 * checked on the host. Otherwise those checks are skipped, saying why.
 *
 * Sender and receiver live in this one process (each init opens its own soft HCA instance;
 * connect/accept never block).
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibc_common.h"
#include "mem.h"
#include "tap.h"
#include "transport.h"

extern const struct ibc_tp_ops ibc_tp_gdr_ops;
static const struct ibc_tp_ops *ops = &ibc_tp_gdr_ops;

struct pair {
	struct ibc_tp_ctx *rctx, *sctx;
	struct ibc_tp_listener *l;
	struct ibc_tp_recv *r;
	struct ibc_tp_send *s;
};

static void config_init(struct ibc_tp_config *cfg, int rank)
{
	ibc_tp_config_init(cfg);
	cfg->rank = rank;
	cfg->nranks = 2;
	cfg->local_rank = rank;
	cfg->local_size = 2;
	cfg->job_id = "test-gdr";
	cfg->hostname = rank ? "sender" : "receiver";
	cfg->local_addr = "127.0.0.1";
	cfg->gid_index = -1;
	cfg->qps = 2;
	cfg->timeout_ms = 30000;
}

static int wait_req(struct ibc_tp_req *req, size_t *size)
{
	uint64_t deadline = ibc_now_ns() + 60ull * 1000000000ull;
	int done = 0, rc;

	do {
		rc = ops->test(req, &done, size);
		if (rc)
			return rc;
		if (ibc_now_ns() > deadline)
			return -ETIMEDOUT;
	} while (!done);
	return 0;
}

static int pair_open(struct pair *p)
{
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_config cfg;
	int rc, rs = -EAGAIN, ra = -EAGAIN;
	uint64_t deadline = ibc_now_ns() + 30ull * 1000000000ull;

	memset(p, 0, sizeof(*p));
	config_init(&cfg, 0);
	rc = ops->init(&cfg, &p->rctx);
	if (rc)
		return rc;
	config_init(&cfg, 1);
	rc = ops->init(&cfg, &p->sctx);
	if (rc)
		return rc;
	rc = ops->listen(p->rctx, 0, handle, &p->l);
	if (rc)
		return rc;
	while ((rs == -EAGAIN || ra == -EAGAIN) && ibc_now_ns() < deadline) {
		if (rs == -EAGAIN)
			rs = ops->connect(p->sctx, 0, handle, &p->s);
		if (ra == -EAGAIN)
			ra = ops->accept(p->l, &p->r);
	}
	return rs ? rs : ra;
}

static int pair_close(struct pair *p)
{
	int rc = 0, r2;

	if (p->s)
		rc = ops->close_send(p->s);
	if (p->r && (r2 = ops->close_recv(p->r)) && !rc)
		rc = r2;
	if (p->l && (r2 = ops->close_listen(p->l)) && !rc)
		rc = r2;
	if (p->sctx && (r2 = ops->fini(p->sctx)) && !rc)
		rc = r2;
	if (p->rctx && (r2 = ops->fini(p->rctx)) && !rc)
		rc = r2;
	return rc;
}

static int lib_loads(const char *path)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (dl)
		dlclose(dl);
	return dl != NULL;
}

/* A fake sysfs: root/module/nvidia_peermem/version when peermem. */
static void make_sysfs(const char *root, int peermem)
{
	char path[512];
	FILE *f;

	mkdir(root, 0755);
	if (!peermem)
		return;
	snprintf(path, sizeof(path), "%s/module", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/module/nvidia_peermem", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/module/nvidia_peermem/version", root);
	f = fopen(path, "w");
	if (f) {
		fputs("535.104.05\n", f);
		fclose(f);
	}
}

static void no_path(const char *empty_root)
{
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx = NULL;
	const char *e;
	int rc;

	setenv("IBCOLL_SYSFS_ROOT", empty_root, 1);
	config_init(&cfg, 0);
	rc = ops->init(&cfg, &ctx);
	e = ibc_err_get();
	is_int(rc, -ENOTSUP, "no dma-buf, no peermem: init fails with -ENOTSUP");
	ok(strstr(e, "dma-buf") && strstr(e, "nvidia-peermem") && strstr(e, "tried"),
	   "the message says which paths were tried: %s", e);
	ok(strstr(e, "modprobe nvidia-peermem") && strstr(e, "5.12") &&
	       strstr(e, "--transport verbs --mem cuda"),
	   "and what to do");
	if (!rc)
		ops->fini(ctx);
}

/* cfg->sysfs_root wins over IBCOLL_SYSFS_ROOT for the peermem probe. */
static void cfg_root(const char *empty_root, const char *peer_root)
{
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx = NULL;
	int rc;

	setenv("IBCOLL_SYSFS_ROOT", empty_root, 1);
	config_init(&cfg, 0);
	cfg.sysfs_root = peer_root;
	rc = ops->init(&cfg, &ctx);
	ok(rc == 0, "cfg->sysfs_root with nvidia-peermem, IBCOLL_SYSFS_ROOT without: init %d", rc);
	if (!rc)
		ops->fini(ctx);
	setenv("IBCOLL_SYSFS_ROOT", peer_root, 1);
	cfg.sysfs_root = empty_root;
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == -ENOTSUP && strstr(ibc_err_get(), empty_root),
	   "cfg->sysfs_root without it: -ENOTSUP naming that root (%d)", rc);
	if (!rc)
		ops->fini(ctx);
}

static void bad_env(const char *peer_root)
{
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx = NULL;
	int rc;

	setenv("IBCOLL_SYSFS_ROOT", peer_root, 1);
	config_init(&cfg, 0);
	setenv("IBCOLL_GDR_REG", "nvlink", 1);
	rc = ops->init(&cfg, &ctx);
	is_int(rc, -EINVAL, "IBCOLL_GDR_REG=nvlink is rejected");
	ok(strstr(ibc_err_get(), "IBCOLL_GDR_REG") != NULL, "naming the variable: %s",
	   ibc_err_get());
	if (!rc)
		ops->fini(ctx);
	if (lib_loads("libcuda.so.1")) {
		tap_skip(2, "a CUDA driver is present: dma-buf may exist");
		unsetenv("IBCOLL_GDR_REG");
		return;
	}
	setenv("IBCOLL_GDR_REG", "dmabuf", 1);
	rc = ops->init(&cfg, &ctx);
	is_int(rc, -ENOTSUP, "IBCOLL_GDR_REG=dmabuf without dma-buf support: -ENOTSUP");
	ok(strstr(ibc_err_get(), "IBCOLL_GDR_REG=dmabuf") != NULL,
	   "the message says peermem was excluded: %s", ibc_err_get());
	if (!rc)
		ops->fini(ctx);
	unsetenv("IBCOLL_GDR_REG");
}

static void props(struct pair *p, int flush_on)
{
	struct ibc_tp_props pr;
	int rc = ibc_tp_get_props(ops, p->rctx, 0, &pr);

	is_int(rc, 0, "get_props");
	ok(!!(pr.caps & IBC_TP_CAP_NEEDS_FLUSH) == flush_on, "caps NEEDS_FLUSH is %d", flush_on);
	ok((pr.mem_kinds & IBC_MEM_HOST) && (pr.mem_kinds & IBC_MEM_CUDA),
	   "mem_kinds has HOST and CUDA (%#x)", pr.mem_kinds);
	ok(pr.caps & IBC_TP_CAP_INTERNODE, "an inter-node transport");
	ok(IBC_TP_HAS(ops, flush), "flush is in the vtable");
}

/* Messages into an IBC_MEM_CUDA registration (host memory here), each flushed. */
static void transfer(struct pair *p, void *rbuf, void *sbuf, enum ibc_mem_kind kind, size_t size,
		     int flush_on, const char *what, int (*fill)(void *, void *, size_t, int),
		     int (*verify)(void *, const void *, size_t, int), void *arg)
{
	struct ibc_tp_buf rb = {.kind = kind, .addr = rbuf, .len = size, .dmabuf_fd = -1};
	struct ibc_tp_buf sb = {.kind = kind, .addr = sbuf, .len = size, .dmabuf_fd = -1};
	struct ibc_tp_mr *rmr = NULL, *smr = NULL;
	struct ibc_tp_req *rq, *sq, *fq[8];
	int rc, bad = 0, flushes = 0, nulls = 0, iters = 8;
	size_t got;

	rc = ops->reg_mr(p->rctx, 0, &rb, &rmr);
	is_int(rc, 0, "%s: reg_mr (receiver): %s", what, rc ? ops->last_error(p->rctx) : "ok");
	rc = rc ? rc : ops->reg_mr(p->sctx, 0, &sb, &smr);
	is_int(rc, 0, "%s: reg_mr (sender)", what);
	if (rc)
		goto out;
	for (int it = 0; it < iters && !rc; it++) {
		fill(arg, sbuf, size, it);
		while ((rc = ops->post_recv(p->r, rbuf, size, it, rmr, &rq)) == -EAGAIN)
			;
		if (rc)
			break;
		while ((rc = ops->post_send(p->s, sbuf, size, it, smr, &sq)) == -EAGAIN)
			;
		if (!rc)
			rc = wait_req(rq, &got);
		if (!rc)
			rc = wait_req(sq, NULL);
		if (!rc && got != size)
			bad++;
		/* several flushes in flight, then complete them */
		for (int k = 0; !rc && k < 8; k++) {
			while ((rc = ops->flush(p->r, (char *)rbuf + k, size - k, rmr, &fq[k])) ==
			       -EAGAIN)
				;
			nulls += !rc && fq[k] == NULL;
		}
		for (int k = 0; !rc && k < 8; k++)
			if (fq[k]) {
				rc = wait_req(fq[k], NULL);
				flushes++;
			}
		if (!rc && !verify(arg, rbuf, size, it))
			bad++;
	}
	is_int(rc, 0, "%s: %d messages of %zu bytes, each flushed: %s", what, iters, size,
	       rc ? ops->last_error(p->rctx) : "ok");
	is_int(bad, 0, "%s: bytes and sizes correct", what);
	if (flush_on)
		ok(flushes == iters * 8 && nulls == 0, "%s: %d flush requests completed", what,
		   flushes);
	else
		ok(nulls == iters * 8, "%s: flush off: no requests (%d)", what, nulls);
out:
	if (rmr)
		is_int(ops->dereg_mr(p->rctx, rmr), 0, "%s: dereg_mr", what);
	if (smr)
		ops->dereg_mr(p->sctx, smr);
}

static int host_fill(void *arg, void *buf, size_t size, int it)
{
	for (size_t k = 0; k < size; k++)
		((uint8_t *)buf)[k] = (uint8_t)(k * 13 + it * 101 + (k >> 10));
	return 0;
}

static int host_verify(void *arg, const void *buf, size_t size, int it)
{
	for (size_t k = 0; k < size; k++)
		if (((const uint8_t *)buf)[k] != (uint8_t)(k * 13 + it * 101 + (k >> 10)))
			return 0;
	return 1;
}

static void host_flush_is_noop(struct pair *p)
{
	static uint8_t buf[4096];
	struct ibc_tp_buf b = {
	    .kind = IBC_MEM_HOST, .addr = buf, .len = sizeof(buf), .dmabuf_fd = -1};
	struct ibc_tp_mr *mr;
	struct ibc_tp_req *req = (struct ibc_tp_req *)1;

	is_int(ops->reg_mr(p->rctx, 0, &b, &mr), 0, "host reg_mr");
	is_int(ops->flush(p->r, buf, sizeof(buf), mr, &req), 0, "flush of a host MR");
	ok(req == NULL, "host memory needs no flush (no request)");
	ops->dereg_mr(p->rctx, mr);
}

static void peermem_host(const char *peer_root, int flush_on)
{
	size_t size = (1 << 20) + 333;
	void *rbuf = aligned_alloc(4096, 2 << 20), *sbuf = aligned_alloc(4096, 2 << 20);
	struct pair p;
	int rc;

	setenv("IBCOLL_SYSFS_ROOT", peer_root, 1);
	if (!flush_on)
		setenv("IBCOLL_GDR_FLUSH", "0", 1);
	rc = pair_open(&p);
	is_int(rc, 0, "peermem (fake sysfs)%s: init, listen, connect, accept: %s",
	       flush_on ? "" : ", IBCOLL_GDR_FLUSH=0", rc ? ibc_err_get() : "ok");
	if (!rc) {
		props(&p, flush_on);
		if (flush_on)
			host_flush_is_noop(&p);
		transfer(&p, rbuf, sbuf, IBC_MEM_CUDA, size, flush_on,
			 flush_on ? "CUDA-kind MR (host memory), peermem path"
				  : "CUDA-kind MR, flush off",
			 host_fill, host_verify, NULL);
	}
	is_int(pair_close(&p), 0, "teardown returns 0");
	unsetenv("IBCOLL_GDR_FLUSH");
	free(rbuf);
	free(sbuf);
}

/* ---- with a GPU: device buffers from the cuda memory backend ---- */

struct dev_io {
	const struct ibc_mem_ops *ops; /* borrowed */
	struct ibc_mem_ctx *ctx;       /* borrowed */
	uint8_t *host;		       /* owned by gpu(): bounce for fill/verify */
};

static int dev_fill(void *arg, void *dbuf, size_t size, int it)
{
	struct dev_io *io = arg;

	host_fill(NULL, io->host, size, it);
	return io->ops->copy(io->ctx, dbuf, io->host, size, IBC_COPY_H2D);
}

static int dev_verify(void *arg, const void *dbuf, size_t size, int it)
{
	struct dev_io *io = arg;

	if (io->ops->copy(io->ctx, io->host, dbuf, size, IBC_COPY_D2H))
		return 0;
	return host_verify(NULL, io->host, size, it);
}

static void gpu(const char *peer_root)
{
	size_t size = (4 << 20) + 12345;
	void *rbuf = NULL, *sbuf = NULL;
	struct dev_io io;
	struct pair p;
	int rc;

	if (ibc_mem_lookup("cuda", &io.ops) || ibc_mem_open(io.ops, 0, -1, &io.ctx)) {
		char why[600];

		snprintf(why, sizeof(why), "no GPU: %.560s", ibc_err_get());
		for (char *c = why; *c; c++)
			if (*c == '\n' || *c == '#')
				*c = ' ';
		tap_skip(2, why);
		return;
	}
	io.host = malloc(size);
	rc = io.ops->alloc(io.ctx, size, &rbuf);
	rc = rc ? rc : io.ops->alloc(io.ctx, size, &sbuf);
	is_int(rc, 0, "GPU buffers allocated");
	for (int pass = 0; pass < 2 && !rc; pass++) {
		/* pass 0: automatic (dma-buf where the driver exports it); 1: peermem */
		setenv("IBCOLL_SYSFS_ROOT", peer_root, 1);
		setenv("IBCOLL_GDR_REG", pass ? "peermem" : "auto", 1);
		rc = pair_open(&p);
		is_int(rc, 0, "GPU, IBCOLL_GDR_REG=%s: transport up: %s", pass ? "peermem" : "auto",
		       rc ? ibc_err_get() : "ok");
		if (!rc)
			transfer(&p, rbuf, sbuf, IBC_MEM_CUDA, size, 1,
				 pass ? "GPU memory, peermem path" : "GPU memory, automatic path",
				 dev_fill, dev_verify, &io);
		is_int(pair_close(&p), 0, "GPU teardown");
		rc = 0;
	}
	unsetenv("IBCOLL_GDR_REG");
	io.ops->free(io.ctx, rbuf);
	io.ops->free(io.ctx, sbuf);
	io.ops->fini(io.ctx);
	free(io.host);
}

int main(void)
{
	const char *lib = getenv("IBCOLL_IBVERBS_LIB");
	char empty[256], peer[256], cmd[600];

	signal(SIGPIPE, SIG_IGN);
	if (!lib || !*lib)
		return tap_skip_all(
		    "IBCOLL_IBVERBS_LIB is not set (point it at libibcoll-softhca.so)");
	if (!lib_loads(lib))
		return tap_skip_all(
		    "cannot load IBCOLL_IBVERBS_LIB (the software HCA is not built)");
	snprintf(empty, sizeof(empty), "/tmp/ibc-gdr-test-%d-empty", (int)getpid());
	snprintf(peer, sizeof(peer), "/tmp/ibc-gdr-test-%d-peer", (int)getpid());
	make_sysfs(empty, 0);
	make_sysfs(peer, 1);

	if (!lib_loads("libcuda.so.1")) {
		no_path(empty);
		cfg_root(empty, peer);
	} else {
		tap_skip(5, "a CUDA driver is present: dma-buf may exist, no-path case not forced");
	}
	bad_env(peer);
	peermem_host(peer, 1);
	peermem_host(peer, 0);
	gpu(peer);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", empty, peer);
	if (system(cmd))
		diag("could not remove %s, %s", empty, peer);
	return tap_done();
}
