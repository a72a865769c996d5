/* SPDX-License-Identifier: MIT */
/*
 * cluster.h - descriptions of GPU clusters for the projection model
 * (docs/projection.md#cluster-descriptions): presets and a
 * documented key=value file format (docs/projection.md, "Cluster descriptions").
 *
 * A description holds hardware facts (GPUs per node, line rates, switch radix) and the few
 * efficiency/latency constants of the model; every preset value carries its public source.
 */
#ifndef RPT_CLUSTER_H
#define RPT_CLUSTER_H

#include <stddef.h>
#include <stdio.h>

struct rpt_cluster {
	char name[64];
	char description[160];
	int gpus_per_node;
	/* inside the node (NVLink through NVSwitch): per GPU, per direction */
	double nvlink_GBps;	  /* line rate, GB/s (1e9 B/s) */
	double nvlink_efficiency; /* fraction of line rate a collective reaches */
	double nvlink_latency_us; /* per-step latency of one NVLink transfer (alpha intra) */
	/* network */
	int nics_per_node;
	double nic_Gbps; /* line rate, Gb/s */
	double nic_efficiency;
	double net_latency_us; /* per-step latency of one network transfer, switches excluded */
	double pcie_GBps;      /* GPU<->NIC PCIe link, per direction, line rate */
	double pcie_efficiency;
	int switch_radix;	  /* ports per switch at the NIC speed */
	double switch_latency_us; /* per switch hop */
	int max_tiers;		  /* the fabric may grow to this many tiers */
	double oversubscription;  /* down:up ratio above the leaf tier, 1 = non-blocking */
	int rail_optimized;	  /* NIC i of every node on rail i's leaf switches */
	/* algorithm constants */
	double reduce_GBps;	/* reduction throughput (gamma = 1/reduce_GBps) */
	int reduce_overlap;	/* 1: the reduction is fused with the copy (GPU kernels) */
	double tree_efficiency; /* tree bandwidth relative to a ring's */
	double chunk_KiB;	/* pipeline chunk per channel */
	double channel_GBps;	/* throughput of one channel (pipeline fill time = chunk/this) */
};

/* Names of the built-in presets, NULL-terminated. */
extern const char *const rpt_cluster_preset_names[];

/* Fill *c with preset name. Returns 0 or -ENOENT. */
int rpt_cluster_preset(const char *name, struct rpt_cluster *c);

/* Load NAME (a preset) or FILE (key=value). Errors "file:line: what" into err, -EINVAL for
 * bad content, -errno when the file cannot be read. */
int rpt_cluster_load(const char *name_or_file, struct rpt_cluster *c, char *err, size_t errlen);

/* Parse key=value text (name used in messages). *c is the starting point; "base = PRESET"
 * as the first key replaces it. */
int rpt_cluster_parse(const char *name, const char *text, struct rpt_cluster *c, char *err,
		      size_t errlen);

/* Set one key from its text value (the file format's rules). */
int rpt_cluster_set(struct rpt_cluster *c, const char *key, const char *value, char *err,
		    size_t errlen);

/* Check consistency (ranges that depend on several keys). */
int rpt_cluster_check(const struct rpt_cluster *c, char *err, size_t errlen);

/* Write the description as key=value text (the file format) to f. */
void rpt_cluster_print(const struct rpt_cluster *c, FILE *f);

/* Fat-tree tiers needed for endpoints NIC ports with radix k: 1 tier serves k, 2 tiers k^2/2,
 * 3 tiers k^3/4, L tiers 2(k/2)^L. 0 for endpoints <= 1. */
int rpt_cluster_tiers(long endpoints, int radix);
/* Endpoints an L-tier fat tree of radix k serves (2(k/2)^L; k for L = 1). */
double rpt_cluster_capacity(int radix, int tiers);

#endif
