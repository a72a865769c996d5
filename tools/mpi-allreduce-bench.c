/* SPDX-License-Identifier: MIT */
/*
 * mpi-allreduce-bench.c - MPI_Allreduce timed the way ibcoll times its all-reduce, so the two
 * can be compared row by row (tools/compare-mpi builds it, the CMake target mpi_allreduce_bench, and runs it under mpirun).
 *
 *   mpi-allreduce-bench [-b MIN] [-e MAX] [-f FACTOR] [-w WARMUP] [-n ITERS]
 *
 * Float sum, out of place. Per size: one checked call (inputs are small integers, so the sum is
 * exact in any order; a wrong element aborts the job with exit code 1), WARMUP untimed calls,
 * one barrier, then ITERS back-to-back calls, each timed on every rank. After the loop rank 0
 * gathers the times (MPI_Reduce, MPI_MAX) so that each iteration counts its slowest rank, as
 * ibcoll's driver does; it prints the mean, min, median (linear interpolation), max of those
 * and algbw = bytes / mean, busbw = algbw * 2(p-1)/p (GB = 1e9 bytes).
 *
 * Output: CSV on stdout, one header line, one row per size; diagnostics on stderr.
 * Exit codes as ibcoll's: 0 ok, 1 wrong result, 2 usage error, 3 runtime failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

struct mab_cfg {
	uint64_t min_bytes, max_bytes, factor;
	long warmup, iters;
};

struct mab_bufs {
	float *in, *out;       /* owned */
	double *times, *worst; /* owned: this rank's per-iteration times; rank 0: the maxima */
};

struct mab_stats {
	double mean, min, p50, max;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mpi-allreduce-bench [-b MIN] [-e MAX] [-f FACTOR] [-w WARMUP] "
		   "[-n ITERS]\n"
		   "  MPI_Allreduce (float, sum, out of place); per iteration the slowest rank's\n"
		   "  time counts. SIZE takes K/M/G (binary). Defaults: -b 1K -e 64M -f 2 -w 5 "
		   "-n 20\n");
}

/* "64M" -> 67108864. Returns 0 or -EINVAL; never narrows before checking. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	default:
		break;
	}
	if (*end != '\0' || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = (uint64_t)v * mul;
	return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Returns 0, or 2 (usage error) after naming the flag. */
static int parse_args(int argc, char **argv, struct mab_cfg *c, int rank)
{
	int opt, bad = 0;
	long f = 2;

	c->min_bytes = 1024;
	c->max_bytes = 64ull << 20;
	c->factor = 2;
	c->warmup = 5;
	c->iters = 20;
	while ((opt = getopt(argc, argv, "b:e:f:w:n:h")) != -1) {
		switch (opt) {
		case 'b':
			bad = parse_size(optarg, &c->min_bytes) ? 'b' : 0;
			break;
		case 'e':
			bad = parse_size(optarg, &c->max_bytes) ? 'e' : 0;
			break;
		case 'f':
			bad = parse_long(optarg, 2, 1024, &f) ? 'f' : 0;
			c->factor = (uint64_t)f;
			break;
		case 'w':
			bad = parse_long(optarg, 0, 1000000, &c->warmup) ? 'w' : 0;
			break;
		case 'n':
			bad = parse_long(optarg, 1, 1000000, &c->iters) ? 'n' : 0;
			break;
		case 'h':
			if (rank == 0)
				usage(stdout);
			return -1;
		default:
			bad = '?';
			break;
		}
		if (bad)
			break;
	}
	if (!bad && (c->min_bytes < sizeof(float) || c->max_bytes < c->min_bytes ||
		     c->max_bytes > (1ull << 32)))
		bad = 'e';
	if (bad && rank == 0) {
		if (bad != '?')
			fprintf(stderr,
				"mpi-allreduce-bench: bad value for -%c (sizes 4..4G, "
				"MIN <= MAX; -f 2..1024; -w 0..1e6; -n 1..1e6)\n",
				bad);
		usage(stderr);
	}
	return bad ? 2 : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double p)
{
	double idx = p * (double)(n - 1);
	long lo = (long)floor(idx), hi = (long)ceil(idx);

	return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - (double)lo);
}

/* worst: the per-iteration slowest-rank times; sorted in place. */
static void mab_stats(double *worst, long n, struct mab_stats *s)
{
	long i;

	s->mean = 0;
	for (i = 0; i < n; i++)
		s->mean += worst[i];
	s->mean /= (double)n;
	qsort(worst, (size_t)n, sizeof(double), cmp_double);
	s->min = worst[0];
	s->max = worst[n - 1];
	s->p50 = pct(worst, n, 0.5);
}

/* Rank r contributes (i % 61) + r + 1 at index i: small integers, exact in any order. */
static void fill(float *in, float *out, size_t count, int rank)
{
	size_t i;

	for (i = 0; i < count; i++) {
		in[i] = (float)((i % 61) + (size_t)rank + 1);
		out[i] = -1.0f;
	}
}

/* 0 if out holds the exact sum over nranks, else 1 after naming the first wrong element. */
static int check(const float *out, size_t count, int rank, int nranks)
{
	size_t i;

	for (i = 0; i < count; i++) {
		double base = (double)(i % 61) + 1;
		float exp = (float)(base * nranks + (double)nranks * (nranks - 1) / 2);

		if (out[i] != exp) {
			fprintf(stderr,
				"mpi-allreduce-bench: WRONG RESULT rank %d, %zu bytes, "
				"index %zu: expected %g, got %g\n",
				rank, count * sizeof(float), i, (double)exp, (double)out[i]);
			return 1;
		}
	}
	return 0;
}

/* One size: check, warm up, time. Rank 0 prints the row. Returns 0, 1 (wrong) or 3. */
static int run_size(const struct mab_cfg *c, struct mab_bufs *b, uint64_t bytes, int rank,
		    int nranks)
{
	size_t count = (size_t)(bytes / sizeof(float));
	struct mab_stats st;
	int wrong, any_wrong = 0;
	long i;

	fill(b->in, b->out, count, rank);
	if (MPI_Allreduce(b->in, b->out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD))
		return 3;
	wrong = check(b->out, count, rank, nranks);
	MPI_Allreduce(&wrong, &any_wrong, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	if (any_wrong)
		return 1;
	for (i = 0; i < c->warmup; i++)
		MPI_Allreduce(b->in, b->out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
	MPI_Barrier(MPI_COMM_WORLD);
	for (i = 0; i < c->iters; i++) {
		double t0 = MPI_Wtime();

		MPI_Allreduce(b->in, b->out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
		b->times[i] = (MPI_Wtime() - t0) * 1e6;
	}
	MPI_Reduce(b->times, b->worst, (int)c->iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	if (rank != 0)
		return 0;
	mab_stats(b->worst, c->iters, &st);
	{
		double algbw = (double)(count * sizeof(float)) / (st.mean * 1e3);
		double busbw = algbw * 2.0 * (nranks - 1) / nranks;

		printf("%zu,%zu,%d,%ld,%ld,%.3f,%.3f,%.3f,%.3f,%.4f,%.4f,ok\n",
		       count * sizeof(float), count, nranks, c->warmup, c->iters, st.mean, st.min,
		       st.p50, st.max, algbw, busbw);
		fflush(stdout);
	}
	return 0;
}

static int alloc_bufs(const struct mab_cfg *c, struct mab_bufs *b)
{
	size_t bytes = (size_t)c->max_bytes;

	memset(b, 0, sizeof(*b));
	b->in = malloc(bytes);
	b->out = malloc(bytes);
	b->times = calloc((size_t)c->iters, sizeof(double));
	b->worst = calloc((size_t)c->iters, sizeof(double));
	if (!b->in || !b->out || !b->times || !b->worst)
		return -ENOMEM;
	return 0;
}

static void free_bufs(struct mab_bufs *b)
{
	free(b->worst);
	free(b->times);
	free(b->out);
	free(b->in);
}

int main(int argc, char **argv)
{
	struct mab_cfg cfg;
	struct mab_bufs bufs;
	int rank, nranks, rc;
	uint64_t bytes;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	rc = parse_args(argc, argv, &cfg, rank);
	if (rc) {
		MPI_Finalize();
		return rc < 0 ? 0 : rc;
	}
	if (alloc_bufs(&cfg, &bufs)) {
		fprintf(stderr,
			"mpi-allreduce-bench: rank %d: out of memory for %" PRIu64 " bytes\n", rank,
			cfg.max_bytes);
		MPI_Abort(MPI_COMM_WORLD, 3);
	}
	if (rank == 0)
		printf("bytes,count,nranks,warmup,iters,time_us,time_min_us,time_p50_us,"
		       "time_max_us,algbw_GBps,busbw_GBps,check\n");
	for (bytes = cfg.min_bytes; bytes <= cfg.max_bytes; bytes *= cfg.factor) {
		rc = run_size(&cfg, &bufs, bytes - bytes % sizeof(float), rank, nranks);
		if (rc) {
			if (rank == 0)
				fprintf(stderr, "mpi-allreduce-bench: %s at %" PRIu64 " bytes\n",
					rc == 1 ? "wrong result" : "MPI_Allreduce failed", bytes);
			free_bufs(&bufs);
			MPI_Abort(MPI_COMM_WORLD, rc);
		}
		if (bytes > UINT64_MAX / cfg.factor)
			break;
	}
	free_bufs(&bufs);
	MPI_Finalize();
	return 0;
}
