/* SPDX-License-Identifier: MIT */
/*
 * cu_int.h - the kernels of the CUDA memory backend (libibcoll-cuda.so) and their launchers:
 *   cu_reduce.cu reduction kernels, one per (dtype, op), and avg kernels, one per dtype
 *   cu_data.cu   fill / poison / check kernels (the value scheme of coll/vdata.h)
 * called by the backend proper (cu_ctx.h: mem_cuda.cu, cu_mem.cu, cu_ops.cu).
 *
 * Launchers enqueue a kernel on a stream and return the launch's cudaError_t (they never
 * synchronise); the caller reports errors with the call's name, the GPU and the rank.
 * Everything here has hidden visibility: the library exports only ibcoll_mem_cuda.
 */
#ifndef IBC_CU_INT_H
#define IBC_CU_INT_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* Threads per block and the minimum resident blocks per SM the kernels are built for
 * (__launch_bounds__: at most 64 registers a thread, 1024 threads an SM). */
#define CU_THREADS	 512
#define CU_BLOCKS_PER_SM 2
/* 16-byte vectors each thread has in flight per operand (reduce kernels) */
#define CU_UNROLL 4

struct cu_launch {
	cudaStream_t stream;
	int sms; /* multiprocessors of the device: the grid is sms * CU_BLOCKS_PER_SM at most */
};

/* dst[i] = a[i] OP b[i] (avg: sum); dst may equal a or b. name: "reduce float sum". */
cudaError_t cu_reduce_launch(const struct cu_launch *l, void *dst, const void *a, const void *b,
			     size_t count, int dt, int op);
/* avg: buf[i] /= nranks, as ibc_reduce_finish; nothing for the other ops. */
cudaError_t cu_finish_launch(const struct cu_launch *l, void *buf, size_t count, int dt, int op,
			     int nranks);
cudaError_t cu_fill_launch(const struct cu_launch *l, void *buf, size_t count, int dt, int op,
			   int rank, int nranks, uint64_t seed);
cudaError_t cu_poison_launch(const struct cu_launch *l, void *buf, size_t count, int dt);
/* out[0] += wrong elements, out[1] = min(out[1], first wrong index); the caller zeroes out[0]
 * and sets out[1] = ~0 first. */
cudaError_t cu_check_launch(const struct cu_launch *l, const void *buf, size_t count, int dt,
			    int op, int nranks, uint64_t seed, unsigned long long *out);

/* Grid for work items of which each thread takes per_thread at a time. */
static inline unsigned cu_grid(const struct cu_launch *l, size_t items, size_t per_thread)
{
	size_t per_block = (size_t)CU_THREADS * per_thread;
	size_t want = (items + per_block - 1) / per_block;
	size_t cap = (size_t)(l->sms > 0 ? l->sms : 1) * CU_BLOCKS_PER_SM;

	if (want < 1)
		want = 1;
	return (unsigned)(want < cap ? want : cap);
}

#endif
