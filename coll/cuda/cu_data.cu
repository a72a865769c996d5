/* SPDX-License-Identifier: MIT */
/*
 * cu_data.cu - verifiable data on the GPU: fill, poison and check kernels computing exactly
 * what ibc_fill, ibc_poison and ibc_check compute on the CPU: the value scheme is the same
 * source, coll/vdata.h, compiled for the device. One kernel each, the dtype a run-time
 * argument (uniform across the grid): these kernels are bound by the hashing, not by memory.
 *
 * check: each thread counts its wrong elements and remembers its first (its indices grow),
 * then adds the count to out[0] and takes the minimum index into out[1] with one atomic each.
 */
#include <stdint.h>

#include "cu_int.h"
#include "vdata.h"

__global__ void __launch_bounds__(CU_THREADS, CU_BLOCKS_PER_SM)
	cu_fill_kernel(void *buf, size_t count, struct vd v, uint64_t kr, uint64_t kr1, int rank)
{
	const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const size_t stride = (size_t)gridDim.x * blockDim.x;
	const size_t size = vd_size(v.dt);

	for (size_t i = gid; i < count; i += stride)
		vd_store_bits(buf, i, size,
			      vd_int_to_bits(v.dt, vd_value_at(&v, kr, kr1, rank, i)));
}

__global__ void __launch_bounds__(CU_THREADS, CU_BLOCKS_PER_SM)
	cu_poison_kernel(void *buf, size_t count, int dt)
{
	const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const size_t stride = (size_t)gridDim.x * blockDim.x;
	const size_t size = vd_size(dt);
	const uint64_t bits = vd_poison_bits(dt);

	for (size_t i = gid; i < count; i += stride)
		vd_store_bits(buf, i, size, bits);
}

__global__ void __launch_bounds__(CU_THREADS, CU_BLOCKS_PER_SM)
	cu_check_kernel(const void *buf, size_t count, struct vd v, uint64_t k0, uint64_t kn,
		    unsigned long long *out)
{
	const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const size_t stride = (size_t)gridDim.x * blockDim.x;
	const size_t size = vd_size(v.dt);
	unsigned long long wrong = 0, first = ~0ull;

	for (size_t i = gid; i < count; i += stride) {
		uint64_t want = vd_want(&v, k0, kn, i);

		if (!vd_bad(&v, want, vd_load_bits(buf, i, size)))
			continue;
		if (!wrong++)
			first = i;
	}
	if (wrong) {
		atomicAdd(&out[0], wrong);
		atomicMin(&out[1], first);
	}
}

/* The scheme's parameters for a launch; cudaErrorInvalidValue for an unknown dtype or op. */
static cudaError_t cu_vd(struct vd *v, int dt, int op, int nranks, uint64_t seed)
{
	if (!vd_valid(dt, op))
		return cudaErrorInvalidValue;
	vd_init(v, dt, op, nranks, seed);
	return cudaSuccess;
}

cudaError_t cu_fill_launch(const struct cu_launch *l, void *buf, size_t count, int dt, int op,
			   int rank, int nranks, uint64_t seed)
{
	struct vd v;
	cudaError_t e = cu_vd(&v, dt, op, nranks, seed);

	if (e != cudaSuccess || !count)
		return e;
	cu_fill_kernel<<<cu_grid(l, count, 1), CU_THREADS, 0, l->stream>>>(
	    buf, count, v, vd_rank_key(seed, rank), vd_rank_key(seed, (int64_t)rank + 1), rank);
	return cudaGetLastError();
}

cudaError_t cu_poison_launch(const struct cu_launch *l, void *buf, size_t count, int dt)
{
	if (!vd_valid(dt, IBC_OP_SUM))
		return cudaErrorInvalidValue;
	if (!count)
		return cudaSuccess;
	cu_poison_kernel<<<cu_grid(l, count, 1), CU_THREADS, 0, l->stream>>>(buf, count, dt);
	return cudaGetLastError();
}

cudaError_t cu_check_launch(const struct cu_launch *l, const void *buf, size_t count, int dt,
			    int op, int nranks, uint64_t seed, unsigned long long *out)
{
	struct vd v;
	cudaError_t e = cu_vd(&v, dt, op, nranks, seed);

	if (e != cudaSuccess || !count)
		return e;
	cu_check_kernel<<<cu_grid(l, count, 1), CU_THREADS, 0, l->stream>>>(
	    buf, count, v, vd_rank_key(seed, 0), vd_check_kn(&v), out);
	return cudaGetLastError();
}
