/* SPDX-License-Identifier: MIT */
/*
 * test_pmix.c - the wire-up through the launcher's PMIx server, with the real launchers:
 *   - `mpirun -np 3 ibcoll allreduce` on this host, no IBCOLL_ROOT: every row bit exact,
 *     wireup pmix, no open-rendezvous warning (the job key came from rank 0 through PMIx);
 *   - `mpirun` across 3 staged hosts (tests/stage/hosts.sh, tests/stage/rsh as Open MPI's rsh
 *     agent): tcp chosen, nnodes 3, hosts.csv names the 3 hosts;
 *   - a real Slurm cluster on the same staged hosts (tests/stage/slurm.sh: munged, slurmctld,
 *     slurmd): `srun --mpi=pmix -N 3` wires up through PMIx, `srun --mpi=none -N 3` through
 *     Slurm's node list;
 *   - a PMIx server that is gone (the environment of a finished job): exit 3 within seconds
 *     naming PMIx and what to do, never a hang;
 *   - a rank that never reaches the fence (`mpirun -np 2 ibcoll : -np 1 sleep`): the others
 *     exit 3 after --timeout naming rank 2 and its host.
 * Each part skips, saying why, when its launcher, namespaces or Slurm cannot run here.
 */
#include "ibc_csv.h"
#include "runcmd.h"
#include "tap.h"

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

static const char *bin;
static char binpath[4096], tmp[256], stage[512], prefix[16], net[16];
static int staged; /* hosts.sh up succeeded: tear down at exit */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* run `sh -c cmd` with a limit; the result is heap-allocated (64 KiB buffers) */
static struct cmd_result *run_sh(const char *cmd, char *const env[], double limit)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};

	run_cmd(argv, env, limit, NULL, NULL, r);
	return r;
}

static void show(const struct cmd_result *r)
{
	diag("exit %d after %.1f s; stderr: %.3000s", r->code, r->seconds, r->err);
	diag("stdout: %.1500s", r->out);
}

/* every results.csv row in dir: nranks, nnodes, wireup as given, wrong 0, status ok */
static int rows_ok(const char *dir, int nranks, int nnodes, const char *wireup, int *nrows)
{
	struct ibc_csv_table *t;
	char path[400], err[256], want_r[16], want_n[16];
	int bad = 0, r;

	snprintf(path, sizeof(path), "%s/results.csv", dir);
	*nrows = 0;
	if (ibc_csv_read(path, &t, err, sizeof(err))) {
		diag("%s", err);
		return 0;
	}
	snprintf(want_r, sizeof(want_r), "%d", nranks);
	snprintf(want_n, sizeof(want_n), "%d", nnodes);
	for (r = 0; r < t->nrows; r++) {
		bad |= strcmp(t->rows[r][ibc_csv_col(t, "nranks")], want_r) != 0;
		bad |= strcmp(t->rows[r][ibc_csv_col(t, "nnodes")], want_n) != 0;
		bad |= strcmp(t->rows[r][ibc_csv_col(t, "wireup")], wireup) != 0;
		bad |= strcmp(t->rows[r][ibc_csv_col(t, "wrong")], "0") != 0;
		bad |= strcmp(t->rows[r][ibc_csv_col(t, "status")], "ok") != 0;
		if (bad && r == 0)
			diag("first row: nranks %s nnodes %s wireup %s wrong %s status %s",
			     t->rows[r][ibc_csv_col(t, "nranks")],
			     t->rows[r][ibc_csv_col(t, "nnodes")],
			     t->rows[r][ibc_csv_col(t, "wireup")],
			     t->rows[r][ibc_csv_col(t, "wrong")],
			     t->rows[r][ibc_csv_col(t, "status")]);
	}
	*nrows = t->nrows;
	ibc_csv_free(t);
	return !bad && *nrows > 0;
}

/* hosts.csv in dir names prefix1..prefixN for ranks 0..N-1 */
static int hosts_ok(const char *dir, int n)
{
	struct ibc_csv_table *t;
	char path[400], err[256], want[32];
	int bad = 0, r;

	snprintf(path, sizeof(path), "%s/hosts.csv", dir);
	if (ibc_csv_read(path, &t, err, sizeof(err))) {
		diag("%s", err);
		return 0;
	}
	bad = t->nrows != n;
	for (r = 0; r < t->nrows && !bad; r++) {
		snprintf(want, sizeof(want), "%s%d", prefix, r + 1);
		if (strcmp(t->rows[r][ibc_csv_col(t, "host")], want) != 0) {
			diag("hosts.csv row %d: host %s, want %s", r,
			     t->rows[r][ibc_csv_col(t, "host")], want);
			bad = 1;
		}
	}
	ibc_csv_free(t);
	return !bad;
}

#define MPIRUN "mpirun --allow-run-as-root --oversubscribe --bind-to none"
#define SWEEP  "allreduce -b 8 -e 256K -f 8 -n 3 -w 1 --timeout 30"

static void one_host(void)
{
	char cmd[1024], out[320];
	struct cmd_result *r;
	int n, good;

	snprintf(out, sizeof(out), "%s/one", tmp);
	snprintf(cmd, sizeof(cmd), MPIRUN " -np 3 %s " SWEEP " --out %s", bin, out);
	r = run_sh(cmd, NULL, 180);
	is_int(r->code, 0, "mpirun -np 3 ibcoll allreduce, no IBCOLL_ROOT: exit 0");
	if (r->code)
		show(r);
	good = rows_ok(out, 3, 1, "pmix", &n);
	ok(good, "mpirun: %d rows, 3 ranks, wireup pmix, bit exact", n);
	ok(!strstr(r->err, "no job key"),
	   "mpirun: no open-rendezvous warning (the job key came through PMIx)");
	free(r);
	snprintf(cmd, sizeof(cmd), MPIRUN " -np 1 %s --version", bin);
	r = run_sh(cmd, NULL, 60);
	if (!ok(r->code == 0 && strstr(r->out, "wire-up: pmix"),
		"mpirun -np 1 ibcoll --version says wire-up: pmix"))
		show(r);
	free(r);
}

/* a command in staged host 1's network namespace with its hostname */
static void on_host1(char *cmd, size_t len, const char *what)
{
	snprintf(cmd, len, "nsenter --net=/run/netns/%s1 unshare --uts sh -c 'hostname %s1 && %s'",
		 prefix, prefix, what);
}

static void staged_mpirun(void)
{
	char cmd[2048], what[1400], out[320];
	struct cmd_result *r;
	int n, good;

	snprintf(out, sizeof(out), "%s/staged", tmp);
	snprintf(what, sizeof(what),
		 "exec " MPIRUN " --mca plm_rsh_agent %s/rsh --mca oob_tcp_if_include %s.0/24 "
		 "--mca btl_tcp_if_include %s.0/24 --host %s1,%s2,%s3 -np 3 %s " SWEEP " --out %s",
		 stage, net, net, prefix, prefix, prefix, bin, out);
	on_host1(cmd, sizeof(cmd), what);
	r = run_sh(cmd, NULL, 240);
	is_int(r->code, 0, "mpirun across 3 staged hosts: exit 0");
	if (r->code)
		show(r);
	good = rows_ok(out, 3, 3, "pmix", &n);
	ok(good, "staged mpirun: %d rows, nnodes 3, wireup pmix, exact", n);
	ok(hosts_ok(out, 3), "staged mpirun: hosts.csv names %s1..%s3 for ranks 0..2", prefix,
	   prefix);
	free(r);
}

static void nightly(char *const env[]);

static void slurm(void)
{
	char cmd[2048], dir[300], conf[340], out[320];
	char *env[2] = {conf, NULL};
	const char *mpi[] = {"pmix", "none"}, *want[] = {"pmix", "slurm"};
	struct cmd_result *r;
	int rc, i, n, good;

	snprintf(dir, sizeof(dir), "%s/slurm", tmp);
	snprintf(cmd, sizeof(cmd), "bash %s/slurm.sh up %s %s %s 3 2>%s.err", stage, dir, prefix,
		 net, dir);
	rc = sh(cmd);
	if (rc != 0) {
		char why[300] = "", errf[320];
		FILE *f;

		snprintf(errf, sizeof(errf), "%s.err", dir);
		f = fopen(errf, "r");
		if (f) {
			if (!fgets(why, sizeof(why), f))
				why[0] = '\0';
			fclose(f);
		}
		why[strcspn(why, "\n")] = '\0';
		if (rc == 77) {
			tap_skip(8, why[0] ? why : "Slurm cannot run here");
			return;
		}
		ok(0, "slurm.sh up: a 3-node Slurm cluster on the staged hosts (exit %d: %s)", rc,
		   why);
		tap_skip(7, "no Slurm cluster");
		goto down;
	}
	snprintf(conf, sizeof(conf), "SLURM_CONF=%s/slurm.conf", dir);
	for (i = 0; i < 2; i++) {
		snprintf(out, sizeof(out), "%s/srun-%s", tmp, mpi[i]);
		/* srun's cwd must exist on the nodes: they share this file system */
		snprintf(cmd, sizeof(cmd),
			 "cd %s && exec srun --mpi=%s -N 3 -n 3 %s " SWEEP " --out %s", tmp, mpi[i],
			 bin, out);
		r = run_sh(cmd, env, 180);
		is_int(r->code, 0, "srun --mpi=%s -N 3 ibcoll allreduce: exit 0", mpi[i]);
		if (r->code)
			show(r);
		good = rows_ok(out, 3, 3, want[i], &n);
		good = hosts_ok(out, 3) && good;
		ok(good,
		   "srun --mpi=%s: %d rows, nnodes 3, wireup %s, bit exact, hosts.csv names "
		   "the 3 nodes",
		   mpi[i], n, want[i]);
		free(r);
	}
	nightly(env);
down:
	snprintf(cmd, sizeof(cmd), "bash %s/slurm.sh down %s", stage, dir);
	sh(cmd);
}

/* examples/nightly.sbatch submitted with sbatch --wait, as a timer would: its run directory */
static void nightly(char *const env[])
{
	char cmd[3000], exp[400], dir[600] = "", examples[600];
	struct cmd_result *r;
	int good, n;
	FILE *p;

	snprintf(examples, sizeof(examples), "%s/../../examples", stage);
	snprintf(exp, sizeof(exp), "%s/expect.csv", tmp);
	p = fopen(exp, "w");
	if (p) {
		fprintf(p, "collective,algo,transport,bytes,min_busbw_GBps,max_time_us\n"
			   "allreduce,*,*,*,0.000000001,\n");
		fclose(p);
	}
	snprintf(cmd, sizeof(cmd),
		 "cd %s && IBCOLL=%s IBCOLL_NIGHTLY_OUT=%s/nightly IBCOLL_EXPECT=%s "
		 "IBCOLL_SWEEP='-b 1K -e 64K -f 8 -n 3 -w 1 --timeout 30' exec sbatch --wait "
		 "--time=5 -N 3 --ntasks-per-node=1 -o %s/nightly.out %s/nightly.sbatch",
		 tmp, bin, tmp, exp, tmp, examples);
	r = run_sh(cmd, env, 240);
	is_int(r->code, 0, "sbatch --wait examples/nightly.sbatch on 3 nodes: exit 0");
	if (r->code) {
		show(r);
		snprintf(cmd, sizeof(cmd), "sed 's/^/#   /' %s/nightly.out", tmp);
		sh(cmd);
	}
	free(r);
	snprintf(cmd, sizeof(cmd), "ls -d %s/nightly/*/allreduce 2>/dev/null | head -1", tmp);
	p = popen(cmd, "r");
	if (p) {
		if (!fgets(dir, sizeof(dir), p))
			dir[0] = '\0';
		dir[strcspn(dir, "\n")] = '\0';
		pclose(p);
	}
	n = 0;
	good = dir[0] && rows_ok(dir, 3, 3, "pmix", &n);
	ok(good && hosts_ok(dir, 3), "the nightly run directory: %d rows, 3 nodes, wired up "
				      "through PMIx, hosts.csv names them (%s)", n, dir);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && test -f findings.csv && test $(wc -l < findings.csv) -eq 1 && "
		 "grep -Eq '\"passed\":[[:space:]]*true' summary.json && test -f junit.xml && "
		 "grep -q '^ibcoll_run_exit_code{command=\"allreduce\"} 0' ibcoll.prom",
		 dir);
	ok(dir[0] && sh(cmd) == 0, "... findings.csv empty, summary.json passed, junit.xml, "
				   "ibcoll.prom with exit code 0");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s/../check' && for h in %s1 %s2 %s3; do test -f $h/check.csv && "
		 "test $(wc -l < $h/findings.csv) -eq 1 && grep -q \",host,\" $h/check.csv || exit 1; "
		 "done",
		 dir, prefix, prefix, prefix);
	ok(dir[0] && sh(cmd) == 0, "... and the preflight of each node in check/<host>: check.csv, "
				   "no finding");
}

/* a port on 127.0.0.1 that nobody listens on */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, l) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void dead_server(void)
{
	char uri[128], cmd[600];
	char *env[] = {"PMIX_RANK=0",
		       "PMIX_NAMESPACE=ibctest-gone",
		       uri,
		       "OMPI_COMM_WORLD_RANK=0",
		       "OMPI_COMM_WORLD_SIZE=2",
		       NULL};
	struct cmd_result *r;

	snprintf(uri, sizeof(uri), "PMIX_SERVER_URI41=ibctest-gone.0;tcp4://127.0.0.1:%d",
		 closed_port());
	snprintf(cmd, sizeof(cmd), "exec %s " SWEEP " --out %s/dead", bin, tmp);
	r = run_sh(cmd, env, 60);
	ok(r->code == 3 && r->seconds < 10,
	   "PMIx server gone: exit 3 in %.1f s (not a hang), got %d", r->seconds, r->code);
	if (!ok(strstr(r->err, "PMIx server") && strstr(r->err, "IBCOLL_ROOT"),
		"PMIx server gone: the error names the PMIx server and what to do"))
		show(r);
	free(r);
}

static void missing_rank(void)
{
	char cmd[1024];
	struct cmd_result *r;

	snprintf(cmd, sizeof(cmd),
		 MPIRUN " -np 2 %s allreduce -b 8 -e 64 --timeout 5 --out %s/missing : "
			"-np 1 sleep 60",
		 bin, tmp);
	r = run_sh(cmd, NULL, 90);
	ok(r->code == 3 && r->seconds < 40,
	   "a rank that never reaches the PMIx fence: exit 3 in %.1f s, got %d", r->seconds,
	   r->code);
	if (!ok(strstr(r->err, "rank(s) 2") && strstr(r->err, "PMIx fence"),
		"the error names rank 2 (and its host) as the one that never published"))
		show(r);
	free(r);
}

static void cleanup(void)
{
	char cmd[1600];

	if (staged) {
		snprintf(cmd, sizeof(cmd),
			 "bash %s/slurm.sh down %s/slurm >/dev/null 2>&1; "
			 "bash %s/hosts.sh down %s 3",
			 stage, tmp, stage, prefix);
		sh(cmd);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	sh(cmd);
}

int main(void)
{
	static const char *const clear[] = {
	    "IBCOLL_ROOT",	    "IBCOLL_RANK",  "IBCOLL_NRANKS",  "IBCOLL_JOB_KEY",
	    "IBCOLL_JOB_KEY_FILE",  "PMIX_RANK",    "PMIX_NAMESPACE", "OMPI_COMM_WORLD_RANK",
	    "OMPI_COMM_WORLD_SIZE", "SLURM_JOB_ID", "SLURM_PROCID",   "SLURM_NTASKS"};
	const char *data = getenv("IBCOLL_TEST_DATA");
	struct cmd_result *v;
	char cmd[4400];
	size_t i;
	int rc;

	bin = getenv("IBCOLL_BIN");
	if (!bin || !data)
		return tap_skip_all("IBCOLL_BIN / IBCOLL_TEST_DATA not set (run through ctest)");
	/* the cd before srun and the staged hosts need an absolute path */
	bin = realpath(bin, binpath) ? binpath : bin;
	for (i = 0; i < sizeof(clear) / sizeof(clear[0]); i++)
		unsetenv(clear[i]);
	setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
	setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
	snprintf(cmd, sizeof(cmd), "exec %s --version", bin);
	v = run_sh(cmd, NULL, 30);
	if (!strstr(v->out, "pmix: built")) {
		free(v);
		return tap_skip_all("this ibcoll was built without PMIx (IBCOLL_PMIX=OFF or no "
				    "libpmix-dev)");
	}
	free(v);
	if (access("/usr/bin/mpirun", X_OK) != 0)
		return tap_skip_all("Open MPI's mpirun is not installed (scripts/install-deps)");
	snprintf(tmp, sizeof(tmp), "/tmp/ibc_pmix_%d", (int)getpid());
	mkdir(tmp, 0700);
	snprintf(stage, sizeof(stage), "%s/../stage", data);
	/* names and subnet carry the pid so concurrent runs do not collide */
	snprintf(prefix, sizeof(prefix), "pm%d", (int)getpid() % 100000);
	snprintf(net, sizeof(net), "10.215.%d", (int)getpid() % 250);
	tap_plan(19);
	one_host();
	dead_server();
	missing_rank();
	snprintf(cmd, sizeof(cmd), "bash %s/hosts.sh up %s %s 3", stage, prefix, net);
	rc = sh(cmd);
	staged = rc == 0;
	if (rc == 77) {
		tap_skip(11, "network namespaces cannot be made here (needs root, ip, veth)");
	} else if (rc != 0) {
		ok(0, "hosts.sh up: 3 staged hosts (exit %d)", rc);
		tap_skip(10, "no staged hosts");
	} else {
		staged_mpirun();
		slurm();
	}
	cleanup();
	return tap_done();
}
