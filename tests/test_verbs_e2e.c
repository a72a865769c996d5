/* SPDX-License-Identifier: MIT */
/*
 * test_verbs_e2e.c - `ibcoll allreduce/sendrecv --transport verbs` end to end, over the
 * software HCA (IBCOLL_IBVERBS_LIB), plus the failures a user meets first: no library, no
 * device, a link that drops in the middle of a run.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibc_csv.h"
#include "tap.h"

#define OUT_MAX (256 * 1024)

struct run {
	int status; /* exit code, or 128 + signal, or -1 when it was killed for the time limit */
	double secs;
	char out[OUT_MAX]; /* stdout + stderr */
};

static char tmpdir[256];
static int nout;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run argv with env (NAME, VALUE pairs; VALUE NULL unsets) for at most limit_s seconds. */
static void run(struct run *r, int limit_s, const char *const *env, const char *const *argv)
{
	char path[300];
	double t0 = now_s();
	int fd, st = 0;
	ssize_t n;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	pid = fork();
	if (!pid) {
		setpgid(0, 0);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		for (; env && *env; env += 2) {
			if (env[1])
				setenv(env[0], env[1], 1);
			else
				unsetenv(env[0]);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	r->status = -1;
	while (now_s() - t0 < limit_s) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		usleep(20000);
	}
	if (r->status == -1) {
		kill(-pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	r->secs = now_s() - t0;
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, r->out, OUT_MAX - 1) : 0;
	r->out[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void show(const struct run *r)
{
	const char *p = r->out, *e;
	int lines = 0;

	diag("exit %d after %.1f s; output:", r->status, r->secs);
	while (*p && lines++ < 60) {
		e = strchr(p, '\n');
		diag("  %.*s", (int)(e ? e - p : (long)strlen(p)), p);
		if (!e)
			break;
		p = e + 1;
	}
}

/* Column index of name in a CSV header line, or -1. */
static int csv_col(const char *header, const char *name)
{
	char buf[4096], *tok, *save;
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", header);
	buf[strcspn(buf, "\r\n")] = '\0';
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++)
		if (!strcmp(tok, name))
			return i;
	return -1;
}

static void csv_field(const char *line, int col, char *out, size_t len)
{
	int i = 0;

	out[0] = '\0';
	while (i < col && line) {
		if (*line == '"') { /* quoted: skip to the closing quote */
			line = strchr(line + 1, '"');
			if (line)
				line++;
		}
		line = line ? strchr(line, ',') : NULL;
		if (line)
			line++;
		i++;
	}
	if (!line)
		return;
	snprintf(out, len, "%.*s", (int)strcspn(line, ",\r\n"), line);
}

/* Every row of dir/results.csv has wrong 0 and status ok; counts rows per algo. */
static int check_csv(const char *dir, int *ring, int *tree, int *rows)
{
	char path[400], line[4096], v[64], a[64];
	int cw, cs, ca, bad = 0;
	FILE *f;

	*ring = *tree = *rows = 0;
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		diag("cannot read %s", path);
		if (f)
			fclose(f);
		return -1;
	}
	cw = csv_col(line, "wrong");
	cs = csv_col(line, "status");
	ca = csv_col(line, "algo");
	while (fgets(line, sizeof(line), f)) {
		(*rows)++;
		csv_field(line, cw, v, sizeof(v));
		bad += strcmp(v, "0") != 0;
		csv_field(line, cs, v, sizeof(v));
		bad += strcmp(v, "ok") != 0;
		csv_field(line, ca, a, sizeof(a));
		*ring += !strcmp(a, "ring");
		*tree += !strcmp(a, "tree");
	}
	fclose(f);
	return bad;
}

/* Field `col` of the results.csv row whose algo is `algo` (static buffer; "" when absent). */
static const char *sr_row_field(const char *dir, const char *algo, const char *col)
{
	static char v[64];
	struct ibc_csv_table *t = NULL;
	char path[400], err[256];
	int ca, cc, i;

	v[0] = '\0';
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	if (ibc_csv_read(path, &t, err, sizeof(err))) {
		diag("%s", err);
		return v;
	}
	ca = ibc_csv_col(t, "algo");
	cc = ibc_csv_col(t, col);
	for (i = 0; ca >= 0 && cc >= 0 && i < t->nrows; i++)
		if (!strcmp(t->rows[i][ca], algo))
			snprintf(v, sizeof(v), "%s", t->rows[i][cc]);
	ibc_csv_free(t);
	return v;
}

/* Rows of dir/findings.csv of the given check; -1 when it cannot be read. */
static int findings_of(const char *dir, const char *check)
{
	struct ibc_csv_table *t = NULL;
	char path[400], err[256];
	int n = 0, i, cc;

	snprintf(path, sizeof(path), "%s/findings.csv", dir);
	if (ibc_csv_read(path, &t, err, sizeof(err))) {
		diag("%s", err);
		return -1;
	}
	cc = ibc_csv_col(t, "check");
	for (i = 0; cc >= 0 && i < t->nrows; i++)
		n += !strcmp(t->rows[i][cc], check);
	ibc_csv_free(t);
	return n;
}

static const char *outdir(void)
{
	static char d[300];

	snprintf(d, sizeof(d), "%s/out%d", tmpdir, nout++);
	return d;
}

static int lib_loads(const char *path)
{
	pid_t pid = fork();
	int st;

	if (!pid)
		_exit(dlopen(path, RTLD_NOW | RTLD_LOCAL) ? 0 : 1);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static struct run r;

static void allreduce_ok(const char *what, const char *qps, const char *const *env,
			 const char *mem)
{
	const char *dir = outdir();
	const char *argv[] = {getenv("IBCOLL_BIN"),
			      "allreduce",
			      "--np",
			      "4",
			      "--transport",
			      "verbs",
			      "--qps",
			      qps,
			      "-b",
			      "8",
			      "-e",
			      "4M",
			      "-f",
			      "8",
			      "--algo",
			      "ring,tree",
			      "-w",
			      "1",
			      "-n",
			      "3",
			      "-c",
			      "1",
			      "--timeout",
			      "60",
			      "--mem",
			      mem,
			      "--out",
			      dir,
			      NULL};
	int ring, tree, rows, bad;

	run(&r, 150, env, argv);
	if (!ok(r.status == 0, "%s: exits 0", what))
		show(&r);
	bad = check_csv(dir, &ring, &tree, &rows);
	ok(bad == 0 && ring > 0 && tree > 0,
	   "%s: %d rows (ring %d, tree %d), all with #wrong 0 and status ok (%d bad)", what, rows,
	   ring, tree, bad);
}

int main(void)
{
	const char *bin = getenv("IBCOLL_BIN"), *lib = getenv("IBCOLL_IBVERBS_LIB");
	static const char *const two_dev[] = {"IBCOLL_SOFTHCA_DEVICES", "2", NULL};
	static const char *const roce[] = {"IBCOLL_SOFTHCA_LINK_LAYER", "Ethernet", NULL};
	static const char *const drop[] = {"IBCOLL_SOFTHCA_DROP_AFTER_BYTES", "3000000",
					   "IBCOLL_SOFTHCA_FAULT_RANK", "1", NULL};
	static const char *const nolib[] = {"IBCOLL_IBVERBS_LIB", "/nonexistent/libibverbs.so.1",
					    NULL};
	static const char *const syslib[] = {"IBCOLL_IBVERBS_LIB", NULL, NULL};
	char tmpl[] = "/tmp/ibcoll-verbs-e2e-XXXXXX";
	const char *dir;

	if (!bin || access(bin, X_OK))
		return tap_skip_all("IBCOLL_BIN does not name the ibcoll binary");
	if (!lib || !*lib || !lib_loads(lib))
		return tap_skip_all("cannot load IBCOLL_IBVERBS_LIB (the software HCA)");
	if (!mkdtemp(tmpl))
		return tap_skip_all("mkdtemp failed");
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);

	allreduce_ok("allreduce --np 4 --transport verbs", "1", NULL, "host");
	allreduce_ok("allreduce --np 4 --qps 3 over 2 devices", "3", two_dev, "host");
	allreduce_ok("allreduce --np 4 over RoCE", "2", roce, "host");
	/* device memory staged through pinned host slots, as --mem cuda on verbs without GPUDirect */
	allreduce_ok("allreduce --np 4 --mem hostdev (staged) over verbs", "1", NULL, "hostdev");

	{
		const char *argv[] = {bin,     "sendrecv", "--np",   "2",  "--transport",
				      "verbs", "-b",	   "1M",     "-e", "4M",
				      "-n",    "5",	   "-w",     "1",  "--timeout",
				      "60",    "--out",	   outdir(), NULL};

		run(&r, 120, NULL, argv);
		if (!ok(r.status == 0, "sendrecv --np 2 --transport verbs exits 0"))
			show(&r);
	}

	{ /* rank 0 flips one bit of the 5000th byte it sends: rank 1, the receiver, must be
	   * named as holding wrong data, and the run exits 1 (a check failed) */
		static const char *const flip[] = {"IBCOLL_SOFTHCA_FLIP_BYTE", "5000",
						   "IBCOLL_SOFTHCA_FAULT_RANK", "0", NULL};
		char dir[300];
		const char *argv[] = {bin,     "sendrecv", "--np",	"2",  "--transport",
				      "verbs", "-b",	   "1M",	"-e", "1M",
				      "-n",    "2",	   "-w",	"0",  "--timeout",
				      "30",    "--out",	   dir, NULL};

		snprintf(dir, sizeof(dir), "%s", outdir());
		run(&r, 90, flip, argv);
		if (!ok(r.status == 1, "flipped byte: exit 1 (%d)", r.status))
			show(&r);
		if (!ok(strstr(r.out, "wrong data: rank 1") && !strstr(r.out, "wrong data: rank 0"),
			"flipped byte: the receiving rank 1, and only it, is named"))
			show(&r);
		/* the flip happens once, in the stream test: its row has the wrong byte, the
		 * ping-pong row after it none (it carried the stream test's count before) */
		is_str(sr_row_field(dir, "stream", "wrong"), "1", "flipped byte: stream row wrong 1");
		is_str(sr_row_field(dir, "stream", "status"), "wrong", "stream row status wrong");
		is_str(sr_row_field(dir, "pingpong", "wrong"), "0",
		       "ping-pong row after it: wrong 0 (each row counts its own test)");
		is_str(sr_row_field(dir, "pingpong", "status"), "ok", "ping-pong row status ok");
		ok(findings_of(dir, "correctness") == 1 && strstr(r.out, "correctness row") &&
			   strstr(r.out, "status wrong"),
		   "flipped byte: one correctness finding in findings.csv, stated on stdout");
	}
	{ /* the same flip inside an all-reduce is caught by the bit-exact check (int32: a float
	   * sum could round a flipped low mantissa bit away) */
		static const char *const flip[] = {"IBCOLL_SOFTHCA_FLIP_BYTE", "5000",
						   "IBCOLL_SOFTHCA_FAULT_RANK", "2", NULL};
		const char *argv[] = {bin,	"allreduce", "--np", "4",  "--transport",
				      "verbs",	"--algo",    "ring", "-d", "int32", "-b", "1M",
				      "-e",	"1M",	     "-n",   "1",  "-w",
				      "0",	"--timeout", "30",   "--out", outdir(), NULL};

		run(&r, 90, flip, argv);
		if (!ok(r.status == 1 && strstr(r.out, "wrong result: rank"),
			"flipped byte in an all-reduce: exit 1 naming the ranks with wrong results"))
			show(&r);
	}

	{ /* a link that drops after 3 MB: exit 3, naming rank, peer, device and port */
		const char *argv[] = {bin,     "allreduce", "--np",   "4",  "--transport",
				      "verbs", "-b",	    "16M",    "-e", "16M",
				      "-w",    "0",	    "-n",     "20", "--timeout",
				      "30",    "--out",	    outdir(), NULL};

		run(&r, 90, drop, argv);
		if (!ok(r.status == 3, "dropped link: exit 3 (%d after %.1f s)", r.status, r.secs))
			show(&r);
		if (!ok(strstr(r.out, "rank 1") && strstr(r.out, "QP 0x") &&
			    strstr(r.out, " port ") && strstr(r.out, "status"),
			"dropped link: message names the rank, peer, status, QP, device and port"))
			show(&r);
		ok(r.secs < 60, "dropped link: reported within the timeout (%.1f s)", r.secs);
	}

	{
		const char *argv[] = {bin,     "allreduce", "--np", "2",  "--transport",
				      "verbs", "-b",	    "8",    "-e", "8",
				      "--out", outdir(),    NULL};

		run(&r, 60, nolib, argv);
		if (!ok(r.status == 3 && strstr(r.out, "could not load libibverbs") &&
			    strstr(r.out, "--transport tcp"),
			"missing library: exit 3 with what to do (%d)", r.status))
			show(&r);
		if (lib_loads("libibverbs.so.1") && access("/sys/class/infiniband", F_OK)) {
			run(&r, 60, syslib, argv);
			if (!ok(r.status == 3 && strstr(r.out, "no RDMA device found") &&
				    strstr(r.out, "--transport tcp or shm"),
				"no RDMA device (system libibverbs): exit 3 naming the fix (%d)",
				r.status))
				show(&r);
		} else {
			tap_skip(1, "this machine has RDMA devices or no libibverbs");
		}
	}

	dir = tmpdir;
	if (tap_done() == 0) { /* keep the output of a failed run for a look */
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			diag("could not remove %s", dir);
		return 0;
	}
	diag("output kept in %s", dir);
	return 1;
}
