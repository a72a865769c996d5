/* SPDX-License-Identifier: MIT */
/*
 * cmd_sendrecv.c - `ibcoll sendrecv` on a set-up rank: point-to-point bandwidth (a window of
 * messages in flight, one way or both) and ping-pong latency between rank i and i + N/2, as
 * ib_write_bw / ib_write_lat measure, over any transport; the first message of each test is
 * checked byte for byte.
 */
#include "bench.h"
#include "ibc_common.h"
#include "report.h"
#include "stats.h"
#include "table.h"

#include <stdlib.h>
#include <string.h>

enum { MODE_BW, MODE_LAT, MODE_COUNT };

/* The sweep's state on this rank. */
struct sr_run {
	uint64_t sizes[BENCH_MAX_SIZES];
	int nsizes;
	struct bench_rank_rec *rec; /* owned: this rank's record of the current measurement */
	size_t reclen;
	bool write_failed; /* a row could not be written: exit 3 at the end */
};

/* What one size's table line shows (rank 0). */
struct sr_line {
	double gbps; /* bandwidth test */
	struct bench_stats lat; /* latency test, half round trips */
	uint64_t wrong; /* both tests so far (the table's #wrong) */
};

/* One side of a pair: the peer and the direction of this rank. */
struct sr_pair {
	int peer; /* -1: the idle last rank of an odd job */
	bool sender;
};

/* Rank i pairs with i + n/2 (the first half sends); with an odd count the last rank idles. */
static struct sr_pair pair_of(int rank, int n)
{
	int h = n / 2;

	if (rank < h)
		return (struct sr_pair){ rank + h, true };
	if (rank < 2 * h)
		return (struct sr_pair){ rank - h, false };
	return (struct sr_pair){ -1, false };
}

/* The sendrecv program: reps messages (ping-pong, bidirectional or one-way closed by a
 * zero-byte ack so the sender times delivery). */
static int sr_prog(struct bench_drv *d, struct ibc_link *const *links, uint64_t bytes, bool lat,
		   bool sender, long reps, struct ibc_prog *prog)
{
	struct ibc_link **own = malloc(2 * sizeof(*own));
	struct ibc_step s = { .kind = IBC_OPK_SEND, .link = 0, .count = bytes, .src = d->in.ptr,
			      .mr = d->in.mr };
	struct ibc_step r = { .kind = IBC_OPK_RECV_COPY, .link = 1, .count = bytes,
			      .dst = d->out.ptr, .mr = d->out.mr };
	bool bidir = d->o->sr.bidir;
	long w;
	int rc = ibc_prog_init(prog, 1, NULL, 0, IBC_UINT8, IBC_OP_SUM, 2);

	if (rc || !own) {
		free(own);
		return rc ? rc : -ENOMEM;
	}
	own[0] = links[0];
	own[1] = links[1];
	rc = ibc_prog_set_links(prog, own, 2);
	for (w = 0; w < reps && !rc; w++) {
		if (lat) { /* the sender sends then receives; the receiver mirrors */
			rc = ibc_prog_add(prog, 0, sender ? &s : &r);
			if (!rc)
				rc = ibc_prog_add(prog, 0, sender ? &r : &s);
		} else if (bidir) {
			rc = ibc_prog_add(prog, 0, &s);
			if (!rc)
				rc = ibc_prog_add(prog, 0, &r);
		} else {
			rc = ibc_prog_add(prog, 0, sender ? &s : &r);
		}
	}
	if (!rc && !lat && !bidir) {
		s.count = r.count = 0;
		rc = ibc_prog_add(prog, 0, sender ? &r : &s);
	}
	if (rc)
		ibc_prog_free(prog);
	return rc;
}

/* Idle rank in an odd job: the two barriers of the others. */
static int sr_idle(struct bench_drv *d, struct bench_rank_rec *rec)
{
	long i;
	int rc = ibc_boot_barrier(d->boot);

	if (!rc)
		rc = ibc_boot_barrier(d->boot);
	for (i = 0; i < d->o->sweep.iters; i++)
		rec->times[i] = 0;
	return rc;
}

/* Compare what arrived with what the peer filled: regenerate it. */
static int sr_verify(struct bench_drv *d, int peer, uint64_t bytes, struct bench_rank_rec *rec)
{
	const uint8_t *rb = d->out.ptr;
	uint8_t *want = malloc(bytes);
	uint64_t k;

	if (!want)
		return -ENOMEM;
	ibc_fill(want, 0, bytes, IBC_UINT8, IBC_OP_MAX, peer, d->nranks, 7);
	for (k = 0; k < bytes; k++) {
		if (want[k] == rb[k])
			continue;
		if (!rec->wrong) {
			rec->first = k;
			snprintf(rec->exp, sizeof(rec->exp), "%u", want[k]);
			snprintf(rec->got, sizeof(rec->got), "%u", rb[k]);
		}
		rec->wrong++;
	}
	free(want);
	return 0;
}

/* A first run of one message, checked byte for byte (every later message lands on the same
 * buffer, so a corrupted one would be overwritten). */
static int sr_first(struct bench_drv *d, struct ibc_link *const *links, uint64_t bytes,
		    bool lat, struct sr_pair p, struct bench_rank_rec *rec)
{
	struct ibc_prog prog;
	int rc = sr_prog(d, links, bytes, lat, p.sender, 1, &prog);

	if (rc)
		return rc;
	ibc_fill(d->in.ptr, 0, bytes, IBC_UINT8, IBC_OP_MAX, d->rank, d->nranks, 7);
	memset(d->out.ptr, 0, bytes);
	rc = ibc_prog_run(&d->comm, &prog);
	ibc_prog_free(&prog);
	if (!rc && (!p.sender || lat || d->o->sr.bidir) && bytes)
		rc = sr_verify(d, p.peer, bytes, rec);
	return rc;
}

/* Bandwidth: `window` messages in flight per iteration; latency: ping-pong, a round trip per
 * iteration. bidir: both sides stream at once. */
static int sr_measure(struct bench_drv *d, uint64_t bytes, bool lat, struct bench_rank_rec *rec)
{
	const struct bench_sweep_cfg *s = &d->o->sweep;
	struct sr_pair p = pair_of(d->rank, d->nranks);
	struct ibc_link_req req[2];
	struct ibc_link *links[2];
	struct ibc_prog prog;
	long i, total = s->warmup + s->iters;
	int rc;

	if (p.peer < 0)
		return sr_idle(d, rec);
	req[0] = (struct ibc_link_req){ p.peer, true, 0x80 };
	req[1] = (struct ibc_link_req){ p.peer, false, 0x80 };
	rc = ibc_comm_connect(&d->comm, req, 2, links);
	if (!rc)
		rc = sr_first(d, links, bytes, lat, p, rec);
	if (!rc)
		rc = sr_prog(d, links, bytes, lat, p.sender, lat ? 1 : d->o->sr.window, &prog);
	if (rc)
		return rc;
	rc = ibc_boot_barrier(d->boot);
	for (i = 0; i < total && !rc; i++) {
		uint64_t t0 = ibc_now_ns();

		rc = ibc_prog_run(&d->comm, &prog);
		if (i >= s->warmup)
			rec->times[i - s->warmup] = (double)(ibc_now_ns() - t0) / 1e3;
	}
	if (!rc) /* as for all-reduce: nobody moves on while a pair still times */
		rc = ibc_boot_barrier(d->boot);
	ibc_prog_free(&prog);
	return rc;
}

/* Rank 0: the wrong bytes of every rank in one test (logged, listed in wr); returns their sum. */
static uint64_t sum_wrong(struct bench_drv *d, uint64_t bytes, const char *all, size_t reclen,
			  char *wr, size_t wrlen)
{
	uint64_t sum = 0;
	size_t n = 0;
	int r;

	for (r = 0; r < d->nranks; r++) {
		const struct bench_rank_rec *x = (const void *)(all + (size_t)r * reclen);

		if (!x->wrong)
			continue;
		sum += x->wrong;
		bench__rank_list_add(wr, wrlen, &n, r);
		ibc_log("wrong data: rank %d (host %s) received %llu wrong bytes of %llu, first "
			"at %llu: expected %s, got %s",
			r, ibc_boot_host(d->boot, r), (unsigned long long)x->wrong,
			(unsigned long long)bytes, (unsigned long long)x->first, x->exp, x->got);
	}
	return sum;
}

/* Rank 0: statistics and the row of one test from every rank's record. Without statistics
 * (no memory) the row says error and the run stops: -errno. */
static int report_test(struct bench_drv *d, struct sr_run *run, uint64_t bytes, int mode,
		       const char *all, struct sr_line *line)
{
	const struct bench_opts *o = d->o;
	const double *times = (const double *)(all + offsetof(struct bench_rank_rec, times));
	struct bench_row row = { .collective = "sendrecv", .dt = IBC_UINT8, .op = IBC_OP_SUM,
				 .place = BENCH_PLACE_OUT, .bytes = bytes, .count = bytes,
				 .channels = 1 };
	struct bench_stats st;
	char wr[256] = "";
	uint64_t wrong;
	int rc;

	row.algo = mode == MODE_LAT ? "pingpong" : (o->sr.bidir ? "bidir" : "stream");
	/* each row counts its own test; the table line and the run count each test once */
	wrong = sum_wrong(d, bytes, all, run->reclen, wr, sizeof(wr));
	line->wrong += wrong;
	d->wrong_total += wrong;
	row.wrong_ranks = wr;
	rc = bench__stats_compute(times, d->nranks, (int)o->sweep.iters,
				  BENCH_REC_STRIDE(o->sweep.iters), &st);
	if (rc) {
		ibc_log("sendrecv %s %llu bytes: %s: stopping", row.algo, (unsigned long long)bytes,
			ibc_err_get());
		row.status = "error";
		bench__report_row(d, &row);
		return rc;
	}
	if (mode == MODE_LAT) {
		bench__stats_div(&st, 2); /* half round trip */
		line->lat = st;
		row.algbw = st.mean > 0 ? (double)bytes / st.mean / 1e3 : 0;
	} else {
		row.algbw = st.mean > 0 ? (double)bytes * (double)o->sr.window *
						  (o->sr.bidir ? 2 : 1) / st.mean / 1e3
					: 0;
		line->gbps = row.algbw;
	}
	row.st = &st;
	row.busbw = row.algbw;
	row.wrong = wrong;
	row.status = wrong ? "wrong" : "ok";
	if (bench__report_row(d, &row))
		run->write_failed = true;
	return 0;
}

/* One size: the bandwidth test, then the latency test; a table line at rank 0. 0, or the
 * exit code of a failed rank (IBC_EXIT_ENV). */
static int run_size(struct bench_drv *d, struct sr_run *run, uint64_t bytes)
{
	struct sr_line line = { 0 };
	char *all = NULL;
	int mode, rc;

	for (mode = 0; mode < MODE_COUNT; mode++) {
		memset(run->rec, 0, run->reclen);
		rc = sr_measure(d, bytes, mode == MODE_LAT, run->rec);
		run->rec->rc = rc;
		if (!rc)
			rc = bench__gather_rec(d, run->rec, run->reclen, &all);
		if (rc) {
			free(all);
			return bench__report_failure(d, rc);
		}
		if (d->rank == 0)
			rc = report_test(d, run, bytes, mode, all, &line);
		free(all);
		all = NULL;
		if (rc)
			return IBC_EXIT_ENV;
	}
	if (d->rank == 0)
		bench__table_sr_line(bytes, line.gbps, &line.lat, line.wrong);
	return 0;
}

int bench__sendrecv_run(struct bench_drv *d)
{
	struct sr_run run = { .reclen = BENCH_REC_LEN(d->o->sweep.iters) };
	int si, code = 0;

	run.nsizes = bench__sweep_sizes(&d->o->sweep, run.sizes);
	run.rec = malloc(run.reclen);
	if (!run.rec)
		return IBC_EXIT_ENV;
	if (d->nranks < 2) {
		ibc_log("sendrecv needs at least 2 ranks (use --np 2 or a launcher)");
		free(run.rec);
		return IBC_EXIT_USAGE;
	}
	if (d->rank == 0)
		bench__table_sr_header(d);
	for (si = 0; si < run.nsizes && !code; si++)
		code = run_size(d, &run, run.sizes[si]);
	free(run.rec);
	if (code)
		return code;
	if (d->rank == 0)
		bench__table_sr_footer(d);
	if (run.write_failed)
		return IBC_EXIT_ENV;
	return d->wrong_total ? IBC_EXIT_CHECK : IBC_EXIT_OK;
}
