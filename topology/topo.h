/* SPDX-License-Identifier: MIT */
/*
 * topo.h - the topology module (docs/topology.md): hwloc 2.x stays behind this header.
 *
 * Lifecycle as hwloc: topo_load (live machine or XML) -> query/pick/bind -> topo_destroy.
 * All functions return 0 or a negative errno; on failure ibc_err_get() says what was wrong.
 */
#ifndef TOPO_H
#define TOPO_H

#include <stddef.h>
#include <stdio.h>

struct topo; /* opaque */

/* Load the live machine (xml_path NULL) or an hwloc v2 XML file.
 * Errors: -ENOENT (no such file), -EINVAL (malformed XML: message names the file),
 * other -errno for hwloc failures. *t owned by caller (topo_destroy). */
int topo_load(const char *xml_path, struct topo **t);
/* The same from an hwloc v2 XML document of len bytes in memory (name is used in messages and
 * as topo_source()); -EINVAL when it is malformed. */
int topo_load_xml_buffer(const char *name, const char *buf, size_t len, struct topo **t);
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
 * code (docs/design.md#exit-codes). */
int topo_cmd_main(int argc, char **argv);

/* `ibcoll topo` with its output streams given (tests): the report and its warning: lines go to
 * out, errors to err. argv[0] is the subcommand name ("topo"). Returns the exit code. */
int topo_cmd_run(int argc, char **argv, FILE *out, FILE *err);

/* ---- Queries ------------------------------------------------------------------------------ */

enum topo_dev_kind {
	TOPO_DEV_GPU, /* NVIDIA GPU: PCI vendor 10de, class 0302 or 0300 */
	TOPO_DEV_NIC, /* RDMA NIC: a PCI device with an OpenFabrics OS device (mlx5_0) */
};

/* One GPU or NIC as found; a copy, owns nothing. */
struct topo_device {
	enum topo_dev_kind kind;
	char name[64]; /* "GPU0" (in PCI bus order, as nvidia-smi) or "mlx5_0" */
	char busid[32]; /* "0000:18:00.0" */
	unsigned vendor, device; /* PCI ids: 0x10de/0x2330, 0x15b3/0x1021 */
	int socket; /* Package os_index, -1 unknown */
	int numa; /* NUMA node os_index, -1 when not local to exactly one node */
	char cpus[1024]; /* the cores (PU list) near the device, "0-55,112-167" */
};

int topo_gpu_count(const struct topo *t);
int topo_nic_count(const struct topo *t);
/* Copy GPU or NIC number i (0-based, PCI bus order) into *d. -ERANGE when there is none. */
int topo_get_device(const struct topo *t, enum topo_dev_kind kind, int i, struct topo_device *d);
/* Path class between GPU gpu and NIC nic (TOPO_PATH_NONE when out of range). */
enum topo_path topo_gpu_nic_path(const struct topo *t, int gpu, int nic);
/* Sockets, NUMA nodes, cores and PUs of the machine (any pointer may be NULL). */
void topo_machine(const struct topo *t, int *packages, int *numas, int *cores, int *pus);
/* "" for the live machine, else the XML path it was loaded from (borrowed from t). */
const char *topo_source(const struct topo *t);

/* Pair the first ngpu_used GPUs (ngpu_used <= GPU count) with NICs: nic_of_gpu[g] = the NIC
 * index for GPU g, -1 when there is no NIC. Each GPU gets a NIC of its nearest path class; among
 * equally near NICs the least loaded wins, so no NIC serves two GPUs while another equally near
 * one idles (GPUs with fewer candidates choose first; then lowest index). */
int topo_pair(const struct topo *t, int ngpu_used, int *nic_of_gpu);

/* ---- sysfs facts (IBCOLL_SYSFS_ROOT) ------------------------------------------------------- */

/* Where topo_check/topo_pick read ports and PCIe links: root, or NULL to read nothing. By default
 * a live topology reads ibc_sysfs_root() ($IBCOLL_SYSFS_ROOT when set and not empty, else
 * "/sys"); an XML topology reads $IBCOLL_SYSFS_ROOT only when it is set (the XML describes
 * another machine than this one's /sys). The files are read through ibc_sysfs (common/). */
int topo_set_sysfs_root(struct topo *t, const char *root);

struct topo_port {
	int port; /* 1-based */
	int state; /* 1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER; 0 unknown */
	char state_name[16]; /* "ACTIVE" */
	double rate_gbps; /* 400 for "400 Gb/sec (4X NDR)"; 0 unknown */
	char rate_text[48]; /* the rate file's text without newline */
};
/* Read <root>/class/infiniband/<dev>/ports/<N>/{state,rate} for every port N of dev, sorted by
 * port (root NULL: ibc_sysfs_root()). Returns the number of ports filled (at most max), -ENOENT
 * when dev has no ports there. */
int topo_sysfs_ports(const char *root, const char *dev, struct topo_port *ports, int max);

struct topo_pcie_link {
	double cur_gts, max_gts; /* GT/s per lane, 0 unknown ("Unknown") */
	int cur_width, max_width; /* lanes, 0 unknown */
};
/* Read <root>/bus/pci/devices/<busid>/{current,max}_link_{speed,width} (root NULL:
 * ibc_sysfs_root()). -ENOENT when absent. */
int topo_sysfs_pcie_link(const char *root, const char *busid, struct topo_pcie_link *l);

/* ---- Preflight warnings -------------------------------------------------------------------- */

struct topo_check_opts {
	int local_size; /* ranks on this node; GPUs 0..min(local_size, GPUs)-1 are checked; <= 0: all */
	double expect_gbps; /* expected port rate; 0: the fastest ACTIVE port of the same NIC model */
};
/* Called once per warning with one line "warning: ..." (no newline) that says what is wrong and
 * the fix; line is valid only during the call. */
typedef void (*topo_warn_fn)(void *arg, const char *line);
/* Check what hurts bandwidth: no RDMA NIC; a GPU without a NIC on its PCIe switch or with its
 * NIC on another socket; a used NIC port not ACTIVE or below the expected rate; a used GPU's or
 * NIC's PCIe link narrower (or, for NICs, slower) than its maximum. Port and link checks need
 * sysfs (topo_set_sysfs_root). Returns the number of warnings, or -errno. */
int topo_check(struct topo *t, const struct topo_check_opts *opts, topo_warn_fn fn, void *arg);

#endif
