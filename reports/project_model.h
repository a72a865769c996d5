/* SPDX-License-Identifier: MIT */
/*
 * project_model.h - the alpha-beta-gamma projection of all-reduce onto a cluster description
 * (formulas in docs/projection.md#the-model). Every point costs O(1).
 */
#ifndef RPT_PROJECT_MODEL_H
#define RPT_PROJECT_MODEL_H

#include "cluster.h"

enum rpt_algo {
	RPT_ALGO_RING,
	RPT_ALGO_TREE,
	RPT_ALGO_HIER_RING,
	RPT_ALGO_HIER_TREE,
	RPT_ALGO_COUNT,
};

/* The terms a projected time can be bound by (the "bottleneck" column). */
enum rpt_term {
	RPT_TERM_LATENCY,
	RPT_TERM_NVLINK,
	RPT_TERM_NIC,
	RPT_TERM_PCIE,
	RPT_TERM_BISECTION,
	RPT_TERM_REDUCTION,
	RPT_TERM_COUNT,
};

const char *rpt_algo_name(enum rpt_algo a);	     /* "ring", "tree", "hier-ring", "hier-tree" */
int rpt_algo_parse(const char *s, enum rpt_algo *a); /* 0 or -EINVAL */
const char *rpt_term_name(enum rpt_term t);	     /* "latency", "nvlink", "nic", ... */

struct rpt_point {
	long gpus, nodes;
	int gpus_per_node;
	int tiers; /* switch tiers the job's NICs span (0: one node) */
	double bytes;
	double time_us;			/* latency_us + bandwidth_us */
	double latency_us;		/* per-step latencies, switch hops and pipeline fill */
	double bandwidth_us;		/* the data-volume terms (max of overlapped resources) */
	double term_us[RPT_TERM_COUNT]; /* each resource's own time (latency: latency_us) */
	enum rpt_term bottleneck;
	double algbw_GBps, busbw_GBps; /* nccl-tests definitions: busbw = algbw 2(p-1)/p */
};

/* Project one all-reduce of bytes on gpus GPUs. gpus must be a multiple of gpus_per_node and
 * the fabric must fit in max_tiers: -EINVAL otherwise, with a message in err (naming the
 * value) when err is not NULL. */
int rpt_project_point(const struct rpt_cluster *c, enum rpt_algo algo, long gpus, double bytes,
		      struct rpt_point *out, char *err, size_t errlen);

/* Size in bytes where algorithms x and y take equal time on gpus GPUs, by bisection over
 * [1 B, 1 TiB]. *faster_small is the one faster at 1 byte; *bytes = 0 when it stays faster up
 * to 1 TiB. -EINVAL on a bad count. */
int rpt_project_crossover(const struct rpt_cluster *c, long gpus, enum rpt_algo x, enum rpt_algo y,
			  double *bytes, enum rpt_algo *faster_small);

#endif
