/* SPDX-License-Identifier: MIT */
/*
 * test_coll.c - ring and tree all-reduce over shm and tcp, 1..8 ranks forked locally, every
 * dtype and op, in-place and out-of-place, awkward counts; results compared bit for bit.
 * Also the double-binary-tree shape for every size up to 1000.
 */
#include "bootstrap.h"
#include "coll.h"
#include "comm.h"
#include "dtype.h"
#include "ibc_common.h"
#include "launch.h"
#include "tap.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

struct tcase {
	const char *transport;
	enum ibc_algo algo;
	int channels;
	size_t chunk;
};

static int run_one(struct ibc_comm *c, const struct tcase *t, size_t count, enum ibc_dtype dt,
		   enum ibc_op op, int inplace, struct ibc_buf *in, struct ibc_buf *out)
{
	struct ibc_coll_args a = { .algo = t->algo, .in = in, .out = inplace ? in : out,
				   .count = count, .dt = dt, .op = op, .channels = t->channels,
				   .chunk_bytes = t->chunk };
	struct ibc_check_result cr;
	struct ibc_prog p;
	int rc, it;

	rc = ibc_allreduce_prepare(c, &a, &p);
	if (rc) {
		ibc_log("prepare: %s", ibc_err_get());
		return rc;
	}
	for (it = 0; it < 2 && !rc; it++) { /* twice: programs are reusable */
		ibc_fill(in->ptr, 0, count, dt, op, c->rank, c->nranks, (uint64_t)it + 11);
		if (!inplace)
			ibc_poison(out->ptr, count, dt);
		rc = ibc_prog_run(c, &p);
		if (rc) {
			ibc_log("run: %s", ibc_err_get());
			break;
		}
		ibc_check(a.out->ptr, count, dt, op, c->nranks, (uint64_t)it + 11, &cr);
		if (cr.wrong) {
			ibc_log("%s %s n=%d count=%zu %s %s %s: %zu wrong, first %zu expected %s got %s",
				t->transport, ibc_algo_name(t->algo), c->nranks, count,
				ibc_dtype_name(dt), ibc_op_name(op), inplace ? "in" : "out", cr.wrong,
				cr.first_index, cr.expected, cr.got);
			rc = -EIO;
		}
	}
	ibc_prog_free(&p);
	return rc;
}

static int rank_fn(const struct ibc_rank_ctx *rc_, void *arg)
{
	const struct tcase *t = arg;
	static const size_t counts[] = { 0, 1, 2, 3, 7, 13, 64, 1000, 4097, 100003 };
	struct ibc_boot_opts bo = { .rank = rc_->rank, .nranks = rc_->nranks, .root = rc_->root,
				    .root_fd = rc_->root_fd, .job_id = rc_->job_id,
				    .timeout_ms = 20000, .abort_flag = &rc_->job->abort };
	struct ibc_comm_opts co = { .timeout_ms = 20000, .abort_flag = &rc_->job->abort,
				    .depth = 3, .max_chunk = 1 << 16 };
	struct ibc_boot *b;
	struct ibc_comm c;
	struct ibc_buf in, out;
	size_t maxc = 100003 * 8;
	int rc, d, o, ci, ip, fails = 0;

	ibc_log_set_rank(rc_->rank);
	if (ibc_boot_init(&bo, &b)) {
		ibc_log("boot: %s", ibc_err_get());
		return 3;
	}
	if (ibc_tp_lookup(t->transport, &co.ops) || ibc_comm_init(&c, b, &co)) {
		ibc_log("comm: %s", ibc_err_get());
		return 3;
	}
	if (ibc_comm_alloc(&c, maxc, &in) || ibc_comm_alloc(&c, maxc, &out))
		return 3;
	/* every dtype with sum on a few counts; every op on float/int32/half */
	for (d = 0; d < IBC_DTYPE_COUNT; d++)
		for (o = 0; o < IBC_OP_COUNT; o++) {
			int all_ops = d == IBC_FLOAT || d == IBC_INT32 || d == IBC_BF16;

			if (o != IBC_OP_SUM && !all_ops)
				continue;
			for (ci = 0; ci < (int)IBC_ARRAY_SIZE(counts); ci++) {
				if (counts[ci] > 1000 && !(d == IBC_FLOAT && o == IBC_OP_SUM) &&
				    counts[ci] != 4097)
					continue;
				for (ip = 0; ip < 2; ip++) {
					rc = run_one(&c, t, counts[ci], (enum ibc_dtype)d,
						     (enum ibc_op)o, ip, &in, &out);
					if (rc == -EIO)
						fails++;
					else if (rc)
						return 3;
				}
			}
		}
	ibc_boot_barrier(b);
	ibc_comm_free(&c, &in);
	ibc_comm_free(&c, &out);
	ibc_comm_fini(&c);
	ibc_boot_fini(b);
	return fails ? 1 : 0;
}

static void tree_shapes(void)
{
	int n, bad = 0;

	for (n = 1; n <= 1000 && !bad; n++) {
		int t;

		for (t = 0; t < 2 && !bad; t++) {
			int *nchild = calloc((size_t)n, sizeof(int)), r, roots = 0, leaves_both = 0;

			for (r = 0; r < n; r++) {
				int p, c0, c1, pp, a, b;

				ibc_dbtree(n, r, t, &p, &c0, &c1);
				if (p < 0)
					roots++;
				if (p >= 0) {
					nchild[p]++;
					/* the parent must list r as a child */
					ibc_dbtree(n, p, t, &pp, &a, &b);
					if (a != r && b != r)
						bad = 1;
				}
				if (t == 1 && n % 2 == 0) {
					int q, d0, d1;

					ibc_dbtree(n, r, 0, &q, &d0, &d1);
					if (d0 < 0 && d1 < 0 && c0 < 0 && c1 < 0)
						leaves_both++;
				}
			}
			for (r = 0; r < n; r++)
				if (nchild[r] > 2)
					bad = 1;
			if (roots != 1 || leaves_both > (n > 2 ? 0 : 1))
				bad = 1;
			if (bad)
				diag("tree %d of %d ranks: roots %d, leaves in both trees %d", t, n,
				     roots, leaves_both);
			free(nchild);
		}
	}
	ok(!bad, "double binary tree: one root, <= 2 children, parent/child agree, no rank is a "
		 "leaf in both trees (even n), n = 1..1000");
}

int main(void)
{
	static const int ns[] = { 1, 2, 3, 4, 5, 8 };
	static const char *const tps[] = { "shm", "tcp" };
	int ti, ai, ni;

	tap_plan(1 + 2 * 2 * 6 + 2 + 2 + 2 + 2 * 6 + 2 * 6 + 1);
	tree_shapes();
	for (ti = 0; ti < 2; ti++)
		for (ai = 0; ai < 2; ai++)
			for (ni = 0; ni < 6; ni++) {
				struct tcase t = { tps[ti], (enum ibc_algo)ai, ni % 2 ? 2 : 3,
						   ni % 3 ? 4096 : 1000 };
				int code = ibc_launch_local(ns[ni], rank_fn, &t, 10000);

				is_int(code, 0, "%s %s %d ranks, %d channels, chunk %zu: all dtypes/ops "
						"bit-exact", tps[ti], ai ? "tree" : "ring", ns[ni],
				       t.channels, t.chunk);
			}
	/* recursive doubling: powers of two and the fold for the rest */
	for (ti = 0; ti < 2; ti++)
		for (ni = 0; ni < 6; ni++) {
			struct tcase t = { tps[ti], IBC_ALGO_RD, 1, ni % 3 ? 4096 : 1000 };

			is_int(ibc_launch_local(ns[ni], rank_fn, &t, 10000), 0,
			       "%s rd %d ranks: all dtypes/ops bit-exact", tps[ti], ns[ni]);
		}
	/* recursive halving then doubling: powers of two, and the fold for 1, 2 and 3 extra */
	for (ti = 0; ti < 2; ti++)
		for (ni = 0; ni < 6; ni++) {
			static const int rn[] = { 2, 3, 4, 6, 7, 8 };
			struct tcase t = { tps[ti], IBC_ALGO_RHD, 1, ni % 3 ? 4096 : 1000 };

			is_int(ibc_launch_local(rn[ni], rank_fn, &t, 10000), 0,
			       "%s rhd %d ranks: all dtypes/ops bit-exact", tps[ti], rn[ni]);
		}
	/* no direct reads on shm: the staged (post_recv) path */
	setenv("IBCOLL_NO_DIRECT", "1", 1);
	{
		struct tcase t = { "shm", IBC_ALGO_RHD, 1, 4096 };

		is_int(ibc_launch_local(6, rank_fn, &t, 10000), 0,
		       "shm without direct reads, rhd, 6 ranks");
	}
	for (ai = 0; ai < 2; ai++) {
		struct tcase t = { "shm", (enum ibc_algo)ai, 2, 4096 };

		is_int(ibc_launch_local(3, rank_fn, &t, 10000), 0,
		       "shm without direct reads, %s, 3 ranks", ai ? "tree" : "ring");
	}
	/* no eager slots: every message above 32 bytes goes single copy from the sender */
	unsetenv("IBCOLL_NO_DIRECT");
	setenv("IBCOLL_SHM_EAGER", "0", 1);
	for (ai = 0; ai < 2; ai++) {
		struct tcase t = { "shm", (enum ibc_algo)ai, 2, 4096 };

		is_int(ibc_launch_local(3, rank_fn, &t, 10000), 0,
		       "shm without eager slots, %s, 3 ranks", ai ? "tree" : "ring");
	}
	/* the largest eager limit: every message up to 4 KiB through the slots */
	setenv("IBCOLL_SHM_EAGER", "4096", 1);
	for (ai = 0; ai < 2; ai++) {
		struct tcase t = { "shm", (enum ibc_algo)ai, 2, 4096 };

		is_int(ibc_launch_local(3, rank_fn, &t, 10000), 0,
		       "shm with 4 KiB eager slots, %s, 3 ranks", ai ? "tree" : "ring");
	}
	unsetenv("IBCOLL_SHM_EAGER");
	return tap_done();
}
