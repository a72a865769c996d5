/* SPDX-License-Identifier: MIT */
/* ring.c - ring all-reduce (coll.h): per channel, reduce-scatter then all-gather around the
 * ring r -> r + 1, each segment cut into chunks that are pipelined. */
#include "coll.h"
#include "coll_int.h"
#include "ibc_common.h"

#include <stdlib.h>
#include <string.h>

/* One channel's share of the buffer, m elements from element cs, cut into n segments (one per
 * rank) and each segment into K chunks: chunk j of segment k is what moves in one message. */
struct ring_chan {
	size_t cs, m, K, es;
	int n, r; /* ranks, this rank */
};

static size_t seg_off(const struct ring_chan *g, int k)
{
	return g->cs + ibc__part(g->m, (size_t)k, (size_t)g->n);
}

static size_t seg_len(const struct ring_chan *g, int k)
{
	return ibc__part(g->m, (size_t)k + 1, (size_t)g->n) -
	       ibc__part(g->m, (size_t)k, (size_t)g->n);
}

/* Byte offset of chunk j of segment k. */
static size_t chunk_at(const struct ring_chan *g, int k, size_t j)
{
	return (seg_off(g, k) + ibc__part(seg_len(g, k), j, g->K)) * g->es;
}

/* Elements in chunk j of segment k. */
static size_t chunk_len(const struct ring_chan *g, int k, size_t j)
{
	size_t l = seg_len(g, k);

	return ibc__part(l, j + 1, g->K) - ibc__part(l, j, g->K);
}

/* Chunk j of every segment of channel ch: n - 1 steps reducing, the finish of the segment this
 * rank owns (avg), n - 1 steps gathering. Lane ch sends on link 2 ch, receives on 2 ch + 1. */
static int ring_chunk(struct ibc_prog *p, const struct ibc_coll_args *a,
		      const struct ring_chan *g, int ch, size_t j)
{
	char *in = a->in->ptr, *out = a->out->ptr;
	int n = g->n, r = g->r, own = (r + 1) % n, sl = 2 * ch, rl = 2 * ch + 1, s, rc = 0;

	for (s = 0; s < n - 1 && !rc; s++) { /* reduce-scatter */
		int sk = ((r - s) % n + n) % n, rk = ((r - s - 1) % n + n) % n;
		const char *src = (s == 0 ? in : out) + chunk_at(g, sk, j);

		rc = ibc__add(p, ch, IBC_OPK_SEND, sl, chunk_len(g, sk, j), src, NULL,
			      s == 0 ? a->in->mr : a->out->mr);
		if (!rc)
			rc = ibc__add(p, ch, IBC_OPK_RECV_REDUCE, rl, chunk_len(g, rk, j),
				      in + chunk_at(g, rk, j), out + chunk_at(g, rk, j),
				      a->out->mr);
	}
	if (!rc && a->op == IBC_OP_AVG)
		rc = ibc__add(p, ch, IBC_OPK_FINISH, -1, chunk_len(g, own, j), NULL,
			      out + chunk_at(g, own, j), NULL);
	for (s = 0; s < n - 1 && !rc; s++) { /* all-gather */
		int sk = ((r + 1 - s) % n + n) % n, rk = ((r - s) % n + n) % n;

		rc = ibc__add(p, ch, IBC_OPK_SEND, sl, chunk_len(g, sk, j),
			      out + chunk_at(g, sk, j), NULL, a->out->mr);
		if (!rc)
			rc = ibc__add(p, ch, IBC_OPK_RECV_COPY, rl, chunk_len(g, rk, j), NULL,
				      out + chunk_at(g, rk, j), a->out->mr);
	}
	return rc;
}

/* Per channel a send link to the next rank and a receive link from the previous one. */
static int ring_connect(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int n = c->nranks, r = c->rank, C = a->channels, ch, rc;
	struct ibc_link_req req[2 * IBC_MAX_CHANNELS];
	struct ibc_link *links[2 * IBC_MAX_CHANNELS];
	struct ibc_link **own;

	for (ch = 0; ch < C; ch++) {
		req[2 * ch] = (struct ibc_link_req){ (r + 1) % n, true, IBC__STREAM_RING(ch) };
		req[2 * ch + 1] =
			(struct ibc_link_req){ (r - 1 + n) % n, false, IBC__STREAM_RING(ch) };
	}
	rc = ibc_comm_connect(c, req, 2 * C, links);
	if (rc)
		return rc;
	rc = ibc_prog_init(p, C, NULL, 0, a->dt, a->op, n);
	if (rc)
		return rc;
	own = malloc(sizeof(*links) * 2 * (size_t)C);
	if (!own)
		return -ENOMEM;
	memcpy(own, links, sizeof(*links) * 2 * (size_t)C);
	return ibc_prog_set_links(p, own, 2 * C);
}

int ibc__ring_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int n = c->nranks, C = a->channels, ch, rc;
	size_t es = ibc_dtype_size(a->dt), celem = IBC_MAX(a->chunk_bytes / es, 1), j;

	rc = ring_connect(c, a, p);
	for (ch = 0; ch < C && !rc; ch++) {
		struct ring_chan g = { .es = es, .n = n, .r = c->rank };
		size_t maxseg;

		g.cs = ibc__part(a->count, (size_t)ch, (size_t)C);
		g.m = ibc__part(a->count, (size_t)ch + 1, (size_t)C) - g.cs;
		maxseg = (g.m + (size_t)n - 1) / (size_t)n;
		g.K = IBC_MAX((maxseg + celem - 1) / celem, 1);
		for (j = 0; j < g.K && !rc; j++)
			rc = ring_chunk(p, a, &g, ch, j);
	}
	return rc;
}
