/* SPDX-License-Identifier: MIT */
/*
 * opts_sync.c - every rank runs rank 0's benchmark. Over the bootstrap, in four collectives
 * that every rank makes whatever it finds (so that none is left waiting):
 *
 *   1. bcast   rank 0's options message header (BENCH_OPTMSG_HDR bytes: magic, version,
 *              length), so that the others learn the length;
 *   2. bcast   the rest of the message;
 *   3. gather  each rank's verdict on it (VERDICT_LEN bytes: u32 kind, then a NUL-terminated
 *              text: the differing field or why the message could not be read);
 *   4. bcast   rank 0's decision (u32: 0 to go on, else the exit code of every rank).
 *
 * Each rank decodes rank 0's message, takes its stamp (run id, start time, report directory)
 * and compares the rest with its own options. Rank 0 names the first rank that disagrees.
 */
#include "bench.h"
#include "ibc_common.h"
#include "opts_msg.h"

#include <stdlib.h>
#include <string.h>

#define VERDICT_LEN 128
#define RECV_MAX (1u << 20) /* the longest message any version could send */

enum verdict_kind {
	V_AGREE, /* same options as rank 0 */
	V_DIFFER, /* text: the first field that differs */
	V_UNREADABLE, /* text: why rank 0's message could not be decoded */
	V_BUILD, /* text: rank 0's build and this rank's */
};

static void put_verdict(uint8_t *v, uint32_t kind, const char *text)
{
	memset(v, 0, VERDICT_LEN);
	bench__put_le32(v, kind);
	snprintf((char *)v + 4, VERDICT_LEN - 4, "%s", text ? text : "");
}

/* Steps 1 and 2 at rank 0: its message, header first. */
static int send_message(struct ibc_boot *b, const struct bench_opts *o)
{
	uint8_t *msg = malloc(BENCH_OPTMSG_MAX);
	size_t len = 0;
	int rc = msg ? bench__optmsg_encode(o, msg, BENCH_OPTMSG_MAX, &len) : -ENOMEM;

	if (!rc)
		rc = ibc_boot_bcast(b, msg, BENCH_OPTMSG_HDR);
	if (!rc)
		rc = ibc_boot_bcast(b, msg + BENCH_OPTMSG_HDR, len - BENCH_OPTMSG_HDR);
	free(msg);
	return rc;
}

/* Steps 1 and 2 elsewhere: rank 0's message into *msg (caller frees), *len bytes. The length
 * sits at the same place in every version's header. */
static int recv_message(struct ibc_boot *b, uint8_t **msg, size_t *len)
{
	uint8_t hdr[BENCH_OPTMSG_HDR];
	int rc = ibc_boot_bcast(b, hdr, sizeof(hdr));

	*msg = NULL;
	if (rc)
		return rc;
	*len = bench__get_le32(hdr + 8);
	if (*len < sizeof(hdr) || *len > RECV_MAX) {
		ibc_err_set("rank 0's options message says it is %zu bytes long: not an options "
			    "message of any ibcoll version",
			    *len);
		return -EPROTO;
	}
	*msg = malloc(*len);
	if (!*msg)
		return -ENOMEM;
	memcpy(*msg, hdr, sizeof(hdr));
	return ibc_boot_bcast(b, *msg + sizeof(hdr), *len - sizeof(hdr));
}

/* This rank's verdict on rank 0's message; on success o takes its stamp. */
static void judge(struct bench_opts *o, const uint8_t *msg, size_t len, uint8_t *verdict)
{
	struct bench_optmsg_decoded *dec = malloc(sizeof(*dec));
	const char *field;

	if (!dec) {
		put_verdict(verdict, V_UNREADABLE, "no memory to decode it");
		return;
	}
	if (bench__optmsg_decode(msg, len, dec)) {
		put_verdict(verdict, V_UNREADABLE, ibc_err_get());
	} else if (strcmp(dec->build, bench__optmsg_build())) {
		char text[VERDICT_LEN - 4];

		snprintf(text, sizeof(text), "rank 0 runs %.40s, this rank %.40s", dec->build,
			 bench__optmsg_build());
		put_verdict(verdict, V_BUILD, text);
	} else {
		field = bench__optmsg_diff(o, &dec->opts);
		put_verdict(verdict, field ? V_DIFFER : V_AGREE, field);
		bench__optmsg_take_stamp(o, &dec->opts);
	}
	free(dec);
}

/* Rank 0: log the first rank that disagrees and every rank that does; the decision (0 or the
 * exit code). */
static uint32_t decide(struct ibc_boot *b, const uint8_t *all)
{
	int r, n = ibc_boot_nranks(b), first = -1, count = 0;
	char list[128] = "";
	size_t k = 0;
	const uint8_t *v;

	for (r = 1; r < n; r++) {
		if (bench__get_le32(all + (size_t)r * VERDICT_LEN) == V_AGREE)
			continue;
		if (first < 0)
			first = r;
		if (count++ < 16)
			k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%d", k ? "," : "", r);
	}
	if (first < 0)
		return 0;
	v = all + (size_t)first * VERDICT_LEN;
	if (bench__get_le32(v) == V_DIFFER)
		ibc_log("rank %d (host %s) was started with other options than rank 0 (host %s): "
			"%s differs; rank(s) %s%s disagree with rank 0, the other %d agree; start "
			"every rank with the same command line",
			first, ibc_boot_host(b, first), ibc_boot_host(b, 0), (const char *)v + 4,
			list,
			count > 16 ? ",..." : "", n - 1 - count);
	else if (bench__get_le32(v) == V_BUILD)
		ibc_log("rank %d (host %s) runs another ibcoll build than rank 0 (host %s): %s; "
			"rank(s) %s%s differ; run the same ibcoll build on every rank",
			first, ibc_boot_host(b, first), ibc_boot_host(b, 0), (const char *)v + 4,
			list,
			count > 16 ? ",..." : "");
	else
		ibc_log("rank %d (host %s) cannot read rank 0's options: %s", first,
			ibc_boot_host(b, first), (const char *)v + 4);
	return IBC_EXIT_USAGE;
}

/* Steps 3 and 4. */
static int gather_verdicts(struct ibc_boot *b, const uint8_t *verdict, uint32_t *decision)
{
	uint8_t *all = NULL, d[4];
	int r, rc;

	if (ibc_boot_rank(b) == 0) {
		all = malloc((size_t)ibc_boot_nranks(b) * VERDICT_LEN);
		if (!all)
			return -ENOMEM;
	}
	rc = ibc_boot_gather(b, verdict, all, VERDICT_LEN);
	for (r = 0; !rc && all && r < ibc_boot_nranks(b); r++)
		all[(size_t)r * VERDICT_LEN + VERDICT_LEN - 1] = '\0'; /* whoever sent it */
	if (!rc && all)
		bench__put_le32(d, decide(b, all));
	free(all);
	if (!rc)
		rc = ibc_boot_bcast(b, d, sizeof(d));
	if (!rc)
		*decision = bench__get_le32(d);
	return rc;
}

int bench__opts_agree(struct ibc_boot *b, struct bench_opts *o)
{
	uint8_t *msg = NULL, verdict[VERDICT_LEN];
	uint32_t decision = 0;
	size_t len = 0;
	int rc;

	put_verdict(verdict, V_AGREE, NULL);
	if (ibc_boot_rank(b) == 0)
		rc = send_message(b, o);
	else
		rc = recv_message(b, &msg, &len);
	if (!rc && msg)
		judge(o, msg, len, verdict);
	free(msg);
	if (!rc)
		rc = gather_verdicts(b, verdict, &decision);
	if (rc) {
		ibc_log("%s", ibc_err_get());
		return rc;
	}
	return decision ? -EINVAL : 0;
}
