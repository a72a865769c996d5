/* SPDX-License-Identifier: MIT */
/*
 * opts.c - options of `ibcoll allreduce` and `ibcoll sendrecv`: the usage texts, parsing into
 * the per-concern config structs of opts.h (each value checked as it is parsed, never narrowed
 * before the check), and the checks across flags after parsing.
 */
#include "opts.h"
#include "cmd_compare.h"
#include "verdict.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "opts_msg.h"
#include "mpi_algo.h"
#include "topo.h"
#include "transport.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOT_MINE 1 /* a group parser's answer for a flag of another group */

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
		"      --nic LIST         devices[:port] (verbs, gdr: mlx5_0:1,...; port 1..255) or\n"
		"                         interfaces or IP addresses (tcp: eth0, 10.0.0.1)\n"
		"      --gid-index N      RoCE GID index (default automatic)\n"
		"      --qps N            queue pairs per connection (verbs, default 1)\n"
		"      --mem KIND         host (default) or cuda (GPU buffers; staged through host\n"
		"                         memory unless the transport is gdr)\n"
		"      --gpu N            GPU ordinal (default: local rank modulo GPUs)\n"
		"      --topology-xml F   use an hwloc XML file instead of the live machine\n"
		"      --bind MODE        auto (GPU ranks to their NUMA node; else one core block\n"
		"                         per rank unless ranks outnumber cores), on, off\n"
		"      --timeout SEC      bound for every wait (default 60)\n"
		"      --require-auth     fail (exit 2) when a job of several ranks has no job key\n"
		"                         (IBCOLL_JOB_KEY or IBCOLL_JOB_KEY_FILE; --np makes one)\n"
		"      --out DIR          report directory (default ibcoll-results/<time>-<run_id>)\n"
		"      --baseline DIR     at the end compare with that run as `ibcoll compare DIR\n"
		"                         <this run>` does (compare.csv, findings.csv; exit 1 on a\n"
		"                         regression)\n"
		"      --tolerance PCT    allowed slowdown against --baseline (default 5%%)\n"
		"      --expect-busbw SIZE=GB/s[,...]  every row of SIZE must reach that busbw\n"
		"      --expect-file F    thresholds: CSV collective,algo,transport,bytes,\n"
		"                         min_busbw_GBps,max_time_us (* = any); a row that misses\n"
		"                         one is a finding (findings.csv) and the exit code is 1\n"
		"\n"
		"exit codes: 0 ok, 1 wrong results or a regression against --baseline, 2 usage\n"
		"error, 3 environment or runtime failure\n",
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

void bench__usage(const struct bench_opts *o, FILE *f)
{
	if (o->sendrecv)
		usage_sendrecv(f);
	else
		usage_allreduce(f);
}

int bench__usage_err(const struct bench_opts *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ibcoll %s: ", o->sendrecv ? "sendrecv" : "allreduce");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'ibcoll %s --help')\n", o->sendrecv ? "sendrecv" : "allreduce");
	return -EINVAL;
}

/* ------------------------------------------------------------------ one value */

static int parse_size_opt(const struct bench_opts *o, const char *flag, const char *v,
			  uint64_t *out)
{
	int rc = ibc_parse_size(v, out);

	if (rc == -ERANGE)
		return bench__usage_err(o, "%s '%s': size out of range", flag, v);
	if (rc)
		return bench__usage_err(o,
					"%s '%s': not a size (a non-negative number with an "
					"optional K, M, G or T suffix, e.g. 64K)",
					flag, v);
	return 0;
}

static int parse_long_opt(const struct bench_opts *o, const char *flag, const char *v, long min,
			  long max, long *out)
{
	int rc = ibc_parse_int(v, min, max, out);

	if (rc)
		return bench__usage_err(o, "%s '%s': expected an integer from %ld to %ld", flag, v,
					min, max);
	return 0;
}

/* A comma-separated list of names into items (duplicates dropped, at most max). */
static int parse_list(const struct bench_opts *o, const char *flag, const char *v, int max,
		      int (*one)(const char *, int *), const char *valid, int *items, int *n)
{
	const char *it[32];
	char *store;
	int k = ibc_split_list(v, &store, it, 32), i, j;

	if (k < 0)
		return bench__usage_err(o, "%s '%s': expected a comma-separated list of %s", flag,
					v, valid);
	*n = 0;
	for (i = 0; i < k; i++) {
		int x;

		if (one(it[i], &x)) {
			bench__usage_err(o, "%s: unknown value '%s' (valid: %s)", flag, it[i],
					 valid);
			free(store);
			return -EINVAL;
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
		*x = BENCH_PLACE_OUT;
	else if (strcmp(s, "in") == 0)
		*x = BENCH_PLACE_IN;
	else
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ --nic */

#define NIC_FORM                                                                                  \
	"a comma-separated list of DEVICE[:PORT] (verbs, gdr: mlx5_0:1, port 1..255), "        \
	"interface names or IP addresses (tcp: eth0, 10.0.0.1)"
#define NIC_NAME_MAX 63 /* IB device names are up to 64 bytes with the NUL, interfaces 16 */

/* Why one --nic item is malformed, or NULL. Only the syntax: whether the device exists is the
 * transport's to say, when it looks (exit 3, listing what there is). */
static const char *nic_item_error(const char *item, char *why, size_t len)
{
	const char *colon = strchr(item, ':');
	size_t n = colon ? (size_t)(colon - item) : strlen(item), i;
	unsigned char a6[16];
	long port;

	if (inet_pton(AF_INET, item, a6) == 1 || inet_pton(AF_INET6, item, a6) == 1)
		return NULL; /* tcp takes addresses, IPv6 ones with colons */
	if (n == 0)
		return "an empty name";
	if (n > NIC_NAME_MAX)
		return "a name longer than 63 characters";
	if ((n == 1 && item[0] == '.') || (n == 2 && !strncmp(item, "..", 2)))
		return "'.' and '..' name no device";
	for (i = 0; i < n; i++) {
		if (!isgraph((unsigned char)item[i]) || item[i] == '/') {
			snprintf(why, len, "character %zu (0x%02x) cannot be in a device or interface "
				 "name", i + 1, (unsigned char)item[i]);
			return why;
		}
	}
	if (colon && ibc_parse_int(colon + 1, 1, 255, &port)) {
		snprintf(why, len, "port '%s' is not a number from 1 to 255", colon + 1);
		return why;
	}
	return NULL;
}

static int parse_nic(struct bench_opts *o, const char *v)
{
	const char *items[32], *e;
	char *store, why[96];
	int n = ibc_split_list(v, &store, items, 32), i;

	if (n == -E2BIG)
		return bench__usage_err(o, "--nic '%s': at most 32 items", v);
	if (n < 0)
		return bench__usage_err(o, "--nic '%s': empty item; expected %s", v, NIC_FORM);
	for (i = 0; i < n; i++) {
		e = nic_item_error(items[i], why, sizeof(why));
		if (e) {
			bench__usage_err(o, "--nic '%s': item '%s': %s; expected %s", v, items[i],
					 e, NIC_FORM);
			free(store);
			return -EINVAL;
		}
	}
	free(store);
	o->tp.nic = v;
	return 0;
}

/* ------------------------------------------------------------------ the flags */

enum {
	O_ALGO = 256,
	O_NP,
	O_TRANSPORT,
	O_CHANNELS,
	O_CHUNK,
	O_TIMEOUT,
	O_OUT,
	O_BASELINE,
	O_EXPECT_BUSBW,
	O_EXPECT_FILE,
	O_TOLERANCE,
	O_NIC,
	O_GID,
	O_QPS,
	O_MEM,
	O_TOPO,
	O_DEPTH,
	O_PLACE,
	O_BIDIR,
	O_REQUIRE_AUTH,
	O_WINDOW,
	O_BIND,
	O_GPU,
};

static const struct option long_opts[] = {
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
	{ "baseline", required_argument, NULL, O_BASELINE },
	{ "expect-busbw", required_argument, NULL, O_EXPECT_BUSBW },
	{ "expect-file", required_argument, NULL, O_EXPECT_FILE },
	{ "tolerance", required_argument, NULL, O_TOLERANCE },
	{ "nic", required_argument, NULL, O_NIC },
	{ "gid-index", required_argument, NULL, O_GID },
	{ "qps", required_argument, NULL, O_QPS },
	{ "mem", required_argument, NULL, O_MEM },
	{ "topology-xml", required_argument, NULL, O_TOPO },
	{ "depth", required_argument, NULL, O_DEPTH },
	{ "placement", required_argument, NULL, O_PLACE },
	{ "bidir", no_argument, NULL, O_BIDIR },
	{ "require-auth", no_argument, NULL, O_REQUIRE_AUTH },
	{ "window", required_argument, NULL, O_WINDOW },
	{ "bind", required_argument, NULL, O_BIND },
	{ "gpu", required_argument, NULL, O_GPU },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* Which step rule was given: -f and -i exclude each other. */
struct step_flags {
	bool f_set, i_set;
};

static int default_np(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return (int)IBC_MIN(IBC_MAX(n, 2), 8);
}

static void set_defaults(struct bench_opts *o, bool sendrecv)
{
	memset(o, 0, sizeof(*o));
	o->sendrecv = sendrecv;
	o->sweep = (struct bench_sweep_cfg){
		.minb = 8, .maxb = 32ull << 20, .stepf = 2, .iters = 20, .warmup = 5, .check = 1
	};
	o->coll.dt[0] = IBC_FLOAT;
	o->coll.ndt = 1;
	o->coll.op[0] = IBC_OP_SUM;
	o->coll.nop = 1;
	o->coll.algo[0] = IBC_ALGO_RING;
	o->coll.algo[1] = IBC_ALGO_TREE;
	o->coll.nalgo = 2;
	o->coll.place[BENCH_PLACE_OUT] = o->coll.place[BENCH_PLACE_IN] = true;
	o->coll.channels = 2;
	o->sr.window = 16;
	o->report.tolerance = 0.05;
	o->tp = (struct bench_tp_cfg){ .depth = 4, .qps = 1, .gid_index = -1, .mem = "host",
				       .gpu = -1 };
	o->launch = (struct bench_launch_cfg){ .np = default_np(), .timeout_s = 60,
					       .bind = "auto" };
}

static int parse_sweep(struct bench_opts *o, int c, const char *v, struct step_flags *sf)
{
	struct bench_sweep_cfg *s = &o->sweep;
	long f;
	int rc;

	switch (c) {
	case 'b': return parse_size_opt(o, "-b", v, &s->minb);
	case 'e': return parse_size_opt(o, "-e", v, &s->maxb);
	case 'f':
		sf->f_set = true;
		rc = parse_long_opt(o, "-f", v, 2, 1 << 20, &f);
		if (!rc)
			s->stepf = (uint64_t)f;
		return rc;
	case 'i':
		sf->i_set = true;
		rc = parse_size_opt(o, "-i", v, &s->stepi);
		if (!rc && s->stepi == 0)
			rc = bench__usage_err(o, "-i '%s': the step must be at least 1 byte", v);
		return rc;
	case 'n': return parse_long_opt(o, "-n", v, 1, BENCH_MAX_ITERS, &s->iters);
	case 'w': return parse_long_opt(o, "-w", v, 0, BENCH_MAX_ITERS, &s->warmup);
	case 'c': return parse_long_opt(o, "-c", v, 0, 1000, &s->check);
	}
	return NOT_MINE;
}

static int parse_dtypes(struct bench_opts *o, const char *v)
{
	int items[16], n, i, rc;

	if (strcmp(v, "all") == 0) { /* as nccl-tests */
		for (i = 0; i < IBC_DTYPE_COUNT; i++)
			o->coll.dt[i] = (enum ibc_dtype)i;
		o->coll.ndt = IBC_DTYPE_COUNT;
		return 0;
	}
	rc = parse_list(o, "-d", v, IBC_DTYPE_COUNT, one_dtype, ibc_dtype_names(), items, &n);
	if (rc)
		return rc;
	for (i = 0; i < n; i++)
		o->coll.dt[i] = (enum ibc_dtype)items[i];
	o->coll.ndt = n;
	return 0;
}

static int parse_ops(struct bench_opts *o, const char *v)
{
	int items[16], n, i, rc;

	if (strcmp(v, "all") == 0) {
		for (i = 0; i < IBC_OP_COUNT; i++)
			o->coll.op[i] = (enum ibc_op)i;
		o->coll.nop = IBC_OP_COUNT;
		return 0;
	}
	rc = parse_list(o, "-o", v, IBC_OP_COUNT, one_op, ibc_op_names(), items, &n);
	if (rc)
		return rc;
	for (i = 0; i < n; i++)
		o->coll.op[i] = (enum ibc_op)items[i];
	o->coll.nop = n;
	return 0;
}

static int parse_algos(struct bench_opts *o, const char *v)
{
	const char *valid = ibc_mpi_available()
				? "ring, tree, rd, rhd, mpi"
				: "ring, tree, rd, rhd (mpi: this build has no MPI)";
	int items[16], n, i, rc;

	rc = parse_list(o, "--algo", v, IBC_ALGO_COUNT, one_algo, valid, items, &n);
	if (rc)
		return rc;
	for (i = 0; i < n; i++)
		o->coll.algo[i] = (enum ibc_algo)items[i];
	o->coll.nalgo = n;
	return 0;
}

static int parse_placement(struct bench_opts *o, const char *v)
{
	int items[16], n, i, rc;

	rc = parse_list(o, "--placement", v, BENCH_PLACE_COUNT, one_place, "out, in", items, &n);
	if (rc)
		return rc;
	o->coll.place[BENCH_PLACE_OUT] = o->coll.place[BENCH_PLACE_IN] = false;
	for (i = 0; i < n; i++)
		o->coll.place[items[i]] = true;
	return 0;
}

static int parse_coll(struct bench_opts *o, int c, const char *v)
{
	struct bench_coll_cfg *cc = &o->coll;
	int rc;

	switch (c) {
	case 'd': return parse_dtypes(o, v);
	case 'o': return parse_ops(o, v);
	case O_ALGO: return parse_algos(o, v);
	case O_PLACE: return parse_placement(o, v);
	case O_CHANNELS:
		cc->channels_set = true;
		return parse_long_opt(o, "--channels", v, 1, IBC_MAX_CHANNELS, &cc->channels);
	case O_CHUNK:
		rc = parse_size_opt(o, "--chunk", v, &cc->chunk);
		if (!rc && (cc->chunk < 64 || cc->chunk > (64ull << 20)))
			rc = bench__usage_err(o, "--chunk '%s': expected 64 bytes to 64M", v);
		return rc;
	}
	return NOT_MINE;
}

static int parse_sr(struct bench_opts *o, int c, const char *v)
{
	switch (c) {
	case O_WINDOW: return parse_long_opt(o, "--window", v, 1, 1024, &o->sr.window);
	case O_BIDIR: o->sr.bidir = true; return 0;
	}
	return NOT_MINE;
}

static int parse_tp(struct bench_opts *o, int c, const char *v)
{
	struct bench_tp_cfg *tp = &o->tp;

	switch (c) {
	case O_TRANSPORT: /* auto, as no --transport: the same options on every rank */
		tp->transport = strcmp(v, "auto") ? v : NULL;
		return 0;
	case O_DEPTH: return parse_long_opt(o, "--depth", v, 1, 16, &tp->depth);
	case O_NIC: return parse_nic(o, v);
	case O_GID: return parse_long_opt(o, "--gid-index", v, 0, 255, &tp->gid_index);
	case O_QPS: return parse_long_opt(o, "--qps", v, 1, 64, &tp->qps);
	case O_MEM:
		tp->mem = v;
		if (strcmp(v, "host") && strcmp(v, "cuda") && strcmp(v, "hostdev"))
			return bench__usage_err(o, "--mem '%s': expected host or cuda", v);
		return 0;
	case O_GPU: return parse_long_opt(o, "--gpu", v, 0, 1023, &tp->gpu);
	}
	return NOT_MINE;
}

static int parse_launch(struct bench_opts *o, int c, const char *v)
{
	struct bench_launch_cfg *l = &o->launch;

	switch (c) {
	case O_NP:
		l->np_set = true;
		return parse_long_opt(o, "--np", v, 1, 4096, &l->np);
	case O_TIMEOUT: return parse_long_opt(o, "--timeout", v, 1, 86400, &l->timeout_s);
	case O_TOPO: l->topo_xml = v; return 0;
	case O_BIND:
		l->bind = v;
		if (strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off"))
			return bench__usage_err(o, "--bind '%s': expected auto, on or off", v);
		return 0;
	case O_OUT:
		o->report.out = v;
		if (!*v) /* "" would put the report at the root of the file system */
			return bench__usage_err(o, "--out '': expected a directory name");
		return 0;
	case O_REQUIRE_AUTH: l->require_auth = true; return 0;
	case O_BASELINE: o->report.baseline = v; return 0;
	case O_EXPECT_BUSBW: o->report.expect_busbw = v; return 0;
	case O_EXPECT_FILE: o->report.expect_file = v; return 0;
	case O_TOLERANCE:
		if (bench_parse_tolerance(v, &o->report.tolerance))
			return bench__usage_err(o, "--tolerance '%s': give a percentage 0..1000, "
						   "e.g. 5 or 5%%", v);
		return 0;
	}
	return NOT_MINE;
}

/* A flag of the other command (sendrecv has no dtypes, ops or algorithms; allreduce no
 * window): refused rather than silently ignored. */
static int check_command(const struct bench_opts *o, int c)
{
	static const int ar_only[] = { 'c', 'd', 'o', O_ALGO, O_PLACE, O_CHANNELS, O_CHUNK };
	const struct option *lo;
	char name[32];
	bool other = !o->sendrecv && (c == O_WINDOW || c == O_BIDIR);
	size_t i;

	for (i = 0; o->sendrecv && i < IBC_ARRAY_SIZE(ar_only); i++)
		other |= c == ar_only[i];
	if (!other)
		return 0;
	snprintf(name, sizeof(name), "-%c", c);
	for (lo = long_opts; lo->name; lo++)
		if (lo->val == c && c >= 256)
			snprintf(name, sizeof(name), "--%s", lo->name);
	return bench__usage_err(o, "%s applies to 'ibcoll %s' only", name,
				o->sendrecv ? "allreduce" : "sendrecv");
}

/* One flag c with its value v: 0, -EINVAL (message printed), NOT_MINE (not a flag). */
static int parse_one(struct bench_opts *o, int c, const char *v, struct step_flags *sf)
{
	int rc = check_command(o, c);

	if (!rc)
		rc = parse_sweep(o, c, v, sf);
	if (rc == NOT_MINE)
		rc = parse_coll(o, c, v);
	if (rc == NOT_MINE)
		rc = parse_sr(o, c, v);
	if (rc == NOT_MINE)
		rc = parse_tp(o, c, v);
	if (rc == NOT_MINE)
		rc = parse_launch(o, c, v);
	return rc;
}

int bench__opts_parse(int argc, char **argv, bool sendrecv, struct bench_opts *o)
{
	struct step_flags sf = { 0 };
	int c, rc;

	set_defaults(o, sendrecv);
	optind = 0; /* glibc: a full restart, also of a cluster ("-hn5") an earlier parse left */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:e:f:i:n:w:c:d:o:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			bench__usage(o, stdout);
			o->help = true;
			return 0;
		}
		if (c == ':')
			return bench__usage_err(o, "option %s needs a value", argv[optind - 1]);
		rc = parse_one(o, c, optarg, &sf);
		if (rc == NOT_MINE)
			return bench__usage_err(o, "unknown option '%s'", argv[optind - 1]);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return bench__usage_err(o, "unexpected argument '%s'", argv[optind]);
	if (sf.f_set && sf.i_set)
		return bench__usage_err(o, "-f and -i exclude each other: give one step rule");
	if (sf.i_set)
		o->sweep.stepf = 0;
	if (sendrecv)
		o->coll.nalgo = 0;
	return 0;
}

/* ------------------------------------------------------------------ after parsing */

static int validate_sweep(const struct bench_opts *o)
{
	const struct bench_sweep_cfg *s = &o->sweep;

	if (s->maxb < s->minb)
		return bench__usage_err(o, "-e (%llu bytes) is below -b (%llu bytes)",
					(unsigned long long)s->maxb, (unsigned long long)s->minb);
	if (s->maxb > (16ull << 30))
		return bench__usage_err(o, "-e: at most 16G per rank");
	if (s->minb == 0 && s->stepf && s->maxb > 0)
		return bench__usage_err(o, "-b 0 with -f never grows: use -b 1 or larger, or -i");
	return 0;
}

/* Flags that exclude each other or a job shape: found here, before anything is written. */
static int validate_combos(const struct bench_opts *o)
{
	int i;

	if (o->sendrecv && strcmp(o->tp.mem, "host"))
		return bench__usage_err(o, "--mem %s: sendrecv measures host memory only for now; "
					"drop --mem", o->tp.mem);
	for (i = 0; i < o->coll.nalgo; i++) {
		enum ibc_algo a = o->coll.algo[i];

		if ((a == IBC_ALGO_RD || a == IBC_ALGO_RHD) && strcmp(o->tp.mem, "host"))
			return bench__usage_err(o, "--algo %s runs on host memory only: drop "
						"--mem %s or choose --algo ring,tree",
						ibc_algo_name(a), o->tp.mem);
	}
	return 0;
}

/* The --topology-xml file is loaded once here so a missing or malformed one is a usage error
 * (exit 2) before any report exists, not a warning on every rank. */
static int validate_topo_xml(const struct bench_opts *o)
{
	struct topo *t = NULL;

	if (!o->launch.topo_xml)
		return 0;
	if (topo_load(o->launch.topo_xml, &t))
		return bench__usage_err(o, "--topology-xml '%s': %s", o->launch.topo_xml,
					ibc_err_get());
	topo_destroy(t);
	return 0;
}

void bench__opts_free(struct bench_opts *o)
{
	bench__verdict_release(o);
}

int bench__opts_validate(struct bench_opts *o)
{
	const char *tp = o->tp.transport;
	const struct ibc_tp_ops *ops;
	struct stat st;
	int rc = validate_sweep(o);

	rc = rc ? rc : validate_combos(o);
	rc = rc ? rc : validate_topo_xml(o);
	if (rc)
		return rc;
	if (tp) { /* NULL: auto */
		rc = ibc_tp_lookup(tp, &ops);
		/* an unknown name or a plugin file that is not there: usage; a plugin that is
		 * there but does not load (missing library, other ABI): environment */
		if (rc) {
			fprintf(stderr, "ibcoll: --transport: %s\n", ibc_err_get());
			return rc == -ENOENT ? -EINVAL : -ENOEXEC;
		}
	}
	if (o->report.out && strlen(o->report.out) > 400)
		return bench__usage_err(o, "--out: path too long");
	if (o->report.out && stat(o->report.out, &st) == 0 && !S_ISDIR(st.st_mode))
		return bench__usage_err(o, "--out '%s': exists and is not a directory",
					o->report.out);
	if (tp && strlen(tp) > BENCH_TRANSPORT_MAX) /* the options message has room for this */
		return bench__usage_err(o, "--transport: path too long");
	return bench__verdict_validate(o); /* last: what it loads stays for the run */
}

int bench__sweep_sizes(const struct bench_sweep_cfg *s, uint64_t *sizes)
{
	uint64_t b = s->minb;
	int n = 0;

	while (b <= s->maxb && n < BENCH_MAX_SIZES) {
		sizes[n++] = b;
		if (s->stepf) {
			if (b > s->maxb / s->stepf)
				break;
			b *= s->stepf;
		} else {
			if (b > s->maxb - s->stepi)
				break;
			b += s->stepi;
		}
	}
	return n;
}
