/* SPDX-License-Identifier: MIT */
/*
 * opts_msg.c - encode, decode (every bound checked) and compare the options message of
 * opts_msg.h. One table lists the fields in wire order; encoding, decoding, comparing and
 * taking the stamp all walk it, so the four cannot drift apart.
 */
#include "opts_msg.h"
#include "ibc_common.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum field_kind {
	K_BOOL, /* bool: u8 0/1 */
	K_U64, /* uint64_t: u64 */
	K_LONG, /* long: i64 */
	K_STR, /* const char * (NULL = ""): u32 length + bytes */
	K_CHARS, /* char[size]: u32 length + bytes */
	K_ENUMS, /* enum array of capacity size, int count at off_n: u32 count + u32 values */
};

struct field {
	const char *name; /* static: as bench__optmsg_diff names it */
	enum field_kind kind;
	bool stamp; /* rank 0's: taken by the others, never compared */
	size_t off; /* of the value in struct bench_opts */
	size_t off_n; /* K_ENUMS: of the count */
	size_t size; /* K_CHARS: the array's size; K_ENUMS: its capacity */
	uint32_t limit; /* K_ENUMS: every value is below this */
};

#define OFF(m) offsetof(struct bench_opts, m)
#define BOOL(n, m) { n, K_BOOL, false, OFF(m), 0, 0, 0 }
#define U64(n, m) { n, K_U64, false, OFF(m), 0, 0, 0 }
#define LONG(n, m) { n, K_LONG, false, OFF(m), 0, 0, 0 }
#define STR(n, m) { n, K_STR, false, OFF(m), 0, 0, 0 }
#define STAMP(n, m) { n, K_CHARS, true, OFF(m), 0, sizeof(((struct bench_opts *)0)->m), 0 }
#define ENUMS(n, m, cnt, lim)                                                                      \
	{ n, K_ENUMS, false, OFF(m), OFF(cnt), IBC_ARRAY_SIZE(((struct bench_opts *)0)->m), lim }

/* Version 1, in wire order. Append only. */
static const struct field fields[] = {
	BOOL("command (allreduce or sendrecv)", sendrecv),
	U64("-b (minbytes)", sweep.minb),
	U64("-e (maxbytes)", sweep.maxb),
	U64("-f (stepfactor)", sweep.stepf),
	U64("-i (stepbytes)", sweep.stepi),
	LONG("-n (iters)", sweep.iters),
	LONG("-w (warmup_iters)", sweep.warmup),
	LONG("-c (check)", sweep.check),
	ENUMS("-d (datatype)", coll.dt, coll.ndt, IBC_DTYPE_COUNT),
	ENUMS("-o (op)", coll.op, coll.nop, IBC_OP_COUNT),
	ENUMS("--algo", coll.algo, coll.nalgo, IBC_ALGO_COUNT),
	BOOL("--placement out", coll.place[BENCH_PLACE_OUT]),
	BOOL("--placement in", coll.place[BENCH_PLACE_IN]),
	LONG("--channels", coll.channels),
	BOOL("--channels given", coll.channels_set),
	U64("--chunk", coll.chunk),
	LONG("--window", sr.window),
	BOOL("--bidir", sr.bidir),
	STR("--transport", tp.transport),
	LONG("--depth", tp.depth),
	LONG("--qps", tp.qps),
	STR("--mem", tp.mem),
	LONG("--timeout", launch.timeout_s),
	STAMP("run_id", report.run_id),
	STAMP("started", report.started),
	STAMP("outdir", report.outdir),
};

_Static_assert(sizeof(enum ibc_dtype) == sizeof(int) && sizeof(enum ibc_op) == sizeof(int) &&
		       sizeof(enum ibc_algo) == sizeof(int),
	       "K_ENUMS reads enum arrays as int");

/* ------------------------------------------------------------------ encoding */

struct writer {
	uint8_t *p; /* borrowed: the caller's buffer */
	size_t cap, len;
	bool full;
};

static void put(struct writer *w, const void *src, size_t n)
{
	if (!n)
		return;
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_u32(struct writer *w, uint32_t v)
{
	uint8_t b[4];

	bench__put_le32(b, v);
	put(w, b, 4);
}

static void put_u64(struct writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)v);
	put_u32(w, (uint32_t)(v >> 32));
}

/* n bytes of s: u32 length, then the bytes (n beyond the buffer: put() refuses it). */
static void put_str(struct writer *w, const char *s, size_t n)
{
	put_u32(w, (uint32_t)n);
	put(w, s, n);
}

static void put_field(struct writer *w, const struct field *f, const char *base)
{
	const char *v = base + f->off, *s;
	int i, n;

	switch (f->kind) {
	case K_BOOL: put(w, &(uint8_t){ *(const bool *)v ? 1 : 0 }, 1); break;
	case K_U64: put_u64(w, *(const uint64_t *)v); break;
	case K_LONG: put_u64(w, (uint64_t)(int64_t)(*(const long *)v)); break;
	case K_STR:
		s = *(const char *const *)v;
		put_str(w, s, s ? strlen(s) : 0);
		break;
	case K_CHARS: put_str(w, v, strnlen(v, f->size)); break;
	case K_ENUMS:
		n = *(const int *)(base + f->off_n);
		put_u32(w, (uint32_t)n);
		for (i = 0; i < n; i++)
			put_u32(w, (uint32_t)((const int *)v)[i]);
		break;
	}
}

int bench__optmsg_encode(const struct bench_opts *o, void *buf, size_t cap, size_t *len)
{
	struct writer w = { .p = buf, .cap = IBC_MIN(cap, (size_t)BENCH_OPTMSG_MAX) };
	size_t i;

	put_u32(&w, BENCH_OPTMSG_MAGIC);
	put_u32(&w, BENCH_OPTMSG_VERSION);
	put_u32(&w, 0); /* the length, once known */
	for (i = 0; i < IBC_ARRAY_SIZE(fields); i++)
		put_field(&w, &fields[i], (const char *)o);
	put_str(&w, bench__optmsg_build(), strlen(bench__optmsg_build()));
	if (w.full) {
		ibc_err_set("the options do not fit the %zu-byte options message", w.cap);
		return -EMSGSIZE;
	}
	bench__put_le32(w.p + 8, (uint32_t)w.len);
	*len = w.len;
	return 0;
}

/* ------------------------------------------------------------------ decoding */

struct reader {
	const uint8_t *p; /* borrowed: the message */
	size_t len, pos;
	const struct field *f; /* borrowed (fields[]): the field being read, for messages */
};

static int need(const struct reader *r, size_t n)
{
	if (n <= r->len - r->pos)
		return 0;
	ibc_err_set("options message truncated: %s needs %zu bytes at offset %zu, the message "
		    "has %zu",
		    r->f->name, n, r->pos, r->len);
	return -EBADMSG;
}

static int get_u32(struct reader *r, uint32_t *v)
{
	int rc = need(r, 4);

	if (rc)
		return rc;
	*v = bench__get_le32(r->p + r->pos);
	r->pos += 4;
	return 0;
}

static int get_u64(struct reader *r, uint64_t *v)
{
	uint32_t lo, hi;
	int rc = get_u32(r, &lo);

	if (!rc)
		rc = get_u32(r, &hi);
	if (!rc)
		*v = (uint64_t)hi << 32 | lo;
	return rc;
}

static int bad_field(const struct reader *r, const char *what)
{
	ibc_err_set("options message: %s at offset %zu: %s", r->f->name, r->pos, what);
	return -EBADMSG;
}

static int get_bool(struct reader *r, bool *v)
{
	int rc = need(r, 1);

	if (rc)
		return rc;
	if (r->p[r->pos] > 1)
		return bad_field(r, "not a boolean (0 or 1)");
	*v = r->p[r->pos++] == 1;
	return 0;
}

static int get_long(struct reader *r, long *v)
{
	uint64_t u;
	int64_t s;
	int rc = get_u64(r, &u);

	if (rc)
		return rc;
	memcpy(&s, &u, sizeof(s)); /* two's complement */
#if LONG_MAX < INT64_MAX
	if (s < LONG_MIN || s > LONG_MAX)
		return bad_field(r, "out of range for this machine's long");
#endif
	*v = (long)s;
	return 0;
}

/* A string's bytes, checked: at most max bytes, no NUL. *s points into the message. */
static int get_bytes(struct reader *r, size_t max, const uint8_t **s, uint32_t *n)
{
	int rc = get_u32(r, n);

	if (rc)
		return rc;
	rc = need(r, *n);
	if (rc)
		return rc;
	if (*n > max)
		return bad_field(r, "string longer than the field holds");
	if (memchr(r->p + r->pos, '\0', *n))
		return bad_field(r, "string holds a NUL byte");
	*s = r->p + r->pos;
	r->pos += *n;
	return 0;
}

static int get_str(struct reader *r, struct bench_optmsg_decoded *d, const char **v)
{
	const uint8_t *s;
	uint32_t n;
	int rc = get_bytes(r, sizeof(d->strings) - d->used - 1, &s, &n);

	if (rc)
		return rc;
	*v = NULL; /* the empty string: absent */
	if (!n)
		return 0;
	memcpy(d->strings + d->used, s, n);
	d->strings[d->used + n] = '\0';
	*v = d->strings + d->used;
	d->used += n + 1;
	return 0;
}

static int get_chars(struct reader *r, char *v, size_t size)
{
	const uint8_t *s;
	uint32_t n;
	int rc = get_bytes(r, size - 1, &s, &n);

	if (rc)
		return rc;
	memcpy(v, s, n);
	v[n] = '\0';
	return 0;
}

static int get_enums(struct reader *r, int *v, int *count)
{
	uint32_t n, x, i;
	int rc = get_u32(r, &n);

	if (rc)
		return rc;
	if (n > r->f->size)
		return bad_field(r, "list longer than the option allows");
	for (i = 0; i < n && !rc; i++) {
		rc = get_u32(r, &x);
		if (!rc && x >= r->f->limit)
			rc = bad_field(r, "a value no such option has");
		if (!rc)
			v[i] = (int)x;
	}
	if (!rc)
		*count = (int)n;
	return rc;
}

static int get_field(struct reader *r, struct bench_optmsg_decoded *d)
{
	char *v = (char *)&d->opts + r->f->off;

	switch (r->f->kind) {
	case K_BOOL: return get_bool(r, (bool *)v);
	case K_U64: return get_u64(r, (uint64_t *)v);
	case K_LONG: return get_long(r, (long *)v);
	case K_STR: return get_str(r, d, (const char **)v);
	case K_CHARS: return get_chars(r, v, r->f->size);
	case K_ENUMS: return get_enums(r, (int *)v, (int *)((char *)&d->opts + r->f->off_n));
	}
	return -EINVAL;
}

/* After the fields: the build of rank 0 (compared by bench/opts_sync.c, never a default). */
static const struct field build_field = { "ibcoll build", K_CHARS, false, 0, 0, 64, 0 };

const char *bench__optmsg_build(void)
{
	const char *t = getenv("IBCOLL_TEST_BUILD_ID");

	return t && *t ? t : IBC_VERSION "-" IBC_BUILD_COMMIT;
}

/* The header: magic, version, then a length that matches what arrived. */
static int check_header(const uint8_t *p, size_t len)
{
	uint32_t magic, version, total;

	if (len < BENCH_OPTMSG_HDR) {
		ibc_err_set("options message truncated: %zu bytes, shorter than its %d-byte header",
			    len, BENCH_OPTMSG_HDR);
		return -EBADMSG;
	}
	magic = bench__get_le32(p);
	version = bench__get_le32(p + 4);
	total = bench__get_le32(p + 8);
	if (magic != BENCH_OPTMSG_MAGIC) {
		ibc_err_set("not an ibcoll options message (magic 0x%08x, expected 0x%08x)", magic,
			    BENCH_OPTMSG_MAGIC);
		return -EPROTO;
	}
	if (version != BENCH_OPTMSG_VERSION) {
		ibc_err_set("options message version %u is unknown (this ibcoll %s reads version "
			    "%u): run the same ibcoll on every rank",
			    version, IBC_VERSION, BENCH_OPTMSG_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (total > BENCH_OPTMSG_MAX || len > BENCH_OPTMSG_MAX) {
		ibc_err_set("options message oversized: %zu bytes (its header says %u), over the "
			    "%d-byte limit",
			    len, total, BENCH_OPTMSG_MAX);
		return -EMSGSIZE;
	}
	if (total != len) {
		ibc_err_set("options message %s: its header says %u bytes, %zu arrived",
			    total > len ? "truncated" : "oversized", total, len);
		return total > len ? -EBADMSG : -EMSGSIZE;
	}
	return 0;
}

int bench__optmsg_decode(const void *buf, size_t len, struct bench_optmsg_decoded *out)
{
	struct reader r = { .p = buf, .len = len, .pos = BENCH_OPTMSG_HDR };
	size_t i;
	int rc = check_header(buf, len);

	memset(out, 0, sizeof(*out));
	for (i = 0; !rc && i < IBC_ARRAY_SIZE(fields); i++) {
		r.f = &fields[i];
		rc = get_field(&r, out);
	}
	r.f = &build_field;
	if (!rc)
		rc = get_chars(&r, out->build, sizeof(out->build));
	if (!rc && r.pos != len) {
		ibc_err_set("options message oversized: %zu bytes after its last field",
			    len - r.pos);
		rc = -EMSGSIZE;
	}
	return rc;
}

/* ------------------------------------------------------------------ comparing */

static bool field_equal(const struct field *f, const char *a, const char *b)
{
	const char *va = a + f->off, *vb = b + f->off, *sa, *sb;
	int na, nb;

	switch (f->kind) {
	case K_BOOL: return *(const bool *)va == *(const bool *)vb;
	case K_U64: return *(const uint64_t *)va == *(const uint64_t *)vb;
	case K_LONG: return *(const long *)va == *(const long *)vb;
	case K_STR:
		sa = *(const char *const *)va;
		sb = *(const char *const *)vb;
		return strcmp(sa ? sa : "", sb ? sb : "") == 0;
	case K_CHARS: return strncmp(va, vb, f->size) == 0;
	case K_ENUMS:
		na = *(const int *)(a + f->off_n);
		nb = *(const int *)(b + f->off_n);
		return na == nb && !memcmp(va, vb, sizeof(int) * (size_t)IBC_MAX(na, 0));
	}
	return false;
}

const char *bench__optmsg_diff(const struct bench_opts *a, const struct bench_opts *b)
{
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(fields); i++)
		if (!fields[i].stamp &&
		    !field_equal(&fields[i], (const char *)a, (const char *)b))
			return fields[i].name;
	return NULL;
}

void bench__optmsg_take_stamp(struct bench_opts *o, const struct bench_opts *from)
{
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(fields); i++)
		if (fields[i].stamp)
			memcpy((char *)o + fields[i].off, (const char *)from + fields[i].off,
			       fields[i].size);
}
