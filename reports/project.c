/* SPDX-License-Identifier: MIT */
/*
 * project.c - the `ibcoll project` command: options, calibration, the table on stdout and
 * projection.csv (docs/design.md#csv-reports,
 * docs/projection.md).
 */
#include "project.h"

#include "cluster.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "ibc_id.h"
#include "project_fit.h"
#include "project_internal.h"
#include "project_model.h"
#include "schema.h"

#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST 4096

struct proj_opts {
	const char *cluster;   /* borrowed from argv: preset name or file */
	const char *calibrate; /* borrowed: results.csv or NULL */
	const char *transport; /* borrowed or NULL */
	const char *csv;       /* borrowed or NULL */
	const char *validate;  /* borrowed or NULL */
	char run_id[65];
	long gpus[MAX_LIST];
	int ngpus;
	double bytes[MAX_LIST];
	int nbytes;
	enum rpt_algo algos[RPT_ALGO_COUNT];
	int nalgos;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ibcoll project [--cluster NAME|FILE] [--calibrate results.csv "
		"[--transport NAME]]\n"
		"                      [--gpus LIST] [--bytes LIST] [--algo LIST] [--csv FILE] "
		"[--run-id ID]\n"
		"       ibcoll project --validate published.csv\n"
		"\n"
		"Project all-reduce time to any GPU count with an alpha-beta-gamma model of the\n"
		"cluster (docs/projection.md).\n"
		"  --cluster NAME|FILE  preset (h100-ndr, h100-spectrumx) or key=value file "
		"[h100-ndr]\n"
		"  --calibrate FILE     fit latency, bandwidth and reduction cost to an ibcoll\n"
		"                       results.csv and project with them\n"
		"  --transport NAME     the transport to calibrate when the file holds several\n"
		"  --gpus LIST          GPU counts, multiples of gpus_per_node [8,16,...,131072,\n"
		"                       100000,200000]\n"
		"  --bytes LIST         sizes with K/M/G suffixes (1K = 1024) [8,16,...,4G]\n"
		"  --algo LIST          ring,tree,hier-ring,hier-tree [all four]\n"
		"  --csv FILE           write projection.csv (never overwrites)\n"
		"  --run-id ID          run_id column [random hex]\n"
		"  --validate FILE      compare the model with published measurements; exit 1\n"
		"                       when the median error exceeds 10%% or any row 25%%\n"
		"Exit: 0 ok, 1 validation target missed, 2 usage error (also a missing, unreadable\n"
		"or malformed input file), 3 other I/O failure.\n");
}

static int bad(const char *flag, const char *val, const char *why)
{
	if (val)
		fprintf(stderr, "ibcoll project: %s '%s': %s\n", flag, val, why);
	else
		fprintf(stderr, "ibcoll project: %s: %s\n", flag, why);
	return IBC_EXIT_USAGE;
}

int rpt__read_exit(int rc)
{
	if (rc == -EINVAL || rc == -ENOENT || rc == -ENOTDIR || rc == -EACCES || rc == -EISDIR)
		return IBC_EXIT_USAGE;
	return IBC_EXIT_ENV;
}

static int parse_gpus(const char *flag, const char *s, struct proj_opts *o)
{
	const char *items[MAX_LIST];
	char *store;
	int n = ibc_split_list(s, &store, items, MAX_LIST), i;

	if (n < 0)
		return bad(flag, s, "expected a comma-separated list of GPU counts");
	for (i = 0; i < n; i++) {
		long v;

		if (ibc_parse_int(items[i], 1, 1L << 40, &v)) {
			char why[160];

			snprintf(why, sizeof(why), "'%s' is not a GPU count (an integer >= 1)",
				 items[i]);
			free(store);
			return bad(flag, s, why);
		}
		o->gpus[i] = v;
	}
	o->ngpus = n;
	free(store);
	return 0;
}

static int parse_bytes(const char *flag, const char *s, struct proj_opts *o)
{
	const char *items[MAX_LIST];
	char *store;
	int n = ibc_split_list(s, &store, items, MAX_LIST), i;

	if (n < 0)
		return bad(flag, s, "expected a comma-separated list of sizes (8,1K,64M,4G)");
	for (i = 0; i < n; i++) {
		uint64_t v;

		if (ibc_parse_size(items[i], &v) || v > (1ull << 50)) {
			char why[160];

			snprintf(why, sizeof(why),
				 "'%s' is not a size (bytes with K/M/G/T suffix, 1K = 1024, at "
				 "most 1024T)",
				 items[i]);
			free(store);
			return bad(flag, s, why);
		}
		o->bytes[i] = (double)v;
	}
	o->nbytes = n;
	free(store);
	return 0;
}

static int parse_algos(const char *flag, const char *s, struct proj_opts *o)
{
	const char *items[RPT_ALGO_COUNT + 1];
	char *store;
	int n = ibc_split_list(s, &store, items, RPT_ALGO_COUNT), i, j;

	if (n < 0)
		return bad(flag, s, "expected a list of ring, tree, hier-ring, hier-tree");
	for (i = 0; i < n; i++) {
		char why[160];

		if (rpt_algo_parse(items[i], &o->algos[i])) {
			snprintf(why, sizeof(why),
				 "unknown algorithm '%s' (ring, tree, hier-ring, hier-tree)",
				 items[i]);
			free(store);
			return bad(flag, s, why);
		}
		for (j = 0; j < i; j++)
			if (o->algos[j] == o->algos[i]) {
				snprintf(why, sizeof(why), "'%s' listed twice", items[i]);
				free(store);
				return bad(flag, s, why);
			}
	}
	o->nalgos = n;
	free(store);
	return 0;
}

static void default_lists(struct proj_opts *o)
{
	long g;
	int i;

	if (!o->ngpus) {
		for (g = 8; g <= 131072; g *= 2) {
			if (g == 131072)
				o->gpus[o->ngpus++] = 100000;
			o->gpus[o->ngpus++] = g;
		}
		o->gpus[o->ngpus++] = 200000;
	}
	if (!o->nbytes)
		for (i = 3; i <= 32; i++)
			o->bytes[o->nbytes++] = ldexp(1, i); /* 8 B .. 4 GiB: 30 sizes */
	if (!o->nalgos)
		for (i = 0; i < RPT_ALGO_COUNT; i++)
			o->algos[o->nalgos++] = (enum rpt_algo)i;
}

static int valid_run_id(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/* Options that take a value, as "--flag value" or "--flag=value". */
static const char *const value_flags[] = {"--cluster", "--calibrate", "--transport",
					  "--csv",     "--validate",  "--run-id",
					  "--gpus",    "--bytes",     "--algo"};

static int set_opt(struct proj_opts *o, const char *flag, const char *v)
{
	if (!strcmp(flag, "--cluster"))
		o->cluster = v;
	else if (!strcmp(flag, "--calibrate"))
		o->calibrate = v;
	else if (!strcmp(flag, "--transport"))
		o->transport = v;
	else if (!strcmp(flag, "--csv"))
		o->csv = v;
	else if (!strcmp(flag, "--validate"))
		o->validate = v;
	else if (!strcmp(flag, "--gpus"))
		return parse_gpus(flag, v, o);
	else if (!strcmp(flag, "--bytes"))
		return parse_bytes(flag, v, o);
	else if (!strcmp(flag, "--algo"))
		return parse_algos(flag, v, o);
	else if (!valid_run_id(v))
		return bad(flag, v, "expected 1-64 letters, digits, - or _");
	else
		snprintf(o->run_id, sizeof(o->run_id), "%s", v);
	return 0;
}

/* Returns 0, -1 after --help, or an exit code. */
static int parse_args(int argc, char **argv, struct proj_opts *o)
{
	int i, rc;
	size_t f;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return -1;
		}
		for (f = 0; f < IBC_ARRAY_SIZE(value_flags); f++) {
			size_t n = strlen(value_flags[f]);

			if (strncmp(a, value_flags[f], n) || (a[n] && a[n] != '='))
				continue;
			if (a[n] == '=')
				v = a + n + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return bad(value_flags[f], NULL, "needs a value");
			break;
		}
		if (f == IBC_ARRAY_SIZE(value_flags))
			return bad(a, NULL, "unknown option (ibcoll project --help lists them)");
		rc = set_opt(o, value_flags[f], v);
		if (rc)
			return rc;
	}
	return 0;
}

/* Plain decimal with about 6 significant digits, never an exponent
 * (docs/design.md#csv-reports). */
static void fmt_num(char *buf, size_t len, double v)
{
	int mag = v != 0 ? (int)floor(log10(fabs(v))) + 1 : 1;
	int dec = IBC_MAX(0, IBC_MIN(9, 6 - mag));

	snprintf(buf, len, "%.*f", dec, v);
}

static int calibrate(const struct proj_opts *o, struct rpt_cluster *c, char *source, size_t srclen)
{
	struct ibc_csv_table *t = NULL;
	struct rpt_fit fit;
	char err[1024];
	int rc = ibc_csv_read(o->calibrate, &t, err, sizeof(err));

	if (rc) {
		fprintf(stderr, "ibcoll project: --calibrate: %s\n", err);
		return rpt__read_exit(rc);
	}
	rc = rpt_fit_table(o->calibrate, t, o->transport, &fit, err, sizeof(err));
	ibc_csv_free(t);
	if (rc) {
		fprintf(stderr, "ibcoll project: --calibrate: %s\n", err);
		return IBC_EXIT_USAGE;
	}
	printf("# calibration from %s (run_id %s, transport %s): %d rows, %d sizes, "
	       "%ld-%ld ranks, %s\n",
	       o->calibrate, fit.run_id, fit.transport, fit.nrows, fit.nsizes, fit.p_min, fit.p_max,
	       fit.multinode ? "across nodes" : "inside one node");
	printf("#   alpha = %.3f us/step, bandwidth = %.3f GB/s (beta = %.4g us/B)", fit.alpha_us,
	       1e-3 / fit.beta_us_per_byte, fit.beta_us_per_byte);
	if (fit.have_gamma)
		printf(", gamma = %.4g us/B (%.3f GB/s)", fit.gamma_us_per_byte,
		       rpt_fit_reduce_GBps(&fit));
	printf(", R^2 = %.5f, worst row %.1f%%\n", fit.r2, 100 * fit.max_rel_err);
	printf("#   replaces the cluster's %s\n", fit.multinode
						      ? "net_latency_us and NIC bandwidth"
						      : "nvlink_latency_us and NVLink bandwidth");
	if (fit.warn[0])
		fprintf(stderr, "ibcoll project: --calibrate: warning: %s\n", fit.warn);
	rpt_fit_apply(&fit, c);
	snprintf(source, srclen, "%s", fit.run_id);
	return 0;
}

static void print_header(const struct rpt_cluster *c, const struct proj_opts *o, const char *source)
{
	int t;

	printf("# ibcoll project: cluster %s (%s), run_id %s, source %s\n", c->name,
	       c->description[0] ? c->description : "no description", o->run_id, source);
	printf("# per GPU: NVLink %.1f GB/s; per node: %d NICs x %.1f GB/s, PCIe %.1f GB/s per "
	       "GPU; radix %d:",
	       c->nvlink_GBps * c->nvlink_efficiency, c->nics_per_node,
	       c->nic_Gbps / 8 * c->nic_efficiency, c->pcie_GBps * c->pcie_efficiency,
	       c->switch_radix);
	for (t = 1; t <= c->max_tiers; t++)
		printf(" %d tier%s <= %.0f NICs%s", t, t > 1 ? "s" : "",
		       rpt_cluster_capacity(c->switch_radix, t), t < c->max_tiers ? "," : "\n");
	printf("# %9s %7s %5s %-9s %8s %13s %11s %11s %12s %13s %s\n", "gpus", "nodes", "tiers",
	       "algo", "bytes", "time_us", "algbw_GBps", "busbw_GBps", "latency_us", "bandwidth_us",
	       "bottleneck");
}

/* Fill the numeric fields of one projection.csv row into f (16 x 32 chars). */
static void csv_fields(const struct rpt_point *pt, char (*f)[32])
{
	snprintf(f[0], 32, "%d", RPT_SCHEMA_VERSION);
	snprintf(f[3], 32, "%ld", pt->gpus);
	snprintf(f[4], 32, "%ld", pt->nodes);
	snprintf(f[5], 32, "%d", pt->gpus_per_node);
	snprintf(f[7], 32, "%.0f", pt->bytes);
	fmt_num(f[8], 32, pt->time_us);
	fmt_num(f[9], 32, pt->algbw_GBps);
	fmt_num(f[10], 32, pt->busbw_GBps);
	fmt_num(f[11], 32, pt->latency_us);
	fmt_num(f[12], 32, pt->bandwidth_us);
	snprintf(f[14], 32, "%d", pt->tiers);
}

struct csv_out {
	struct ibc_csv_writer *w; /* owned */
	const char **vals;	  /* owned: nrows x 16 pointers */
	char (*buf)[32];	  /* owned: nrows x 16 fields */
	int nrows, cap;
};

static int csv_row(struct csv_out *co, const struct rpt_cluster *c, const struct proj_opts *o,
		   const char *source, enum rpt_algo a, const struct rpt_point *pt)
{
	int base = co->nrows * RPT_PROJECTION_NCOLS, j;

	if (co->nrows == co->cap)
		return -ENOSPC;
	csv_fields(pt, co->buf + base);
	for (j = 0; j < RPT_PROJECTION_NCOLS; j++)
		co->vals[base + j] = co->buf[base + j];
	co->vals[base + 1] = o->run_id;
	co->vals[base + 2] = c->name;
	co->vals[base + 6] = rpt_algo_name(a);
	co->vals[base + 13] = rpt_term_name(pt->bottleneck);
	co->vals[base + 15] = source;
	co->nrows++;
	return 0;
}

static const char *human(double b, char *buf, size_t len)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
	return buf;
}

static void print_crossovers(const struct rpt_cluster *c, const struct proj_opts *o)
{
	int i;

	printf("# ring/tree crossover: the size where both take equal time (searched 1 B .. 1 "
	       "TiB)\n");
	for (i = 0; i < o->ngpus; i++) {
		double b;
		enum rpt_algo fast;
		char sz[32];

		if (rpt_project_crossover(c, o->gpus[i], RPT_ALGO_TREE, RPT_ALGO_RING, &b, &fast))
			continue;
		if (b > 0)
			printf("#   %9ld GPUs: %s (%.0f B); %s is faster below it\n", o->gpus[i],
			       human(b, sz, sizeof(sz)), b, rpt_algo_name(fast));
		else
			printf("#   %9ld GPUs: none; %s is faster at every size\n", o->gpus[i],
			       rpt_algo_name(fast));
	}
}

/* Every point of the table finite before anything is printed: never a NaN or inf row. */
static int check_points(const struct rpt_cluster *c, const struct proj_opts *o)
{
	int i, j, k;

	for (i = 0; i < o->ngpus; i++)
		for (k = 0; k < o->nalgos; k++)
			for (j = 0; j < o->nbytes; j++) {
				struct rpt_point pt;

				rpt_project_point(c, o->algos[k], o->gpus[i], o->bytes[j], &pt,
						  NULL, 0);
				if (isfinite(pt.time_us) && isfinite(pt.algbw_GBps) &&
				    isfinite(pt.busbw_GBps) && isfinite(pt.latency_us) &&
				    isfinite(pt.bandwidth_us))
					continue;
				fprintf(stderr,
					"ibcoll project: %s at %ld GPUs, %.0f bytes gives no finite "
					"time with cluster %s: check the cluster's rates and "
					"latencies\n",
					rpt_algo_name(o->algos[k]), o->gpus[i], o->bytes[j], c->name);
				return IBC_EXIT_USAGE;
			}
	return 0;
}

static int run_projection(const struct rpt_cluster *c, const struct proj_opts *o,
			  const char *source)
{
	static const char *const cols[] = {RPT_PROJECTION_COLUMNS};
	struct csv_out co = {0};
	int i, j, k, rc = 0, ret = IBC_EXIT_OK;
	char err[512];
	double t0 = ibc_now_s();

	/* check every count before printing anything */
	for (i = 0; i < o->ngpus; i++) {
		struct rpt_point pt;

		if (rpt_project_point(c, o->algos[0], o->gpus[i], 1, &pt, err, sizeof(err)))
			return bad("--gpus", NULL, err);
	}
	if (check_points(c, o))
		return IBC_EXIT_USAGE;
	if (o->csv) {
		co.cap = o->ngpus * o->nbytes * o->nalgos;
		co.vals = calloc((size_t)co.cap * RPT_PROJECTION_NCOLS, sizeof(*co.vals));
		co.buf = calloc((size_t)co.cap * RPT_PROJECTION_NCOLS, sizeof(*co.buf));
		if (!co.vals || !co.buf) {
			fprintf(stderr, "ibcoll project: out of memory for %d rows\n", co.cap);
			ret = IBC_EXIT_ENV;
			goto out;
		}
		rc = ibc_csv_create(o->csv, cols, RPT_PROJECTION_NCOLS, &co.w);
		if (rc) {
			fprintf(stderr, "ibcoll project: --csv: %s\n", ibc_err_get());
			ret = rc == -EINVAL || rc == -EISDIR ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
			goto out;
		}
	}
	print_header(c, o, source);
	for (i = 0; i < o->ngpus; i++)
		for (k = 0; k < o->nalgos; k++)
			for (j = 0; j < o->nbytes; j++) {
				struct rpt_point pt;
				char sz[32];

				rpt_project_point(c, o->algos[k], o->gpus[i], o->bytes[j], &pt,
						  NULL, 0);
				printf("  %9ld %7ld %5d %-9s %8s %13.2f %11.3f %11.3f %12.2f "
				       "%13.2f %s\n",
				       pt.gpus, pt.nodes, pt.tiers, rpt_algo_name(o->algos[k]),
				       ibc_format_size((uint64_t)pt.bytes, sz, sizeof(sz)),
				       pt.time_us, pt.algbw_GBps, pt.busbw_GBps, pt.latency_us,
				       pt.bandwidth_us, rpt_term_name(pt.bottleneck));
				if (co.w)
					csv_row(&co, c, o, source, o->algos[k], &pt);
			}
	print_crossovers(c, o);
	printf("# %d points in %.1f us (table and crossovers included)\n",
	       o->ngpus * o->nalgos * o->nbytes, 1e6 * (ibc_now_s() - t0));
	if (co.w) {
		rc = ibc_csv_append_rows(co.w, co.vals, co.nrows);
		if (rc) {
			fprintf(stderr, "ibcoll project: --csv: %s\n", ibc_err_get());
			ret = IBC_EXIT_ENV;
		} else {
			printf("# wrote %d rows to %s\n", co.nrows, o->csv);
		}
	}
out:
	ibc_csv_close(co.w);
	free(co.vals);
	free(co.buf);
	return ret;
}

int project_cmd_main(int argc, char **argv)
{
	struct proj_opts *o = calloc(1, sizeof(*o));
	struct rpt_cluster c;
	char err[1024], source[80] = "preset";
	int rc;

	if (!o) {
		fprintf(stderr, "ibcoll project: out of memory\n");
		return IBC_EXIT_ENV;
	}
	rc = parse_args(argc, argv, o);
	if (rc) {
		free(o);
		return rc < 0 ? IBC_EXIT_OK : rc;
	}
	if (o->validate) {
		if (o->calibrate || o->csv || o->ngpus || o->nbytes || o->nalgos || o->cluster)
			rc = bad("--validate", o->validate,
				 "takes no other option (the file names systems, sizes and "
				 "algorithms)");
		else
			rc = rpt__project_validate(o->validate);
		free(o);
		return rc;
	}
	if (o->transport && !o->calibrate) {
		free(o);
		return bad("--transport", NULL, "only applies with --calibrate");
	}
	default_lists(o);
	if (!o->run_id[0])
		ibc_new_id(o->run_id, sizeof(o->run_id));
	rc = rpt_cluster_load(o->cluster ? o->cluster : "h100-ndr", &c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ibcoll project: --cluster: %s\n", err);
		free(o);
		return rc == -EINVAL || rc == -ENOENT ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	if (o->calibrate) {
		rc = calibrate(o, &c, source, sizeof(source));
		if (rc) {
			free(o);
			return rc;
		}
	}
	rc = run_projection(&c, o, source);
	free(o);
	return rc;
}
