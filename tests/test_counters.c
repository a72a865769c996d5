/* SPDX-License-Identifier: MIT */
/*
 * test_counters.c - port counters around a run (topology/counters.c, bench/port_counters.c)
 * on fake sysfs trees (IBCOLL_SYSFS_ROOT): an InfiniBand port's counters and RoCE hw_counters
 * and a network interface's statistics are read with their kinds; a device without counters
 * says where it looked. Then real runs: over tcp on loopback, the test bumps the fake tree's
 * rx_errors while the run is going (after rank 0's first read, signalled by results.csv
 * appearing) and expects exactly one finding naming host, NIC and counter, exit 1; a traffic
 * counter that moves is no finding; a quiet run is exit 0; a tree without the interface is
 * noted once, not fatal; and over verbs on the software HCA the same with symbol_error.
 */
#include "counters.h"
#include "ibc_csv.h"
#include "runcmd.h"
#include "tap.h"

#include <stdio.h>
#include <sys/stat.h>

static const char *bin;
static char tmp[256];

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void put(const char *root, const char *rel, const char *text)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname %s/%s)\" && printf '%%s\\n' '%s' > %s/%s",
		 root, rel, text, root, rel);
	if (sh(cmd))
		diag("cannot write %s/%s", root, rel);
}

static void make_tree(const char *root)
{
	static const char *const ib[] = { "symbol_error", "link_downed", "port_rcv_errors",
					  "port_xmit_wait", "port_xmit_data" };
	static const char *const net[] = { "rx_errors", "tx_errors", "rx_dropped", "rx_bytes",
					   "tx_bytes" };
	char rel[200];
	size_t i;

	for (i = 0; i < 5; i++) {
		snprintf(rel, sizeof(rel), "class/infiniband/softhca_0/ports/1/counters/%s", ib[i]);
		put(root, rel, "5");
		snprintf(rel, sizeof(rel), "class/net/lo/statistics/%s", net[i]);
		put(root, rel, "0");
	}
	put(root, "class/infiniband/softhca_0/ports/1/hw_counters/out_of_sequence", "2");
	put(root, "class/infiniband/softhca_0/ports/1/hw_counters/np_ecn_marked_roce_packets", "9");
}

static int find(const struct topo_counters *c, const char *name, uint64_t *v)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(topo_counter_name(c->idx[i]), name)) {
			*v = c->v[i];
			return 1;
		}
	return 0;
}

static void reads(const char *root)
{
	struct topo_counters c;
	char why[200];
	uint64_t v = 0;
	int rc;

	rc = topo_counters_read(root, "softhca_0", 1, &c, why, sizeof(why));
	ok(rc == 0 && c.n == 7 && find(&c, "symbol_error", &v) && v == 5 &&
	       find(&c, "out_of_sequence", &v) && v == 2,
	   "an IB port: 5 counters and 2 hw_counters read (%d, n %d)", rc, c.n);
	ok(topo_counter_kind(c.idx[0]) == TOPO_CNT_ERROR &&
	       !strcmp(topo_counter_kind_name(TOPO_CNT_CONGESTION), "congestion"),
	   "symbol_error is an error counter");
	rc = topo_counters_read(root, "lo", 0, &c, why, sizeof(why));
	ok(rc == 0 && c.n == 5 && find(&c, "rx_errors", &v), "an interface: 5 statistics read");
	rc = topo_counters_read(root, "mlx5_9", 1, &c, why, sizeof(why));
	ok(rc == -ENOENT && strstr(why, "class/infiniband/mlx5_9/ports/1/counters"),
	   "a device without counters: -ENOENT saying where it looked (%s)", why);
}

/* Run ibcoll in the background; when results.csv appears, set rel in root to value. */
static int run_bumping(const char *out, const char *root, const char *rel, const char *value,
		       const char *transport, const char *lib, struct cmd_result *r)
{
	char cmd[2400], bump[800] = "";

	if (rel)
		snprintf(bump, sizeof(bump),
			 "for i in $(seq 400); do [ -f %s/results.csv ] && break; sleep 0.02; done; "
			 "printf '%s\\n' > %s/%s; ",
			 out, value, root, rel);
	snprintf(cmd, sizeof(cmd),
		 "IBCOLL_SYSFS_ROOT=%s %s%s %s allreduce --np 2 --transport %s -b 1K -e 4M -n 40 "
		 "-w 2 --out %s >%s.out 2>&1 & pid=$!; %s wait $pid; rc=$?; cat %s.out; exit $rc",
		 root, lib ? "IBCOLL_IBVERBS_LIB=" : "", lib ? lib : "", bin, transport, out, out,
		 bump, out);
	{
		char *argv[] = { "/bin/sh", "-c", cmd, NULL };

		run_cmd(argv, NULL, 240, NULL, NULL, r);
	}
	return r->code;
}

static int findings(const char *out, const char *check, char *first, size_t len)
{
	struct ibc_csv_table *t;
	char path[400], err[300];
	int n = 0, r;

	snprintf(path, sizeof(path), "%s/findings.csv", out);
	if (ibc_csv_read(path, &t, err, sizeof(err)))
		return -1;
	for (r = 0; r < t->nrows; r++) {
		if (strcmp(t->rows[r][ibc_csv_col(t, "check")], check))
			continue;
		if (!n++ && first)
			snprintf(first, len, "%s|%s|%s|%s", t->rows[r][ibc_csv_col(t, "host")],
				 t->rows[r][ibc_csv_col(t, "nic")],
				 t->rows[r][ibc_csv_col(t, "measured")],
				 t->rows[r][ibc_csv_col(t, "evidence")]);
	}
	ibc_csv_free(t);
	return n;
}

static void tcp_runs(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char root[300], out[300], f1[600] = "";
	int code;

	snprintf(root, sizeof(root), "%s/tree-a", tmp);
	make_tree(root);
	snprintf(out, sizeof(out), "%s/bump", tmp);
	code = run_bumping(out, root, "class/net/lo/statistics/rx_errors", "7", "tcp", NULL, r);
	is_int(code, 1, "tcp: rx_errors bumped during the run: exit 1");
	ok(findings(out, "counters", f1, sizeof(f1)) == 1 && strstr(f1, "|lo|7|") &&
	       strstr(f1, "rx_errors rose by 7"),
	   "one counters finding naming the host, NIC lo, the counter and 7 (%s)", f1);
	if (code != 1)
		diag("%.2500s", r->out);
	snprintf(root, sizeof(root), "%s/tree-b", tmp);
	make_tree(root);
	snprintf(out, sizeof(out), "%s/traffic", tmp);
	code = run_bumping(out, root, "class/net/lo/statistics/rx_bytes", "123456", "tcp", NULL, r);
	ok(code == 0 && findings(out, "counters", NULL, 0) == 0,
	   "a traffic counter that moves is no finding: exit 0 (%d)", code);
	snprintf(root, sizeof(root), "%s/tree-c", tmp);
	mkdir(root, 0755);
	snprintf(out, sizeof(out), "%s/nocounters", tmp);
	code = run_bumping(out, root, NULL, NULL, "tcp", NULL, r);
	ok(code == 0 && strstr(r->out, "# counters: not read on") &&
	       strstr(r->out, "class/net/lo/statistics"),
	   "a tree without the interface: noted, exit 0 (%d)", code);
	free(r);
}

static void verbs_run(void)
{
	const char *lib = getenv("IBCOLL_SOFTHCA_LIB");
	struct cmd_result *r = malloc(sizeof(*r));
	char root[300], out[300], f1[600] = "";
	int code;

	if (!lib || !*lib || access(lib, R_OK)) {
		tap_skip(2, "the software HCA is not built (no verbs headers)");
		free(r);
		return;
	}
	snprintf(root, sizeof(root), "%s/tree-ib", tmp);
	make_tree(root);
	snprintf(out, sizeof(out), "%s/ib", tmp);
	code = run_bumping(out, root, "class/infiniband/softhca_0/ports/1/counters/symbol_error",
			   "17", "verbs", lib, r);
	is_int(code, 1, "verbs: symbol_error bumped during the run: exit 1");
	if (!ok(findings(out, "counters", f1, sizeof(f1)) == 1 && strstr(f1, "|softhca_0:1|12|") &&
		    strstr(f1, "symbol_error rose by 12 during the run (5 before)"),
		"one finding naming NIC softhca_0:1, symbol_error and 12 (%s)", f1))
		diag("%.2500s", r->out);
	free(r);
}

int main(void)
{
	char cmd[300];

	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	snprintf(tmp, sizeof(tmp), "/tmp/ibc_counters_%d", (int)getpid());
	mkdir(tmp, 0700);
	tap_plan(10);
	snprintf(cmd, sizeof(cmd), "%s/tree", tmp);
	make_tree(cmd);
	reads(cmd);
	tcp_runs();
	verbs_run();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	sh(cmd);
	return tap_done();
}
