/* SPDX-License-Identifier: MIT */
/*
 * topo_internal.h - what the files of topology/ share; nothing outside topology/ includes it.
 * Internal non-static names carry a double underscore (topo__), as libuv does.
 */
#ifndef TOPO_INTERNAL_H
#define TOPO_INTERNAL_H

#include <hwloc.h>
#include <limits.h>
#include <string.h>

#include "topo.h"

struct topo_dev {
	enum topo_dev_kind kind;
	char name[64];		 /* "GPU0", "mlx5_0" */
	char busid[32];		 /* "0000:18:00.0" */
	unsigned vendor, device; /* PCI ids */
	int socket;		 /* Package os_index, -1 unknown */
	int numa;	   /* NUMA os_index when the device is local to exactly one node, else -1 */
	char numas[64];	   /* NUMA node list, "0" or "0-1"; "" unknown */
	char cpus[1024];   /* PU list of the device's locality, "0-55,112-167" */
	int hw_port;	   /* first ACTIVE port hwloc saw (Port<N>State=4), 0 unknown */
	hwloc_obj_t pci;   /* borrowed from topo->hw: the PCI device */
	hwloc_obj_t local; /* borrowed from topo->hw: nearest non-I/O ancestor */
};

struct topo {
	hwloc_topology_t hw; /* owned (hwloc_topology_destroy) */
	int from_xml;	     /* 1: loaded from a file, describes some machine, maybe not this one */
	char source[PATH_MAX]; /* XML path, or "" for the live machine */
	char hostname[128];    /* HostName info of the topology, "" unknown */
	int sysfs_on;	       /* read ports and PCIe links from sysfs_root */
	char sysfs_root[PATH_MAX];
	int npackages, nnuma, ncores, npus;
	int ngpu, nnic;
	struct topo_dev *gpus; /* owned, ngpu entries, in PCI bus order */
	struct topo_dev *nics; /* owned, nnic entries, in PCI bus order */
	enum topo_path *paths; /* owned, ngpu x nnic, row = GPU */
};

/* Copy src into dst[len], truncating, always terminated (snprintf without -Wformat-truncation). */
static inline void topo__copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* topo_check.c */
int topo__best_port(const struct topo *t, int nic, struct topo_port *port);

#endif
