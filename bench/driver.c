/* SPDX-License-Identifier: MIT */
/*
 * driver.c - `ibcoll allreduce` and `ibcoll sendrecv`: options, the per-rank benchmark loop,
 * statistics over the slowest rank, the nccl-tests-like table and the CSV reports.
 */
#include "driver.h"
#include "bootstrap.h"
#include "coll.h"
#include "comm.h"
#include "csv.h"
#include "dtype.h"
#include "ibc_common.h"
#include "ibc_id.h"
#include "launch.h"
#include "mem.h"
#include "mpi_algo.h"
#include "schema.h"
#include "topo.h"
#include "transport.h"

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES 256
#define MAX_ITERS 100000

enum { PLACE_OUT, PLACE_IN };

struct drv_opts {
	bool sendrecv; /* which subcommand */
	uint64_t minb, maxb, stepf, stepi;
	long iters, warmup, check;
	enum ibc_dtype dt[IBC_DTYPE_COUNT];
	int ndt;
	enum ibc_op op[IBC_OP_COUNT];
	int nop;
	enum ibc_algo algo[IBC_ALGO_COUNT];
	int nalgo;
	bool place[2];
	long np;
	bool np_set;
	const char *transport; /* borrowed from argv; NULL = auto */
	long channels;
	bool channels_set; /* --channels given: no automatic choice */
	uint64_t chunk; /* 0 = auto */
	long timeout_s;
	long depth;
	const char *out; /* borrowed; NULL = default directory */
	const char *nic;
	long gid_index;
	long qps;
	const char *mem;
	long gpu; /* --gpu, -1 = local rank modulo GPUs (or the topology pairing) */
	const char *topo_xml;
	const char *bind;
	bool bidir;
	long window;
	char run_id[20];
	char started[32];
	char outdir[512];
};

struct drv {
	const struct drv_opts *o;
	struct ibc_boot *boot;
	struct ibc_comm comm;
	const struct ibc_tp_ops *ops;
	const struct ibc_job_state *job; /* NULL outside --np */
	int rank, nranks, nnodes, ranks_per_node;
	struct ibc_buf in, out;
	const struct ibc_mem_ops *mem; /* NULL for host memory */
	struct ibc_mem_ctx *memctx; /* owned */
	struct rpt_csv_writer *csv; /* rank 0 only, owned */
	double bw_sum;
	int bw_n;
	bool progress; /* rank 0 with stderr on a terminal: a progress line */
	size_t wrong_total;
	int mpi_ok;
};

/* What each rank reports for one measurement (gathered at rank 0). */
struct rank_rec {
	int32_t rc;
	int32_t pad;
	uint64_t wrong, first;
	char exp[64], got[64];
	double times[]; /* iters, microseconds */
};

/* ------------------------------------------------------------------ usage */

static void usage_allreduce(FILE *f)
{
	fprintf(f,
		"usage: ibcoll allreduce [options]\n"
		"\n"
		"Times all-reduce over a size sweep and checks every result bit for bit.\n"
		"\n"
		"sizes and iterations (nccl-tests compatible):\n"
		"  -b, --minbytes SIZE    smallest size (default 8); K/M/G suffixes are binary\n"
		"  -e, --maxbytes SIZE    largest size (default 32M)\n"
		"  -f, --stepfactor N     multiply the size by N each step (default 2; N >= 2)\n"
		"  -i, --stepbytes SIZE   or add SIZE each step (instead of -f)\n"
		"  -n, --iters N          timed iterations per size (default 20)\n"
		"  -w, --warmup_iters N   untimed warmup iterations (default 5)\n"
		"  -c, --check N          checked iterations per size (default 1; 0 = no check)\n"
		"  -d, --datatype LIST    %s, or all (default float)\n"
		"  -o, --op LIST          %s, or all (default sum)\n"
		"      --algo LIST        ring, tree, rd (recursive doubling, for small sizes),\n"
		"                         rhd (recursive halving + doubling, Rabenseifner)%s\n"
		"                         (default ring,tree)\n"
		"      --placement LIST   out,in: out-of-place and/or in-place (default both)\n"
		"\n"
		"launch and transport:\n"
		"      --np N             fork N local ranks (default: the launcher's ranks, else\n"
		"                         the number of cores, 2..8)\n"
		"      --transport NAME   shm, tcp%s, or a plugin path (default: shm on one host,\n"
		"                         tcp across hosts)\n"
		"      --channels N       parallel rings/trees (1..%d, default 2)\n"
		"      --chunk SIZE       pipeline chunk (default auto)\n"
		"      --depth N          messages in flight per connection (1..16, default 4)\n"
		"      --nic LIST         devices/ports (verbs: mlx5_0:1,...) or interfaces (tcp)\n"
		"      --gid-index N      RoCE GID index (default automatic)\n"
		"      --qps N            queue pairs per connection (verbs, default 1)\n"
		"      --mem KIND         host (default) or cuda (GPU buffers; staged through host\n"
		"                         memory unless the transport is gdr)\n"
		"      --gpu N            GPU ordinal (default: local rank modulo GPUs)\n"
		"      --topology-xml F   use an hwloc XML file instead of the live machine\n"
		"      --bind MODE        auto (GPU ranks to their NUMA node; else one core block\n"
		"                         per rank unless ranks outnumber cores), on, off\n"
		"      --timeout SEC      bound for every wait (default 60)\n"
		"      --out DIR          report directory (default ibcoll-results/<time>-<run_id>)\n"
		"\n"
		"exit codes: 0 ok, 1 wrong results, 2 usage error, 3 environment or runtime failure\n",
		ibc_dtype_names(), ibc_op_names(), ibc_mpi_available() ? ", mpi" : "",
#if defined(IBCOLL_HAVE_VERBS_TRANSPORT)
		", verbs"
#else
		""
#endif
		,
		IBC_MAX_CHANNELS);
}

static void usage_sendrecv(FILE *f)
{
	fprintf(f, "usage: ibcoll sendrecv [options]\n"
		   "\n"
		   "Point-to-point bandwidth and latency between rank pairs (rank i and i+N/2), as\n"
		   "ib_write_bw / ib_write_lat measure, over any transport.\n"
		   "\n"
		   "  -b, -e, -f, -i, -n, -w   sizes and iterations as in `ibcoll allreduce`\n"
		   "                           (defaults -b 8 -e 32M -f 2 -n 20 -w 5)\n"
		   "      --window N           messages in flight in the bandwidth test (default 16)\n"
		   "      --bidir              both directions at once\n"
		   "      --np, --transport, --nic, --gid-index, --qps, --timeout, --out,\n"
		   "      --topology-xml, --bind   as in `ibcoll allreduce`\n"
		   "\n"
		   "exit codes: 0 ok, 1 wrong data, 2 usage error, 3 environment or runtime failure\n");
}

static int usage_err(const struct drv_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_err(const struct drv_opts *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ibcoll %s: ", o->sendrecv ? "sendrecv" : "allreduce");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'ibcoll %s --help')\n", o->sendrecv ? "sendrecv" : "allreduce");
	return IBC_EXIT_USAGE;
}

/* ------------------------------------------------------------------ options */

static int parse_size_opt(const struct drv_opts *o, const char *flag, const char *v, uint64_t *out)
{
	int rc = ibc_parse_size(v, out);

	if (rc == -ERANGE)
		return usage_err(o, "%s '%s': size out of range", flag, v);
	if (rc)
		return usage_err(o,
				 "%s '%s': not a size (a non-negative number with an optional K, M, "
				 "G or T suffix, e.g. 64K)",
				 flag, v);
	return 0;
}

static int parse_long_opt(const struct drv_opts *o, const char *flag, const char *v, long min,
			  long max, long *out)
{
	int rc = ibc_parse_int(v, min, max, out);

	if (rc)
		return usage_err(o, "%s '%s': expected an integer from %ld to %ld", flag, v, min,
				 max);
	return 0;
}

static int parse_list(const struct drv_opts *o, const char *flag, const char *v, int max,
		      int (*one)(const char *, int *), const char *valid, int *items, int *n)
{
	const char *it[32];
	char *store;
	int k = ibc_split_list(v, &store, it, 32), i, j;

	if (k < 0)
		return usage_err(o, "%s '%s': expected a comma-separated list of %s", flag, v,
				 valid);
	*n = 0;
	for (i = 0; i < k; i++) {
		int x;

		if (one(it[i], &x)) {
			usage_err(o, "%s: unknown value '%s' (valid: %s)", flag, it[i], valid);
			free(store);
			return IBC_EXIT_USAGE;
		}
		for (j = 0; j < *n && items[j] != x; j++)
			;
		if (j == *n && *n < max)
			items[(*n)++] = x;
	}
	free(store);
	return 0;
}

static int one_dtype(const char *s, int *x)
{
	enum ibc_dtype d;
	int rc = ibc_dtype_parse(s, &d);

	*x = (int)d;
	return rc;
}

static int one_op(const char *s, int *x)
{
	enum ibc_op d;
	int rc = ibc_op_parse(s, &d);

	*x = (int)d;
	return rc;
}

static int one_algo(const char *s, int *x)
{
	enum ibc_algo a;
	int rc = ibc_algo_parse(s, &a);

	if (!rc && a == IBC_ALGO_MPI && !ibc_mpi_available())
		return -EINVAL;
	*x = (int)a;
	return rc;
}

static int one_place(const char *s, int *x)
{
	if (strcmp(s, "out") == 0)
		*x = PLACE_OUT;
	else if (strcmp(s, "in") == 0)
		*x = PLACE_IN;
	else
		return -EINVAL;
	return 0;
}

static int default_np(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return (int)IBC_MIN(IBC_MAX(n, 2), 8);
}

static int parse_opts(int argc, char **argv, struct drv_opts *o)
{
	enum {
		O_ALGO = 256,
		O_NP,
		O_TRANSPORT,
		O_CHANNELS,
		O_CHUNK,
		O_TIMEOUT,
		O_OUT,
		O_NIC,
		O_GID,
		O_QPS,
		O_MEM,
		O_TOPO,
		O_DEPTH,
		O_PLACE,
		O_BIDIR,
		O_WINDOW,
		O_BIND,
		O_GPU,
	};
	static const struct option lo[] = {
		{ "minbytes", required_argument, NULL, 'b' },
		{ "maxbytes", required_argument, NULL, 'e' },
		{ "stepfactor", required_argument, NULL, 'f' },
		{ "stepbytes", required_argument, NULL, 'i' },
		{ "iters", required_argument, NULL, 'n' },
		{ "warmup_iters", required_argument, NULL, 'w' },
		{ "check", required_argument, NULL, 'c' },
		{ "datatype", required_argument, NULL, 'd' },
		{ "op", required_argument, NULL, 'o' },
		{ "algo", required_argument, NULL, O_ALGO },
		{ "np", required_argument, NULL, O_NP },
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "channels", required_argument, NULL, O_CHANNELS },
		{ "chunk", required_argument, NULL, O_CHUNK },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "out", required_argument, NULL, O_OUT },
		{ "nic", required_argument, NULL, O_NIC },
		{ "gid-index", required_argument, NULL, O_GID },
		{ "qps", required_argument, NULL, O_QPS },
		{ "mem", required_argument, NULL, O_MEM },
		{ "topology-xml", required_argument, NULL, O_TOPO },
		{ "depth", required_argument, NULL, O_DEPTH },
		{ "placement", required_argument, NULL, O_PLACE },
		{ "bidir", no_argument, NULL, O_BIDIR },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "bind", required_argument, NULL, O_BIND },
		{ "gpu", required_argument, NULL, O_GPU },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, rc = 0, n = 0, items[16];
	bool f_set = false, i_set = false;

	o->minb = 8;
	o->maxb = 32ull << 20;
	o->stepf = 2;
	o->iters = 20;
	o->warmup = 5;
	o->check = 1;
	o->dt[0] = IBC_FLOAT;
	o->ndt = 1;
	o->op[0] = IBC_OP_SUM;
	o->nop = 1;
	o->algo[0] = IBC_ALGO_RING;
	o->algo[1] = IBC_ALGO_TREE;
	o->nalgo = 2;
	o->place[PLACE_OUT] = o->place[PLACE_IN] = true;
	o->np = default_np();
	o->channels = 2;
	o->timeout_s = 60;
	o->depth = 4;
	o->gid_index = -1;
	o->qps = 1;
	o->mem = "host";
	o->gpu = -1;
	o->bind = "auto";
	o->window = 16;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:e:f:i:n:w:c:d:o:h", lo, NULL)) != -1) {
		switch (c) {
		case 'b': rc = parse_size_opt(o, "-b", optarg, &o->minb); break;
		case 'e': rc = parse_size_opt(o, "-e", optarg, &o->maxb); break;
		case 'f': {
			long f;

			rc = parse_long_opt(o, "-f", optarg, 2, 1 << 20, &f);
			o->stepf = (uint64_t)f;
			f_set = true;
			break;
		}
		case 'i':
			rc = parse_size_opt(o, "-i", optarg, &o->stepi);
			if (!rc && o->stepi == 0)
				rc = usage_err(o, "-i '%s': the step must be at least 1 byte",
					       optarg);
			i_set = true;
			break;
		case 'n': rc = parse_long_opt(o, "-n", optarg, 1, MAX_ITERS, &o->iters); break;
		case 'w': rc = parse_long_opt(o, "-w", optarg, 0, MAX_ITERS, &o->warmup); break;
		case 'c': rc = parse_long_opt(o, "-c", optarg, 0, 1000, &o->check); break;
		case 'd':
			if (strcmp(optarg, "all") == 0) { /* as nccl-tests */
				for (c = 0; c < IBC_DTYPE_COUNT; c++)
					o->dt[c] = (enum ibc_dtype)c;
				o->ndt = IBC_DTYPE_COUNT;
				break;
			}
			rc = parse_list(o, "-d", optarg, IBC_DTYPE_COUNT, one_dtype,
					ibc_dtype_names(), items, &n);
			for (c = 0; !rc && c < n; c++)
				o->dt[c] = (enum ibc_dtype)items[c];
			if (!rc)
				o->ndt = n;
			break;
		case 'o':
			if (strcmp(optarg, "all") == 0) {
				for (c = 0; c < IBC_OP_COUNT; c++)
					o->op[c] = (enum ibc_op)c;
				o->nop = IBC_OP_COUNT;
				break;
			}
			rc = parse_list(o, "-o", optarg, IBC_OP_COUNT, one_op, ibc_op_names(), items,
					&n);
			for (c = 0; !rc && c < n; c++)
				o->op[c] = (enum ibc_op)items[c];
			if (!rc)
				o->nop = n;
			break;
		case O_ALGO:
			rc = parse_list(o, "--algo", optarg, IBC_ALGO_COUNT, one_algo,
					ibc_mpi_available()
						? "ring, tree, rd, rhd, mpi"
						: "ring, tree, rd, rhd (mpi: this build has no MPI)",
					items, &n);
			for (c = 0; !rc && c < n; c++)
				o->algo[c] = (enum ibc_algo)items[c];
			if (!rc)
				o->nalgo = n;
			break;
		case O_PLACE:
			rc = parse_list(o, "--placement", optarg, 2, one_place, "out, in", items, &n);
			if (!rc) {
				o->place[0] = o->place[1] = false;
				for (c = 0; c < n; c++)
					o->place[items[c]] = true;
			}
			break;
		case O_NP:
			rc = parse_long_opt(o, "--np", optarg, 1, 4096, &o->np);
			o->np_set = true;
			break;
		case O_TRANSPORT: o->transport = optarg; break;
		case O_CHANNELS:
			rc = parse_long_opt(o, "--channels", optarg, 1, IBC_MAX_CHANNELS,
					    &o->channels);
			o->channels_set = true;
			break;
		case O_CHUNK:
			rc = parse_size_opt(o, "--chunk", optarg, &o->chunk);
			if (!rc && (o->chunk < 64 || o->chunk > (64ull << 20)))
				rc = usage_err(o, "--chunk '%s': expected 64 bytes to 64M", optarg);
			break;
		case O_TIMEOUT:
			rc = parse_long_opt(o, "--timeout", optarg, 1, 86400, &o->timeout_s);
			break;
		case O_DEPTH: rc = parse_long_opt(o, "--depth", optarg, 1, 16, &o->depth); break;
		case O_OUT: o->out = optarg; break;
		case O_NIC: o->nic = optarg; break;
		case O_GID: rc = parse_long_opt(o, "--gid-index", optarg, 0, 255, &o->gid_index); break;
		case O_QPS: rc = parse_long_opt(o, "--qps", optarg, 1, 64, &o->qps); break;
		case O_MEM:
			o->mem = optarg;
			if (strcmp(optarg, "host") && strcmp(optarg, "cuda") &&
			    strcmp(optarg, "hostdev"))
				rc = usage_err(o, "--mem '%s': expected host or cuda", optarg);
			break;
		case O_GPU: rc = parse_long_opt(o, "--gpu", optarg, 0, 1023, &o->gpu); break;
		case O_TOPO: o->topo_xml = optarg; break;
		case O_BIND:
			o->bind = optarg;
			if (strcmp(optarg, "auto") && strcmp(optarg, "on") && strcmp(optarg, "off"))
				rc = usage_err(o, "--bind '%s': expected auto, on or off", optarg);
			break;
		case O_BIDIR: o->bidir = true; break;
		case O_WINDOW: rc = parse_long_opt(o, "--window", optarg, 1, 1024, &o->window); break;
		case 'h':
			if (o->sendrecv)
				usage_sendrecv(stdout);
			else
				usage_allreduce(stdout);
			return -1;
		case ':':
			return usage_err(o, "option %s needs a value", argv[optind - 1]);
		default:
			return usage_err(o, "unknown option '%s'", argv[optind - 1]);
		}
		if (rc)
			return rc;
	}
	if (optind < argc)
		return usage_err(o, "unexpected argument '%s'", argv[optind]);
	if (f_set && i_set)
		return usage_err(o, "-f and -i exclude each other: give one step rule");
	if (i_set)
		o->stepf = 0;
	if (o->maxb < o->minb)
		return usage_err(o, "-e (%llu bytes) is below -b (%llu bytes)",
				 (unsigned long long)o->maxb, (unsigned long long)o->minb);
	if (o->maxb > (16ull << 30))
		return usage_err(o, "-e: at most 16G per rank");
	if (o->minb == 0 && o->stepf && o->maxb > 0)
		return usage_err(o, "-b 0 with -f never grows: use -b 1 or larger, or -i");
	return 0;
}

/* ------------------------------------------------------------------ sizes and stats */

static int size_list(const struct drv_opts *o, uint64_t *sizes)
{
	uint64_t s = o->minb;
	int n = 0;

	while (s <= o->maxb && n < MAX_SIZES) {
		sizes[n++] = s;
		if (o->stepf) {
			if (s > o->maxb / o->stepf)
				break;
			s *= o->stepf;
		} else {
			if (s > o->maxb - o->stepi)
				break;
			s += o->stepi;
		}
	}
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double mean, min, p50, p99, max;
	int slowest;
};

static double pct(const double *sorted, int n, double p)
{
	double idx = p * (n - 1);
	int lo = (int)floor(idx), hi = (int)ceil(idx);

	return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

/* times: nranks x iters, row per rank. Per iteration the slowest rank's time counts. */
static void compute_stats(const double *times, int nranks, int iters, struct stats *s)
{
	double *worst = malloc(sizeof(double) * (size_t)iters), best_mean = -1;
	int i, r;

	if (!worst)
		return;
	s->mean = 0;
	for (i = 0; i < iters; i++) {
		worst[i] = 0;
		for (r = 0; r < nranks; r++)
			worst[i] = IBC_MAX(worst[i], times[(size_t)r * (size_t)iters + (size_t)i]);
		s->mean += worst[i];
	}
	s->mean /= iters;
	qsort(worst, (size_t)iters, sizeof(double), cmp_double);
	s->min = worst[0];
	s->max = worst[iters - 1];
	s->p50 = pct(worst, iters, 0.5);
	s->p99 = pct(worst, iters, 0.99);
	s->slowest = 0;
	for (r = 0; r < nranks; r++) {
		double m = 0;

		for (i = 0; i < iters; i++)
			m += times[(size_t)r * (size_t)iters + (size_t)i];
		if (m > best_mean) {
			best_mean = m;
			s->slowest = r;
		}
	}
	free(worst);
}

/* ------------------------------------------------------------------ reports */

static int make_dirs(const char *path)
{
	char tmp[512];
	size_t i, n = strlen(path);

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		tmp[i] = path[i];
	}
	return 0;
}

static int open_results(struct drv *d)
{
	static const char *const cols[] = { RPT_RESULTS_COLUMNS };
	char path[600];
	int rc = make_dirs(d->o->outdir);

	if (rc) {
		ibc_log("cannot create report directory %s: %s", d->o->outdir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/results.csv", d->o->outdir);
	rc = rpt_csv_create(path, cols, RPT_RESULTS_NCOLS, &d->csv);
	if (rc)
		ibc_log("cannot create %s: %s%s", path, strerror(-rc),
			rc == -EEXIST ? " (ibcoll never overwrites a report: choose another --out)"
				      : "");
	return rc;
}

struct row {
	const char *collective, *algo;
	enum ibc_dtype dt;
	enum ibc_op op;
	int place;
	uint64_t bytes, count;
	const struct stats *st; /* NULL when failed */
	double algbw, busbw;
	uint64_t wrong;
	const char *wrong_ranks;
	const char *status;
	int channels;
};

static int write_row(struct drv *d, const struct row *r)
{
	char f[32][64];
	const char *v[RPT_RESULTS_NCOLS];
	char wr[256];
	int i = 0;

	if (!d->csv)
		return 0;
#define S(x) (v[i++] = (x))
#define N(fmt, x) (snprintf(f[i], sizeof(f[i]), fmt, x), v[i] = f[i], i++)
	N("%d", RPT_SCHEMA_VERSION);
	S(d->o->run_id);
	S(d->o->started);
	S(IBC_VERSION);
	S(r->collective);
	S(r->algo);
	S(d->ops ? d->ops->name : "mpi");
	S(d->o->mem);
	S(ibc_dtype_name(r->dt));
	S(r->collective[0] == 's' ? "" : ibc_op_name(r->op));
	S(r->place == PLACE_IN ? "in" : "out");
	N("%d", d->nranks);
	N("%d", d->nnodes);
	N("%d", d->ranks_per_node);
	N("%d", r->channels);
	N("%llu", (unsigned long long)r->bytes);
	N("%llu", (unsigned long long)r->count);
	N("%ld", d->o->warmup);
	N("%ld", d->o->iters);
	if (r->st) {
		N("%.3f", r->st->mean);
		N("%.3f", r->st->min);
		N("%.3f", r->st->p50);
		N("%.3f", r->st->p99);
		N("%.3f", r->st->max);
		/* plain decimals with enough digits that a 1-byte message is not a zero */
		N(r->algbw >= 1e-3 ? "%.6f" : "%.12f", r->algbw);
		N(r->busbw >= 1e-3 ? "%.6f" : "%.12f", r->busbw);
		N("%llu", (unsigned long long)r->wrong);
		snprintf(wr, sizeof(wr), "%s", r->wrong_ranks);
		S(wr);
		N("%d", r->st->slowest);
		S(ibc_boot_host(d->boot, r->st->slowest));
	} else {
		int k;

		for (k = 0; k < 7; k++)
			S("");
		S("");
		S(r->wrong_ranks);
		S("");
		S("");
	}
	S(r->status);
#undef S
#undef N
	i = rpt_csv_append(d->csv, v);
	if (i)
		ibc_log("writing results.csv failed: %s", strerror(-i));
	return i;
}

struct host_rec {
	int32_t local_rank;
	int32_t numa;
	int32_t nic_port;
	int32_t local_size;
	double link_gbps;
	char host[64];
	char cpus[256];
	char gpu[32], gpu_busid[32], nic[64], nic_busid[32], path[8];
};

static int write_hosts(struct drv *d, const struct host_rec *all)
{
	static const char *const cols[] = { RPT_HOSTS_COLUMNS };
	struct rpt_csv_writer *w;
	char path[600];
	int r, rc;

	snprintf(path, sizeof(path), "%s/hosts.csv", d->o->outdir);
	rc = rpt_csv_create(path, cols, RPT_HOSTS_NCOLS, &w);
	if (rc) {
		ibc_log("cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	for (r = 0; r < d->nranks && !rc; r++) {
		const struct host_rec *h = &all[r];
		char sv[8], rk[16], lr[16], nu[16], np[16], lg[32];
		const char *v[RPT_HOSTS_NCOLS];

		snprintf(sv, sizeof(sv), "%d", RPT_SCHEMA_VERSION);
		snprintf(rk, sizeof(rk), "%d", r);
		snprintf(lr, sizeof(lr), "%d", h->local_rank);
		nu[0] = np[0] = lg[0] = '\0';
		if (h->numa >= 0)
			snprintf(nu, sizeof(nu), "%d", h->numa);
		if (h->nic_port > 0)
			snprintf(np, sizeof(np), "%d", h->nic_port);
		if (h->link_gbps > 0)
			snprintf(lg, sizeof(lg), "%g", h->link_gbps);
		v[0] = sv;
		v[1] = d->o->run_id;
		v[2] = rk;
		v[3] = h->host;
		v[4] = lr;
		v[5] = h->cpus;
		v[6] = nu;
		v[7] = h->gpu;
		v[8] = h->gpu_busid;
		v[9] = h->nic;
		v[10] = h->nic_busid;
		v[11] = np;
		v[12] = lg;
		v[13] = h->path;
		rc = rpt_csv_append(w, v);
	}
	rpt_csv_close(w);
	return rc;
}

/* Topology facts of this rank; binds when asked. Never fatal: a rank without hwloc facts
 * still benchmarks, with empty columns. */
static void topo_facts(struct drv *d, struct host_rec *h)
{
	struct topo_rank_info info;
	struct topo *t = NULL;
	int rc;

	memset(h, 0, sizeof(*h));
	h->numa = -1;
	h->local_rank = ibc_boot_local_rank(d->boot);
	h->local_size = ibc_boot_local_size(d->boot);
	snprintf(h->host, sizeof(h->host), "%s", ibc_hostname());
	/* hosts.csv says where the rank may run: its affinity as inherited, or the cores it is
	 * bound to below (a --topology-xml plan is of another machine: never bound) */
	if (ibc_affinity_list(h->cpus, sizeof(h->cpus)))
		h->cpus[0] = 0;
	rc = topo_load(d->o->topo_xml, &t);
	if (rc) {
		if (d->rank == 0)
			ibc_log("warning: topology unavailable (%s): hosts.csv topology columns "
				"stay empty",
				ibc_err_get());
		return;
	}
	rc = topo_pick(t, h->local_rank, h->local_size, &info);
	if (!rc) {
		h->numa = info.numa;
		snprintf(h->gpu, sizeof(h->gpu), "%s", info.gpu);
		snprintf(h->gpu_busid, sizeof(h->gpu_busid), "%s", info.gpu_busid);
		snprintf(h->nic, sizeof(h->nic), "%s", info.nic);
		snprintf(h->nic_busid, sizeof(h->nic_busid), "%s", info.nic_busid);
		h->nic_port = info.nic_port;
		h->link_gbps = info.link_gbps;
		snprintf(h->path, sizeof(h->path), "%s", topo_path_name(info.path));
		/* auto: ranks with a GPU bind to its NUMA node; without GPUs, ranks bind to their
		 * own block of cores when every local rank can have one (as MPI binds to cores), and
		 * stay unbound when they outnumber the cores (the scheduler balances better). */
		if (!d->o->topo_xml &&
		    (strcmp(d->o->bind, "on") == 0 ||
		     (strcmp(d->o->bind, "auto") == 0 &&
		      (info.gpu[0] || h->local_size <= sysconf(_SC_NPROCESSORS_ONLN))))) {
			if (topo_bind(t, &info) == 0)
				snprintf(h->cpus, sizeof(h->cpus), "%s", info.cpus);
			else
				ibc_log("warning: could not bind rank %d to cpus %s: %s", d->rank,
					info.cpus, ibc_err_get());
		}
	}
	topo_destroy(t);
}

/* ------------------------------------------------------------------ allreduce */

/* Channels add connections that move data in parallel (sockets, QPs); below 512 KiB they only
 * add messages and latency, so one channel serves small sizes unless --channels was given. */
static int auto_channels(const struct drv *d, uint64_t bytes)
{
	if (d->o->channels_set || bytes >= (512u << 10))
		return (int)d->o->channels;
	return 1;
}

static size_t auto_chunk(const struct drv *d, uint64_t bytes, enum ibc_algo algo)
{
	uint64_t per, c, ch = (uint64_t)auto_channels(d, bytes);

	if (d->o->chunk)
		return (size_t)d->o->chunk;
	/* ring: a segment is bytes/(channels*nranks); tree: half a channel's share */
	per = algo == IBC_ALGO_RING ? bytes / (ch * (uint64_t)d->nranks) : bytes / (2 * ch);
	c = per / 4; /* at least ~4 chunks in the pipeline */
	if (c < (128u << 10))
		c = 128u << 10;
	if (c > (1u << 20))
		c = 1u << 20;
	return (size_t)c;
}

static int gather_rec(struct drv *d, struct rank_rec *mine, size_t len, char **all)
{
	*all = NULL;
	if (d->rank == 0) {
		*all = malloc(len * (size_t)d->nranks);
		if (!*all)
			return -ENOMEM;
	}
	return ibc_boot_gather(d->boot, mine, *all, len);
}

static const char *status_of(int rc)
{
	return rc == -ETIMEDOUT ? "timeout" : "error";
}

/* One measurement: returns 0 with rec filled, or the error of this rank. */
static int measure(struct drv *d, enum ibc_algo algo, enum ibc_dtype dt, enum ibc_op op,
		   uint64_t count, int place, struct rank_rec *rec)
{
	const struct drv_opts *o = d->o;
	struct ibc_buf *in = &d->in, *out = place == PLACE_IN ? &d->in : &d->out;
	size_t bytes = count * ibc_dtype_size(dt);
	struct ibc_coll_args a = { .algo = algo, .in = in, .out = out, .count = count, .dt = dt,
				   .op = op, .channels = auto_channels(d, count * ibc_dtype_size(dt)) };
	struct ibc_prog prog;
	long i;
	int rc;

	a.chunk_bytes = auto_chunk(d, bytes, algo);
	if (algo == IBC_ALGO_MPI) {
		memset(&prog, 0, sizeof(prog));
		rc = 0;
	} else {
		rc = ibc_allreduce_prepare(&d->comm, &a, &prog);
		if (rc)
			goto out;
	}
#define RUN()                                                                                      \
	(algo == IBC_ALGO_MPI ? ibc_mpi_allreduce(in->ptr, out->ptr, count, dt, op)                \
			      : ibc_prog_run(&d->comm, &prog))
	for (i = 0; i < o->check; i++) {
		struct ibc_check_result cr;

		if (d->comm.device) {
			rc = d->mem->fill(d->memctx, in->ptr, count, dt, op, d->rank, d->nranks,
					  (uint64_t)i + 1);
			if (!rc && out != in)
				rc = d->mem->poison(d->memctx, out->ptr, count, dt);
			if (rc) {
				ibc_err_set("rank %d: filling device buffers: %s", d->rank,
					    d->mem->last_error(d->memctx));
				goto out;
			}
		} else {
			ibc_fill(in->ptr, 0, count, dt, op, d->rank, d->nranks, (uint64_t)i + 1);
			if (out != in)
				ibc_poison(out->ptr, count, dt);
		}
		rc = RUN();
		if (rc)
			goto out;
		if (d->comm.device)
			rc = d->mem->check(d->memctx, out->ptr, count, dt, op, d->nranks,
					   (uint64_t)i + 1, &cr);
		else
			ibc_check(out->ptr, count, dt, op, d->nranks, (uint64_t)i + 1, &cr);
		if (rc) {
			ibc_err_set("rank %d: checking device buffers: %s", d->rank,
				    d->mem->last_error(d->memctx));
			goto out;
		}
		if (cr.wrong && !rec->wrong) {
			rec->first = cr.first_index;
			snprintf(rec->exp, sizeof(rec->exp), "%s", cr.expected);
			snprintf(rec->got, sizeof(rec->got), "%s", cr.got);
		}
		rec->wrong += cr.wrong;
	}
	/* The barrier (over the bootstrap's sockets) lets ranks go at moments tens of
	 * microseconds apart; the warmup iterations that follow align them again, so that skew
	 * is not timed. */
	rc = ibc_boot_barrier(d->boot);
	for (i = 0; i < o->warmup && !rc; i++)
		rc = RUN();
	for (i = 0; i < o->iters && !rc; i++) {
		uint64_t t0 = ibc_now_ns();

		rc = RUN();
		rec->times[i] = (double)(ibc_now_ns() - t0) / 1e3;
	}
	/* A rank done timing moves on to work of its own (reporting, the next size's setup);
	 * with more ranks than cores that would take the core from a rank still timing its last
	 * iteration. Wait (asleep in the bootstrap) until every rank has finished. */
	if (!rc)
		rc = ibc_boot_barrier(d->boot);
#undef RUN
out:
	ibc_prog_free(&prog);
	return rc;
}

static void fmt_cell(char *buf, size_t len, const struct stats *st, double algbw, double busbw,
		     uint64_t wrong, bool checked)
{
	char w[24];

	if (!st) {
		snprintf(buf, len, "%9s %7s %7s %7s", "-", "-", "-", "-");
		return;
	}
	if (checked)
		snprintf(w, sizeof(w), "%llu", (unsigned long long)wrong);
	else
		snprintf(w, sizeof(w), "N/A");
	snprintf(buf, len, "%9.2f %7.2f %7.2f %7s", st->mean, algbw, busbw, w);
}

static int report_failure(struct drv *d, int rc)
{
	const char *msg = ibc_err_get();

	if (rc == -ECANCELED && d->job && d->job->dead_rank >= 0) {
		char how[96];

		ibc_launch_describe(d->job->dead_status, how, sizeof(how));
		ibc_log("rank %d stopping: rank %d (pid %d, host %s) %s", d->rank,
			d->job->dead_rank, d->job->dead_pid,
			ibc_boot_host(d->boot, d->job->dead_rank), how);
	} else {
		ibc_log("%s", msg);
	}
	return IBC_EXIT_ENV;
}

static int run_allreduce(struct drv *d)
{
	const struct drv_opts *o = d->o;
	uint64_t sizes[MAX_SIZES];
	int nsizes = size_list(o, sizes), ai, di, oi, si, pl;
	size_t reclen = sizeof(struct rank_rec) + sizeof(double) * (size_t)o->iters;
	struct rank_rec *rec = malloc(reclen);
	int exit_code = 0;

	if (!rec)
		return IBC_EXIT_ENV;
	if (d->rank == 0) {
		printf("#\n#  %-10s %12s %8s %7s %6s %36s %36s\n", "", "", "", "", "", "out-of-place",
		       "in-place");
		printf("#  %10s %12s %8s %7s %6s %9s %7s %7s %7s %9s %7s %7s %7s\n", "size",
		       "count", "type", "redop", "algo", "time", "algbw", "busbw", "#wrong", "time",
		       "algbw", "busbw", "#wrong");
		printf("#  %10s %12s %8s %7s %6s %9s %7s %7s %7s %9s %7s %7s %7s\n", "(B)",
		       "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)",
		       "(GB/s)", "");
		fflush(stdout);
	}
	for (ai = 0; ai < o->nalgo; ai++)
		for (di = 0; di < o->ndt; di++)
			for (oi = 0; oi < o->nop; oi++)
				for (si = 0; si < nsizes; si++) {
					enum ibc_dtype dt = o->dt[di];
					uint64_t count = sizes[si] / ibc_dtype_size(dt);
					uint64_t bytes = count * ibc_dtype_size(dt);
					char cell[2][96];

					for (pl = 0; pl < 2; pl++) {
						struct stats st;
						char *all = NULL, wr[256] = "";
						int rc, r, worst_rc = 0;
						uint64_t wrong = 0;
						double algbw = 0, busbw = 0;
						struct row row;

						snprintf(cell[pl], sizeof(cell[pl]), "%9s %7s %7s %7s",
							 "", "", "", "");
						if (!o->place[pl])
							continue;
						memset(rec, 0, reclen);
						if (d->progress)
							fprintf(stderr,
								"\r\033[K[%s %s %s %s, %llu B]",
								ibc_algo_name(o->algo[ai]),
								ibc_dtype_name(dt),
								ibc_op_name(o->op[oi]),
								pl ? "in-place" : "out-of-place",
								(unsigned long long)bytes);
						rc = measure(d, o->algo[ai], dt, o->op[oi], count, pl,
							     rec);
						rec->rc = rc;
						if (!rc)
							rc = gather_rec(d, rec, reclen, &all);
						if (rc) {
							/* this rank cannot go on; rank 0 records it */
							int e = report_failure(d, rc);

							if (d->rank == 0) {
								row = (struct row){
									"allreduce",
									ibc_algo_name(o->algo[ai]),
									dt, o->op[oi], pl, bytes, count,
									NULL, 0, 0, 0, "", status_of(rc),
									auto_channels(d, bytes)
								};
								write_row(d, &row);
							}
							free(all);
							free(rec);
							return e;
						}
						if (d->rank != 0)
							continue;
						{
							double *times = malloc(sizeof(double) *
									       (size_t)o->iters *
									       (size_t)d->nranks);
							size_t n = 0;

							if (!times) {
								free(all);
								free(rec);
								return IBC_EXIT_ENV;
							}
							for (r = 0; r < d->nranks; r++) {
								struct rank_rec *x =
									(void *)(all + (size_t)r * reclen);

								memcpy(times + (size_t)r * (size_t)o->iters,
								       x->times,
								       sizeof(double) * (size_t)o->iters);
								if (x->rc)
									worst_rc = x->rc;
								if (x->wrong) {
									wrong += x->wrong;
									n += (size_t)snprintf(
										wr + n, sizeof(wr) - n,
										"%s%d", n ? ";" : "", r);
									if (n >= sizeof(wr))
										n = sizeof(wr) - 1;
									ibc_log("wrong result: rank %d "
										"(host %s), %s %s %s "
										"%s %llu bytes: %llu "
										"wrong elements, first "
										"at index %llu: "
										"expected %s, got %s",
										r,
										ibc_boot_host(d->boot, r),
										ibc_algo_name(o->algo[ai]),
										pl ? "in-place"
										   : "out-of-place",
										ibc_dtype_name(dt),
										ibc_op_name(o->op[oi]),
										(unsigned long long)bytes,
										(unsigned long long)x->wrong,
										(unsigned long long)x->first,
										x->exp, x->got);
								}
							}
							compute_stats(times, d->nranks, (int)o->iters,
								      &st);
							free(times);
						}
						algbw = st.mean > 0 ? (double)bytes / st.mean / 1e3 : 0;
						busbw = algbw * 2.0 * (d->nranks - 1) / d->nranks;
						d->bw_sum += busbw;
						d->bw_n++;
						d->wrong_total += wrong;
						row = (struct row){ "allreduce",
								    ibc_algo_name(o->algo[ai]),
								    dt,
								    o->op[oi],
								    pl,
								    bytes,
								    count,
								    &st,
								    algbw,
								    busbw,
								    wrong,
								    wr,
								    worst_rc ? "error"
									     : (wrong ? "wrong" : "ok"),
								    auto_channels(d, bytes) };
						if (write_row(d, &row))
							exit_code = IBC_EXIT_ENV;
						fmt_cell(cell[pl], sizeof(cell[pl]), &st, algbw,
							 busbw, wrong, o->check > 0);
						free(all);
					}
					if (d->rank == 0) {
						printf("   %10llu %12llu %8s %7s %6s %s %s\n",
						       (unsigned long long)bytes,
						       (unsigned long long)count, ibc_dtype_name(dt),
						       ibc_op_name(o->op[oi]),
						       ibc_algo_name(o->algo[ai]), cell[0], cell[1]);
						fflush(stdout);
					}
				}
	free(rec);
	if (d->progress)
		fprintf(stderr, "\r\033[K");
	if (d->rank == 0) {
		printf("# Out of bounds values : %zu %s\n", d->wrong_total,
		       d->wrong_total ? "FAILED" : "OK");
		printf("# Avg bus bandwidth    : %g\n", d->bw_n ? d->bw_sum / d->bw_n : 0.0);
		printf("# Report: %s/results.csv\n#\n", o->outdir);
		fflush(stdout);
	}
	if (!exit_code && d->wrong_total)
		exit_code = IBC_EXIT_CHECK;
	return exit_code;
}

/* ------------------------------------------------------------------ sendrecv */

/* Rank i pairs with i + n/2 (the first half sends); with an odd count the last rank idles. */
static int pair_of(int rank, int n, bool *sender)
{
	int h = n / 2;

	if (rank < h) {
		*sender = true;
		return rank + h;
	}
	if (rank < 2 * h) {
		*sender = false;
		return rank - h;
	}
	return -1;
}

/* Bandwidth: `window` messages in flight per iteration; latency: ping-pong, half round trip.
 * bidir: both sides stream at once. Data is checked on the first iteration. */
/* The sendrecv program: reps messages (ping-pong, bidirectional or one-way closed by a
 * zero-byte ack so the sender times delivery). */
static int sr_prog(struct drv *d, struct ibc_link *const *links, uint64_t bytes, bool lat,
		   bool sender, long reps, struct ibc_prog *prog)
{
	struct ibc_link **own = malloc(2 * sizeof(*own));
	char *sb = d->in.ptr, *rb = d->out.ptr;
	struct ibc_step s = { .kind = IBC_OPK_SEND, .link = 0, .count = bytes, .src = sb,
			      .mr = d->in.mr };
	struct ibc_step r = { .kind = IBC_OPK_RECV_COPY, .link = 1, .count = bytes, .dst = rb,
			      .mr = d->out.mr };
	long w;
	int rc = ibc_prog_init(prog, 1, NULL, 0, IBC_UINT8, IBC_OP_SUM, 2);

	if (rc || !own) {
		free(own);
		return rc ? rc : -ENOMEM;
	}
	own[0] = links[0];
	own[1] = links[1];
	rc = ibc_prog_set_links(prog, own, 2);
	for (w = 0; w < reps && !rc; w++) {
		if (lat) { /* the sender sends then receives; the receiver mirrors */
			rc = ibc_prog_add(prog, 0, sender ? &s : &r);
			if (!rc)
				rc = ibc_prog_add(prog, 0, sender ? &r : &s);
		} else if (d->o->bidir) {
			rc = ibc_prog_add(prog, 0, &s);
			if (!rc)
				rc = ibc_prog_add(prog, 0, &r);
		} else {
			rc = ibc_prog_add(prog, 0, sender ? &s : &r);
		}
	}
	if (!rc && !lat && !d->o->bidir) {
		s.count = r.count = 0;
		rc = ibc_prog_add(prog, 0, sender ? &r : &s);
	}
	if (rc)
		ibc_prog_free(prog);
	return rc;
}

/* Bandwidth: `window` messages in flight per iteration; latency: ping-pong, half round trip.
 * bidir: both sides stream at once. A first run of one message is checked byte for byte
 * (every later message lands on the same buffer, so a corrupted one would be overwritten). */
static int sr_measure(struct drv *d, uint64_t bytes, bool lat, struct rank_rec *rec)
{
	const struct drv_opts *o = d->o;
	struct ibc_link_req req[2];
	struct ibc_link *links[2];
	struct ibc_prog prog;
	bool sender = false;
	int peer = pair_of(d->rank, d->nranks, &sender), rc;
	long i, total = o->warmup + o->iters;
	char *sb = d->in.ptr, *rb = d->out.ptr;

	if (peer < 0) { /* idle rank in an odd job: the two barriers of the others */
		rc = ibc_boot_barrier(d->boot);
		if (!rc)
			rc = ibc_boot_barrier(d->boot);
		for (i = 0; i < o->iters; i++)
			rec->times[i] = 0;
		return rc;
	}
	req[0] = (struct ibc_link_req){ peer, true, 0x80 };
	req[1] = (struct ibc_link_req){ peer, false, 0x80 };
	rc = ibc_comm_connect(&d->comm, req, 2, links);
	if (!rc)
		rc = sr_prog(d, links, bytes, lat, sender, 1, &prog);
	if (rc)
		return rc;
	ibc_fill(sb, 0, bytes, IBC_UINT8, IBC_OP_MAX, d->rank, d->nranks, 7);
	memset(rb, 0, bytes);
	rc = ibc_prog_run(&d->comm, &prog);
	ibc_prog_free(&prog);
	if (!rc && (!sender || lat || o->bidir) && bytes) {
		/* compare with what the peer filled: regenerate it */
		uint8_t *want = malloc(bytes);
		uint64_t k;

		if (!want)
			return -ENOMEM;
		ibc_fill(want, 0, bytes, IBC_UINT8, IBC_OP_MAX, peer, d->nranks, 7);
		for (k = 0; k < bytes; k++)
			if (want[k] != (uint8_t)rb[k]) {
				if (!rec->wrong) {
					rec->first = k;
					snprintf(rec->exp, sizeof(rec->exp), "%u", want[k]);
					snprintf(rec->got, sizeof(rec->got), "%u", (uint8_t)rb[k]);
				}
				rec->wrong++;
			}
		free(want);
	}
	if (!rc)
		rc = sr_prog(d, links, bytes, lat, sender, lat ? 1 : o->window, &prog);
	if (rc)
		return rc;
	rc = ibc_boot_barrier(d->boot);
	for (i = 0; i < total && !rc; i++) {
		uint64_t t0 = ibc_now_ns();

		rc = ibc_prog_run(&d->comm, &prog);
		if (i >= o->warmup)
			rec->times[i - o->warmup] = (double)(ibc_now_ns() - t0) / 1e3;
	}
	if (!rc) /* as for all-reduce: nobody moves on while a pair still times */
		rc = ibc_boot_barrier(d->boot);
	ibc_prog_free(&prog);
	return rc;
}

static int run_sendrecv(struct drv *d)
{
	const struct drv_opts *o = d->o;
	uint64_t sizes[MAX_SIZES];
	int nsizes = size_list(o, sizes), si, mode;
	size_t reclen = sizeof(struct rank_rec) + sizeof(double) * (size_t)o->iters;
	struct rank_rec *rec = malloc(reclen);
	int exit_code = 0;

	if (!rec)
		return IBC_EXIT_ENV;
	if (d->nranks < 2) {
		ibc_log("sendrecv needs at least 2 ranks (use --np 2 or a launcher)");
		free(rec);
		return IBC_EXIT_USAGE;
	}
	if (d->rank == 0) {
		printf("#  pairs: rank i <-> rank i+%d%s, window %ld\n", d->nranks / 2,
		       o->bidir ? " (bidirectional)" : "", o->window);
		printf("#  %10s %10s %10s %9s %9s %9s %7s\n", "size", "bw", "bw", "lat_p50",
		       "lat_p99", "lat_max", "#wrong");
		printf("#  %10s %10s %10s %9s %9s %9s %7s\n", "(B)", "(GB/s)", "(Gb/s)", "(us)",
		       "(us)", "(us)", "");
	}
	for (si = 0; si < nsizes; si++) {
		double gbps = 0;
		struct stats stl = { 0 };
		uint64_t wrong = 0;

		for (mode = 0; mode < 2; mode++) { /* 0 bandwidth, 1 latency */
			char *all = NULL, wr[256] = "";
			struct stats st;
			int rc, r;
			size_t n = 0;
			struct row row;
			double algbw;

			memset(rec, 0, reclen);
			rc = sr_measure(d, sizes[si], mode == 1, rec);
			rec->rc = rc;
			if (rc) {
				free(rec);
				return report_failure(d, rc);
			}
			rc = gather_rec(d, rec, reclen, &all);
			if (rc) {
				free(rec);
				free(all);
				return report_failure(d, rc);
			}
			if (d->rank != 0)
				continue;
			{
				double *times = malloc(sizeof(double) * (size_t)o->iters *
						       (size_t)d->nranks);

				if (!times) {
					free(all);
					free(rec);
					return IBC_EXIT_ENV;
				}
				for (r = 0; r < d->nranks; r++) {
					struct rank_rec *x = (void *)(all + (size_t)r * reclen);

					memcpy(times + (size_t)r * (size_t)o->iters, x->times,
					       sizeof(double) * (size_t)o->iters);
					if (x->wrong) {
						wrong += x->wrong;
						n += (size_t)snprintf(wr + n, sizeof(wr) - n, "%s%d",
								      n ? ";" : "", r);
						if (n >= sizeof(wr))
							n = sizeof(wr) - 1;
						ibc_log("wrong data: rank %d (host %s) received %llu "
							"wrong bytes of %llu, first at %llu: expected "
							"%s, got %s",
							r, ibc_boot_host(d->boot, r),
							(unsigned long long)x->wrong,
							(unsigned long long)sizes[si],
							(unsigned long long)x->first, x->exp, x->got);
					}
				}
				compute_stats(times, d->nranks, (int)o->iters, &st);
				free(times);
			}
			if (mode == 1) {
				/* half round trip */
				st.mean /= 2;
				st.min /= 2;
				st.p50 /= 2;
				st.p99 /= 2;
				st.max /= 2;
				stl = st;
				algbw = st.mean > 0 ? (double)sizes[si] / st.mean / 1e3 : 0;
			} else {
				algbw = st.mean > 0 ? (double)sizes[si] * (double)o->window *
							      (o->bidir ? 2 : 1) / st.mean / 1e3
						    : 0;
				gbps = algbw;
			}
			d->wrong_total += wrong;
			row = (struct row){ "sendrecv",
					    mode ? "pingpong" : (o->bidir ? "bidir" : "stream"),
					    IBC_UINT8,
					    IBC_OP_SUM,
					    PLACE_OUT,
					    sizes[si],
					    sizes[si],
					    &st,
					    algbw,
					    algbw,
					    wrong,
					    wr,
					    wrong ? "wrong" : "ok",
					    1 };
			if (write_row(d, &row))
				exit_code = IBC_EXIT_ENV;
			free(all);
		}
		if (d->rank == 0) {
			printf("   %10llu %10.3f %10.2f %9.2f %9.2f %9.2f %7llu\n",
			       (unsigned long long)sizes[si], gbps, gbps * 8, stl.p50, stl.p99,
			       stl.max, (unsigned long long)wrong);
			fflush(stdout);
		}
	}
	free(rec);
	if (d->rank == 0)
		printf("# Report: %s/results.csv\n#\n", o->outdir);
	if (!exit_code && d->wrong_total)
		exit_code = IBC_EXIT_CHECK;
	return exit_code;
}

/* ------------------------------------------------------------------ per rank */

static int pick_transport(struct drv *d)
{
	const char *name = d->o->transport;
	int rc;

	if (!name || strcmp(name, "auto") == 0)
		name = d->nnodes > 1 ? "tcp" : "shm";
	rc = ibc_tp_lookup(name, &d->ops);
	if (rc) {
		if (d->rank == 0)
			ibc_log("%s", ibc_err_get());
		return rc;
	}
	if (strcmp(d->ops->name, "shm") == 0 && d->nnodes > 1) {
		if (d->rank == 0)
			ibc_log("the shm transport moves data between ranks of one host, but this "
				"job spans %d hosts: use --transport tcp or verbs",
				d->nnodes);
		return -EINVAL;
	}
	return 0;
}

static int rank_main(const struct ibc_rank_ctx *rc_, void *arg)
{
	const struct drv_opts *o = arg;
	struct ibc_boot_env env;
	struct ibc_boot_opts bo = { .root_fd = -1, .timeout_ms = (int)o->timeout_s * 1000 };
	struct drv d = { .o = o };
	struct host_rec me, *hosts = NULL;
	int rc, code = IBC_EXIT_ENV, i;
	size_t maxbytes;

	if (rc_) {
		bo.rank = rc_->rank;
		bo.nranks = rc_->nranks;
		bo.root = rc_->root;
		bo.root_fd = rc_->root_fd;
		bo.job_id = rc_->job_id;
		bo.abort_flag = &rc_->job->abort;
		d.job = rc_->job;
	} else {
		if (ibc_boot_env_detect(&env)) {
			ibc_log("%s", ibc_err_get());
			return IBC_EXIT_USAGE;
		}
		bo.rank = env.rank;
		bo.nranks = env.nranks;
		bo.root = env.root[0] ? env.root : NULL;
		bo.job_id = env.job_id[0] ? env.job_id : NULL;
	}
	ibc_log_set_rank(bo.rank);
	if (ibc_boot_init(&bo, &d.boot)) {
		ibc_log("%s", ibc_err_get());
		return IBC_EXIT_ENV;
	}
	d.rank = ibc_boot_rank(d.boot);
	d.nranks = ibc_boot_nranks(d.boot);
	d.progress = d.rank == 0 && isatty(STDERR_FILENO);
	d.nnodes = ibc_boot_nnodes(d.boot);
	/* rank 0's run id, start time and report directory hold for everyone */
	{
		struct drv_opts *mo = (struct drv_opts *)o; /* this process's private copy */
		char shared[20 + 32 + 512];

		memcpy(shared, mo->run_id, 20);
		memcpy(shared + 20, mo->started, 32);
		memcpy(shared + 52, mo->outdir, 512);
		if (ibc_boot_bcast(d.boot, shared, sizeof(shared))) {
			ibc_log("%s", ibc_err_get());
			goto out_boot;
		}
		memcpy(mo->run_id, shared, 20);
		memcpy(mo->started, shared + 20, 32);
		memcpy(mo->outdir, shared + 52, 512);
	}
	topo_facts(&d, &me);
	if (d.rank == 0) {
		hosts = calloc((size_t)d.nranks, sizeof(*hosts));
		if (!hosts)
			goto out_boot;
	}
	if (ibc_boot_gather(d.boot, &me, hosts, sizeof(me))) {
		ibc_log("%s", ibc_err_get());
		goto out_boot;
	}
	d.ranks_per_node = me.local_size;
	if (d.rank == 0)
		for (i = 0; i < d.nranks; i++)
			d.ranks_per_node = IBC_MAX(d.ranks_per_node, hosts[i].local_size);

	if (strcmp(o->mem, "host") != 0) {
		rc = ibc_mem_lookup(o->mem, &d.mem);
		if (!rc)
			rc = ibc_mem_open(d.mem, me.local_rank, (int)o->gpu, &d.memctx);
		if (rc) {
			ibc_log("rank %d (host %s): %s", d.rank, ibc_hostname(), ibc_err_get());
			d.memctx = NULL;
			goto out_boot;
		}
		if (o->sendrecv) {
			ibc_log("sendrecv measures host memory only for now; drop --mem %s", o->mem);
			code = IBC_EXIT_USAGE;
			goto out_mem;
		}
	}
	rc = pick_transport(&d);
	if (rc) {
		code = rc == -EINVAL ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
		goto out_mem;
	}
	{
		struct ibc_comm_opts co = {
			.ops = d.ops,
			.timeout_ms = (int)o->timeout_s * 1000,
			.abort_flag = bo.abort_flag,
			.depth = (int)o->depth,
			.max_chunk = o->chunk ? (size_t)o->chunk : (1u << 20),
		};

		char paired[96] = "";

		co.mem = d.mem;
		co.memctx = d.memctx;
		co.cfg.nic = o->nic;
		/* verbs/gdr without --nic: the NIC the topology paired with this rank's GPU */
		if (!o->nic && me.nic[0] && (!strcmp(d.ops->name, "verbs") || !strcmp(d.ops->name, "gdr"))) {
			if (me.nic_port > 0)
				snprintf(paired, sizeof(paired), "%s:%d", me.nic, me.nic_port);
			else
				snprintf(paired, sizeof(paired), "%s", me.nic);
			co.cfg.nic = paired;
		}
		co.cfg.gid_index = (int)o->gid_index;
		co.cfg.qps = (int)o->qps;
		rc = ibc_comm_init(&d.comm, d.boot, &co);
		if (rc) {
			ibc_log("%s", ibc_err_get());
			goto out_mem;
		}
	}
	if (d.rank == 0) {
		printf("# ibcoll %s %s: %d rank(s) on %d host(s), transport %s (%s), channels %ld, "
		       "iters %ld, warmup %ld, check %ld\n",
		       IBC_VERSION, o->sendrecv ? "sendrecv" : "allreduce", d.nranks, d.nnodes,
		       d.ops->name, d.comm.props.name, o->channels, o->iters, o->warmup, o->check);
		printf("# run_id %s, started %s\n", o->run_id, o->started);
		for (i = 0; i < d.nranks; i++)
			printf("#  rank %3d  pid %7d  host %-16s  cpus %-12s nic %-10s gpu %s\n", i,
			       ibc_boot_pid(d.boot, i), ibc_boot_host(d.boot, i),
			       hosts[i].cpus[0] ? hosts[i].cpus : "-",
			       hosts[i].nic[0] ? hosts[i].nic : "-",
			       hosts[i].gpu[0] ? hosts[i].gpu : "-");
		fflush(stdout);
		/* without both reports the run would be unrecorded: stop every rank (exit 3) */
		if (open_results(&d) || write_hosts(&d, hosts)) {
			rpt_csv_close(d.csv);
			d.csv = NULL;
		}
	}
	/* everyone learns whether rank 0 could open its reports */
	{
		int32_t ok = d.rank == 0 ? (d.csv != NULL) : 0;

		if (ibc_boot_bcast(d.boot, &ok, sizeof(ok)) || !ok)
			goto out_comm;
	}
	maxbytes = (size_t)o->maxb;
	if (ibc_comm_alloc_user(&d.comm, maxbytes, &d.in) ||
	    ibc_comm_alloc_user(&d.comm, maxbytes, &d.out)) {
		ibc_log("cannot allocate 2 x %zu bytes: %s", maxbytes, ibc_err_get());
		goto out_bufs;
	}
	if (o->nalgo && !o->sendrecv)
		for (i = 0; i < o->nalgo; i++)
			if (o->algo[i] == IBC_ALGO_MPI && ibc_mpi_init(d.rank, d.nranks)) {
				ibc_log("%s", ibc_err_get());
				goto out_bufs;
			}
	code = o->sendrecv ? run_sendrecv(&d) : run_allreduce(&d);
out_bufs:
	ibc_comm_free(&d.comm, &d.out);
	ibc_comm_free(&d.comm, &d.in);
out_comm:
	rpt_csv_close(d.csv);
	if (code != IBC_EXIT_ENV)
		ibc_boot_barrier(d.boot); /* nobody tears down while a peer still reads */
	ibc_comm_fini(&d.comm);
out_mem:
	if (d.memctx)
		d.mem->fini(d.memctx);
out_boot:
	free(hosts);
	ibc_boot_fini(d.boot);
	fflush(stdout);
	return code;
}

static void stamp(struct drv_opts *o)
{
	time_t now = time(NULL);
	struct tm tm;
	char ts[32];

	ibc_new_id(o->run_id, sizeof(o->run_id));
	gmtime_r(&now, &tm);
	strftime(o->started, sizeof(o->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	if (o->out)
		snprintf(o->outdir, sizeof(o->outdir), "%s", o->out);
	else
		snprintf(o->outdir, sizeof(o->outdir), "ibcoll-results/%s-%s", ts, o->run_id);
}

static int bench_main(int argc, char **argv, bool sendrecv)
{
	struct drv_opts o = { .sendrecv = sendrecv };
	struct ibc_boot_env env;
	const struct ibc_tp_ops *ops;
	char path[600];
	int rc = parse_opts(argc, argv, &o);

	if (rc < 0)
		return 0; /* --help */
	if (rc)
		return rc;
	if (sendrecv)
		o.nalgo = 0;
	if (o.transport && strcmp(o.transport, "auto") && ibc_tp_lookup(o.transport, &ops)) {
		fprintf(stderr, "ibcoll: --transport: %s\n", ibc_err_get());
		return strchr(o.transport, '/') ? IBC_EXIT_ENV : IBC_EXIT_USAGE;
	}
	if (o.out && strlen(o.out) > 400)
		return usage_err(&o, "--out: path too long");
	stamp(&o);
	snprintf(path, sizeof(path), "%s/results.csv", o.outdir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr,
			"ibcoll: --out %s already holds results.csv: ibcoll never overwrites a report; "
			"choose another directory\n",
			o.outdir);
		return IBC_EXIT_USAGE;
	}
	if (ibc_boot_env_detect(&env)) {
		fprintf(stderr, "ibcoll: %s\n", ibc_err_get());
		return IBC_EXIT_USAGE;
	}
	if (env.nranks > 1 && strcmp(env.source, "ibcoll") != 0) {
		if (o.np_set && o.np != env.nranks) {
			fprintf(stderr,
				"ibcoll: --np %ld conflicts with the launcher's %d ranks (%s): drop "
				"--np under mpirun/srun\n",
				o.np, env.nranks, env.source);
			return IBC_EXIT_USAGE;
		}
		return rank_main(NULL, &o);
	}
	if (env.nranks > 1) /* a rank of ibcoll's own launcher, re-executed */
		return rank_main(NULL, &o);
	return ibc_launch_local((int)o.np, rank_main, &o, (int)o.timeout_s * 1000 + 5000);
}

int ibc_allreduce_main(int argc, char **argv)
{
	return bench_main(argc, argv, false);
}

int ibc_sendrecv_main(int argc, char **argv)
{
	return bench_main(argc, argv, true);
}
