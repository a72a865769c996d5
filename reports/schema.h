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

#endif
