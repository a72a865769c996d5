/* SPDX-License-Identifier: MIT */
/*
 * test_machine.c - the results for machines (reports/machine.c), checked by their real
 * consumers: summary.json read back with cJSON, junit.xml through Debian's junitparser (and
 * its failures counted), ibcoll.prom through `promtool check metrics`; text that needs
 * escaping (& < > " ' and a newline) survives all three; a real run with a missed threshold
 * and `ibcoll compare` write them; ibc_file_create never replaces a file.
 */
#include "findings.h"
#include "ibc_csv.h"
#include "machine.h"
#include "runcmd.h"
#include "tap.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *bin;
static char tmp[256];
static bool have_promtool, have_junitparser;

static const char *path_of(const char *name)
{
	static char buf[4][400];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, name);
	return buf[k];
}

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* junitparser's count of tests and failures in a file: "tests failures", or "" on error */
static void junit_counts(const char *file, char *out, size_t len)
{
	char cmd[700];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import sys; from junitparser import JUnitXml\n"
		 "x = JUnitXml.fromfile(sys.argv[1]); t = f = 0\n"
		 "for s in x:\n"
		 "  for c in s:\n"
		 "    t += 1; f += any(r._tag == \"failure\" for r in c.result)\n"
		 "print(t, f)' %s 2>&1",
		 file);
	out[0] = '\0';
	p = popen(cmd, "r");
	if (!p)
		return;
	if (!fgets(out, (int)len, p))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

static int promtool_ok(const char *file)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s >%s.lint 2>&1", file, file);
	if (sh(cmd) == 0)
		return 1;
	snprintf(cmd, sizeof(cmd), "sed 's/^/# promtool: /' %s.lint", file);
	sh(cmd);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[1 << 20];
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Hostile text in every field: the renderers escape it. */
static void escaping(void)
{
	struct rpt_run_info info = { "allreduce", "0123abcd", "2026-12-07T01:02:03Z", 1 };
	struct rpt_findings f = { 0 };
	struct rpt_cases c = { 0 };
	struct rpt_finding *x = rpt_findings_add(&f, "threshold", "row");
	const char *evil = "busbw < 5 & \"quoted\" 'single' >\nnext line";
	static const char rows[] =
		"collective,algo,transport,mem,dtype,op,placement,nranks,nnodes,"
		"ranks_per_node,channels,bytes,busbw_GBps,algbw_GBps,time_p50_us,"
		"time_p99_us,status,run_id\n"
		"allreduce,\"ri\"\"ng\",shm,host,float,sum,out,2,1,2,1,1024,0.5,0.25,4,5,ok,"
		"00000000000000e5\n";
	struct ibc_csv_table *t;
	char err[300], counts[64];
	cJSON *j;
	char *s;

	snprintf(x->evidence, sizeof(x->evidence), "%s", evil);
	x->measured = 4.5;
	rpt_cases_add(&c, "threshold", "row <1> & \"two\"", evil);
	rpt_cases_add(&c, "correctness", "row 'ok'", NULL);
	ibc_csv_parse("rows.csv", rows, sizeof(rows) - 1, &t, err, sizeof(err));
	s = rpt_summary_json(&info, t, &f, &c);
	j = s ? cJSON_Parse(s) : NULL;
	ok(j && !strcmp(cJSON_GetObjectItem(j, "command")->valuestring, "allreduce") &&
	       !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "findings"), 0),
					   "evidence")
			   ->valuestring,
		       evil) &&
	       cJSON_GetObjectItem(cJSON_GetObjectItem(j, "checks"), "failed")->valueint == 1,
	   "summary.json parses back with cJSON; the evidence survives; 1 failed check");
	ok(j && cJSON_IsNumber(cJSON_GetObjectItem(
		    cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rows"), 0), "bytes")) &&
	       cJSON_IsString(cJSON_GetObjectItem(
		   cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rows"), 0), "run_id")),
	   "summary.json: numbers are numbers, a run id that looks like one (…e5) stays text");
	cJSON_Delete(j);
	cJSON_free(s);
	s = rpt_junit_xml(&info, &c);
	if (s && ibc_file_create(path_of("evil.xml"), s, strlen(s)) == 0 && have_junitparser) {
		junit_counts(path_of("evil.xml"), counts, sizeof(counts));
		is_str(counts, "2 1", "junit.xml with & < > \" ' in names: junitparser reads 2 "
				      "cases, 1 failure");
	} else {
		tap_skip(1, have_junitparser ? "cannot write" : "python3-junitparser is not "
								"installed (scripts/install-deps)");
	}
	free(s);
	s = rpt_prometheus(&info, t, &f);
	if (s && ibc_file_create(path_of("evil.prom"), s, strlen(s)) == 0 && have_promtool)
		ok(promtool_ok(path_of("evil.prom")) && strstr(s, "algo=\"ri\\\"ng\""),
		   "ibcoll.prom with a quote in a label: promtool accepts it, the quote escaped");
	else
		tap_skip(1, "promtool is not installed (Debian's prometheus; scripts/install-deps)");
	ok(ibc_file_create(path_of("evil.prom"), "x", 1) == -EEXIST &&
	       strstr(slurp(path_of("evil.prom")), "ibcoll_run_info"),
	   "ibc_file_create never replaces a file");
	free(s);
	ibc_csv_free(t);
	rpt_cases_free(&c);
	rpt_findings_free(&f);
}

static void real_run(void)
{
	struct cmd_result *r = malloc(sizeof(*r));
	char out[400], counts[64];
	char *argv[] = { (char *)bin,	  "allreduce", "--np", "2",  "-b",  "1K", "-e",
			 "64K",		  "-f",	       "8",    "-n", "3",   "-w", "1",
			 "--expect-busbw", "64K=100000", "--out", out, NULL };
	char *prom;
	cJSON *j;

	snprintf(out, sizeof(out), "%s", path_of("run"));
	run_cmd(argv, NULL, 120, NULL, NULL, r);
	is_int(r->code, 1, "a run that misses its threshold: exit 1");
	j = cJSON_Parse(slurp(path_of("run/summary.json")) ? slurp(path_of("run/summary.json"))
							  : "");
	ok(j && cJSON_GetObjectItem(j, "exit_code")->valueint == 1 &&
	       cJSON_GetArraySize(cJSON_GetObjectItem(j, "rows")) == 12 &&
	       cJSON_GetArraySize(cJSON_GetObjectItem(j, "findings")) == 4 &&
	       cJSON_IsFalse(cJSON_GetObjectItem(j, "passed")),
	   "summary.json: exit code 1, 12 rows, 4 findings, not passed");
	cJSON_Delete(j);
	if (have_junitparser) {
		junit_counts(path_of("run/junit.xml"), counts, sizeof(counts));
		is_str(counts, "16 4", "junit.xml: 12 correctness + 4 threshold cases, 4 failures");
	} else {
		tap_skip(1, "python3-junitparser is not installed");
	}
	prom = slurp(path_of("run/ibcoll.prom"));
	if (have_promtool)
		ok(promtool_ok(path_of("run/ibcoll.prom")) && prom &&
			   strstr(prom, "ibcoll_findings{command=\"allreduce\",check=\"threshold\"} 4") &&
			   strstr(prom, "ibcoll_run_exit_code{command=\"allreduce\"} 1"),
		   "ibcoll.prom: promtool accepts it; 4 threshold findings, exit code 1");
	else
		tap_skip(1, "promtool is not installed");
	{
		char *cv[] = { (char *)bin, "compare", out, out, "--out", (char *)path_of("cmp"),
			       NULL };

		run_cmd(cv, NULL, 60, NULL, NULL, r);
		ok(r->code == 0 && access(path_of("cmp/summary.json"), R_OK) == 0 &&
			   access(path_of("cmp/junit.xml"), R_OK) == 0 &&
			   (!have_promtool || promtool_ok(path_of("cmp/ibcoll.prom"))),
		   "ibcoll compare writes summary.json, junit.xml and ibcoll.prom too (%d)", r->code);
	}
	free(r);
}

int main(void)
{
	char cmd[300];

	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	have_promtool = sh("command -v promtool >/dev/null") == 0;
	have_junitparser = sh("/usr/bin/python3 -c 'import junitparser' 2>/dev/null") == 0;
	snprintf(tmp, sizeof(tmp), "/tmp/ibc_machine_%d", (int)getpid());
	mkdir(tmp, 0700);
	tap_plan(10);
	escaping();
	real_run();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	sh(cmd);
	return tap_done();
}
