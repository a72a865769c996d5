/* SPDX-License-Identifier: MIT */
/*
 * test_gpu_mem.c - the CUDA memory backend (libibcoll-cuda.so), loaded the way ibcoll loads
 * it: ibc_mem_lookup("cuda"). Without a GPU or driver (or in a build without CUDA) it prints
 * "1..0 # SKIP <why>" with the lookup's message; it never passes silently.
 *
 * With a GPU: every dtype x op kernel against dtype.c (tests/gpu/kcheck.h: fill, reduce
 * chains, avg, check, poison, random operands with aligned/misaligned/pinned pointers,
 * copy tickets), plus what only the CUDA backend does: info (ordinal, bus id), device choice
 * by local rank, pageable sources staged and pageable destinations refused, errors naming the
 * GPU and the call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ibc_common.h"
#include "mem.h"
#include "tap.h"

#include "gpu/kcheck.h"

static void report(void *arg, int okv, const char *text)
{
	ok(okv, "%s", text);
}

static void cuda_specific(const struct ibc_mem_ops *ops, struct ibc_mem_ctx *ctx)
{
	enum { N = 4099 };
	struct ibc_mem_info info;
	uint32_t *pa = malloc(N * 4), *pb = malloc(N * 4), *out = malloc(N * 4);
	uint32_t *d = NULL;
	int rc, okv = 1;

	is_int(ops->info(ctx, &info), 0, "info");
	ok(info.is_device == 1 && info.device >= 0, "info: device %d is_device %d", info.device,
	   info.is_device);
	ok(strlen(info.busid) == 12 && info.busid[4] == ':', "info: bus id %s", info.busid);
	diag("GPU %d: %s at %s", info.device, info.name, info.busid);
	is_int(ops->alloc(ctx, N * 4, (void **)&d), 0, "alloc");
	for (int i = 0; i < N; i++) {
		pa[i] = (uint32_t)i * 7;
		pb[i] = (uint32_t)i * 3;
	}
	is_int(ops->copy(ctx, d, pa, N * 4, IBC_COPY_H2D), 0, "copy H2D");
	is_int(ops->reduce(ctx, d, d, pb, N, IBC_UINT32, IBC_OP_SUM), 0,
	       "reduce with a pageable host source (staged)");
	is_int(ops->copy(ctx, out, d, N * 4, IBC_COPY_D2H), 0, "copy D2H");
	for (int i = 0; i < N; i++)
		okv &= out[i] == (uint32_t)i * 10;
	ok(okv, "staged pageable source reduced correctly");
	rc = ops->reduce(ctx, out, d, d, N, IBC_UINT32, IBC_OP_SUM);
	is_int(rc, -EFAULT, "pageable destination refused");
	ok(strstr(ops->last_error(ctx), "pageable") && strstr(ops->last_error(ctx), "GPU "),
	   "the error names the GPU and says why: %s", ops->last_error(ctx));
	rc = ops->free(ctx, pa);
	is_int(rc, -EINVAL, "free of a pointer not allocated here");
	is_int(ops->reduce(ctx, d, d, d, N, (enum ibc_dtype)99, IBC_OP_SUM), -EINVAL, "bad dtype");
	is_int(ops->sync(ctx), 0, "sync");
	is_int(ops->free(ctx, d), 0, "free");
	free(pa);
	free(pb);
	free(out);
}

int main(void)
{
	const struct ibc_mem_ops *ops;
	struct ibc_mem_ctx *ctx, *ctx2;
	char why[1200];
	struct kc k;
	int rc;

	rc = ibc_mem_lookup("cuda", &ops);
	if (rc) {
		snprintf(why, sizeof(why), "%s (%s)",
			 rc == -ENODEV ? "no CUDA device" : "no CUDA backend", ibc_err_get());
		for (char *p = why; *p; p++)
			if (*p == '\n')
				*p = ' ';
		return tap_skip_all(why);
	}
	rc = ibc_mem_open(ops, 0, -1, &ctx);
	is_int(rc, 0, "open the cuda backend (local rank 0): %s", rc ? ibc_err_get() : "ok");
	if (rc)
		return tap_done();
	rc = ibc_mem_open(ops, 0, 4096, &ctx2);
	is_int(rc, -ENODEV, "asking for GPU 4096 fails");
	ok(strstr(ibc_err_get(), "4096") != NULL, "and says so: %s", ibc_err_get());

	cuda_specific(ops, ctx);
	memset(&k, 0, sizeof(k));
	k.ops = ops;
	k.ctx = ctx;
	k.count = (1u << 20) + 7;
	k.nranks = 7;
	k.rng = 2024;
	k.report = report;
	kc_run(&k);
	is_int(ops->fini(ctx), 0, "fini");
	return tap_done();
}
