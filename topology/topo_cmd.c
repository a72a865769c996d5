/* SPDX-License-Identifier: MIT */
/*
 * topo_cmd.c - `ibcoll topo`: the GPU x NIC matrix, each device's NUMA node and cores, the
 * pairing of local ranks, and warnings; --csv writes the same facts.
 */
#include "topo_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibc_csv.h"
#include "ibc_common.h"

#define TOPO_NP_MAX	4096
#define TOPO_CSV_SCHEMA "1"

struct topo_cmd_opts {
	const char *xml;	/* borrowed from argv; NULL: the live machine */
	const char *csv;	/* borrowed from argv; NULL: no CSV */
	const char *sysfs_root; /* borrowed from argv; NULL: the default */
	long np;		/* local ranks to pair; 0: one per GPU (or 1) */
	double expect_gbps;	/* 0: the fastest port of the same model */
	int strict;		/* exit 1 when there are warnings */
	int help;
};

struct topo_lines {
	char **v; /* owned, n strings each owned */
	int n, cap;
	int oom; /* a line was lost for want of memory */
};

static const char topo_usage[] =
    "usage: ibcoll topo [options]\n"
    "\n"
    "Show this node's NVIDIA GPUs and RDMA NICs, the PCIe path between every GPU and NIC\n"
    "(PIX, PXB, PHB, NODE, SYS as nvidia-smi topo -m), each device's socket, NUMA node and\n"
    "cores, which NIC and cores each local rank uses, and what costs bandwidth. Problems are\n"
    "printed as lines starting with 'warning:' (grep ^warning:); a healthy node prints none.\n"
    "\n"
    "options:\n"
    "  --topology-xml FILE  read an hwloc v2 XML topology (lstopo --of xml) instead of this\n"
    "                       machine; ports and PCIe links are then read only from\n"
    "                       --sysfs-root or $IBCOLL_SYSFS_ROOT\n"
    "  --np N               local ranks to pair (1..4096; default: one per GPU, or 1)\n"
    "  --csv FILE           also write the facts as CSV (never overwrites: FILE must not exist)\n"
    "  --expect-gbps N      expected port rate in Gb/s (default: the fastest ACTIVE port of the\n"
    "                       same NIC model on this node)\n"
    "  --sysfs-root DIR     read ports and PCIe links below DIR instead of /sys\n"
    "  --strict             exit 1 when there is any warning\n"
    "  -h, --help           this text\n"
    "\n"
    "exit status: 0 done (warnings do not change it unless --strict), 1 warnings with --strict,\n"
    "2 usage error (bad option or value, unreadable or malformed --topology-xml file, existing\n"
    "--csv file), 3 environment failure (hwloc cannot read this machine, CSV write failed).\n";

/* ---- options --------------------------------------------------------------------------- */

static int topo_opt_value(int argc, char **argv, int *i, const char *name, const char **val,
			  FILE *err)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
	} else if (*i + 1 < argc) {
		*val = argv[++*i];
	} else {
		fprintf(err, "ibcoll topo: option %s needs a value (see ibcoll topo --help)\n",
			name);
		return -EINVAL;
	}
	return 1;
}

static int topo_opt_check(const char *name, const char *val, FILE *err)
{
	if (*val)
		return 0;
	fprintf(err, "ibcoll topo: option %s needs a value, got an empty one\n", name);
	return -EINVAL;
}

static int topo_opt_number(struct topo_cmd_opts *o, const char *name, const char *val, FILE *err)
{
	if (strcmp(name, "--np") == 0) {
		if (ibc_parse_int(val, 1, TOPO_NP_MAX, &o->np) == 0)
			return 0;
		fprintf(err, "ibcoll topo: --np '%s' is not a whole number from 1 to %d\n", val,
			TOPO_NP_MAX);
		return -EINVAL;
	}
	if (ibc_parse_double(val, &o->expect_gbps) == 0 && o->expect_gbps > 0 &&
	    o->expect_gbps <= 100000)
		return 0;
	fprintf(err,
		"ibcoll topo: --expect-gbps '%s' is not a rate in Gb/s above 0 and at most "
		"100000\n",
		val);
	return -EINVAL;
}

static int topo_parse_opts(int argc, char **argv, struct topo_cmd_opts *o, FILE *err)
{
	static const char *const valued[] = {"--topology-xml", "--csv", "--sysfs-root", "--np",
					     "--expect-gbps"};
	int i, j, rc;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		const char *val = NULL;

		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			o->help = 1;
			continue;
		}
		if (strcmp(argv[i], "--strict") == 0) {
			o->strict = 1;
			continue;
		}
		for (j = 0, rc = 0; j < (int)IBC_ARRAY_SIZE(valued) && rc == 0; j++)
			rc = topo_opt_value(argc, argv, &i, valued[j], &val, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			fprintf(err, "ibcoll topo: unknown %s '%s' (see ibcoll topo --help)\n",
				argv[i][0] == '-' ? "option" : "argument", argv[i]);
			return -EINVAL;
		}
		j--;
		if (topo_opt_check(valued[j], val, err) < 0)
			return -EINVAL;
		if (j == 0)
			o->xml = val;
		else if (j == 1)
			o->csv = val;
		else if (j == 2)
			o->sysfs_root = val;
		else if (topo_opt_number(o, valued[j], val, err) < 0)
			return -EINVAL;
	}
	return 0;
}

/* ---- warnings collected for printing and CSV -------------------------------------------- */

static void topo_collect(void *arg, const char *line)
{
	struct topo_lines *l = arg;
	char **v;

	if (l->n == l->cap) {
		v = realloc(l->v, (size_t)(l->cap ? 2 * l->cap : 16) * sizeof(*v));
		if (!v) {
			l->oom = 1;
			return;
		}
		l->v = v;
		l->cap = l->cap ? 2 * l->cap : 16;
	}
	l->v[l->n] = strdup(line);
	if (!l->v[l->n]) {
		l->oom = 1;
		return;
	}
	l->n++;
}

static void topo_lines_free(struct topo_lines *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* ---- text report ----------------------------------------------------------------------- */

static const char *topo_plural(int n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int topo_name_width(const struct topo *t)
{
	int w = 6, i;

	for (i = 0; i < t->nnic; i++)
		w = IBC_MAX(w, (int)strlen(t->nics[i].name) + 2);
	for (i = 0; i < t->ngpu; i++)
		w = IBC_MAX(w, (int)strlen(t->gpus[i].name) + 2);
	return w;
}

static void topo_print_header(const struct topo *t, FILE *out)
{
	fprintf(out, "ibcoll topo: %s%s%s%s, hwloc %s\n", t->hostname[0] ? t->hostname : "machine",
		t->from_xml ? " (from " : " (this machine)", t->from_xml ? t->source : "",
		t->from_xml ? ")" : "", HWLOC_VERSION);
	fprintf(out, "found: %d %s, %d NUMA %s, %d %s, %d %s; %d NVIDIA %s; %d RDMA %s\n",
		t->npackages, topo_plural(t->npackages, "socket", "sockets"), t->nnuma,
		topo_plural(t->nnuma, "node", "nodes"), t->ncores,
		topo_plural(t->ncores, "core", "cores"), t->npus,
		topo_plural(t->npus, "CPU", "CPUs"), t->ngpu, topo_plural(t->ngpu, "GPU", "GPUs"),
		t->nnic, topo_plural(t->nnic, "NIC", "NICs"));
}

static void topo_print_explain(const struct topo *t, FILE *out)
{
	if (t->ngpu && t->nnic)
		return;
	fputc('\n', out);
	if (!t->ngpu && !t->nnic)
		fprintf(out,
			"No NVIDIA GPU (PCI vendor 10de, class 0300 or 0302) and no RDMA NIC (a "
			"device with an\nInfiniBand verbs device such as mlx5_0) were found, so "
			"there is nothing to pair: ranks\nuse host memory over the shm and tcp "
			"transports, each bound to its own block of cores\n(below). If this node "
			"should have GPUs or NICs, check lspci, nvidia-smi and ibv_devices.\n");
	else if (!t->nnic)
		fprintf(out,
			"No RDMA NIC (a device with an InfiniBand verbs device such as mlx5_0) "
			"was found: each rank\nuses its GPU and the cores of the GPU's NUMA "
			"node; traffic between nodes goes over TCP.\n");
	else
		fprintf(out,
			"No NVIDIA GPU (PCI vendor 10de, class 0300 or 0302) was found: ranks use "
			"host memory, each\nwith the NIC and cores listed below.\n");
}

static void topo_print_matrix(const struct topo *t, FILE *out)
{
	int w = topo_name_width(t), g, k;

	if (!t->ngpu || !t->nnic)
		return;
	fprintf(out, "\nGPU/NIC paths (as nvidia-smi topo -m):\n%-*s", w, "");
	for (k = 0; k < t->nnic; k++)
		fprintf(out, "%-*s", k + 1 < t->nnic ? w : 0, t->nics[k].name);
	fputc('\n', out);
	for (g = 0; g < t->ngpu; g++) {
		fprintf(out, "%-*s", w, t->gpus[g].name);
		for (k = 0; k < t->nnic; k++)
			fprintf(out, "%-*s", k + 1 < t->nnic ? w : 0,
				topo_path_name(t->paths[g * t->nnic + k]));
		fputc('\n', out);
	}
}

static void topo_print_link(const struct topo *t, const struct topo_dev *d, FILE *out)
{
	struct topo_pcie_link l;

	if (!t->sysfs_on || topo_sysfs_pcie_link(t->sysfs_root, d->busid, &l) < 0)
		return;
	fprintf(out, "  pcie x%d %g GT/s (max x%d %g GT/s)", l.cur_width, l.cur_gts, l.max_width,
		l.max_gts);
}

static void topo_print_dev(const struct topo *t, int nic, const struct topo_dev *d, int w,
			   FILE *out)
{
	struct topo_port p;
	char sock[16] = "?";

	if (d->socket >= 0)
		snprintf(sock, sizeof(sock), "%d", d->socket);
	fprintf(out, "  %-*s%-14s%04x:%04x  socket %-3s numa %-3s cpus %s", w, d->name, d->busid,
		d->vendor, d->device, sock, d->numas[0] ? d->numas : "?",
		d->cpus[0] ? d->cpus : "?");
	if (nic >= 0 && topo__best_port(t, nic, &p) == 0)
		fprintf(out, "  port %d %s%s%s", p.port, p.state_name, p.rate_text[0] ? " " : "",
			p.rate_text);
	topo_print_link(t, d, out);
	fputc('\n', out);
}

static void topo_print_devices(const struct topo *t, FILE *out)
{
	int w = topo_name_width(t), i;

	if (!t->ngpu && !t->nnic)
		return;
	fprintf(out, "\ndevices:\n");
	for (i = 0; i < t->ngpu; i++)
		topo_print_dev(t, -1, &t->gpus[i], w, out);
	for (i = 0; i < t->nnic; i++)
		topo_print_dev(t, i, &t->nics[i], w, out);
}

static void topo_print_pairing(struct topo *t, int np, FILE *out)
{
	struct topo_rank_info info;
	int r, w = topo_name_width(t);

	fprintf(out, "\npairing for %d local %s:\n  %-6s%-*s%-*s%-6s%-6s%s\n", np,
		topo_plural(np, "rank", "ranks"), "rank", w, "gpu", w, "nic", "path", "numa",
		"cpus");
	for (r = 0; r < np; r++) {
		char numa[16] = "-";

		if (topo_pick(t, r, np, &info) < 0) {
			fprintf(out, "  %-6d(%s)\n", r, ibc_err_get());
			continue;
		}
		if (info.numa >= 0)
			snprintf(numa, sizeof(numa), "%d", info.numa);
		fprintf(out, "  %-6d%-*s%-*s%-6s%-6s%s\n", r, w, info.gpu[0] ? info.gpu : "-", w,
			info.nic[0] ? info.nic : "-",
			info.path != TOPO_PATH_NONE ? topo_path_name(info.path) : "-", numa,
			info.cpus[0] ? info.cpus : "-");
	}
}

static void topo_print_legend(const struct topo *t, FILE *out)
{
	fputc('\n', out);
	if (t->ngpu && t->nnic)
		fprintf(out,
			"legend: PIX = under one PCIe switch; PXB = through several PCIe "
			"switches, no host bridge;\n        PHB = through a PCIe host bridge "
			"(CPU); NODE = across host bridges of one NUMA node;\n        SYS = across "
			"the interconnect between NUMA nodes (sockets).\n");
	if (t->sysfs_on)
		fprintf(out, "ports and PCIe links: read from %s\n", t->sysfs_root);
	else
		fprintf(out, "ports and PCIe links: not checked (the topology comes from a file; "
			     "give --sysfs-root DIR or\n        IBCOLL_SYSFS_ROOT to read a sysfs "
			     "tree)\n");
}

/* ---- CSV ------------------------------------------------------------------------------- */

enum {
	C_SCHEMA,
	C_HOST,
	C_RECORD,
	C_NAME,
	C_KIND,
	C_BUSID,
	C_MODEL,
	C_SOCKET,
	C_NUMA,
	C_CPUS,
	C_PEER,
	C_PATH,
	C_LOCAL_RANK,
	C_PORT,
	C_STATE,
	C_LINK_GBPS,
	C_PCIE_GTS,
	C_PCIE_MAX_GTS,
	C_PCIE_WIDTH,
	C_PCIE_MAX_WIDTH,
	C_MESSAGE,
	C_NCOLS
};

static const char *const topo_csv_cols[C_NCOLS] = {
    "schema", "host",	   "record",   "name",	       "kind",	     "busid",	       "model",
    "socket", "numa",	   "cpus",     "peer",	       "path",	     "local_rank",     "port",
    "state",  "link_gbps", "pcie_gts", "pcie_max_gts", "pcie_width", "pcie_max_width", "message",
};

struct topo_row {
	const char *v[C_NCOLS]; /* borrowed; NULL = empty */
	char num[C_NCOLS][32];	/* storage for numbers */
};

static void topo_row_init(struct topo_row *r, const struct topo *t, const char *record)
{
	memset(r, 0, sizeof(*r));
	r->v[C_SCHEMA] = TOPO_CSV_SCHEMA;
	r->v[C_HOST] = t->hostname[0] ? t->hostname : ibc_hostname();
	r->v[C_RECORD] = record;
}

static void topo_row_num(struct topo_row *r, int col, const char *fmt, double v, int known)
{
	if (!known)
		return;
	snprintf(r->num[col], sizeof(r->num[col]), fmt, v);
	r->v[col] = r->num[col];
}

static int topo_csv_device(struct ibc_csv_writer *w, struct topo *t, int nic,
			   const struct topo_dev *d)
{
	struct topo_pcie_link l;
	struct topo_port p;
	struct topo_row r;
	char model[16];

	topo_row_init(&r, t, "device");
	snprintf(model, sizeof(model), "%04x:%04x", d->vendor, d->device);
	r.v[C_NAME] = d->name;
	r.v[C_KIND] = d->kind == TOPO_DEV_GPU ? "gpu" : "nic";
	r.v[C_BUSID] = d->busid;
	r.v[C_MODEL] = model;
	topo_row_num(&r, C_SOCKET, "%.0f", d->socket, d->socket >= 0);
	r.v[C_NUMA] = d->numas;
	r.v[C_CPUS] = d->cpus;
	if (nic >= 0 && topo__best_port(t, nic, &p) == 0) {
		topo_row_num(&r, C_PORT, "%.0f", p.port, 1);
		r.v[C_STATE] = p.state_name;
		topo_row_num(&r, C_LINK_GBPS, "%g", p.rate_gbps, p.rate_gbps > 0);
	} else if (nic >= 0) {
		topo_row_num(&r, C_PORT, "%.0f", d->hw_port, d->hw_port > 0);
	}
	if (t->sysfs_on && topo_sysfs_pcie_link(t->sysfs_root, d->busid, &l) == 0) {
		topo_row_num(&r, C_PCIE_GTS, "%g", l.cur_gts, l.cur_gts > 0);
		topo_row_num(&r, C_PCIE_MAX_GTS, "%g", l.max_gts, l.max_gts > 0);
		topo_row_num(&r, C_PCIE_WIDTH, "%.0f", l.cur_width, l.cur_width > 0);
		topo_row_num(&r, C_PCIE_MAX_WIDTH, "%.0f", l.max_width, l.max_width > 0);
	}
	return ibc_csv_add(w, r.v);
}

/* The GPU x NIC path rows. */
static int topo_csv_paths(struct ibc_csv_writer *w, struct topo *t)
{
	struct topo_row r;
	int g, k, rc = 0;

	for (g = 0; g < t->ngpu && !rc; g++) {
		for (k = 0; k < t->nnic && !rc; k++) {
			topo_row_init(&r, t, "path");
			r.v[C_NAME] = t->gpus[g].name;
			r.v[C_PEER] = t->nics[k].name;
			r.v[C_PATH] = topo_path_name(t->paths[g * t->nnic + k]);
			rc = ibc_csv_add(w, r.v);
		}
	}
	return rc;
}

/* The pairing of np local ranks, then the warnings. */
static int topo_csv_pairs(struct ibc_csv_writer *w, struct topo *t, int np,
			  const struct topo_lines *warn)
{
	struct topo_rank_info info;
	struct topo_row r;
	int g, rc = 0;

	for (g = 0; g < np && !rc; g++) {
		if (topo_pick(t, g, np, &info) < 0)
			continue;
		topo_row_init(&r, t, "pair");
		r.v[C_NAME] = info.gpu;
		r.v[C_BUSID] = info.gpu_busid;
		r.v[C_PEER] = info.nic;
		r.v[C_PATH] = topo_path_name(info.path);
		topo_row_num(&r, C_LOCAL_RANK, "%.0f", g, 1);
		topo_row_num(&r, C_NUMA, "%.0f", info.numa, info.numa >= 0);
		r.v[C_CPUS] = info.cpus;
		topo_row_num(&r, C_PORT, "%.0f", info.nic_port, info.nic_port > 0);
		topo_row_num(&r, C_LINK_GBPS, "%g", info.link_gbps, info.link_gbps > 0);
		rc = ibc_csv_add(w, r.v);
	}
	for (g = 0; g < warn->n && !rc; g++) {
		topo_row_init(&r, t, "warning");
		r.v[C_MESSAGE] = warn->v[g];
		rc = ibc_csv_add(w, r.v);
	}
	return rc;
}

/* Every row, added to w (committed by the caller). */
static int topo_csv_rows(struct ibc_csv_writer *w, struct topo *t, int np,
			 const struct topo_lines *warn)
{
	struct topo_row r;
	char summary[160];
	int g, k, rc;

	topo_row_init(&r, t, "machine");
	snprintf(summary, sizeof(summary), "%d sockets, %d NUMA nodes, %d cores, %d CPUs",
		 t->npackages, t->nnuma, t->ncores, t->npus);
	r.v[C_NAME] = t->hostname[0] ? t->hostname : ibc_hostname();
	r.v[C_MESSAGE] = summary;
	rc = ibc_csv_add(w, r.v);
	for (g = 0; g < t->ngpu && !rc; g++)
		rc = topo_csv_device(w, t, -1, &t->gpus[g]);
	for (k = 0; k < t->nnic && !rc; k++)
		rc = topo_csv_device(w, t, k, &t->nics[k]);
	rc = rc ? rc : topo_csv_paths(w, t);
	return rc ? rc : topo_csv_pairs(w, t, np, warn);
}

/* Exclusive create, all rows in one atomic commit (common/ibc_csv.h): readers never see half a
 * file and an existing file is never replaced. */
static int topo_write_csv(const char *path, struct topo *t, int np, const struct topo_lines *warn,
			  FILE *err)
{
	struct ibc_csv_writer *w = NULL;
	int rc = ibc_csv_create(path, topo_csv_cols, C_NCOLS, &w);

	if (!rc) {
		rc = topo_csv_rows(w, t, np, warn);
		rc = rc ? rc : ibc_csv_commit(w);
		ibc_csv_close(w);
	}
	if (!rc)
		return IBC_EXIT_OK;
	if (rc == -EEXIST) {
		fprintf(err,
			"ibcoll topo: --csv %s: %s (it appeared while writing; not overwritten)\n",
			path, strerror(-rc));
		return IBC_EXIT_USAGE;
	}
	if (rc == -ENAMETOOLONG || rc == -EISDIR) {
		fprintf(err, "ibcoll topo: --csv %s: %s\n", path,
			rc == -EISDIR ? "not a file name" : "the path is too long");
		return IBC_EXIT_USAGE;
	}
	fprintf(err, "ibcoll topo: cannot write --csv %s: %s\n", path, strerror(-rc));
	return IBC_EXIT_ENV;
}

/* ---- the subcommand -------------------------------------------------------------------- */

static int topo_cmd_setup(const struct topo_cmd_opts *o, struct topo **t, FILE *err)
{
	struct stat st;
	int rc;

	if (o->csv && lstat(o->csv, &st) == 0) {
		fprintf(err,
			"ibcoll topo: --csv %s already exists; refusing to overwrite it: give "
			"a new file name\n",
			o->csv);
		return IBC_EXIT_USAGE;
	}
	if (o->sysfs_root && (stat(o->sysfs_root, &st) < 0 || !S_ISDIR(st.st_mode))) {
		fprintf(err, "ibcoll topo: --sysfs-root %s is not a directory\n", o->sysfs_root);
		return IBC_EXIT_USAGE;
	}
	rc = topo_load(o->xml, t);
	if (rc < 0) {
		fprintf(err, "ibcoll topo: %s%s\n", o->xml ? "--topology-xml: " : "",
			ibc_err_get());
		return o->xml ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	if (o->sysfs_root && topo_set_sysfs_root(*t, o->sysfs_root) < 0) {
		fprintf(err, "ibcoll topo: --sysfs-root: %s\n", ibc_err_get());
		topo_destroy(*t);
		*t = NULL;
		return IBC_EXIT_USAGE;
	}
	return IBC_EXIT_OK;
}

int topo_cmd_run(int argc, char **argv, FILE *out, FILE *err)
{
	struct topo_lines warn = {0};
	struct topo_check_opts copts;
	struct topo_cmd_opts o;
	struct topo *t = NULL;
	int rc, np, i;

	if (topo_parse_opts(argc, argv, &o, err) < 0)
		return IBC_EXIT_USAGE;
	if (o.help) {
		fputs(topo_usage, out);
		return IBC_EXIT_OK;
	}
	rc = topo_cmd_setup(&o, &t, err);
	if (rc != IBC_EXIT_OK)
		return rc;
	np = o.np ? (int)o.np : IBC_MAX(t->ngpu, 1);
	copts = (struct topo_check_opts){.local_size = np, .expect_gbps = o.expect_gbps};
	if (topo_check(t, &copts, topo_collect, &warn) < 0 || warn.oom) {
		fprintf(err, "ibcoll topo: checking the topology failed: %s\n", ibc_err_get());
		rc = IBC_EXIT_ENV;
		goto out;
	}
	topo_print_header(t, out);
	topo_print_explain(t, out);
	topo_print_matrix(t, out);
	topo_print_devices(t, out);
	topo_print_pairing(t, np, out);
	topo_print_legend(t, out);
	fputc('\n', out);
	for (i = 0; i < warn.n; i++)
		fprintf(out, "%s\n", warn.v[i]);
	if (warn.n)
		fprintf(out, "checks: %d %s found, see the lines above\n", warn.n,
			topo_plural(warn.n, "problem", "problems"));
	else
		fprintf(out, "checks: passed\n");
	fflush(out);
	rc = IBC_EXIT_OK;
	if (o.csv)
		rc = topo_write_csv(o.csv, t, np, &warn, err);
	if (rc == IBC_EXIT_OK && o.strict && warn.n)
		rc = IBC_EXIT_CHECK;
out:
	topo_lines_free(&warn);
	topo_destroy(t);
	return rc;
}

int topo_cmd_main(int argc, char **argv)
{
	return topo_cmd_run(argc, argv, stdout, stderr);
}
