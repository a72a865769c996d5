/* SPDX-License-Identifier: MIT */
/*
 * fuzz_optmsg.c - the options message decoder (bench/opts_msg.c: bench__optmsg_decode), which
 * reads what another rank sent. Properties: a malformed message gets one of the documented
 * errors; a message that decodes encodes back to the same bytes and compares equal to itself.
 */
#include "fuzz.h"
#include "opts_msg.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bench_optmsg_decoded dec, dec2;
	static uint8_t msg[BENCH_OPTMSG_MAX];
	size_t len;
	int rc = bench__optmsg_decode(data, size, &dec);

	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EMSGSIZE || rc == -EPROTO ||
		   rc == -EPROTONOSUPPORT);
	if (rc)
		return 0;
	FUZZ_CHECK(dec.used <= sizeof(dec.strings));
	FUZZ_CHECK(bench__optmsg_encode(&dec.opts, msg, sizeof(msg), &len) == 0);
	/* the encoder writes this binary's build: byte for byte only for a message of this build */
	FUZZ_CHECK(strcmp(dec.build, bench__optmsg_build()) != 0 ||
		   (len == size && memcmp(msg, data, size) == 0));
	FUZZ_CHECK(bench__optmsg_decode(msg, len, &dec2) == 0);
	FUZZ_CHECK(bench__optmsg_diff(&dec.opts, &dec2.opts) == NULL);
	return 0;
}
