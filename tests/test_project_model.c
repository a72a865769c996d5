/* SPDX-License-Identifier: MIT */
/*
 * test_project_model.c - reports/cluster + project_model: tiers from the radix, scale
 * behaviour (time never falls as GPUs grow, ring latency linear, tree logarithmic), the
 * ring/tree crossover, bottleneck names, errors that name the value. No timed assertions.
 */
#include "tap.h"

#include "cluster.h"
#include "project_model.h"

#include <errno.h>
#include <math.h>

static const long counts[] = {8,    16,	  32,	 64,	128,   256,    512,    1024,  2048,
			      4096, 8192, 16384, 32768, 65536, 100000, 131072, 200000};
#define NCOUNTS ((int)(sizeof(counts) / sizeof(counts[0])))

static void test_tiers(void)
{
	is_int(rpt_cluster_tiers(1, 64), 0, "one endpoint needs no switch");
	is_int(rpt_cluster_tiers(64, 64), 1, "64 NICs: one 64-port switch");
	is_int(rpt_cluster_tiers(65, 64), 2, "65 NICs: two tiers");
	is_int(rpt_cluster_tiers(2048, 64), 2, "two tiers serve k^2/2 = 2048");
	is_int(rpt_cluster_tiers(2049, 64), 3, "2049 NICs: three tiers");
	is_int(rpt_cluster_tiers(65536, 64), 3, "three tiers serve k^3/4 = 65536");
	is_int(rpt_cluster_tiers(65537, 64), 4, "65537 NICs: four tiers");
	is_int(rpt_cluster_tiers(8192, 128), 2, "radix 128: two tiers serve 8192");
	is_int(rpt_cluster_tiers(200000, 128), 3, "radix 128: 200,000 NICs in three tiers");
}

/* Count in *bad the points of (algo a, 2^b bytes) on preset `name` where the time falls as
 * GPUs grow (or is not a number). */
static void falls(const struct rpt_cluster *c, const char *name, int a, int b, int *bad)
{
	double prev = 0;
	int i;

	for (i = 0; i < NCOUNTS; i++) {
		struct rpt_point pt;
		int rc =
		    rpt_project_point(c, (enum rpt_algo)a, counts[i], ldexp(1, b), &pt, NULL, 0);

		if (rc || !(pt.time_us >= prev) || !isfinite(pt.time_us)) {
			if ((*bad)++ < 5)
				diag("%s %s 2^%d B: %ld GPUs %.3f us < %.3f", name,
				     rpt_algo_name(a), b, counts[i], pt.time_us, prev);
		}
		prev = pt.time_us;
	}
}

static void test_monotonic(void)
{
	static const char *const names[] = {"h100-ndr", "h100-spectrumx"};
	int ni, a, b, bad = 0, points = 0;

	for (ni = 0; ni < 2; ni++) {
		struct rpt_cluster c;

		rpt_cluster_preset(names[ni], &c);
		for (a = 0; a < RPT_ALGO_COUNT; a++)
			for (b = 3; b <= 32; b++) {
				falls(&c, names[ni], a, b, &bad);
				points += NCOUNTS;
			}
	}
	is_int(bad, 0, "time never falls as GPUs grow (%d points, both presets)", points);
}

/* Latency growth, with switch hops made free so tier changes do not blur the shape. */
static void test_latency_shape(void)
{
	struct rpt_cluster c;
	struct rpt_point pt;
	double ring[16], tree[16];
	long p;
	int i, n = 0, ring_ok = 1, tree_ok = 1;

	rpt_cluster_preset("h100-ndr", &c);
	c.switch_latency_us = 0;
	for (p = 16; p <= 131072 && n < 16; p *= 2, n++) {
		rpt_project_point(&c, RPT_ALGO_RING, p, 8, &pt, NULL, 0);
		ring[n] = pt.latency_us;
		rpt_project_point(&c, RPT_ALGO_TREE, p, 8, &pt, NULL, 0);
		tree[n] = pt.latency_us;
	}
	/* ring: affine in p, so each doubling adds twice what the previous one added */
	for (i = 2; i < n; i++)
		if (fabs((ring[i] - ring[i - 1]) - 2 * (ring[i - 1] - ring[i - 2])) >
		    1e-6 * ring[i])
			ring_ok = 0;
	ok(ring_ok, "ring latency grows linearly with GPUs (%.1f us at 16, %.0f us at 131072)",
	   ring[0], ring[n - 1]);
	/* tree: each doubling adds the same (one more tree level, up and down) */
	for (i = 2; i < n; i++)
		if (fabs((tree[i] - tree[i - 1]) - (tree[1] - tree[0])) > 0.01 * tree[1])
			tree_ok = 0;
	ok(tree_ok, "tree latency grows logarithmically (%.1f us at 16, %.1f us at 131072)",
	   tree[0], tree[n - 1]);
	ok(tree[n - 1] < ring[n - 1] / 100, "at 131072 GPUs tree latency is far below ring's");
}

static void test_crossover(void)
{
	struct rpt_cluster c;
	enum rpt_algo fast;
	double b;
	int rc;

	rpt_cluster_preset("h100-ndr", &c);
	rc = rpt_project_crossover(&c, 1024, RPT_ALGO_TREE, RPT_ALGO_RING, &b, &fast);
	ok(rc == 0 && b > 1e6 && fast == RPT_ALGO_TREE,
	   "1024 GPUs: tree faster below a crossover of %.0f B", b);
	{
		struct rpt_point r, t;

		rpt_project_point(&c, RPT_ALGO_RING, 1024, b * 0.9, &r, NULL, 0);
		rpt_project_point(&c, RPT_ALGO_TREE, 1024, b * 0.9, &t, NULL, 0);
		ok(t.time_us < r.time_us, "just below the crossover tree wins");
		rpt_project_point(&c, RPT_ALGO_RING, 1024, b * 1.1, &r, NULL, 0);
		rpt_project_point(&c, RPT_ALGO_TREE, 1024, b * 1.1, &t, NULL, 0);
		ok(r.time_us < t.time_us, "just above it ring wins");
	}
	rc = rpt_project_crossover(&c, 8, RPT_ALGO_TREE, RPT_ALGO_RING, &b, &fast);
	ok(rc == 0 && b == 0 && fast == RPT_ALGO_RING, "one node: ring faster at every size");
}

static void expect_term(const struct rpt_cluster *c, enum rpt_algo a, long gpus, double bytes,
			enum rpt_term want, const char *what)
{
	struct rpt_point pt;
	int rc = rpt_project_point(c, a, gpus, bytes, &pt, NULL, 0);

	ok(rc == 0 && pt.bottleneck == want, "%s: bottleneck %s (got %s)", what,
	   rpt_term_name(want), rc ? "error" : rpt_term_name(pt.bottleneck));
}

static void test_bottlenecks(void)
{
	struct rpt_cluster c, x;

	rpt_cluster_preset("h100-ndr", &c);
	expect_term(&c, RPT_ALGO_RING, 1024, 8, RPT_TERM_LATENCY, "8 B on 1024 GPUs");
	expect_term(&c, RPT_ALGO_RING, 8, 4e9, RPT_TERM_NVLINK, "4 GB ring in one node");
	expect_term(&c, RPT_ALGO_HIER_TREE, 1024, 4e9, RPT_TERM_NIC, "4 GB hier-tree, 1024 GPUs");
	x = c;
	x.gpus_per_node = 1;
	x.nics_per_node = 4;
	expect_term(&x, RPT_ALGO_RING, 2, 4e9, RPT_TERM_PCIE, "1 GPU feeding 4 NICs");
	x = c;
	x.oversubscription = 4;
	expect_term(&x, RPT_ALGO_HIER_RING, 4096, 4e9, RPT_TERM_BISECTION,
		    "4:1 oversubscribed, 4096 GPUs");
	x = c;
	x.reduce_GBps = 10;
	expect_term(&x, RPT_ALGO_RING, 16, 4e9, RPT_TERM_REDUCTION, "10 GB/s reduction");
}

static void test_point_fields(void)
{
	struct rpt_cluster c;
	struct rpt_point pt;

	rpt_cluster_preset("h100-spectrumx", &c);
	rpt_project_point(&c, RPT_ALGO_RING, 64, 1 << 30, &pt, NULL, 0);
	ok(fabs(pt.time_us - pt.latency_us - pt.bandwidth_us) < 1e-9 * pt.time_us,
	   "time = latency + bandwidth");
	ok(fabs(pt.busbw_GBps - pt.algbw_GBps * 2 * 63 / 64) < 1e-9,
	   "busbw = algbw 2(p-1)/p (nccl-tests)");
	ok(fabs(pt.algbw_GBps - (1 << 30) / pt.time_us / 1e3) < 1e-9, "algbw = bytes / time");
	is_int(pt.nodes, 8, "64 GPUs = 8 nodes");
	rpt_project_point(&c, RPT_ALGO_TREE, 200000, 1 << 20, &pt, NULL, 0);
	is_int(pt.tiers, 3, "spectrumx: 200,000 GPUs in three tiers");
	rpt_cluster_preset("h100-ndr", &c);
	rpt_project_point(&c, RPT_ALGO_TREE, 200000, 1 << 20, &pt, NULL, 0);
	is_int(pt.tiers, 4, "h100-ndr: 200,000 GPUs need a fourth tier of 64-port switches");
}

static void test_errors(void)
{
	struct rpt_cluster c;
	struct rpt_point pt;
	char err[512];
	int rc;

	rpt_cluster_preset("h100-ndr", &c);
	rc = rpt_project_point(&c, RPT_ALGO_RING, 0, 8, &pt, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "0 GPUs"), "0 GPUs: %s", err);
	rc = rpt_project_point(&c, RPT_ALGO_RING, 12, 8, &pt, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "12 GPUs") && strstr(err, "gpus_per_node = 8"),
	   "12 GPUs: %s", err);
	c.switch_radix = 16;
	c.max_tiers = 2;
	rc = rpt_project_point(&c, RPT_ALGO_RING, 256, 8, &pt, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "256 GPUs") && strstr(err, "16-port") && strstr(err, "128"),
	   "radix too small: %s", err);
}

/* 200,000 GPUs x 30 sizes x 4 algorithms: every point finite (speed: docs/projection.md). */
static void test_big(void)
{
	struct rpt_cluster c;
	int a, b, good = 1;

	rpt_cluster_preset("h100-spectrumx", &c);
	for (a = 0; a < RPT_ALGO_COUNT; a++)
		for (b = 3; b <= 32; b++) {
			struct rpt_point pt;

			if (rpt_project_point(&c, (enum rpt_algo)a, 200000, ldexp(1, b), &pt, NULL,
					      0) ||
			    !isfinite(pt.time_us) || pt.time_us <= 0 || pt.busbw_GBps < 0)
				good = 0;
		}
	ok(good, "200,000 GPUs x 30 sizes x 4 algorithms: all finite and positive");
}

int main(void)
{
	test_tiers();
	test_monotonic();
	test_latency_shape();
	test_crossover();
	test_bottlenecks();
	test_point_fields();
	test_errors();
	test_big();
	return tap_done();
}
