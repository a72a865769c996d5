/* SPDX-License-Identifier: MIT */
/*
 * test_cli.c - the ibcoll binary end to end: --help/--version, every CLI rejection (exit 2,
 * message names the flag, nothing written), a run whose results.csv/hosts.csv are read back
 * with exactly the reports/schema.h columns, refusal to overwrite a report, a rank killed
 * mid-run (the others exit 3 within the timeout naming the dead rank; the CSV so far stays
 * valid), and ranks started by hand with different options (every rank exits 2, rank 0 names
 * the rank and the option that differs).
 */
#include "ibc_csv.h"
#include "ibc_common.h"
#include "runcmd.h"
#include "schema.h"
#include "tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

static const char *bin;
static char tmpdir[256];

static int exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static void rejects_in(const char *cmd, const char *what, const char *needle, const char *a1,
		       const char *a2, const char *a3, const char *a4)
{
	static int seq;
	char out[512];
	char *argv[10] = { (char *)bin, (char *)cmd, "--out", out };
	int n = 4;
	struct cmd_result *r = malloc(sizeof(*r));

	snprintf(out, sizeof(out), "%s/never-%d", tmpdir, ++seq); /* one each: none shared */
	if (a1)
		argv[n++] = (char *)a1;
	if (a2)
		argv[n++] = (char *)a2;
	if (a3)
		argv[n++] = (char *)a3;
	if (a4)
		argv[n++] = (char *)a4;
	argv[n] = NULL;
	run_cmd(argv, NULL, 30, NULL, NULL, r);
	is_int(r->code, 2, "%s: exit 2", what);
	ok(strstr(r->err, needle) != NULL, "%s: message names '%s'", what, needle);
	if (!strstr(r->err, needle))
		diag("stderr: %s", r->err);
	ok(!exists(out), "%s: nothing written", what);
	free(r);
}

static void rejects(const char *what, const char *needle, const char *a1, const char *a2,
		    const char *a3, const char *a4)
{
	rejects_in("allreduce", what, needle, a1, a2, a3, a4);
}

/* A well-formed --nic that names no interface here: the transport looked, so exit 3, with
 * the interfaces that exist; no report yet. */
static void nic_absent(void)
{
	char out[512];
	char *argv[] = { (char *)bin, "allreduce", "--np", "2", "--transport", "tcp", "--nic",
			 "nosuchif0", "-e", "1K", "--timeout", "10", "--out", out, NULL };
	struct cmd_result *r = malloc(sizeof(*r));

	snprintf(out, sizeof(out), "%s/nic-absent", tmpdir);
	run_cmd(argv, NULL, 60, NULL, NULL, r);
	is_int(r->code, 3, "--nic nosuchif0 (tcp): exit 3, the name is well formed");
	ok(strstr(r->err, "nosuchif0") && strstr(r->err, "available: ") && strstr(r->err, "lo"),
	   "the message names it and lists the interfaces that exist");
	if (!strstr(r->err, "available: "))
		diag("stderr: %.1000s", r->err);
	ok(!exists(out), "--nic nosuchif0: nothing written");
	free(r);
}

struct killer {
	int pid2;
	int rows;
	double killed_at;
};

static void on_line(const char *line, void *arg)
{
	struct killer *k = arg;
	int rank, pid;

	if (sscanf(line, "#  rank %d pid %d", &rank, &pid) == 2 && rank == 2)
		k->pid2 = pid;
	if (line[0] != '#' && line[0] && k->pid2 > 0 && !k->killed_at && ++k->rows == 3) {
		kill(k->pid2, SIGKILL);
		k->killed_at = rc_now();
	}
}

static void csv_roundtrip(void)
{
	static const char *const cols[] = { RPT_RESULTS_COLUMNS };
	static const char *const hcols[] = { RPT_HOSTS_COLUMNS };
	char out[512], path[600], err[512];
	char *argv[] = { (char *)bin, "allreduce", "--np", "3", "-b", "1", "-e", "64K", "-f", "4",
			 "-d", "float,int8", "-o", "sum,max", "-n", "3", "-w", "1", "--bind", "off",
			 "--out", out, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	struct ibc_csv_table *t = NULL;
	int i, bad = 0, rc;

	snprintf(out, sizeof(out), "%s/run1", tmpdir);
	run_cmd(argv, NULL, 120, NULL, NULL, r);
	is_int(r->code, 0, "allreduce --np 3 over shm, 2 dtypes x 2 ops x 9 sizes: exit 0");
	if (r->code)
		diag("stderr: %.2000s", r->err);
	ok(strstr(r->out, "# Out of bounds values : 0 OK") != NULL, "table reports 0 wrong");
	snprintf(path, sizeof(path), "%s/results.csv", out);
	rc = ibc_csv_read(path, &t, err, sizeof(err));
	is_int(rc, 0, "results.csv parses (%s)", rc ? err : "ok");
	if (!rc) {
		is_int(t->ncols, RPT_RESULTS_NCOLS, "results.csv has %d columns", RPT_RESULTS_NCOLS);
		for (i = 0; i < t->ncols && i < RPT_RESULTS_NCOLS; i++)
			bad |= strcmp(t->header[i], cols[i]) != 0;
		ok(!bad, "results.csv header is exactly schema.h's");
		is_int(t->nrows, 2 * 2 * 2 * 9 * 2, "one row per algo, dtype, op, size, placement");
		bad = 0;
		for (i = 0; i < t->nrows; i++) {
			bad |= strcmp(t->rows[i][ibc_csv_col(t, "status")], "ok") != 0;
			bad |= strcmp(t->rows[i][ibc_csv_col(t, "wrong")], "0") != 0;
			bad |= strcmp(t->rows[i][ibc_csv_col(t, "nranks")], "3") != 0;
			bad |= atof(t->rows[i][ibc_csv_col(t, "time_us")]) <= 0;
		}
		ok(!bad, "every row: status ok, wrong 0, nranks 3, time > 0");
		/* int8 with 1 byte: 1 element; float with 1 byte: 0 elements */
		bad = 1;
		for (i = 0; i < t->nrows; i++)
			if (!strcmp(t->rows[i][ibc_csv_col(t, "dtype")], "float") &&
			    !strcmp(t->rows[i][ibc_csv_col(t, "bytes")], "0"))
				bad = 0;
		ok(!bad, "sizes below one element give count 0 rows");
		ibc_csv_free(t);
	}
	snprintf(path, sizeof(path), "%s/hosts.csv", out);
	t = NULL;
	rc = ibc_csv_read(path, &t, err, sizeof(err));
	is_int(rc, 0, "hosts.csv parses");
	if (!rc) {
		bad = t->ncols != RPT_HOSTS_NCOLS || t->nrows != 3;
		for (i = 0; !bad && i < t->ncols; i++)
			bad |= strcmp(t->header[i], hcols[i]) != 0;
		ok(!bad, "hosts.csv: schema.h columns, one row per rank");
		/* --bind off leaves the ranks where they were, and hosts.csv says so (it used to
		 * print the cores a binding would have chosen) */
		{
			char mine[256];

			bad = ibc_affinity_list(mine, sizeof(mine)) != 0;
			for (i = 0; !bad && i < t->nrows; i++)
				bad |= strcmp(t->rows[i][ibc_csv_col(t, "cpus")], mine) != 0;
			ok(!bad, "hosts.csv cpus of unbound ranks: their affinity (%s)", mine);
		}
		ibc_csv_free(t);
	}
	/* ibcoll project calibrates from a results.csv ibcoll allreduce writes. Sizes where the
	 * bandwidth term dominates: with 1 B - 64 KiB, a loaded machine's noise could make the
	 * fitted bandwidth negative, which project rightly refuses (seen under 2 parallel runs) */
	{
		char csvp[700], cout[600];
		char *cargv[] = { (char *)bin, "allreduce", "--np", "2", "-b", "256K", "-e", "16M",
				  "-f", "4", "-n", "5", "-w", "1", "--algo", "ring", "--placement",
				  "out", "--out", cout, NULL };
		char *pargv[] = { (char *)bin, "project", "--cluster", "h100-ndr", "--calibrate",
				  csvp, "--gpus", "8,1024", "--bytes", "1M,1G", NULL };

		snprintf(cout, sizeof(cout), "%s/calib", tmpdir);
		run_cmd(cargv, NULL, 120, NULL, NULL, r);
		if (r->code)
			diag("calibration run: exit %d: %.1000s", r->code, r->err);
		snprintf(csvp, sizeof(csvp), "%s/results.csv", cout);
		run_cmd(pargv, NULL, 60, NULL, NULL, r);
		ok(r->code == 0 && strstr(r->out, "calibration from") && strstr(r->out, "1024"),
		   "ibcoll project --calibrate reads ibcoll allreduce's results.csv (exit %d)",
		   r->code);
		if (r->code)
			diag("stderr: %.1000s", r->err);
	}
	/* the same --out again: refused, the first report untouched */
	{
		struct stat a, b;

		snprintf(path, sizeof(path), "%s/results.csv", out);
		stat(path, &a);
		run_cmd(argv, NULL, 60, NULL, NULL, r);
		stat(path, &b);
		is_int(r->code, 2, "a second run into the same --out is refused");
		ok(strstr(r->err, "never overwrites") != NULL && a.st_size == b.st_size &&
			   a.st_mtime == b.st_mtime,
		   "the refusal says why and the report is untouched");
	}
	free(r);
}

static void sendrecv(const char *np, const char *tp, const char *extra)
{
	char out[512], path[600], err[512];
	char *argv[] = { (char *)bin, "sendrecv", "--np", (char *)np, "--transport", (char *)tp,
			 "-b", "1", "-e", "1M", "-f", "32", "-n", "3", "-w", "1", "--out", out,
			 (char *)extra, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	struct ibc_csv_table *t = NULL;
	int rc, i, streams = 0, pings = 0, bad = 0;

	snprintf(out, sizeof(out), "%s/sr-%s-%s%s", tmpdir, np, tp, extra ? "-bidir" : "");
	run_cmd(argv, NULL, 120, NULL, NULL, r);
	is_int(r->code, 0, "sendrecv --np %s --transport %s %s: exit 0", np, tp, extra ? extra : "");
	if (r->code)
		diag("stderr: %.2000s", r->err);
	snprintf(path, sizeof(path), "%s/results.csv", out);
	rc = ibc_csv_read(path, &t, err, sizeof(err));
	if (!rc) {
		for (i = 0; i < t->nrows; i++) {
			const char *algo = t->rows[i][ibc_csv_col(t, "algo")];

			streams += !strcmp(algo, extra ? "bidir" : "stream");
			pings += !strcmp(algo, "pingpong");
			if (strcmp(t->rows[i][ibc_csv_col(t, "collective")], "sendrecv") ||
			    strcmp(t->rows[i][ibc_csv_col(t, "wrong")], "0") ||
			    atof(t->rows[i][ibc_csv_col(t, "busbw_GBps")]) <= 0) {
				bad = 1;
				diag("bad row %d: %s %s bytes %s wrong %s busbw %s", i,
				     t->rows[i][ibc_csv_col(t, "collective")], algo,
				     t->rows[i][ibc_csv_col(t, "bytes")],
				     t->rows[i][ibc_csv_col(t, "wrong")],
				     t->rows[i][ibc_csv_col(t, "busbw_GBps")]);
			}
		}
		ok(!bad && streams == 5 && pings == 5,
		   "sendrecv rows: 5 sizes x (bandwidth, pingpong), 0 wrong (%d/%d)", streams, pings);
		ibc_csv_free(t);
	} else {
		ok(0, "sendrecv results.csv parses: %s", err);
	}
	free(r);
}

/* --mem hostdev: host memory treated as device memory, so every chunk goes through the
 * staging slots and asynchronous copies exactly as GPU memory does. */
static void staged(const char *tp)
{
	char out[512], path[600], err[512];
	char *argv[] = { (char *)bin, "allreduce", "--np", "3", "--mem", "hostdev", "--transport",
			 (char *)tp, "-b", "1", "-e", "1M", "-f", "16", "-d", "float,half,int8",
			 "-o", "sum,avg", "-n", "2", "-w", "1", "--out", out, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	struct ibc_csv_table *t = NULL;
	int i, bad = 0;

	snprintf(out, sizeof(out), "%s/staged-%s", tmpdir, tp);
	run_cmd(argv, NULL, 180, NULL, NULL, r);
	is_int(r->code, 0, "staged device memory over %s: exit 0", tp);
	if (r->code)
		diag("stderr: %.2000s", r->err);
	snprintf(path, sizeof(path), "%s/results.csv", out);
	if (ibc_csv_read(path, &t, err, sizeof(err)) == 0) {
		for (i = 0; i < t->nrows; i++)
			bad |= strcmp(t->rows[i][ibc_csv_col(t, "mem")], "hostdev") ||
			       strcmp(t->rows[i][ibc_csv_col(t, "status")], "ok");
		ok(!bad && t->nrows == 2 * 3 * 2 * 6 * 2,
		   "staged over %s: %d rows, all ok, mem hostdev", tp, t->nrows);
		ibc_csv_free(t);
	} else {
		ok(0, "staged over %s: results.csv: %s", tp, err);
	}
	free(r);
}

/* Staged device copies finish without any transport event (a GPU's copy engine, here the
 * hostdev backend's poll-driven copies), so a rank waiting only on its own copy must keep
 * polling. It used to sleep in the transport's wait() until a peer's message or the wait's
 * time limit woke it: 100 ms per stall, forever when both ranks did so. With no spinning
 * (IBCOLL_SPIN_NS=0) and 20 s waits (IBCOLL_WAIT_MS), such a stall outlasts the 10 s
 * no-progress timeout and the run fails instead of finishing in well under a second. */
static void staged_no_sleep(const char *tp)
{
	char out[512];
	char *argv[] = { (char *)bin, "allreduce", "--np", "2", "--mem", "hostdev", "--transport",
			 (char *)tp, "-b", "256K", "-e", "4M", "-f", "4", "-d", "float", "-o", "sum",
			 "-n", "2", "-w", "1", "--timeout", "10", "--out", out, NULL };
	char *env[] = { "IBCOLL_SPIN_NS=0", "IBCOLL_WAIT_MS=20000", NULL };
	struct cmd_result *r = malloc(sizeof(*r));

	snprintf(out, sizeof(out), "%s/staged-nosleep-%s", tmpdir, tp);
	run_cmd(argv, env, 120, NULL, NULL, r);
	is_int(r->code, 0, "staged over %s, no spinning: no sleep while a device copy runs "
	       "(%.1f s)", tp, r->seconds);
	if (r->code)
		diag("stderr: %.2000s", r->err);
	free(r);
}

static void no_gpu(void)
{
	char out[512], lib[600];
	char *argv[] = { (char *)bin, "allreduce", "--np", "2", "--mem", "cuda", "-e", "1K",
			 "--out", out, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	const char *slash = strrchr(bin, '/');

	snprintf(out, sizeof(out), "%s/nogpu", tmpdir);
	snprintf(lib, sizeof(lib), "%.*s/libibcoll-cuda.so", (int)(slash - bin), bin);
	run_cmd(argv, NULL, 60, NULL, NULL, r);
	if (access("/dev/nvidia0", F_OK) == 0) {
		tap_skip(2, "this machine has a GPU");
	} else {
		is_int(r->code, 3, "--mem cuda without a GPU: exit 3");
		if (access(lib, F_OK) == 0)
			ok(strstr(r->err, "no CUDA device") || strstr(r->err, "no GPU"),
			   "the message says that no GPU was found");
		else
			ok(strstr(r->err, "could not be loaded") != NULL,
			   "without libibcoll-cuda.so the message says the backend is missing");
		if (r->code != 3)
			diag("stderr: %.1000s", r->err);
	}
	ok(!exists(out), "--mem cuda failure writes no report");
	free(r);
}

/* A sweep that does not fit: a memory cgroup limit of 100 MiB in a fake sysfs tree. -e 64M
 * on 2 ranks needs 2 x (2 x 64M + overhead): refused before anything is written (exit 2,
 * the host and the largest -e that fits named); -e 8M fits and runs. More ranks than cores:
 * a warning. */
static void resources(void)
{
	char root[300], path[400], out[400], env0[350];
	char *envp[] = { env0, NULL };
	char *big[] = { (char *)bin, "allreduce", "--np", "2", "-e", "64M", "--out", out, NULL };
	char *fits[] = { (char *)bin, "allreduce", "--np", "2", "-e", "8M", "-n", "2", "-w", "1",
			 "--out", out, NULL };
	char *many[] = { (char *)bin, "allreduce", "--np", "3", "-e", "1K", "-n", "2", "--out",
			 out, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	FILE *f;

	snprintf(root, sizeof(root), "%s/fakesys", tmpdir);
	snprintf(path, sizeof(path), "mkdir -p %s/fs/cgroup", root);
	ok(system(path) == 0, "fake cgroup tree");
	snprintf(path, sizeof(path), "%s/fs/cgroup/memory.max", root);
	f = fopen(path, "w");
	if (f) {
		fputs("104857600\n", f);
		fclose(f);
	}
	snprintf(env0, sizeof(env0), "IBCOLL_SYSFS_ROOT=%s", root);
	snprintf(out, sizeof(out), "%s/res-big", tmpdir);
	run_cmd(big, envp, 60, NULL, NULL, r);
	is_int(r->code, 2, "a sweep larger than the memory cgroup allows: exit 2");
	ok(strstr(r->err, "-e") && strstr(r->err, "largest -e that fits") &&
		   strstr(r->err, ibc_hostname()),
	   "the message names -e, the host and the largest -e that fits");
	if (r->code != 2)
		diag("stderr: %.800s", r->err);
	ok(!exists(out), "nothing written");
	snprintf(out, sizeof(out), "%s/res-fits", tmpdir);
	run_cmd(fits, envp, 120, NULL, NULL, r);
	is_int(r->code, 0, "a sweep that fits the same limit runs");
	snprintf(out, sizeof(out), "%s/res-many", tmpdir);
	run_cmd(many, NULL, 120, NULL, NULL, r);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 3)
		ok(r->code == 0 && strstr(r->err, "warning: 3 ranks on host"),
		   "3 ranks on fewer cores: a warning, and the run goes on");
	else
		tap_skip(1, "this machine has 3 or more cores");
	free(r);
}

/* A loopback TCP port nobody listens on right now (bound, then released). */
static int free_port(void)
{
	int p, lo = 20000 + (int)(getpid() % 10000);

	for (p = lo; p < lo + 2000; p++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
		int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return p;
	}
	return -1;
}

/* Two ranks started by hand (IBCOLL_RANK/NRANKS/ROOT) with different -n: rank 0 compares the
 * options every rank must share before anything else and stops the job. */
static void mismatch(void)
{
	char out[512], log[600], root[64], cmd[2048], text[4096] = "";
	char *argv[] = { (char *)bin, "allreduce", "-e", "1K", "-n", "3", "--timeout", "10",
			 "--out", out, NULL };
	char *env[] = { "IBCOLL_RANK=0", "IBCOLL_NRANKS=2", root, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	int st = 0;
	pid_t pid;
	FILE *f;

	snprintf(out, sizeof(out), "%s/mismatch", tmpdir);
	snprintf(log, sizeof(log), "%s/mismatch-rank1.log", tmpdir);
	snprintf(root, sizeof(root), "IBCOLL_ROOT=127.0.0.1:%d", free_port());
	snprintf(cmd, sizeof(cmd),
		 "IBCOLL_RANK=1 IBCOLL_NRANKS=2 %s exec %s allreduce -e 1K -n 4 --timeout 10 "
		 "--out %s >%s 2>&1",
		 root, bin, out, log);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	run_cmd(argv, env, 60, NULL, NULL, r);
	waitpid(pid, &st, 0);
	f = fopen(log, "r");
	if (f) {
		text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
		fclose(f);
	}
	is_int(r->code, 2, "ranks with different -n: rank 0 exits 2");
	ok(strstr(r->err, "rank 1") && strstr(r->err, "-n (iters)"),
	   "rank 0 names the rank and the option that differs");
	if (!strstr(r->err, "-n (iters)"))
		diag("rank 0 stderr: %.1000s\n# rank 1: %.1000s", r->err, text);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "rank 1 exits 2 as well (status 0x%x)", st);
	ok(!exists(out), "nothing is written");
	free(r);
}

static void killed_rank(void)
{
	char out[512], path[600], err[512];
	char *argv[] = { (char *)bin, "allreduce", "--np", "4", "-b", "64K", "-e", "16M", "-n",
			 "400", "-w", "1", "--algo", "ring", "--timeout", "8", "--out", out, NULL };
	struct cmd_result *r = malloc(sizeof(*r));
	struct killer k = { 0 };
	struct ibc_csv_table *t = NULL;
	int rc;

	snprintf(out, sizeof(out), "%s/killed", tmpdir);
	run_cmd(argv, NULL, 120, on_line, &k, r);
	ok(k.killed_at > 0, "rank 2 (pid %d) was killed after 3 rows", k.pid2);
	is_int(r->code, 3, "the job exits 3");
	ok(k.killed_at > 0 && rc_now() - k.killed_at < 8 + 6,
	   "it ended within the timeout after the kill (%.1f s)",
	   k.killed_at > 0 ? rc_now() - k.killed_at : -1.0);
	ok(strstr(r->err, "rank 2") && strstr(r->err, "signal 9"),
	   "stderr names the dead rank and how it died");
	if (!strstr(r->err, "rank 2"))
		diag("stderr: %.3000s", r->err);
	snprintf(path, sizeof(path), "%s/results.csv", out);
	rc = ibc_csv_read(path, &t, err, sizeof(err));
	ok(rc == 0 && t->nrows >= 3, "results.csv so far parses with the finished rows (%s)",
	   rc ? err : "ok");
	if (!rc)
		ibc_csv_free(t);
	free(r);
}

int main(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char *v[] = { NULL, "--version", NULL }, *h[] = { NULL, "--help", NULL };
	char *x[] = { NULL, "frobnicate", NULL };

	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ibcoll-test-cli-%d", (int)getpid());
	mkdir(tmpdir, 0755);
	v[0] = h[0] = x[0] = (char *)bin;
	run_cmd(v, NULL, 10, NULL, NULL, r);
	ok(r->code == 0 && strncmp(r->out, "ibcoll ", 7) == 0, "--version");
	run_cmd(h, NULL, 10, NULL, NULL, r);
	ok(r->code == 0 && strstr(r->out, "exit codes"), "--help lists commands and exit codes");
	run_cmd(x, NULL, 10, NULL, NULL, r);
	ok(r->code == 2 && strstr(r->err, "frobnicate"), "unknown command: exit 2");
	free(r);

	rejects("-b with trailing junk", "-b", "-b", "1x", NULL, NULL);
	rejects("negative -b", "-b", "-b", "-5", NULL, NULL);
	rejects("overflowing -e", "-e", "-e", "99999999999999999999", NULL, NULL);
	rejects("-e too large", "-e", "-e", "64T", NULL, NULL);
	rejects("-f 1", "-f", "-f", "1", NULL, NULL);
	rejects("-e below -b", "-e", "-b", "1M", "-e", "1K");
	rejects("unknown dtype lists valid ones", "bfloat16", "-d", "float17", NULL, NULL);
	rejects("unknown op lists valid ones", "prod", "-o", "xor", NULL, NULL);
	rejects("unknown algo", "ring", "--algo", "ring,foo", NULL, NULL);
	rejects("unknown transport lists valid ones", "shm", "--transport", "ib", NULL, NULL);
	rejects("--np 0", "--np", "--np", "0", NULL, NULL);
	rejects("--channels 0", "--channels", "--channels", "0", NULL, NULL);
	rejects("--chunk junk", "--chunk", "--chunk", "1x", NULL, NULL);
	rejects("--timeout -1", "--timeout", "--timeout", "-1", NULL, NULL);
	rejects("unknown option", "--bogus", "--bogus", NULL, NULL, NULL);
	rejects("missing value", "-n", "-n", NULL, NULL, NULL);
	rejects("-n 0", "-n", "-n", "0", NULL, NULL);
	rejects("--mem bad", "--mem", "--mem", "gpu", NULL, NULL);
	/* a file flag naming no readable file, or a malformed one: usage, nothing written */
	rejects("--topology-xml missing file names the flag", "--topology-xml", "--topology-xml",
		"/nonexistent/topo.xml", NULL, NULL);
	rejects("--topology-xml missing file names the file", "/nonexistent/topo.xml",
		"--topology-xml", "/nonexistent/topo.xml", NULL, NULL);
	rejects("--transport plugin file missing", "/nonexistent/libibcoll-net-x.so",
		"--transport", "/nonexistent/libibcoll-net-x.so", NULL, NULL);
	/* --nic syntax is checked when parsing (exit 2); a well-formed name that is not on
	 * this machine is the transport's to report (exit 3, below) */
	rejects("--nic with a bad port", "--nic", "--nic", "mlx5_0:x", NULL, NULL);
	rejects("--nic with port 0", "1 to 255", "--nic", "mlx5_0:0", NULL, NULL);
	rejects("--nic with an empty item", "--nic", "--nic", "mlx5_0:1,,mlx5_1:1", NULL, NULL);
	rejects("--nic empty", "--nic", "--nic", "", NULL, NULL);
	rejects("--nic with a blank", "--nic", "--nic", "eth 0", NULL, NULL);
	rejects("--nic with a slash", "--nic", "--nic", "a/b", NULL, NULL);
	/* flags that exclude each other: refused before any report is written */
	rejects("--algo rd with --mem hostdev", "--algo rd", "--algo", "rd", "--mem", "hostdev");
	rejects("--algo rhd with --mem cuda", "--mem cuda", "--algo", "ring,rhd", "--mem",
		"cuda");
	rejects("--out ''", "--out", "--out", "", NULL, NULL);
	{ /* an XML file hwloc 2.9 crashes on (tests/fuzz found it): exit 2, not a crash */
		static char crash[600];

		snprintf(crash, sizeof(crash), "%s/../fuzz/known/topo/"
			 "hwloc-numanode-without-complete-nodeset.xml", getenv("IBCOLL_TEST_DATA"));
		rejects("--topology-xml that crashes hwloc", "--topology-xml", "--topology-xml",
			crash, NULL, NULL);
	}
	rejects("--out naming a file", "not a directory", "--out", "/dev/null", NULL, NULL);
	rejects_in("sendrecv", "sendrecv --np 1", "--np", "--np", "1", NULL, NULL);
	rejects_in("sendrecv", "sendrecv -d (allreduce only)", "-d", "-d", "float", NULL, NULL);
	rejects_in("sendrecv", "sendrecv --algo (allreduce only)", "--algo", "--algo", "ring",
		   NULL, NULL);
	rejects("allreduce --window (sendrecv only)", "--window", "--window", "4", NULL, NULL);
	rejects("allreduce --bidir (sendrecv only)", "--bidir", "--bidir", NULL, NULL, NULL);
	rejects_in("sendrecv", "sendrecv --mem hostdev", "--mem", "--mem", "hostdev", NULL, NULL);
	nic_absent();
	/* numbers are plain decimals: no blanks, no '+', nothing after them */
	rejects("--np with a leading blank", "--np", "--np", " 1", NULL, NULL);
	rejects("--np with a trailing blank", "--np", "--np", "2 ", NULL, NULL);
	rejects("--np with a '+'", "--np", "--np", "+2", NULL, NULL);
	rejects("-n with a leading blank", "-n", "-n", " 3", NULL, NULL);
	rejects("-w -0", "-w", "-w", "-0", NULL, NULL);
	rejects("--timeout with a '+'", "--timeout", "--timeout", "+5", NULL, NULL);
	rejects("--channels hex", "--channels", "--channels", "0x2", NULL, NULL);
	rejects("--gid-index with a blank", "--gid-index", "--gid-index", "\t1", NULL, NULL);
	rejects("-b with a leading blank", "-b", "-b", " 1K", NULL, NULL);
	rejects("-e with a '+'", "-e", "-e", "+1M", NULL, NULL);

	csv_roundtrip();
	resources();
	sendrecv("2", "shm", NULL);
	sendrecv("3", "tcp", NULL);
	sendrecv("4", "tcp", "--bidir");
	staged("shm");
	staged("tcp");
	staged_no_sleep("shm");
	staged_no_sleep("tcp");
	no_gpu();
	mismatch();
	killed_rank();
	return tap_done();
}
