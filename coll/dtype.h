/* SPDX-License-Identifier: MIT */
/*
 * dtype.h - data types, reduction operators, host reductions and verifiable data
 * (docs/design.md#timing-and-checks).
 *
 * Reductions are vectorised loops compiled for several x86-64 levels and picked at run time
 * (target_clones): the default binary runs on any x86-64.
 *
 * Verifiable data: rank r's input element i is a small integer v(r, i) chosen per (dtype, op) so
 * that the reduced result is exact in every order of evaluation (sums stay inside the dtype's
 * exact-integer range, products are +-1 and 2, integer arithmetic wraps modulo 2^bits). The
 * check compares bit for bit, except avg on floating types (sum then one division): <= 2 ulp.
 * The scheme is coll/vdata.h, shared with the CUDA kernels (coll/cuda); this API is its host
 * side.
 */
#ifndef IBC_DTYPE_H
#define IBC_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* included by the CUDA sources (coll/cuda, coll/vdata.h) */
#endif

enum ibc_dtype {
	IBC_INT8,
	IBC_UINT8,
	IBC_INT32,
	IBC_UINT32,
	IBC_INT64,
	IBC_UINT64,
	IBC_HALF,
	IBC_BF16,
	IBC_FLOAT,
	IBC_DOUBLE,
	IBC_DTYPE_COUNT
};

enum ibc_op { IBC_OP_SUM, IBC_OP_PROD, IBC_OP_MIN, IBC_OP_MAX, IBC_OP_AVG, IBC_OP_COUNT };

size_t ibc_dtype_size(enum ibc_dtype dt);
const char *ibc_dtype_name(enum ibc_dtype dt); /* "float", "bfloat16", "int8" ... */
/* Accepts the names above plus nccl-tests aliases (int8/char, uint8, int32/int, uint32, int64,
 * uint64, half/float16/fp16, bfloat16/bf16, float/float32/fp32, double/float64/fp64).
 * Returns 0 or -EINVAL. */
int ibc_dtype_parse(const char *s, enum ibc_dtype *dt);
const char *ibc_op_name(enum ibc_op op); /* "sum", "prod", "min", "max", "avg" */
int ibc_op_parse(const char *s, enum ibc_op *op);
/* Comma-separated list of valid names, for error messages. */
const char *ibc_dtype_names(void);
const char *ibc_op_names(void);

/* dst[i] = a[i] OP b[i] for count elements. dst may alias a or b. For IBC_OP_AVG this is the
 * sum; call ibc_reduce_finish afterwards. */
void ibc_reduce(void *dst, const void *a, const void *b, size_t count, enum ibc_dtype dt,
		enum ibc_op op);
/* Final step of an all-reduce: avg divides by nranks (integers truncate toward zero as NCCL);
 * other ops do nothing. */
void ibc_reduce_finish(void *buf, size_t count, enum ibc_dtype dt, enum ibc_op op, int nranks);

/* half / bfloat16 conversions, round to nearest even; NaN stays NaN. */
float ibc_half_to_float(uint16_t h);
uint16_t ibc_float_to_half(float f);
float ibc_bf16_to_float(uint16_t h);
uint16_t ibc_float_to_bf16(float f);

/* Fill rank's input with v(rank, i) for i in [first, first+count) (first lets callers fill a
 * slice). seed varies the data between check iterations. */
void ibc_fill(void *buf, size_t first, size_t count, enum ibc_dtype dt, enum ibc_op op, int rank,
	      int nranks, uint64_t seed);
/* Fill with a poison pattern that never equals a valid result (to catch unwritten output). */
void ibc_poison(void *buf, size_t count, enum ibc_dtype dt);

struct ibc_check_result {
	size_t wrong; /* number of wrong elements */
	size_t first_index; /* first wrong element (valid when wrong > 0) */
	char expected[64]; /* expected and got values of that element, printed */
	char got[64];
};
/* Print one element given by its bits (the low ibc_dtype_size(dt) bytes of bits) in the
 * dtype's natural format, as ibc_check reports expected and got values. */
void ibc_dtype_format(char *out, size_t len, enum ibc_dtype dt, uint64_t bits);
/* 1 when bits (an element of dt, in the low bytes) is a NaN; 0 for integer types */
int ibc_dtype_is_nan(enum ibc_dtype dt, uint64_t bits);

/* Compare buf (the all-reduce output of count elements) against the exact reference. */
void ibc_check(const void *buf, size_t count, enum ibc_dtype dt, enum ibc_op op, int nranks,
	       uint64_t seed, struct ibc_check_result *res);

#ifdef __cplusplus
}
#endif

#endif
