/* SPDX-License-Identifier: MIT */
/*
 * test_project_fit.c - calibration: a synthetic results.csv built from known alpha, beta,
 * gamma plus noise must give them back within 2%; data that cannot support a fit are named.
 */
#include "tap.h"

#include "ibc_csv.h"
#include "project_fit.h"
#include "schema.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>

#define ALPHA 4.5	   /* us per step */
#define BETA  (1.0 / 11e3) /* us per byte: 11 GB/s */
#define GAMMA (1.0 / 30e3) /* us per byte: 30 GB/s */

static char dir[256];
static unsigned long long rng = 88172645463325252ull;

/* xorshift64: +-1% multiplicative noise, the same on every run */
static double noise(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return 1.0 + 0.02 * ((double)(rng % 1000000) / 1e6 - 0.5);
}

static double model(const char *algo, double p, double n)
{
	if (!strcmp(algo, "ring"))
		return 2 * (p - 1) * ALPHA + 2 * (p - 1) / p * n * BETA + (p - 1) / p * n * GAMMA;
	return 2 * ceil(log2(p)) * ALPHA + n * BETA + n * GAMMA;
}

struct spec {
	const char *algos[2];
	int nalgo;
	const int *ranks;
	int nranks;
	int size_lo, size_hi;	/* log2 bytes */
	const char *transport2; /* a second transport's rows, or NULL */
	int add_wrong;		/* a status=wrong row with a wild time */
	double tree_slow;	/* > 0: tree rows move bytes this many times slower than beta */
};

/* Add the row of transport tr, algo a, rank count r, size 2^e to w. */
static int add_row(struct ibc_csv_writer *w, const struct spec *s, int tr, int a, int r, int e)
{
	char f[RPT_RESULTS_NCOLS][32];
	const char *v[RPT_RESULTS_NCOLS];
	double p = s->ranks[r], n = ldexp(1, e);
	double t = model(s->algos[a], p, n) * noise();
	int k;

	if (s->tree_slow > 0 && !strcmp(s->algos[a], "tree"))
		t = (2 * ceil(log2(p)) * ALPHA + n * BETA * s->tree_slow) * noise();
	for (k = 0; k < RPT_RESULTS_NCOLS; k++) {
		f[k][0] = '\0';
		v[k] = f[k];
	}
	v[0] = "1";
	v[1] = "feedbeef";
	v[4] = "allreduce";
	v[5] = s->algos[a];
	v[6] = tr ? s->transport2 : "tcp";
	snprintf(f[11], 32, "%d", s->ranks[r]);
	snprintf(f[12], 32, "%d", s->ranks[r] > 4 ? 2 : 1);
	snprintf(f[15], 32, "%.0f", n);
	snprintf(f[19], 32, "%.4f", t);
	v[30] = "ok";
	if (s->add_wrong && a == 0 && r == 0 && e == s->size_lo) {
		snprintf(f[19], 32, "%.4f", t * 1000);
		v[30] = "wrong";
	}
	return ibc_csv_add(w, v);
}

/* Write a results.csv per spec (all rows in one commit); returns the path (static). */
static const char *make_results(const char *name, const struct spec *s)
{
	static const char *const cols[] = {RPT_RESULTS_COLUMNS};
	static char path[512];
	struct ibc_csv_writer *w;
	int a, r, e, tr, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (ibc_csv_create(path, cols, RPT_RESULTS_NCOLS, &w))
		return NULL;
	for (tr = 0; tr < (s->transport2 ? 2 : 1); tr++)
		for (a = 0; a < s->nalgo; a++)
			for (r = 0; r < s->nranks; r++)
				for (e = s->size_lo; e <= s->size_hi && !rc; e += 2)
					rc = add_row(w, s, tr, a, r, e);
	rc = rc ? rc : ibc_csv_commit(w);
	ibc_csv_close(w);
	return rc ? NULL : path;
}

static int fit_file(const char *path, const char *transport, struct rpt_fit *fit, char *err,
		    size_t errlen)
{
	struct ibc_csv_table *t;
	int rc = ibc_csv_read(path, &t, err, errlen);

	if (rc)
		return rc;
	rc = rpt_fit_table(path, t, transport, fit, err, errlen);
	ibc_csv_free(t);
	return rc;
}

static int within(double got, double want, double tol)
{
	return fabs(got - want) <= tol * fabs(want);
}

static void test_recover(void)
{
	static const int ranks[] = {2, 4, 8, 16};
	struct spec s = {{"ring", "tree"}, 2, ranks, 4, 10, 28, NULL, 1, 0};
	const char *path = make_results("full.csv", &s);
	struct rpt_fit fit;
	char err[512];
	int rc = fit_file(path, NULL, &fit, err, sizeof(err));

	is_int(rc, 0, "fit ring + tree, 4 rank counts, 10 sizes (%s)", err);
	ok(within(fit.alpha_us, ALPHA, 0.02), "alpha %.4f us within 2%% of %.4f", fit.alpha_us,
	   ALPHA);
	ok(within(fit.beta_us_per_byte, BETA, 0.02), "bandwidth %.3f GB/s within 2%% of 11",
	   1e-3 / fit.beta_us_per_byte);
	ok(fit.have_gamma && within(fit.gamma_us_per_byte, GAMMA, 0.02),
	   "reduction %.3f GB/s within 2%% of 30", 1e-3 / fit.gamma_us_per_byte);
	ok(fit.r2 > 0.999, "R^2 %.6f", fit.r2);
	is_int(fit.nrows, 2 * 4 * 10 - 1, "the status=wrong row (1000x slower) is left out");
	is_str(fit.run_id, "feedbeef", "run_id taken from the rows");
	ok(fit.multinode, "rows with nnodes 2 make it a network calibration");
	ok(fit.warn[0] == '\0', "no warning (%s)", fit.warn);
	{
		struct rpt_cluster c = {0};

		rpt_fit_apply(&fit, &c);
		ok(within(c.nic_Gbps, 88, 0.02) && c.nic_efficiency == 1 &&
		       within(c.net_latency_us, ALPHA, 0.02) && !c.reduce_overlap &&
		       within(c.reduce_GBps, 30, 0.02),
		   "applied: NIC %.1f Gb/s, latency %.2f us, reduction %.1f GB/s serial",
		   c.nic_Gbps, c.net_latency_us, c.reduce_GBps);
	}
}

static void test_ring_only(void)
{
	static const int ranks[] = {4, 8};
	struct spec s = {{"ring"}, 1, ranks, 2, 10, 28, NULL, 0, 0};
	const char *path = make_results("ring.csv", &s);
	struct rpt_fit fit;
	char err[512];
	int rc = fit_file(path, NULL, &fit, err, sizeof(err));

	is_int(rc, 0, "fit ring only (%s)", err);
	ok(!fit.have_gamma && strstr(fit.warn, "gamma"), "warns gamma is not separable: %s",
	   fit.warn);
	ok(within(fit.beta_us_per_byte, BETA + GAMMA / 2, 0.02),
	   "beta absorbs gamma/2 (ring moves 2n, reduces n)");
	ok(within(fit.alpha_us, ALPHA, 0.02), "alpha still within 2%%");
}

/* Ring and tree rows that no single beta fits (the tree pipeline slower than its share, as
 * on small oversubscribed machines): the joint fit gives a negative beta or gamma. The fit must
 * fall back to the ring rows with a warning instead of failing (this failed before). */
static void test_disagree(void)
{
	static const int ranks[] = {4};
	struct spec s = {{"ring", "tree"}, 2, ranks, 1, 10, 26, NULL, 0, 4.0};
	const char *path = make_results("disagree.csv", &s);
	struct rpt_fit fit;
	char err[512];
	int rc = fit_file(path, NULL, &fit, err, sizeof(err));

	is_int(rc, 0, "ring and tree that disagree still calibrate (%s)", rc ? err : "ok");
	ok(!rc && strstr(fit.warn, "ring rows alone"), "and say they used the ring rows: %s",
	   rc ? "" : fit.warn);
	ok(!rc && within(fit.beta_us_per_byte, BETA + GAMMA / 2, 0.02),
	   "beta from the ring rows (gamma folded in) within 2%%");
}

static void test_unsupported(void)
{
	static const int one[] = {8}, two[] = {4, 8};
	struct spec s1 = {{"ring"}, 1, one, 1, 20, 20, NULL, 0, 0};
	struct spec s2 = {{"ring", "tree"}, 2, one, 1, 10, 28, NULL, 0, 0};
	struct spec s3 = {{"ring"}, 1, two, 2, 10, 20, "verbs", 0, 0};
	struct rpt_fit fit;
	char err[512];
	int rc;

	rc = fit_file(make_results("one.csv", &s1), NULL, &fit, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "same size"), "one size, one rank count: %s", err);
	rc = fit_file(make_results("onerank.csv", &s2), NULL, &fit, err, sizeof(err));
	ok(rc == 0 && strstr(fit.warn, "one rank count (8 ranks)"), "one rank count warns: %s",
	   fit.warn);
	rc = fit_file(make_results("two.csv", &s3), NULL, &fit, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "'tcp'") && strstr(err, "'verbs'") &&
	       strstr(err, "--transport"),
	   "two transports: %s", err);
	rc = fit_file(make_results("two2.csv", &s3), "verbs", &fit, err, sizeof(err));
	ok(rc == 0 && !strcmp(fit.transport, "verbs") && fit.nskipped == 12,
	   "--transport verbs picks its rows (skipped %d)", fit.nskipped);
}

static void test_bad_table(void)
{
	struct ibc_csv_table *t;
	struct rpt_fit fit;
	char err[512];
	static const char nocol[] = "schema,run_id,bytes\n1,x,8\n";
	static const char junk[] =
	    "time_us,bytes,nranks,nnodes,algo,transport,status,collective,run_id\n"
	    "1.5,1024,4,1,ring,tcp,ok,allreduce,r\n"
	    "abc,2048,4,1,ring,tcp,ok,allreduce,r\n";

	ibc_csv_parse("nocol.csv", nocol, sizeof(nocol) - 1, &t, err, sizeof(err));
	ok(rpt_fit_table("nocol.csv", t, NULL, &fit, err, sizeof(err)) == -EINVAL &&
	       strstr(err, "no column 'time_us'"),
	   "missing column: %s", err);
	ibc_csv_free(t);
	ibc_csv_parse("junk.csv", junk, sizeof(junk) - 1, &t, err, sizeof(err));
	ok(rpt_fit_table("junk.csv", t, NULL, &fit, err, sizeof(err)) == -EINVAL &&
	       strstr(err, "junk.csv:3:1: time_us 'abc'"),
	   "a bad number names file, line and column: %s", err);
	ibc_csv_free(t);
}

/* One row with value v in column col (of the header below) after two good rows: refused, with
 * file:line:col naming the field, never a hang (a shift by ceil(log2(2^63)) never ended), a
 * NaN or an inf. */
static void range_case(const char *what, int col, const char *v, const char *where)
{
	static const char *const good[] = {"10", "4", "2", "1024"};
	char text[1024], err[512];
	struct ibc_csv_table *t = NULL;
	struct rpt_fit fit;
	int rc, k;

	snprintf(text, sizeof(text),
		 "run_id,collective,algo,transport,status,time_us,nranks,nnodes,bytes\n"
		 "r,allreduce,ring,tcp,ok,10,4,2,1024\nr,allreduce,tree,tcp,ok,20,4,2,65536\n"
		 "r,allreduce,ring,tcp,ok");
	for (k = 0; k < 4; k++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ",%s",
			 k == col ? v : good[k]);
	strcat(text, "\n");
	rc = ibc_csv_parse("r.csv", text, strlen(text), &t, err, sizeof(err));
	if (!ok(rc == 0, "%s: the file parses (%s)", what, err))
		return;
	rc = rpt_fit_table("r.csv", t, NULL, &fit, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, where), "%s: refused at %s (%s)", what, where, err);
	ibc_csv_free(t);
}

static void test_ranges(void)
{
	/* columns: time_us (field 6, column 25 on line 4), nranks, nnodes, bytes */
	range_case("nranks 2^63", 1, "9223372036854775808", "r.csv:4:28: nranks");
	range_case("nranks 2^40 + 1", 1, "1099511627777", "r.csv:4:28: nranks");
	range_case("nranks 4.5", 1, "4.5", "r.csv:4:28: nranks");
	range_case("nranks ' 4'", 1, " 4", "r.csv:4:28: nranks");
	range_case("nnodes above nranks", 2, "5", "r.csv:4:30: nnodes '5'");
	range_case("nnodes 0", 2, "0", "r.csv:4:30: nnodes");
	range_case("bytes 1e300", 3, "1e300", "r.csv:4:32: bytes");
	range_case("bytes 2^50 + 1", 3, "1125899906842625", "r.csv:4:32: bytes");
	range_case("bytes -1", 3, "-1", "r.csv:4:32: bytes");
	range_case("time_us 1e-300", 0, "1e-300", "r.csv:4:25: time_us");
	range_case("time_us 1e300", 0, "1e300", "r.csv:4:25: time_us");
	range_case("time_us -1", 0, "-1", "r.csv:4:25: time_us");
	range_case("time_us nan", 0, "nan", "r.csv:4:25: time_us");
	range_case("time_us inf", 0, "inf", "r.csv:4:25: time_us");
}

/* Times and sizes in range but no plausible fabric: refused, not a bandwidth of 1e15 GB/s. */
static void test_implausible(void)
{
	static const char text[] =
	    "run_id,collective,algo,transport,status,time_us,nranks,nnodes,bytes\n"
	    "r,allreduce,ring,tcp,ok,0.001,4,1,1024\n"
	    "r,allreduce,ring,tcp,ok,0.002,4,1,1125899906842624\n"
	    "r,allreduce,ring,tcp,ok,0.0011,4,1,4096\n";
	struct ibc_csv_table *t = NULL;
	struct rpt_fit fit;
	char err[512];

	ibc_csv_parse("f.csv", text, sizeof(text) - 1, &t, err, sizeof(err));
	ok(rpt_fit_table("f.csv", t, NULL, &fit, err, sizeof(err)) == -EINVAL &&
	       strstr(err, "fitted bandwidth") && !strstr(err, "inf") && !strstr(err, "nan"),
	   "1 PiB in 2 ns: refused (%s)", err);
	ibc_csv_free(t);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	char cmd[300];

	snprintf(dir, sizeof(dir), "%s/ibcoll-test-fit-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir))
		return tap_skip_all("cannot create a temporary directory");
	test_recover();
	test_ring_only();
	test_disagree();
	test_unsupported();
	test_bad_table();
	test_ranges();
	test_implausible();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		diag("could not remove %s", dir);
	return tap_done();
}
