/* SPDX-License-Identifier: MIT */
/*
 * topo.h - the topology module (DESIGN 6): hwloc 2.x stays behind this header.
 *
 * Lifecycle as hwloc: topo_load (live machine or XML) -> query/pick/bind -> topo_destroy.
 * All functions return 0 or a negative errno; on failure ibc_err_get() says what was wrong.
 */
#ifndef TOPO_H
#define TOPO_H

#include <stddef.h>

struct topo; /* opaque */

/* Load the live machine (xml_path NULL) or an hwloc v2 XML file.
 * Errors: -ENOENT (no such file), -EINVAL (malformed XML: message names the file),
 * other -errno for hwloc failures. *t owned by caller (topo_destroy). */
int topo_load(const char *xml_path, struct topo **t);
void topo_destroy(struct topo *t);

/* Path classes as `nvidia-smi topo -m` prints them, nearest first. */
enum topo_path {
	TOPO_PATH_PIX, /* at most one PCIe bridge between them */
	TOPO_PATH_PXB, /* several PCIe bridges, no host bridge */
	TOPO_PATH_PHB, /* through a PCIe host bridge */
	TOPO_PATH_NODE, /* across host bridges within one NUMA node */
	TOPO_PATH_SYS, /* across the SMP interconnect between NUMA nodes/sockets */
	TOPO_PATH_NONE, /* no NIC / unknown */
};
const char *topo_path_name(enum topo_path p); /* "PIX" ... "SYS", "" for NONE */

/* What one local rank uses: filled by topo_pick. Strings are empty when absent. */
struct topo_rank_info {
	char cpus[256]; /* cpu list of the binding, "0-15,64-79" */
	int numa; /* NUMA node os index, -1 unknown */
	char gpu[32]; /* "GPU0" ... or "" */
	char gpu_busid[32]; /* "0000:18:00.0" */
	char nic[64]; /* "mlx5_0" */
	char nic_busid[32];
	int nic_port; /* 1-based, 0 unknown */
	double link_gbps; /* port rate in Gb/s from sysfs, 0 unknown */
	enum topo_path path; /* GPU-NIC path (or TOPO_PATH_NONE) */
};

/* Choose GPU, NIC and cores for local rank local_rank of local_size on this node:
 * GPU = local_rank modulo GPU count (or none), NIC = nearest to that GPU with ties spread so
 * no NIC serves two GPUs while another idles; cores = the GPU's NUMA node (or, without GPUs, the
 * NIC's, or a block of the machine's cores). */
int topo_pick(struct topo *t, int local_rank, int local_size, struct topo_rank_info *info);

/* Bind the calling process to info->cpus (and its memory to info->numa). */
int topo_bind(struct topo *t, const struct topo_rank_info *info);

/* `ibcoll topo [options]` - prints the GPU x NIC matrix, pairing and warnings; returns the exit
 * code (DESIGN 9). */
int topo_cmd_main(int argc, char **argv);

#endif
