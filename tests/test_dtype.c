/* SPDX-License-Identifier: MIT */
/*
 * test_dtype.c - dtypes, host reductions, half/bfloat16 conversions and verifiable data.
 *
 * References here are written independently of coll/dtype.c: half/bfloat16 rounding through
 * frexp/ldexp/nearbyint on doubles, integer arithmetic in 64 bits, and all-reduce simulations
 * that fold the ranks' buffers in several orders.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "dtype.h"
#include "ibc_common.h"
#include "tap.h"

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static float ffrom(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static int is_float_type(enum ibc_dtype dt)
{
	return dt == IBC_HALF || dt == IBC_BF16 || dt == IBC_FLOAT || dt == IBC_DOUBLE;
}

static int is_signed_type(enum ibc_dtype dt)
{
	return dt == IBC_INT8 || dt == IBC_INT32 || dt == IBC_INT64;
}

static uint64_t load_bits(const void *buf, size_t i, size_t size)
{
	uint64_t v = 0;

	memcpy(&v, (const char *)buf + i * size, size); /* little endian */
	return v;
}

static void store_bits(void *buf, size_t i, size_t size, uint64_t v)
{
	memcpy((char *)buf + i * size, &v, size);
}

/* 16-bit floating formats: mantissa bits, minimum and maximum exponent */
struct fmt16 {
	int mbits, emin, emax;
};

static const struct fmt16 fmt_half = {10, -14, 15};
static const struct fmt16 fmt_bf16 = {7, -126, 127};

/* Exact value of a 16-bit pattern (NaN for NaNs). */
static double ref_decode(const struct fmt16 *f, uint16_t h)
{
	int ebits = 15 - f->mbits;
	int e = (h >> f->mbits) & ((1 << ebits) - 1);
	int m = h & ((1 << f->mbits) - 1);
	double v;

	if (e == (1 << ebits) - 1)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, f->emin - f->mbits);
	else
		v = ldexp(m + (1 << f->mbits), e - f->emax - f->mbits);
	return (h & 0x8000) ? -v : v;
}

/* Correctly rounded (nearest even) 16-bit pattern of x (not NaN). */
static uint16_t ref_round(const struct fmt16 *f, double x)
{
	uint16_t sign = signbit(x) ? 0x8000 : 0;
	uint16_t inf = (uint16_t)(((1 << (15 - f->mbits)) - 1) << f->mbits);
	double ax = fabs(x), q;
	int e;

	if (isinf(x))
		return sign | inf;
	if (ax == 0)
		return sign;
	frexp(ax, &e);
	e = e - 1 < f->emin ? f->emin : e - 1;	/* ax = 1.xxx * 2^e (or subnormal) */
	q = nearbyint(ldexp(ax, f->mbits - e)); /* significand in units of the last place */
	if (q >= ldexp(1, f->mbits + 1)) {
		q /= 2;
		e++;
	}
	if (e > f->emax)
		return sign | inf;
	if (q < ldexp(1, f->mbits)) /* subnormal (e == emin) */
		return sign | (uint16_t)q;
	return sign | (uint16_t)((e + f->emax) << f->mbits) |
	       (uint16_t)((uint32_t)q - (1u << f->mbits));
}

static int half_is_nan(uint16_t h)
{
	return (h & 0x7fff) > 0x7c00;
}

static int bf16_is_nan(uint16_t h)
{
	return (h & 0x7fff) > 0x7f80;
}

/* ---- names ------------------------------------------------------------------------- */

static void test_names(void)
{
	static const size_t sizes[IBC_DTYPE_COUNT] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
	static const struct {
		const char *s;
		enum ibc_dtype dt;
	} alias[] = {
	    {"char", IBC_INT8},	    {"int", IBC_INT32},	     {"float16", IBC_HALF},
	    {"fp16", IBC_HALF},	    {"bf16", IBC_BF16},	     {"float32", IBC_FLOAT},
	    {"fp32", IBC_FLOAT},    {"float64", IBC_DOUBLE}, {"fp64", IBC_DOUBLE},
	    {"uint64", IBC_UINT64}, {"FLOAT", IBC_FLOAT},
	};
	static const char *const bad[] = {"", "int16", "floatx", "float ", "sum", "bfloat"};
	char *store = NULL;
	const char *items[32];
	int n, good = 1;
	enum ibc_dtype dt;
	enum ibc_op op;

	for (int i = 0; i < IBC_DTYPE_COUNT; i++) {
		int rc = ibc_dtype_parse(ibc_dtype_name((enum ibc_dtype)i), &dt);

		good &= rc == 0 && dt == (enum ibc_dtype)i &&
			ibc_dtype_size((enum ibc_dtype)i) == sizes[i];
	}
	ok(good, "every dtype name parses back to itself and has the right size");
	good = 1;
	for (size_t i = 0; i < IBC_ARRAY_SIZE(alias); i++) {
		dt = IBC_DTYPE_COUNT;
		if (ibc_dtype_parse(alias[i].s, &dt) != 0 || dt != alias[i].dt) {
			diag("alias '%s' -> %d", alias[i].s, (int)dt);
			good = 0;
		}
	}
	ok(good, "nccl-tests dtype aliases");
	good = ibc_dtype_parse(NULL, &dt) == -EINVAL;
	for (size_t i = 0; i < IBC_ARRAY_SIZE(bad); i++)
		good &= ibc_dtype_parse(bad[i], &dt) == -EINVAL;
	ok(good, "bad dtype names give -EINVAL");
	is_str(ibc_dtype_name(IBC_BF16), "bfloat16", "bfloat16 name");
	is_str(ibc_dtype_name(IBC_INT8), "int8", "int8 name");
	ok(ibc_dtype_size(IBC_DTYPE_COUNT) == 0, "invalid dtype has size 0");

	good = 1;
	for (int i = 0; i < IBC_OP_COUNT; i++)
		good &= ibc_op_parse(ibc_op_name((enum ibc_op)i), &op) == 0 && op == (enum ibc_op)i;
	ok(good, "every op name parses back to itself");
	is_str(ibc_op_name(IBC_OP_AVG), "avg", "avg name");
	ok(ibc_op_parse("mean", &op) == -EINVAL && ibc_op_parse(NULL, &op) == -EINVAL &&
	       ibc_op_parse("", &op) == -EINVAL,
	   "bad op names give -EINVAL");

	n = ibc_split_list(ibc_dtype_names(), &store, items, 32);
	good = n == IBC_DTYPE_COUNT;
	for (int i = 0; good && i < n; i++)
		good = ibc_dtype_parse(items[i], &dt) == 0 && dt == (enum ibc_dtype)i;
	free(store);
	ok(good, "ibc_dtype_names lists every dtype: %s", ibc_dtype_names());
	n = ibc_split_list(ibc_op_names(), &store, items, 32);
	good = n == IBC_OP_COUNT;
	for (int i = 0; good && i < n; i++)
		good = ibc_op_parse(items[i], &op) == 0 && op == (enum ibc_op)i;
	free(store);
	ok(good, "ibc_op_names lists every op: %s", ibc_op_names());
}

/* ---- half / bfloat16 conversions ---------------------------------------------------- */

static void test_half_known(void)
{
	static const struct {
		float f;
		uint16_t h;
	} cases[] = {
	    {0.0f, 0x0000},	     {-0.0f, 0x8000},
	    {1.0f, 0x3c00},	     {-2.0f, 0xc000},
	    {0.1f, 0x2e66},	     {65504.0f, 0x7bff},
	    {65519.996f, 0x7bff}, /* just below the tie: down */
	    {65520.0f, 0x7c00},	  /* tie between 65504 and 65536: even -> inf */
	    {1e6f, 0x7c00},	     {INFINITY, 0x7c00},
	    {-INFINITY, 0xfc00},     {0x1p-24f, 0x0001}, /* smallest subnormal */
	    {0x1p-25f, 0x0000},				 /* tie between 0 and 2^-24: even -> 0 */
	    {-0x1p-25f, 0x8000},     {0x1.000002p-25f, 0x0001}, /* just above the tie */
	    {0x1.8p-24f, 0x0002},				/* 1.5 units: tie -> even 2 */
	    {0x1.4p-23f, 0x0002},				/* 2.5 units: tie -> even 2 */
	    {0x1.ff8p-15f, 0x03ff},				/* largest subnormal, 1023 units */
	    {0x1.ffcp-15f, 0x0400}, /* 1023.5 units: tie -> even 1024 = 2^-14 */
	    {0x1.ffap-15f, 0x03ff}, /* 1023.25 units */
	    {0x1p-14f, 0x0400},	    /* smallest normal */
	    {0x1p-30f, 0x0000},	     {0x1.002p0f, 0x3c00}, /* 1 + 2^-11: tie -> even 0x3c00 */
	    {0x1.006p0f, 0x3c02},			   /* 1 + 3 * 2^-11: tie -> even 0x3c02 */
	    {0x1.002002p0f, 0x3c01},			   /* just above the tie */
	    {3.0f, 0x4200},
	};
	int good = 1;

	for (size_t i = 0; i < IBC_ARRAY_SIZE(cases); i++) {
		uint16_t h = ibc_float_to_half(cases[i].f);

		if (h != cases[i].h) {
			diag("float_to_half(%a) = 0x%04x, expected 0x%04x", cases[i].f, h,
			     cases[i].h);
			good = 0;
		}
	}
	ok(good, "float_to_half known values (ties to even, subnormals, overflow)");

	ok(ibc_half_to_float(0x0001) == 0x1p-24f && ibc_half_to_float(0x03ff) == 0x1.ff8p-15f &&
	       ibc_half_to_float(0x0400) == 0x1p-14f && ibc_half_to_float(0x7bff) == 65504.0f &&
	       ibc_half_to_float(0x3555) == 0x1.554p-2f && ibc_half_to_float(0xc000) == -2.0f,
	   "half_to_float known values");
	ok(isinf(ibc_half_to_float(0x7c00)) && ibc_half_to_float(0xfc00) < 0 &&
	       isinf(ibc_half_to_float(0xfc00)),
	   "half_to_float inf");
	ok(ibc_half_to_float(0x8000) == 0 && signbit(ibc_half_to_float(0x8000)), "half -0");
	ok(isnan(ibc_half_to_float(0x7e00)) && isnan(ibc_half_to_float(0x7c01)) &&
	       isnan(ibc_half_to_float(0xfe00)),
	   "half NaNs (quiet and signalling) stay NaN");
	ok(half_is_nan(ibc_float_to_half(NAN)) && half_is_nan(ibc_float_to_half(-NAN)) &&
	       (ibc_float_to_half(-NAN) & 0x8000) &&
	       half_is_nan(ibc_float_to_half(ffrom(0x7f800001))) &&
	       half_is_nan(ibc_float_to_half(ffrom(0x7fc00000))),
	   "float NaNs (payload only in low bits too) become half NaN, sign kept");
}

static void test_bf16_known(void)
{
	static const struct {
		uint32_t f;
		uint16_t h;
	} cases[] = {
	    {0x00000000, 0x0000}, {0x80000000, 0x8000},
	    {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, /* tie -> even */
	    {0x3f818000, 0x3f82},			/* tie -> even (up) */
	    {0x3f808001, 0x3f81},			/* above tie */
	    {0x3f807fff, 0x3f80},			/* below tie */
	    {0x7f7fffff, 0x7f80},			/* FLT_MAX rounds to inf */
	    {0x7f7f7fff, 0x7f7f},			/* largest that rounds down to bf16 max */
	    {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
	    {0x00000001, 0x0000}, /* tiny subnormal -> 0 */
	    {0x00008000, 0x0000}, /* tie -> even 0 */
	    {0x00018000, 0x0002}, /* tie -> even 2 */
	    {0x00010000, 0x0001}, /* smallest bf16 subnormal */
	    {0x007fffff, 0x0080}, /* rounds up to the smallest normal */
	    {0xc0490fdb, 0xc049}, /* -pi */
	};
	int good = 1;

	for (size_t i = 0; i < IBC_ARRAY_SIZE(cases); i++) {
		uint16_t h = ibc_float_to_bf16(ffrom(cases[i].f));

		if (h != cases[i].h) {
			diag("float_to_bf16(0x%08x) = 0x%04x, expected 0x%04x", cases[i].f, h,
			     cases[i].h);
			good = 0;
		}
	}
	ok(good, "float_to_bf16 known values (ties to even, subnormals, overflow)");
	ok(bf16_is_nan(ibc_float_to_bf16(NAN)) &&
	       bf16_is_nan(ibc_float_to_bf16(ffrom(0x7f800001))) &&
	       bf16_is_nan(ibc_float_to_bf16(ffrom(0x7fffffff))) &&
	       bf16_is_nan(ibc_float_to_bf16(ffrom(0xff800001))) &&
	       (ibc_float_to_bf16(ffrom(0xff800001)) & 0x8000),
	   "float NaNs become bfloat16 NaN (never inf), sign kept");
	ok(ibc_bf16_to_float(0x3f80) == 1.0f && ibc_bf16_to_float(0x0001) == 0x1p-133f &&
	       isinf(ibc_bf16_to_float(0x7f80)) && isnan(ibc_bf16_to_float(0x7fc0)) &&
	       isnan(ibc_bf16_to_float(0x7f81)),
	   "bf16_to_float known values");
}

/* All 65536 patterns decode exactly and round-trip. */
static void test_exhaustive_16(void)
{
	int bad_h = 0, bad_b = 0;

	for (uint32_t i = 0; i < 65536; i++) {
		uint16_t h = (uint16_t)i;
		float fh = ibc_half_to_float(h), fb = ibc_bf16_to_float(h);
		double rh = ref_decode(&fmt_half, h), rb = ref_decode(&fmt_bf16, h);

		if (half_is_nan(h)) {
			bad_h += !isnan(fh) || !half_is_nan(ibc_float_to_half(fh));
		} else {
			bad_h += (double)fh != rh || !signbit(fh) != !signbit(rh) ||
				 ibc_float_to_half(fh) != h;
		}
		if (bf16_is_nan(h)) {
			bad_b += !isnan(fb) || !bf16_is_nan(ibc_float_to_bf16(fb));
		} else {
			bad_b += (double)fb != rb || !signbit(fb) != !signbit(rb) ||
				 ibc_float_to_bf16(fb) != h;
		}
	}
	is_int(bad_h, 0, "all 65536 halves decode exactly and round-trip");
	is_int(bad_b, 0, "all 65536 bfloat16s decode exactly and round-trip");
}

/* float -> half/bf16 against the reference rounding: every 4093rd float bit pattern (all
 * exponents) plus random floats near the half range. */
static void test_rounding_sweep(void)
{
	uint64_t s = 42;
	long bad_h = 0, bad_b = 0, n = 0;

	for (uint64_t u = 0; u < (1ull << 32); u += 4093) {
		for (int k = 0; k < 2; k++) {
			uint32_t bits = k ? (uint32_t)u : (uint32_t)rng_next(&s);
			float f;

			if (!k) /* exponents around half's range: [2^-28, 2^17) */
				bits = (bits & 0x807fffff) | ((99 + (bits >> 23) % 45) << 23);
			f = ffrom(bits);
			n++;
			if (isnan(f)) {
				bad_h += !half_is_nan(ibc_float_to_half(f));
				bad_b += !bf16_is_nan(ibc_float_to_bf16(f));
				continue;
			}
			if (ibc_float_to_half(f) != ref_round(&fmt_half, f)) {
				if (bad_h++ < 5)
					diag("half(%a): 0x%04x, ref 0x%04x", f,
					     ibc_float_to_half(f), ref_round(&fmt_half, f));
			}
			if (ibc_float_to_bf16(f) != ref_round(&fmt_bf16, f)) {
				if (bad_b++ < 5)
					diag("bf16(%a): 0x%04x, ref 0x%04x", f,
					     ibc_float_to_bf16(f), ref_round(&fmt_bf16, f));
			}
		}
	}
	ok(bad_h == 0, "float_to_half matches reference rounding on %ld floats", n);
	ok(bad_b == 0, "float_to_bf16 matches reference rounding on %ld floats", n);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static int f16c_compare(long *nfloats)
{
	uint64_t s = 7;
	int bad = 0;

	for (uint32_t i = 0; i < 65536; i++) {
		uint32_t hw = fbits(_cvtsh_ss((unsigned short)i));

		bad += hw != fbits(ibc_half_to_float((uint16_t)i));
	}
	*nfloats = 0;
	for (uint64_t u = 0; u < (1ull << 32); u += 8191, (*nfloats)++) {
		float f = ffrom((uint32_t)u ^ (uint32_t)(rng_next(&s) & 0xff));

		bad += _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT) != ibc_float_to_half(f);
	}
	return bad;
}
#endif

static void test_f16c(void)
{
#if defined(__x86_64__)
	long n;

	if (!__builtin_cpu_supports("f16c")) {
		tap_skip(1, "CPU without F16C");
		return;
	}
	is_int(f16c_compare(&n), 0,
	       "software half conversions equal F16C bit for bit (65536 halves, %ld floats, NaNs "
	       "included)",
	       n);
#else
	tap_skip(1, "not x86-64");
#endif
}

/* ---- reductions against a scalar reference ------------------------------------------ */

static int64_t sext(uint64_t v, size_t size)
{
	int sh = 64 - (int)size * 8;

	return (int64_t)(v << sh) >> sh;
}

/* Reference a OP b on raw bits (avg: the sum). */
static uint64_t ref_op(enum ibc_dtype dt, enum ibc_op op, uint64_t a, uint64_t b)
{
	size_t size = ibc_dtype_size(dt);
	uint64_t mask = size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
	const struct fmt16 *f16 = dt == IBC_HALF ? &fmt_half : &fmt_bf16;
	double x, y;
	float fx, fy;
	int lt, gt;

	if (op == IBC_OP_AVG)
		op = IBC_OP_SUM;
	if (!is_float_type(dt)) {
		if (op == IBC_OP_SUM)
			return (a + b) & mask;
		if (op == IBC_OP_PROD)
			return (a * b) & mask;
		lt = is_signed_type(dt) ? sext(a, size) < sext(b, size) : a < b;
		gt = is_signed_type(dt) ? sext(a, size) > sext(b, size) : a > b;
		return (op == IBC_OP_MIN ? lt : gt) ? a : b;
	}
	if (dt == IBC_FLOAT) {
		fx = ffrom((uint32_t)a);
		fy = ffrom((uint32_t)b);
		switch (op) {
		case IBC_OP_SUM:
			return fbits(fx + fy);
		case IBC_OP_PROD:
			return fbits(fx * fy);
		case IBC_OP_MIN:
			return fx < fy ? a : b;
		default:
			return fx > fy ? a : b;
		}
	}
	if (dt == IBC_DOUBLE) {
		memcpy(&x, &a, 8);
		memcpy(&y, &b, 8);
		switch (op) {
		case IBC_OP_SUM:
			x = x + y;
			break;
		case IBC_OP_PROD:
			x = x * y;
			break;
		case IBC_OP_MIN:
			return x < y ? a : b;
		default:
			return x > y ? a : b;
		}
		memcpy(&a, &x, 8);
		return a;
	}
	/* half, bfloat16: exact in double, one correct rounding */
	x = ref_decode(f16, (uint16_t)a);
	y = ref_decode(f16, (uint16_t)b);
	switch (op) {
	case IBC_OP_SUM:
		return isnan(x + y) ? 0x7fff : ref_round(f16, x + y);
	case IBC_OP_PROD:
		return isnan(x * y) ? 0x7fff : ref_round(f16, x * y);
	case IBC_OP_MIN:
		return x < y ? a : b;
	default:
		return x > y ? a : b;
	}
}

static int bits_nan(enum ibc_dtype dt, uint64_t v)
{
	switch (dt) {
	case IBC_HALF:
		return half_is_nan((uint16_t)v);
	case IBC_BF16:
		return bf16_is_nan((uint16_t)v);
	case IBC_FLOAT:
		return (v & 0x7fffffff) > 0x7f800000;
	case IBC_DOUBLE:
		return (v & ~(1ull << 63)) > 0x7ff0000000000000ull;
	default:
		return 0;
	}
}

/* Random input: integers any bits; floating types a quarter random non-NaN bit patterns (inf,
 * subnormals, huge), the rest moderate values m * 2^e. */
static uint64_t random_value(enum ibc_dtype dt, uint64_t *s)
{
	uint64_t r = rng_next(s), bits;
	double v;
	float f;

	if (!is_float_type(dt))
		return r;
	if ((r & 3) == 0) {
		do {
			bits = rng_next(s);
			if (ibc_dtype_size(dt) < 8)
				bits &= (1ull << (ibc_dtype_size(dt) * 8)) - 1;
		} while (bits_nan(dt, bits));
		return bits;
	}
	v = ldexp((double)((int64_t)(r >> 20) % 2001 - 1000), (int)((r >> 8) % 21) - 10);
	f = (float)v;
	switch (dt) {
	case IBC_HALF:
		return ibc_float_to_half(f);
	case IBC_BF16:
		return ibc_float_to_bf16(f);
	case IBC_FLOAT:
		return fbits(f);
	default:
		memcpy(&bits, &v, 8);
		return bits;
	}
}

enum place { PLACE_OUT, PLACE_DST_A, PLACE_DST_B, PLACE_UNALIGNED, PLACE_COUNT };

static const char *const place_name[PLACE_COUNT] = {"out", "dst=a", "dst=b", "unaligned"};

#define GUARD 16

/* Run one reduction of len elements; returns the number of wrong elements (guards included). */
static size_t reduce_vs_ref(enum ibc_dtype dt, enum ibc_op op, size_t len, enum place pl,
			    uint64_t *s)
{
	size_t size = ibc_dtype_size(dt), total = len + 2 * GUARD, wrong = 0;
	unsigned char *a = malloc(total * size), *b = malloc(total * size);
	unsigned char *d = malloc(total * size), *want = malloc(total * size);
	size_t oa = GUARD, ob = GUARD, od = GUARD;
	unsigned char *pa, *pb, *pd;

	if (!a || !b || !d || !want) {
		free(a), free(b), free(d), free(want);
		return len + 1;
	}
	if (pl == PLACE_UNALIGNED) { /* element aligned, not vector aligned, all different */
		oa = GUARD + 1;
		ob = GUARD - 3;
		od = GUARD - 1;
	}
	for (size_t i = 0; i < total; i++) {
		store_bits(a, i, size, random_value(dt, s));
		store_bits(b, i, size, random_value(dt, s));
		store_bits(d, i, size, 0x5a5a5a5a5a5a5a5aull);
	}
	pa = a + oa * size;
	pb = b + ob * size;
	if (pl == PLACE_DST_A)
		d = memcpy(d, a, total * size), od = oa;
	if (pl == PLACE_DST_B)
		d = memcpy(d, b, total * size), od = ob;
	pd = d + od * size;
	memcpy(want, d, total * size);
	for (size_t i = 0; i < len; i++)
		store_bits(want, od + i, size,
			   ref_op(dt, op, load_bits(pa, i, size), load_bits(pb, i, size)));
	/* dst=a / dst=b: the inputs are the same buffer as the output */
	if (pl == PLACE_DST_A)
		ibc_reduce(pd, pd, pb, len, dt, op);
	else if (pl == PLACE_DST_B)
		ibc_reduce(pd, pa, pd, len, dt, op);
	else
		ibc_reduce(pd, pa, pb, len, dt, op);
	for (size_t i = 0; i < total; i++) {
		uint64_t g = load_bits(d, i, size), w = load_bits(want, i, size);

		if (g == w || (bits_nan(dt, g) && bits_nan(dt, w)))
			continue;
		if (wrong++ == 0)
			diag("%s %s len %zu %s: element %ld got 0x%" PRIx64 " want 0x%" PRIx64,
			     ibc_dtype_name(dt), ibc_op_name(op), len, place_name[pl],
			     (long)i - (long)od, g, w);
	}
	free(a), free(b), free(d), free(want);
	return wrong;
}

static void test_reduce_reference(void)
{
	static const size_t lens[] = {0, 1, 7, 1023, 4097};
	uint64_t s = 1234;

	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		for (int op = 0; op < IBC_OP_COUNT; op++) {
			size_t wrong = 0;

			for (size_t l = 0; l < IBC_ARRAY_SIZE(lens); l++)
				for (int pl = 0; pl < PLACE_COUNT; pl++)
					wrong += reduce_vs_ref((enum ibc_dtype)dt, (enum ibc_op)op,
							       lens[l], (enum place)pl, &s);
			ok(wrong == 0,
			   "reduce %s %s = scalar reference (lengths 0..4097, in/out of place, "
			   "unaligned)",
			   ibc_dtype_name((enum ibc_dtype)dt), ibc_op_name((enum ibc_op)op));
		}
	}
}

/* Integer value of element i (small integer data), or NAN for a NaN / non-integer. */
static double value_of(enum ibc_dtype dt, const void *buf, size_t i)
{
	size_t size = ibc_dtype_size(dt);
	uint64_t v = load_bits(buf, i, size);
	double d;

	switch (dt) {
	case IBC_HALF:
		return ibc_half_to_float((uint16_t)v);
	case IBC_BF16:
		return ibc_bf16_to_float((uint16_t)v);
	case IBC_FLOAT:
		return ffrom((uint32_t)v);
	case IBC_DOUBLE:
		memcpy(&d, &v, 8);
		return d;
	default:
		return is_signed_type(dt) ? (double)sext(v, size) : (double)v;
	}
}

/* The documented min/max rule (a < b ? a : b, a > b ? a : b) on zeros and NaNs. */
static void test_minmax_rule(void)
{
	static const enum ibc_dtype fdt[] = {IBC_HALF, IBC_BF16, IBC_FLOAT, IBC_DOUBLE};
	/* a, b, min, max; as doubles (NaN = nan) */
	static const double cases[][4] = {
	    {0.0, -0.0, -0.0, -0.0}, {-0.0, 0.0, 0.0, 0.0}, {NAN, 1, 1, 1},
	    {1, NAN, NAN, NAN},	     {1, 2, 1, 2},	    {-3, -4, -4, -3},
	};
	enum { N = 6 * 7 }; /* vector body and tail */
	int good = 1;

	for (size_t t = 0; t < IBC_ARRAY_SIZE(fdt); t++) {
		size_t size = ibc_dtype_size(fdt[t]);
		unsigned char a[N * 8], b[N * 8], mn[N * 8], mx[N * 8];

		for (int i = 0; i < N; i++) {
			const double *c = cases[i % 6];

			for (int k = 0; k < 2; k++) {
				float f = (float)c[k];
				uint64_t bits;

				if (fdt[t] == IBC_HALF)
					bits = ibc_float_to_half(f);
				else if (fdt[t] == IBC_BF16)
					bits = ibc_float_to_bf16(f);
				else if (fdt[t] == IBC_FLOAT)
					bits = fbits(f);
				else
					memcpy(&bits, &c[k], 8);
				store_bits(k ? b : a, (size_t)i, size, bits);
			}
		}
		ibc_reduce(mn, a, b, N, fdt[t], IBC_OP_MIN);
		ibc_reduce(mx, a, b, N, fdt[t], IBC_OP_MAX);
		for (int i = 0; i < N; i++) {
			const double *c = cases[i % 6];
			double gmin = value_of(fdt[t], mn, (size_t)i);
			double gmax = value_of(fdt[t], mx, (size_t)i);
			int okmin = isnan(c[2]) ? isnan(gmin)
						: gmin == c[2] && !signbit(gmin) == !signbit(c[2]);
			int okmax = isnan(c[3]) ? isnan(gmax)
						: gmax == c[3] && !signbit(gmax) == !signbit(c[3]);

			if (!okmin || !okmax) {
				diag("%s case %d: min %g max %g", ibc_dtype_name(fdt[t]), i % 6,
				     gmin, gmax);
				good = 0;
			}
		}
	}
	ok(good, "floating min/max follow a < b ? a : b on signed zeros and NaNs");
}

static void test_reduce_finish(void)
{
	int8_t i8[] = {-7, 7, -128, 127, -1, 1};
	const int8_t i8_want[] = {-3, 3, -64, 63, 0, 0};
	uint8_t u8[] = {255, 7, 1};
	int64_t i64[] = {INT64_MIN, -9, 9};
	uint64_t u64[] = {UINT64_MAX, 9};
	uint32_t u32[] = {0xffffffffu};
	int32_t i32[] = {-7, INT32_MIN};
	float f[] = {1.0f, -3.0f, 0.0f};
	double d[] = {1.0, 2.0};
	uint16_t h[] = {0x3c00, 0x3c00}, bf[] = {0x3f80, 0x3f80};
	float unchanged[] = {5.0f, 7.0f};
	uint64_t s = 99;
	int bad = 0;

	ibc_reduce_finish(i8, 6, IBC_INT8, IBC_OP_AVG, 2);
	ok(memcmp(i8, i8_want, sizeof(i8)) == 0, "int8 avg truncates toward zero");
	ibc_reduce_finish(u8, 3, IBC_UINT8, IBC_OP_AVG, 2);
	ok(u8[0] == 127 && u8[1] == 3 && u8[2] == 0, "uint8 avg");
	ibc_reduce_finish(i32, 2, IBC_INT32, IBC_OP_AVG, 2);
	ok(i32[0] == -3 && i32[1] == INT32_MIN / 2, "int32 avg");
	ibc_reduce_finish(u32, 1, IBC_UINT32, IBC_OP_AVG, 3);
	ok(u32[0] == 0x55555555u, "uint32 avg divides as unsigned");
	ibc_reduce_finish(i64, 3, IBC_INT64, IBC_OP_AVG, 4);
	ok(i64[0] == INT64_MIN / 4 && i64[1] == -2 && i64[2] == 2, "int64 avg");
	ibc_reduce_finish(u64, 2, IBC_UINT64, IBC_OP_AVG, 2);
	ok(u64[0] == UINT64_MAX / 2 && u64[1] == 4, "uint64 avg divides as unsigned");
	ibc_reduce_finish(f, 3, IBC_FLOAT, IBC_OP_AVG, 3);
	ok(f[0] == 1.0f / 3.0f && f[1] == -1.0f && f[2] == 0.0f && !signbit(f[2]), "float avg");
	ibc_reduce_finish(d, 2, IBC_DOUBLE, IBC_OP_AVG, 7);
	ok(d[0] == 1.0 / 7.0 && d[1] == 2.0 / 7.0, "double avg");
	ibc_reduce_finish(h, 1, IBC_HALF, IBC_OP_AVG, 3);
	ibc_reduce_finish(bf, 1, IBC_BF16, IBC_OP_AVG, 3);
	ok(h[0] == 0x3555 && h[1] == 0x3c00 && bf[0] == 0x3eab && bf[1] == 0x3f80,
	   "half/bfloat16 avg: 1/3 rounded once, count respected");
	ibc_reduce_finish(unchanged, 2, IBC_FLOAT, IBC_OP_SUM, 4);
	ibc_reduce_finish(unchanged, 2, IBC_FLOAT, IBC_OP_MAX, 4);
	ibc_reduce_finish(unchanged, 2, IBC_FLOAT, IBC_OP_AVG, 1);
	ok(unchanged[0] == 5.0f && unchanged[1] == 7.0f, "finish leaves non-avg ops and nranks 1");

	/* random half/bf16 against the reference: x / n correctly rounded */
	for (int k = 0; k < 20000; k++) {
		uint16_t x = (uint16_t)random_value(IBC_HALF, &s), y;
		uint16_t xb = (uint16_t)random_value(IBC_BF16, &s), yb;
		int n = 2 + (int)(rng_next(&s) % 100000);

		y = x;
		yb = xb;
		ibc_reduce_finish(&y, 1, IBC_HALF, IBC_OP_AVG, n);
		ibc_reduce_finish(&yb, 1, IBC_BF16, IBC_OP_AVG, n);
		bad += y != ref_round(&fmt_half, ref_decode(&fmt_half, x) / n);
		bad += yb != ref_round(&fmt_bf16, ref_decode(&fmt_bf16, xb) / n);
	}
	is_int(bad, 0, "half/bfloat16 avg correctly rounded on random values and nranks");
}

/* ---- verifiable data ---------------------------------------------------------------- */

/* Every value lies in the documented set; returns the number of violations. */
static size_t check_value_set(enum ibc_dtype dt, enum ibc_op op, const void *buf, size_t count)
{
	size_t bad = 0, size = ibc_dtype_size(dt);
	uint64_t umax = size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
	int fl = is_float_type(dt), sg = is_signed_type(dt) || fl;

	for (size_t i = 0; i < count; i++) {
		double v = value_of(dt, buf, i);
		uint64_t raw = load_bits(buf, i, size);
		int okv;

		switch (op) {
		case IBC_OP_SUM:
			okv = v == -1 || v == 0 || v == 1 || (!sg && raw == umax);
			break;
		case IBC_OP_AVG:
			okv = fl ? v == -1 || v == 0 || v == 1
				 : (sg ? v >= -33 && v <= 32 : v <= 64 || raw == umax);
			break;
		case IBC_OP_PROD:
			okv = fl ? fabs(v) == 1 || fabs(v) == 2 : (raw & 1) == 1;
			break;
		case IBC_OP_MIN:
		case IBC_OP_MAX:
		default:
			okv = sg ? v >= -64 && v <= 63 : v <= 127;
			break;
		}
		okv = okv && (!fl || v != 0 || !signbit(v)) && !isnan(v);
		bad += !okv;
	}
	return bad;
}

static void test_fill(void)
{
	enum { N = 1000 };
	unsigned char whole[N * 8], parts[N * 8];
	size_t set_bad = 0, slice_bad = 0, zero_bad = 0, nonzero = 0;

	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		size_t size = ibc_dtype_size((enum ibc_dtype)dt);

		for (int op = 0; op < IBC_OP_COUNT; op++) {
			for (int r = 0; r < 5; r++) {
				ibc_fill(whole, 0, N, (enum ibc_dtype)dt, (enum ibc_op)op, r, 5,
					 77);
				set_bad +=
				    check_value_set((enum ibc_dtype)dt, (enum ibc_op)op, whole, N);
				ibc_fill(parts, 0, 333, (enum ibc_dtype)dt, (enum ibc_op)op, r, 5,
					 77);
				ibc_fill(parts + 333 * size, 333, N - 333, (enum ibc_dtype)dt,
					 (enum ibc_op)op, r, 5, 77);
				slice_bad += memcmp(whole, parts, N * size) != 0;
			}
		}
	}
	is_int(set_bad, 0, "fill values lie in the documented sets (no NaN, no -0)");
	is_int(slice_bad, 0, "fill of two slices (first > 0) equals one fill");

	/* beyond the exact-sum limit floating ranks hold zeros */
	ibc_fill(whole, 0, N, IBC_HALF, IBC_OP_SUM, 2048, 3000, 5);
	for (size_t i = 0; i < N; i++)
		zero_bad += ((uint16_t *)whole)[i] != 0;
	ibc_fill(whole, 0, N, IBC_BF16, IBC_OP_AVG, 256, 300, 5);
	for (size_t i = 0; i < N; i++)
		zero_bad += ((uint16_t *)whole)[i] != 0;
	is_int(zero_bad, 0,
	       "floating sum/avg: ranks beyond the exact limit (half 2048, bf16 256) hold 0");
	ibc_fill(whole, 0, N, IBC_HALF, IBC_OP_SUM, 2047, 3000, 5);
	for (size_t i = 0; i < N; i++)
		nonzero += ((uint16_t *)whole)[i] != 0;
	ok(nonzero > N / 4 && nonzero < N, "half rank 2047 of 3000 holds data (%zu non-zero)",
	   nonzero);
	ibc_fill(whole, 0, N, IBC_INT8, IBC_OP_SUM, 2999, 3000, 5);
	ok(check_value_set(IBC_INT8, IBC_OP_SUM, whole, N) == 0 && memchr(whole, 1, N) != NULL,
	   "integer ranks beyond 2048 hold data");
}

enum order { ORDER_LEFT, ORDER_RIGHT, ORDER_TREE, ORDER_RANDOM, ORDER_COUNT };

static const char *const order_name[ORDER_COUNT] = {"left fold", "right fold", "pairwise tree",
						    "random"};

struct sim {
	enum ibc_dtype dt;
	enum ibc_op op;
	int nranks;
	size_t count, bytes; /* bytes per rank buffer */
	uint64_t seed;
	unsigned char *in;   /* owned: nranks input buffers */
	unsigned char *work; /* owned: nranks scratch buffers */
	unsigned char *tmp;  /* owned: one buffer */
};

static unsigned char *sim_in(struct sim *sm, int r)
{
	return sm->in + (size_t)r * sm->bytes;
}

static unsigned char *sim_work(struct sim *sm, int r)
{
	return sm->work + (size_t)r * sm->bytes;
}

static int sim_init(struct sim *sm, enum ibc_dtype dt, enum ibc_op op, int nranks, size_t count,
		    uint64_t seed)
{
	sm->dt = dt;
	sm->op = op;
	sm->nranks = nranks;
	sm->count = count;
	sm->bytes = count * ibc_dtype_size(dt);
	sm->seed = seed;
	sm->in = malloc(sm->bytes * (size_t)nranks);
	sm->work = malloc(sm->bytes * (size_t)nranks);
	sm->tmp = malloc(sm->bytes);
	if (!sm->in || !sm->work || !sm->tmp)
		return -ENOMEM;
	for (int r = 0; r < nranks; r++)
		ibc_fill(sim_in(sm, r), 0, count, dt, op, r, nranks, seed);
	return 0;
}

static void sim_free(struct sim *sm)
{
	free(sm->tmp);
	free(sm->work);
	free(sm->in);
}

/* Left fold of every rank but lost (a rank whose contribution went missing), finished. */
static unsigned char *sim_reduce_lost(struct sim *sm, int lost)
{
	int first = lost == 0 ? 1 : 0;
	unsigned char *acc = sm->tmp;

	memcpy(acc, sim_in(sm, first), sm->bytes);
	for (int r = first + 1; r < sm->nranks; r++)
		if (r != lost)
			ibc_reduce(acc, acc, sim_in(sm, r), sm->count, sm->dt, sm->op);
	ibc_reduce_finish(acc, sm->count, sm->dt, sm->op, sm->nranks);
	return acc;
}

/* Reduce all ranks' inputs in the given order; returns the result buffer (inside sm->work),
 * after ibc_reduce_finish. */
static unsigned char *sim_reduce(struct sim *sm, enum order ord, uint64_t *rs)
{
	int n = sm->nranks, alive;
	size_t c = sm->count;
	unsigned char *acc = sim_work(sm, 0);
	int *idx;

	memcpy(sm->work, sm->in, sm->bytes * (size_t)n);
	switch (ord) {
	case ORDER_LEFT:
		for (int r = 1; r < n; r++)
			ibc_reduce(acc, acc, sim_in(sm, r), c, sm->dt, sm->op);
		break;
	case ORDER_RIGHT:
		acc = sim_work(sm, n - 1);
		for (int r = n - 2; r >= 0; r--)
			ibc_reduce(acc, sim_in(sm, r), acc, c, sm->dt, sm->op);
		break;
	case ORDER_TREE:
		for (int step = 1; step < n; step *= 2)
			for (int r = 0; r + step < n; r += 2 * step)
				ibc_reduce(sim_work(sm, r), sim_work(sm, r), sim_work(sm, r + step),
					   c, sm->dt, sm->op);
		break;
	default:
		idx = malloc(sizeof(*idx) * (size_t)n);
		if (!idx)
			return NULL;
		for (int r = 0; r < n; r++)
			idx[r] = r;
		for (alive = n; alive > 1; alive--) {
			int i = (int)(rng_next(rs) % (uint64_t)alive), j;
			unsigned char *x, *y;

			j = (int)(rng_next(rs) % (uint64_t)(alive - 1));
			j += j >= i;
			x = sim_work(sm, idx[i]);
			y = sim_work(sm, idx[j]);
			switch (rng_next(rs) % 3) {
			case 0:
				ibc_reduce(x, x, y, c, sm->dt, sm->op);
				break;
			case 1:
				ibc_reduce(x, y, x, c, sm->dt, sm->op);
				break;
			default:
				ibc_reduce(sm->tmp, y, x, c, sm->dt, sm->op);
				memcpy(x, sm->tmp, sm->bytes);
				break;
			}
			idx[j] = idx[alive - 1];
		}
		acc = sim_work(sm, idx[0]);
		free(idx);
		break;
	}
	ibc_reduce_finish(acc, c, sm->dt, sm->op, n);
	return acc;
}

static void test_allreduce_sim(void)
{
	static const int nranks[] = {1, 2, 3, 5, 8, 300, 5000, 100000};
	uint64_t rs = 5;

	for (size_t k = 0; k < IBC_ARRAY_SIZE(nranks); k++) {
		int n = nranks[k];
		size_t count = n <= 8 ? 1031 : n <= 5000 ? 67 : 5;

		for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
			for (int op = 0; op < IBC_OP_COUNT; op++) {
				struct sim sm;
				struct ibc_check_result res;
				int good = sim_init(&sm, (enum ibc_dtype)dt, (enum ibc_op)op, n,
						    count, 1000 + k) == 0;

				for (int o = 0; good && o < ORDER_COUNT; o++) {
					unsigned char *out;

					if (n > 5000 && o == ORDER_RIGHT)
						continue;
					out = sim_reduce(&sm, (enum order)o, &rs);
					ibc_check(out, count, sm.dt, sm.op, n, sm.seed, &res);
					if (res.wrong) {
						diag("%s: %zu wrong, first %zu: expected %s got %s",
						     order_name[o], res.wrong, res.first_index,
						     res.expected, res.got);
						good = 0;
					}
				}
				ok(good, "all-reduce %s %s nranks %d: exact in 4 orders",
				   ibc_dtype_name((enum ibc_dtype)dt), ibc_op_name((enum ibc_op)op),
				   n);
				sim_free(&sm);
			}
		}
	}
}

/* A value (as bits) to plant and how ibc_check must print it. */
static uint64_t planted(enum ibc_dtype dt, uint64_t avoid, const char **text)
{
	uint64_t v;

	if (!is_float_type(dt)) {
		*text = avoid == 42 ? "43" : "42";
		return avoid == 42 ? 43 : 42;
	}
	*text = "3.5";
	switch (dt) {
	case IBC_HALF:
		return ibc_float_to_half(3.5f);
	case IBC_BF16:
		return ibc_float_to_bf16(3.5f);
	case IBC_FLOAT:
		return fbits(3.5f);
	default:
		v = 0x400c000000000000ull; /* 3.5 */
		return v;
	}
}

/* The printed expected value parses back to the element's correct value. */
static int expected_text_matches(enum ibc_dtype dt, const char *text, uint64_t want)
{
	size_t size = ibc_dtype_size(dt);
	char *end;
	double d;
	uint64_t bits;

	if (!is_float_type(dt)) {
		if (is_signed_type(dt))
			bits = (uint64_t)strtoll(text, &end, 10);
		else
			bits = strtoull(text, &end, 10);
		if (size < 8)
			bits &= (1ull << (size * 8)) - 1;
		return *end == '\0' && bits == want;
	}
	d = strtod(text, &end);
	switch (dt) {
	case IBC_HALF:
		bits = ibc_float_to_half((float)d);
		break;
	case IBC_BF16:
		bits = ibc_float_to_bf16((float)d);
		break;
	case IBC_FLOAT:
		bits = fbits((float)d);
		break;
	default:
		memcpy(&bits, &d, 8);
		break;
	}
	return *end == '\0' && bits == want;
}

static void test_corruption(void)
{
	uint64_t rs = 11;

	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		for (int op = 0; op < IBC_OP_COUNT; op++) {
			enum ibc_dtype t = (enum ibc_dtype)dt;
			enum ibc_op o = (enum ibc_op)op;
			size_t size = ibc_dtype_size(t), k = 345, count = 1031;
			int n = 7;
			struct ibc_check_result res, res2;
			struct sim sm;
			const char *text;
			unsigned char *out;
			uint64_t orig, bad;
			int good;

			if (sim_init(&sm, t, o, n, count, 3) != 0) {
				ok(0, "allocation");
				sim_free(&sm);
				continue;
			}
			out = sim_reduce(&sm, ORDER_TREE, &rs);
			/* a non-zero element: avg then prints as +-1/7, all digits matter */
			while (k < count - 2 &&
			       (load_bits(out, k, size) << (64 - 8 * size)) << 1 == 0)
				k++;
			orig = load_bits(out, k, size);
			bad = planted(t, orig, &text);
			store_bits(out, k, size, bad);
			ibc_check(out, count, t, o, n, 3, &res);
			good = res.wrong == 1 && res.first_index == k &&
			       strcmp(res.got, text) == 0 &&
			       expected_text_matches(t, res.expected, orig);
			/* a second one further on: first index stays, count grows */
			store_bits(out, count - 1, size, load_bits(out, count - 1, size) ^ 0x10);
			ibc_check(out, count, t, o, n, 3, &res2);
			good = good && res2.wrong == 2 && res2.first_index == k;
			ok(good,
			   "check %s %s: one corrupted element reported (index %zu, expected %s, "
			   "got %s)",
			   ibc_dtype_name(t), ibc_op_name(o), res.first_index, res.expected,
			   res.got);
			sim_free(&sm);
		}
	}
}

static void test_poison(void)
{
	static const int nranks[] = {1, 2, 3, 5, 8, 300, 5000, 100000, 1 << 26, INT32_MAX};
	enum { N = 4096 };
	unsigned char buf[N * 8];
	int good = 1;

	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		ibc_poison(buf, N, (enum ibc_dtype)dt);
		for (int op = 0; op < IBC_OP_COUNT; op++) {
			for (size_t k = 0; k < IBC_ARRAY_SIZE(nranks); k++) {
				struct ibc_check_result res;

				ibc_check(buf, N, (enum ibc_dtype)dt, (enum ibc_op)op, nranks[k], 9,
					  &res);
				if (res.wrong != N) {
					diag("poison %s %s nranks %d: %zu of %d wrong",
					     ibc_dtype_name((enum ibc_dtype)dt),
					     ibc_op_name((enum ibc_op)op), nranks[k], res.wrong, N);
					good = 0;
				}
			}
		}
	}
	ok(good, "poison never passes the check (every dtype, op, nranks up to INT_MAX)");
}

/* The data is sensitive: a lost rank or the wrong seed is caught. */
static void test_sensitivity(void)
{
	uint64_t rs = 13;
	int lost_ok = 1, seed_ok = 1;

	for (int dt = 0; dt < IBC_DTYPE_COUNT; dt++) {
		for (int op = 0; op < IBC_OP_COUNT; op++) {
			struct ibc_check_result res;
			struct sim sm;
			unsigned char *out;

			if (sim_init(&sm, (enum ibc_dtype)dt, (enum ibc_op)op, 8, 1031, 21) != 0) {
				lost_ok = 0;
				sim_free(&sm);
				continue;
			}
			for (int skip = 0; skip < 8; skip += 3) {
				out = sim_reduce_lost(&sm, skip);
				ibc_check(out, sm.count, sm.dt, sm.op, 8, sm.seed, &res);
				if (res.wrong == 0) {
					diag("%s %s: losing rank %d not detected",
					     ibc_dtype_name(sm.dt), ibc_op_name(sm.op), skip);
					lost_ok = 0;
				}
			}
			out = sim_reduce(&sm, ORDER_TREE, &rs);
			ibc_check(out, sm.count, sm.dt, sm.op, 8, sm.seed + 1, &res);
			if (res.wrong < sm.count / 4) {
				diag("%s %s: other seed: only %zu wrong", ibc_dtype_name(sm.dt),
				     ibc_op_name(sm.op), res.wrong);
				seed_ok = 0;
			}
			sim_free(&sm);
		}
	}
	ok(lost_ok, "a rank lost from the reduction is detected (every dtype and op)");
	ok(seed_ok, "a result checked against another seed fails");
}

static int64_t ordered(uint64_t bits, size_t size)
{
	uint64_t sign = 1ull << (size * 8 - 1);
	int64_t mag = (int64_t)(bits & (sign - 1));

	return bits & sign ? -mag : mag;
}

static uint64_t from_ordered(int64_t o, size_t size)
{
	uint64_t sign = 1ull << (size * 8 - 1);

	return o < 0 ? sign | (uint64_t)-o : (uint64_t)o;
}

/* avg on floating types: within 2 ulp passes, 3 ulp fails. */
static void test_avg_tolerance(void)
{
	static const enum ibc_dtype fdt[] = {IBC_HALF, IBC_BF16, IBC_FLOAT, IBC_DOUBLE};
	uint64_t rs = 17;
	int good = 1;

	for (size_t t = 0; t < IBC_ARRAY_SIZE(fdt); t++) {
		enum ibc_dtype dt = fdt[t];
		size_t size = ibc_dtype_size(dt), k;
		struct ibc_check_result res;
		struct sim sm;
		unsigned char *out;

		if (sim_init(&sm, dt, IBC_OP_AVG, 7, 257, 8) != 0) {
			good = 0;
			sim_free(&sm);
			continue;
		}
		out = sim_reduce(&sm, ORDER_RANDOM, &rs);
		for (k = 0; k < sm.count && ordered(load_bits(out, k, size), size) == 0; k++)
			;
		if (k == sm.count) {
			good = 0;
			sim_free(&sm);
			continue;
		}
		{
			uint64_t orig = load_bits(out, k, size);
			int64_t o = ordered(orig, size);

			store_bits(out, k, size, from_ordered(o + 2, size));
			ibc_check(out, sm.count, dt, IBC_OP_AVG, 7, 8, &res);
			good &= res.wrong == 0;
			store_bits(out, k, size, from_ordered(o - 2, size));
			ibc_check(out, sm.count, dt, IBC_OP_AVG, 7, 8, &res);
			good &= res.wrong == 0;
			store_bits(out, k, size, from_ordered(o + 3, size));
			ibc_check(out, sm.count, dt, IBC_OP_AVG, 7, 8, &res);
			good &= res.wrong == 1 && res.first_index == k;
		}
		/* sum is exact: 1 ulp off fails */
		sim_free(&sm);
		if (sim_init(&sm, dt, IBC_OP_SUM, 7, 257, 8) != 0) {
			good = 0;
			sim_free(&sm);
			continue;
		}
		out = sim_reduce(&sm, ORDER_LEFT, &rs);
		store_bits(out, 3, size,
			   from_ordered(ordered(load_bits(out, 3, size), size) + 1, size));
		ibc_check(out, sm.count, dt, IBC_OP_SUM, 7, 8, &res);
		good &= res.wrong == 1 && res.first_index == 3;
		sim_free(&sm);
	}
	ok(good, "avg on floating types passes within 2 ulp, fails at 3; sum fails at 1 ulp");
}

/* 64 MiB with 8 ranks, as the driver's checks: report the cost. */
static void test_large(void)
{
	static const enum ibc_dtype dts[] = {IBC_FLOAT, IBC_INT8, IBC_HALF};
	size_t bytes = 64u << 20;
	unsigned char *acc = malloc(bytes), *in = malloc(bytes);
	int good = 1;

	if (!acc || !in) {
		free(acc), free(in);
		tap_skip(1, "cannot allocate 2 x 64 MiB");
		return;
	}
	for (size_t t = 0; t < IBC_ARRAY_SIZE(dts); t++) {
		size_t count = bytes / ibc_dtype_size(dts[t]);
		struct ibc_check_result res;
		double t0 = ibc_now_s(), t1, t2;

		ibc_fill(acc, 0, count, dts[t], IBC_OP_SUM, 0, 8, 3);
		for (int r = 1; r < 8; r++) {
			ibc_fill(in, 0, count, dts[t], IBC_OP_SUM, r, 8, 3);
			ibc_reduce(acc, acc, in, count, dts[t], IBC_OP_SUM);
		}
		t1 = ibc_now_s();
		ibc_check(acc, count, dts[t], IBC_OP_SUM, 8, 3, &res);
		t2 = ibc_now_s();
		diag("64 MiB %s sum, 8 ranks: fill+reduce %.3f s (%.1f ns/element/rank), check "
		     "%.3f s (%.2f ns/element)",
		     ibc_dtype_name(dts[t]), t1 - t0, (t1 - t0) / (double)count / 8 * 1e9, t2 - t1,
		     (t2 - t1) / (double)count * 1e9);
		good &= res.wrong == 0;
	}
	ok(good, "64 MiB all-reduce of 8 ranks checks clean (float, int8, half)");
	free(acc);
	free(in);
}

int main(void)
{
#if defined(IBC_DTYPE_TARGET)
	if (!__builtin_cpu_supports(IBC_DTYPE_TARGET))
		return tap_skip_all("CPU without " IBC_DTYPE_TARGET);
	diag("reductions built for %s only", IBC_DTYPE_TARGET);
#elif defined(IBC_DTYPE_BASELINE)
	diag("reductions built for the baseline only, software half conversions");
#endif
	test_names();
	test_half_known();
	test_bf16_known();
	test_exhaustive_16();
	test_rounding_sweep();
	test_f16c();
	test_reduce_reference();
	test_minmax_rule();
	test_reduce_finish();
	test_fill();
	test_allreduce_sim();
	test_corruption();
	test_poison();
	test_sensitivity();
	test_avg_tolerance();
	test_large();
	return tap_done();
}
