/* SPDX-License-Identifier: MIT */
/*
 * opts_msg.h - the options message: the options every rank of a job must agree on, and rank
 * 0's stamp of the run, as an explicit, versioned byte string (internal to bench/).
 *
 * Format (all integers fixed-width little-endian):
 *
 *   offset 0   u32  magic    BENCH_OPTMSG_MAGIC (the bytes "IBCO")
 *          4   u32  version  BENCH_OPTMSG_VERSION
 *          8   u32  length   of the whole message, header included (<= BENCH_OPTMSG_MAX)
 *         12   the fields, in this order, each in its wire type:
 *
 *   command (allreduce or sendrecv)  bool     -b (minbytes)        u64
 *   -e (maxbytes)                    u64      -f (stepfactor)      u64 (0 with -i)
 *   -i (stepbytes)                   u64      -n (iters)           i64
 *   -w (warmup_iters)                i64      -c (check)           i64
 *   -d (datatype)                    list     -o (op)              list
 *   --algo                           list     --placement out      bool
 *   --placement in                   bool     --channels           i64
 *   --channels given                 bool     --chunk              u64
 *   --window                         i64      --bidir              bool
 *   --transport                      string   --depth              i64
 *   --qps                            i64      --mem                string
 *   --timeout                        i64
 *   stamp: run_id string, started string, outdir string
 *   the ibcoll build (version-commit)  string, at most 63 bytes: ranks of other builds refuse
 *
 *   bool: one byte, 0 or 1.  i64: two's complement.  string: u32 byte count, then the bytes
 *   (no NUL; an absent --transport is the empty string).  list: u32 count, then count u32
 *   values (dtype, op or algo numbers, in the order given).
 *
 * Fields are only ever appended; a change of meaning, width or order bumps the version. The
 * stamp (run id, start time, report directory) is rank 0's: the other ranks take it; it is not
 * compared. The options that may differ per rank (--np, --nic, --gid-index, --gpu,
 * --topology-xml, --bind, --out as given) are not in the message.
 */
#ifndef BENCH_OPTS_MSG_H
#define BENCH_OPTS_MSG_H

#include "opts.h"

#include <stddef.h>
#include <stdint.h>

#define BENCH_OPTMSG_MAGIC 0x4f434249u /* "IBCO" */
#define BENCH_OPTMSG_VERSION 1u
#define BENCH_OPTMSG_HDR 12 /* magic, version, length */
#define BENCH_OPTMSG_MAX 8192 /* the longest message of this version */
#define BENCH_TRANSPORT_MAX 4096 /* longest --transport (a plugin path) that fits */

/* Encode o into buf (cap bytes): 0 with *len set, or -EMSGSIZE (ibc_err_get() says why). */
int bench__optmsg_encode(const struct bench_opts *o, void *buf, size_t cap, size_t *len);

/* A rank's options as decoded from its message. Only the fields of the message are set (the
 * rest are zero); the string fields of opts point into strings. */
struct bench_optmsg_decoded {
	struct bench_opts opts;
	char strings[BENCH_OPTMSG_MAX];
	size_t used; /* bytes of strings in use */
	char build[64]; /* the sender's bench__optmsg_build() */
};

/* This binary's build: "VERSION-COMMIT" (IBCOLL_TEST_BUILD_ID stands in for another build in
 * tests). Static text. */
const char *bench__optmsg_build(void);

/* Decode the len bytes at buf, checking every bound. 0, or on a malformed message (out
 * unusable; ibc_err_get() says what and where):
 *   -EBADMSG          truncated (shorter than its header says or than a field needs) or a
 *                     field out of range (a list too long, a value no dtype/op/algo has, a
 *                     bool that is not 0/1, a string with a NUL or longer than its field)
 *   -EMSGSIZE         oversized (over BENCH_OPTMSG_MAX, longer than its header says, or
 *                     bytes left after the last field)
 *   -EPROTO           wrong magic: not an options message
 *   -EPROTONOSUPPORT  a version this ibcoll does not read */
int bench__optmsg_decode(const void *buf, size_t len, struct bench_optmsg_decoded *out);

/* NULL when a and b agree on every field of the message outside the stamp; else the name of
 * the first field that differs, as the format above lists it ("-n (iters)"). */
const char *bench__optmsg_diff(const struct bench_opts *a, const struct bench_opts *b);

/* Take from's stamp (run id, start time, report directory) into o. */
void bench__optmsg_take_stamp(struct bench_opts *o, const struct bench_opts *from);

/* Fixed-width little-endian helpers (the message and the rendezvous records around it). */
static inline void bench__put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t bench__get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
