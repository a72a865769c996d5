/* SPDX-License-Identifier: MIT */
/*
 * test_cu_vdata.cu - the CUDA backend's port of dtype.c's value scheme (coll/cuda/cu_vdata.cuh),
 * compiled by nvcc and run on the host (no GPU needed): the same source runs in the fill and
 * check kernels, so a difference from dtype.c shows here first.
 *   - vd_float_to_half / vd_float_to_bf16 / vd_half_to_float == dtype.c's, on random bits;
 *   - fill (vd_value_at + vd_int_to_bits) == ibc_fill for every dtype, op, several ranks and
 *     rank counts (including beyond the half/bfloat16 sum limits);
 *   - vd_want (the check's expected value) is what ibc_check accepts, and one changed element
 *     is what it rejects;
 *   - vd_avg_* == ibc_reduce_finish on random values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_vdata.cuh"

#include "tap.h"

static uint64_t rng_state = 12345;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void conversions(void)
{
	int bad_h = 0, bad_b = 0, bad_hf = 0;

	for (int k = 0; k < 2000000; k++) {
		uint32_t u = (uint32_t)rnd();
		float f;

		memcpy(&f, &u, 4);
		bad_h += vd_float_to_half(f) != ibc_float_to_half(f);
		bad_b += vd_float_to_bf16(f) != ibc_float_to_bf16(f);
	}
	for (uint32_t h = 0; h < 65536; h++) {
		float a = vd_half_to_float((uint16_t)h), b = ibc_half_to_float((uint16_t)h);

		bad_hf += memcmp(&a, &b, 4) != 0;
	}
	is_int(bad_h, 0, "vd_float_to_half == ibc_float_to_half on 2M random floats");
	is_int(bad_b, 0, "vd_float_to_bf16 == ibc_float_to_bf16 on 2M random floats");
	is_int(bad_hf, 0, "vd_half_to_float == ibc_half_to_float on all 65536 halves");
}

static void fill_and_check(int dt, int op, int nranks, uint64_t seed)
{
	enum { N = 3000 };
	static unsigned char vbuf[N * 8], cbuf[N * 8];
	size_t size = vd_size(dt);
	int ranks[3] = {0, nranks / 2, nranks - 1}, fill_bad = 0;
	struct ibc_check_result res;
	struct vd v;
	uint64_t k0, kn;

	vd_init(&v, dt, op, nranks, seed);
	for (int j = 0; j < 3; j++) {
		int r = ranks[j];
		uint64_t kr = vd_rank_key(seed, r), kr1 = vd_rank_key(seed, (int64_t)r + 1);

		for (size_t i = 0; i < N; i++)
			vd_store_bits(vbuf, i, size,
				      vd_int_to_bits(dt, vd_value_at(&v, kr, kr1, r, i)));
		ibc_fill(cbuf, 0, N, (enum ibc_dtype)dt, (enum ibc_op)op, r, nranks, seed);
		fill_bad += memcmp(vbuf, cbuf, N * size) != 0;
	}
	k0 = vd_rank_key(seed, 0);
	kn = vd_check_kn(&v);
	for (size_t i = 0; i < N; i++)
		vd_store_bits(vbuf, i, size, vd_want(&v, k0, kn, i));
	ibc_check(vbuf, N, (enum ibc_dtype)dt, (enum ibc_op)op, nranks, seed, &res);
	ok(!fill_bad && res.wrong == 0,
	   "%s %s %d ranks: fill == ibc_fill, want passes ibc_check (%zu wrong)",
	   ibc_dtype_name((enum ibc_dtype)dt), ibc_op_name((enum ibc_op)op), nranks, res.wrong);
	vd_store_bits(vbuf, 17, size, vd_poison_bits(dt));
	ibc_check(vbuf, N, (enum ibc_dtype)dt, (enum ibc_op)op, nranks, seed, &res);
	ok(res.wrong == 1 && res.first_index == 17 &&
	       !vd_bad(&v, vd_want(&v, k0, kn, 3), vd_want(&v, k0, kn, 3)) &&
	       vd_bad(&v, vd_want(&v, k0, kn, 17), vd_poison_bits(dt)),
	   "%s %s %d ranks: a poisoned element is wrong for both",
	   ibc_dtype_name((enum ibc_dtype)dt), ibc_op_name((enum ibc_op)op), nranks);
}

static void avg(void)
{
	int ns[] = {2, 3, 7, 10, 1000, 1 << 20, (1 << 24) + 1, 1000000007};

	for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++) {
		int n = ns[j], bad = 0;

		for (int k = 0; k < 20000; k++) {
			uint64_t r = rnd();
			uint16_t h = (uint16_t)r, hb = (uint16_t)(r >> 16), hc = h, hbc = hb;
			float f, fc;
			double d, dc;

			if ((h & 0x7c00) == 0x7c00 || (hb & 0x7f80) == 0x7f80)
				continue;
			memcpy(&f, &r, 4);
			if ((f != f) || (r & 0x7f800000) == 0x7f800000)
				continue;
			d = (double)(int64_t)r;
			fc = f;
			dc = d;
			ibc_reduce_finish(&hc, 1, IBC_HALF, IBC_OP_AVG, n);
			ibc_reduce_finish(&hbc, 1, IBC_BF16, IBC_OP_AVG, n);
			ibc_reduce_finish(&fc, 1, IBC_FLOAT, IBC_OP_AVG, n);
			ibc_reduce_finish(&dc, 1, IBC_DOUBLE, IBC_OP_AVG, n);
			bad += vd_avg_half(h, n) != hc;
			bad += vd_avg_bf16(hb, n) != hbc;
			bad += vd_f32_bits(vd_avg_float(f, n)) != vd_f32_bits(fc);
			bad += vd_f64_bits(vd_avg_double(d, n)) != vd_f64_bits(dc);
		}
		is_int(bad, 0, "avg divisions by %d == ibc_reduce_finish", n);
	}
}

int main(void)
{
	int nranks[] = {1, 2, 3, 8, 300, 3000};

	conversions();
	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++)
		for (int op = 0; op < IBC_OP_COUNT; op++)
			for (size_t j = 0; j < sizeof(nranks) / sizeof(nranks[0]); j++)
				fill_and_check(dt, op, nranks[j], 99 + j);
	avg();
	return tap_done();
}
