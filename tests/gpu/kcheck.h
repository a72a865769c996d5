/* SPDX-License-Identifier: MIT */
/*
 * kcheck.h - a memory backend's data operations against the CPU reference (dtype.c), shared by
 * tests/test_gpu_mem.c (TAP), tests/test_mem_host.c and tests/gpu/gpu_check.c (the H100/H200
 * check). Header only: static functions.
 *
 * For every dtype x op, on device buffers of the backend (copied with its copy()):
 *   fill      == ibc_fill, bit for bit, for several ranks;
 *   reduce    a chain over the ranks (in place and out of place), then finish == the same on
 *             the CPU with ibc_reduce/ibc_reduce_finish, and the backend's check and ibc_check
 *             both find 0 wrong;
 *   random    fresh random operands (finite floats, so no NaN arises), poisoned output,
 *             aligned and misaligned pointers (head/tail and scalar paths), pinned host b:
 *             == ibc_reduce bit for bit;
 *   poison    == ibc_poison, and check on it reports what ibc_check reports (count, first
 *             index, expected and got text).
 */
#ifndef IBC_KCHECK_H
#define IBC_KCHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "mem.h"

/* result sink: ok is 1/0; the text names what was checked */
typedef void (*kc_report_fn)(void *arg, int ok, const char *text);

struct kc {
	const struct ibc_mem_ops *ops; /* borrowed */
	struct ibc_mem_ctx *ctx;       /* borrowed */
	size_t count;		       /* elements per buffer */
	int nranks;		       /* ranks simulated in the reduce chain */
	uint64_t rng;
	kc_report_fn report;
	void *arg;
	int failed;
	/* owned: device buffers (count + 8 elements of 8 bytes), host mirrors, pinned b */
	void *d_a, *d_b, *d_out, *h_a, *h_b, *h_out, *h_ref, *p_b;
};

static void kc_say(struct kc *k, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void kc_say(struct kc *k, int ok, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!ok)
		k->failed++;
	k->report(k->arg, ok, text);
}

static uint64_t kc_rand(struct kc *k)
{
	uint64_t z = (k->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random bits of dtype dt; floating values finite (no inf, no NaN). */
static void kc_random(struct kc *k, void *buf, size_t count, enum ibc_dtype dt)
{
	size_t size = ibc_dtype_size(dt);

	for (size_t i = 0; i < count; i++) {
		uint64_t r = kc_rand(k);

		switch (dt) {
		case IBC_HALF:
			while ((r & 0x7c00) == 0x7c00)
				r = kc_rand(k);
			break;
		case IBC_BF16:
			while ((r & 0x7f80) == 0x7f80)
				r = kc_rand(k);
			break;
		case IBC_FLOAT:
			while ((r & 0x7f800000) == 0x7f800000)
				r = kc_rand(k);
			break;
		case IBC_DOUBLE:
			while ((r & 0x7ff0000000000000ull) == 0x7ff0000000000000ull)
				r = kc_rand(k);
			break;
		default:
			break;
		}
		memcpy((char *)buf + i * size, &r, size); /* little endian: the low bytes */
	}
}

static uint64_t kc_bits(const void *buf, size_t i, size_t size)
{
	uint64_t b = 0;

	memcpy(&b, (const char *)buf + i * size, size);
	return b;
}

/* Number of elements that differ (NaN equals any NaN); *first = the first. */
static size_t kc_diff(const void *got, const void *want, size_t count, enum ibc_dtype dt,
		      size_t *first)
{
	size_t size = ibc_dtype_size(dt), n = 0;

	for (size_t i = 0; i < count; i++) {
		uint64_t g = kc_bits(got, i, size), w = kc_bits(want, i, size);

		if (g == w || (ibc_dtype_is_nan(dt, g) && ibc_dtype_is_nan(dt, w)))
			continue;
		if (!n++)
			*first = i;
	}
	return n;
}

static int kc_call(struct kc *k, int rc, const char *what)
{
	if (rc < 0)
		kc_say(k, 0, "%s failed: %d (%s)", what, rc, k->ops->last_error(k->ctx));
	return rc;
}

static int kc_put(struct kc *k, void *dev, const void *host, size_t bytes)
{
	return kc_call(k, k->ops->copy(k->ctx, dev, host, bytes, IBC_COPY_H2D), "copy H2D");
}

static int kc_get(struct kc *k, void *host, const void *dev, size_t bytes)
{
	return kc_call(k, k->ops->copy(k->ctx, host, dev, bytes, IBC_COPY_D2H), "copy D2H");
}

/* Compare the backend's result (h_out) with the CPU's (h_ref). */
static void kc_expect_same(struct kc *k, size_t count, enum ibc_dtype dt, const char *what,
			   enum ibc_op op)
{
	size_t first = 0, size = ibc_dtype_size(dt);
	size_t bad = kc_diff(k->h_out, k->h_ref, count, dt, &first);

	if (!bad) {
		kc_say(k, 1, "%s %s %s: %zu elements equal the CPU's", what, ibc_dtype_name(dt),
		       ibc_op_name(op), count);
		return;
	}
	kc_say(k, 0,
	       "%s %s %s: %zu of %zu elements differ from the CPU's; first %zu: got 0x%" PRIx64
	       " want 0x%" PRIx64,
	       what, ibc_dtype_name(dt), ibc_op_name(op), bad, count, first,
	       kc_bits(k->h_out, first, size), kc_bits(k->h_ref, first, size));
}

/* fill == ibc_fill for each rank; then the reduce chain, finish and both checks. */
static void kc_verifiable(struct kc *k, enum ibc_dtype dt, enum ibc_op op, uint64_t seed)
{
	size_t n = k->count, bytes = n * ibc_dtype_size(dt), first = 0;
	struct ibc_check_result res, cpu;
	int fill_ok = 1;

	for (int r = 0; r < k->nranks; r++) {
		void *dst = r == 0 ? k->d_out : k->d_b;

		if (kc_call(k, k->ops->fill(k->ctx, dst, n, dt, op, r, k->nranks, seed), "fill") ||
		    kc_get(k, k->h_out, dst, bytes))
			return;
		ibc_fill(k->h_ref, 0, n, dt, op, r, k->nranks, seed);
		if (kc_diff(k->h_out, k->h_ref, n, dt, &first)) {
			fill_ok = 0;
			kc_say(k, 0, "fill %s %s rank %d/%d differs from ibc_fill at %zu",
			       ibc_dtype_name(dt), ibc_op_name(op), r, k->nranks, first);
		}
		if (r == 0) {
			memcpy(k->h_a, k->h_ref, bytes); /* CPU accumulator */
			continue;
		}
		ibc_reduce(k->h_a, k->h_a, k->h_ref, n, dt, op);
		/* device: out = out OP b, in place */
		if (kc_call(k, k->ops->reduce(k->ctx, k->d_out, k->d_out, k->d_b, n, dt, op),
			    "reduce"))
			return;
	}
	if (fill_ok)
		kc_say(k, 1, "fill %s %s == ibc_fill for %d ranks", ibc_dtype_name(dt),
		       ibc_op_name(op), k->nranks);
	ibc_reduce_finish(k->h_a, n, dt, op, k->nranks);
	if (kc_call(k, k->ops->finish(k->ctx, k->d_out, n, dt, op, k->nranks), "finish") ||
	    kc_get(k, k->h_out, k->d_out, bytes))
		return;
	memcpy(k->h_ref, k->h_a, bytes);
	kc_expect_same(k, n, dt, "reduce chain + finish", op);
	if (kc_call(k, k->ops->check(k->ctx, k->d_out, n, dt, op, k->nranks, seed, &res), "check"))
		return;
	ibc_check(k->h_out, n, dt, op, k->nranks, seed, &cpu);
	kc_say(k, res.wrong == 0 && cpu.wrong == 0,
	       "check %s %s on the reduced data: backend %zu wrong, ibc_check %zu wrong%s%s%s%s",
	       ibc_dtype_name(dt), ibc_op_name(op), res.wrong, cpu.wrong,
	       cpu.wrong ? " (expected " : "", cpu.wrong ? cpu.expected : "",
	       cpu.wrong ? ", got " : "", cpu.wrong ? cpu.got : "");
}

/* Random operands, poisoned output, offsets (elements) off_d/off_a/off_b; b pinned or not. */
static void kc_random_case(struct kc *k, enum ibc_dtype dt, enum ibc_op op, size_t off_d,
			   size_t off_a, size_t off_b, int pinned_b, int in_place)
{
	size_t size = ibc_dtype_size(dt), n = k->count, bytes = n * size;
	char *da = (char *)k->d_a + off_a * size;
	char *db = pinned_b ? (char *)k->p_b + off_b * size : (char *)k->d_b + off_b * size;
	char *dd = in_place ? da : (char *)k->d_out + off_d * size;
	char what[96];

	kc_random(k, k->h_a, n, dt);
	kc_random(k, k->h_b, n, dt);
	if (kc_put(k, da, k->h_a, bytes))
		return;
	if (pinned_b)
		memcpy(db, k->h_b, bytes);
	else if (kc_put(k, db, k->h_b, bytes))
		return;
	if (!in_place && kc_call(k, k->ops->poison(k->ctx, dd, n, dt), "poison"))
		return;
	if (kc_call(k, k->ops->reduce(k->ctx, dd, da, db, n, dt, op), "reduce") ||
	    kc_get(k, k->h_out, dd, bytes))
		return;
	ibc_reduce(k->h_ref, k->h_a, k->h_b, n, dt, op);
	snprintf(what, sizeof(what), "random reduce (offsets %zu/%zu/%zu%s%s)", off_d, off_a, off_b,
		 pinned_b ? ", b pinned host" : "", in_place ? ", in place" : "");
	kc_expect_same(k, n, dt, what, op);
}

/* poison == ibc_poison; check of poison == ibc_check of it (count, index, texts). */
static void kc_poison_check(struct kc *k, enum ibc_dtype dt, enum ibc_op op)
{
	size_t n = k->count, bytes = n * ibc_dtype_size(dt), first = 0;
	struct ibc_check_result res, cpu;

	if (kc_call(k, k->ops->poison(k->ctx, k->d_out, n, dt), "poison") ||
	    kc_get(k, k->h_out, k->d_out, bytes))
		return;
	ibc_poison(k->h_ref, n, dt);
	kc_say(k, !kc_diff(k->h_out, k->h_ref, n, dt, &first), "poison %s == ibc_poison",
	       ibc_dtype_name(dt));
	if (kc_call(k, k->ops->check(k->ctx, k->d_out, n, dt, op, 3, 7, &res), "check"))
		return;
	ibc_check(k->h_out, n, dt, op, 3, 7, &cpu);
	kc_say(k,
	       res.wrong == cpu.wrong && res.wrong == n && res.first_index == cpu.first_index &&
		   !strcmp(res.expected, cpu.expected) && !strcmp(res.got, cpu.got),
	       "check %s %s of poison: %zu wrong, first %zu, expected %s got %s (CPU: %zu, %zu, "
	       "%s, %s)",
	       ibc_dtype_name(dt), ibc_op_name(op), res.wrong, res.first_index, res.expected,
	       res.got, cpu.wrong, cpu.first_index, cpu.expected, cpu.got);
}

/* Copy tickets: copy_async H2D then D2H; done() turns 1 (polling), data arrives. */
static void kc_tickets(struct kc *k)
{
	size_t bytes = k->count * 4, first = 0;
	uint64_t t1, t2;
	long polls = 0;
	int d = 0;

	kc_random(k, k->h_a, k->count, IBC_UINT32);
	memset(k->h_out, 0, bytes);
	if (kc_call(k, k->ops->copy_async(k->ctx, k->d_a, k->h_a, bytes, IBC_COPY_H2D, &t1),
		    "copy_async H2D"))
		return;
	while ((d = k->ops->done(k->ctx, t1)) == 0)
		polls++;
	if (kc_call(k, d, "done"))
		return;
	if (kc_call(k, k->ops->copy_async(k->ctx, k->h_out, k->d_a, bytes, IBC_COPY_D2H, &t2),
		    "copy_async D2H"))
		return;
	while ((d = k->ops->done(k->ctx, t2)) == 0)
		polls++;
	if (kc_call(k, d, "done"))
		return;
	kc_say(k,
	       t1 != t2 && k->ops->done(k->ctx, t1) == 1 &&
		   !kc_diff(k->h_out, k->h_a, k->count, IBC_UINT32, &first),
	       "copy_async H2D + D2H round trip through tickets %" PRIu64 ", %" PRIu64
	       " (%ld polls)",
	       t1, t2, polls);
	kc_say(k, k->ops->done(k->ctx, t2 + (1ull << 40)) < 0,
	       "done() of a ticket never issued fails");
}

static void kc_release(struct kc *k)
{
	if (k->d_a)
		k->ops->free(k->ctx, k->d_a);
	if (k->d_b)
		k->ops->free(k->ctx, k->d_b);
	if (k->d_out)
		k->ops->free(k->ctx, k->d_out);
	if (k->p_b)
		k->ops->host_free(k->ctx, k->p_b);
	free(k->h_a);
	free(k->h_b);
	free(k->h_out);
	free(k->h_ref);
}

/* Everything above for every dtype and op; returns the number of failures. */
static int kc_run(struct kc *k)
{
	size_t bytes = (k->count + 8) * 8;

	if (kc_call(k, k->ops->alloc(k->ctx, bytes, &k->d_a), "alloc") ||
	    kc_call(k, k->ops->alloc(k->ctx, bytes, &k->d_b), "alloc") ||
	    kc_call(k, k->ops->alloc(k->ctx, bytes, &k->d_out), "alloc") ||
	    kc_call(k, k->ops->host_alloc(k->ctx, bytes, &k->p_b), "host_alloc"))
		goto out;
	k->h_a = malloc(bytes);
	k->h_b = malloc(bytes);
	k->h_out = malloc(bytes);
	k->h_ref = malloc(bytes);
	if (!k->h_a || !k->h_b || !k->h_out || !k->h_ref) {
		kc_say(k, 0, "out of host memory");
		goto out;
	}
	kc_tickets(k);
	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		for (int op = 0; op < IBC_OP_COUNT; op++) {
			kc_verifiable(k, (enum ibc_dtype)dt, (enum ibc_op)op, 11 + dt * 5 + op);
			kc_random_case(k, (enum ibc_dtype)dt, (enum ibc_op)op, 0, 0, 0, 0, 0);
			kc_random_case(k, (enum ibc_dtype)dt, (enum ibc_op)op, 1, 1, 1, 0, 0);
			kc_random_case(k, (enum ibc_dtype)dt, (enum ibc_op)op, 0, 1, 3, 1, 0);
			kc_random_case(k, (enum ibc_dtype)dt, (enum ibc_op)op, 0, 3, 0, 0, 1);
		}
		kc_poison_check(k, (enum ibc_dtype)dt, IBC_OP_SUM);
	}
out:
	kc_release(k);
	return k->failed;
}

#endif
