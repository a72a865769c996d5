/* SPDX-License-Identifier: MIT */
/*
 * project_model.c - all-reduce time on a cluster description: alpha-beta-gamma terms per
 * resource (NVLink port, NICs, PCIe, bisection, reduction), per-step and per-hop latencies and
 * the pipeline fill of tree-shaped algorithms. docs/projection.md writes out every formula.
 *
 * Units: bytes, microseconds, GB/s (1 GB/s = 1e3 bytes/us).
 */
#include "project_model.h"

#include "ibc_common.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

static const char *const algo_names[RPT_ALGO_COUNT] = {"ring", "tree", "hier-ring", "hier-tree"};
static const char *const term_names[RPT_TERM_COUNT] = {"latency", "nvlink",    "nic",
						       "pcie",	  "bisection", "reduction"};

const char *rpt_algo_name(enum rpt_algo a)
{
	return (unsigned)a < RPT_ALGO_COUNT ? algo_names[a] : "?";
}

const char *rpt_term_name(enum rpt_term t)
{
	return (unsigned)t < RPT_TERM_COUNT ? term_names[t] : "?";
}

int rpt_algo_parse(const char *s, enum rpt_algo *a)
{
	int i;

	for (i = 0; i < RPT_ALGO_COUNT; i++)
		if (strcmp(s, algo_names[i]) == 0) {
			*a = (enum rpt_algo)i;
			return 0;
		}
	return -EINVAL;
}

/* Effective rates in bytes/us. */
struct rates {
	double nvlink;	  /* one GPU's NVLink port */
	double nic_node;  /* all NICs of a node */
	double pcie_node; /* the PCIe links feeding them */
	double reduce;	  /* one GPU's reduction throughput */
	double channel;	  /* one pipeline channel */
};

/* Shape of the job on the fabric. */
struct shape {
	long p, nodes;
	int g, m;
	int tiers;
	double hop_us; /* latency of one network step: NIC/software + switch hops */
	double cross;  /* bisection multiplier: oversubscription x fraction of peers off-leaf */
};

static void get_rates(const struct rpt_cluster *c, struct rates *r)
{
	r->nvlink = c->nvlink_GBps * c->nvlink_efficiency * 1e3;
	r->nic_node = c->nics_per_node * c->nic_Gbps / 8.0 * c->nic_efficiency * 1e3;
	/* the node's NICs are fed by the PCIe links of min(m, g) GPUs */
	r->pcie_node =
	    IBC_MIN(c->nics_per_node, c->gpus_per_node) * c->pcie_GBps * c->pcie_efficiency * 1e3;
	r->reduce = c->reduce_GBps * 1e3;
	r->channel = c->channel_GBps * 1e3;
}

static int get_shape(const struct rpt_cluster *c, long gpus, struct shape *s, char *err,
		     size_t errlen)
{
	long endpoints, leaf_nodes;

	if (gpus < 1)
		return ibc_err_buf(err, errlen, "%ld GPUs: the count must be at least 1", gpus);
	if (gpus % c->gpus_per_node)
		return ibc_err_buf(err, errlen,
				 "%ld GPUs is not a multiple of gpus_per_node = %d (cluster %s): "
				 "use whole nodes",
				 gpus, c->gpus_per_node, c->name);
	s->p = gpus;
	s->g = c->gpus_per_node;
	s->m = c->nics_per_node;
	s->nodes = gpus / c->gpus_per_node;
	if (s->nodes > 1e12 / s->m)
		return ibc_err_buf(err, errlen, "%ld GPUs: too many", gpus);
	endpoints = s->nodes * s->m;
	s->tiers = s->nodes > 1 ? rpt_cluster_tiers(endpoints, c->switch_radix) : 0;
	if (s->tiers > c->max_tiers)
		return ibc_err_buf(err, errlen,
				 "%ld GPUs need %ld NIC ports, but %d tiers of %d-port switches "
				 "serve at most %.0f (k^%d/%.0f): raise switch_radix or max_tiers "
				 "(cluster %s)",
				 gpus, endpoints, c->max_tiers, c->switch_radix,
				 rpt_cluster_capacity(c->switch_radix, c->max_tiers), c->max_tiers,
				 pow(2, c->max_tiers - 1), c->name);
	/* worst path: up through every tier and down again, 2L - 1 switches */
	s->hop_us =
	    c->net_latency_us + (s->tiers > 0 ? (2 * s->tiers - 1) : 0) * c->switch_latency_us;
	/* Bisection: a leaf switch has radix/2 down ports; rail-optimized, each is one node's
	 * NIC of that rail, else whole nodes share it. With peers placed anywhere, a fraction
	 * 1 - (leaf_nodes - 1)/(nodes - 1) of the traffic climbs above the leaf, where the
	 * fabric offers 1/oversubscription of the injection bandwidth. */
	leaf_nodes = c->rail_optimized ? c->switch_radix / 2
				       : IBC_MAX(1, c->switch_radix / 2 / c->nics_per_node);
	s->cross = 0;
	if (s->nodes > leaf_nodes)
		s->cross =
		    c->oversubscription * (1.0 - (double)(leaf_nodes - 1) / (double)(s->nodes - 1));
	return 0;
}

/* Network resources carrying node_bytes out of (and into) every node. */
static void net_terms(const struct rates *r, const struct shape *s, double node_bytes, double *t)
{
	double nic = node_bytes / r->nic_node;

	t[RPT_TERM_NIC] = IBC_MAX(t[RPT_TERM_NIC], nic);
	t[RPT_TERM_PCIE] = IBC_MAX(t[RPT_TERM_PCIE], node_bytes / r->pcie_node);
	t[RPT_TERM_BISECTION] = IBC_MAX(t[RPT_TERM_BISECTION], nic * s->cross);
}

/* Depth of a binary tree over n nodes: ceil(log2 n). */
static int tree_depth(long n)
{
	int d = 0;

	while ((1L << d) < n)
		d++;
	return d;
}

/* Bytes the busiest node sends, in units of n, for NCCL's double binary tree over n nodes:
 * each tree carries n/2; a node interior in one tree (parent + 2 children) and a leaf in the
 * other sends (1 + 2 + 1) n/2 = 2n. Two nodes: n (one parent, one child per tree); three:
 * 1.5n (a root with two children is a leaf in the other tree). */
static double tree_node_factor(long n)
{
	return n <= 1 ? 0 : n == 2 ? 1.0 : n == 3 ? 1.5 : 2.0;
}

/* One point. t[] gets each resource's time; lat the per-step latencies; stages the number of
 * pipeline stages a chunk crosses (fill). */
static void model(const struct rpt_cluster *c, const struct rates *r, const struct shape *s,
		  enum rpt_algo algo, double n, double *t, double *lat, int *stages)
{
	long p = s->p, N = s->nodes;
	int g = s->g, D = tree_depth(N);
	double pf = (double)p, Nf = (double)N, gf = (double)g;
	double eff = c->tree_efficiency;

	switch (algo) {
	case RPT_ALGO_RING: {
		/* every GPU sends 2(p-1)/p n; each channel's ring leaves each node once, so a
		 * node's NICs carry 2(p-1)/p n too */
		double x = 2.0 * (pf - 1) / pf * n;

		if (g > 1)
			t[RPT_TERM_NVLINK] = x / r->nvlink;
		if (N > 1)
			net_terms(r, s, x, t);
		t[RPT_TERM_REDUCTION] = (pf - 1) / pf * n / r->reduce;
		/* 2(p-1) steps, 2(N-1) of them between nodes (the NCCL cost model's split) */
		*lat = 2.0 * (pf - Nf) * c->nvlink_latency_us + 2.0 * (Nf - 1) * s->hop_us;
		*stages = 0; /* a ring is lock-step: its steps are the pipeline */
		break;
	}
	case RPT_ALGO_TREE:
		/* chain inside the node: a middle GPU sends n up (reduce) and n down (bcast) */
		if (g > 1)
			t[RPT_TERM_NVLINK] = (g > 2 ? 2.0 : 1.0) * n / (r->nvlink * eff);
		if (N > 1)
			net_terms(r, s, tree_node_factor(N) * n / eff, t);
		t[RPT_TERM_REDUCTION] = n / r->reduce;
		*lat = 2.0 * (gf - 1) * c->nvlink_latency_us + 2.0 * D * s->hop_us;
		*stages = 2 * (g - 1) + 2 * D;
		break;
	case RPT_ALGO_HIER_RING:
		/* reduce-scatter + all-gather inside the node, then a ring per rail on n/g */
		if (g > 1)
			t[RPT_TERM_NVLINK] = 2.0 * (gf - 1) / gf * n / r->nvlink;
		if (N > 1)
			net_terms(r, s, 2.0 * (Nf - 1) / Nf * n, t);
		t[RPT_TERM_REDUCTION] = ((gf - 1) / gf * n + (Nf - 1) / Nf * n / gf) / r->reduce;
		*lat = 2.0 * (gf - 1) * c->nvlink_latency_us + 2.0 * (Nf - 1) * s->hop_us;
		*stages = (g > 1 ? 2 : 0) + (N > 1 ? 1 : 0);
		break;
	case RPT_ALGO_HIER_TREE:
		/* reduce-scatter + all-gather inside the node, a double binary tree per rail */
		if (g > 1)
			t[RPT_TERM_NVLINK] = 2.0 * (gf - 1) / gf * n / r->nvlink;
		if (N > 1)
			net_terms(r, s, tree_node_factor(N) * n / eff, t);
		t[RPT_TERM_REDUCTION] = ((gf - 1) / gf * n + n / gf) / r->reduce;
		*lat = 2.0 * (gf - 1) * c->nvlink_latency_us + 2.0 * D * s->hop_us;
		*stages = (g > 1 ? 2 : 0) + 2 * D;
		break;
	default:
		break;
	}
}

int rpt_project_point(const struct rpt_cluster *c, enum rpt_algo algo, long gpus, double bytes,
		      struct rpt_point *out, char *err, size_t errlen)
{
	struct rates r;
	struct shape s = {0};
	double t[RPT_TERM_COUNT] = {0}, lat = 0, bw = 0, fill, tau;
	int stages = 0, i, rc;
	enum rpt_term worst = RPT_TERM_NVLINK;

	if ((unsigned)algo >= RPT_ALGO_COUNT)
		return ibc_err_buf(err, errlen, "unknown algorithm %d", (int)algo);
	if (!(bytes >= 0) || !isfinite(bytes))
		return ibc_err_buf(err, errlen, "bytes = %g: must be >= 0", bytes);
	rc = get_shape(c, gpus, &s, err, errlen);
	if (rc)
		return rc;
	get_rates(c, &r);
	memset(out, 0, sizeof(*out));
	out->gpus = gpus;
	out->nodes = s.nodes;
	out->gpus_per_node = s.g;
	out->tiers = s.tiers;
	out->bytes = bytes;
	if (gpus > 1)
		model(c, &r, &s, algo, bytes, t, &lat, &stages);
	/* overlapped resources: the slowest one sets the pace */
	for (i = RPT_TERM_NVLINK; i < RPT_TERM_COUNT; i++) {
		if (i == RPT_TERM_REDUCTION && !c->reduce_overlap)
			continue;
		if (t[i] > bw) {
			bw = t[i];
			worst = (enum rpt_term)i;
		}
	}
	if (!c->reduce_overlap) {
		bw += t[RPT_TERM_REDUCTION];
		if (t[RPT_TERM_REDUCTION] > bw - t[RPT_TERM_REDUCTION])
			worst = RPT_TERM_REDUCTION;
	}
	/* pipeline fill: the first chunk crosses every stage before the pipe is full; a chunk is
	 * chunk_KiB per channel, or all the data when there is less */
	tau = IBC_MIN(c->chunk_KiB * 1024.0 / r.channel, bw);
	fill = stages > 1 ? (stages - 1) * tau : 0;
	out->latency_us = lat + fill;
	out->bandwidth_us = bw;
	out->time_us = out->latency_us + out->bandwidth_us;
	memcpy(out->term_us, t, sizeof(t));
	out->term_us[RPT_TERM_LATENCY] = out->latency_us;
	out->bottleneck = out->latency_us >= bw ? RPT_TERM_LATENCY : worst;
	if (out->time_us > 0) {
		out->algbw_GBps = bytes / out->time_us / 1e3;
		out->busbw_GBps = out->algbw_GBps * 2.0 * (double)(gpus - 1) / (double)gpus;
	}
	return 0;
}

int rpt_project_crossover(const struct rpt_cluster *c, long gpus, enum rpt_algo x, enum rpt_algo y,
			  double *bytes, enum rpt_algo *faster_small)
{
	struct rpt_point a, b;
	double lo = 0, hi = 40, mid; /* log2 bytes */
	int rc, i, x_small;

	*bytes = 0;
	rc = rpt_project_point(c, x, gpus, 1, &a, NULL, 0);
	if (!rc)
		rc = rpt_project_point(c, y, gpus, 1, &b, NULL, 0);
	if (rc)
		return rc;
	x_small = a.time_us <= b.time_us;
	*faster_small = x_small ? x : y;
	rpt_project_point(c, x, gpus, pow(2, hi), &a, NULL, 0);
	rpt_project_point(c, y, gpus, pow(2, hi), &b, NULL, 0);
	if ((a.time_us <= b.time_us) == x_small)
		return 0; /* the same algorithm wins at 1 B and at 1 TiB */
	for (i = 0; i < 50; i++) {
		mid = (lo + hi) / 2;
		rpt_project_point(c, x, gpus, pow(2, mid), &a, NULL, 0);
		rpt_project_point(c, y, gpus, pow(2, mid), &b, NULL, 0);
		if ((a.time_us <= b.time_us) == x_small)
			lo = mid;
		else
			hi = mid;
	}
	*bytes = pow(2, (lo + hi) / 2);
	return 0;
}
