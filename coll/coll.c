/* SPDX-License-Identifier: MIT */
#include "coll.h"
#include "ibc_common.h"

#include <stdlib.h>
#include <string.h>

#define STREAM_RING(c) (0x100 + (c))
#define STREAM_TREE(t, c, down) (0x200 + ((t)*IBC_MAX_CHANNELS + (c)) * 2 + (down))

static const char *const algo_names[IBC_ALGO_COUNT] = { "ring", "tree", "mpi", "rd", "rhd" };

const char *ibc_algo_name(enum ibc_algo a)
{
	return a < IBC_ALGO_COUNT ? algo_names[a] : "?";
}

int ibc_algo_parse(const char *s, enum ibc_algo *a)
{
	int i;

	for (i = 0; i < IBC_ALGO_COUNT; i++)
		if (strcmp(s, algo_names[i]) == 0) {
			*a = (enum ibc_algo)i;
			return 0;
		}
	return -EINVAL;
}

/* ---------------------------------------------------------------- trees */

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

/* ---------------------------------------------------------------- programs */

static size_t part(size_t n, size_t i, size_t parts)
{
	/* start of part i of n split into `parts` nearly equal pieces, no overflow for n < 2^56 */
	return (size_t)(((unsigned __int128)n * i) / parts);
}

static int add(struct ibc_prog *p, int lane, int kind, int link, size_t count, const void *src,
	       void *dst, struct ibc_tp_mr *mr)
{
	struct ibc_step op = { .kind = (uint8_t)kind, .link = link, .count = count, .src = src,
			     .dst = dst, .mr = mr };

	return ibc_prog_add(p, lane, &op);
}

static int local_prog(const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int rc = ibc_prog_init(p, 1, NULL, 0, a->dt, a->op, 1);

	if (!rc && a->in->ptr != a->out->ptr)
		rc = add(p, 0, IBC_OPK_COPY, -1, a->count, a->in->ptr, a->out->ptr, NULL);
	if (!rc)
		rc = add(p, 0, IBC_OPK_FINISH, -1, a->count, NULL, a->out->ptr, NULL);
	return rc;
}

static int ring_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int n = c->nranks, r = c->rank, C = a->channels, ch, rc;
	size_t es = ibc_dtype_size(a->dt), celem = IBC_MAX(a->chunk_bytes / es, 1);
	struct ibc_link_req req[2 * IBC_MAX_CHANNELS];
	struct ibc_link *links[2 * IBC_MAX_CHANNELS];
	char *in = a->in->ptr, *out = a->out->ptr;

	for (ch = 0; ch < C; ch++) {
		req[2 * ch] = (struct ibc_link_req){ (r + 1) % n, true, STREAM_RING(ch) };
		req[2 * ch + 1] = (struct ibc_link_req){ (r - 1 + n) % n, false, STREAM_RING(ch) };
	}
	rc = ibc_comm_connect(c, req, 2 * C, links);
	if (rc)
		return rc;
	rc = ibc_prog_init(p, C, NULL, 0, a->dt, a->op, n);
	if (rc)
		return rc;
	{
		struct ibc_link **own = malloc(sizeof(*links) * 2 * (size_t)C);

		if (!own)
			return -ENOMEM;
		memcpy(own, links, sizeof(*links) * 2 * (size_t)C);
		rc = ibc_prog_set_links(p, own, 2 * C);
		if (rc)
			return rc;
	}

	for (ch = 0; ch < C; ch++) {
		size_t cs = part(a->count, (size_t)ch, (size_t)C);
		size_t m = part(a->count, (size_t)ch + 1, (size_t)C) - cs;
		size_t maxseg = (m + (size_t)n - 1) / (size_t)n;
		size_t K = IBC_MAX((maxseg + celem - 1) / celem, 1), j;
		int sl = 2 * ch, rl = 2 * ch + 1, s;

		for (j = 0; j < K; j++) {
#define SEG_OFF(k) (cs + part(m, (size_t)(k), (size_t)n))
#define SEG_LEN(k) (part(m, (size_t)(k) + 1, (size_t)n) - part(m, (size_t)(k), (size_t)n))
#define CH_OFF(k) (SEG_OFF(k) + part(SEG_LEN(k), j, K))
#define CH_LEN(k) (part(SEG_LEN(k), j + 1, K) - part(SEG_LEN(k), j, K))
			for (s = 0; s < n - 1 && !rc; s++) {
				int sk = ((r - s) % n + n) % n, rk = ((r - s - 1) % n + n) % n;
				const char *src = (s == 0 ? in : out) + CH_OFF(sk) * es;

				rc = add(p, ch, IBC_OPK_SEND, sl, CH_LEN(sk), src, NULL,
					 s == 0 ? a->in->mr : a->out->mr);
				if (!rc)
					rc = add(p, ch, IBC_OPK_RECV_REDUCE, rl, CH_LEN(rk),
						 in + CH_OFF(rk) * es, out + CH_OFF(rk) * es,
						 a->out->mr);
			}
			if (!rc && a->op == IBC_OP_AVG)
				rc = add(p, ch, IBC_OPK_FINISH, -1, CH_LEN((r + 1) % n), NULL,
					 out + CH_OFF((r + 1) % n) * es, NULL);
			for (s = 0; s < n - 1 && !rc; s++) {
				int sk = ((r + 1 - s) % n + n) % n, rk = ((r - s) % n + n) % n;

				rc = add(p, ch, IBC_OPK_SEND, sl, CH_LEN(sk),
					 out + CH_OFF(sk) * es, NULL, a->out->mr);
				if (!rc)
					rc = add(p, ch, IBC_OPK_RECV_COPY, rl, CH_LEN(rk), NULL,
						 out + CH_OFF(rk) * es, a->out->mr);
			}
#undef SEG_OFF
#undef SEG_LEN
#undef CH_OFF
#undef CH_LEN
			if (rc)
				return rc;
		}
	}
	return 0;
}

struct tree_node {
	int parent, child[2], nch;
	int l_up_parent, l_dn_parent, l_up_child[2], l_dn_child[2]; /* program link indices */
};

static int tree_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int n = c->nranks, r = c->rank, C = a->channels, t, ch, i, rc, nreq = 0;
	size_t es = ibc_dtype_size(a->dt), celem = IBC_MAX(a->chunk_bytes / es, 1);
	struct tree_node tn[2][IBC_MAX_CHANNELS];
	struct ibc_link_req *req = calloc((size_t)(12 * C), sizeof(*req));
	struct ibc_link **links = calloc((size_t)(12 * C), sizeof(*links));
	char *in = a->in->ptr, *out = a->out->ptr;

	if (!req || !links) {
		free(req);
		free(links);
		return -ENOMEM;
	}
	for (t = 0; t < 2; t++) {
		for (ch = 0; ch < C; ch++) {
			struct tree_node *x = &tn[t][ch];

			ibc_dbtree(n, r, t, &x->parent, &x->child[0], &x->child[1]);
			x->nch = (x->child[0] >= 0) + (x->child[1] >= 0);
			if (x->child[0] < 0 && x->child[1] >= 0) {
				x->child[0] = x->child[1];
				x->child[1] = -1;
			}
			if (x->parent >= 0) {
				x->l_up_parent = nreq;
				req[nreq++] = (struct ibc_link_req){ x->parent, true,
								     STREAM_TREE(t, ch, 0) };
				x->l_dn_parent = nreq;
				req[nreq++] = (struct ibc_link_req){ x->parent, false,
								     STREAM_TREE(t, ch, 1) };
			}
			for (i = 0; i < x->nch; i++) {
				x->l_up_child[i] = nreq;
				req[nreq++] = (struct ibc_link_req){ x->child[i], false,
								     STREAM_TREE(t, ch, 0) };
				x->l_dn_child[i] = nreq;
				req[nreq++] = (struct ibc_link_req){ x->child[i], true,
								     STREAM_TREE(t, ch, 1) };
			}
		}
	}
	rc = ibc_comm_connect(c, req, nreq, links);
	free(req);
	if (!rc)
		rc = ibc_prog_init(p, 4 * C, NULL, 0, a->dt, a->op, n);
	if (rc) {
		free(links);
		return rc;
	}
	rc = ibc_prog_set_links(p, links, nreq);
	if (rc)
		return rc;

	for (t = 0; t < 2; t++) {
		for (ch = 0; ch < C && !rc; ch++) {
			struct tree_node *x = &tn[t][ch];
			size_t cs = part(a->count, (size_t)ch, (size_t)C);
			size_t m = part(a->count, (size_t)ch + 1, (size_t)C) - cs;
			size_t hs = cs + (t == 0 ? 0 : m / 2), hl = t == 0 ? m / 2 : m - m / 2;
			size_t K = IBC_MAX((hl + celem - 1) / celem, 1), j;
			int up = (t * C + ch) * 2, dn = up + 1;

			for (j = 0; j < K && !rc; j++) {
				size_t o = (hs + part(hl, j, K)) * es;
				size_t k = part(hl, j + 1, K) - part(hl, j, K);

				/* reduce up */
				if (x->nch == 0) {
					rc = add(p, up, IBC_OPK_SEND, x->l_up_parent, k, in + o, NULL,
						 a->in->mr);
				} else {
					rc = add(p, up, IBC_OPK_RECV_REDUCE, x->l_up_child[0], k,
						 in + o, out + o, a->out->mr);
					if (!rc && x->nch == 2)
						rc = add(p, up, IBC_OPK_RECV_REDUCE,
							 x->l_up_child[1], k, out + o, out + o,
							 a->out->mr);
					if (!rc && x->parent >= 0)
						rc = add(p, up, IBC_OPK_SEND, x->l_up_parent, k,
							 out + o, NULL, a->out->mr);
					else if (!rc)
						rc = add(p, up, IBC_OPK_FINISH, -1, k, NULL,
							 out + o, NULL);
				}
				/* broadcast down */
				if (!rc && x->parent < 0) {
					struct ibc_step w = { .kind = IBC_OPK_WAIT_LANE,
							    .lane = up,
							    .pc = p->lanes[up].nops };

					rc = ibc_prog_add(p, dn, &w);
				} else if (!rc) {
					rc = add(p, dn, IBC_OPK_RECV_COPY, x->l_dn_parent, k, NULL,
						 out + o, a->out->mr);
				}
				for (i = 0; i < x->nch && !rc; i++)
					rc = add(p, dn, IBC_OPK_SEND, x->l_dn_child[i], k, out + o,
						 NULL, a->out->mr);
			}
		}
	}
	return rc;
}

#define STREAM_RD 0x300

/* Recursive doubling. Each exchange: send the current buffer, receive the partner's and
 * reduce into the scratch buffer, wait until the partner consumed our send (it may read our
 * buffer in place), then copy the scratch into the output. */
/* Add one op per chunk of a whole-buffer transfer (messages of at most chunk elements). */
static int rd_chunks(struct ibc_prog *p, int kind, int link, size_t count, size_t celem,
		     const char *src, char *dst, struct ibc_tp_mr *mr, size_t es)
{
	size_t off, k;
	int rc = 0;

	if (count == 0)
		return add(p, 0, kind, link, 0, src, dst, mr);
	for (off = 0; off < count && !rc; off += k) {
		k = IBC_MIN(celem, count - off);
		rc = add(p, 0, kind, link, k, src ? src + off * es : NULL,
			 dst ? dst + off * es : NULL, mr);
	}
	return rc;
}

/* Recursive doubling and halving work on a power of two p2 <= n ranks. The first 2 * rem ranks
 * (rem = n - p2) pair up: the odd one of each pair hands its input to the even one (newrank
 * -1) and gets the result back; the even ones and the ranks above take part as newrank. */
static void fold_plan(int n, int r, int *p2, int *rem, int *newrank)
{
	*p2 = 1;
	while (*p2 * 2 <= n)
		*p2 *= 2;
	*rem = n - *p2;
	*newrank = r < 2 * *rem ? (r % 2 ? -1 : r / 2) : r - *rem;
}

static int fold_rank(int newrank, int rem) /* newrank -> rank */
{
	return newrank < rem ? newrank * 2 : newrank + rem;
}

/* Connect the links of a one-lane program (rd, rhd), take scratch when scr is given, and
 * start the program. */
static int one_lane_start(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p,
			  const struct ibc_link_req *req, int nreq, size_t scr_bytes,
			  struct ibc_buf **scr)
{
	struct ibc_link **links = calloc((size_t)(nreq ? nreq : 1), sizeof(*links));
	int rc;

	if (!links)
		return -ENOMEM;
	rc = ibc_comm_connect(c, req, nreq, links);
	if (!rc && scr)
		rc = ibc_comm_scratch(c, scr_bytes, scr);
	if (!rc)
		rc = ibc_prog_init(p, 1, NULL, 0, a->dt, a->op, c->nranks);
	if (rc) {
		free(links);
		return rc;
	}
	return ibc_prog_set_links(p, links, nreq);
}

/* A folded rank's whole program: its input to the partner, the result back. */
static int fold_handover(struct ibc_prog *p, const struct ibc_coll_args *a, int lsend, int lrecv,
			 size_t celem, size_t es)
{
	int rc = rd_chunks(p, IBC_OPK_SEND, lsend, a->count, celem, a->in->ptr, NULL, a->in->mr,
			   es);

	return rc ? rc : rd_chunks(p, IBC_OPK_RECV_COPY, lrecv, a->count, celem, NULL,
				   a->out->ptr, a->out->mr, es);
}

static int rd_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int n = c->nranks, r = c->rank, p2, rem, newrank, mask, nreq = 0, i, rc, nsteps = 0;
	size_t es = ibc_dtype_size(a->dt), bytes = a->count * es;
	size_t celem = IBC_MAX(a->chunk_bytes / es, 1);
	struct ibc_link_req req[2 * 32 + 2];
	int lsend[34], lrecv[34], partner[34];
	struct ibc_buf *scr;
	char *in = a->in->ptr, *out = a->out->ptr;
	const char *cur = in;
	struct ibc_tp_mr *cur_mr = a->in->mr;

	if (c->device) {
		ibc_err_set("--algo rd runs on host memory only");
		return -ENOTSUP;
	}
	fold_plan(n, r, &p2, &rem, &newrank);
	if (r < 2 * rem) /* the fold partner (r +- 1) */
		partner[nsteps++] = r % 2 ? r - 1 : r + 1;
	for (mask = 1; newrank >= 0 && mask < p2; mask <<= 1)
		partner[nsteps++] = fold_rank(newrank ^ mask, rem);
	for (i = 0; i < nsteps; i++) {
		lsend[i] = nreq;
		req[nreq++] = (struct ibc_link_req){ partner[i], true, STREAM_RD };
		lrecv[i] = nreq;
		req[nreq++] = (struct ibc_link_req){ partner[i], false, STREAM_RD };
	}
	rc = one_lane_start(c, a, p, req, nreq, bytes ? bytes : 64, &scr);
	if (rc)
		return rc;
	i = 0;
	if (newrank < 0) /* folded: hand the input over, get the result back */
		return fold_handover(p, a, lsend[0], lrecv[0], celem, es);
	if (r < 2 * rem) { /* take the folded partner's input */
		rc = rd_chunks(p, IBC_OPK_RECV_REDUCE, lrecv[0], a->count, celem, in, out,
			       a->out->mr, es);
		cur = out;
		cur_mr = a->out->mr;
		i = 1;
	}
	for (; i < nsteps && !rc; i++) {
		struct ibc_step w = { .kind = IBC_OPK_WAIT_SENDS, .link = lsend[i] };
		/* The partner may read the buffer we send (cur) in place until it has consumed
		 * our send. While cur is the input and the output is another buffer, reduce
		 * straight into the output; else into the scratch, wait, then copy. */
		bool direct_out = cur == in && in != out;
		char *dst = direct_out ? out : (char *)scr->ptr;
		size_t off, k;

		/* per chunk: send ours, reduce the partner's with ours into dst */
		for (off = 0; !rc && (off < a->count || (a->count == 0 && off == 0)); off += k) {
			k = IBC_MIN(celem, a->count - off);
			rc = add(p, 0, IBC_OPK_SEND, lsend[i], k, cur + off * es, NULL, cur_mr);
			if (!rc)
				rc = add(p, 0, IBC_OPK_RECV_REDUCE, lrecv[i], k, cur + off * es,
					 dst + off * es, direct_out ? a->out->mr : scr->mr);
			if (a->count == 0)
				break;
		}
		if (!rc && !direct_out)
			rc = ibc_prog_add(p, 0, &w);
		if (!rc && !direct_out)
			rc = add(p, 0, IBC_OPK_COPY, -1, a->count, scr->ptr, out, NULL);
		cur = out;
		cur_mr = a->out->mr;
	}
	if (!rc)
		rc = add(p, 0, IBC_OPK_FINISH, -1, a->count, NULL, out, NULL);
	if (!rc && r < 2 * rem) /* the result back to the folded partner */
		rc = rd_chunks(p, IBC_OPK_SEND, lsend[0], a->count, celem, out, NULL, a->out->mr,
			       es);
	return rc;
}

#define STREAM_RHD_RS 0x310
#define STREAM_RHD_AG 0x320

/* One exchange of element ranges with a partner, in chunks of at most celem elements: chunk
 * i of the send, then chunk i of the receive (a zero-length range is one empty message). The
 * partner cuts the same ranges the same way, so the messages match one for one. */
static int xchg(struct ibc_prog *p, int lsend, const char *sbuf, size_t sn, struct ibc_tp_mr *smr,
		int lrecv, int kind, const char *rsrc, char *rdst, size_t rn, struct ibc_tp_mr *rmr,
		size_t celem, size_t es)
{
	size_t ns = sn ? (sn + celem - 1) / celem : 1, nr = rn ? (rn + celem - 1) / celem : 1, i;
	int rc = 0;

	for (i = 0; !rc && i < IBC_MAX(ns, nr); i++) {
		size_t off = i * celem;

		if (i < ns)
			rc = add(p, 0, IBC_OPK_SEND, lsend, sn ? IBC_MIN(celem, sn - off) : 0,
				 sbuf + off * es, NULL, smr);
		if (!rc && i < nr)
			rc = add(p, 0, kind, lrecv, rn ? IBC_MIN(celem, rn - off) : 0,
				 rsrc ? rsrc + off * es : NULL, rdst + off * es, rmr);
	}
	return rc;
}

/* Recursive halving then doubling (Rabenseifner). Reduce-scatter: at each step the partner
 * (newrank ^ mask, mask from p2/2 down) and we split our common range in halves; we send the
 * half it keeps and reduce its copy of the half we keep into the output. Then each rank owns
 * count/p2 fully reduced elements (finished there: avg divides only that block). Allgather:
 * the steps backwards, each sending all we own and receiving as much. Every rank moves
 * 2 (p2-1)/p2 of the buffer, like a ring, in 2 log2(p2) steps instead of 2 (n-1).
 * No scratch: within a step the range sent and the range written are disjoint, and a range we
 * sent is written again only after the partner consumed it (it sends the reply after). */
static int rhd_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int n = c->nranks, r = c->rank, p2, rem, newrank, mask, nreq = 0, nsteps = 0, s, rc;
	size_t es = ibc_dtype_size(a->dt), celem = IBC_MAX(a->chunk_bytes / es, 1);
	size_t lo = 0, hi = a->count, klo[32], khi[32], glo[32], ghi[32];
	int partner[32], lrs[32], lag[32], lfold = -1;
	struct ibc_link_req req[4 * 32 + 2];
	char *in = a->in->ptr, *out = a->out->ptr;
	const char *cur = in;
	struct ibc_tp_mr *cur_mr = a->in->mr, *omr = a->out->mr;

	if (c->device) {
		ibc_err_set("--algo rhd runs on host memory only");
		return -ENOTSUP;
	}
	fold_plan(n, r, &p2, &rem, &newrank);
	if (r < 2 * rem) { /* links to the fold partner: send at lfold, receive at lfold + 1 */
		lfold = nreq;
		req[nreq++] = (struct ibc_link_req){ r % 2 ? r - 1 : r + 1, true, STREAM_RHD_RS };
		req[nreq++] = (struct ibc_link_req){ r % 2 ? r - 1 : r + 1, false, STREAM_RHD_RS };
	}
	for (mask = p2 / 2; newrank >= 0 && mask >= 1; mask >>= 1) {
		partner[nsteps] = fold_rank(newrank ^ mask, rem);
		lrs[nsteps] = nreq;
		req[nreq++] = (struct ibc_link_req){ partner[nsteps], true, STREAM_RHD_RS };
		req[nreq++] = (struct ibc_link_req){ partner[nsteps], false, STREAM_RHD_RS };
		lag[nsteps] = nreq;
		req[nreq++] = (struct ibc_link_req){ partner[nsteps], true, STREAM_RHD_AG };
		req[nreq++] = (struct ibc_link_req){ partner[nsteps], false, STREAM_RHD_AG };
		nsteps++;
	}
	rc = one_lane_start(c, a, p, req, nreq, 0, NULL);
	if (rc)
		return rc;
	if (newrank < 0) /* folded: hand the input over, get the result back */
		return fold_handover(p, a, lfold, lfold + 1, celem, es);
	if (lfold >= 0) { /* take the folded partner's input */
		rc = rd_chunks(p, IBC_OPK_RECV_REDUCE, lfold + 1, a->count, celem, in, out, omr,
			       es);
		cur = out;
		cur_mr = omr;
	}
	for (s = 0, mask = p2 / 2; !rc && s < nsteps; s++, mask >>= 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (newrank & mask) {
			glo[s] = lo, ghi[s] = mid, klo[s] = mid, khi[s] = hi;
		} else {
			klo[s] = lo, khi[s] = mid, glo[s] = mid, ghi[s] = hi;
		}
		rc = xchg(p, lrs[s], cur + glo[s] * es, ghi[s] - glo[s], cur_mr, lrs[s] + 1,
			  IBC_OPK_RECV_REDUCE, cur + klo[s] * es, out + klo[s] * es,
			  khi[s] - klo[s], omr, celem, es);
		lo = klo[s];
		hi = khi[s];
		cur = out;
		cur_mr = omr;
	}
	if (!rc)
		rc = add(p, 0, IBC_OPK_FINISH, -1, hi - lo, NULL, out + lo * es, NULL);
	for (s = nsteps - 1; !rc && s >= 0; s--)
		rc = xchg(p, lag[s], out + klo[s] * es, khi[s] - klo[s], omr, lag[s] + 1,
			  IBC_OPK_RECV_COPY, NULL, out + glo[s] * es, ghi[s] - glo[s], omr, celem,
			  es);
	if (!rc && lfold >= 0) /* the result back to the folded partner */
		rc = rd_chunks(p, IBC_OPK_SEND, lfold, a->count, celem, out, NULL, omr, es);
	return rc;
}

int ibc_allreduce_prepare(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	memset(p, 0, sizeof(*p));
	if (a->channels < 1 || a->channels > IBC_MAX_CHANNELS)
		return -EINVAL;
	if (a->chunk_bytes > c->max_chunk) {
		ibc_err_set("chunk of %zu bytes exceeds the engine's %zu", a->chunk_bytes,
			    c->max_chunk);
		return -EINVAL;
	}
	if (c->nranks == 1)
		return local_prog(a, p);
	switch (a->algo) {
	case IBC_ALGO_RING:
		return ring_prog(c, a, p);
	case IBC_ALGO_TREE:
		return tree_prog(c, a, p);
	case IBC_ALGO_RD:
		return rd_prog(c, a, p);
	case IBC_ALGO_RHD:
		return rhd_prog(c, a, p);
	default:
		ibc_err_set("algorithm %s is not a program of the engine", ibc_algo_name(a->algo));
		return -EINVAL;
	}
}
