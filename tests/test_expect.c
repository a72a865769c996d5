/* SPDX-License-Identifier: MIT */
/*
 * test_expect.c - thresholds (reports/expect.c) and the verdict of a run (bench/verdict.c):
 * an expectations file's good and bad lines (file:line:col), the --expect-busbw shorthand,
 * rows that meet, miss or were not measured against busbw and time limits, an expectation
 * that selects nothing; then real runs: limits met (exit 0, findings.csv with its header
 * only), missed (exit 1, one finding per row, stated on stdout), a bad file or value (exit 2
 * before anything is written).
 */
#include "expect.h"
#include "ibc_csv.h"
#include "results_fixture.h"
#include "runcmd.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *bin;
static char tmp[256];

static const char *path_of(const char *name)
{
	static char buf[4][400];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, name);
	return buf[k];
}

static void put(const char *name, const char *text)
{
	FILE *f = fopen(path_of(name), "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

#define HDR "collective,algo,transport,bytes,min_busbw_GBps,max_time_us\n"

static void load_file(void)
{
	struct rpt_expects e = {0};
	char err[600];
	int rc;

	put("good.csv", HDR "allreduce,ring,*,1M,4.5,\n*,*,shm,*,,500\nallreduce,*,*,16M,,fast\n");
	rc = rpt_expect_load(path_of("good.csv"), &e, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "good.csv:4:") && strstr(err, "max_time_us 'fast'"),
	   "a limit that is not a number: file:line:col and the field (%s)", err);
	rpt_expects_free(&e);
	put("good.csv", HDR "allreduce,ring,*,1M,4.5,\n*,*,shm,*,,500\n");
	rc = rpt_expect_load(path_of("good.csv"), &e, err, sizeof(err));
	ok(rc == 0 && e.n == 2 && e.v[0].bytes == 1048576 && !e.v[0].any_bytes &&
	       e.v[0].min_busbw == 4.5 && isnan(e.v[0].max_time) && e.v[1].any_bytes &&
	       !strcmp(e.v[1].transport, "shm") && !e.v[1].collective[0] && e.v[1].max_time == 500,
	   "a good file: 2 expectations, sizes, wildcards and limits read");
	rpt_expects_free(&e);
	put("nolimit.csv", HDR "allreduce,ring,*,1M,,\n");
	rc = rpt_expect_load(path_of("nolimit.csv"), &e, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "nolimit.csv:2: neither"), "a line without a limit (%s)",
	   err);
	rpt_expects_free(&e);
	put("nocol.csv", "collective,algo,bytes,min_busbw_GBps\n");
	rc = rpt_expect_load(path_of("nocol.csv"), &e, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "no column 'transport'"), "a missing column (%s)", err);
	rpt_expects_free(&e);
	put("short.csv", HDR "allreduce,ring,*,1M\n");
	rc = rpt_expect_load(path_of("short.csv"), &e, err, sizeof(err));
	ok(rc && strstr(err, "short.csv:2"), "a short line: the CSV reader's file:line (%s)", err);
	rpt_expects_free(&e);
	put("neg.csv", HDR "allreduce,ring,*,1M,-3,\n");
	rc = rpt_expect_load(path_of("neg.csv"), &e, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "neg.csv:2:") && strstr(err, "min_busbw_GBps '-3'"),
	   "a negative limit (%s)", err);
	rpt_expects_free(&e);
}

static void shorthand(void)
{
	struct rpt_expects e = {0};
	char err[300];

	ok(rpt_expect_parse_busbw("1M=20,8G=180.5", &e, err, sizeof(err)) == 0 && e.n == 2 &&
	       e.v[1].bytes == 8ull << 30 && e.v[1].min_busbw == 180.5 && !e.v[1].any_bytes,
	   "--expect-busbw 1M=20,8G=180.5");
	rpt_expects_free(&e);
	ok(rpt_expect_parse_busbw("1M", &e, err, sizeof(err)) == -EINVAL && strstr(err, "'1M'"),
	   "--expect-busbw 1M: no value (%s)", err);
	rpt_expects_free(&e);
	ok(rpt_expect_parse_busbw("1X=3", &e, err, sizeof(err)) == -EINVAL &&
	       rpt_expect_parse_busbw("1M=0", &e, err, sizeof(err)) == -EINVAL &&
	       rpt_expect_parse_busbw("", &e, err, sizeof(err)) == -EINVAL,
	   "--expect-busbw 1X=3, 1M=0 and empty refused");
	rpt_expects_free(&e);
	ok(rpt_expect_parse_busbw(",,", &e, err, sizeof(err)) == -EINVAL && e.n == 0,
	   "--expect-busbw ',,' (no item) refused (found by tests/fuzz)");
	rpt_expects_free(&e);
}

static void checks(void)
{
	static const struct row rows[] = {
		{ "shm", 1048576, 400.0, 410.0, "ok" },	   /* busbw 4.587 */
		{ "shm", 16777216, 6000.0, 6100.0, "ok" }, /* busbw 4.893 */
		{ "tcp", 1048576, 900.0, 950.0, "timeout" },
	};
	struct rpt_expects e = {0};
	struct rpt_findings f = {0};
	struct ibc_csv_table *t;
	char err[600];
	int checked, idle, rc;

	write_run(path_of("run"), "1", "abcd", rows, 3);
	if (ibc_csv_read(path_of("run/results.csv"), &t, err, sizeof(err))) {
		ok(0, "fixture: %s", err);
		return;
	}
	put("lim.csv", HDR "allreduce,ring,shm,1M,4.5,\n" /* met */
		       "allreduce,ring,shm,16M,5,\n"	    /* missed: 4.893 < 5 */
		       "*,*,*,*,,5000\n"		    /* 16M (6000 us) and the timeout */
		       "allreduce,tree,*,*,1,\n");	    /* selects nothing */
	rc = rpt_expect_load(path_of("lim.csv"), &e, err, sizeof(err));
	rc = rc ? rc : rpt_expect_check(&e, t, &f, NULL, &checked, &idle);
	ok(rc == 0 && checked == 5 && idle == 1, "5 row checks, 1 expectation selects no row (%d %d)",
	   checked, idle);
	if (!ok(f.n == 3, "3 findings: a busbw below its minimum, a time over its limit, a row "
			  "not measured (%d)",
		f.n))
		rpt_findings_print(stderr, &f);
	ok(f.n >= 1 && !strcmp(f.v[0].unit, "GB/s") && fabs(f.v[0].expected - 5) < 1e-9 &&
	       fabs(f.v[0].measured - 4.893) < 0.01 && strstr(f.v[0].evidence, "lim.csv:3") &&
	       strstr(f.v[0].evidence, "16M bytes"),
	   "busbw finding: measured, expected, unit, the row and the file line (%s)",
	   f.n ? f.v[0].evidence : "");
	ok(f.n >= 3 && !strcmp(f.v[1].unit, "us") && f.v[1].measured == 6000 &&
	       strstr(f.v[2].evidence, "not measured (status timeout)") &&
	       !strcmp(f.v[2].check, "threshold") && !strcmp(f.v[2].kind, "row"),
	   "time finding in us; the timed-out row is not measured, so not met");
	rpt_findings_free(&f);
	rpt_expects_free(&e);
	ibc_csv_free(t);
}

static int run(const char *out, const char *flag, const char *val, struct cmd_result *r)
{
	char *argv[] = { (char *)bin, "allreduce", "--np",	  "2", "-b",  "1K", "-e",
			 "64K",	      "-f",	   "8",		  "-n", "3",   "-w", "1",
			 "--out",     (char *)out, (char *)flag, (char *)val, NULL };

	run_cmd(argv, NULL, 120, NULL, NULL, r);
	return r->code;
}

static int findings(const char *dir, const char *check)
{
	struct ibc_csv_table *t;
	char path[400], err[300];
	int n = 0, r;

	snprintf(path, sizeof(path), "%s/findings.csv", dir);
	if (ibc_csv_read(path, &t, err, sizeof(err)))
		return -1;
	for (r = 0; r < t->nrows; r++)
		n += !check || !strcmp(t->rows[r][ibc_csv_col(t, "check")], check);
	ibc_csv_free(t);
	return n;
}

static void real_runs(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	int code;

	code = run(path_of("met"), "--expect-busbw", "64K=0.000001", r);
	ok(code == 0 && findings(path_of("met"), NULL) == 0 && strstr(r->out, "findings: none"),
	   "a limit the run meets: exit 0, findings.csv with its header only (%d)", code);
	put("never.csv", HDR "allreduce,*,*,64K,1000000,\n");
	code = run(path_of("missed"), "--expect-file", path_of("never.csv"), r);
	ok(code == 1 && findings(path_of("missed"), "threshold") == 4,
	   "a limit no run meets: exit 1, 4 threshold findings (ring, tree; out, in) (%d)", code);
	ok(strstr(r->out, "# findings: 4") && strstr(r->out, "the minimum is 1000000"),
	   "the findings are stated in the last lines on stdout");
	code = run(path_of("bad"), "--expect-file", path_of("neg.csv"), r);
	ok(code == 2 && strstr(r->err, "--expect-file") && strstr(r->err, "neg.csv:2:") &&
	       access(path_of("bad"), F_OK) != 0,
	   "a bad expectations file: exit 2 naming file:line, no run directory (%d)", code);
	code = run(path_of("bad2"), "--expect-busbw", "64K", r);
	ok(code == 2 && strstr(r->err, "--expect-busbw '64K'") && access(path_of("bad2"), F_OK),
	   "--expect-busbw 64K: exit 2 (%d)", code);
	code = run(path_of("bad3"), "--expect-file", path_of("absent.csv"), r);
	ok(code == 2 && strstr(r->err, "absent.csv"), "a missing expectations file: exit 2 (%d)",
	   code);
	free(r);
}

int main(void)
{
	char cmd[300];

	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	snprintf(tmp, sizeof(tmp), "/tmp/ibc_expect_%d", (int)getpid());
	mkdir(tmp, 0700);
	tap_plan(20);
	load_file();
	shorthand();
	checks();
	real_runs();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return tap_done();
}
