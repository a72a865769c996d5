/* SPDX-License-Identifier: MIT */
/*
 * reduce-bench.c - bandwidth of the host reductions (ibc_reduce) against memcpy.
 *
 *   reduce_bench [-s SIZE] [-n ITERS] [-d DTYPES|all] [-o OPS|all]
 *
 * For each dtype/op: dst = a OP b out of place, and a = a OP b in place (as in an all-reduce
 * step), over SIZE bytes per buffer (default 16M). GB/s = SIZE / time (1 GB = 1e9 bytes, the
 * all-reduce algbw convention); "mem GB/s" counts every byte moved (3 x SIZE for a reduction:
 * two reads and a write; 2 x SIZE for memcpy). Times are the best of ITERS runs, and the mean.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "ibc_common.h"

struct bench_cfg {
	uint64_t bytes; /* per buffer */
	long iters;
	int ndt, nop;
	enum ibc_dtype dt[IBC_DTYPE_COUNT];
	enum ibc_op op[IBC_OP_COUNT];
};

struct bench_bufs {
	void *a, *b, *dst; /* owned */
};

struct timing {
	double best_s, mean_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: reduce_bench [-s SIZE] [-n ITERS] [-d DTYPES|all] [-o OPS|all]\n"
		"  -s  bytes per buffer, suffix K/M/G (default 16M)\n"
		"  -n  timed iterations (default 20)\n"
		"  -d  comma-separated dtypes: %s (default float)\n"
		"  -o  comma-separated ops: %s (default sum)\n",
		ibc_dtype_names(), ibc_op_names());
}

static int parse_dtypes(const char *s, struct bench_cfg *cfg)
{
	const char *items[IBC_DTYPE_COUNT];
	char *store = NULL;
	int n, rc = 0;

	if (strcmp(s, "all") == 0) {
		for (int i = 0; i < IBC_DTYPE_COUNT; i++)
			cfg->dt[i] = (enum ibc_dtype)i;
		cfg->ndt = IBC_DTYPE_COUNT;
		return 0;
	}
	n = ibc_split_list(s, &store, items, IBC_DTYPE_COUNT);
	if (n < 0)
		return n;
	for (int i = 0; i < n && rc == 0; i++)
		rc = ibc_dtype_parse(items[i], &cfg->dt[i]);
	cfg->ndt = n;
	free(store);
	return rc;
}

static int parse_ops(const char *s, struct bench_cfg *cfg)
{
	const char *items[IBC_OP_COUNT];
	char *store = NULL;
	int n, rc = 0;

	if (strcmp(s, "all") == 0) {
		for (int i = 0; i < IBC_OP_COUNT; i++)
			cfg->op[i] = (enum ibc_op)i;
		cfg->nop = IBC_OP_COUNT;
		return 0;
	}
	n = ibc_split_list(s, &store, items, IBC_OP_COUNT);
	if (n < 0)
		return n;
	for (int i = 0; i < n && rc == 0; i++)
		rc = ibc_op_parse(items[i], &cfg->op[i]);
	cfg->nop = n;
	free(store);
	return rc;
}

static int parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
	int c;

	cfg->bytes = 16 << 20;
	cfg->iters = 20;
	cfg->ndt = 1;
	cfg->dt[0] = IBC_FLOAT;
	cfg->nop = 1;
	cfg->op[0] = IBC_OP_SUM;
	while ((c = getopt(argc, argv, "s:n:d:o:h")) != -1) {
		switch (c) {
		case 's':
			if (ibc_parse_size(optarg, &cfg->bytes) < 0 || cfg->bytes == 0 ||
			    cfg->bytes > (1ull << 36)) {
				fprintf(stderr, "reduce_bench: -s: expected a size in 1..64G\n");
				return -EINVAL;
			}
			break;
		case 'n':
			if (ibc_parse_int(optarg, 1, 1000000, &cfg->iters) < 0) {
				fprintf(stderr, "reduce_bench: -n: expected 1..1000000\n");
				return -EINVAL;
			}
			break;
		case 'd':
			if (parse_dtypes(optarg, cfg) < 0) {
				fprintf(stderr, "reduce_bench: -d: expected all or some of %s\n",
					ibc_dtype_names());
				return -EINVAL;
			}
			break;
		case 'o':
			if (parse_ops(optarg, cfg) < 0) {
				fprintf(stderr, "reduce_bench: -o: expected all or some of %s\n",
					ibc_op_names());
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(IBC_EXIT_OK);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	return 0;
}

static void *alloc_touched(size_t bytes)
{
	size_t rounded = (bytes + 4095) & ~(size_t)4095;
	void *p = aligned_alloc(4096, rounded);

	if (p)
		memset(p, 0, rounded);
	return p;
}

static void bufs_free(struct bench_bufs *bb)
{
	free(bb->dst);
	free(bb->b);
	free(bb->a);
}

static int bufs_alloc(struct bench_bufs *bb, size_t bytes)
{
	bb->a = alloc_touched(bytes);
	bb->b = alloc_touched(bytes);
	bb->dst = alloc_touched(bytes);
	if (!bb->a || !bb->b || !bb->dst) {
		bufs_free(bb);
		return -ENOMEM;
	}
	return 0;
}

enum bench_kind { BENCH_OUT, BENCH_IN, BENCH_MEMCPY };

static void run_once(const struct bench_bufs *bb, size_t count, size_t bytes, enum ibc_dtype dt,
		     enum ibc_op op, enum bench_kind kind)
{
	switch (kind) {
	case BENCH_OUT:
		ibc_reduce(bb->dst, bb->a, bb->b, count, dt, op);
		break;
	case BENCH_IN:
		ibc_reduce(bb->a, bb->a, bb->b, count, dt, op);
		break;
	case BENCH_MEMCPY:
		memcpy(bb->dst, bb->a, bytes);
		break;
	}
}

static struct timing time_it(const struct bench_bufs *bb, size_t count, size_t bytes,
			     enum ibc_dtype dt, enum ibc_op op, enum bench_kind kind, long iters)
{
	struct timing t = {1e30, 0};

	run_once(bb, count, bytes, dt, op, kind); /* warm up: page tables, caches, ifunc */
	for (long it = 0; it < iters; it++) {
		double t0 = ibc_now_s(), dt_s;

		run_once(bb, count, bytes, dt, op, kind);
		dt_s = ibc_now_s() - t0;
		t.mean_s += dt_s / (double)iters;
		if (dt_s < t.best_s)
			t.best_s = dt_s;
	}
	return t;
}

static void print_row(const char *what, const char *op, const char *place, size_t bytes,
		      struct timing t, int traffic)
{
	printf("%-9s %-5s %-6s %12zu %10.1f %10.1f %8.2f %8.2f\n", what, op, place, bytes,
	       t.best_s * 1e6, t.mean_s * 1e6, (double)bytes / t.best_s / 1e9,
	       (double)bytes * traffic / t.best_s / 1e9);
}

static void bench_one(const struct bench_cfg *cfg, struct bench_bufs *bb, enum ibc_dtype dt,
		      enum ibc_op op)
{
	size_t count = cfg->bytes / ibc_dtype_size(dt);
	size_t bytes = count * ibc_dtype_size(dt);
	struct timing t;

	/* valid data: no NaN, no subnormals */
	ibc_fill(bb->a, 0, count, dt, op, 0, 2, 1);
	ibc_fill(bb->b, 0, count, dt, op, 1, 2, 1);
	t = time_it(bb, count, bytes, dt, op, BENCH_OUT, cfg->iters);
	print_row(ibc_dtype_name(dt), ibc_op_name(op), "out", bytes, t, 3);
	t = time_it(bb, count, bytes, dt, op, BENCH_IN, cfg->iters);
	print_row(ibc_dtype_name(dt), ibc_op_name(op), "in", bytes, t, 3);
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct bench_bufs bb;
	struct timing t;

	if (parse_args(argc, argv, &cfg) < 0)
		return IBC_EXIT_USAGE;
	if (bufs_alloc(&bb, cfg.bytes) < 0) {
		fprintf(stderr, "reduce_bench: cannot allocate 3 x %" PRIu64 " bytes\n", cfg.bytes);
		return IBC_EXIT_ENV;
	}
	printf("# %-7s %-5s %-6s %12s %10s %10s %8s %8s\n", "dtype", "op", "place", "bytes",
	       "best_us", "mean_us", "GB/s", "mem_GB/s");
	t = time_it(&bb, 0, cfg.bytes, IBC_FLOAT, IBC_OP_SUM, BENCH_MEMCPY, cfg.iters);
	print_row("memcpy", "-", "out", cfg.bytes, t, 2);
	for (int d = 0; d < cfg.ndt; d++)
		for (int o = 0; o < cfg.nop; o++)
			bench_one(&cfg, &bb, cfg.dt[d], cfg.op[o]);
	bufs_free(&bb);
	return IBC_EXIT_OK;
}
