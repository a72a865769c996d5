/* SPDX-License-Identifier: MIT */
/* tree.c - double binary tree all-reduce (coll.h): two complementary trees, each carrying half
 * of every channel's data, reduced up and broadcast down in pipelined chunks. */
#include "coll.h"
#include "coll_int.h"
#include "ibc_common.h"

#include <stdlib.h>
#include <string.h>

static int top_pow2(int n)
{
	int t = 1;

	while (t * 2 <= n - 1)
		t *= 2;
	return t;
}

static int bt_parent(int n, int x)
{
	int top;

	if (x == 0 || n < 2)
		return -1;
	top = top_pow2(n);
	for (;;) {
		int b = x & -x, q;

		if (x == top)
			return 0;
		q = ((x / b) % 4 == 1) ? x + b : x - b;
		if (q < n)
			return q;
		x = q;
	}
}

void ibc_btree(int n, int pos, int *parent, int *child0, int *child1)
{
	int b, c, cb;

	*parent = bt_parent(n, pos);
	*child0 = *child1 = -1;
	if (n < 2)
		return;
	if (pos == 0) {
		*child0 = top_pow2(n);
		return;
	}
	b = pos & -pos;
	if (b < 2)
		return;
	*child0 = pos - b / 2;
	c = pos + b / 2;
	cb = b / 2;
	while (c >= n) {
		if (cb == 1) {
			c = -1;
			break;
		}
		cb >>= 1;
		c -= cb;
	}
	*child1 = c;
}

static int tree_rank(int n, int tree, int pos)
{
	if (pos < 0 || tree == 0)
		return pos;
	return (n % 2 == 0) ? n - 1 - pos : (pos + 1) % n;
}

static int tree_pos(int n, int tree, int rank)
{
	if (tree == 0)
		return rank;
	return (n % 2 == 0) ? n - 1 - rank : (rank - 1 + n) % n;
}

void ibc_dbtree(int n, int rank, int tree, int *parent, int *child0, int *child1)
{
	int p, c0, c1;

	ibc_btree(n, tree_pos(n, tree, rank), &p, &c0, &c1);
	*parent = tree_rank(n, tree, p);
	*child0 = tree_rank(n, tree, c0);
	*child1 = tree_rank(n, tree, c1);
}


/* This rank in tree t, channel ch: its parent and children and their program links. */
struct tree_node {
	int parent, child[2], nch;
	int l_up_parent, l_dn_parent, l_up_child[2], l_dn_child[2]; /* program link indices */
};

/* Fill x for rank r in tree t, channel ch; append the links to its parent and children to
 * req (up: towards the root, down: away from it). */
static void tree_node_links(int n, int r, int t, int ch, struct tree_node *x,
			    struct ibc_link_req *req, int *nreq)
{
	int i;

	ibc_dbtree(n, r, t, &x->parent, &x->child[0], &x->child[1]);
	x->nch = (x->child[0] >= 0) + (x->child[1] >= 0);
	if (x->child[0] < 0 && x->child[1] >= 0) {
		x->child[0] = x->child[1];
		x->child[1] = -1;
	}
	if (x->parent >= 0) {
		x->l_up_parent = *nreq;
		req[(*nreq)++] =
			(struct ibc_link_req){ x->parent, true, IBC__STREAM_TREE(t, ch, 0) };
		x->l_dn_parent = *nreq;
		req[(*nreq)++] =
			(struct ibc_link_req){ x->parent, false, IBC__STREAM_TREE(t, ch, 1) };
	}
	for (i = 0; i < x->nch; i++) {
		x->l_up_child[i] = *nreq;
		req[(*nreq)++] =
			(struct ibc_link_req){ x->child[i], false, IBC__STREAM_TREE(t, ch, 0) };
		x->l_dn_child[i] = *nreq;
		req[(*nreq)++] =
			(struct ibc_link_req){ x->child[i], true, IBC__STREAM_TREE(t, ch, 1) };
	}
}

/* Connect every node's links and start the program: lanes (t C + ch) 2 (up) and + 1 (down). */
static int tree_connect(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p,
			struct tree_node tn[2][IBC_MAX_CHANNELS])
{
	int C = a->channels, t, ch, rc, nreq = 0;
	struct ibc_link_req *req = calloc((size_t)(12 * C), sizeof(*req));
	struct ibc_link **links = calloc((size_t)(12 * C), sizeof(*links));

	if (!req || !links) {
		free(req);
		free(links);
		return -ENOMEM;
	}
	for (t = 0; t < 2; t++)
		for (ch = 0; ch < C; ch++)
			tree_node_links(c->nranks, c->rank, t, ch, &tn[t][ch], req, &nreq);
	rc = ibc_comm_connect(c, req, nreq, links);
	free(req);
	if (!rc)
		rc = ibc_prog_init(p, 4 * C, NULL, 0, a->dt, a->op, c->nranks);
	if (rc) {
		free(links);
		return rc;
	}
	return ibc_prog_set_links(p, links, nreq);
}

/* Reduce up, on lane up, the k elements at byte offset o: a leaf sends its input; an interior
 * node reduces its children's into the output and sends that on, the root finishes it. */
static int tree_up(struct ibc_prog *p, const struct ibc_coll_args *a,
		   const struct tree_node *x, int up, size_t o, size_t k)
{
	char *in = a->in->ptr, *out = a->out->ptr;
	int rc;

	if (x->nch == 0)
		return ibc__add(p, up, IBC_OPK_SEND, x->l_up_parent, k, in + o, NULL, a->in->mr);
	rc = ibc__add(p, up, IBC_OPK_RECV_REDUCE, x->l_up_child[0], k, in + o, out + o,
		      a->out->mr);
	if (!rc && x->nch == 2)
		rc = ibc__add(p, up, IBC_OPK_RECV_REDUCE, x->l_up_child[1], k, out + o, out + o,
			      a->out->mr);
	if (!rc && x->parent >= 0)
		rc = ibc__add(p, up, IBC_OPK_SEND, x->l_up_parent, k, out + o, NULL, a->out->mr);
	else if (!rc)
		rc = ibc__add(p, up, IBC_OPK_FINISH, -1, k, NULL, out + o, NULL);
	return rc;
}

/* Broadcast down, on lane dn, the k elements at byte offset o: the root waits until lane up
 * has reduced them, the others receive them from the parent; then on to the children. */
static int tree_down(struct ibc_prog *p, const struct ibc_coll_args *a,
		     const struct tree_node *x, int up, int dn, size_t o, size_t k)
{
	char *out = a->out->ptr;
	int i, rc;

	if (x->parent < 0) {
		struct ibc_step w = { .kind = IBC_OPK_WAIT_LANE, .lane = up,
				      .pc = p->lanes[up].nops };

		rc = ibc_prog_add(p, dn, &w);
	} else {
		rc = ibc__add(p, dn, IBC_OPK_RECV_COPY, x->l_dn_parent, k, NULL, out + o,
			      a->out->mr);
	}
	for (i = 0; i < x->nch && !rc; i++)
		rc = ibc__add(p, dn, IBC_OPK_SEND, x->l_dn_child[i], k, out + o, NULL,
			      a->out->mr);
	return rc;
}

/* Tree t of channel ch: its half of the channel's elements, chunk by chunk. */
static int tree_half(struct ibc_prog *p, const struct ibc_coll_args *a,
		     const struct tree_node *x, int t, int ch)
{
	int C = a->channels, up = (t * C + ch) * 2, dn = up + 1, rc = 0;
	size_t es = ibc_dtype_size(a->dt), celem = IBC_MAX(a->chunk_bytes / es, 1);
	size_t cs = ibc__part(a->count, (size_t)ch, (size_t)C);
	size_t m = ibc__part(a->count, (size_t)ch + 1, (size_t)C) - cs;
	size_t hs = cs + (t == 0 ? 0 : m / 2), hl = t == 0 ? m / 2 : m - m / 2;
	size_t K = IBC_MAX((hl + celem - 1) / celem, 1), j;

	for (j = 0; j < K && !rc; j++) {
		size_t o = (hs + ibc__part(hl, j, K)) * es;
		size_t k = ibc__part(hl, j + 1, K) - ibc__part(hl, j, K);

		rc = tree_up(p, a, x, up, o, k);
		if (!rc)
			rc = tree_down(p, a, x, up, dn, o, k);
	}
	return rc;
}

int ibc__tree_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	struct tree_node tn[2][IBC_MAX_CHANNELS];
	int t, ch, rc;

	rc = tree_connect(c, a, p, tn);
	for (t = 0; t < 2 && !rc; t++)
		for (ch = 0; ch < a->channels && !rc; ch++)
			rc = tree_half(p, a, &tn[t][ch], t, ch);
	return rc;
}
