/* SPDX-License-Identifier: MIT */
/*
 * topo_sysfs.c - the few sysfs files hwloc does not report: InfiniBand port state and rate, PCIe
 * link speed and width. Every reader takes the sysfs root (NULL: ibc_sysfs_root()) so
 * --sysfs-root and tests use other trees; the files are read through ibc_sysfs.
 */
#include "topo_internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "ibc_common.h"
#include "ibc_sysfs.h"

#define TOPO_MAX_PORTS 64

/* "4: ACTIVE" -> 4, "ACTIVE" */
static void topo_parse_state(const char *text, struct topo_port *p)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (end == text || v < 0 || v > 99) {
		p->state = 0;
		topo__copy(p->state_name, sizeof(p->state_name), text);
		return;
	}
	p->state = (int)v;
	end += strspn(end, ": \t");
	topo__copy(p->state_name, sizeof(p->state_name), *end ? end : "?");
}

static int topo_read_port(const char *root, const char *dev, int port, struct topo_port *p)
{
	char text[128], path[PATH_MAX];
	int rc;

	memset(p, 0, sizeof(*p));
	p->port = port;
	rc = ibc_sysfs_read_line(root, text, sizeof(text), "class/infiniband/%s/ports/%d/state",
				 dev, port);
	if (rc < 0) {
		ibc_sysfs_path(root, path, sizeof(path), "class/infiniband/%s/ports/%d/state", dev,
			       port);
		ibc_err_set("cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	topo_parse_state(text, p);
	if (ibc_sysfs_read_line(root, text, sizeof(text), "class/infiniband/%s/ports/%d/rate", dev,
				port) == 0) {
		topo__copy(p->rate_text, sizeof(p->rate_text), text);
		p->rate_gbps = strtod(text, NULL);
		if (!(p->rate_gbps > 0))
			p->rate_gbps = 0;
	}
	return 0;
}

static int topo_cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int topo_sysfs_ports(const char *root, const char *dev, struct topo_port *ports, int max)
{
	char dir[PATH_MAX];
	int nums[TOPO_MAX_PORTS], n = 0, i, rc;
	struct dirent *e;
	DIR *d;

	if (!root)
		root = ibc_sysfs_root();
	if (ibc_sysfs_path(root, dir, sizeof(dir), "class/infiniband/%s/ports", dev)) {
		ibc_err_set("sysfs path for %s under %s is too long", dev, root);
		return -ENAMETOOLONG;
	}
	d = opendir(dir);
	if (!d) {
		rc = -errno;
		ibc_err_set("cannot list the ports of %s in %s: %s", dev, dir, strerror(-rc));
		return rc;
	}
	while ((e = readdir(d)) && n < TOPO_MAX_PORTS) {
		char *end;
		long v = strtol(e->d_name, &end, 10);

		if (end != e->d_name && *end == '\0' && v > 0 && v < 256)
			nums[n++] = (int)v;
	}
	closedir(d);
	if (n == 0) {
		ibc_err_set("%s has no ports in %s", dev, dir);
		return -ENOENT;
	}
	qsort(nums, n, sizeof(nums[0]), topo_cmp_int);
	for (i = 0; i < n && i < max; i++) {
		rc = topo_read_port(root, dev, nums[i], &ports[i]);
		if (rc < 0)
			return rc;
	}
	return i;
}

static double topo_parse_gts(const char *text)
{
	double v = strtod(text, NULL); /* "32.0 GT/s PCIe", "Unknown" -> 0 */

	return v > 0 ? v : 0;
}

static int topo_parse_width(const char *text)
{
	long v = strtol(text, NULL, 10); /* "16"; 0 or 255 when unknown */

	return v > 0 && v <= 64 ? (int)v : 0;
}

int topo_sysfs_pcie_link(const char *root, const char *busid, struct topo_pcie_link *l)
{
	static const char *const files[] = {"current_link_speed", "max_link_speed",
					    "current_link_width", "max_link_width"};
	char text[4][64];
	int i, found = 0;

	if (!root)
		root = ibc_sysfs_root();
	memset(l, 0, sizeof(*l));
	for (i = 0; i < 4; i++)
		found += ibc_sysfs_read_line(root, text[i], sizeof(text[i]),
					     "bus/pci/devices/%s/%s", busid, files[i]) == 0;
	if (!found) {
		ibc_err_set("no PCIe link files for %s under %s/bus/pci/devices", busid, root);
		return -ENOENT;
	}
	l->cur_gts = topo_parse_gts(text[0]);
	l->max_gts = topo_parse_gts(text[1]);
	l->cur_width = topo_parse_width(text[2]);
	l->max_width = topo_parse_width(text[3]);
	return 0;
}
