/* SPDX-License-Identifier: MIT */
/*
 * counters.c - NIC port counters from sysfs (counters.h).
 */
#include "counters.h"
#include "ibc_common.h"
#include "ibc_sysfs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum where { IB_COUNTERS, IB_HW, NET };

static const struct {
	const char *name;
	enum where where;
	enum topo_counter_kind kind;
} table[] = {
	{ "symbol_error", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "link_error_recovery", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "link_downed", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_rcv_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_rcv_remote_physical_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_rcv_switch_relay_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_xmit_discards", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_xmit_constraint_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_rcv_constraint_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "local_link_integrity_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "excessive_buffer_overrun_errors", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "VL15_dropped", IB_COUNTERS, TOPO_CNT_ERROR },
	{ "port_xmit_wait", IB_COUNTERS, TOPO_CNT_CONGESTION },
	{ "port_xmit_data", IB_COUNTERS, TOPO_CNT_TRAFFIC },
	{ "port_rcv_data", IB_COUNTERS, TOPO_CNT_TRAFFIC },
	{ "port_xmit_packets", IB_COUNTERS, TOPO_CNT_TRAFFIC },
	{ "port_rcv_packets", IB_COUNTERS, TOPO_CNT_TRAFFIC },
	{ "out_of_sequence", IB_HW, TOPO_CNT_ERROR },
	{ "packet_seq_err", IB_HW, TOPO_CNT_ERROR },
	{ "out_of_buffer", IB_HW, TOPO_CNT_ERROR },
	{ "local_ack_timeout_err", IB_HW, TOPO_CNT_ERROR },
	{ "implied_nak_seq_err", IB_HW, TOPO_CNT_ERROR },
	{ "rnr_nak_retry_err", IB_HW, TOPO_CNT_ERROR },
	{ "req_cqe_error", IB_HW, TOPO_CNT_ERROR },
	{ "resp_cqe_error", IB_HW, TOPO_CNT_ERROR },
	{ "np_ecn_marked_roce_packets", IB_HW, TOPO_CNT_CONGESTION },
	{ "rp_cnp_handled", IB_HW, TOPO_CNT_CONGESTION },
	{ "np_cnp_sent", IB_HW, TOPO_CNT_CONGESTION },
	{ "rx_errors", NET, TOPO_CNT_ERROR },
	{ "tx_errors", NET, TOPO_CNT_ERROR },
	{ "rx_crc_errors", NET, TOPO_CNT_ERROR },
	{ "rx_frame_errors", NET, TOPO_CNT_ERROR },
	{ "rx_missed_errors", NET, TOPO_CNT_ERROR },
	{ "tx_carrier_errors", NET, TOPO_CNT_ERROR },
	{ "rx_dropped", NET, TOPO_CNT_CONGESTION },
	{ "tx_dropped", NET, TOPO_CNT_CONGESTION },
	{ "rx_bytes", NET, TOPO_CNT_TRAFFIC },
	{ "tx_bytes", NET, TOPO_CNT_TRAFFIC },
};

_Static_assert(IBC_ARRAY_SIZE(table) <= TOPO_COUNTERS_MAX, "room for every counter");

const char *topo_counter_name(int i)
{
	return i >= 0 && i < (int)IBC_ARRAY_SIZE(table) ? table[i].name : "?";
}

enum topo_counter_kind topo_counter_kind(int i)
{
	return i >= 0 && i < (int)IBC_ARRAY_SIZE(table) ? table[i].kind : TOPO_CNT_TRAFFIC;
}

const char *topo_counter_kind_name(enum topo_counter_kind k)
{
	return k == TOPO_CNT_ERROR ? "error" : k == TOPO_CNT_CONGESTION ? "congestion" : "traffic";
}

int topo_counters_read(const char *sysfs_root, const char *dev, int port,
		       struct topo_counters *c, char *why, unsigned whylen)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	snprintf(c->dev, sizeof(c->dev), "%s", dev);
	c->port = port;
	for (i = 0; i < IBC_ARRAY_SIZE(table); i++) {
		uint64_t v;
		int rc;

		if ((port > 0) != (table[i].where != NET))
			continue;
		if (table[i].where == NET)
			rc = ibc_sysfs_read_u64(sysfs_root, &v, "class/net/%s/statistics/%s", dev,
						table[i].name);
		else
			rc = ibc_sysfs_read_u64(sysfs_root, &v, "class/infiniband/%s/ports/%d/%s/%s",
						dev, port,
						table[i].where == IB_HW ? "hw_counters" : "counters",
						table[i].name);
		if (rc)
			continue;
		c->idx[c->n] = (uint8_t)i;
		c->v[c->n++] = v;
	}
	if (c->n)
		return 0;
	if (port > 0)
		snprintf(why, whylen, "%s/class/infiniband/%s/ports/%d/counters has none of them",
			 sysfs_root ? sysfs_root : ibc_sysfs_root(), dev, port);
	else
		snprintf(why, whylen, "%s/class/net/%s/statistics has none of them",
			 sysfs_root ? sysfs_root : ibc_sysfs_root(), dev);
	return -ENOENT;
}
