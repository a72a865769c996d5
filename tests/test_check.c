/* SPDX-License-Identifier: MIT */
/*
 * test_check.c - `ibcoll check`, the preflight, on the DGX H100 fixture (tests/data/dgx-h100.xml)
 * and fake sysfs trees: the healthy tree gives no finding, also against --expect
 * gpus=8,nics=10,rate=400,width=16; the bad tree gives exactly its 4 faults (a port DOWN, a port
 * at 200 of 400 Gb/s, a GPU at x8 of x16, a NIC at 16 of 32 GT/s) and not the storage NIC's
 * DOWN port or an idle GPU's 2.5 GT/s; copies of the healthy tree with one fault each (a NIC at
 * 200 Gb/s, a NIC at x8, a port down, a port not LinkUp, a RoCE port without GIDs) give exactly
 * that finding; a server with 4 GPUs against --expect gpus=8 says so; the NVIDIA driver against
 * --expect driver=; bad --expect values and a malformed XML exit 2.
 */
#include "ibc_csv.h"
#include "runcmd.h"
#include "tap.h"

#include <stdio.h>
#include <sys/stat.h>

static const char *bin, *data;
static char tmp[256];

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* ibcoll check --topology-xml XML --sysfs-root ROOT [--expect E] --out tmp/NAME */
static int check(const char *name, const char *xml, const char *root, const char *expect,
		 struct cmd_result *r)
{
	char x[400], o[400], rt[400];
	char *argv[12] = { (char *)bin, "check", "--topology-xml", x, "--out", o, NULL };
	int n = 6;

	snprintf(x, sizeof(x), "%s/%s", data, xml);
	snprintf(o, sizeof(o), "%s/%s", tmp, name);
	if (root) {
		snprintf(rt, sizeof(rt), "%s", root);
		argv[n++] = "--sysfs-root";
		argv[n++] = rt;
	}
	if (expect) {
		argv[n++] = "--expect";
		argv[n++] = (char *)expect;
	}
	argv[n] = NULL;
	run_cmd(argv, NULL, 60, NULL, NULL, r);
	return r->code;
}

/* findings.csv of run NAME: the count, and "nic|evidence" of each joined by ';' */
static int findings(const char *name, char *list, size_t len)
{
	struct ibc_csv_table *t;
	char path[400], err[300];
	size_t o = 0;
	int r, n;

	snprintf(path, sizeof(path), "%s/%s/findings.csv", tmp, name);
	list[0] = '\0';
	if (ibc_csv_read(path, &t, err, sizeof(err)))
		return -1;
	for (r = 0; r < t->nrows && o < len; r++)
		o += (size_t)snprintf(list + o, len - o, "%s|%s;", t->rows[r][ibc_csv_col(t, "nic")],
				      t->rows[r][ibc_csv_col(t, "evidence")]);
	n = t->nrows;
	ibc_csv_free(t);
	return n;
}

/* The value of fact KEY of NAME in run's check.csv ("" when absent) */
static const char *fact_of(const char *run, const char *name, const char *key)
{
	static char v[128];
	struct ibc_csv_table *t;
	char path[400], err[300];
	int r;

	v[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s/check.csv", tmp, run);
	if (ibc_csv_read(path, &t, err, sizeof(err)))
		return v;
	for (r = 0; r < t->nrows; r++)
		if (!strcmp(t->rows[r][ibc_csv_col(t, "name")], name) &&
		    !strcmp(t->rows[r][ibc_csv_col(t, "fact")], key))
			snprintf(v, sizeof(v), "%s", t->rows[r][ibc_csv_col(t, "value")]);
	ibc_csv_free(t);
	return v;
}

/* A copy of the healthy tree at tmp/NAME with one file written. */
static const char *variant(const char *name, const char *rel, const char *text)
{
	static char root[400];
	char cmd[1500];

	snprintf(root, sizeof(root), "%s/%s-tree", tmp, name);
	snprintf(cmd, sizeof(cmd),
		 "cp -r %s/sysfs-dgx-healthy %s && mkdir -p \"$(dirname '%s/%s')\" && "
		 "printf '%%s\\n' '%s' > '%s/%s'",
		 data, root, root, rel, text, root, rel);
	if (sh(cmd))
		diag("cannot make %s", root);
	return root;
}

static void one_fault(const char *name, const char *rel, const char *text, const char *nic,
		      const char *want)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char list[2000];
	int code = check(name, "dgx-h100.xml", variant(name, rel, text), NULL, r);
	int n = findings(name, list, sizeof(list));

	if (!ok(code == 1 && n == 1 && strstr(list, nic) && strstr(list, want),
		"%s: exit 1, exactly one finding on %s (%d, %d: %s)", name, nic, code, n, list))
		diag("%.1500s", r->out);
	free(r);
}

static void trees(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char root[400], list[4000];
	int code, n;

	snprintf(root, sizeof(root), "%s/sysfs-dgx-healthy", data);
	code = check("healthy", "dgx-h100.xml", root, "gpus=8,nics=10,rate=400,width=16", r);
	n = findings("healthy", list, sizeof(list));
	ok(code == 0 && n == 0, "healthy DGX against gpus=8,nics=10,rate=400,width=16: exit 0, no "
				"finding (%d, %d: %s)",
	   code, n, list);
	ok(strstr(r->out, "findings: none") && !strcmp(fact_of("healthy", "vm", "gpus"), "8") &&
	       !strcmp(fact_of("healthy", "mlx5_0:1", "state"), "ACTIVE") &&
	       !strcmp(fact_of("healthy", "mlx5_0:1", "rate_gbps"), "400"),
	   "check.csv holds the facts: 8 GPUs, mlx5_0 port 1 ACTIVE at 400 Gb/s");
	snprintf(root, sizeof(root), "%s/sysfs-dgx-bad", data);
	code = check("bad", "dgx-h100.xml", root, NULL, r);
	n = findings("bad", list, sizeof(list));
	ok(code == 1 && n == 4 && strstr(list, "mlx5_1:1|") && strstr(list, "DOWN") &&
	       strstr(list, "mlx5_2:1|") && strstr(list, "200 Gb/s") && strstr(list, "GPU3") &&
	       strstr(list, "x8") && strstr(list, "mlx5_5|") && strstr(list, "16 GT/s") &&
	       !strstr(list, "mlx5_3") && !strstr(list, "2.5 GT/s"),
	   "bad DGX: exactly its 4 faults, not the storage NIC's DOWN port nor an idle GPU's "
	   "2.5 GT/s (%d, %d: %s)",
	   code, n, list);
	free(r);
}

static void faults(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	const char *busid;

	check("facts", "dgx-h100.xml", NULL, NULL, r);
	busid = fact_of("facts", "mlx5_0", "busid");
	one_fault("nic-200", "class/infiniband/mlx5_0/ports/1/rate", "200 Gb/sec (4X HDR)",
		  "mlx5_0:1|", "200 Gb/s");
	if (busid[0]) {
		char rel[200];

		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/current_link_width", busid);
		one_fault("nic-x8", rel, "8", "mlx5_0|", "x8");
	} else {
		ok(0, "mlx5_0's bus id in check.csv");
	}
	one_fault("port-down", "class/infiniband/mlx5_4/ports/1/state", "1: DOWN", "mlx5_4:1|",
		  "DOWN");
	one_fault("phys-disabled", "class/infiniband/mlx5_6/ports/1/phys_state", "3: Disabled",
		  "mlx5_6:1|", "not LinkUp");
	one_fault("roce-nogid", "class/infiniband/mlx5_7/ports/1/link_layer", "Ethernet",
		  "mlx5_7:1|", "GID table is empty");
	free(r);
}

static void expectations(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char root[400], list[2000];
	int code;

	code = check("gpu-missing", "topo-server-4gpu.xml", NULL, "gpus=8", r);
	ok(code == 1 && findings("gpu-missing", list, sizeof(list)) == 1 &&
	       strstr(list, "has 4 gpus, expected 8"),
	   "a host with 4 GPUs against gpus=8: one finding saying so (%s)", list);
	snprintf(root, sizeof(root), "%s", variant("driver", "module/nvidia/version", "550.54.15"));
	code = check("driver-ok", "dgx-h100.xml", root, "driver=535.104", r);
	ok(code == 0 && !strcmp(fact_of("driver-ok", "vm", "nvidia_driver"), "550.54.15"),
	   "driver 550.54.15 against driver=535.104: exit 0 (%d)", code);
	code = check("driver-old", "dgx-h100.xml", root, "driver=560", r);
	ok(code == 1 && findings("driver-old", list, sizeof(list)) == 1 &&
	       strstr(list, "550.54.15, expected 560"),
	   "driver 550.54.15 against driver=560: a finding (%s)", list);
	code = check("bad-key", "dgx-h100.xml", NULL, "cpus=8", r);
	ok(code == 2 && strstr(r->err, "unknown key 'cpus'"), "--expect cpus=8: exit 2 (%s)",
	   r->err);
	code = check("bad-val", "dgx-h100.xml", NULL, "gpus=eight", r);
	ok(code == 2 && strstr(r->err, "gpus=eight"), "--expect gpus=eight: exit 2");
	code = check("bad-xml", "topo-malformed.xml", NULL, NULL, r);
	ok(code == 2 && strstr(r->err, "topo-malformed.xml"), "a malformed XML: exit 2 naming it");
	free(r);
}

int main(void)
{
	char cmd[300];

	bin = getenv("IBCOLL_BIN");
	data = getenv("IBCOLL_TEST_DATA");
	if (!bin || !data)
		return tap_skip_all("IBCOLL_BIN / IBCOLL_TEST_DATA not set (run through ctest)");
	unsetenv("IBCOLL_SYSFS_ROOT");
	setenv("IBCOLL_HOSTID", "vm", 1); /* the host's name in the findings, whatever it is */
	snprintf(tmp, sizeof(tmp), "/tmp/ibc_check_%d", (int)getpid());
	mkdir(tmp, 0700);
	tap_plan(14);
	trees();
	faults();
	expectations();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	sh(cmd);
	return tap_done();
}
