/* SPDX-License-Identifier: MIT */
/*
 * counters.h - a NIC port's counters from sysfs (docs/design.md#counters), read before and
 * after a test so that a health run sees the errors a fabric made while it was measured.
 *   InfiniBand and RoCE ports: class/infiniband/DEV/ports/PORT/counters/NAME (symbol_error,
 *     link_error_recovery, link_downed, port_rcv_errors, ...) and .../hw_counters/NAME (RoCE:
 *     out_of_sequence, packet_seq_err, np_ecn_marked_roce_packets, rp_cnp_handled, ...);
 *   network interfaces (tcp): class/net/IF/statistics/NAME (rx_errors, tx_dropped, ...).
 * Each counter is an error (a moved one is a finding), congestion or traffic. Every read goes
 * through common/ibc_sysfs, so IBCOLL_SYSFS_ROOT points it at a fake tree.
 */
#ifndef TOPO_COUNTERS_H
#define TOPO_COUNTERS_H

#include <stdint.h>

#define TOPO_COUNTERS_MAX 40

enum topo_counter_kind { TOPO_CNT_ERROR, TOPO_CNT_CONGESTION, TOPO_CNT_TRAFFIC };

/* One port's counters at one moment: plain data (gathered between ranks as bytes). */
struct topo_counters {
	char dev[64]; /* "mlx5_0" or the interface "eth0" */
	int32_t port; /* 1-based IB port; 0 for an interface */
	int32_t n;    /* counters present */
	uint8_t idx[TOPO_COUNTERS_MAX]; /* index into topo_counter_name() */
	uint64_t v[TOPO_COUNTERS_MAX];
};

/* Read dev's port (port > 0: an RDMA device; 0: a network interface). sysfs_root NULL = the
 * default (IBCOLL_SYSFS_ROOT or /sys). 0, or -ENOENT when the device has no counters there
 * (why says what was looked for). Missing single counters are left out, not an error. */
int topo_counters_read(const char *sysfs_root, const char *dev, int port,
		       struct topo_counters *c, char *why, unsigned whylen);
/* The name and kind of counter index i (as in topo_counters.idx). */
const char *topo_counter_name(int i);
enum topo_counter_kind topo_counter_kind(int i);
const char *topo_counter_kind_name(enum topo_counter_kind k);

#endif
