/* SPDX-License-Identifier: MIT */
/*
 * fuzz_boot.c - the bootstrap's wire messages (bootstrap/boot_wire.h): the header of every
 * message, the hello rank 0 takes from each member and the table it sends back. The first
 * byte picks the job size (1-64) and which decoder reads the rest; what a decoder accepts is
 * then used as bootstrap.c uses it (strings printed and compared).
 */
#include "fuzz.h"
#include "boot_wire.h"

#include <errno.h>
#include <string.h>

static void use_peer(const struct boot_peer *p, const struct boot_peer *other)
{
	char msg[512];

	FUZZ_CHECK(memchr(p->host, '\0', sizeof(p->host)) &&
		   memchr(p->addr, '\0', sizeof(p->addr)));
	snprintf(msg, sizeof(msg), "rank %d (host %s, %s:%u) was told %d ranks", p->rank, p->host,
		 p->addr, p->port, p->nranks);
	if (other)
		(void)!strcmp(p->host, other->host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_table_hdr th;
	struct boot_peer p, *peers;
	struct boot_hdr h;
	char msg[512];
	int nranks, rc, i;

	if (size < 1)
		return 0;
	nranks = (data[0] & 63) + 1;
	switch (data[0] >> 6) {
	case 0:
		rc = ibc__boot_decode_hdr(data + 1, size - 1, nranks, &h);
		FUZZ_CHECK(rc == 0 || rc == -EPROTO);
		if (!rc)
			FUZZ_CHECK(h.src >= 0 && h.src < nranks && h.len <= BOOT_MAX_LEN);
		break;
	case 1:
		rc = ibc__boot_decode_hello(data + 1, size - 1, &p);
		FUZZ_CHECK(rc == 0 || rc == -EPROTO);
		if (!rc)
			use_peer(&p, NULL);
		break;
	default:
		peers = calloc((size_t)nranks, sizeof(*peers));
		if (!peers)
			return 0;
		rc = ibc__boot_decode_table(data + 1, size - 1, nranks, &th, peers);
		FUZZ_CHECK(rc <= 0);
		FUZZ_CHECK(memchr(th.msg, '\0', sizeof(th.msg)) &&
			   memchr(th.job_id, '\0', sizeof(th.job_id)));
		if (rc && th.status)
			snprintf(msg, sizeof(msg), "bootstrap: %s", th.msg);
		if (!rc) {
			snprintf(msg, sizeof(msg), "job %s", th.job_id);
			for (i = 0; i < nranks; i++)
				use_peer(&peers[i], &peers[0]);
		}
		free(peers);
		break;
	}
	return 0;
}
