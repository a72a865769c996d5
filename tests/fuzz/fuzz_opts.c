/* SPDX-License-Identifier: MIT */
/*
 * fuzz_opts.c - the command line of `ibcoll allreduce` and `ibcoll sendrecv` (bench/opts.c:
 * bench__opts_parse, the size sweep, bench__opts_validate) with argv made of the input split
 * at NUL bytes (the first byte picks the command). Whatever it returns, it must not crash; the
 * options it accepts travel in the options message (bench/opts_msg.c) and must come back
 * equal (bench__optmsg_diff).
 */
#include "fuzz.h"
#include "opts.h"
#include "opts_msg.h"

#include <errno.h>
#include <string.h>

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* The parser prints its errors to stderr: keep them quiet (the stream only; sanitizer
	 * reports still go to file descriptor 2). --help prints to stdout, which scripts/fuzz
	 * closes (-close_fd_mask=1) and the replay test keeps for TAP. */
	FILE *null = fopen("/dev/null", "w");

	if (null)
		stderr = null;
	return 0;
}

static void roundtrip(const struct bench_opts *o)
{
	static struct bench_optmsg_decoded dec;
	static uint8_t msg[BENCH_OPTMSG_MAX];
	size_t len;

	if (bench__optmsg_encode(o, msg, sizeof(msg), &len))
		return; /* -EMSGSIZE: bench__opts_validate refuses such a --transport */
	FUZZ_CHECK(bench__optmsg_decode(msg, len, &dec) == 0);
	FUZZ_CHECK(bench__optmsg_diff(o, &dec.opts) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t sizes[BENCH_MAX_SIZES];
	char *argv[FUZZ_MAX_ARGS + 2], *text;
	struct bench_opts o;
	size_t i, start;
	int argc = 1, rc, n;

	if (size < 1)
		return 0;
	text = fuzz_strdup(data + 1, size - 1);
	if (!text)
		return 0;
	argv[0] = data[0] & 1 ? "sendrecv" : "allreduce";
	for (i = start = 0; i <= size - 1 && argc <= FUZZ_MAX_ARGS; i++)
		if (i == size - 1 || text[i] == '\0') {
			argv[argc++] = text + start;
			start = i + 1;
		}
	argv[argc] = NULL;
	rc = bench__opts_parse(argc, argv, data[0] & 1, &o);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	/* A transport named by a path is a plugin: validate would dlopen it. */
	if (!rc && !o.help && !(o.tp.transport && strchr(o.tp.transport, '/'))) {
		rc = bench__opts_validate(&o);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL);
		if (!rc) {
			n = bench__sweep_sizes(&o.sweep, sizes);
			FUZZ_CHECK(n >= 0 && n <= BENCH_MAX_SIZES);
			roundtrip(&o);
			bench__opts_free(&o);
		}
	}
	free(text);
	return 0;
}
