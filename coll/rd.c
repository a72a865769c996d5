/* SPDX-License-Identifier: MIT */
/* rd.c - the latency algorithms (coll.h): recursive doubling (rd) and recursive halving then
 * doubling (rhd, Rabenseifner), on the largest power of two of ranks, the others folded in. */
#include "coll.h"
#include "coll_int.h"
#include "ibc_common.h"

#include <stdlib.h>
#include <string.h>

/* Add one op per chunk of a whole-buffer transfer (messages of at most chunk elements). */
static int rd_chunks(struct ibc_prog *p, int kind, int link, size_t count, size_t celem,
		     const char *src, char *dst, struct ibc_tp_mr *mr, size_t es)
{
	size_t off, k;
	int rc = 0;

	if (count == 0)
		return ibc__add(p, 0, kind, link, 0, src, dst, mr);
	for (off = 0; off < count && !rc; off += k) {
		k = IBC_MIN(celem, count - off);
		rc = ibc__add(p, 0, kind, link, k, src ? src + off * es : NULL,
			      dst ? dst + off * es : NULL, mr);
	}
	return rc;
}

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
			rc = ibc__add(p, 0, IBC_OPK_SEND, lsend, sn ? IBC_MIN(celem, sn - off) : 0,
				      sbuf + off * es, NULL, smr);
		if (!rc && i < nr)
			rc = ibc__add(p, 0, kind, lrecv, rn ? IBC_MIN(celem, rn - off) : 0,
				      rsrc ? rsrc + off * es : NULL, rdst + off * es, rmr);
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

/* ---------------------------------------------------------------- recursive doubling */

/* Rank r's partners in order (its fold partner first, then newrank ^ 2^k for rising k) with a
 * send link lsend[i] and a receive link lrecv[i] to each. Returns the number of partners. */
static int rd_links(int r, int p2, int rem, int newrank, struct ibc_link_req *req, int *lsend,
		    int *lrecv)
{
	int partner[34], nsteps = 0, mask, i;

	if (r < 2 * rem) /* the fold partner (r +- 1) */
		partner[nsteps++] = r % 2 ? r - 1 : r + 1;
	for (mask = 1; newrank >= 0 && mask < p2; mask <<= 1)
		partner[nsteps++] = fold_rank(newrank ^ mask, rem);
	for (i = 0; i < nsteps; i++) {
		lsend[i] = 2 * i;
		req[2 * i] = (struct ibc_link_req){ partner[i], true, IBC__STREAM_RD };
		lrecv[i] = 2 * i + 1;
		req[2 * i + 1] = (struct ibc_link_req){ partner[i], false, IBC__STREAM_RD };
	}
	return nsteps;
}

/* One exchange: send cur, reduce the partner's copy with cur. The partner may read the buffer
 * we send (cur) in place until it has consumed our send: while cur is the input and the output
 * is another buffer, reduce straight into the output; else into the scratch, wait until our
 * sends completed, then copy the scratch into the output. */
static int rd_exchange(struct ibc_prog *p, const struct ibc_coll_args *a, int lsend, int lrecv,
		       const char *cur, struct ibc_tp_mr *cur_mr, const struct ibc_buf *scr,
		       size_t celem)
{
	struct ibc_step w = { .kind = IBC_OPK_WAIT_SENDS, .link = lsend };
	size_t es = ibc_dtype_size(a->dt);
	bool direct_out = cur == a->in->ptr && a->in->ptr != a->out->ptr;
	char *dst = direct_out ? (char *)a->out->ptr : (char *)scr->ptr;
	int rc;

	rc = xchg(p, lsend, cur, a->count, cur_mr, lrecv, IBC_OPK_RECV_REDUCE, cur, dst, a->count,
		  direct_out ? a->out->mr : scr->mr, celem, es);
	if (rc || direct_out)
		return rc;
	rc = ibc_prog_add(p, 0, &w);
	return rc ? rc : ibc__add(p, 0, IBC_OPK_COPY, -1, a->count, scr->ptr, a->out->ptr, NULL);
}

int ibc__rd_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int r = c->rank, p2, rem, newrank, i = 0, rc, nsteps;
	size_t es = ibc_dtype_size(a->dt), bytes = a->count * es;
	size_t celem = IBC_MAX(a->chunk_bytes / es, 1);
	struct ibc_link_req req[2 * 32 + 2];
	int lsend[34], lrecv[34];
	struct ibc_buf *scr;
	char *out = a->out->ptr;
	const char *cur = a->in->ptr;
	struct ibc_tp_mr *cur_mr = a->in->mr;

	if (c->device) {
		ibc_err_set("--algo rd runs on host memory only");
		return -ENOTSUP;
	}
	fold_plan(c->nranks, r, &p2, &rem, &newrank);
	nsteps = rd_links(r, p2, rem, newrank, req, lsend, lrecv);
	rc = one_lane_start(c, a, p, req, 2 * nsteps, bytes ? bytes : 64, &scr);
	if (rc)
		return rc;
	if (newrank < 0) /* folded: hand the input over, get the result back */
		return fold_handover(p, a, lsend[0], lrecv[0], celem, es);
	if (r < 2 * rem) { /* take the folded partner's input */
		rc = rd_chunks(p, IBC_OPK_RECV_REDUCE, lrecv[0], a->count, celem, a->in->ptr, out,
			       a->out->mr, es);
		cur = out;
		cur_mr = a->out->mr;
		i = 1;
	}
	for (; i < nsteps && !rc; i++) {
		rc = rd_exchange(p, a, lsend[i], lrecv[i], cur, cur_mr, scr, celem);
		cur = out;
		cur_mr = a->out->mr;
	}
	if (!rc)
		rc = ibc__add(p, 0, IBC_OPK_FINISH, -1, a->count, NULL, out, NULL);
	if (!rc && r < 2 * rem) /* the result back to the folded partner */
		rc = rd_chunks(p, IBC_OPK_SEND, lsend[0], a->count, celem, out, NULL, a->out->mr,
			       es);
	return rc;
}

/* ---------------------------------------------------------------- halving then doubling */

/* Links of rhd: to the fold partner (send at *lfold, receive at *lfold + 1; -1 when none),
 * and per step s the partner newrank ^ mask (mask from p2 / 2 down) with a reduce-scatter pair
 * (lrs[s], + 1) and an allgather pair (lag[s], + 1). Returns the number of steps. */
static int rhd_links(int r, int p2, int rem, int newrank, struct ibc_link_req *req, int *nreq,
		     int *lfold, int *lrs, int *lag)
{
	int nsteps = 0, mask, partner = r % 2 ? r - 1 : r + 1;

	*lfold = -1;
	if (r < 2 * rem) { /* the fold partner (r +- 1) */
		*lfold = *nreq;
		req[(*nreq)++] = (struct ibc_link_req){ partner, true, IBC__STREAM_RHD_RS };
		req[(*nreq)++] = (struct ibc_link_req){ partner, false, IBC__STREAM_RHD_RS };
	}
	for (mask = p2 / 2; newrank >= 0 && mask >= 1; mask >>= 1) {
		partner = fold_rank(newrank ^ mask, rem);
		lrs[nsteps] = *nreq;
		req[(*nreq)++] = (struct ibc_link_req){ partner, true, IBC__STREAM_RHD_RS };
		req[(*nreq)++] = (struct ibc_link_req){ partner, false, IBC__STREAM_RHD_RS };
		lag[nsteps] = *nreq;
		req[(*nreq)++] = (struct ibc_link_req){ partner, true, IBC__STREAM_RHD_AG };
		req[(*nreq)++] = (struct ibc_link_req){ partner, false, IBC__STREAM_RHD_AG };
		nsteps++;
	}
	return nsteps;
}

/* Recursive halving then doubling (Rabenseifner). Reduce-scatter: at each step the partner
 * (newrank ^ mask, mask from p2/2 down) and we split our common range in halves; we send the
 * half it keeps and reduce its copy of the half we keep into the output. Then each rank owns
 * count/p2 fully reduced elements (finished there: avg divides only that block). Allgather:
 * the steps backwards, each sending all we own and receiving as much. Every rank moves
 * 2 (p2-1)/p2 of the buffer, like a ring, in 2 log2(p2) steps instead of 2 (n-1).
 * No scratch: within a step the range sent and the range written are disjoint, and a range we
 * sent is written again only after the partner consumed it (it sends the reply after). */
int ibc__rhd_prog(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int r = c->rank, p2, rem, newrank, mask, nreq = 0, nsteps, s, rc;
	size_t es = ibc_dtype_size(a->dt), celem = IBC_MAX(a->chunk_bytes / es, 1);
	size_t lo = 0, hi = a->count, klo[32], khi[32], glo[32], ghi[32];
	int lrs[32], lag[32], lfold;
	struct ibc_link_req req[4 * 32 + 2];
	char *in = a->in->ptr, *out = a->out->ptr;
	const char *cur = in;
	struct ibc_tp_mr *cur_mr = a->in->mr, *omr = a->out->mr;

	if (c->device) {
		ibc_err_set("--algo rhd runs on host memory only");
		return -ENOTSUP;
	}
	fold_plan(c->nranks, r, &p2, &rem, &newrank);
	nsteps = rhd_links(r, p2, rem, newrank, req, &nreq, &lfold, lrs, lag);
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
		rc = ibc__add(p, 0, IBC_OPK_FINISH, -1, hi - lo, NULL, out + lo * es, NULL);
	for (s = nsteps - 1; !rc && s >= 0; s--)
		rc = xchg(p, lag[s], out + klo[s] * es, khi[s] - klo[s], omr, lag[s] + 1,
			  IBC_OPK_RECV_COPY, NULL, out + glo[s] * es, ghi[s] - glo[s], omr, celem,
			  es);
	if (!rc && lfold >= 0) /* the result back to the folded partner */
		rc = rd_chunks(p, IBC_OPK_SEND, lfold, a->count, celem, out, NULL, omr, es);
	return rc;
}
