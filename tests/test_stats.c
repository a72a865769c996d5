/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - the statistics of bench/stats.h on known inputs (per iteration the slowest
 * rank; mean, min, p50, p99, max; the slowest rank, rows at a stride inside larger records)
 * and when the scratch allocation fails: an error, never uninitialised statistics.
 */
#include "ibc_common.h"
#include "stats.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(1, fabs(b));
}

/* 3 ranks x 5 iterations: the slowest per iteration is 2 3 5 4 10. */
static const double known[3][5] = {
	{ 1, 2, 3, 4, 5 },
	{ 2, 1, 5, 1, 1 },
	{ 0, 3, 1, 2, 10 },
};

static void known_values(void)
{
	struct bench_stats s;
	int rc = bench__stats_compute(&known[0][0], 3, 5, 5, &s);

	is_int(rc, 0, "3 ranks x 5 iterations");
	ok(near(s.mean, 4.8), "mean of the per-iteration slowest: 4.8 (%g)", s.mean);
	ok(s.min == 2 && s.max == 10, "min 2, max 10 (%g, %g)", s.min, s.max);
	ok(near(s.p50, 4), "p50 4 (%g)", s.p50);
	ok(near(s.p99, 9.8), "p99 interpolated: 5 + 0.96 x 5 = 9.8 (%g)", s.p99);
	is_int(s.slowest, 2, "slowest rank: the largest mean (rank 2)");
}

static void at_a_stride(void)
{
	double rows[3 * 8];
	struct bench_stats s;
	int r, i;

	for (i = 0; i < 3 * 8; i++)
		rows[i] = 1e9; /* what lies between the rows must not count */
	for (r = 0; r < 3; r++)
		for (i = 0; i < 5; i++)
			rows[r * 8 + i] = known[r][i];
	is_int(bench__stats_compute(rows, 3, 5, 8, &s), 0, "rows at a stride of 8 samples");
	ok(near(s.mean, 4.8) && s.max == 10 && s.slowest == 2,
	   "the same statistics as back to back (mean %g, max %g, slowest %d)", s.mean, s.max,
	   s.slowest);
}

static void more_inputs(void)
{
	double t[2 * 100], tie[2][3] = { { 1, 2, 3 }, { 3, 2, 1 } }, one[3] = { 7, 4, 9 };
	struct bench_stats s;
	int i;

	for (i = 0; i < 100; i++) {
		t[i] = i + 1; /* rank 0: 1 .. 100 */
		t[100 + i] = 0.5; /* rank 1 never the slowest */
	}
	bench__stats_compute(t, 2, 100, 100, &s);
	ok(near(s.mean, 50.5) && near(s.p50, 50.5) && near(s.p99, 99.01) && s.min == 1 &&
		   s.max == 100 && s.slowest == 0,
	   "1..100: mean 50.5, p50 50.5, p99 99.01, min 1, max 100, slowest rank 0");
	bench__stats_compute(&tie[0][0], 2, 3, 3, &s);
	ok(s.slowest == 0 && near(s.mean, 8.0 / 3), "equal means: the lower rank is named");
	bench__stats_compute(one, 3, 1, 1, &s);
	ok(s.mean == 9 && s.min == 9 && s.p50 == 9 && s.p99 == 9 && s.max == 9 && s.slowest == 2,
	   "one iteration: every statistic is the slowest rank's time");
	bench__stats_div(&s, 2);
	ok(s.mean == 4.5 && s.min == 4.5 && s.p50 == 4.5 && s.p99 == 4.5 && s.max == 4.5,
	   "div halves every time (ping-pong: half a round trip)");
}

static int allocs;

static void *failing_alloc(size_t n)
{
	allocs++;
	return NULL;
}

static void *counting_alloc(size_t n)
{
	allocs++;
	return malloc(n);
}

static void alloc_failure(void)
{
	struct bench_stats s;
	int rc;

	memset(&s, 0x7f, sizeof(s)); /* what an uninitialised stack variable might hold */
	allocs = 0;
	rc = bench__stats_compute_alloc(&known[0][0], 3, 5, 5, failing_alloc, &s);
	is_int(rc, -ENOMEM, "allocation failure: -ENOMEM, not silence");
	is_int(allocs, 1, "the scratch array was asked for once");
	ok(s.mean == 0 && s.min == 0 && s.p50 == 0 && s.p99 == 0 && s.max == 0 && s.slowest == -1,
	   "allocation failure: the statistics are initialised (zeros, slowest -1)");
	ok(strstr(ibc_err_get(), "no memory") != NULL, "and the error says why (%s)",
	   ibc_err_get());
	allocs = 0;
	rc = bench__stats_compute_alloc(&known[0][0], 3, 5, 5, counting_alloc, &s);
	ok(rc == 0 && allocs == 1 && near(s.mean, 4.8), "with memory: the same values");
	memset(&s, 0x7f, sizeof(s));
	rc = bench__stats_compute(&known[0][0], 3, 0, 5, &s);
	ok(rc == -EINVAL && s.max == 0 && s.slowest == -1, "0 iterations: -EINVAL, initialised");
	rc = bench__stats_compute(&known[0][0], 0, 5, 5, &s);
	ok(rc == -EINVAL, "0 ranks: -EINVAL");
	rc = bench__stats_compute(&known[0][0], 3, 5, 4, &s);
	ok(rc == -EINVAL, "a stride shorter than a row: -EINVAL");
}

int main(void)
{
	known_values();
	at_a_stride();
	more_inputs();
	alloc_failure();
	return tap_done();
}
