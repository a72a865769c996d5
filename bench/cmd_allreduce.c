/* SPDX-License-Identifier: MIT */
/*
 * cmd_allreduce.c - `ibcoll allreduce` on a set-up rank (docs/design.md#timing-and-checks): for
 * every algorithm, dtype, op, size and placement, check the result bit for bit, time the
 * iterations, gather every rank's record at rank 0, and print and write the row.
 */
#include "bench.h"
#include "coll.h"
#include "ibc_common.h"
#include "mpi_algo.h"
#include "report.h"
#include "stats.h"
#include "table.h"

#include <stdlib.h>
#include <string.h>

/* One measurement: what runs, on which buffers. */
struct ar_case {
	enum ibc_algo algo;
	enum ibc_dtype dt;
	enum ibc_op op;
	uint64_t count, bytes;
	int place; /* enum bench_place */
	struct ibc_buf *in, *out; /* borrowed: d->in, and d->out or d->in (in-place) */
};

/* The sweep's state on this rank. */
struct ar_run {
	uint64_t sizes[BENCH_MAX_SIZES];
	int nsizes;
	struct bench_rank_rec *rec; /* owned: this rank's record of the current measurement */
	size_t reclen;
	bool write_failed; /* a row could not be written: exit 3 at the end */
};

/* Channels add connections that move data in parallel (sockets, QPs); below 512 KiB they only
 * add messages and latency, so one channel serves small sizes unless --channels was given. */
static int auto_channels(const struct bench_drv *d, uint64_t bytes)
{
	if (d->o->coll.channels_set || bytes >= (512u << 10))
		return (int)d->o->coll.channels;
	return 1;
}

static size_t auto_chunk(const struct bench_drv *d, uint64_t bytes, enum ibc_algo algo)
{
	uint64_t per, c, ch = (uint64_t)auto_channels(d, bytes);

	if (d->o->coll.chunk)
		return (size_t)d->o->coll.chunk;
	/* ring: a segment is bytes/(channels*nranks); tree: half a channel's share */
	per = algo == IBC_ALGO_RING ? bytes / (ch * (uint64_t)d->nranks) : bytes / (2 * ch);
	c = per / 4; /* at least ~4 chunks in the pipeline */
	if (c < (128u << 10))
		c = 128u << 10;
	if (c > (1u << 20))
		c = 1u << 20;
	return (size_t)c;
}

static int run_once(struct bench_drv *d, const struct ar_case *c, struct ibc_prog *prog)
{
	if (c->algo == IBC_ALGO_MPI)
		return ibc_mpi_allreduce(c->in->ptr, c->out->ptr, c->count, c->dt, c->op);
	return ibc_prog_run(&d->comm, prog);
}

/* Inputs whose reduction is exact in every order; the output poisoned (out-of-place). */
static int fill(struct bench_drv *d, const struct ar_case *c, uint64_t seed)
{
	int rc;

	if (!d->comm.device) {
		ibc_fill(c->in->ptr, 0, c->count, c->dt, c->op, d->rank, d->nranks, seed);
		if (c->out != c->in)
			ibc_poison(c->out->ptr, c->count, c->dt);
		return 0;
	}
	rc = d->mem->fill(d->memctx, c->in->ptr, c->count, c->dt, c->op, d->rank, d->nranks,
			  seed);
	if (!rc && c->out != c->in)
		rc = d->mem->poison(d->memctx, c->out->ptr, c->count, c->dt);
	if (rc)
		ibc_err_set("rank %d: filling device buffers: %s", d->rank,
			    d->mem->last_error(d->memctx));
	return rc;
}

static int verify(struct bench_drv *d, const struct ar_case *c, uint64_t seed,
		  struct ibc_check_result *cr)
{
	int rc;

	if (!d->comm.device) {
		ibc_check(c->out->ptr, c->count, c->dt, c->op, d->nranks, seed, cr);
		return 0;
	}
	rc = d->mem->check(d->memctx, c->out->ptr, c->count, c->dt, c->op, d->nranks, seed, cr);
	if (rc)
		ibc_err_set("rank %d: checking device buffers: %s", d->rank,
			    d->mem->last_error(d->memctx));
	return rc;
}

/* The -c checked iterations: wrong elements counted, the first one kept. */
static int check_iters(struct bench_drv *d, const struct ar_case *c, struct ibc_prog *prog,
		       struct bench_rank_rec *rec)
{
	struct ibc_check_result cr;
	long i;
	int rc = 0;

	for (i = 0; i < d->o->sweep.check && !rc; i++) {
		rc = fill(d, c, (uint64_t)i + 1);
		if (!rc)
			rc = run_once(d, c, prog);
		if (!rc)
			rc = verify(d, c, (uint64_t)i + 1, &cr);
		if (rc)
			break;
		if (cr.wrong && !rec->wrong) {
			rec->first = cr.first_index;
			snprintf(rec->exp, sizeof(rec->exp), "%s", cr.expected);
			snprintf(rec->got, sizeof(rec->got), "%s", cr.got);
		}
		rec->wrong += cr.wrong;
	}
	return rc;
}

/* The -w warmup and -n timed iterations. */
static int time_iters(struct bench_drv *d, const struct ar_case *c, struct ibc_prog *prog,
		      struct bench_rank_rec *rec)
{
	const struct bench_sweep_cfg *s = &d->o->sweep;
	long i;
	/* The barrier (over the bootstrap's sockets) lets ranks go at moments tens of
	 * microseconds apart; the warmup iterations that follow align them again, so that skew
	 * is not timed. */
	int rc = ibc_boot_barrier(d->boot);

	for (i = 0; i < s->warmup && !rc; i++)
		rc = run_once(d, c, prog);
	for (i = 0; i < s->iters && !rc; i++) {
		uint64_t t0 = ibc_now_ns();

		rc = run_once(d, c, prog);
		rec->times[i] = (double)(ibc_now_ns() - t0) / 1e3;
	}
	/* A rank done timing moves on to work of its own (reporting, the next size's setup);
	 * with more ranks than cores that would take the core from a rank still timing its last
	 * iteration. Wait (asleep in the bootstrap) until every rank has finished. */
	if (!rc)
		rc = ibc_boot_barrier(d->boot);
	return rc;
}

/* One measurement on this rank: 0 with rec filled, or the error of this rank. */
static int measure(struct bench_drv *d, const struct ar_case *c, struct bench_rank_rec *rec)
{
	struct ibc_coll_args a = { .algo = c->algo, .in = c->in, .out = c->out,
				   .count = c->count, .dt = c->dt, .op = c->op,
				   .channels = auto_channels(d, c->bytes),
				   .chunk_bytes = auto_chunk(d, c->bytes, c->algo) };
	struct ibc_prog prog;
	int rc = 0;

	if (c->algo == IBC_ALGO_MPI)
		memset(&prog, 0, sizeof(prog));
	else
		rc = ibc_allreduce_prepare(&d->comm, &a, &prog);
	if (!rc)
		rc = check_iters(d, c, &prog, rec);
	if (!rc)
		rc = time_iters(d, c, &prog, rec);
	ibc_prog_free(&prog);
	return rc;
}

static struct bench_row case_row(const struct bench_drv *d, const struct ar_case *c)
{
	return (struct bench_row){ .collective = "allreduce", .algo = ibc_algo_name(c->algo),
				   .dt = c->dt, .op = c->op, .place = c->place,
				   .bytes = c->bytes, .count = c->count, .wrong_ranks = "",
				   .channels = auto_channels(d, c->bytes) };
}

/* Rank 0: the wrong elements of every rank (logged, counted, listed in wr). */
static uint64_t sum_wrong(struct bench_drv *d, const struct ar_case *c, const char *all,
			  size_t reclen, char *wr, size_t wrlen, int *worst_rc)
{
	uint64_t wrong = 0;
	size_t n = 0;
	int r;

	for (r = 0; r < d->nranks; r++) {
		const struct bench_rank_rec *x = (const void *)(all + (size_t)r * reclen);

		if (x->rc)
			*worst_rc = x->rc;
		if (!x->wrong)
			continue;
		wrong += x->wrong;
		bench__rank_list_add(wr, wrlen, &n, r);
		ibc_log("wrong result: rank %d (host %s), %s %s %s %s %llu bytes: %llu wrong "
			"elements, first at index %llu: expected %s, got %s",
			r, ibc_boot_host(d->boot, r), ibc_algo_name(c->algo),
			c->place ? "in-place" : "out-of-place", ibc_dtype_name(c->dt),
			ibc_op_name(c->op), (unsigned long long)c->bytes,
			(unsigned long long)x->wrong, (unsigned long long)x->first, x->exp, x->got);
	}
	return wrong;
}

/* Rank 0: statistics, the row and the table cell of one measurement from every rank's
 * record. Without statistics (no memory) the row says error and the run stops: -errno. */
static int report_case(struct bench_drv *d, struct ar_run *run, const struct ar_case *c,
		       const char *all, char *cell, size_t cell_len)
{
	const double *times = (const double *)(all + offsetof(struct bench_rank_rec, times));
	struct bench_row row = case_row(d, c);
	struct bench_stats st;
	char wr[256] = "";
	int worst_rc = 0, rc;

	row.wrong = sum_wrong(d, c, all, run->reclen, wr, sizeof(wr), &worst_rc);
	row.wrong_ranks = wr;
	rc = bench__stats_compute(times, d->nranks, (int)d->o->sweep.iters,
				  BENCH_REC_STRIDE(d->o->sweep.iters), &st);
	if (rc) {
		ibc_log("%s %s %s %s %llu bytes: %s: stopping", ibc_algo_name(c->algo),
			c->place ? "in-place" : "out-of-place", ibc_dtype_name(c->dt),
			ibc_op_name(c->op), (unsigned long long)c->bytes, ibc_err_get());
		row.status = "error";
		bench__report_row(d, &row);
		return rc;
	}
	row.st = &st;
	row.algbw = st.mean > 0 ? (double)c->bytes / st.mean / 1e3 : 0;
	row.busbw = row.algbw * 2.0 * (d->nranks - 1) / d->nranks;
	row.status = worst_rc ? "error" : (row.wrong ? "wrong" : "ok");
	d->bw_sum += row.busbw;
	d->bw_n++;
	d->wrong_total += row.wrong;
	if (bench__report_row(d, &row))
		run->write_failed = true;
	bench__table_ar_cell(cell, cell_len, &st, row.algbw, row.busbw, row.wrong,
			     d->o->sweep.check > 0);
	return 0;
}

/* Measure c on every rank, report it at rank 0. 0, or -errno: the run stops (exit 3). */
static int run_case(struct bench_drv *d, struct ar_run *run, const struct ar_case *c,
		    char *cell, size_t cell_len)
{
	char *all = NULL;
	int rc;

	memset(run->rec, 0, run->reclen);
	bench__table_progress(d, c->algo, c->dt, c->op, c->place, c->bytes);
	rc = measure(d, c, run->rec);
	run->rec->rc = rc;
	if (!rc)
		rc = bench__gather_rec(d, run->rec, run->reclen, &all);
	if (rc) {
		/* this rank cannot go on; rank 0 records it */
		struct bench_row row = case_row(d, c);

		bench__report_failure(d, rc);
		row.status = bench__status_of(rc);
		if (d->rank == 0)
			bench__report_row(d, &row);
	} else if (d->rank == 0) {
		rc = report_case(d, run, c, all, cell, cell_len);
	}
	free(all);
	return rc;
}

/* Every size of one algorithm, dtype and op: a table line per size. */
static int run_sizes(struct bench_drv *d, struct ar_run *run, enum ibc_algo algo,
		     enum ibc_dtype dt, enum ibc_op op)
{
	struct ar_case c = { .algo = algo, .dt = dt, .op = op, .in = &d->in };
	char cell[BENCH_PLACE_COUNT][BENCH_CELL_LEN];
	int si, pl, rc;

	for (si = 0; si < run->nsizes; si++) {
		c.count = run->sizes[si] / ibc_dtype_size(dt);
		c.bytes = c.count * ibc_dtype_size(dt);
		for (pl = 0; pl < BENCH_PLACE_COUNT; pl++) {
			bench__table_ar_blank(cell[pl], sizeof(cell[pl]));
			if (!d->o->coll.place[pl])
				continue;
			c.place = pl;
			c.out = pl == BENCH_PLACE_IN ? &d->in : &d->out;
			rc = run_case(d, run, &c, cell[pl], sizeof(cell[pl]));
			if (rc)
				return rc;
		}
		if (d->rank == 0)
			bench__table_ar_line(c.bytes, c.count, dt, op, algo, cell[BENCH_PLACE_OUT],
					     cell[BENCH_PLACE_IN]);
	}
	return 0;
}

static int run_all(struct bench_drv *d, struct ar_run *run)
{
	const struct bench_coll_cfg *cc = &d->o->coll;
	int ai, di, oi, rc;

	for (ai = 0; ai < cc->nalgo; ai++)
		for (di = 0; di < cc->ndt; di++)
			for (oi = 0; oi < cc->nop; oi++) {
				rc = run_sizes(d, run, cc->algo[ai], cc->dt[di], cc->op[oi]);
				if (rc)
					return rc;
			}
	return 0;
}

int bench__allreduce_run(struct bench_drv *d)
{
	struct ar_run run = { .reclen = BENCH_REC_LEN(d->o->sweep.iters) };
	int rc;

	run.nsizes = bench__sweep_sizes(&d->o->sweep, run.sizes);
	run.rec = malloc(run.reclen);
	if (!run.rec)
		return IBC_EXIT_ENV;
	if (d->rank == 0)
		bench__table_ar_header();
	rc = run_all(d, &run);
	free(run.rec);
	if (rc)
		return IBC_EXIT_ENV;
	bench__table_progress_end(d);
	if (d->rank == 0)
		bench__table_ar_footer(d);
	if (run.write_failed)
		return IBC_EXIT_ENV;
	return d->wrong_total ? IBC_EXIT_CHECK : IBC_EXIT_OK;
}
