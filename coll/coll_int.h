/* SPDX-License-Identifier: MIT */
/*
 * coll_int.h - internal to coll/: what the algorithm files (ring.c, tree.c, rd.c) share with
 * coll.c, which dispatches to them. The public API is coll.h.
 */
#ifndef IBC_COLL_INT_H
#define IBC_COLL_INT_H

#include "coll.h"

/* Connection streams, one range per algorithm: a link is (peer, direction, stream). */
#define IBC__STREAM_RING(c)	       (0x100 + (c))
#define IBC__STREAM_TREE(t, c, down) (0x200 + ((t)*IBC_MAX_CHANNELS + (c)) * 2 + (down))
#define IBC__STREAM_RD		       0x300
#define IBC__STREAM_RHD_RS	       0x310
#define IBC__STREAM_RHD_AG	       0x320

/* Start of part i of n split into `parts` nearly equal pieces, no overflow for n < 2^56. */
static inline size_t ibc__part(size_t n, size_t i, size_t parts)
{
	return (size_t)(((unsigned __int128)n * i) / parts);
}

/* Append one op to lane `lane` of p. */
static inline int ibc__add(struct ibc_prog *p, int lane, int kind, int link, size_t count,
			   const void *src, void *dst, struct ibc_tp_mr *mr)
{
	struct ibc_step op = { .kind = (uint8_t)kind, .link = link, .count = count, .src = src,
			       .dst = dst, .mr = mr };

	return ibc_prog_add(p, lane, &op);
}

/* Connect the algorithm's links (collective) and build its program into p (initialised
 * here, freed by the caller with ibc_prog_free). */
int ibc__ring_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p);
int ibc__tree_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p);
int ibc__rd_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p);
int ibc__rhd_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p);

#endif
