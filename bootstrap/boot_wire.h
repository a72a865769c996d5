/* SPDX-License-Identifier: MIT */
/*
 * boot_wire.h - the rendezvous' wire format and its decoders (internal to bootstrap/; the fuzz
 * harness tests/fuzz/fuzz_boot.c calls them). Every message is a struct boot_hdr and len bytes
 * of body; the hello's body is one struct boot_peer, the table's a struct boot_table_hdr and
 * nranks struct boot_peer. Integers in host order (every rank runs the same binary).
 *
 * The decoders are pure (boot_wire.c): they read a received buffer, check it and copy it out,
 * with every string terminated inside its field, so bootstrap.c, boot_rdv.c and the harness
 * run the same checks.
 */
#ifndef IBC_BOOT_WIRE_H
#define IBC_BOOT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define BOOT_MAGIC 0x69624253u /* "ibBS" */
/* The longest body a header may announce: a length above it is refused before anything is
 * allocated. */
#define BOOT_MAX_MSG (256u << 20)
#define BOOT_MAX_LEN BOOT_MAX_MSG

struct boot_hdr {
	uint32_t magic;
	int32_t src;
	uint32_t tag;
	uint32_t pad;
	uint64_t len;
};

struct boot_peer {
	int32_t rank, nranks, pid, pad;
	char host[64];
	char addr[64]; /* numeric IP of the rank's listener */
	uint16_t port, pad2[3];
};

struct boot_table_hdr {
	int32_t status; /* 0 ok, else -errno and msg says why */
	int32_t nranks;
	char job_id[40];
	char msg[400];
};

/* A message header of a job of nranks (len bytes at buf): 0 with *h filled, or -EPROTO when
 * it is not one (short, wrong magic, source out of range, body too long). */
int ibc__boot_decode_hdr(const void *buf, size_t len, int nranks, struct boot_hdr *h);

/* A hello's body: 0 with *p filled, or -EPROTO (not the size of a hello). */
int ibc__boot_decode_hello(const void *buf, size_t len, struct boot_peer *p);

/* The table's body for a member of a job of nranks: 0 with *th and peers[nranks] filled (peers
 * may be NULL: only checked); th->status (< 0) when rank 0 refused the job (th->msg says why);
 * -EPROTO when shorter than its header or the status is not a -errno; -EINVAL when rank 0 was
 * told another size. */
int ibc__boot_decode_table(const void *buf, size_t len, int nranks, struct boot_table_hdr *th,
			   struct boot_peer *peers);

#endif
