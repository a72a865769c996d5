/* SPDX-License-Identifier: MIT */
/*
 * gpu_check.c - the CUDA memory backend on a real GPU, for tests/gpu/check.sh:
 *
 *   1. correctness: every dtype x op kernel against the CPU reference (tests/gpu/kcheck.h);
 *   2. reduction bandwidth: float sum, dst = a + b over large buffers, GB/s counting
 *      3 x bytes (two reads, one write), against a device-to-device copy in the same run
 *      (GB/s counting 2 x bytes: one read, one write); target >= 90 %;
 *   3. staging bandwidth: pinned host <-> device with copy_async in chunks, several in
 *      flight (as the engine stages), against one plain copy of the whole pinned buffer;
 *      target >= 90 %.
 *
 * Usage: gpu_check [--bytes N] [--chunk N] [--iters N] [--quick]
 * Output: a human report, then lines "RESULT key value..." that check.sh parses.
 * Exit: 0 all checks passed, 1 a kernel differs from the CPU, 3 no GPU / CUDA failure.
 * Bandwidth below target is reported (RESULT ... below) but does not fail the run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc_common.h"
#include "mem.h"

#include "gpu/kcheck.h"

#define TARGET 0.90

struct opts {
	size_t bytes; /* per buffer for the bandwidth runs */
	size_t chunk; /* staging chunk */
	int inflight; /* staging chunks in flight */
	int iters;
	int quick;
};

struct sink {
	int failed, passed;
	int verbose;
};

static void report(void *arg, int okv, const char *text)
{
	struct sink *s = arg;

	if (okv)
		s->passed++;
	else
		s->failed++;
	if (!okv || s->verbose)
		printf("  %s %s\n", okv ? "ok  " : "FAIL", text);
}

static int fail(const struct ibc_mem_ops *ops, struct ibc_mem_ctx *ctx, const char *what, int rc)
{
	fprintf(stderr, "gpu_check: %s failed (%d): %s\n", what, rc, ops->last_error(ctx));
	return rc;
}

/* seconds per call of the reduction / the copy, best of iters after a warmup */
static int time_kernel(const struct ibc_mem_ops *ops, struct ibc_mem_ctx *ctx, void *dst, void *a,
		       void *b, size_t bytes, int iters, double *t_reduce, double *t_copy)
{
	size_t n = bytes / 4;
	int rc;

	*t_reduce = *t_copy = 1e30;
	for (int i = -2; i < iters; i++) {
		uint64_t t0 = ibc_now_ns();

		rc = ops->reduce(ctx, dst, a, b, n, IBC_FLOAT, IBC_OP_SUM);
		if (rc)
			return fail(ops, ctx, "reduce float sum", rc);
		if (i >= 0)
			*t_reduce = IBC_MIN(*t_reduce, (ibc_now_ns() - t0) * 1e-9);
		t0 = ibc_now_ns();
		rc = ops->copy(ctx, dst, a, bytes, IBC_COPY_D2D);
		if (rc)
			return fail(ops, ctx, "copy D2D", rc);
		if (i >= 0)
			*t_copy = IBC_MIN(*t_copy, (ibc_now_ns() - t0) * 1e-9);
	}
	return 0;
}

/* Chunked copy_async with up to inflight tickets outstanding: seconds for the whole buffer. */
static int staged(const struct ibc_mem_ops *ops, struct ibc_mem_ctx *ctx, void *dst,
		  const void *src, size_t bytes, size_t chunk, int inflight,
		  enum ibc_copy_kind kind, double *secs)
{
	uint64_t tickets[64], t0 = ibc_now_ns();
	size_t off = 0;
	int head = 0, tail = 0, rc;

	if (inflight > 64)
		inflight = 64;
	while (off < bytes || head != tail) {
		if (off < bytes && head - tail < inflight) {
			size_t len = IBC_MIN(chunk, bytes - off);

			rc = ops->copy_async(ctx, (char *)dst + off, (const char *)src + off, len,
					     kind, &tickets[head % 64]);
			if (rc)
				return fail(ops, ctx, "copy_async", rc);
			head++;
			off += len;
			continue;
		}
		rc = ops->done(ctx, tickets[tail % 64]);
		if (rc < 0)
			return fail(ops, ctx, "done", rc);
		if (rc == 1)
			tail++;
	}
	*secs = (ibc_now_ns() - t0) * 1e-9;
	return 0;
}

static int time_staging(const struct ibc_mem_ops *ops, struct ibc_mem_ctx *ctx, void *dev,
			void *pinned, const struct opts *o, double t[4])
{
	double s;
	int rc;

	/* t[0] staged H2D, t[1] plain H2D, t[2] staged D2H, t[3] plain D2H: best of iters */
	for (int k = 0; k < 4; k++)
		t[k] = 1e30;
	for (int i = -1; i < o->iters; i++) {
		uint64_t t0;

		rc = staged(ops, ctx, dev, pinned, o->bytes, o->chunk, o->inflight, IBC_COPY_H2D,
			    &s);
		if (rc)
			return rc;
		if (i >= 0)
			t[0] = IBC_MIN(t[0], s);
		t0 = ibc_now_ns();
		rc = ops->copy(ctx, dev, pinned, o->bytes, IBC_COPY_H2D);
		if (rc)
			return fail(ops, ctx, "copy H2D", rc);
		if (i >= 0)
			t[1] = IBC_MIN(t[1], (ibc_now_ns() - t0) * 1e-9);
		rc = staged(ops, ctx, pinned, dev, o->bytes, o->chunk, o->inflight, IBC_COPY_D2H,
			    &s);
		if (rc)
			return rc;
		if (i >= 0)
			t[2] = IBC_MIN(t[2], s);
		t0 = ibc_now_ns();
		rc = ops->copy(ctx, pinned, dev, o->bytes, IBC_COPY_D2H);
		if (rc)
			return fail(ops, ctx, "copy D2H", rc);
		if (i >= 0)
			t[3] = IBC_MIN(t[3], (ibc_now_ns() - t0) * 1e-9);
	}
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	o->bytes = 1ull << 30;
	o->chunk = 4ull << 20;
	o->inflight = 8;
	o->iters = 10;
	for (int i = 1; i < argc; i++) {
		uint64_t v;

		if (!strcmp(argv[i], "--quick")) {
			o->quick = 1;
			o->bytes = 256ull << 20;
			o->iters = 5;
		} else if (i + 1 < argc && !strcmp(argv[i], "--bytes") &&
			   !ibc_parse_size(argv[i + 1], &v) && v >= (1 << 20)) {
			o->bytes = v;
			i++;
		} else if (i + 1 < argc && !strcmp(argv[i], "--chunk") &&
			   !ibc_parse_size(argv[i + 1], &v) && v >= 4096) {
			o->chunk = v;
			i++;
		} else if (i + 1 < argc && !strcmp(argv[i], "--iters") &&
			   !ibc_parse_size(argv[i + 1], &v) && v >= 1 && v <= 1000) {
			o->iters = (int)v;
			i++;
		} else {
			fprintf(stderr, "usage: gpu_check [--bytes N (>= 1M)] [--chunk N (>= 4K)] "
					"[--iters 1..1000] [--quick]\n");
			return -EINVAL;
		}
	}
	o->bytes &= ~(size_t)15;
	return 0;
}

int main(int argc, char **argv)
{
	const struct ibc_mem_ops *ops;
	struct ibc_mem_ctx *ctx;
	struct ibc_mem_info info;
	struct sink sink = {0};
	void *a = NULL, *b = NULL, *dst = NULL, *pinned = NULL;
	double tr, tc, ts[4], kbw, cbw;
	struct opts o = {0};
	struct kc k;
	int rc;

	if (parse(argc, argv, &o))
		return IBC_EXIT_USAGE;
	sink.verbose = getenv("GPU_CHECK_VERBOSE") != NULL;
	rc = ibc_mem_lookup("cuda", &ops);
	if (!rc)
		rc = ibc_mem_open(ops, 0, -1, &ctx);
	if (rc) {
		printf("SKIP %s\nRESULT skip\n", ibc_err_get());
		return IBC_EXIT_ENV;
	}
	ops->info(ctx, &info);
	printf("gpu_check: GPU %d %s (%s)\n", info.device, info.name, info.busid);

	/* 1. correctness */
	memset(&k, 0, sizeof(k));
	k.ops = ops;
	k.ctx = ctx;
	k.count = o.quick ? (256u << 10) + 5 : (4u << 20) + 5;
	k.nranks = 5;
	k.rng = (uint64_t)ibc_now_ns();
	k.report = report;
	k.arg = &sink;
	kc_run(&k);
	printf("kernels vs CPU: %d checks passed, %d failed (%zu elements, seed %" PRIu64 ")\n",
	       sink.passed, sink.failed, k.count, k.rng);
	printf("RESULT kernels %d %d\n", sink.passed, sink.failed);

	/* 2. reduction vs D2D copy bandwidth */
	rc = ops->alloc(ctx, o.bytes, &a);
	if (!rc)
		rc = ops->alloc(ctx, o.bytes, &b);
	if (!rc)
		rc = ops->alloc(ctx, o.bytes, &dst);
	if (!rc)
		rc = ops->host_alloc(ctx, o.bytes, &pinned);
	if (rc) {
		fail(ops, ctx, "allocating the bandwidth buffers", rc);
		goto out;
	}
	if (ops->fill(ctx, a, o.bytes / 4, IBC_FLOAT, IBC_OP_SUM, 0, 2, 1) ||
	    ops->fill(ctx, b, o.bytes / 4, IBC_FLOAT, IBC_OP_SUM, 1, 2, 1)) {
		rc = fail(ops, ctx, "fill", -EIO);
		goto out;
	}
	rc = time_kernel(ops, ctx, dst, a, b, o.bytes, o.iters, &tr, &tc);
	if (rc)
		goto out;
	kbw = 3.0 * o.bytes / tr * 1e-9;
	cbw = 2.0 * o.bytes / tc * 1e-9;
	printf("reduce float sum: %.1f GB/s (3 x %zu bytes in %.3f ms); D2D copy %.1f GB/s "
	       "(2 x bytes in %.3f ms): %.1f%% of copy (target %.0f%%)\n",
	       kbw, o.bytes, tr * 1e3, cbw, tc * 1e3, 100 * kbw / cbw, 100 * TARGET);
	printf("RESULT kernel_bw %.1f %.1f %.3f %s\n", kbw, cbw, kbw / cbw,
	       kbw / cbw >= TARGET ? "met" : "below");

	/* 3. staging vs plain pinned copies */
	rc = time_staging(ops, ctx, dst, pinned, &o, ts);
	if (rc)
		goto out;
	for (int d = 0; d < 2; d++) {
		double sbw = o.bytes / ts[2 * d] * 1e-9, pbw = o.bytes / ts[2 * d + 1] * 1e-9;

		printf("staging %s: copy_async in %zu-byte chunks, %d in flight: %.1f GB/s; one "
		       "pinned copy %.1f GB/s: %.1f%% (target %.0f%%)\n",
		       d ? "D2H" : "H2D", o.chunk, o.inflight, sbw, pbw, 100 * sbw / pbw,
		       100 * TARGET);
		printf("RESULT staging_%s %.1f %.1f %.3f %s\n", d ? "d2h" : "h2d", sbw, pbw,
		       sbw / pbw, sbw / pbw >= TARGET ? "met" : "below");
	}
out:
	if (a)
		ops->free(ctx, a);
	if (b)
		ops->free(ctx, b);
	if (dst)
		ops->free(ctx, dst);
	if (pinned)
		ops->host_free(ctx, pinned);
	if (ops->fini(ctx) && !rc)
		rc = -EIO;
	if (rc)
		return IBC_EXIT_ENV;
	return sink.failed ? IBC_EXIT_CHECK : IBC_EXIT_OK;
}
