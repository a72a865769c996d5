/* SPDX-License-Identifier: MIT */
/*
 * test_project_cmd.c - `ibcoll project` end to end through project_cmd_main: projection.csv as
 * docs/design.md#csv-reports says, never overwritten, calibration from a results.csv, the validation bench, and
 * usage errors (exit 2) that name the flag, the value or the file and line.
 */
#include "tap.h"

#include "cluster.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "project.h"
#include "schema.h"

#include <fcntl.h>
#include <unistd.h>

static char dir[256];
static char out_text[1 << 20], err_text[1 << 14];

static void read_into(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	while (n > 0 && buf[n - 1] == '\n')
		n--; /* messages end in a newline; TAP lines must not */
	buf[n] = '\0';
	if (f)
		fclose(f);
}

/* Run project_cmd_main with stdout and stderr captured (the first 1M / 16K kept). */
static int run(const char *const *args)
{
	char *argv[32], outp[300], errp[300];
	int argc = 0, so, se, fo, fe, rc;

	argv[argc++] = "project";
	while (*args && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	snprintf(outp, sizeof(outp), "%s/stdout", dir);
	snprintf(errp, sizeof(errp), "%s/stderr", dir);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fo, 1);
	dup2(fe, 2);
	rc = project_cmd_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	close(fo);
	close(fe);
	read_into(outp, out_text, sizeof(out_text));
	read_into(errp, err_text, sizeof(err_text));
	return rc;
}

static const char *data(const char *name)
{
	static char path[2][600];
	static int k;
	const char *d = getenv("IBCOLL_TEST_DATA");

	k ^= 1;
	snprintf(path[k], sizeof(path[k]), "%s/%s", d ? d : "tests/data", name);
	return path[k];
}

static void test_csv_out(void)
{
	static const char *const want[] = {RPT_PROJECTION_COLUMNS};
	struct ibc_csv_table *t = NULL;
	char csv[300], err[512], *before;
	int rc, j, good = 1;

	snprintf(csv, sizeof(csv), "%s/projection.csv", dir);
	rc = run((const char *[]){"--cluster", "h100-spectrumx", "--gpus", "8,1024,200000",
				  "--bytes", "8,1M,1G", "--csv", csv, "--run-id", "t1", NULL});
	is_int(rc, 0, "project --csv (%s)", err_text);
	ok(strstr(out_text, "crossover") != NULL, "stdout reports the ring/tree crossover");
	rc = ibc_csv_read(csv, &t, err, sizeof(err));
	is_int(rc, 0, "projection.csv parses (%s)", err);
	if (rc)
		return;
	is_int(t->ncols, RPT_PROJECTION_NCOLS, "16 columns");
	for (j = 0; j < t->ncols && j < RPT_PROJECTION_NCOLS; j++)
		good &= strcmp(t->header[j], want[j]) == 0;
	ok(good, "header is schema.h's projection.csv, in order");
	is_int(t->nrows, 3 * 3 * 4, "3 counts x 3 sizes x 4 algorithms");
	good = 1;
	for (j = 0; j < t->nrows; j++) {
		char **r = t->rows[j];
		const char *bn = r[ibc_csv_col(t, "bottleneck")];

		good &= !strcmp(r[0], "1") && !strcmp(r[1], "t1") &&
			!strcmp(r[2], "h100-spectrumx") && !strcmp(r[15], "preset");
		good &= strstr("latency nvlink nic pcie bisection reduction", bn) != NULL;
		good &= strchr(r[8], 'e') == NULL && strchr(r[10], 'e') == NULL;
	}
	ok(good, "every row: schema 1, run_id, cluster, source preset, a known bottleneck, "
		 "plain decimals");
	ok(!strcmp(t->rows[t->nrows - 1][3], "200000") && !strcmp(t->rows[t->nrows - 1][14], "3"),
	   "200,000 GPUs on spectrumx: 3 tiers");
	ibc_csv_free(t);

	{
		static char buf[1 << 16];

		read_into(csv, buf, sizeof(buf));
		before = buf;
	}
	rc = run((const char *[]){"--csv", csv, "--gpus", "8", NULL});
	is_int(rc, 3, "an existing --csv file is an I/O failure (exit 3)");
	ok(strstr(err_text, "exists"), "and says so: %s", err_text);
	{
		static char after[1 << 16];

		read_into(csv, after, sizeof(after));
		ok(strcmp(before, after) == 0, "the existing file is untouched");
	}
}

static void test_presets_full(void)
{
	int rc = run((const char *[]){"--cluster", "h100-ndr", "--algo",
				      "ring,tree,hier-ring,hier-tree", NULL});

	is_int(rc, 0, "default lists on h100-ndr: 8 .. 200,000 GPUs");
	ok(strstr(out_text, "# 2040 points") && strstr(out_text, "   200000 ") &&
	       strstr(out_text, " nic\n") && strstr(out_text, " latency\n"),
	   "2040 points, up to 200000 GPUs, with bottlenecks");
}

static void test_calibrate(void)
{
	char csv[300], err[512];
	struct ibc_csv_table *t = NULL;
	int rc;

	snprintf(csv, sizeof(csv), "%s/calibrated.csv", dir);
	rc = run((const char *[]){"--calibrate", data("results-calibrate.csv"), "--gpus", "16,4096",
				  "--bytes", "1M", "--csv", csv, NULL});
	is_int(rc, 0, "--calibrate results-calibrate.csv (%s)", err_text);
	ok(strstr(out_text, "alpha = 6.0") && strstr(out_text, "bandwidth = 24.0") &&
	       strstr(out_text, "R^2 = 0.99"),
	   "prints the fitted alpha 6 us, 24 GB/s and R^2");
	rc = ibc_csv_read(csv, &t, err, sizeof(err));
	ok(rc == 0 && t->nrows == 8 && !strcmp(t->rows[0][15], "c0ffee01"),
	   "source column = the calibration run_id");
	ibc_csv_free(t);
}

static void test_validate(void)
{
	int rc = run((const char *[]){"--validate", data("published.csv"), NULL});

	is_int(rc, 0, "--validate published.csv meets the target (%s)", err_text);
	ok(strstr(out_text, "target median <= 10%, worst <= 25%: met"), "prints the verdict");
	diag("%s", strstr(out_text, "# 1") ? strstr(out_text, "# 1") : out_text);
}

static const char *write_conf(const char *name, const char *text)
{
	static char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Crafted results.csv files: out-of-range numbers are bad file content (exit 2, naming
 * file:line:col), never a hang, a NaN or an inf on stdout. */
static void test_calibrate_bad(void)
{
	static const char head[] = "run_id,collective,algo,transport,status,nranks,nnodes,bytes,"
				   "time_us\nr,allreduce,ring,tcp,ok,4,1,1024,10\n";
	static const struct {
		const char *row, *where, *what;
	} c[] = {
		{"r,allreduce,tree,tcp,ok,9223372036854775808,1,4096,20\n", "big.csv:3:25: nranks",
		 "2^63 ranks (the fit's shift never ended)"},
		{"r,allreduce,ring,tcp,ok,1e15,2,1e15,1e-300\nr,allreduce,tree,tcp,ok,1e15,2,4096,"
		 "20\nr,allreduce,tree,tcp,ok,1e15,2,65536,50\n",
		 "nan.csv:3:25: nranks '1e15'", "rows that made alpha and beta NaN"},
		{"r,allreduce,ring,tcp,ok,4,2,1000000000000000,1e-100\n", "nan.csv:3:", "time 1e-100"},
		{"r,allreduce,ring,tcp,ok,4,1,1e300,20\n", "nan.csv:3:29: bytes", "bytes 1e300"},
	};
	char text[512];
	size_t i;
	int rc;

	for (i = 0; i < IBC_ARRAY_SIZE(c); i++) {
		const char *name = strncmp(c[i].where, "big", 3) ? "nan.csv" : "big.csv";

		snprintf(text, sizeof(text), "%s%s", head, c[i].row);
		rc = run((const char *[]){"--calibrate", write_conf(name, text), "--gpus", "16",
					  "--bytes", "1M", NULL});
		ok(rc == 2 && strstr(err_text, c[i].where) && !strstr(out_text, "nan") &&
		       !strstr(out_text, "inf"),
		   "--calibrate, %s: exit %d, %s", c[i].what, rc, err_text);
	}
}

static void expect_usage(const char *const *args, const char *needle, const char *what)
{
	int rc = run(args);

	ok(rc == 2 && strstr(err_text, needle), "%s: exit %d, %s", what, rc, err_text);
}

static void test_usage(void)
{
	const char *conf;

	expect_usage((const char *[]){"--gpus", "0", NULL}, "'0'", "--gpus 0");
	expect_usage((const char *[]){"--gpus", "8,12", NULL}, "12 GPUs is not a multiple",
		     "--gpus 12");
	expect_usage((const char *[]){"--bytes", "1X", NULL}, "'1X'", "--bytes 1X");
	expect_usage((const char *[]){"--algo", "ring,bogus", NULL}, "'bogus'", "--algo bogus");
	expect_usage((const char *[]){"--frobnicate", NULL}, "--frobnicate", "unknown option");
	expect_usage((const char *[]){"--cluster", NULL}, "--cluster", "missing value");
	expect_usage((const char *[]){"--cluster", "h100-nope", NULL}, "h100-nope",
		     "unknown preset");
	conf = write_conf("bad-key.conf", "base = h100-ndr\nname = x\n\nnic_gbps = 400\n");
	expect_usage((const char *[]){"--cluster", conf, NULL},
		     "bad-key.conf:4: unknown key "
		     "'nic_gbps'",
		     "unknown key, with its line");
	conf = write_conf("bad-val.conf", "base = h100-ndr\n# radix\nswitch_radix = 63\n");
	expect_usage((const char *[]){"--cluster", conf, NULL},
		     "bad-val.conf:3: switch_radix = '63': expected an even integer",
		     "odd radix, with its line");
	conf = write_conf("small.conf", "base = h100-ndr\nname = small\nswitch_radix = 8\n"
					"max_tiers = 2\n");
	expect_usage((const char *[]){"--cluster", conf, "--gpus", "8,256", NULL},
		     "256 GPUs need 256 NIC ports, but 2 tiers of 8-port switches serve at most 32",
		     "radix too small for the count");
	conf = write_conf("late-base.conf", "name = a\nbase = h100-ndr\n");
	expect_usage((const char *[]){"--cluster", conf, NULL}, "late-base.conf:2: 'base' must",
		     "base after other keys");
	expect_usage((const char *[]){"--validate", "x.csv", "--gpus", "8", NULL}, "--validate",
		     "--validate with other options");
	expect_usage((const char *[]){"--calibrate", "/nonexistent/results.csv", NULL},
		     "--calibrate: /nonexistent/results.csv", "--calibrate of a missing file");
	expect_usage((const char *[]){"--validate", "/nonexistent/published.csv", NULL},
		     "--validate: /nonexistent/published.csv", "--validate of a missing file");
	{
		const char *c2 = write_conf("ok.conf", "base = h100-spectrumx\nname = mine\n"
						       "oversubscription = 2\n");
		int rc = run((const char *[]){"--cluster", c2, "--gpus", "65536", "--bytes", "1G",
					      "--algo", "hier-tree", NULL});

		ok(rc == 0 && strstr(out_text, "cluster mine") && strstr(out_text, " bisection\n"),
		   "a key=value file on a preset base: 2:1 oversubscription shows as bisection");
	}
	ok(run((const char *[]){"--help", NULL}) == 0 && strstr(out_text, "--calibrate"),
	   "--help prints usage, exit 0");
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	char cmd[300];

	snprintf(dir, sizeof(dir), "%s/ibcoll-test-project-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir))
		return tap_skip_all("cannot create a temporary directory");
	test_csv_out();
	test_presets_full();
	test_calibrate();
	test_calibrate_bad();
	test_validate();
	test_usage();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		diag("could not remove %s", dir);
	return tap_done();
}
