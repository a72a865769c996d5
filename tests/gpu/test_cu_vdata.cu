/* SPDX-License-Identifier: MIT */
/*
 * test_cu_vdata.cu - coll/vdata.h compiled by nvcc (as the CUDA kernels and the check's
 * report include it) against the same header compiled by gcc into dtype.c (ibc_dtype), run on
 * the host: no GPU needed. The two builds must give the same bits for
 *   - the conversions: float -> half/bfloat16 on random and boundary floats, half/bfloat16 ->
 *     float on all 65536 inputs; NaN tests on random bits;
 *   - fill (vd_value_at + vd_int_to_bits, as cu_fill_kernel) == ibc_fill, for every dtype and
 *     op, rank counts from 1 to beyond the half/bfloat16/float sum limits, first, middle and
 *     last ranks, and index windows at 0, near 2^32 and near 2^40;
 *   - the expected values (vd_want, as cu_check_kernel and cu_check_report): equal bit for
 *     bit to a CPU all-reduce of ibc_fill's data (ibc_reduce, ibc_reduce_finish) for small
 *     rank counts; accepted by ibc_check for all; an element off by one bit (3 ulp for
 *     floating avg) rejected by vd_bad and ibc_check alike, 1 ulp accepted by both;
 *   - poison (vd_poison_bits, as cu_poison_kernel) == ibc_poison, wrong for both checks;
 *   - avg's division (vd_div_bits, as cu_finish_kernel) == ibc_reduce_finish for every dtype
 *     on random values and rank counts up to beyond 2^24.
 * The kernels' device-only code (vd_avg_float/vd_avg_double under __CUDA_ARCH__) runs only
 * on a GPU: tests/gpu/check.sh (gpu_check, test_gpu_mem) compares it with the CPU there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "vdata.h"

enum { N = 3000 }; /* elements per window */

static uint64_t rng_state = 12345;

static uint64_t rnd(void)
{
	return vd_mix64(rng_state += 0x9e3779b97f4a7c15ull);
}

static const char *dt_name(int dt)
{
	return ibc_dtype_name((enum ibc_dtype)dt);
}

static const char *op_name(int op)
{
	return ibc_op_name((enum ibc_op)op);
}

/* ---- conversions ---- */

static float float_of(uint32_t u)
{
	return vd_f32_from_bits(u);
}

static int conv_one(uint32_t u)
{
	float f = float_of(u);

	return (vd_float_to_half(f) != ibc_float_to_half(f)) +
	       (vd_float_to_bf16(f) != ibc_float_to_bf16(f));
}

static void conversions(void)
{
	/* boundaries: zero, half subnormal/normal edges, 65504/65520, inf, NaN, bf16 ties */
	static const uint32_t edge[] = {0x00000000, 0x80000000, 0x33000000, 0x33000001, 0x387fe000,
					0x387ff000, 0x38800000, 0x477fe000, 0x477ff000, 0x477fefff,
					0x7f7fffff, 0x7f800000, 0x7f800001, 0x7fc00000, 0xffc00001,
					0x3f808000, 0x3f818000, 0x3f807fff, 0x00400000, 0x807fffff};
	int bad = 0, bad_hf = 0, bad_nan = 0;

	for (size_t k = 0; k < sizeof(edge) / sizeof(edge[0]); k++)
		bad += conv_one(edge[k]);
	for (int k = 0; k < 2000000; k++)
		bad += conv_one((uint32_t)rnd());
	for (uint32_t h = 0; h < 65536; h++) {
		bad_hf += vd_f32_bits(vd_half_to_float((uint16_t)h)) !=
			  vd_f32_bits(ibc_half_to_float((uint16_t)h));
		bad_hf += vd_f32_bits(vd_bf16_to_float((uint16_t)h)) !=
			  vd_f32_bits(ibc_bf16_to_float((uint16_t)h));
	}
	for (int k = 0; k < 200000; k++) {
		uint64_t b = rnd() | (k & 1 ? 0x7ff0000000000000ull | 0x7f800000 | 0x7f80 : 0);

		for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++)
			bad_nan += vd_is_nan_bits(dt, b) != ibc_dtype_is_nan((enum ibc_dtype)dt, b);
	}
	is_int(bad, 0, "float -> half/bfloat16: nvcc == gcc on 2M random and 20 boundary floats");
	is_int(bad_hf, 0, "half/bfloat16 -> float: nvcc == gcc on all 65536 inputs");
	is_int(bad_nan, 0, "is_nan: nvcc == gcc on random bits, every dtype");
}

/* ---- fill ---- */

/* Elements [first, first + N) of rank r: 0 when the nvcc build equals ibc_fill. */
static int fill_window(const struct vd *v, int r, size_t first)
{
	static unsigned char mine[N * 8], ref[N * 8];
	size_t size = vd_size(v->dt);
	uint64_t kr = vd_rank_key(v->seed, r), kr1 = vd_rank_key(v->seed, (int64_t)r + 1);

	for (size_t k = 0; k < N; k++)
		vd_store_bits(mine, k, size,
			      vd_int_to_bits(v->dt, vd_value_at(v, kr, kr1, r, first + k)));
	ibc_fill(ref, first, N, (enum ibc_dtype)v->dt, (enum ibc_op)v->op, r, v->nranks, v->seed);
	return memcmp(mine, ref, N * size) != 0;
}

static int fill_all(const struct vd *v)
{
	static const size_t firsts[] = {0, (1ull << 32) - 1000, (1ull << 40) + 12345};
	int n = v->nranks, ranks[] = {0, 1, n / 2, n - 2, n - 1}, bad = 0;

	for (size_t j = 0; j < sizeof(ranks) / sizeof(ranks[0]); j++)
		for (size_t w = 0; w < sizeof(firsts) / sizeof(firsts[0]); w++)
			if (ranks[j] >= 0 && ranks[j] < n)
				bad += fill_window(v, ranks[j], firsts[w]);
	return bad;
}

/* ---- expected values ---- */

/* The all-reduce on the CPU (gcc): ibc_fill per rank, ibc_reduce, ibc_reduce_finish. */
static void cpu_allreduce(const struct vd *v, void *acc)
{
	static unsigned char in[N * 8];
	enum ibc_dtype dt = (enum ibc_dtype)v->dt;
	enum ibc_op op = (enum ibc_op)v->op;

	ibc_fill(acc, 0, N, dt, op, 0, v->nranks, v->seed);
	for (int r = 1; r < v->nranks; r++) {
		ibc_fill(in, 0, N, dt, op, r, v->nranks, v->seed);
		ibc_reduce(acc, acc, in, N, dt, op);
	}
	ibc_reduce_finish(acc, N, dt, op, v->nranks);
}

static int check_count(const struct vd *v, const void *buf)
{
	struct ibc_check_result res;

	ibc_check(buf, N, (enum ibc_dtype)v->dt, (enum ibc_op)v->op, v->nranks, v->seed, &res);
	return (int)res.wrong;
}

/* Element 17 changed by delta (ulps for floating avg, else the low bit flipped): 1 when the
 * nvcc vd_bad and gcc ibc_check agree that it is wrong (want_bad) or right. */
static int perturbed_agrees(const struct vd *v, void *buf, int64_t delta, int want_bad)
{
	size_t size = vd_size(v->dt);
	uint64_t want = vd_load_bits(buf, 17, size), got;
	int wrong, bad;

	got = v->kind == VD_FLOAT && v->op == IBC_OP_AVG ? want + (uint64_t)delta : want ^ 1;
	vd_store_bits(buf, 17, size, got);
	wrong = check_count(v, buf);
	bad = vd_bad(v, want, vd_load_bits(buf, 17, size));
	vd_store_bits(buf, 17, size, want);
	return bad == want_bad && wrong == want_bad;
}

/* 0 when vd_want (nvcc) is the CPU's result (small nranks) and both checks judge alike. */
static int want_all(const struct vd *v)
{
	static unsigned char want[N * 8], ref[N * 8];
	size_t size = vd_size(v->dt);
	uint64_t k0 = vd_rank_key(v->seed, 0), kn = vd_check_kn(v);
	int tolerant = v->kind == VD_FLOAT && v->op == IBC_OP_AVG, bad = 0;

	for (size_t i = 0; i < N; i++)
		vd_store_bits(want, i, size, vd_want(v, k0, kn, i));
	if (v->nranks <= 8) {
		cpu_allreduce(v, ref);
		bad += memcmp(want, ref, N * size) != 0;
	}
	bad += check_count(v, want) != 0;
	bad += !perturbed_agrees(v, want, 3, 1);
	if (tolerant)
		bad += !perturbed_agrees(v, want, 1, 0);
	return bad;
}

/* ---- poison ---- */

static int poison_all(const struct vd *v)
{
	static unsigned char mine[N * 8], ref[N * 8];
	size_t size = vd_size(v->dt);
	uint64_t k0 = vd_rank_key(v->seed, 0), kn = vd_check_kn(v);
	int bad = 0;

	for (size_t i = 0; i < N; i++) {
		vd_store_bits(mine, i, size, vd_poison_bits(v->dt));
		bad += !vd_bad(v, vd_want(v, k0, kn, i), vd_poison_bits(v->dt));
	}
	ibc_poison(ref, N, (enum ibc_dtype)v->dt);
	bad += memcmp(mine, ref, N * size) != 0;
	bad += check_count(v, ref) != N;
	return bad;
}

static void scheme(int dt, int op, int nranks, uint64_t seed)
{
	struct vd v;
	int fill, want, poison;

	vd_init(&v, dt, op, nranks, seed);
	fill = fill_all(&v);
	want = want_all(&v);
	poison = poison_all(&v);
	ok(!fill && !want && !poison,
	   "%s %s %d ranks: fill, expected values, checks and poison: nvcc == gcc", dt_name(dt),
	   op_name(op), nranks);
	if (fill || want || poison)
		diag("mismatches: fill %d, expected/check %d, poison %d", fill, want, poison);
}

/* ---- avg's division ---- */

/* Random bits of dt; floating values finite (the reductions never divide a NaN here). */
static uint64_t random_elem(int dt)
{
	for (;;) {
		uint64_t b = rnd();

		if (vd_kind_of(dt) != VD_FLOAT)
			return b;
		if (dt == IBC_HALF && (b & 0x7c00) != 0x7c00)
			return b & 0xffff;
		if (dt == IBC_BF16 && (b & 0x7f80) != 0x7f80)
			return b & 0xffff;
		if (dt == IBC_FLOAT && (b & 0x7f800000) != 0x7f800000)
			return b & 0xffffffff;
		if (dt == IBC_DOUBLE && (b & 0x7ff0000000000000ull) != 0x7ff0000000000000ull)
			return b;
	}
}

static void division(void)
{
	static const int ns[] = {2, 3, 7, 10, 1000, 1 << 20, 1 << 24, (1 << 24) + 1, 1000000007};
	static unsigned char buf[N * 8];

	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		size_t size = vd_size(dt);
		int bad = 0;

		for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++) {
			uint64_t in[N];

			for (size_t i = 0; i < N; i++) {
				in[i] = random_elem(dt);
				vd_store_bits(buf, i, size, in[i]);
			}
			ibc_reduce_finish(buf, N, (enum ibc_dtype)dt, IBC_OP_AVG, ns[j]);
			for (size_t i = 0; i < N; i++)
				bad += vd_load_bits(buf, i, size) !=
				       (vd_div_bits(dt, in[i], ns[j]) & (~0ull >> (64 - 8 * size)));
		}
		is_int(bad, 0,
		       "%s avg division by 2 .. 1000000007: nvcc == gcc (ibc_reduce_finish)",
		       dt_name(dt));
	}
}

int main(void)
{
	static const int nranks[] = {1, 2, 3, 8, 257, 300, 2049, 3000, (1 << 24) + 3};

	conversions();
	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++)
		for (int op = 0; op < IBC_OP_COUNT; op++)
			for (size_t j = 0; j < sizeof(nranks) / sizeof(nranks[0]); j++)
				scheme(dt, op, nranks[j], 99 + j);
	division();
	return tap_done();
}
