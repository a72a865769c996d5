/* SPDX-License-Identifier: MIT */
/*
 * cmd_check.c - `ibcoll check`: the preflight of one host, in seconds and without traffic
 * (docs/design.md#preflight). Facts from hwloc (GPUs, NICs, NUMA nodes, GPU-NIC paths) and
 * sysfs through common/ibc_sysfs (per NIC port: state, physical state, rate, link layer, RoCE
 * GIDs; firmware and board id; PCIe link speed and width, current against maximum, for every
 * GPU and NIC; the NVIDIA driver and nvidia-peermem), and the process's memlock limit. A fact
 * is a finding (check "preflight") only against an --expect value or a default rule: a port
 * not ACTIVE or not LinkUp, a port slower than the fastest ACTIVE port of the same NIC model
 * on the host, a device whose PCIe link trained below its own maximum width or speed.
 */
#include "cmd_check.h"
#include "findings.h"
#include "ibc_common.h"
#include "ibc_csv.h"
#include "ibc_sysfs.h"
#include "machine.h"
#include "opts.h"
#include "schema.h"
#include "topo.h"
#include "verdict.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define MAX_PORTS 8

/* --expect: -1 / NAN / "" when not given */
struct expect {
	long gpus, nics, numa, width, gdr;
	double rate, memlock_mib;
	bool memlock_unlimited;
	char driver[32];
};

struct check {
	const char *root; /* sysfs root for the reads, NULL: no sysfs facts */
	struct expect ex;
	struct ibc_csv_writer *csv;
	struct bench_report_cfg rep; /* run id, start time, run directory */
	char host[64];
	struct rpt_findings f;
	struct rpt_cases cases;
	int facts;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ibcoll check [--expect K=V,...] [--topology-xml F] [--sysfs-root DIR]\n"
		"                    [--out DIR]\n\n"
		"Preflight of this host, no traffic: GPUs, NICs, NUMA nodes (hwloc); per NIC port\n"
		"state, physical state, rate, link layer, RoCE GIDs, firmware and board id; PCIe\n"
		"link speed and width against their maximum for every GPU and NIC; each GPU's\n"
		"nearest NIC; the memlock limit; the NVIDIA driver and nvidia-peermem. Writes\n"
		"check.csv (the facts), findings.csv, summary.json, junit.xml and ibcoll.prom.\n"
		"Run one per host: srun --ntasks-per-node=1 ibcoll check --out DIR/$(hostname)\n\n"
		"  --expect LIST       gpus=N, nics=N, numa=N (counts), rate=GBPS (every NIC port),\n"
		"                      width=LANES (every GPU and NIC PCIe link), memlock=MIB or\n"
		"                      unlimited, driver=VERSION (NVIDIA driver at least), gdr=1\n"
		"                      (nvidia-peermem loaded)\n"
		"  --topology-xml F    an hwloc XML file instead of this machine\n"
		"  --sysfs-root DIR    read sysfs facts below DIR (default IBCOLL_SYSFS_ROOT or /sys;\n"
		"                      with --topology-xml only when one of them is given)\n"
		"  --out DIR           report directory (default ibcoll-results/<time>-<run_id>)\n\n"
		"Default rules (findings without --expect): a port not ACTIVE or not LinkUp, a port\n"
		"slower than the fastest ACTIVE port of the same NIC model here, a PCIe link below\n"
		"its own maximum width or speed.\n\n"
		"exit codes: 0 no finding, 1 findings, 2 usage error, 3 a report cannot be written\n");
}

/* "gpus=8,nics=8,rate=400,width=16": 0 or -EINVAL with the item in err */
static int parse_expect(const char *arg, struct expect *e, char *err, size_t len)
{
	char buf[512], *save = NULL, *it;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
		char *v = strchr(it, '=');
		int bad;

		if (!v) {
			snprintf(err, len, "--expect '%s': expected KEY=VALUE", it);
			return -EINVAL;
		}
		*v++ = '\0';
		if (!strcmp(it, "gpus") || !strcmp(it, "nics") || !strcmp(it, "numa") ||
		    !strcmp(it, "width") || !strcmp(it, "gdr"))
			bad = ibc_parse_int(v, 0, 1 << 20,
					    !strcmp(it, "gpus")	  ? &e->gpus
					    : !strcmp(it, "nics") ? &e->nics
					    : !strcmp(it, "numa") ? &e->numa
					    : !strcmp(it, "width") ? &e->width
								   : &e->gdr);
		else if (!strcmp(it, "rate"))
			bad = ibc_parse_double(v, &e->rate) || !(e->rate > 0);
		else if (!strcmp(it, "memlock"))
			bad = !(e->memlock_unlimited = !strcmp(v, "unlimited")) &&
			      (ibc_parse_double(v, &e->memlock_mib) || !(e->memlock_mib > 0));
		else if (!strcmp(it, "driver"))
			bad = !v[0] || snprintf(e->driver, sizeof(e->driver), "%s", v) >=
					   (int)sizeof(e->driver);
		else {
			snprintf(err, len, "--expect: unknown key '%s' (gpus, nics, numa, rate, "
					   "width, memlock, driver, gdr)", it);
			return -EINVAL;
		}
		if (bad) {
			snprintf(err, len, "--expect %s=%s: not a valid value", it, v);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- facts, cases and findings ---- */

static void fact(struct check *c, const char *item, const char *name, const char *key,
		 const char *value, const char *expected, const char *status)
{
	char sv[8];
	const char *v[RPT_CHECK_NCOLS] = { sv,	 c->rep.run_id, c->host,  item,  name,
					   key, value,	   expected, status };

	snprintf(sv, sizeof(sv), "%d", RPT_SCHEMA_VERSION);
	if (c->csv && ibc_csv_add(c->csv, v) == 0)
		c->facts++;
}

/* A rule evaluated: a passed case, or a finding and a failed case. */
static void rule(struct check *c, bool failed, const char *kind, const char *nic,
		 double measured, double expected, const char *unit, const char *what,
		 const char *evidence)
{
	struct rpt_finding *x;

	if (!failed) {
		rpt_cases_add(&c->cases, "preflight", what, NULL);
		return;
	}
	x = rpt_findings_add(&c->f, "preflight", kind);
	if (x) {
		snprintf(x->host, sizeof(x->host), "%s", c->host);
		snprintf(x->nic, sizeof(x->nic), "%s", nic ? nic : "");
		x->measured = measured;
		x->expected = expected;
		snprintf(x->unit, sizeof(x->unit), "%s", unit);
		snprintf(x->evidence, sizeof(x->evidence), "%s", evidence);
	}
	rpt_cases_add(&c->cases, "preflight", what, evidence);
}

static void count_fact(struct check *c, const char *key, long have, long want)
{
	char v[24], e[24] = "", what[96], ev[200];
	bool bad = want >= 0 && have != want;

	snprintf(v, sizeof(v), "%ld", have);
	if (want >= 0)
		snprintf(e, sizeof(e), "%ld", want);
	fact(c, "host", c->host, key, v, e, want < 0 ? "info" : bad ? "finding" : "ok");
	if (want < 0)
		return;
	snprintf(what, sizeof(what), "host %s: %s", c->host, key);
	snprintf(ev, sizeof(ev), "host %s has %ld %s, expected %ld", c->host, have, key, want);
	rule(c, bad, "host", NULL, (double)have, (double)want, key, what, ev);
}

/* "550.54.15" >= "535.104": numeric fields compared left to right */
static int version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		a += *a == '.';
		b += *b == '.';
		if ((*a && !(*a >= '0' && *a <= '9')) || (*b && !(*b >= '0' && *b <= '9')))
			break;
	}
	return 0;
}

static void host_facts(struct check *c)
{
	struct rlimit rl;
	char v[64] = "", e[48] = "", ev[240];
	bool unl, peermem;

	getrlimit(RLIMIT_MEMLOCK, &rl);
	unl = rl.rlim_cur == RLIM_INFINITY;
	if (unl)
		snprintf(v, sizeof(v), "unlimited");
	else
		snprintf(v, sizeof(v), "%.1f MiB", (double)rl.rlim_cur / 1048576.0);
	if (c->ex.memlock_unlimited || !isnan(c->ex.memlock_mib)) {
		double mib = unl ? INFINITY : (double)rl.rlim_cur / 1048576.0;
		bool bad = c->ex.memlock_unlimited ? !unl : mib < c->ex.memlock_mib;

		snprintf(e, sizeof(e), c->ex.memlock_unlimited ? "unlimited" : "%.0f MiB",
			 c->ex.memlock_mib);
		snprintf(ev, sizeof(ev), "host %s: the memlock limit is %s, expected %s (RDMA pins "
			 "its buffers: set memlock in limits.conf or Slurm's PropagateResourceLimits)",
			 c->host, v, e);
		fact(c, "host", c->host, "memlock", v, e, bad ? "finding" : "ok");
		rule(c, bad, "host", NULL, unl ? NAN : mib, c->ex.memlock_mib, "MiB",
		     "memlock limit", ev);
	} else {
		fact(c, "host", c->host, "memlock", v, "", "info");
	}
	v[0] = '\0';
	if (c->root)
		ibc_sysfs_read_line(c->root, v, sizeof(v), "module/nvidia/version");
	fact(c, "host", c->host, "nvidia_driver", v[0] ? v : "not loaded", c->ex.driver,
	     c->ex.driver[0] ? (v[0] && version_cmp(v, c->ex.driver) >= 0 ? "ok" : "finding")
			     : "info");
	if (c->ex.driver[0]) {
		snprintf(ev, sizeof(ev), "host %s: NVIDIA driver %s, expected %s or newer", c->host,
			 v[0] ? v : "not loaded", c->ex.driver);
		rule(c, !v[0] || version_cmp(v, c->ex.driver) < 0, "host", NULL, NAN, NAN, "",
		     "NVIDIA driver version", ev);
	}
	peermem = c->root && ibc_sysfs_exists(c->root, "module/nvidia_peermem");
	fact(c, "host", c->host, "nvidia_peermem", peermem ? "loaded" : "not loaded",
	     c->ex.gdr > 0 ? "loaded" : "", c->ex.gdr > 0 ? (peermem ? "ok" : "finding") : "info");
	if (c->ex.gdr > 0) {
		snprintf(ev, sizeof(ev), "host %s: nvidia_peermem is not loaded, so GPUDirect RDMA "
			 "through peer memory is off (modprobe nvidia-peermem, or use dma-buf)", c->host);
		rule(c, !peermem, "host", NULL, NAN, NAN, "", "GPUDirect RDMA (nvidia_peermem)", ev);
	}
}

/* A GPU's or NIC's PCIe link against its own maximum and --expect width. */
static void pcie_facts(struct check *c, const struct topo_device *d, const char *kind)
{
	struct topo_pcie_link l;
	char v[64], e[64], what[128], ev[300];
	long want_w;
	bool bad_w, bad_s;

	if (!c->root || topo_sysfs_pcie_link(c->root, d->busid, &l))
		return;
	want_w = c->ex.width >= 0 ? c->ex.width : l.max_width;
	bad_w = l.cur_width && want_w > 0 && l.cur_width < want_w;
	/* an idle GPU trains its link down to save power (2.5 GT/s): its speed is no finding */
	bad_s = strcmp(kind, "gpu") && l.cur_gts > 0 && l.max_gts > 0 && l.cur_gts < l.max_gts;
	snprintf(v, sizeof(v), "x%d", l.cur_width);
	snprintf(e, sizeof(e), "x%ld", want_w);
	fact(c, kind, d->name, "pcie_width", v, e, bad_w ? "finding" : "ok");
	snprintf(what, sizeof(what), "%s %s (%s): PCIe width", kind, d->name, d->busid);
	snprintf(ev, sizeof(ev), "host %s %s %s (%s): PCIe link trained at x%d, %s x%ld", c->host,
		 kind, d->name, d->busid, l.cur_width,
		 c->ex.width >= 0 ? "expected" : "its maximum is", want_w);
	rule(c, bad_w, !strcmp(kind, "nic") ? "nic" : "host", !strcmp(kind, "nic") ? d->name : NULL,
	     l.cur_width, (double)want_w, "lanes", what, ev);
	snprintf(v, sizeof(v), "%g GT/s", l.cur_gts);
	snprintf(e, sizeof(e), "%g GT/s", l.max_gts);
	fact(c, kind, d->name, "pcie_speed", v, e, bad_s ? "finding" : strcmp(kind, "gpu") ? "ok" : "info");
	if (!strcmp(kind, "gpu"))
		return;
	snprintf(what, sizeof(what), "%s %s (%s): PCIe speed", kind, d->name, d->busid);
	snprintf(ev, sizeof(ev), "host %s %s %s (%s): PCIe link at %g GT/s, its maximum is %g GT/s",
		 c->host, kind, d->name, d->busid, l.cur_gts, l.max_gts);
	rule(c, bad_s, !strcmp(kind, "nic") ? "nic" : "host", !strcmp(kind, "nic") ? d->name : NULL,
	     l.cur_gts, l.max_gts, "GT/s", what, ev);
}

struct nic_ports {
	struct topo_device d;
	struct topo_port p[MAX_PORTS];
	int n;
};

/* The fastest ACTIVE port rate among the NICs of the same PCI model as nics[i]. */
static double model_best(const struct nic_ports *nics, int count, int i)
{
	double best = 0;
	int k, j;

	for (k = 0; k < count; k++) {
		if (nics[k].d.vendor != nics[i].d.vendor || nics[k].d.device != nics[i].d.device)
			continue;
		for (j = 0; j < nics[k].n; j++)
			if (nics[k].p[j].state == 4 && nics[k].p[j].rate_gbps > best)
				best = nics[k].p[j].rate_gbps;
	}
	return best;
}

static const char *gid_evidence(const char *host, const char *port)
{
	static char ev[200];

	snprintf(ev, sizeof(ev), "host %s NIC %s (RoCE): the GID table is empty (no IP address on "
		 "its netdev? RoCE needs one)", host, port);
	return ev;
}

/* Physical state, link layer and, on Ethernet (RoCE), how many GIDs the table holds. */
static void port_more(struct check *c, const char *dev, int port, const char *name,
		      bool *linkup)
{
	char v[64], g[64];
	int i, gids = 0;

	*linkup = true;
	if (!ibc_sysfs_read_line(c->root, v, sizeof(v), "class/infiniband/%s/ports/%d/phys_state",
				 dev, port)) {
		*linkup = strstr(v, "LinkUp") != NULL;
		fact(c, "port", name, "phys_state", v, "LinkUp", *linkup ? "ok" : "finding");
	}
	if (ibc_sysfs_read_line(c->root, v, sizeof(v), "class/infiniband/%s/ports/%d/link_layer",
				dev, port))
		return;
	fact(c, "port", name, "link_layer", v, "", "info");
	if (strcmp(v, "Ethernet"))
		return;
	for (i = 0; i < 16; i++)
		if (!ibc_sysfs_read_line(c->root, g, sizeof(g),
					 "class/infiniband/%s/ports/%d/gids/%d", dev, port, i) &&
		    strspn(g, "0:") != strlen(g))
			gids++;
	snprintf(v, sizeof(v), "%d", gids);
	fact(c, "port", name, "roce_gids", v, "", gids ? "info" : "finding");
	if (!gids) {
		snprintf(g, sizeof(g), "%.40s", c->host);
		snprintf(v, sizeof(v), "%.60s", name);
		rule(c, true, "nic", name, 0, 1, "gids", name, gid_evidence(g, v));
	}
}

/* One port's facts; judged (rules applied) for the NICs the GPUs use (all NICs without GPUs):
 * a storage NIC's port is reported, not judged. A port that is not ACTIVE has no rate to
 * judge. */
static void port_rules(struct check *c, const struct nic_ports *n, int j, double want,
		       bool judge)
{
	const struct topo_port *p = &n->p[j];
	char name[80], v[64], e[32], ev[300];
	bool linkup, bad_rate = want > 0 && p->rate_gbps > 0 && p->rate_gbps < want;
	bool active = p->state == 4 || p->state == 5;

	snprintf(name, sizeof(name), "%s:%d", n->d.name, p->port);
	if (!p->state) /* no state file: nothing to judge */
		active = true;
	if (!judge || !active)
		bad_rate = false;
	if (!judge) {
		fact(c, "port", name, "state", p->state_name, "", "info");
		snprintf(v, sizeof(v), "%g", p->rate_gbps);
		fact(c, "port", name, "rate_gbps", v, "", "info");
		return;
	}
	fact(c, "port", name, "state", p->state_name, "ACTIVE", active ? "ok" : "finding");
	snprintf(ev, sizeof(ev), "host %s NIC %s port %d is %s, not ACTIVE (cable, switch port or "
		 "subnet manager)", c->host, n->d.name, p->port, p->state_name);
	rule(c, !active, "nic", name, p->state, 4, "state", name, ev);
	snprintf(v, sizeof(v), "%g", p->rate_gbps);
	snprintf(e, sizeof(e), "%g", want);
	fact(c, "port", name, "rate_gbps", v, want > 0 ? e : "", bad_rate ? "finding" : "ok");
	snprintf(ev, sizeof(ev), "host %s NIC %s port %d runs at %g Gb/s (%s), %s %g Gb/s", c->host,
		 n->d.name, p->port, p->rate_gbps, p->rate_text,
		 c->ex.rate > 0 ? "expected" : "the fastest port of the same model here runs at",
		 want);
	if (active)
		rule(c, bad_rate, "nic", name, p->rate_gbps, want, "Gb/s", name, ev);
	port_more(c, n->d.name, p->port, name, &linkup);
	if (!linkup) {
		snprintf(ev, sizeof(ev), "host %s NIC %s port %d: physical state is not LinkUp",
			 c->host, n->d.name, p->port);
		rule(c, true, "nic", name, NAN, NAN, "", name, ev);
	}
}

/* NICs the GPUs are paired with (all of them on a host without GPUs). */
static void compute_nics(struct topo *t, int count, bool *used)
{
	int ngpu = topo_gpu_count(t), *nic_of = calloc((size_t)ngpu + 1, sizeof(int)), g;

	for (g = 0; g < count; g++)
		used[g] = ngpu == 0 || !nic_of;
	if (nic_of && ngpu && topo_pair(t, ngpu, nic_of) == 0)
		for (g = 0; g < ngpu; g++)
			if (nic_of[g] >= 0 && nic_of[g] < count)
				used[nic_of[g]] = true;
	free(nic_of);
}

static void nic_facts(struct check *c, struct topo *t)
{
	int count = topo_nic_count(t), i, j;
	struct nic_ports *nics = calloc((size_t)count + 1, sizeof(*nics));
	bool *used = calloc((size_t)count + 1, sizeof(bool));
	char v[128];

	if (used)
		compute_nics(t, count, used);

	for (i = 0; nics && i < count; i++) {
		topo_get_device(t, TOPO_DEV_NIC, i, &nics[i].d);
		if (c->root)
			nics[i].n = topo_sysfs_ports(c->root, nics[i].d.name, nics[i].p, MAX_PORTS);
		if (nics[i].n < 0)
			nics[i].n = 0;
	}
	for (i = 0; nics && used && i < count; i++) {
		const struct topo_device *d = &nics[i].d;

		fact(c, "nic", d->name, "role", used[i] ? "paired with a GPU (judged)" : "not paired "
			 "with a GPU (storage?): reported, not judged", "", "info");
		fact(c, "nic", d->name, "busid", d->busid, "", "info");
		snprintf(v, sizeof(v), "%d", d->numa);
		fact(c, "nic", d->name, "numa", v, "", "info");
		if (c->root && !ibc_sysfs_read_line(c->root, v, sizeof(v),
						    "class/infiniband/%s/fw_ver", d->name))
			fact(c, "nic", d->name, "firmware", v, "", "info");
		if (c->root && !ibc_sysfs_read_line(c->root, v, sizeof(v),
						    "class/infiniband/%s/board_id", d->name))
			fact(c, "nic", d->name, "board_id", v, "", "info");
		for (j = 0; j < nics[i].n; j++)
			port_rules(c, &nics[i], j,
				   c->ex.rate > 0 ? c->ex.rate : model_best(nics, count, i), used[i]);
		if (used[i])
			pcie_facts(c, d, "nic");
	}
	free(used);
	free(nics);
}

static void gpu_facts(struct check *c, struct topo *t)
{
	int count = topo_gpu_count(t), i;
	int *nic_of = calloc((size_t)count + 1, sizeof(int));
	struct topo_device d, n;
	char v[128];

	if (nic_of && count)
		topo_pair(t, count, nic_of);
	for (i = 0; nic_of && i < count; i++) {
		topo_get_device(t, TOPO_DEV_GPU, i, &d);
		fact(c, "gpu", d.name, "busid", d.busid, "", "info");
		snprintf(v, sizeof(v), "%d", d.numa);
		fact(c, "gpu", d.name, "numa", v, "", "info");
		if (nic_of[i] >= 0 && !topo_get_device(t, TOPO_DEV_NIC, nic_of[i], &n))
			snprintf(v, sizeof(v), "%s (%s)", n.name,
				 topo_path_name(topo_gpu_nic_path(t, i, nic_of[i])));
		else
			snprintf(v, sizeof(v), "none");
		fact(c, "gpu", d.name, "nearest_nic", v, "", strstr(v, "SYS") ? "warning" : "info");
		pcie_facts(c, &d, "gpu");
	}
	free(nic_of);
}

/* The sysfs root of the reads: --sysfs-root, else IBCOLL_SYSFS_ROOT or /sys for the live
 * machine; an XML topology describes another machine, so only an explicit root. */
static const char *pick_root(const char *opt, const char *xml)
{
	const char *env = getenv("IBCOLL_SYSFS_ROOT");

	if (opt)
		return opt;
	if (xml)
		return env && *env ? env : NULL;
	return ibc_sysfs_root();
}

static int open_report(struct check *c, const char *out)
{
	static const char *const cols[] = { RPT_CHECK_COLUMNS };
	char path[600];
	int rc;

	c->rep.out = out;
	bench__stamp(&c->rep);
	rc = ibc_mkdir_p(c->rep.outdir);
	if (rc) {
		fprintf(stderr, "ibcoll check: cannot create %s: %s\n", c->rep.outdir, strerror(-rc));
		return IBC_EXIT_ENV;
	}
	snprintf(path, sizeof(path), "%s/check.csv", c->rep.outdir);
	rc = ibc_csv_create(path, cols, RPT_CHECK_NCOLS, &c->csv);
	if (rc) {
		fprintf(stderr, "ibcoll check: %s\n", ibc_err_get());
		return rc == -EEXIST ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	return 0;
}

static int run_check(struct check *c, struct topo *t, const char *out)
{
	const char *dir = c->rep.outdir;
	struct rpt_run_info info = { "check", c->rep.run_id, c->rep.started, 0 };
	int packages = 0, numas = 0, cores = 0, rc = open_report(c, out);

	if (rc)
		return rc;
	topo_machine(t, &packages, &numas, &cores, NULL);
	count_fact(c, "gpus", topo_gpu_count(t), c->ex.gpus);
	count_fact(c, "nics", topo_nic_count(t), c->ex.nics);
	count_fact(c, "numa", numas, c->ex.numa);
	host_facts(c);
	nic_facts(c, t);
	gpu_facts(c, t);
	rc = ibc_csv_commit(c->csv);
	ibc_csv_close(c->csv);
	c->csv = NULL;
	if (rc) {
		fprintf(stderr, "ibcoll check: writing %s/check.csv failed: %s\n", dir,
			strerror(-rc));
		return IBC_EXIT_ENV;
	}
	printf("# ibcoll check: host %s, %d GPU(s), %d NIC(s), %d NUMA node(s), %d core(s); "
	       "sysfs %s; %d facts (check.csv), %d rules checked\n",
	       c->host, topo_gpu_count(t), topo_nic_count(t), numas, cores,
	       c->root ? c->root : "not read (an XML topology without --sysfs-root)", c->facts,
	       c->cases.n);
	printf("# Report: %s/check.csv\n", dir);
	return bench__conclude(dir, &info, NULL, &c->f, &c->cases);
}

int bench_check_main(int argc, char **argv)
{
	static const struct option lo[] = { { "expect", required_argument, NULL, 'E' },
					    { "topology-xml", required_argument, NULL, 'X' },
					    { "sysfs-root", required_argument, NULL, 'S' },
					    { "out", required_argument, NULL, 'O' },
					    { "help", no_argument, NULL, 'h' },
					    { NULL, 0, NULL, 0 } };
	struct check c = { .ex = { -1, -1, -1, -1, -1, NAN, NAN, false, "" } };
	const char *xml = NULL, *root = NULL, *out = NULL;
	struct topo *t = NULL;
	char err[300];
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'E' && parse_expect(optarg, &c.ex, err, sizeof(err))) {
			fprintf(stderr, "ibcoll check: %s\n", err);
			return IBC_EXIT_USAGE;
		} else if (opt == 'X' || opt == 'S' || opt == 'O') {
			*(opt == 'X' ? &xml : opt == 'S' ? &root : &out) = optarg;
		} else if (opt == '?' || opt == ':' || (opt != 'E')) {
			fprintf(stderr, "ibcoll check: %s '%s' (see ibcoll check --help)\n",
				opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
			return IBC_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ibcoll check: unexpected argument '%s'\n", argv[optind]);
		return IBC_EXIT_USAGE;
	}
	if (topo_load(xml, &t)) {
		fprintf(stderr, "ibcoll check: %s%s%s\n", xml ? "--topology-xml " : "",
			xml ? xml : "", ibc_err_get());
		return xml ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	c.root = pick_root(root, xml);
	topo_set_sysfs_root(t, c.root);
	snprintf(c.host, sizeof(c.host), "%s", ibc_hostname());
	rc = run_check(&c, t, out);
	topo_destroy(t);
	rpt_cases_free(&c.cases);
	rpt_findings_free(&c.f);
	return rc;
}
