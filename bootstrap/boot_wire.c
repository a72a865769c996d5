/* SPDX-License-Identifier: MIT */
/*
 * boot_wire.c - the decoders of the rendezvous' wire format (boot_wire.h): pure functions
 * over a received buffer, shared by bootstrap.c, boot_rdv.c and tests/fuzz/fuzz_boot.c.
 */
#include "boot_wire.h"

#include <errno.h>
#include <string.h>

/* Strings from the wire end inside their fields. */
static void peer_terminate(struct boot_peer *p)
{
	p->host[sizeof(p->host) - 1] = '\0';
	p->addr[sizeof(p->addr) - 1] = '\0';
}

int ibc__boot_decode_hdr(const void *buf, size_t len, int nranks, struct boot_hdr *h)
{
	if (len != sizeof(*h))
		return -EPROTO;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != BOOT_MAGIC || h->src < 0 || h->src >= nranks || h->len > BOOT_MAX_LEN)
		return -EPROTO;
	return 0;
}

int ibc__boot_decode_hello(const void *buf, size_t len, struct boot_peer *p)
{
	if (len != sizeof(*p))
		return -EPROTO;
	memcpy(p, buf, sizeof(*p));
	peer_terminate(p);
	return 0;
}

int ibc__boot_decode_table(const void *buf, size_t len, int nranks, struct boot_table_hdr *th,
			   struct boot_peer *peers)
{
	size_t tlen = sizeof(*th) + (size_t)nranks * sizeof(struct boot_peer);
	int i;

	memset(th, 0, sizeof(*th));
	if (len < sizeof(*th))
		return -EPROTO;
	memcpy(th, buf, sizeof(*th));
	th->job_id[sizeof(th->job_id) - 1] = '\0';
	th->msg[sizeof(th->msg) - 1] = '\0';
	if (th->status) /* rank 0 sends -errno: anything else is not a status */
		return th->status < 0 ? th->status : -EPROTO;
	if (len != tlen || th->nranks != nranks)
		return -EINVAL;
	for (i = 0; peers && i < nranks; i++) {
		memcpy(&peers[i], (const char *)buf + sizeof(*th) + (size_t)i * sizeof(*peers),
		       sizeof(*peers));
		peer_terminate(&peers[i]);
	}
	return 0;
}
