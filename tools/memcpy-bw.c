/* SPDX-License-Identifier: MIT */
/*
 * memcpy-bw.c - the machine's memcpy bandwidth, the roofline tools/compare-mpi holds ibcoll's
 * shared-memory all-reduce against.
 *
 *   memcpy-bw [-s SIZE] [-n REPS] [-t THREADS]
 *
 * Each thread owns a SIZE-byte source and destination (default 64 MiB each, first touched by
 * that thread) and memcpy()s one into the other REPS times (default 20) after one untimed copy.
 * Threads are pinned to cores 0, 1, ... when the affinity call allows it and start each
 * repetition together behind a barrier.
 *
 * "Copy bandwidth" = bytes copied per second: threads x SIZE / (time of the slowest thread),
 * GB = 1e9 bytes. Every byte copied is read once and written once, so the memory traffic is
 * twice this figure (more if the CPU reads the destination line before writing it).
 *
 * Output: one CSV header line and one row per thread count from 1 to THREADS (default 2):
 *   threads,bytes_per_thread,reps,best_GBps,median_GBps,pinned
 * Exit codes: 0 ok, 2 usage error, 3 runtime failure (memory, threads).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MCB_MAX_THREADS 64
#define MCB_MAX_REPS	10000

struct mcb_cfg {
	size_t bytes;
	long reps;
	int threads;
};

struct mcb_shared {
	pthread_barrier_t start, stop;
	size_t bytes;
	long reps;
};

struct mcb_thread {
	struct mcb_shared *sh; /* borrowed */
	pthread_t tid;
	int idx;
	bool pinned;
	int err;      /* 0 or a positive errno */
	double *secs; /* owned: one time per repetition */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool pin_self(int core)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (ncpu < 1)
		return false;
	CPU_ZERO(&set);
	CPU_SET(core % (int)ncpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static void *copier(void *arg)
{
	struct mcb_thread *t = arg;
	struct mcb_shared *sh = t->sh;
	char *src, *dst;
	long r;

	t->pinned = pin_self(t->idx);
	src = malloc(sh->bytes);
	dst = malloc(sh->bytes);
	if (!src || !dst)
		t->err = ENOMEM;
	else {
		memset(src, 0x5a, sh->bytes); /* first touch by the copying thread */
		memset(dst, 0, sh->bytes);
		memcpy(dst, src, sh->bytes);
	}
	for (r = 0; r < sh->reps; r++) {
		double t0;

		pthread_barrier_wait(&sh->start);
		t0 = now_s();
		if (!t->err)
			memcpy(dst, src, sh->bytes);
		t->secs[r] = now_s() - t0;
		pthread_barrier_wait(&sh->stop);
	}
	if (!t->err && dst[sh->bytes - 1] != 0x5a)
		t->err = EIO;
	free(dst);
	free(src);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Per repetition the slowest thread's time counts; best and median over repetitions. */
static int measure(const struct mcb_cfg *c, int nthreads, double *best, double *median,
		   bool *pinned)
{
	struct mcb_shared sh = {.bytes = c->bytes, .reps = c->reps};
	struct mcb_thread th[MCB_MAX_THREADS];
	double *worst = calloc((size_t)c->reps, sizeof(double));
	int i, started = 0, rc = 0;
	long r;

	if (!worst)
		return -ENOMEM;
	pthread_barrier_init(&sh.start, NULL, (unsigned)nthreads);
	pthread_barrier_init(&sh.stop, NULL, (unsigned)nthreads);
	memset(th, 0, sizeof(th));
	for (i = 0; i < nthreads; i++) {
		th[i].sh = &sh;
		th[i].idx = i;
		th[i].secs = calloc((size_t)c->reps, sizeof(double));
		if (!th[i].secs || pthread_create(&th[i].tid, NULL, copier, &th[i])) {
			rc = -EAGAIN;
			break;
		}
		started++;
	}
	if (rc)
		return rc; /* the started threads wait at a barrier that cannot fill; main exits */
	*pinned = true;
	for (i = 0; i < started; i++) {
		pthread_join(th[i].tid, NULL);
		if (th[i].err)
			rc = -th[i].err;
		*pinned = *pinned && th[i].pinned;
		for (r = 0; r < c->reps; r++)
			if (th[i].secs[r] > worst[r])
				worst[r] = th[i].secs[r];
	}
	for (i = 0; i < nthreads; i++)
		free(th[i].secs);
	pthread_barrier_destroy(&sh.stop);
	pthread_barrier_destroy(&sh.start);
	qsort(worst, (size_t)c->reps, sizeof(double), cmp_double);
	*best = (double)nthreads * (double)c->bytes / worst[0] / 1e9;
	*median = (double)nthreads * (double)c->bytes / worst[c->reps / 2] / 1e9;
	free(worst);
	return rc;
}

static int parse_args(int argc, char **argv, struct mcb_cfg *c)
{
	unsigned long long v;
	char *end;
	int opt;

	c->bytes = 64ull << 20;
	c->reps = 20;
	c->threads = 2;
	while ((opt = getopt(argc, argv, "s:n:t:h")) != -1) {
		errno = 0;
		v = strtoull(optarg ? optarg : "", &end, 10);
		if (opt == 'h' || opt == '?' || errno || !optarg || end == optarg ||
		    optarg[0] == '-')
			goto bad;
		if (opt == 's') {
			if (*end == 'K' || *end == 'k')
				v <<= 10, end++;
			else if (*end == 'M' || *end == 'm')
				v <<= 20, end++;
			if (*end || v < 4096 || v > (4ull << 30))
				goto bad;
			c->bytes = (size_t)v;
		} else if (opt == 'n') {
			if (*end || v < 1 || v > MCB_MAX_REPS)
				goto bad;
			c->reps = (long)v;
		} else {
			if (*end || v < 1 || v > MCB_MAX_THREADS)
				goto bad;
			c->threads = (int)v;
		}
	}
	return 0;
bad:
	fprintf(stderr,
		"usage: memcpy-bw [-s SIZE (4K..4G, K/M suffix)] [-n REPS (1..%d)] "
		"[-t THREADS (1..%d)]\n",
		MCB_MAX_REPS, MCB_MAX_THREADS);
	return 2;
}

int main(int argc, char **argv)
{
	struct mcb_cfg cfg;
	int n, rc = parse_args(argc, argv, &cfg);

	if (rc)
		return rc;
	printf("threads,bytes_per_thread,reps,best_GBps,median_GBps,pinned\n");
	for (n = 1; n <= cfg.threads; n++) {
		double best, median;
		bool pinned;

		rc = measure(&cfg, n, &best, &median, &pinned);
		if (rc) {
			fprintf(stderr, "memcpy-bw: %d threads: %s\n", n, strerror(-rc));
			return 3;
		}
		printf("%d,%zu,%ld,%.2f,%.2f,%s\n", n, cfg.bytes, cfg.reps, best, median,
		       pinned ? "yes" : "no");
		fflush(stdout);
	}
	return 0;
}
