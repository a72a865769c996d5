/* SPDX-License-Identifier: MIT */
/*
 * test_launchers.c - ranks started by other launchers: environments as Open MPI's mpirun,
 * Slurm's srun and PMI set them (each rank a separate process with only the environment to go
 * on), Slurm's node list as the rendezvous, sizes that disagree (an error, never independent
 * one-rank jobs), a hung rank (SIGSTOP: the others time out naming whom they waited for), --np
 * with --require-auth (the launcher's job key), two jobs on one IBCOLL_ROOT (the second fails
 * within 5 s saying the port is in use by another job), ranks with other options or another
 * build (exit 2 naming the option or both builds and the ranks), and a real `mpirun` with
 * `--algo mpi` when Open MPI is installed.
 */
#include "ibc_csv.h"
#include "runcmd.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

static const char *bin;
static char tmp[256];

struct proc {
	pid_t pid;
	char log[320];
};

/* Start `ibcoll allreduce ...` with extra environment entries (NULL-terminated). */
static void start(struct proc *p, char *const env[], const char *out, const char *extra)
{
	char cmd[2048];
	size_t n = 0;
	int i;

	for (i = 0; env[i]; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%s ", env[i]);
	snprintf(cmd + n, sizeof(cmd) - n,
		 "exec %s allreduce -b 4 -e 64K -f 16 -n 2 -w 1 --timeout 10 --out %s %s >%s 2>&1",
		 bin, out, extra ? extra : "", p->log);
	p->pid = fork();
	if (p->pid == 0) {
		/* a clean slate: no ibcoll or launcher variables from ctest's environment */
		unsetenv("IBCOLL_RANK");
		unsetenv("IBCOLL_NRANKS");
		unsetenv("IBCOLL_ROOT");
		unsetenv("IBCOLL_JOB_KEY");
		unsetenv("IBCOLL_JOB_KEY_FILE");
		unsetenv("IBCOLL_HOSTID");
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
}

static int finish(struct proc *p, double limit)
{
	double t0 = rc_now();
	int st;

	while (rc_now() - t0 < limit) {
		pid_t w = waitpid(p->pid, &st, WNOHANG);

		if (w == p->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(20000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	return -1;
}

static int log_has(const struct proc *p, const char *needle)
{
	static char buf[65536];
	FILE *f = fopen(p->log, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static int rows_ok(const char *out, int nranks, const char *algo)
{
	char path[400], err[256];
	struct ibc_csv_table *t;
	int i, bad = 0, hits = 0;

	snprintf(path, sizeof(path), "%s/results.csv", out);
	if (ibc_csv_read(path, &t, err, sizeof(err)))
		return 0;
	for (i = 0; i < t->nrows; i++) {
		bad |= atoi(t->rows[i][ibc_csv_col(t, "nranks")]) != nranks;
		bad |= strcmp(t->rows[i][ibc_csv_col(t, "status")], "ok") != 0;
		hits += !algo || !strcmp(t->rows[i][ibc_csv_col(t, "algo")], algo);
	}
	ibc_csv_free(t);
	return !bad && hits > 0;
}

/* A TCP port nobody listens on right now (bound, then released). */
static int free_port(int lo, int hi)
{
	int p;

	for (p = lo; p < hi; p++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, rc;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return p;
	}
	return -1;
}

static const char *root_env(char *buf, size_t len)
{
	int lo = 20000 + (int)(getpid() % 10000);

	snprintf(buf, len, "IBCOLL_ROOT=127.0.0.1:%d", free_port(lo, lo + 2000));
	return buf;
}

static void show(const struct proc *p)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/#   /' %s | tail -20", p->log);
	if (system(cmd))
		return;
}

/* Two ranks whose launcher variables are given per rank. */
static void pair(const char *what, char *const e0[], char *const e1[], int want, int nranks)
{
	struct proc p[2];
	char out[300];
	int c0, c1;

	snprintf(out, sizeof(out), "%s/%s", tmp, what);
	snprintf(p[0].log, sizeof(p[0].log), "%s.0.log", out);
	snprintf(p[1].log, sizeof(p[1].log), "%s.1.log", out);
	start(&p[0], e0, out, NULL);
	start(&p[1], e1, out, NULL);
	c0 = finish(&p[0], 60);
	c1 = finish(&p[1], 60);
	if (!ok(c0 == want && c1 == want, "%s: both ranks exit %d (got %d, %d)", what, want, c0,
		c1)) {
		show(&p[0]);
		show(&p[1]);
	}
	if (want == 0)
		ok(rows_ok(out, nranks, NULL), "%s: results.csv has %d-rank rows, all ok", what,
		   nranks);
}

int main(void)
{
	char root[64], nl[64], jobid[32];
	long job;

	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	snprintf(tmp, sizeof(tmp), "/tmp/ibcoll-test-launchers-%d", (int)getpid());
	mkdir(tmp, 0755);
	root_env(root, sizeof(root));

	{ /* Open MPI's environment */
		char *e0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", root, NULL };
		char *e1[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", root, NULL };

		pair("ompi-env", e0, e1, 0, 2);
	}
	{ /* PMI (MPICH hydra) */
		char r2[64];
		char *e0[] = { "PMI_RANK=0", "PMI_SIZE=2", r2, NULL };
		char *e1[] = { "PMI_RANK=1", "PMI_SIZE=2", r2, NULL };

		root_env(r2, sizeof(r2));
		pair("pmi-env", e0, e1, 0, 2);
	}
	{ /* IBCOLL_HOSTID: two ranks of this machine are two hosts (nnodes 2, tcp chosen) */
		char r3[64];
		char *e0[] = { "IBCOLL_RANK=0", "IBCOLL_NRANKS=2", "IBCOLL_HOSTID=rack1-node.a", r3,
			       NULL };
		char *e1[] = { "IBCOLL_RANK=1", "IBCOLL_NRANKS=2", "IBCOLL_HOSTID=rack1-node.b", r3,
			       NULL };
		char *bad[] = { "IBCOLL_HOSTID=node/1", NULL };
		struct ibc_csv_table *t = NULL;
		char path[400], err[256];
		struct proc p;

		root_env(r3, sizeof(r3));
		pair("hostid", e0, e1, 0, 2);
		snprintf(path, sizeof(path), "%s/hostid/results.csv", tmp);
		ok(ibc_csv_read(path, &t, err, sizeof(err)) == 0 && t->nrows > 0 &&
			   !strcmp(t->rows[0][ibc_csv_col(t, "nnodes")], "2") &&
			   !strcmp(t->rows[0][ibc_csv_col(t, "transport")], "tcp"),
		   "IBCOLL_HOSTID: two hosts in results.csv (nnodes 2), so tcp was chosen");
		ibc_csv_free(t);
		t = NULL;
		snprintf(path, sizeof(path), "%s/hostid/hosts.csv", tmp);
		ok(ibc_csv_read(path, &t, err, sizeof(err)) == 0 && t->nrows == 2 &&
			   !strcmp(t->rows[0][ibc_csv_col(t, "host")], "rack1-node.a") &&
			   !strcmp(t->rows[1][ibc_csv_col(t, "host")], "rack1-node.b") &&
			   !strcmp(t->rows[1][ibc_csv_col(t, "local_rank")], "0"),
		   "IBCOLL_HOSTID: hosts.csv names each rank's host id, both local rank 0");
		ibc_csv_free(t);
		snprintf(p.log, sizeof(p.log), "%s/badhostid.log", tmp);
		snprintf(path, sizeof(path), "%s/badhostid", tmp);
		start(&p, bad, path, NULL);
		ok(finish(&p, 30) == 2 && log_has(&p, "IBCOLL_HOSTID='node/1'") &&
			   access(path, F_OK) != 0,
		   "IBCOLL_HOSTID with a slash: exit 2 naming it, nothing written");
	}
	{ /* Slurm without IBCOLL_ROOT: the first host of the node list, a port from the job id */
		char *e0[] = { "SLURM_PROCID=0", "SLURM_NTASKS=2", jobid, nl, NULL };
		char *e1[] = { "SLURM_PROCID=1", "SLURM_NTASKS=2", jobid, nl, NULL };

		/* a job id whose derived port (20000 + (7 job) mod 12768, step 0) is free */
		for (job = getpid(); job < getpid() + 1000; job++)
			if (free_port(20000 + (int)(job * 7 % 12768), 20001 + (int)(job * 7 % 12768)) > 0)
				break;
		snprintf(jobid, sizeof(jobid), "SLURM_JOB_ID=%ld", job);
		snprintf(nl, sizeof(nl), "SLURM_JOB_NODELIST=localhost");
		pair("slurm-env", e0, e1, 0, 2);
	}
	{ /* sizes that disagree: an error at the rendezvous, exit 2 or 3, never two jobs */
		char r3[64];
		char *e0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", r3, NULL };
		char *e1[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=3", r3, NULL };
		struct proc p[2];
		char out[300];
		int c0, c1;

		root_env(r3, sizeof(r3));
		snprintf(out, sizeof(out), "%s/mismatch", tmp);
		snprintf(p[0].log, sizeof(p[0].log), "%s.0.log", out);
		snprintf(p[1].log, sizeof(p[1].log), "%s.1.log", out);
		start(&p[0], e0, out, NULL);
		start(&p[1], e1, out, NULL);
		c0 = finish(&p[0], 60);
		c1 = finish(&p[1], 60);
		ok(c0 == 3 && c1 == 3, "mismatched sizes: both ranks fail with exit 3 (%d, %d)", c0,
		   c1);
		ok(log_has(&p[0], "inconsistent job size") && log_has(&p[1], "inconsistent job size"),
		   "mismatched sizes: both say 'inconsistent job size'");
		if (!log_has(&p[0], "inconsistent job size"))
			show(&p[0]);
		ok(access(out, F_OK) != 0, "mismatched sizes: no report written");
	}
	{ /* launcher variables without a rendezvous address */
		char *e0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", NULL };
		struct proc p;
		char out[300];
		int c;

		snprintf(out, sizeof(out), "%s/noroot", tmp);
		snprintf(p.log, sizeof(p.log), "%s.log", out);
		start(&p, e0, out, NULL);
		c = finish(&p, 30);
		ok(c == 2 && log_has(&p, "IBCOLL_ROOT"), "no IBCOLL_ROOT under mpirun: exit 2 naming it");
	}
	{ /* a hung rank: rank 1 stopped; rank 0 times out naming whom it waited for */
		char r4[64];
		char *e0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", r4, NULL };
		char *e1[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", r4, NULL };
		struct proc p[2];
		char out[300];
		double t0;
		int c0;

		root_env(r4, sizeof(r4));
		snprintf(out, sizeof(out), "%s/hung", tmp);
		snprintf(p[0].log, sizeof(p[0].log), "%s.0.log", out);
		snprintf(p[1].log, sizeof(p[1].log), "%s.1.log", out);
		start(&p[0], e0, out, "-b 16M -e 16M -n 100000 --timeout 3");
		start(&p[1], e1, out, "-b 16M -e 16M -n 100000 --timeout 3");
		sleep(2); /* past the rendezvous, inside the timed loop */
		kill(p[1].pid, SIGSTOP);
		t0 = rc_now();
		c0 = finish(&p[0], 30);
		ok(c0 == 3, "hung peer: rank 0 exits 3 (%d) after %.1f s", c0, rc_now() - t0);
		ok(rc_now() - t0 < 3 + 5, "hung peer: within the 3 s timeout (+ slack)");
		if (!ok(log_has(&p[0], "timed out") && log_has(&p[0], "rank 1"),
			"hung peer: the message says it timed out and names rank 1"))
			show(&p[0]);
		kill(p[1].pid, SIGKILL);
		finish(&p[1], 5);
	}
	{ /* --np makes the job key itself: --require-auth is met, nothing warns */
		struct cmd_result *r = malloc(sizeof(*r));
		char out[300];
		char *argv[] = { (char *)bin, "allreduce", "--np", "2", "--require-auth", "-b", "4",
				 "-e", "1K", "-n", "2", "-w", "1", "--timeout", "20", "--out", out,
				 NULL };

		snprintf(out, sizeof(out), "%s/np-auth", tmp);
		run_cmd(argv, NULL, 60, NULL, NULL, r);
		ok(r->code == 0 && !strstr(r->err, "warning: no job key"),
		   "--np 2 --require-auth: the launcher's key is enough (exit %d), no warning",
		   r->code);
		if (r->code)
			diag("stderr: %.1500s", r->err);
		free(r);
	}
	{ /* two jobs on one IBCOLL_ROOT: the second fails at once, saying the port is taken */
		char r5[64];
		char *a0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", r5, NULL };
		char *a1[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", r5, NULL };
		struct proc a[2], bj[2];
		char out[300];
		double t0;
		int c0, c1;

		root_env(r5, sizeof(r5));
		snprintf(out, sizeof(out), "%s/jobA", tmp);
		snprintf(a[0].log, sizeof(a[0].log), "%s.0.log", out);
		snprintf(a[1].log, sizeof(a[1].log), "%s.1.log", out);
		start(&a[0], a0, out, "-b 16M -e 16M -n 100000");
		start(&a[1], a1, out, "-b 16M -e 16M -n 100000");
		sleep(2); /* job A is past its rendezvous */
		snprintf(out, sizeof(out), "%s/jobB", tmp);
		snprintf(bj[0].log, sizeof(bj[0].log), "%s.0.log", out);
		snprintf(bj[1].log, sizeof(bj[1].log), "%s.1.log", out);
		t0 = rc_now();
		start(&bj[0], a0, out, NULL);
		start(&bj[1], a1, out, NULL);
		c0 = finish(&bj[0], 30);
		c1 = finish(&bj[1], 30);
		ok(c0 == 3 && c1 == 3 && rc_now() - t0 < 8,
		   "two jobs on one IBCOLL_ROOT: the second's ranks exit 3 within 5 s, not the "
		   "10 s timeout (%d, %d, %.1f s)",
		   c0, c1, rc_now() - t0);
		if (!ok(log_has(&bj[0], "in use by another job") &&
			    log_has(&bj[1], "in use by another job"),
			"two jobs: rank 0 and rank 1 of the second say the port is in use by "
			"another job")) {
			show(&bj[0]);
			show(&bj[1]);
		}
		ok(kill(a[0].pid, 0) == 0 && kill(a[1].pid, 0) == 0,
		   "two jobs: the first job still runs");
		kill(a[0].pid, SIGKILL);
		kill(a[1].pid, SIGKILL);
		finish(&a[0], 5);
		finish(&a[1], 5);
	}
	{ /* ranks started with other options or another build: exit 2, naming it and the ranks */
		char r6[64], r7[64];
		char *e0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", r6, NULL };
		char *e1[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", r6, NULL };
		char *f0[] = { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", r7, NULL };
		char *f1[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", r7,
			       "IBCOLL_TEST_BUILD_ID=0.0.0-otherbuild", NULL };
		struct proc p[2];
		char out[300];
		int c0, c1;

		root_env(r6, sizeof(r6));
		snprintf(out, sizeof(out), "%s/optdiff", tmp);
		snprintf(p[0].log, sizeof(p[0].log), "%s.0.log", out);
		snprintf(p[1].log, sizeof(p[1].log), "%s.1.log", out);
		start(&p[0], e0, out, "-n 2");
		start(&p[1], e1, out, "-n 3");
		c0 = finish(&p[0], 30);
		c1 = finish(&p[1], 30);
		ok(c0 == 2 && c1 == 2, "other options on rank 1: both exit 2 (%d, %d)", c0, c1);
		if (!ok(log_has(&p[0], "-n (iters) differs") && log_has(&p[0], "rank 1 (host") &&
			    log_has(&p[0], "than rank 0 (host"),
			"other options: rank 0 names the option, rank 1 and rank 0"))
			show(&p[0]);

		root_env(r7, sizeof(r7));
		snprintf(out, sizeof(out), "%s/builddiff", tmp);
		snprintf(p[0].log, sizeof(p[0].log), "%s.0.log", out);
		snprintf(p[1].log, sizeof(p[1].log), "%s.1.log", out);
		start(&p[0], f0, out, NULL);
		start(&p[1], f1, out, NULL);
		c0 = finish(&p[0], 30);
		c1 = finish(&p[1], 30);
		ok(c0 == 2 && c1 == 2, "another build on rank 1: both exit 2 (%d, %d)", c0, c1);
		if (!ok(log_has(&p[0], "another ibcoll build") &&
			    log_has(&p[0], "this rank 0.0.0-otherbuild"),
			"another build: rank 0 says so and names both builds"))
			show(&p[0]);
	}
	{ /* the real mpirun, and --algo mpi through the same driver */
		struct cmd_result *r = malloc(sizeof(*r));
		char out[300], rootv[64], bind[8] = "none";
		char *argv[] = { "/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe",
				 "--bind-to", bind, "-np", "2", "-x", rootv, (char *)bin,
				 "allreduce", "--algo", "mpi,ring", "-b", "8", "-e", "64K", "-f", "32",
				 "-n", "2", "-w", "1", "--timeout", "20", "--out", out, NULL };
		char *env[] = { "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", NULL };
		struct cmd_result *h = malloc(sizeof(*h));
		char *hv[] = { (char *)bin, "allreduce", "--help", NULL };

		run_cmd(hv, NULL, 10, NULL, NULL, h);
		if (access("/usr/bin/mpirun", X_OK) != 0) {
			tap_skip(2, "Open MPI's mpirun is not installed");
		} else if (!strstr(h->out, "Rabenseifner), mpi")) { /* the --algo line lists mpi */
			tap_skip(2, "this ibcoll was built without MPI");
		} else {
			snprintf(out, sizeof(out), "%s/mpirun", tmp);
			root_env(rootv, sizeof(rootv));
			run_cmd(argv, env, 120, NULL, NULL, r);
			is_int(r->code, 0, "mpirun -np 2 ibcoll allreduce --algo mpi,ring");
			if (r->code)
				diag("stderr: %.2000s\n# stdout: %.1000s", r->err, r->out);
			ok(rows_ok(out, 2, "mpi") && rows_ok(out, 2, "ring"),
			   "MPI_Allreduce rows (algo mpi) beside ring rows, 2 ranks, all ok");
		}
		free(h);
		free(r);
	}
	return tap_done();
}
