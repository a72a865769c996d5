/* SPDX-License-Identifier: MIT */
/*
 * cu_vdata.cuh - dtype.c's verifiable data, ported to code that runs on the GPU and on the
 * host (__host__ __device__). The fill and check kernels use it on the device; the check's
 * report (expected value of the first wrong element) uses it on the host. Every function
 * is a line-for-line port of its namesake in coll/dtype.c (without the vd_ prefix): change
 * both together. tests/gpu/gpu_check and test_gpu_mem compare the two bit for bit.
 *
 * The conversions are dtype.c's bit-level ones, not the CUDA intrinsics, so that fill and
 * check produce the CPU's bits by construction (the reduction kernels, where speed matters,
 * use the intrinsics; they agree on every non-NaN value, see cu_reduce.cu).
 */
#ifndef IBC_CU_VDATA_CUH
#define IBC_CU_VDATA_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "dtype.h"
}

#define VD_HD static __host__ __device__ __forceinline__

enum vd_kind { VD_SIGNED, VD_UNSIGNED, VD_FLOAT };

/* dtype.c's dtype_desc, the parts the data needs */
VD_HD size_t vd_size(int dt)
{
	switch (dt) {
	case IBC_INT8:
	case IBC_UINT8:
		return 1;
	case IBC_HALF:
	case IBC_BF16:
		return 2;
	case IBC_INT32:
	case IBC_UINT32:
	case IBC_FLOAT:
		return 4;
	default:
		return 8;
	}
}

VD_HD enum vd_kind vd_kind_of(int dt)
{
	switch (dt) {
	case IBC_INT8:
	case IBC_INT32:
	case IBC_INT64:
		return VD_SIGNED;
	case IBC_UINT8:
	case IBC_UINT32:
	case IBC_UINT64:
		return VD_UNSIGNED;
	default:
		return VD_FLOAT;
	}
}

VD_HD int vd_sum_ranks(int dt)
{
	switch (dt) {
	case IBC_HALF:
		return 2048;
	case IBC_BF16:
		return 256;
	case IBC_FLOAT:
		return 1 << 24;
	default:
		return 0x7fffffff;
	}
}

/* ---- bits and conversions ---- */

VD_HD uint32_t vd_f32_bits(float f)
{
#ifdef __CUDA_ARCH__
	return __float_as_uint(f);
#else
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
#endif
}

VD_HD float vd_f32_from_bits(uint32_t u)
{
#ifdef __CUDA_ARCH__
	return __uint_as_float(u);
#else
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
#endif
}

VD_HD uint64_t vd_f64_bits(double d)
{
#ifdef __CUDA_ARCH__
	return (uint64_t)__double_as_longlong(d);
#else
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
#endif
}

VD_HD double vd_f64_from_bits(uint64_t u)
{
#ifdef __CUDA_ARCH__
	return __longlong_as_double((long long)u);
#else
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
#endif
}

VD_HD float vd_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t em = (uint32_t)(h & 0x7fff) << 13;
	uint32_t exp = em & 0x0f800000;

	if (exp == 0x0f800000)
		return vd_f32_from_bits(sign | 0x7f800000 | em | (em & 0x7fffff ? 0x400000 : 0));
	if (exp == 0)
		return vd_f32_from_bits(sign | vd_f32_bits((float)(h & 0x3ff) * 0x1p-24f));
	return vd_f32_from_bits(sign | (em + ((127 - 15) << 23)));
}

VD_HD uint16_t vd_float_to_half(float f)
{
	uint32_t u = vd_f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t a = u & 0x7fffffff;

	if (a > 0x7f800000)
		return sign | 0x7e00 | ((a >> 13) & 0x3ff);
	if (a >= 0x477ff000)
		return sign | 0x7c00;
	if (a < 0x38800000)
		return sign | (uint16_t)(vd_f32_bits(vd_f32_from_bits(a) + 0.5f) - 0x3f000000);
	return sign | (uint16_t)((a - ((127u - 15) << 23) + 0xfff + ((a >> 13) & 1)) >> 13);
}

VD_HD float vd_bf16_to_float(uint16_t h)
{
	return vd_f32_from_bits((uint32_t)h << 16);
}

VD_HD uint16_t vd_float_to_bf16(float f)
{
	uint32_t u = vd_f32_bits(f);
	uint32_t rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
	uint32_t nan = (u >> 16) | 0x40;

	return (uint16_t)((u & 0x7fffffff) > 0x7f800000 ? nan : rounded);
}

/* double -> float rounded to odd: truncate, set the last bit if anything was cut off */
VD_HD float vd_double_to_float_odd(double d)
{
	float f = (float)d;

	if ((double)f == d || isnan(d))
		return f;
	if (fabs((double)f) > fabs(d))
		f = nextafterf(f, 0.0f);
	return vd_f32_from_bits(vd_f32_bits(f) | 1);
}

/* ---- avg: the final division, correctly rounded ---- */

VD_HD uint16_t vd_avg_half(uint16_t x, int n)
{
	return vd_float_to_half(vd_double_to_float_odd((double)vd_half_to_float(x) / n));
}

VD_HD uint16_t vd_avg_bf16(uint16_t x, int n)
{
	return vd_float_to_bf16(vd_double_to_float_odd((double)vd_bf16_to_float(x) / n));
}

VD_HD float vd_avg_float(float x, int n)
{
#ifdef __CUDA_ARCH__
	if (n <= (1 << 24))
		return __fdiv_rn(x, (float)n); /* IEEE division even under -use_fast_math */
	/* dtype.c divides in long double (correctly rounded to float after the innocuous
	 * double rounding through 64 bits). Here: the quotient in double rounded to odd
	 * (toward zero, last bit set when inexact; the remainder is exact), then once to
	 * float: also the correctly rounded float quotient. */
	{
		double xd = (double)x, nd = (double)n;
		double q = __ddiv_rz(xd, nd);

		if (fma(-q, nd, xd) != 0.0)
			q = vd_f64_from_bits(vd_f64_bits(q) | 1);
		return (float)q;
	}
#else
	if (n <= (1 << 24))
		return x / (float)n;
	return (float)((long double)x / n);
#endif
}

VD_HD double vd_avg_double(double x, int n)
{
#ifdef __CUDA_ARCH__
	return __ddiv_rn(x, (double)n);
#else
	return x / (double)n;
#endif
}

/* ---- the value scheme ---- */

VD_HD uint64_t vd_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

VD_HD uint64_t vd_hash_at(uint64_t key, size_t i)
{
	return vd_mix64(key + ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ull);
}

VD_HD uint64_t vd_rank_key(uint64_t seed, int64_t rank)
{
	return vd_mix64(seed ^ vd_mix64(0x72616e6b00000000ull + (uint64_t)rank));
}

VD_HD uint64_t vd_elem_key(uint64_t seed)
{
	return vd_mix64(seed ^ 0x656c656d656e7473ull);
}

VD_HD uint64_t vd_inv64(uint64_t u)
{
	uint64_t x = (3 * u) ^ 2;

	for (int k = 0; k < 4; k++)
		x *= 2 - u * x;
	return x;
}

/* dtype.c's struct vdata; passed to kernels by value */
struct vd {
	int dt; /* enum ibc_dtype */
	int op; /* enum ibc_op */
	enum vd_kind kind;
	int nranks;
	int sum_ranks;
	uint64_t seed;
	uint64_t kelem;
};

VD_HD void vd_init(struct vd *v, int dt, int op, int nranks, uint64_t seed)
{
	int limit = vd_sum_ranks(dt);

	v->dt = dt;
	v->op = op;
	v->kind = vd_kind_of(dt);
	v->nranks = nranks < 1 ? 1 : nranks;
	v->sum_ranks = v->nranks < limit ? v->nranks : limit;
	v->seed = seed;
	v->kelem = vd_elem_key(seed);
}

VD_HD int64_t vd_top_bit(uint64_t h)
{
	return (int64_t)(h >> 63);
}

VD_HD int64_t vd_designated(const struct vd *v, uint64_t he)
{
	return (int64_t)((he >> 32) % (uint64_t)v->nranks);
}

VD_HD int64_t vd_min_base(const struct vd *v, uint64_t he)
{
	return (v->kind == VD_UNSIGNED ? 0 : -64) + (int64_t)(he & 63);
}

VD_HD int64_t vd_max_top(const struct vd *v, uint64_t he)
{
	return (v->kind == VD_UNSIGNED ? 127 : 63) - (int64_t)(he & 63);
}

VD_HD int64_t vd_avg_base(const struct vd *v, uint64_t he)
{
	return (v->kind == VD_UNSIGNED ? 0 : -32) + (int64_t)(he & 63);
}

VD_HD int64_t vd_value_at(const struct vd *v, uint64_t kr, uint64_t kr1, int64_t r, size_t i)
{
	uint64_t h0, he;
	int des;

	switch (v->op) {
	case IBC_OP_AVG:
		if (v->kind != VD_FLOAT)
			return vd_avg_base(v, vd_hash_at(v->kelem, i)) +
			       vd_top_bit(vd_hash_at(kr, i)) - vd_top_bit(vd_hash_at(kr1, i));
		[[fallthrough]];
	case IBC_OP_SUM:
		if (r >= v->sum_ranks)
			return 0;
		return vd_top_bit(vd_hash_at(kr, i)) - vd_top_bit(vd_hash_at(kr1, i));
	case IBC_OP_PROD:
		h0 = vd_hash_at(kr, i);
		if (v->kind != VD_FLOAT)
			return (int64_t)((h0 | 1) * vd_inv64(vd_hash_at(kr1, i) | 1));
		des = vd_designated(v, vd_hash_at(v->kelem, i)) == r;
		return ((h0 ^ vd_hash_at(kr1, i)) >> 63 ? -1 : 1) * (des ? 2 : 1);
	case IBC_OP_MIN:
		he = vd_hash_at(v->kelem, i);
		if (vd_designated(v, he) == r)
			return vd_min_base(v, he);
		return vd_min_base(v, he) + (int64_t)((vd_hash_at(kr, i) >> 8) & 63);
	case IBC_OP_MAX:
		he = vd_hash_at(v->kelem, i);
		if (vd_designated(v, he) == r)
			return vd_max_top(v, he);
		return vd_max_top(v, he) - (int64_t)((vd_hash_at(kr, i) >> 8) & 63);
	default:
		return 0;
	}
}

VD_HD uint64_t vd_int_to_bits(int dt, int64_t x)
{
	switch (dt) {
	case IBC_INT8:
	case IBC_UINT8:
		return (uint8_t)x;
	case IBC_INT32:
	case IBC_UINT32:
		return (uint32_t)x;
	case IBC_HALF:
		return vd_float_to_half((float)x);
	case IBC_BF16:
		return vd_float_to_bf16((float)x);
	case IBC_FLOAT:
		return vd_f32_bits((float)x);
	case IBC_DOUBLE:
		return vd_f64_bits((double)x);
	default:
		return (uint64_t)x;
	}
}

VD_HD void vd_store_bits(void *buf, size_t k, size_t size, uint64_t bits)
{
	switch (size) {
	case 1:
		((uint8_t *)buf)[k] = (uint8_t)bits;
		break;
	case 2:
		((uint16_t *)buf)[k] = (uint16_t)bits;
		break;
	case 4:
		((uint32_t *)buf)[k] = (uint32_t)bits;
		break;
	default:
		((uint64_t *)buf)[k] = bits;
		break;
	}
}

VD_HD uint64_t vd_load_bits(const void *buf, size_t k, size_t size)
{
	switch (size) {
	case 1:
		return ((const uint8_t *)buf)[k];
	case 2:
		return ((const uint16_t *)buf)[k];
	case 4:
		return ((const uint32_t *)buf)[k];
	default:
		return ((const uint64_t *)buf)[k];
	}
}

/* ibc_poison's patterns */
VD_HD uint64_t vd_poison_bits(int dt)
{
	switch (dt) {
	case IBC_INT8:
	case IBC_UINT8:
		return 0xaa;
	case IBC_INT32:
	case IBC_UINT32:
		return 0xaaaaaaaa;
	case IBC_HALF:
		return 0x7eaa;
	case IBC_BF16:
		return 0x7fea;
	case IBC_FLOAT:
		return 0x7feaaaaa;
	case IBC_DOUBLE:
		return 0x7ffaaaaaaaaaaaaaull;
	default:
		return 0xaaaaaaaaaaaaaaaaull;
	}
}

VD_HD int64_t vd_reduced_at(const struct vd *v, uint64_t k0, uint64_t kn, size_t i)
{
	uint64_t he;

	switch (v->op) {
	case IBC_OP_AVG:
		if (v->kind != VD_FLOAT)
			return (int64_t)((uint64_t)v->nranks *
					     (uint64_t)vd_avg_base(v, vd_hash_at(v->kelem, i)) +
					 (uint64_t)(vd_top_bit(vd_hash_at(k0, i)) -
						    vd_top_bit(vd_hash_at(kn, i))));
		[[fallthrough]];
	case IBC_OP_SUM:
		return vd_top_bit(vd_hash_at(k0, i)) - vd_top_bit(vd_hash_at(kn, i));
	case IBC_OP_PROD:
		if (v->kind != VD_FLOAT)
			return (int64_t)((vd_hash_at(k0, i) | 1) * vd_inv64(vd_hash_at(kn, i) | 1));
		return (vd_hash_at(k0, i) ^ vd_hash_at(kn, i)) >> 63 ? -2 : 2;
	case IBC_OP_MIN:
		he = vd_hash_at(v->kelem, i);
		return vd_min_base(v, he);
	case IBC_OP_MAX:
		he = vd_hash_at(v->kelem, i);
		return vd_max_top(v, he);
	default:
		return 0;
	}
}

VD_HD uint64_t vd_avg_bits(int dt, int64_t s, int n)
{
	switch (dt) {
	case IBC_INT8:
		return (uint8_t)((int8_t)s / n);
	case IBC_UINT8:
		return (uint8_t)((uint8_t)s / n);
	case IBC_INT32:
		return (uint32_t)((int32_t)s / n);
	case IBC_UINT32:
		return (uint32_t)s / (uint32_t)n;
	case IBC_INT64:
		return (uint64_t)(s / n);
	case IBC_UINT64:
		return (uint64_t)s / (uint64_t)n;
	case IBC_HALF:
		return vd_avg_half(vd_float_to_half((float)s), n);
	case IBC_BF16:
		return vd_avg_bf16(vd_float_to_bf16((float)s), n);
	case IBC_FLOAT:
		return vd_f32_bits(vd_avg_float((float)s, n));
	case IBC_DOUBLE:
		return vd_f64_bits(vd_avg_double((double)s, n));
	default:
		return 0;
	}
}

VD_HD int vd_is_nan_bits(int dt, uint64_t b)
{
	switch (dt) {
	case IBC_HALF:
		return (b & 0x7fff) > 0x7c00;
	case IBC_BF16:
		return (b & 0x7fff) > 0x7f80;
	case IBC_FLOAT:
		return (b & 0x7fffffff) > 0x7f800000;
	case IBC_DOUBLE:
		return (b & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
	default:
		return 0;
	}
}

VD_HD uint64_t vd_ulp_distance(uint64_t a, uint64_t b, size_t bytes)
{
	unsigned bits = (unsigned)bytes * 8;
	uint64_t mag_mask = (1ull << (bits - 1)) - 1;
	int64_t oa = (int64_t)(a & mag_mask), ob = (int64_t)(b & mag_mask);

	if ((a >> (bits - 1)) & 1)
		oa = -oa;
	if ((b >> (bits - 1)) & 1)
		ob = -ob;
	return oa > ob ? (uint64_t)(oa - ob) : (uint64_t)(ob - oa);
}

/* The bits ibc_check expects at element i; *tolerant: compare within 2 ulp (float avg). */
VD_HD uint64_t vd_want(const struct vd *v, uint64_t k0, uint64_t kn, size_t i)
{
	int64_t x = vd_reduced_at(v, k0, kn, i);

	return v->op == IBC_OP_AVG ? vd_avg_bits(v->dt, x, v->nranks) : vd_int_to_bits(v->dt, x);
}

VD_HD int vd_bad(const struct vd *v, uint64_t want, uint64_t got)
{
	size_t size = vd_size(v->dt);

	if (!(v->op == IBC_OP_AVG && v->kind == VD_FLOAT))
		return got != want;
	return vd_is_nan_bits(v->dt, got) || vd_ulp_distance(got, want, size) > 2;
}

/* ibc_check's keys: sum/avg telescope over the ranks that hold data, prod over all */
VD_HD uint64_t vd_check_kn(const struct vd *v)
{
	return vd_rank_key(v->seed,
			   v->op == IBC_OP_SUM || v->op == IBC_OP_AVG ? v->sum_ranks : v->nranks);
}

#endif
