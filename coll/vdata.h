/* SPDX-License-Identifier: MIT */
/*
 * vdata.h - the verifiable-data scheme, one implementation for the CPU and the GPU (docs/design.md#timing-and-checks): how rank r's input element i is built per (dtype, op), the exact reduced
 * value and its bits, avg's final division, the half/bfloat16 conversions, the poison
 * patterns and the comparison. coll/dtype.c (gcc, C11) builds ibc_fill/ibc_check/
 * ibc_reduce_finish and its half/bfloat16 reductions on it; coll/cuda/ (nvcc, C++17) builds
 * the fill, poison, check and avg kernels and the check's host-side report on it.
 * tests/gpu/test_cu_vdata.cu compiles it with nvcc and compares it with dtype.c's build.
 *
 * Every function is `static inline IBC_HD`: IBC_HD is __host__ __device__ under nvcc
 * (__CUDACC__) and nothing in C. The file is written in the common subset of C11 and C++17:
 * no compound literals, designated initializers, VLAs, implicit conversions from void * or
 * to enums, bool or [[attributes]]; switch cases never fall through. Dtypes and ops are ints
 * holding enum ibc_dtype / enum ibc_op values. `#ifdef __CUDA_ARCH__` (device code) appears
 * only in avg's float/double division, where the device needs other instructions for the
 * same correctly rounded quotient.
 *
 * The scheme (see ibc_fill/ibc_check)
 *   h(r, i) is a splitmix64 hash of (seed, rank r, index i); bit(r, i) is its top bit;
 *   e(i) is a hash of (seed, i) shared by all ranks; des(i) = e(i) % nranks is a designated
 *   rank. rank r's element i is:
 *   - sum:       bit(r, i) - bit(r + 1, i), i.e. -1, 0 or 1. The sum over ranks telescopes to
 *                bit(0, i) - bit(nranks, i), so the check is O(1) per element whatever nranks.
 *                Integer types wrap (unsigned types hold -1 as 2^bits - 1: the values are
 *                0, 1, 2^bits-1 and every sum wraps); any nranks is exact. Floating types must
 *                keep every partial sum (in any order) an exactly representable integer: only
 *                the first L ranks contribute (the sum is bit(0, i) - bit(L, i)), the others
 *                hold 0, with L = 2048 (half), 256 (bfloat16), 2^24 (float), INT_MAX (double).
 *                A lost contribution from a rank >= L goes unnoticed.
 *   - prod:      integers: u(r, i) * u(r + 1, i)^-1 mod 2^64 (u odd, from h), truncated: the
 *                product telescopes to u(0, i) * u(nranks, i)^-1, exact modulo 2^bits. The
 *                values are odd and look random (they are not small).
 *                floating: +-1 with sign bit(r, i) ^ bit(r + 1, i), times 2 on rank des(i):
 *                every partial product is +-1 or +-2; the result is +-2.
 *   - min:       b(i) + d(r, i) with b(i) in [-64, -1] (unsigned: [0, 63]) and d in [0, 63],
 *                d = 0 on rank des(i): the minimum is b(i). Values lie in [-64, 62] ([0, 126]).
 *   - max:       t(i) - d(r, i) with t(i) in [0, 63] (unsigned: [64, 127]): values in
 *                [-63, 63] ([1, 127]), the maximum is t(i).
 *   - avg:       floating: as sum (the result is -1/n, 0 or 1/n). integers: as sum plus
 *                base(i) on every rank, base(i) in [-32, 31] (unsigned: [0, 63]), so that the
 *                average (n * base(i) + bit(0, i) - bit(n, i), wrapped, / n) is not always 0.
 *   No value is ever NaN or -0.0, and no exact sum or product of them is -0.0 (x + -x is +0.0
 *   in round to nearest), so results are compared bit for bit; zeros need no special case.
 *   avg: the exact sum divided by nranks and rounded once; integer types truncate the wrapped
 *   sum toward zero (C division); floating types are compared within 2 ulp (a GPU or other
 *   implementation may multiply by 1/nranks).
 *   Costs: fill O(1) per element (2-3 hashes), check O(1) per element whatever nranks.
 *   nranks < 1 is taken as 1.
 */
#ifndef IBC_VDATA_H
#define IBC_VDATA_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dtype.h"

#ifdef __CUDACC__
#define IBC_HD __host__ __device__
#else
#define IBC_HD
#endif

/* ---- dtype properties ---------------------------------------------------------------- */

enum vd_kind { VD_SIGNED, VD_UNSIGNED, VD_FLOAT };

/* 1 when dt and op name a dtype and an op. The functions below assume valid ones. */
static inline IBC_HD int vd_valid(int dt, int op)
{
	return (unsigned)dt < IBC_DTYPE_COUNT && (unsigned)op < IBC_OP_COUNT;
}

static inline IBC_HD size_t vd_size(int dt)
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

static inline IBC_HD enum vd_kind vd_kind_of(int dt)
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

/* Floating types: ranks whose sum/avg values may be non-zero (every partial sum exact). */
static inline IBC_HD int vd_sum_ranks(int dt)
{
	switch (dt) {
	case IBC_HALF:
		return 2048;
	case IBC_BF16:
		return 256;
	case IBC_FLOAT:
		return 1 << 24;
	default:
		return 0x7fffffff; /* INT_MAX */
	}
}

/* ---- bits and conversions ------------------------------------------------------------ */

/* memcpy of a scalar: a register move on the CPU and on the GPU alike. */
static inline IBC_HD uint32_t vd_f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline IBC_HD float vd_f32_from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline IBC_HD uint64_t vd_f64_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static inline IBC_HD double vd_f64_from_bits(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

/* half / bfloat16 <-> float, round to nearest even; NaN stays NaN (made quiet). */
static inline IBC_HD float vd_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t em = (uint32_t)(h & 0x7fff) << 13; /* exponent and mantissa, float position */
	uint32_t exp = em & 0x0f800000;

	if (exp == 0x0f800000) /* inf or NaN: exponent 255; a NaN is made quiet */
		return vd_f32_from_bits(sign | 0x7f800000 | em | (em & 0x7fffff ? 0x400000 : 0));
	if (exp == 0) /* zero or subnormal: mantissa * 2^-24, exact in float */
		return vd_f32_from_bits(sign | vd_f32_bits((float)(h & 0x3ff) * 0x1p-24f));
	return vd_f32_from_bits(sign | (em + ((127 - 15) << 23)));
}

static inline IBC_HD uint16_t vd_float_to_half(float f)
{
	uint32_t u = vd_f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t a = u & 0x7fffffff;

	if (a > 0x7f800000) /* NaN: quiet, keep the top payload bits */
		return sign | 0x7e00 | ((a >> 13) & 0x3ff);
	if (a >= 0x477ff000) /* >= 65520 (the tie above 65504, which rounds up): inf */
		return sign | 0x7c00;
	if (a < 0x38800000) {
		/* Below 2^-14: subnormal half or zero. In [0.5, 1) a float's last bit is 2^-24,
		 * a half subnormal's unit: adding 0.5 lets the FPU round (to nearest even) and
		 * leaves the half's bits in the low mantissa (0x400 if it rounds up to 2^-14). */
		return sign | (uint16_t)(vd_f32_bits(vd_f32_from_bits(a) + 0.5f) - 0x3f000000);
	}
	/* Normal: rebias the exponent, round the mantissa from 23 to 10 bits, ties to even;
	 * a carry into the exponent is correct (up to inf at the top). */
	return sign | (uint16_t)((a - ((127u - 15) << 23) + 0xfff + ((a >> 13) & 1)) >> 13);
}

static inline IBC_HD float vd_bf16_to_float(uint16_t h)
{
	return vd_f32_from_bits((uint32_t)h << 16);
}

/* Branch free so that loops using it vectorise. */
static inline IBC_HD uint16_t vd_float_to_bf16(float f)
{
	uint32_t u = vd_f32_bits(f);
	uint32_t rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
	uint32_t nan = (u >> 16) | 0x40;

	return (uint16_t)((u & 0x7fffffff) > 0x7f800000 ? nan : rounded);
}

/*
 * double -> float rounded to odd (truncate; set the last bit if anything was cut off). A
 * second rounding of that float to half or bfloat16 (>= 2 bits narrower) is then the correctly
 * rounded result of the double: no double rounding error in avg.
 */
static inline IBC_HD float vd_double_to_float_odd(double d)
{
	float f = (float)d;

	if ((double)f == d || isnan(d))
		return f;
	if (fabs((double)f) > fabs(d))
		f = nextafterf(f, 0.0f);
	return vd_f32_from_bits(vd_f32_bits(f) | 1);
}

/* ---- avg: the final division, correctly rounded (n >= 1) ----------------------------- */

static inline IBC_HD uint16_t vd_avg_half(uint16_t x, int n)
{
	return vd_float_to_half(vd_double_to_float_odd((double)vd_half_to_float(x) / n));
}

static inline IBC_HD uint16_t vd_avg_bf16(uint16_t x, int n)
{
	return vd_float_to_bf16(vd_double_to_float_odd((double)vd_bf16_to_float(x) / n));
}

static inline IBC_HD float vd_avg_float(float x, int n)
{
#ifdef __CUDA_ARCH__
	double xd = (double)x, nd = (double)n, q;

	if (n <= (1 << 24))
		return __fdiv_rn(x, (float)n); /* IEEE division even under -use_fast_math */
	/* The host divides in long double. Here: the quotient in double rounded to odd (toward
	 * zero, last bit set when inexact; the remainder is exact), then once to float: also the
	 * correctly rounded float quotient. */
	q = __ddiv_rz(xd, nd);
	if (fma(-q, nd, xd) != 0.0)
		q = vd_f64_from_bits(vd_f64_bits(q) | 1);
	return (float)q;
#else
	/* n <= 2^24 is exact in float: one correctly rounded division. Beyond, long double
	 * (64-bit mantissa on x86) keeps the quotient clear of float midpoints. */
	if (n <= (1 << 24))
		return x / (float)n;
	return (float)((long double)x / n);
#endif
}

static inline IBC_HD double vd_avg_double(double x, int n)
{
#ifdef __CUDA_ARCH__
	return __ddiv_rn(x, (double)n); /* IEEE division even under -use_fast_math */
#else
	return x / (double)n;
#endif
}

/*
 * avg's final step on one element of dt given by its bits (the low vd_size(dt) bytes): the
 * wrapped sum divided by n, integers truncated toward zero (C division, as NCCL), floating
 * types correctly rounded.
 */
static inline IBC_HD uint64_t vd_div_bits(int dt, uint64_t b, int n)
{
	switch (dt) {
	case IBC_INT8:
		return (uint8_t)((int8_t)b / n);
	case IBC_UINT8:
		return (uint8_t)((uint8_t)b / n);
	case IBC_INT32:
		return (uint32_t)((int32_t)b / n);
	case IBC_UINT32:
		return (uint32_t)b / (uint32_t)n;
	case IBC_INT64:
		return (uint64_t)((int64_t)b / n);
	case IBC_UINT64:
		return b / (uint64_t)n;
	case IBC_HALF:
		return vd_avg_half((uint16_t)b, n);
	case IBC_BF16:
		return vd_avg_bf16((uint16_t)b, n);
	case IBC_FLOAT:
		return vd_f32_bits(vd_avg_float(vd_f32_from_bits((uint32_t)b), n));
	case IBC_DOUBLE:
		return vd_f64_bits(vd_avg_double(vd_f64_from_bits(b), n));
	default:
		return 0;
	}
}

/* ---- element access ------------------------------------------------------------------ */

static inline IBC_HD void vd_store_bits(void *buf, size_t k, size_t size, uint64_t bits)
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

static inline IBC_HD uint64_t vd_load_bits(const void *buf, size_t k, size_t size)
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

/* buf[i] = avg's final division of buf[i] by n (ibc_reduce_finish, one element). */
static inline IBC_HD void vd_div_at(void *buf, size_t i, int dt, int n)
{
	size_t size = vd_size(dt);

	vd_store_bits(buf, i, size, vd_div_bits(dt, vd_load_bits(buf, i, size), n));
}

/*
 * ibc_poison's pattern, never a valid result. Integers 0xaa..: even (every integer product is
 * odd); as a signed value below every valid result (sum, min, max in [-64, 63],
 * |avg| <= max(64, 2^(bits-2))); as an unsigned value above 127 and not 2^bits-1 (sum, min,
 * max; avg is at most 64 or 2^bits-1 for one rank, at most (2^bits-1)/2 for more). Floating
 * types: a quiet NaN.
 */
static inline IBC_HD uint64_t vd_poison_bits(int dt)
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

/* ---- the value scheme ---------------------------------------------------------------- */

static inline IBC_HD uint64_t vd_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64 stream keyed by key, position i */
static inline IBC_HD uint64_t vd_hash_at(uint64_t key, size_t i)
{
	return vd_mix64(key + ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ull);
}

static inline IBC_HD uint64_t vd_rank_key(uint64_t seed, int64_t rank)
{
	return vd_mix64(seed ^ vd_mix64(0x72616e6b00000000ull + (uint64_t)rank));
}

static inline IBC_HD uint64_t vd_elem_key(uint64_t seed)
{
	return vd_mix64(seed ^ 0x656c656d656e7473ull);
}

/* Inverse of an odd number modulo 2^64 (Newton: each step doubles the correct bits). */
static inline IBC_HD uint64_t vd_inv64(uint64_t u)
{
	uint64_t x = (3 * u) ^ 2; /* correct to 5 bits */

	for (int k = 0; k < 4; k++)
		x *= 2 - u * x;
	return x;
}

/* The scheme's parameters for one (dtype, op, nranks, seed); small: kernels take it by value. */
struct vd {
	int dt; /* enum ibc_dtype */
	int op; /* enum ibc_op */
	enum vd_kind kind;
	int nranks;    /* >= 1 */
	int sum_ranks; /* ranks with non-zero sum/avg data: min(nranks, vd_sum_ranks(dt)) */
	uint64_t seed;
	uint64_t kelem; /* key of e(i) */
};

static inline IBC_HD void vd_init(struct vd *v, int dt, int op, int nranks, uint64_t seed)
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

static inline IBC_HD int64_t vd_top_bit(uint64_t h)
{
	return (int64_t)(h >> 63);
}

static inline IBC_HD int64_t vd_designated(const struct vd *v, uint64_t he)
{
	return (int64_t)((he >> 32) % (uint64_t)v->nranks);
}

static inline IBC_HD int64_t vd_min_base(const struct vd *v, uint64_t he)
{
	return (v->kind == VD_UNSIGNED ? 0 : -64) + (int64_t)(he & 63);
}

static inline IBC_HD int64_t vd_max_top(const struct vd *v, uint64_t he)
{
	return (v->kind == VD_UNSIGNED ? 127 : 63) - (int64_t)(he & 63);
}

/* integer avg: every rank adds base(i), so that the average is not always 0 */
static inline IBC_HD int64_t vd_avg_base(const struct vd *v, uint64_t he)
{
	return (v->kind == VD_UNSIGNED ? 0 : -32) + (int64_t)(he & 63);
}

/* bit(a, i) - bit(b, i) for the rank keys ka, kb: the telescoping term of sum and avg */
static inline IBC_HD int64_t vd_bit_diff(uint64_t ka, uint64_t kb, size_t i)
{
	return vd_top_bit(vd_hash_at(ka, i)) - vd_top_bit(vd_hash_at(kb, i));
}

/* The op whose data v uses: floating avg data is sum data (avg divides the sum at the end). */
static inline IBC_HD int vd_data_op(const struct vd *v)
{
	return v->op == IBC_OP_AVG && v->kind == VD_FLOAT ? IBC_OP_SUM : v->op;
}

/*
 * Rank r's value of element i as an integer (two's complement bits for integer prod); kr and
 * kr1 are the rank keys of r and r + 1.
 */
static inline IBC_HD int64_t vd_value_at(const struct vd *v, uint64_t kr, uint64_t kr1, int64_t r,
					 size_t i)
{
	uint64_t h0, he;
	int des;

	switch (vd_data_op(v)) {
	case IBC_OP_AVG: /* integers */
		return vd_avg_base(v, vd_hash_at(v->kelem, i)) + vd_bit_diff(kr, kr1, i);
	case IBC_OP_SUM:
		return r >= v->sum_ranks ? 0 : vd_bit_diff(kr, kr1, i);
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

/*
 * The exact reduced value of element i over all ranks, as an integer (see vd_value_at). k0 is
 * rank 0's key, kn the key of the rank the data telescopes to (vd_check_kn).
 */
static inline IBC_HD int64_t vd_reduced_at(const struct vd *v, uint64_t k0, uint64_t kn, size_t i)
{
	uint64_t base;

	switch (vd_data_op(v)) {
	case IBC_OP_AVG: /* integers: the wrapped sum */
		base = (uint64_t)vd_avg_base(v, vd_hash_at(v->kelem, i));
		return (int64_t)((uint64_t)v->nranks * base + (uint64_t)vd_bit_diff(k0, kn, i));
	case IBC_OP_SUM:
		return vd_bit_diff(k0, kn, i);
	case IBC_OP_PROD:
		if (v->kind != VD_FLOAT)
			return (int64_t)((vd_hash_at(k0, i) | 1) * vd_inv64(vd_hash_at(kn, i) | 1));
		return (vd_hash_at(k0, i) ^ vd_hash_at(kn, i)) >> 63 ? -2 : 2;
	case IBC_OP_MIN:
		return vd_min_base(v, vd_hash_at(v->kelem, i));
	case IBC_OP_MAX:
		return vd_max_top(v, vd_hash_at(v->kelem, i));
	default:
		return 0;
	}
}

/* ibc_check's kn: sum/avg telescope over the ranks that hold data, prod over all ranks */
static inline IBC_HD uint64_t vd_check_kn(const struct vd *v)
{
	return vd_rank_key(v->seed,
			   v->op == IBC_OP_SUM || v->op == IBC_OP_AVG ? v->sum_ranks : v->nranks);
}

/* The bits of an integer value (exact: floating values are small integers) in dtype dt. */
static inline IBC_HD uint64_t vd_int_to_bits(int dt, int64_t x)
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

/* The expected bits of a reduced value x (vd_reduced_at): avg divides the wrapped (integers)
 * or exact sum by nranks. */
static inline IBC_HD uint64_t vd_result_bits(const struct vd *v, int64_t x)
{
	uint64_t b = vd_int_to_bits(v->dt, x);

	return v->op == IBC_OP_AVG ? vd_div_bits(v->dt, b, v->nranks) : b;
}

/* The bits ibc_check expects at element i. */
static inline IBC_HD uint64_t vd_want(const struct vd *v, uint64_t k0, uint64_t kn, size_t i)
{
	return vd_result_bits(v, vd_reduced_at(v, k0, kn, i));
}

/* ---- the comparison ------------------------------------------------------------------ */

/* 1 when bits (an element of dt, in the low bytes) is a NaN; 0 for integer types */
static inline IBC_HD int vd_is_nan_bits(int dt, uint64_t b)
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

/* Distance in ulps of two non-NaN floating values of width bits: sign-magnitude mapped to a
 * monotonic integer line (+0 and -0 both map to 0). */
static inline IBC_HD uint64_t vd_ulp_distance(uint64_t a, uint64_t b, size_t bytes)
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

/* 1 when got is not an acceptable result for want: bit for bit, floating avg within 2 ulp. */
static inline IBC_HD int vd_bad(const struct vd *v, uint64_t want, uint64_t got)
{
	if (!(v->op == IBC_OP_AVG && v->kind == VD_FLOAT))
		return got != want;
	return vd_is_nan_bits(v->dt, got) || vd_ulp_distance(got, want, vd_size(v->dt)) > 2;
}

#endif
