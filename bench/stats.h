/* SPDX-License-Identifier: MIT */
/*
 * stats.h - per-iteration statistics of one measurement (docs/design.md#timing-and-checks): per
 * iteration the time of the slowest rank counts (a collective is as slow as its slowest member);
 * mean, min, p50, p99 and max over the iterations; the rank with the largest mean time is the
 * slowest rank. Internal to bench/; pure computation (no bootstrap, no I/O).
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>

struct bench_stats {
	double mean, min, p50, p99, max; /* microseconds */
	int slowest; /* rank with the largest mean; -1 when not computed */
};

/* times: nranks rows of iters samples (microseconds), row r at times + r * stride (stride >=
 * iters, in samples, so rows may sit inside larger records). *s is initialised first: on
 * failure it reads all zero with slowest -1. 0, -EINVAL (nranks or iters below 1, stride
 * below iters) or -ENOMEM; ibc_err_get() says why. */
int bench__stats_compute(const double *times, int nranks, int iters, size_t stride,
			 struct bench_stats *s);
/* The same with the scratch array's allocator given (its memory is released with free();
 * NULL is a failure): tests inject allocation failures through it. */
int bench__stats_compute_alloc(const double *times, int nranks, int iters, size_t stride,
			       void *(*alloc)(size_t), struct bench_stats *s);

/* Divide every time by div (sendrecv's ping-pong: half the round trip). */
void bench__stats_div(struct bench_stats *s, double div);

#endif
