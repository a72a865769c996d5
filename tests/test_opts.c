/* SPDX-License-Identifier: MIT */
/*
 * test_opts.c - the options message of bench/opts_msg.h: every field survives a round trip;
 * a message truncated at any byte offset, oversized, with a wrong magic, an unknown version or
 * a malformed field is refused with a message (never a crash); the comparison names the field
 * that differs and ignores rank 0's stamp; options parsed from a command line round-trip.
 */
#include "ibc_common.h"
#include "opts.h"
#include "opts_msg.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* Options with no field at its default, every list and string non-trivial. */
static void sample(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->sendrecv = true;
	o->sweep = (struct bench_sweep_cfg){ .minb = 3, .maxb = 123456789012ull, .stepf = 0,
					     .stepi = 77, .iters = 12345, .warmup = -6,
					     .check = 7 };
	o->coll.dt[0] = IBC_INT8;
	o->coll.dt[1] = IBC_DOUBLE;
	o->coll.dt[2] = IBC_HALF;
	o->coll.ndt = 3;
	o->coll.op[0] = IBC_OP_MAX;
	o->coll.op[1] = IBC_OP_SUM;
	o->coll.nop = 2;
	o->coll.algo[0] = IBC_ALGO_RHD;
	o->coll.algo[1] = IBC_ALGO_RING;
	o->coll.algo[2] = IBC_ALGO_RD;
	o->coll.nalgo = 3;
	o->coll.place[BENCH_PLACE_OUT] = false;
	o->coll.place[BENCH_PLACE_IN] = true;
	o->coll.channels = 5;
	o->coll.channels_set = true;
	o->coll.chunk = 4096;
	o->sr.window = 33;
	o->sr.bidir = true;
	o->tp.transport = "/opt/x/libibcoll-net-foo.so";
	o->tp.depth = 3;
	o->tp.qps = 9;
	o->tp.mem = "hostdev";
	o->launch.timeout_s = 1234;
	snprintf(o->report.run_id, sizeof(o->report.run_id), "0123456789abcdef");
	snprintf(o->report.started, sizeof(o->report.started), "2026-01-02T03:04:05Z");
	snprintf(o->report.outdir, sizeof(o->report.outdir), "some/dir/with a space");
}

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void round_trip(void)
{
	struct bench_optmsg_decoded *d = malloc(sizeof(*d));
	const struct bench_opts *x = &d->opts;
	struct bench_opts o;
	uint8_t buf[BENCH_OPTMSG_MAX];
	size_t len = 0;
	int rc;

	sample(&o);
	rc = bench__optmsg_encode(&o, buf, sizeof(buf), &len);
	is_int(rc, 0, "encode");
	ok(!memcmp(buf, "IBCO", 4) && bench__get_le32(buf + 4) == BENCH_OPTMSG_VERSION &&
		   bench__get_le32(buf + 8) == len,
	   "header: magic IBCO, version %u, length %zu", BENCH_OPTMSG_VERSION, len);
	rc = bench__optmsg_decode(buf, len, d);
	is_int(rc, 0, "decode (%s)", rc ? ibc_err_get() : "ok");
	ok(x->sendrecv, "command");
	ok(x->sweep.minb == 3 && x->sweep.maxb == 123456789012ull, "-b, -e (64-bit)");
	ok(x->sweep.stepf == 0 && x->sweep.stepi == 77, "-f, -i");
	ok(x->sweep.iters == 12345 && x->sweep.warmup == -6 && x->sweep.check == 7,
	   "-n, -w (negative: two's complement), -c");
	ok(x->coll.ndt == 3 && x->coll.dt[0] == IBC_INT8 && x->coll.dt[1] == IBC_DOUBLE &&
		   x->coll.dt[2] == IBC_HALF,
	   "-d list, in order");
	ok(x->coll.nop == 2 && x->coll.op[0] == IBC_OP_MAX && x->coll.op[1] == IBC_OP_SUM,
	   "-o list, in order");
	ok(x->coll.nalgo == 3 && x->coll.algo[0] == IBC_ALGO_RHD &&
		   x->coll.algo[1] == IBC_ALGO_RING && x->coll.algo[2] == IBC_ALGO_RD,
	   "--algo list, in order");
	ok(!x->coll.place[BENCH_PLACE_OUT] && x->coll.place[BENCH_PLACE_IN], "--placement");
	ok(x->coll.channels == 5 && x->coll.channels_set && x->coll.chunk == 4096,
	   "--channels (and given), --chunk");
	ok(x->sr.window == 33 && x->sr.bidir, "--window, --bidir");
	ok(str_eq(x->tp.transport, o.tp.transport) && x->tp.depth == 3 && x->tp.qps == 9 &&
		   str_eq(x->tp.mem, "hostdev"),
	   "--transport, --depth, --qps, --mem");
	is_int(x->launch.timeout_s, 1234, "--timeout");
	ok(str_eq(x->report.run_id, o.report.run_id) &&
	       str_eq(x->report.started, o.report.started) &&
	       str_eq(x->report.outdir, o.report.outdir),
	   "stamp: run_id, started, outdir");
	ok(!x->tp.nic && x->tp.gid_index == 0 && !x->launch.topo_xml && !x->launch.np,
	   "per-rank options are not in the message");
	ok(bench__optmsg_diff(&o, x) == NULL, "the decoded options compare equal");
	free(d);
}

/* Options from a command line, as every rank parses its own. */
static void parsed(void)
{
	char *argv[] = { "allreduce", "-b", "1K", "-e", "8M", "-d", "all", "-o", "max,min",
			 "--algo", "tree", "--placement", "in", "--transport", "auto", NULL };
	char *argv2[] = { "allreduce", NULL };
	struct bench_optmsg_decoded *d = malloc(sizeof(*d));
	struct bench_opts o, p;
	uint8_t buf[BENCH_OPTMSG_MAX];
	size_t len;

	ok(!bench__opts_parse(15, argv, false, &o) && !bench__opts_validate(&o),
	   "parse a command line");
	ok(!bench__optmsg_encode(&o, buf, sizeof(buf), &len) &&
	       !bench__optmsg_decode(buf, len, d) && !bench__optmsg_diff(&o, &d->opts) &&
	       d->opts.tp.transport == NULL && d->opts.coll.ndt == IBC_DTYPE_COUNT,
	   "parsed options round-trip (--transport auto travels as absent)");
	ok(!bench__opts_parse(1, argv2, false, &p), "parse the defaults");
	ok(bench__optmsg_diff(&o, &p) && !strcmp(bench__optmsg_diff(&o, &p), "-b (minbytes)"),
	   "defaults differ from the command line first at -b");
	bench__opts_free(&o);
	free(d);
}

/* Decode a copy of exactly len bytes (so that ASan sees any read past the end); when refused,
 * the message must hold needle. */
static int decode_rc(const uint8_t *buf, size_t len, const char *needle)
{
	struct bench_optmsg_decoded *d = malloc(sizeof(*d));
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, buf, len);
	rc = bench__optmsg_decode(copy, len, d);
	free(copy);

	if (rc && needle && !strstr(ibc_err_get(), needle)) {
		diag("message '%s' lacks '%s'", ibc_err_get(), needle);
		rc = -9999;
	}
	free(d);
	return rc;
}

static void truncated(void)
{
	struct bench_opts o;
	uint8_t buf[BENCH_OPTMSG_MAX], cut[BENCH_OPTMSG_MAX];
	size_t len, k, refused = 0, refused_hdr = 0, small = 0;

	sample(&o);
	bench__optmsg_encode(&o, buf, sizeof(buf), &len);
	for (k = 0; k < len; k++)
		refused += decode_rc(buf, k, "truncated") == -EBADMSG;
	is_int(refused, len, "truncated at each of the %zu byte offsets: refused (-EBADMSG)", len);
	/* the length field rewritten to match: the field reads must catch it */
	for (k = BENCH_OPTMSG_HDR; k < len; k++) {
		memcpy(cut, buf, k);
		bench__put_le32(cut + 8, (uint32_t)k);
		refused_hdr += decode_rc(cut, k, "truncated") == -EBADMSG;
	}
	is_int(refused_hdr, len - BENCH_OPTMSG_HDR,
	       "truncated with a consistent header at every offset: refused by the field reads");
	for (k = 0; k < len; k++)
		small += bench__optmsg_encode(&o, cut, k, &(size_t){ 0 }) == -EMSGSIZE;
	is_int(small, len, "encoding into any buffer shorter than the message: -EMSGSIZE");
}

static void refused(void)
{
	struct bench_opts o;
	uint8_t buf[BENCH_OPTMSG_MAX + 16], bad[BENCH_OPTMSG_MAX + 16];
	size_t len;
	uint8_t *t;

	sample(&o);
	bench__optmsg_encode(&o, buf, sizeof(buf), &len);
	memcpy(bad, buf, len);
	bad[len] = 0;
	is_int(decode_rc(bad, len + 1, "oversized"), -EMSGSIZE, "a byte more than the header says");
	bench__put_le32(bad + 8, (uint32_t)len + 1);
	is_int(decode_rc(bad, len + 1, "after its last field"), -EMSGSIZE,
	       "a byte after the last field (header consistent)");
	bench__put_le32(bad + 8, BENCH_OPTMSG_MAX + 1);
	is_int(decode_rc(bad, BENCH_OPTMSG_MAX + 1, "limit"), -EMSGSIZE, "over BENCH_OPTMSG_MAX");

	memcpy(bad, buf, len);
	bad[0] ^= 0x20;
	is_int(decode_rc(bad, len, "magic"), -EPROTO, "wrong magic: -EPROTO, named");
	memcpy(bad, buf, len);
	bench__put_le32(bad + 4, 2);
	is_int(decode_rc(bad, len, "version 2"), -EPROTONOSUPPORT,
	       "unknown version: -EPROTONOSUPPORT, named");
	bench__put_le32(bad + 4, 0);
	is_int(decode_rc(bad, len, "version 0"), -EPROTONOSUPPORT, "version 0: refused");

	/* fields: command bool at 12; -d count at 69, its first value at 73 */
	memcpy(bad, buf, len);
	bad[12] = 2;
	is_int(decode_rc(bad, len, "command"), -EBADMSG, "a bool that is neither 0 nor 1");
	memcpy(bad, buf, len);
	bench__put_le32(bad + 69, IBC_DTYPE_COUNT + 1);
	is_int(decode_rc(bad, len, "-d (datatype)"), -EBADMSG,
	       "a list longer than the option allows");
	memcpy(bad, buf, len);
	bench__put_le32(bad + 69, 0xffffffffu);
	is_int(decode_rc(bad, len, "-d (datatype)"), -EBADMSG, "a list count of 2^32-1");
	memcpy(bad, buf, len);
	bench__put_le32(bad + 73, IBC_DTYPE_COUNT);
	is_int(decode_rc(bad, len, "-d (datatype)"), -EBADMSG, "a dtype no ibcoll has");
	memcpy(bad, buf, len);
	t = memmem(bad, len, "libibcoll-net-foo", 17);
	*t = '\0';
	is_int(decode_rc(bad, len, "NUL"), -EBADMSG, "a string with a NUL byte");
	memcpy(bad, buf, len);
	t = memmem(bad, len, "0123456789abcdef", 16);
	bench__put_le32(t - 4, 0xfffffff0u);
	is_int(decode_rc(bad, len, "run_id"), -EBADMSG, "a string length past the end");
}

/* Change field i of o; the name bench__optmsg_diff must report, or NULL past the last. */
static const char *perturb(struct bench_opts *o, int i)
{
	static char other[] = "tcp";

	switch (i) {
	case 0: o->sendrecv = !o->sendrecv; return "command (allreduce or sendrecv)";
	case 1: o->sweep.minb++; return "-b (minbytes)";
	case 2: o->sweep.maxb++; return "-e (maxbytes)";
	case 3: o->sweep.stepf = 2; return "-f (stepfactor)";
	case 4: o->sweep.stepi++; return "-i (stepbytes)";
	case 5: o->sweep.iters++; return "-n (iters)";
	case 6: o->sweep.warmup++; return "-w (warmup_iters)";
	case 7: o->sweep.check++; return "-c (check)";
	case 8: o->coll.dt[1] = IBC_FLOAT; return "-d (datatype)";
	case 9: o->coll.nop = 1; return "-o (op)";
	case 10: o->coll.algo[0] = IBC_ALGO_TREE; return "--algo";
	case 11: o->coll.place[BENCH_PLACE_OUT] = true; return "--placement out";
	case 12: o->coll.place[BENCH_PLACE_IN] = false; return "--placement in";
	case 13: o->coll.channels++; return "--channels";
	case 14: o->coll.channels_set = false; return "--channels given";
	case 15: o->coll.chunk = 0; return "--chunk";
	case 16: o->sr.window++; return "--window";
	case 17: o->sr.bidir = false; return "--bidir";
	case 18: o->tp.transport = other; return "--transport";
	case 19: o->tp.depth++; return "--depth";
	case 20: o->tp.qps++; return "--qps";
	case 21: o->tp.mem = "host"; return "--mem";
	case 22: o->launch.timeout_s++; return "--timeout";
	}
	return NULL;
}

static void compared(void)
{
	struct bench_opts a, b;
	const char *want;
	int i, named = 0;

	sample(&a);
	for (i = 0; (sample(&b), want = perturb(&b, i)) != NULL; i++) {
		const char *got = bench__optmsg_diff(&a, &b);

		if (got && !strcmp(got, want))
			named++;
		else
			diag("field %d: diff says '%s', expected '%s'", i, got ? got : "(equal)",
			     want);
	}
	is_int(named, 23, "each of the 23 compared fields, changed alone, is named");
	sample(&b);
	b.coll.dt[2] = IBC_FLOAT;
	b.sweep.iters = 1;
	is_str(bench__optmsg_diff(&a, &b), "-n (iters)", "two fields differ: the first is named");
	sample(&b);
	b.coll.dt[5] = IBC_FLOAT; /* past ndt: not part of the list */
	b.tp.nic = "mlx5_1";
	b.tp.gid_index = 3;
	b.tp.gpu = 2;
	b.launch.np = 7;
	b.launch.bind = "off";
	b.launch.topo_xml = "x.xml";
	b.report.out = "elsewhere";
	snprintf(b.report.run_id, sizeof(b.report.run_id), "ffffffffffffffff");
	snprintf(b.report.outdir, sizeof(b.report.outdir), "other");
	ok(bench__optmsg_diff(&a, &b) == NULL,
	   "per-rank options, the stamp and list entries past the count are not compared");
	a.tp.transport = NULL;
	b.tp.transport = "";
	ok(bench__optmsg_diff(&a, &b) == NULL, "an absent and an empty --transport compare equal");
	sample(&a);
	bench__optmsg_take_stamp(&a, &b);
	ok(!strcmp(a.report.run_id, "ffffffffffffffff") && !strcmp(a.report.outdir, "other") &&
		   a.sweep.iters == 12345,
	   "take_stamp copies run_id, started and outdir, nothing else");
}

int main(void)
{
	round_trip();
	parsed();
	truncated();
	refused();
	compared();
	return tap_done();
}
