/* SPDX-License-Identifier: MIT */
/*
 * test_netns.c - ranks on two "hosts": network namespaces joined by a veth pair, each with its
 * own hostname (UTS namespace). 2 ranks per host, bootstrap through IBCOLL_ROOT on host A's
 * address, tcp transport chosen automatically (the job spans 2 hosts). Ring and tree must be
 * bit exact and results.csv must say nnodes 2. Ring runs without a job key (rank 0 warns that
 * the rendezvous is open), tree with IBCOLL_JOB_KEY and --require-auth (no warning; bootstrap
 * and tcp connections authenticated across the hosts). Skips when namespaces cannot be made.
 */
#include "ibc_csv.h"
#include "runcmd.h"
#include "tap.h"

#include <stdio.h>
#include <sys/stat.h>

/* Names carry the test's pid so concurrent runs (ctest -j, two checkouts) do not collide. */
static char NS_A[32], NS_B[32], VA[16], VB[16];
#define IP_A "10.213.7.1"
#define IP_B "10.213.7.2"
#define NETNS_KEY "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null",
		 NS_A, NS_B);
	sh(cmd);
}

static int setup(void)
{
	char cmd[1024];

	teardown();
	snprintf(cmd, sizeof(cmd),
		 "set -e; ip netns add %1$s; ip netns add %2$s;"
		 "ip link add %3$s type veth peer name %4$s;"
		 "ip link set %3$s netns %1$s; ip link set %4$s netns %2$s;"
		 "ip -n %1$s addr add " IP_A "/24 dev %3$s;"
		 "ip -n %2$s addr add " IP_B "/24 dev %4$s;"
		 "ip -n %1$s link set %3$s up; ip -n %2$s link set %4$s up;"
		 "ip -n %1$s link set lo up; ip -n %2$s link set lo up",
		 NS_A, NS_B, VA, VB);
	return sh(cmd) == 0 ? 0 : -1;
}

struct job {
	pid_t pid;
	int rank;
	char log[256];
};

/* Start one rank inside a namespace with its own hostname. */
/* keyed: the job key in IBCOLL_JOB_KEY and --require-auth (bootstrap and tcp authenticated
 * across the hosts); else no key (the open-rendezvous warning). */
static pid_t start_rank(const char *bin, const char *ns, const char *host, int rank, int n,
			const char *algo, const char *out, const char *log, bool keyed)
{
	char cmd[2048];
	pid_t pid = fork();

	if (pid)
		return pid;
	snprintf(cmd, sizeof(cmd),
		 "exec ip netns exec %s unshare --uts sh -c 'hostname %s && %s IBCOLL_RANK=%d "
		 "IBCOLL_NRANKS=%d IBCOLL_ROOT=%s:29517 exec %s allreduce --algo %s -b 4 -e 1M "
		 "-f 8 -n 3 -w 1 -d float,int32 -o sum,min --timeout 30 --out %s %s' >%s 2>&1",
		 ns, host, keyed ? "IBCOLL_JOB_KEY=" NETNS_KEY : "", rank, n, IP_A, bin, algo, out,
		 keyed ? "--require-auth" : "", log);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

static void run_algo(const char *bin, const char *algo, bool keyed)
{
	char out[256], logs[4][300], path[300], err[256];
	pid_t pids[4];
	int i, ok_all = 1, st, warned;
	struct ibc_csv_table *t = NULL;

	snprintf(out, sizeof(out), "/tmp/ibcoll-netns-%d-%s", (int)getpid(), algo);
	for (i = 0; i < 4; i++) {
		snprintf(logs[i], sizeof(logs[i]), "%s.rank%d.log", out, i);
		pids[i] = start_rank(bin, i < 2 ? NS_A : NS_B, i < 2 ? "hosta" : "hostb", i, 4,
				     algo, out, logs[i], keyed);
	}
	for (i = 0; i < 4; i++) {
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			char cat[1400];

			ok_all = 0;
			diag("rank %d exited %d; its log:", i, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			snprintf(cat, sizeof(cat), "sed 's/^/#   /' %s", logs[i]);
			sh(cat);
		}
	}
	ok(ok_all, "%s over tcp, 4 ranks on 2 namespaced hosts%s: every rank exits 0", algo,
	   keyed ? " with a job key and --require-auth" : " without a key");
	{
		char grep[400];

		snprintf(grep, sizeof(grep), "grep -q 'warning: no job key' %s", logs[0]);
		warned = sh(grep) == 0;
	}
	ok(warned == !keyed, "%s: rank 0 %s that the rendezvous is open", algo,
	   keyed ? "does not warn" : "warns");
	snprintf(path, sizeof(path), "%s/results.csv", out);
	if (ibc_csv_read(path, &t, err, sizeof(err)) == 0) {
		int bad = 0, r;

		for (r = 0; r < t->nrows; r++) {
			bad |= strcmp(t->rows[r][ibc_csv_col(t, "nnodes")], "2") != 0;
			bad |= strcmp(t->rows[r][ibc_csv_col(t, "transport")], "tcp") != 0;
			bad |= strcmp(t->rows[r][ibc_csv_col(t, "wrong")], "0") != 0;
		}
		ok(!bad && t->nrows > 0, "%s: %d rows, nnodes 2, transport tcp, 0 wrong", algo,
		   t->nrows);
		ibc_csv_free(t);
	} else {
		ok(0, "%s: results.csv readable (%s)", algo, err);
	}
}

int main(void)
{
	const char *bin = getenv("IBCOLL_BIN");

	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	snprintf(NS_A, sizeof(NS_A), "ibct-a-%d", (int)getpid());
	snprintf(NS_B, sizeof(NS_B), "ibct-b-%d", (int)getpid());
	snprintf(VA, sizeof(VA), "ibva%d", (int)(getpid() % 100000));
	snprintf(VB, sizeof(VB), "ibvb%d", (int)(getpid() % 100000));
	if (geteuid() != 0)
		return tap_skip_all("network namespaces need root");
	if (sh("command -v ip >/dev/null && command -v unshare >/dev/null") != 0)
		return tap_skip_all("ip (iproute2) or unshare (util-linux) missing");
	if (setup() != 0) {
		teardown();
		return tap_skip_all("cannot create network namespaces with a veth pair here");
	}
	tap_plan(7);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd),
			 "ip -n %s -4 addr show %s | grep -q " IP_A " && ip -n %s -4 addr show %s "
			 "| grep -q " IP_B,
			 NS_A, VA, NS_B, VB);
		ok(sh(cmd) == 0, "namespaces %s (" IP_A ") and %s (" IP_B ") are up", NS_A, NS_B);
	}
	run_algo(bin, "ring", false);
	run_algo(bin, "tree", true);
	teardown();
	return tap_done();
}
