/* SPDX-License-Identifier: MIT */
/*
 * coll.h - all-reduce algorithms (docs/design.md#collectives) compiled into engine programs (comm.h).
 *
 * ring: reduce-scatter then all-gather around a ring; the buffer is split across channels
 *       (independent rings on their own connections), each channel into nranks segments and
 *       each segment into chunks that are pipelined (chunk j moves on while chunk j+1 arrives).
 * tree: NCCL's double binary tree: two complementary in-order binary trees (a leaf in one is
 *       interior in the other), each carrying half of every channel's data, reduced up and
 *       broadcast down in chunks; up and down run as separate lanes so they overlap.
 * rd:   recursive doubling, the latency algorithm of MPI libraries: log2(p) exchanges of the
 *       whole buffer with partner rank ^ 2^k (ranks beyond the largest power of two fold into
 *       a partner first and get the result last). Not bandwidth-optimal; for small sizes,
 *       host memory, messages of at most the engine's chunk.
 * rhd:  recursive halving then doubling (Rabenseifner): reduce-scatter by halving, allgather
 *       by doubling, moving as much as a ring in 2 log2(p) steps; host memory.
 *
 * One file per family: ring.c, tree.c, rd.c (rd and rhd); coll.c dispatches.
 */
#ifndef IBC_COLL_H
#define IBC_COLL_H

#include "comm.h"

/* ring, double binary tree, the MPI library's own, recursive doubling, recursive halving then
 * doubling (Rabenseifner: reduce-scatter by halving, allgather by doubling) */
enum ibc_algo {
	IBC_ALGO_RING,
	IBC_ALGO_TREE,
	IBC_ALGO_MPI,
	IBC_ALGO_RD,
	IBC_ALGO_RHD,
	IBC_ALGO_COUNT
};
const char *ibc_algo_name(enum ibc_algo a);
int ibc_algo_parse(const char *s, enum ibc_algo *a);

#define IBC_MAX_CHANNELS 64

struct ibc_coll_args {
	enum ibc_algo algo;
	const struct ibc_buf *in; /* borrowed */
	const struct ibc_buf *out; /* borrowed; may equal in (in-place) */
	size_t count;
	enum ibc_dtype dt;
	enum ibc_op op;
	int channels; /* 1..IBC_MAX_CHANNELS */
	size_t chunk_bytes; /* largest message; must be <= comm max_chunk */
};

/* Connect the links the algorithm needs (collective: every rank calls it) and build the
 * program; p is initialised here and freed by the caller with ibc_prog_free. */
int ibc_allreduce_prepare(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p);

/* In-order binary tree over positions 0..n-1 rooted at 0 (0 has one child). -1 = none. */
void ibc_btree(int n, int pos, int *parent, int *child0, int *child1);
/* Double binary tree in ranks: tree 0 or 1. */
void ibc_dbtree(int n, int rank, int tree, int *parent, int *child0, int *child1);

#endif
