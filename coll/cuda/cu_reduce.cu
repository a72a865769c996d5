/* SPDX-License-Identifier: MIT */
/*
 * cu_reduce.cu - reduction kernels, one per (dtype, op), and the avg division.
 *
 * Same results as dtype.c's ibc_reduce / ibc_reduce_finish, bit for bit:
 *  - integers: + and * in the unsigned type (signed types wrap as unsigned), min/max compare;
 *  - float/double: one IEEE operation, round to nearest even (no contraction: there is only
 *    one operation per element); min/max are (x < y ? x : y) and (x > y ? x : y), the CPU's
 *    expression: a NaN in b is returned as is, a NaN in a is dropped, +0/-0 return b;
 *  - half/bfloat16: widened to float, one float operation, rounded once to nearest even
 *    (__floats2half2_rn / __floats2bfloat162_rn), which equals the correctly rounded 16-bit
 *    result as on the CPU; min/max compare in float and copy the 16-bit operand.
 *    Differences only for NaN payloads (the GPU returns the canonical NaN); the verifiable
 *    data never holds a NaN.
 *
 * Memory access: when dst, a and b share their offset modulo 16 bytes, a scalar head brings
 * them to 16-byte alignment, the body moves 16-byte vectors (CU_UNROLL of each operand in
 * flight per thread before the first use), a scalar tail finishes; otherwise every element is
 * scalar (still coalesced). Grid-stride loops over a grid of at most sms * CU_BLOCKS_PER_SM
 * blocks of CU_THREADS threads. Plain (coherent) loads: dst may alias a or b, so the
 * read-only path (ld.global.nc) is not allowed.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "cu_int.h"
#include "vdata.h"

/* ---- element operations ---- */

/* Every dtype, in enum ibc_dtype order: X(dtype, storage type, integer arithmetic type). */
#define CU_DTYPES(X)                                                                               \
	X(IBC_INT8, int8_t, uint8_t)                                                               \
	X(IBC_UINT8, uint8_t, uint8_t)                                                             \
	X(IBC_INT32, int32_t, uint32_t)                                                            \
	X(IBC_UINT32, uint32_t, uint32_t)                                                          \
	X(IBC_INT64, int64_t, uint64_t)                                                            \
	X(IBC_UINT64, uint64_t, uint64_t)                                                          \
	X(IBC_HALF, uint16_t, uint16_t)                                                            \
	X(IBC_BF16, uint16_t, uint16_t)                                                            \
	X(IBC_FLOAT, float, float)                                                                 \
	X(IBC_DOUBLE, double, double)

#define CU_DT_ID(D, TT, UU) D,
static constexpr int cu_dt_ids[] = {CU_DTYPES(CU_DT_ID)};

static constexpr bool cu_dt_in_order(int k)
{
	return k == IBC_DTYPE_COUNT || (cu_dt_ids[k] == k && cu_dt_in_order(k + 1));
}
static_assert(sizeof(cu_dt_ids) / sizeof(cu_dt_ids[0]) == IBC_DTYPE_COUNT && cu_dt_in_order(0),
	      "CU_DTYPES lists every dtype in enum order (the launch tables index by dtype)");
static_assert(IBC_OP_SUM == 0 && IBC_OP_PROD == 1 && IBC_OP_MIN == 2 && IBC_OP_MAX == 3 &&
		  IBC_OP_AVG == 4 && IBC_OP_COUNT == 5,
	      "CU_REDUCE_ROW lists the ops in enum ibc_op order");

template <int DT> struct cu_dt;
#define CU_DT(D, TT, UU)                                                                           \
	template <> struct cu_dt<D> {                                                              \
		typedef TT T; /* storage */                                                        \
		typedef UU U; /* integer arithmetic (wraps) */                                     \
	};
CU_DTYPES(CU_DT)

static __device__ __forceinline__ float2 cu_widen2(int dt, uint32_t w)
{
	__half2_raw hr;
	__nv_bfloat162_raw br;

	if (dt == IBC_HALF) {
		hr.x = (unsigned short)(w & 0xffff);
		hr.y = (unsigned short)(w >> 16);
		return __half22float2(__half2(hr));
	}
	br.x = (unsigned short)(w & 0xffff);
	br.y = (unsigned short)(w >> 16);
	return __bfloat1622float2(__nv_bfloat162(br));
}

static __device__ __forceinline__ uint32_t cu_narrow2(int dt, float lo, float hi)
{
	if (dt == IBC_HALF) {
		__half2_raw r = (__half2_raw)__floats2half2_rn(lo, hi);

		return (uint32_t)r.x | (uint32_t)r.y << 16;
	}
	__nv_bfloat162_raw r = (__nv_bfloat162_raw)__floats2bfloat162_rn(lo, hi);

	return (uint32_t)r.x | (uint32_t)r.y << 16;
}

/* Two 16-bit floating values packed in a word (low half first). */
template <int DT, int OP>
static __device__ __forceinline__ uint32_t cu_op16x2(uint32_t a, uint32_t b)
{
	float2 x = cu_widen2(DT, a), y = cu_widen2(DT, b);

	if constexpr (OP == IBC_OP_SUM || OP == IBC_OP_AVG)
		return cu_narrow2(DT, x.x + y.x, x.y + y.y);
	else if constexpr (OP == IBC_OP_PROD)
		return cu_narrow2(DT, x.x * y.x, x.y * y.y);
	else if constexpr (OP == IBC_OP_MIN)
		return (x.x < y.x ? a & 0xffff : b & 0xffff) | ((x.y < y.y ? a : b) & 0xffff0000u);
	else
		return (x.x > y.x ? a & 0xffff : b & 0xffff) | ((x.y > y.y ? a : b) & 0xffff0000u);
}

template <int DT, int OP>
static __device__ __forceinline__ typename cu_dt<DT>::T cu_op(typename cu_dt<DT>::T x,
							      typename cu_dt<DT>::T y)
{
	typedef typename cu_dt<DT>::T T;
	typedef typename cu_dt<DT>::U U;

	if constexpr (DT == IBC_HALF || DT == IBC_BF16) {
		return (T)cu_op16x2<DT, OP>(x, y);
	} else if constexpr (OP == IBC_OP_SUM || OP == IBC_OP_AVG) {
		return (T)((U)x + (U)y);
	} else if constexpr (OP == IBC_OP_PROD) {
		return (T)((U)x * (U)y);
	} else if constexpr (OP == IBC_OP_MIN) {
		return x < y ? x : y;
	} else {
		return x > y ? x : y;
	}
}

/* One 16-byte vector of each operand. */
template <int DT, int OP> static __device__ __forceinline__ uint4 cu_op_vec(uint4 a, uint4 b)
{
	typedef typename cu_dt<DT>::T T;
	constexpr int n = 16 / sizeof(T);
	union {
		uint4 v;
		uint32_t w[4];
		T e[n];
	} x, y, r;

	x.v = a;
	y.v = b;
	if constexpr (DT == IBC_HALF || DT == IBC_BF16) {
#pragma unroll
		for (int k = 0; k < 4; k++)
			r.w[k] = cu_op16x2<DT, OP>(x.w[k], y.w[k]);
	} else {
#pragma unroll
		for (int k = 0; k < n; k++)
			r.e[k] = cu_op<DT, OP>(x.e[k], y.e[k]);
	}
	return r.v;
}

/* ---- the kernel ---- */

/* Elements [0, head) and [head + nvec * V, count) are scalar, the nvec vectors between are
 * 16-byte aligned in dst, a and b. */
template <int DT, int OP>
__global__ void __launch_bounds__(CU_THREADS, CU_BLOCKS_PER_SM)
	cu_reduce_kernel(typename cu_dt<DT>::T *dst, const typename cu_dt<DT>::T *a,
		     const typename cu_dt<DT>::T *b, size_t count, size_t head, size_t nvec)
{
	typedef typename cu_dt<DT>::T T;
	constexpr size_t V = 16 / sizeof(T);
	const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const size_t stride = (size_t)gridDim.x * blockDim.x;
	const size_t tail = head + nvec * V;
	uint4 *d4 = (uint4 *)(dst + head);
	const uint4 *a4 = (const uint4 *)(a + head), *b4 = (const uint4 *)(b + head);

	for (size_t i = gid; i < head; i += stride)
		dst[i] = cu_op<DT, OP>(a[i], b[i]);
	for (size_t i = tail + gid; i < count; i += stride)
		dst[i] = cu_op<DT, OP>(a[i], b[i]);
	for (size_t i = gid; i < nvec; i += stride * CU_UNROLL) {
		uint4 x[CU_UNROLL], y[CU_UNROLL];

#pragma unroll
		for (int u = 0; u < CU_UNROLL; u++) {
			size_t k = i + u * stride;

			if (k < nvec) {
				x[u] = a4[k];
				y[u] = b4[k];
			}
		}
#pragma unroll
		for (int u = 0; u < CU_UNROLL; u++) {
			size_t k = i + u * stride;

			if (k < nvec)
				d4[k] = cu_op_vec<DT, OP>(x[u], y[u]);
		}
	}
}

template <int DT, int OP>
static cudaError_t cu_reduce_typed(const struct cu_launch *l, void *dst, const void *a,
				   const void *b, size_t count)
{
	typedef typename cu_dt<DT>::T T;
	constexpr size_t V = 16 / sizeof(T);
	uintptr_t mis = (uintptr_t)dst & 15;
	size_t head = count, nvec = 0;
	unsigned grid;

	if (((uintptr_t)a & 15) == mis && ((uintptr_t)b & 15) == mis && mis % sizeof(T) == 0) {
		head = ((16 - mis) & 15) / sizeof(T);
		if (head > count)
			head = count;
		nvec = (count - head) / V;
	}
	/* one vector per thread until the grid is full (small chunks spread over the SMs), then
	 * CU_UNROLL vectors per thread per step */
	grid = cu_grid(l, nvec ? nvec : count, 1);
	cu_reduce_kernel<DT, OP><<<grid, CU_THREADS, 0, l->stream>>>(
	    (T *)dst, (const T *)a, (const T *)b, count, head, nvec);
	return cudaGetLastError();
}

typedef cudaError_t (*cu_reduce_fn)(const struct cu_launch *l, void *dst, const void *a,
				    const void *b, size_t count);

/* [dtype][op] as dtype.c's reduce table; avg reduces as sum (finish divides). */
#define CU_REDUCE_ROW(D, TT, UU)                                                                   \
	{cu_reduce_typed<D, IBC_OP_SUM>, cu_reduce_typed<D, IBC_OP_PROD>,                          \
	 cu_reduce_typed<D, IBC_OP_MIN>, cu_reduce_typed<D, IBC_OP_MAX>,                           \
	 cu_reduce_typed<D, IBC_OP_SUM>},
static const cu_reduce_fn cu_reduce_table[IBC_DTYPE_COUNT][IBC_OP_COUNT] = {
    CU_DTYPES(CU_REDUCE_ROW)};

cudaError_t cu_reduce_launch(const struct cu_launch *l, void *dst, const void *a, const void *b,
			     size_t count, int dt, int op)
{
	if (!count)
		return cudaSuccess;
	if (!vd_valid(dt, op))
		return cudaErrorInvalidValue;
	return cu_reduce_table[dt][op](l, dst, a, b, count);
}

/* ---- avg: the final division (ibc_reduce_finish) ---- */

/* vdata.h's division, the dtype a constant: one kernel per dtype, as the reductions. */
template <int DT>
__global__ void __launch_bounds__(CU_THREADS, CU_BLOCKS_PER_SM)
	cu_finish_kernel(void *buf, size_t count, int n)
{
	const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = gid; i < count; i += stride)
		vd_div_at(buf, i, DT, n);
}

template <int DT>
static cudaError_t cu_finish_typed(const struct cu_launch *l, void *buf, size_t count, int n)
{
	cu_finish_kernel<DT><<<cu_grid(l, count, 1), CU_THREADS, 0, l->stream>>>(buf, count, n);
	return cudaGetLastError();
}

typedef cudaError_t (*cu_finish_fn)(const struct cu_launch *l, void *buf, size_t count, int n);

#define CU_FINISH_ENTRY(D, TT, UU) cu_finish_typed<D>,
static const cu_finish_fn cu_finish_table[IBC_DTYPE_COUNT] = {CU_DTYPES(CU_FINISH_ENTRY)};

cudaError_t cu_finish_launch(const struct cu_launch *l, void *buf, size_t count, int dt, int op,
			     int nranks)
{
	if (op != IBC_OP_AVG || nranks <= 1 || !count)
		return cudaSuccess;
	if ((unsigned)dt >= IBC_DTYPE_COUNT)
		return cudaErrorInvalidValue;
	return cu_finish_table[dt](l, buf, count, nranks);
}
