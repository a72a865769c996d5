/* SPDX-License-Identifier: MIT */
/*
 * schema.h - the column lists of ibcoll's CSV files (docs/design.md#csv-reports). The order is the contract.
 * Bump RPT_SCHEMA_VERSION on any incompatible change.
 */
#ifndef RPT_SCHEMA_H
#define RPT_SCHEMA_H

#define RPT_SCHEMA_VERSION 1

#define RPT_RESULTS_COLUMNS                                                                        \
	"schema", "run_id", "started_utc", "tool_version", "collective", "algo", "transport",     \
		"mem", "dtype", "op", "placement", "nranks", "nnodes", "ranks_per_node",          \
		"channels", "bytes", "count", "warmup", "iters", "time_us", "time_min_us",        \
		"time_p50_us", "time_p99_us", "time_max_us", "algbw_GBps", "busbw_GBps", "wrong", \
		"wrong_ranks", "slowest_rank", "slowest_host", "status", "wireup"
#define RPT_RESULTS_NCOLS 32

#define RPT_HOSTS_COLUMNS                                                                          \
	"schema", "run_id", "rank", "host", "local_rank", "cpus", "numa", "gpu", "gpu_busid",     \
		"nic", "nic_busid", "nic_port", "link_gbps", "path"
#define RPT_HOSTS_NCOLS 14

#define RPT_PROJECTION_COLUMNS                                                                     \
	"schema", "run_id", "cluster", "gpus", "nodes", "gpus_per_node", "algo", "bytes",         \
		"time_us", "algbw_GBps", "busbw_GBps", "latency_us", "bandwidth_us",              \
		"bottleneck", "tiers", "source"
#define RPT_PROJECTION_NCOLS 16

/* One row per problem any check found (docs/design.md#findings); kind: host, nic, link, rank,
 * row. */
#define RPT_FINDINGS_COLUMNS                                                                       \
	"schema", "run_id", "check", "kind", "host", "nic", "peer_host", "peer_nic", "measured",  \
		"expected", "unit", "evidence"
#define RPT_FINDINGS_NCOLS 12

/* `ibcoll check`: one row per fact of the host (status ok, finding, warning or info). */
#define RPT_CHECK_COLUMNS                                                                          \
	"schema", "run_id", "host", "item", "name", "fact", "value", "expected", "status"
#define RPT_CHECK_NCOLS 9

/* A NIC port's counters over a run: one row per (host, nic, port, counter). */
#define RPT_COUNTERS_COLUMNS                                                                       \
	"schema", "run_id", "host", "nic", "port", "counter", "kind", "before", "after", "delta"
#define RPT_COUNTERS_NCOLS 10

/* `ibcoll compare`: one row per results row of either run, matched on the identity columns. */
#define RPT_COMPARE_COLUMNS                                                                        \
	"schema", "run_id", "base_run_id", "new_run_id", "collective", "algo", "transport", "mem", \
		"dtype", "op", "placement", "nranks", "nnodes", "ranks_per_node", "channels",     \
		"bytes", "base_time_p50_us", "base_time_min_us", "base_time_p99_us",              \
		"new_time_p50_us", "time_ratio", "base_busbw_GBps", "new_busbw_GBps",             \
		"busbw_ratio", "base_status", "new_status", "verdict"
#define RPT_COMPARE_NCOLS 27

#endif
