/* SPDX-License-Identifier: MIT */
/*
 * test_compare.c - `ibcoll compare BASE NEW` and reports/compare.c on results.csv files written
 * here with known times: a copy is all ok; a 10% drop beyond the base's p99 is a regression
 * per row (exit 1, findings.csv rows naming the row and both times); a slowdown inside the
 * base's own min..p99 is noise, not a regression; a row ok before and wrong now is a finding;
 * rows in one run only are listed; runs with nothing in common, other schemas, a malformed
 * file, a file that is not a results.csv and a bad --tolerance exit 2 saying so; a report is
 * never overwritten; and a real `ibcoll allreduce --np 2` run against a copy of itself.
 */
#include "cmd_compare.h"
#include "ibc_csv.h"
#include "results_fixture.h"
#include "runcmd.h"
#include "schema.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *bin;
static char tmp[256];

/* tmp/name (4 rotating buffers) */
static const char *tmp_path(const char *name)
{
	static char buf[4][400];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, name);
	return buf[k];
}

static struct cmd_result *compare(const char *base, const char *nw, const char *extra,
				  const char *out)
{
	static struct cmd_result r;
	char b[400], n[400], o[400];
	char *argv[8] = {(char *)bin, "compare", b, n, "--out", o, NULL, NULL};

	snprintf(b, sizeof(b), "%s/%s", tmp, base);
	snprintf(n, sizeof(n), "%s/%s", tmp, nw);
	snprintf(o, sizeof(o), "%s/%s", tmp, out);
	argv[6] = (char *)extra;
	run_cmd(argv, NULL, 60, NULL, NULL, &r);
	r.err[strcspn(r.err, "\n")] = '\0'; /* the message is one line */
	return &r;
}

static int nrows(const char *out, const char *file, const char *col, const char *want)
{
	struct ibc_csv_table *t;
	char path[400], err[300];
	int r, n = 0;

	snprintf(path, sizeof(path), "%s/%s/%s", tmp, out, file);
	if (ibc_csv_read(path, &t, err, sizeof(err))) {
		diag("%s", err);
		return -1;
	}
	for (r = 0; r < t->nrows; r++)
		n += !want || strcmp(t->rows[r][ibc_csv_col(t, col)], want) == 0;
	ibc_csv_free(t);
	return n;
}

static void tolerance_parse(void)
{
	double f = -1;

	ok(bench_parse_tolerance("5", &f) == 0 && fabs(f - 0.05) < 1e-12, "tolerance 5 = 5%%");
	ok(bench_parse_tolerance("2.5%", &f) == 0 && fabs(f - 0.025) < 1e-12,
	   "tolerance 2.5%% = 0.025");
	ok(bench_parse_tolerance("x", &f) && bench_parse_tolerance("", &f) &&
	       bench_parse_tolerance("-1", &f) && bench_parse_tolerance("5%%", &f) &&
	       bench_parse_tolerance("1001", &f),
	   "tolerance: x, empty, -1, 5%%%%, 1001 refused");
}

static const struct row base_rows[] = {
    {"shm", 1024, 10.0, 10.2, "ok"},
    {"shm", 65536, 40.0, 40.8, "ok"},
    {"shm", 1048576, 400.0, 408.0, "ok"},
    {"shm", 16777216, 6000.0, 6120.0, "ok"},
};

static void copies_and_drops(void)
{
	struct row r[4];
	struct cmd_result *c;
	int i;

	write_run(tmp_path("base"), "1", "aaaa", base_rows, 4);
	write_run(tmp_path("copy"), "1", "bbbb", base_rows, 4);
	c = compare("base", "copy", NULL, "c-copy");
	is_int(c->code, 0, "a copy of the base: exit 0");
	ok(nrows("c-copy", "compare.csv", "verdict", "ok") == 4 &&
	       nrows("c-copy", "findings.csv", NULL, NULL) == 0 && strstr(c->out, "findings: none"),
	   "a copy: 4 rows ok in compare.csv, findings.csv has only its header");
	memcpy(r, base_rows, sizeof(r));
	for (i = 0; i < 4; i++) { /* a 10% bandwidth drop: times / 0.9 */
		r[i].p50 /= 0.9;
		r[i].p99 /= 0.9;
	}
	write_run(tmp_path("drop"), "1", "cccc", r, 4);
	c = compare("base", "drop", NULL, "c-drop");
	is_int(c->code, 1, "a 10%% drop: exit 1");
	ok(nrows("c-drop", "compare.csv", "verdict", "regression") == 4 &&
	       nrows("c-drop", "findings.csv", "check", "baseline") == 4,
	   "a 10%% drop: 4 regressions, 4 baseline findings");
	if (!ok(strstr(c->out, "p50 444.44 us against the baseline's 400.00 us (+11.1%)") &&
		    strstr(c->out, "1M bytes"),
		"the finding states the row, both p50 times and the change"))
		diag("%.2000s", c->out);
	c = compare("base", "drop", "--tolerance=15%", "c-drop15");
	is_int(c->code, 0, "the same drop with --tolerance 15%%: exit 0");
	memcpy(r, base_rows, sizeof(r));
	for (i = 0; i < 4; i++) /* the base was noisy: p99 1.5x its p50 */
		r[i].p99 = r[i].p50 * 1.5;
	write_run(tmp_path("noisy"), "1", "dddd", r, 4);
	for (i = 0; i < 4; i++) {
		r[i].p50 *= 1.2;
		r[i].p99 = r[i].p50 * 1.5;
	}
	write_run(tmp_path("slower"), "1", "eeee", r, 4);
	c = compare("noisy", "slower", NULL, "c-noise");
	ok(c->code == 0 && nrows("c-noise", "compare.csv", "verdict", "noise") == 4,
	   "20%% slower but inside the noisy base's p99: noise, exit 0 (%d)", c->code);
	c = compare("slower", "noisy", NULL, "c-faster");
	ok(c->code == 0 && nrows("c-faster", "compare.csv", "verdict", "faster") == 4,
	   "the other way round: faster, exit 0 (%d)", c->code);
}

static void status_and_unmatched(void)
{
	struct row r[4];
	struct cmd_result *c;

	memcpy(r, base_rows, sizeof(r));
	r[1].status = "wrong";
	r[3].bytes = 33554432; /* a size the base does not have; its 16M row is missing */
	write_run(tmp_path("mixed"), "1", "ffff", r, 4);
	c = compare("base", "mixed", NULL, "c-mixed");
	is_int(c->code, 1, "a row now wrong: exit 1");
	ok(nrows("c-mixed", "compare.csv", "verdict", "status") == 1 &&
	       nrows("c-mixed", "compare.csv", "verdict", "new_only") == 1 &&
	       nrows("c-mixed", "compare.csv", "verdict", "base_only") == 1 &&
	       nrows("c-mixed", "compare.csv", NULL, NULL) == 5,
	   "compare.csv: 1 status change, 1 row only new, 1 only in the base, 5 rows in all");
	ok(nrows("c-mixed", "findings.csv", NULL, NULL) == 1 &&
	       strstr(c->out, "status ok in the baseline, wrong now"),
	   "one finding: the status change");
}

static void bad_input(void)
{
	struct row r[4];
	struct cmd_result *c;
	FILE *f;
	int i;

	memcpy(r, base_rows, sizeof(r));
	for (i = 0; i < 4; i++)
		r[i].transport = "tcp";
	write_run(tmp_path("tcp"), "1", "gggg", r, 4);
	c = compare("base", "tcp", NULL, "c-tcp");
	if (!ok(c->code == 2 && strstr(c->err, "no row of") && strstr(c->err, "transport") &&
		    strstr(c->err, "shm") && strstr(c->err, "tcp"),
		"nothing in common: exit 2 naming the column that differs and both values"))
		diag("%d %s", c->code, c->err);
	write_run(tmp_path("schema2"), "2", "hhhh", base_rows, 4);
	c = compare("base", "schema2", NULL, "c-s2");
	ok(c->code == 2 && strstr(c->err, "schema 1") && strstr(c->err, "schema 2"),
	   "another schema: exit 2 naming both (%s)", c->err);
	mkdir(tmp_path("broken"), 0755);
	f = fopen(tmp_path("broken/results.csv"), "w");
	fprintf(f, "schema,run_id,bytes\n1,x,8\n1,x\n");
	fclose(f);
	c = compare("base", "broken", NULL, "c-broken");
	ok(c->code == 2 && strstr(c->err, "broken/results.csv:3"),
	   "a malformed file: exit 2 naming file and line (%s)", c->err);
	mkdir(tmp_path("hosts"), 0755);
	f = fopen(tmp_path("hosts/results.csv"), "w");
	fprintf(f, "schema,run_id,rank,host\n1,x,0,a\n");
	fclose(f);
	c = compare("base", "hosts", NULL, "c-hosts");
	ok(c->code == 2 && strstr(c->err, "not an ibcoll results.csv"),
	   "not a results.csv: exit 2 saying so (%s)", c->err);
	c = compare("base", "copy", "--tolerance=lots", "c-tol");
	ok(c->code == 2 && strstr(c->err, "--tolerance lots"), "--tolerance lots: exit 2 (%s)",
	   c->err);
	c = compare("base", "copy", NULL, "c-copy");
	ok(c->code == 2 && strstr(c->err, "never overwrites"),
	   "compare into a directory that holds compare.csv: exit 2, not overwritten (%s)", c->err);
}

/* A copy of dir/results.csv into dir2 with every time column set to us: a baseline that any
 * real run beats (1e9 us) or loses to (0.001 us), whatever the machine's load. */
static int const_copy(const char *dir, const char *dir2, double us)
{
	static const char *const cols[] = {RPT_RESULTS_COLUMNS};
	static const char *const times[] = {"time_us", "time_min_us", "time_p50_us", "time_p99_us",
					    "time_max_us"};
	struct ibc_csv_table *t;
	struct ibc_csv_writer *w;
	char path[400], err[300], num[5][32];
	int r, i, rc;

	snprintf(path, sizeof(path), "%s/results.csv", dir);
	if (ibc_csv_read(path, &t, err, sizeof(err)) || t->ncols != RPT_RESULTS_NCOLS)
		return -1;
	mkdir(dir2, 0755);
	snprintf(path, sizeof(path), "%s/results.csv", dir2);
	rc = ibc_csv_create(path, cols, RPT_RESULTS_NCOLS, &w);
	for (r = 0; r < t->nrows && !rc; r++) {
		const char *v[RPT_RESULTS_NCOLS];

		memcpy(v, t->rows[r], sizeof(v));
		for (i = 0; i < 5; i++) {
			int c = ibc_csv_col(t, times[i]);

			snprintf(num[i], sizeof(num[i]), "%.3f", us);
			v[c] = num[i];
		}
		rc = ibc_csv_append(w, v);
	}
	if (!rc)
		ibc_csv_close(w);
	ibc_csv_free(t);
	return rc;
}

static int run_real(const char *out, const char *baseline, const char *tol)
{
	struct cmd_result *c = malloc(sizeof(*c));
	char *argv[24] = {(char *)bin, "allreduce", "--np",   "2",	   "-b",    "1K",
			  "-e",	       "64K",	    "-f",     "8",	   "-n",    "5",
			  "-w",	       "1",	    "--algo", "ring,tree", "--out", (char *)out};
	int code;

	if (baseline) {
		argv[18] = "--baseline";
		argv[19] = (char *)baseline;
		argv[20] = "--tolerance";
		argv[21] = (char *)tol;
	}
	run_cmd(argv, NULL, 120, NULL, NULL, c);
	code = c->code;
	if (code > 1)
		diag("%.1500s", c->err);
	free(c);
	return code;
}

/* A real run and a copy of it: every row matched and ok; --baseline on a run. */
static void real_run(void)
{
	struct cmd_result c;
	char cmd[1200];

	is_int(run_real(tmp_path("real"), NULL, NULL), 0, "ibcoll allreduce --np 2: exit 0");
	snprintf(cmd, sizeof(cmd), "cp -r %s/real %s/real-copy", tmp, tmp);
	if (system(cmd) != 0)
		diag("cp failed");
	memcpy(&c, compare("real", "real-copy", NULL, "c-real"), sizeof(c));
	ok(c.code == 0 && nrows("c-real", "compare.csv", "verdict", "ok") == 12,
	   "a real run against its copy: 12 rows ok, exit 0 (%d)", c.code);
	ok(const_copy(tmp_path("real"), tmp_path("slowbase"), 1e9) == 0 &&
	       const_copy(tmp_path("real"), tmp_path("fastbase"), 0.001) == 0,
	   "baselines of 1000 s and of 1 ns per operation");
	is_int(run_real(tmp_path("again"), tmp_path("slowbase"), "5"), 0,
	       "a run with --baseline of a 1000 s baseline: exit 0");
	ok(nrows("again", "compare.csv", "verdict", "faster") == 12 &&
	       nrows("again", "findings.csv", NULL, NULL) == 0,
	   "--baseline: compare.csv (12 rows faster) and an empty findings.csv in the run's "
	   "directory");
	is_int(run_real(tmp_path("slow"), tmp_path("fastbase"), "5"), 1,
	       "a run against a 1 ns baseline: exit 1");
	ok(nrows("slow", "findings.csv", "check", "baseline") == 12,
	   "--baseline: every row a regression finding");
	is_int(run_real(tmp_path("nobase"), tmp_path("nonexistent"), "5"), 2,
	       "--baseline of a directory without results.csv: exit 2 before the run");
	ok(access(tmp_path("nobase"), F_OK) != 0, "... and no run directory is made");
}

int main(void)
{
	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	snprintf(tmp, sizeof(tmp), "/tmp/ibc_compare_%d", (int)getpid());
	mkdir(tmp, 0700);
	tap_plan(29);
	tolerance_parse();
	copies_and_drops();
	status_and_unmatched();
	bad_input();
	real_run();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			diag("cleanup failed");
	}
	return tap_done();
}
