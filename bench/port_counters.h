/* SPDX-License-Identifier: MIT */
/*
 * port_counters.h - port counters around a measuring run (docs/design.md#counters): every rank
 * reads the counters of the NIC port its transport uses (topology/counters.h) before the first
 * row and after the last; rank 0 gathers them, writes counters.csv (one row per host, port
 * and counter, deduplicated across the ranks that share a port) and makes an error counter
 * that moved a finding naming host, NIC and counter. A port without counters (shm, no sysfs,
 * no permission) is noted once, never fatal.
 */
#ifndef BENCH_PORT_COUNTERS_H
#define BENCH_PORT_COUNTERS_H

#include "bench.h"
#include "counters.h"
#include "findings.h"

struct bench_cnt {
	char host[64];
	char why[160]; /* "" when read */
	int32_t ok;    /* both reads succeeded */
	int32_t pad;
	struct topo_counters before, after;
};

/* Before the first row: this rank's port, read into c. */
void bench__counters_before(const struct bench_drv *d, struct bench_cnt *c);
/* After the last row (collective): read again, gather at rank 0, which writes counters.csv
 * and adds findings and cases. 0 or -errno (the gather failed; counters.csv not written is
 * logged, not an error). */
int bench__counters_after(struct bench_drv *d, struct bench_cnt *c, struct rpt_findings *f,
			  struct rpt_cases *cases);

#endif
