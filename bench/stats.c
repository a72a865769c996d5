/* SPDX-License-Identifier: MIT */
/*
 * stats.c - statistics over the slowest rank of every iteration (stats.h).
 */
#include "stats.h"
#include "ibc_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Linear interpolation between the closest ranks of sorted[0..n-1]. */
static double pct(const double *sorted, int n, double p)
{
	double idx = p * (n - 1);
	int lo = (int)floor(idx), hi = (int)ceil(idx);

	return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

/* The rank whose times add up to the most (the first of equals). */
static int slowest_rank(const double *times, int nranks, int iters, size_t stride)
{
	double best = -1;
	int i, r, slowest = 0;

	for (r = 0; r < nranks; r++) {
		const double *row = times + (size_t)r * stride;
		double m = 0;

		for (i = 0; i < iters; i++)
			m += row[i];
		if (m > best) {
			best = m;
			slowest = r;
		}
	}
	return slowest;
}

int bench__stats_compute_alloc(const double *times, int nranks, int iters, size_t stride,
			       void *(*alloc)(size_t), struct bench_stats *s)
{
	double *worst;
	int i, r;

	memset(s, 0, sizeof(*s));
	s->slowest = -1;
	if (nranks < 1 || iters < 1 || stride < (size_t)iters) {
		ibc_err_set("statistics: %d ranks x %d iterations (row stride %zu): nothing to do",
			    nranks, iters, stride);
		return -EINVAL;
	}
	worst = alloc(sizeof(double) * (size_t)iters);
	if (!worst) {
		ibc_err_set("statistics: no memory for %d iterations", iters);
		return -ENOMEM;
	}
	for (i = 0; i < iters; i++) {
		worst[i] = 0;
		for (r = 0; r < nranks; r++)
			worst[i] = IBC_MAX(worst[i], times[(size_t)r * stride + (size_t)i]);
		s->mean += worst[i];
	}
	s->mean /= iters;
	qsort(worst, (size_t)iters, sizeof(double), cmp_double);
	s->min = worst[0];
	s->max = worst[iters - 1];
	s->p50 = pct(worst, iters, 0.5);
	s->p99 = pct(worst, iters, 0.99);
	s->slowest = slowest_rank(times, nranks, iters, stride);
	free(worst);
	return 0;
}

int bench__stats_compute(const double *times, int nranks, int iters, size_t stride,
			 struct bench_stats *s)
{
	return bench__stats_compute_alloc(times, nranks, iters, stride, malloc, s);
}

void bench__stats_div(struct bench_stats *s, double div)
{
	s->mean /= div;
	s->min /= div;
	s->p50 /= div;
	s->p99 /= div;
	s->max /= div;
}
