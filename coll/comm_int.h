/* SPDX-License-Identifier: MIT */
/*
 * comm_int.h - internal to coll/: what the progress engine (engine.c) takes from the
 * communicator (comm.c). Not installed, not for the driver: the public API is comm.h.
 */
#ifndef IBC_COMM_INT_H
#define IBC_COMM_INT_H

#include "comm.h"

/* Receives pre-posted per link at most: ibc_comm_init clamps the depth to it. */
#define IBC__ENG_MAX_DEPTH 16

static inline const char *ibc__comm_host(const struct ibc_comm *c, int rank)
{
	return ibc_boot_host(c->boot, rank);
}

/* Set ibc_err to a transport failure naming both ends of l (l may be NULL); returns rc. */
int ibc__comm_tp_fail(struct ibc_comm *c, int rc, const struct ibc_link *l, const char *what);
/* Set ibc_err to a memory backend failure; returns rc. */
int ibc__comm_mem_fail(struct ibc_comm *c, int rc, const char *what);
/* The staging slots (depth * max_chunk bytes) of link l of the communicator, allocated on
 * first use; *slots stays valid for the whole run (borrowed from the comm). */
int ibc__comm_link_slots(struct ibc_comm *c, const struct ibc_link *l, struct ibc_buf **slots);

#endif
