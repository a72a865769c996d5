/* SPDX-License-Identifier: MIT */
/*
 * topo_check.c - preflight warnings: what on this node costs bandwidth before anything is
 * measured. Each warning is one line "warning: <what is wrong>; fix: <what to do>".
 */
#include "topo_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ibc_common.h"

#define TOPO_PORTS_MAX	       8
#define TOPO_PORT_ACTIVE       4
#define TOPO_PORT_ACTIVE_DEFER 5

struct topo_warner {
	topo_warn_fn fn; /* borrowed */
	void *arg;	 /* borrowed */
	int count;
};

static void topo_warn(struct topo_warner *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void topo_warn(struct topo_warner *w, const char *fmt, ...)
{
	char line[1024] = "warning: ";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + 9, sizeof(line) - 9, fmt, ap);
	va_end(ap);
	w->count++;
	if (w->fn)
		w->fn(w->arg, line);
}

static int topo_port_active(const struct topo_port *p)
{
	return p->state == TOPO_PORT_ACTIVE || p->state == TOPO_PORT_ACTIVE_DEFER;
}

int topo__best_port(const struct topo *t, int nic, struct topo_port *port)
{
	struct topo_port ports[TOPO_PORTS_MAX];
	int n, i;

	if (!t->sysfs_on)
		return -ENOENT;
	n = topo_sysfs_ports(t->sysfs_root, t->nics[nic].name, ports, TOPO_PORTS_MAX);
	if (n <= 0)
		return n < 0 ? n : -ENOENT;
	for (i = 0; i < n; i++)
		if (topo_port_active(&ports[i]))
			break;
	*port = ports[i < n ? i : 0];
	return 0;
}

static const char *topo_path_words(enum topo_path p)
{
	switch (p) {
	case TOPO_PATH_PXB:
		return "through several PCIe switches";
	case TOPO_PATH_PHB:
		return "through the CPU's PCIe host bridge";
	case TOPO_PATH_NODE:
		return "across PCIe host bridges of one NUMA node";
	default:
		return "across the inter-socket link";
	}
}

static void topo_check_path(struct topo *t, int g, int k, struct topo_warner *w)
{
	const struct topo_dev *gpu = &t->gpus[g], *nic = &t->nics[k];
	enum topo_path p = t->paths[g * t->nnic + k];

	if (p == TOPO_PATH_PIX || p == TOPO_PATH_NONE)
		return;
	if (p != TOPO_PATH_SYS) {
		topo_warn(w,
			  "%s (%s) has no RDMA NIC on its PCIe switch; its nearest, %s (%s), is %s "
			  "(%s), so GPUDirect RDMA loses bandwidth; fix: put a NIC in a slot under "
			  "the same PCIe switch as %s",
			  gpu->name, gpu->busid, nic->name, nic->busid, topo_path_name(p),
			  topo_path_words(p), gpu->name);
		return;
	}
	if (gpu->socket >= 0 && nic->socket >= 0 && gpu->socket != nic->socket) {
		topo_warn(
		    w,
		    "%s (%s) is on socket %d but its nearest RDMA NIC, %s (%s), is on socket "
		    "%d (SYS): its traffic crosses the inter-socket link and loses bandwidth; "
		    "fix: install a NIC in a slot of socket %d, under the GPU's PCIe switch",
		    gpu->name, gpu->busid, gpu->socket, nic->name, nic->busid, nic->socket,
		    gpu->socket);
		return;
	}
	topo_warn(w,
		  "%s (%s) is on NUMA node %s but its nearest RDMA NIC, %s (%s), is on NUMA node "
		  "%s (SYS): its traffic crosses the NUMA interconnect and loses bandwidth; fix: "
		  "install a NIC in a slot of the GPU's NUMA node",
		  gpu->name, gpu->busid, gpu->numas[0] ? gpu->numas : "?", nic->name, nic->busid,
		  nic->numas[0] ? nic->numas : "?");
}

/* The fastest ACTIVE port among NICs of the same PCI model as nic. */
static double topo_model_rate(struct topo *t, int nic)
{
	struct topo_port ports[TOPO_PORTS_MAX];
	double best = 0;
	int k, i, n;

	for (k = 0; k < t->nnic; k++) {
		if (t->nics[k].vendor != t->nics[nic].vendor ||
		    t->nics[k].device != t->nics[nic].device)
			continue;
		n = topo_sysfs_ports(t->sysfs_root, t->nics[k].name, ports, TOPO_PORTS_MAX);
		for (i = 0; i < n; i++)
			if (topo_port_active(&ports[i]))
				best = IBC_MAX(best, ports[i].rate_gbps);
	}
	return best;
}

static void topo_check_ports(struct topo *t, int k, const char *user, double expect,
			     struct topo_warner *w)
{
	const struct topo_dev *nic = &t->nics[k];
	struct topo_port ports[TOPO_PORTS_MAX];
	double want = expect > 0 ? expect : topo_model_rate(t, k);
	int n, i;

	n = topo_sysfs_ports(t->sysfs_root, nic->name, ports, TOPO_PORTS_MAX);
	if (n < 0)
		IBC_DBG("topo: %s", ibc_err_get());
	for (i = 0; i < n; i++) {
		const struct topo_port *p = &ports[i];

		if (p->state == 1)
			topo_warn(w,
				  "%s port %d is DOWN, not ACTIVE%s: it carries no traffic; fix: "
				  "check the cable and the switch port (ibstat %s)",
				  nic->name, p->port, user, nic->name);
		else if (p->state == 2 || p->state == 3)
			topo_warn(w,
				  "%s port %d is %s, not ACTIVE%s: the link is up but no subnet "
				  "manager activated it; fix: run a subnet manager (opensm or UFM) "
				  "on the fabric (ibstat %s)",
				  nic->name, p->port, p->state_name, user, nic->name);
		else if (!topo_port_active(p))
			topo_warn(w,
				  "%s port %d is in state '%s', not ACTIVE%s; fix: check it with "
				  "ibstat %s",
				  nic->name, p->port, p->state_name, user, nic->name);
		else if (want > 0 && p->rate_gbps > 0 && p->rate_gbps < want - 0.01)
			topo_warn(w,
				  "%s port %d%s runs at %s, below the expected %g Gb/s (%s); "
				  "fix: check the cable or transceiver and the switch port speed "
				  "(ibstat %s; mlxlink -d %s)",
				  nic->name, p->port, user, p->rate_text, want,
				  expect > 0 ? "--expect-gbps"
					     : "the fastest port of this NIC model here",
				  nic->name, nic->name);
	}
}

static void topo_check_pcie(struct topo *t, const struct topo_dev *d, struct topo_warner *w)
{
	struct topo_pcie_link l;

	if (topo_sysfs_pcie_link(t->sysfs_root, d->busid, &l) < 0) {
		IBC_DBG("topo: %s", ibc_err_get());
		return;
	}
	if (l.cur_width > 0 && l.max_width > 0 && l.cur_width < l.max_width)
		topo_warn(w,
			  "%s (%s) PCIe link trained at x%d, below its maximum x%d: it gets %d%% "
			  "of its PCIe bandwidth; fix: reseat the card, check the slot and riser "
			  "(lspci -vv -s %s: LnkSta vs LnkCap)",
			  d->name, d->busid, l.cur_width, l.max_width,
			  100 * l.cur_width / l.max_width, d->busid);
	/* GPUs drop their link speed while idle to save power: only a NIC's speed is checked. */
	if (d->kind == TOPO_DEV_NIC && l.cur_gts > 0 && l.max_gts > 0 &&
	    l.cur_gts < l.max_gts - 0.01)
		topo_warn(w,
			  "%s (%s) PCIe link trained at %g GT/s, below its maximum %g GT/s: the "
			  "NIC cannot reach its line rate; fix: check the BIOS PCIe generation "
			  "setting, the slot and the riser (lspci -vv -s %s: LnkSta vs LnkCap)",
			  d->name, d->busid, l.cur_gts, l.max_gts, d->busid);
}

/* " (used by GPU0, GPU4)": the GPUs paired with NIC k; "" when none. */
static void topo_users(struct topo *t, const int *pair, int nused, int k, char *buf, size_t len)
{
	size_t n = 0;
	int g;

	buf[0] = '\0';
	for (g = 0; g < nused && n < len; g++)
		if (pair[g] == k)
			n += snprintf(buf + n, len - n, "%s%s", n ? ", " : " (used by ",
				      t->gpus[g].name);
	if (n && n < len)
		snprintf(buf + n, len - n, ")");
}

static void topo_check_sysfs(struct topo *t, const struct topo_check_opts *o, const int *pair,
			     int nused, struct topo_warner *w)
{
	char user[256];
	int g, k;

	for (k = 0; k < t->nnic; k++) {
		for (g = 0; g < nused && pair[g] != k; g++)
			;
		if (t->ngpu && g == nused)
			continue; /* a NIC no GPU uses (storage, spare): its state costs nothing */
		topo_users(t, pair, nused, k, user, sizeof(user));
		topo_check_ports(t, k, user, o ? o->expect_gbps : 0, w);
	}
	for (g = 0; g < nused; g++)
		topo_check_pcie(t, &t->gpus[g], w);
	for (k = 0; k < t->nnic; k++) {
		for (g = 0; g < nused && pair[g] != k; g++)
			;
		if (!t->ngpu || g < nused)
			topo_check_pcie(t, &t->nics[k], w);
	}
}

int topo_check(struct topo *t, const struct topo_check_opts *o, topo_warn_fn fn, void *arg)
{
	struct topo_warner w = {.fn = fn, .arg = arg};
	int nused = t->ngpu, *pair, g, rc;

	if (o && o->local_size > 0)
		nused = IBC_MIN(o->local_size, t->ngpu);
	if (!t->ngpu && !t->nnic)
		topo_warn(&w,
			  "nothing to check: no NVIDIA GPU (PCI vendor 10de) and no RDMA NIC (an "
			  "InfiniBand verbs device such as mlx5_0) found; fix: if the node has them, "
			  "check lspci, nvidia-smi and ibv_devices (drivers loaded, devices visible "
			  "in this container)");
	if (t->ngpu && !t->nnic)
		topo_warn(&w,
			  "found %d NVIDIA GPU%s but no RDMA NIC: traffic between nodes falls back "
			  "to TCP without GPUDirect RDMA; fix: if the node has InfiniBand or RoCE "
			  "cards, load their driver (modprobe mlx5_ib) and check ibv_devices",
			  t->ngpu, t->ngpu == 1 ? "" : "s");
	pair = calloc(nused + 1, sizeof(*pair));
	if (!pair) {
		ibc_err_set("out of memory checking %d GPUs", nused);
		return -ENOMEM;
	}
	rc = topo_pair(t, nused, pair);
	if (rc < 0)
		goto out;
	for (g = 0; g < nused; g++)
		if (pair[g] >= 0)
			topo_check_path(t, g, pair[g], &w);
	if (t->sysfs_on)
		topo_check_sysfs(t, o, pair, nused, &w);
	rc = w.count;
out:
	free(pair);
	return rc;
}
