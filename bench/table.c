/* SPDX-License-Identifier: MIT */
/*
 * table.c - the nccl-tests-like tables of `ibcoll allreduce` and `ibcoll sendrecv` on stdout
 * and the progress line on stderr (table.h).
 */
#include "table.h"
#include "ibc_common.h"
#include "transport.h"

#include <stdio.h>

void bench__table_banner(const struct bench_drv *d, const struct bench_host *hosts)
{
	const struct bench_opts *o = d->o;
	int i;

	printf("# ibcoll %s %s: %d rank(s) on %d host(s), transport %s (%s), channels %ld, "
	       "iters %ld, warmup %ld, check %ld\n",
	       IBC_VERSION, o->sendrecv ? "sendrecv" : "allreduce", d->nranks, d->nnodes,
	       d->ops->name, d->comm.props.name, o->coll.channels, o->sweep.iters,
	       o->sweep.warmup, o->sweep.check);
	printf("# run_id %s, started %s, wire-up %s\n", o->report.run_id, o->report.started,
	       ibc_wireup_name(ibc_boot_wireup(d->boot)));
	for (i = 0; i < d->nranks; i++)
		printf("#  rank %3d  pid %7d  host %-16s  cpus %-12s nic %-10s gpu %s\n", i,
		       ibc_boot_pid(d->boot, i), ibc_boot_host(d->boot, i),
		       hosts[i].cpus[0] ? hosts[i].cpus : "-", hosts[i].nic[0] ? hosts[i].nic : "-",
		       hosts[i].gpu[0] ? hosts[i].gpu : "-");
	fflush(stdout);
}

void bench__table_ar_header(void)
{
	printf("#\n#  %-10s %12s %8s %7s %6s %36s %36s\n", "", "", "", "", "", "out-of-place",
	       "in-place");
	printf("#  %10s %12s %8s %7s %6s %9s %7s %7s %7s %9s %7s %7s %7s\n", "size", "count",
	       "type", "redop", "algo", "time", "algbw", "busbw", "#wrong", "time", "algbw",
	       "busbw", "#wrong");
	printf("#  %10s %12s %8s %7s %6s %9s %7s %7s %7s %9s %7s %7s %7s\n", "(B)", "(elements)",
	       "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
	fflush(stdout);
}

void bench__table_ar_cell(char *buf, size_t len, const struct bench_stats *st, double algbw,
			  double busbw, uint64_t wrong, bool checked)
{
	char w[24];

	if (!st) {
		snprintf(buf, len, "%9s %7s %7s %7s", "-", "-", "-", "-");
		return;
	}
	if (checked)
		snprintf(w, sizeof(w), "%llu", (unsigned long long)wrong);
	else
		snprintf(w, sizeof(w), "N/A");
	snprintf(buf, len, "%9.2f %7.2f %7.2f %7s", st->mean, algbw, busbw, w);
}

void bench__table_ar_blank(char *buf, size_t len)
{
	snprintf(buf, len, "%9s %7s %7s %7s", "", "", "", "");
}

void bench__table_ar_line(uint64_t bytes, uint64_t count, enum ibc_dtype dt, enum ibc_op op,
			  enum ibc_algo algo, const char *out_cell, const char *in_cell)
{
	printf("   %10llu %12llu %8s %7s %6s %s %s\n", (unsigned long long)bytes,
	       (unsigned long long)count, ibc_dtype_name(dt), ibc_op_name(op), ibc_algo_name(algo),
	       out_cell, in_cell);
	fflush(stdout);
}

void bench__table_ar_footer(const struct bench_drv *d)
{
	printf("# Out of bounds values : %zu %s\n", d->wrong_total,
	       d->wrong_total ? "FAILED" : "OK");
	printf("# Avg bus bandwidth    : %g\n", d->bw_n ? d->bw_sum / d->bw_n : 0.0);
	printf("# Report: %s/results.csv\n#\n", d->o->report.outdir);
	fflush(stdout);
}

void bench__table_progress(const struct bench_drv *d, enum ibc_algo algo, enum ibc_dtype dt,
			   enum ibc_op op, int place, uint64_t bytes)
{
	if (!d->progress)
		return;
	fprintf(stderr, "\r\033[K[%s %s %s %s, %llu B]", ibc_algo_name(algo), ibc_dtype_name(dt),
		ibc_op_name(op), place ? "in-place" : "out-of-place", (unsigned long long)bytes);
}

void bench__table_progress_end(const struct bench_drv *d)
{
	if (d->progress)
		fprintf(stderr, "\r\033[K");
}

void bench__table_sr_header(const struct bench_drv *d)
{
	printf("#  pairs: rank i <-> rank i+%d%s, window %ld\n", d->nranks / 2,
	       d->o->sr.bidir ? " (bidirectional)" : "", d->o->sr.window);
	printf("#  %10s %10s %10s %9s %9s %9s %7s\n", "size", "bw", "bw", "lat_p50", "lat_p99",
	       "lat_max", "#wrong");
	printf("#  %10s %10s %10s %9s %9s %9s %7s\n", "(B)", "(GB/s)", "(Gb/s)", "(us)", "(us)",
	       "(us)", "");
}

void bench__table_sr_line(uint64_t bytes, double gbps, const struct bench_stats *lat,
			  uint64_t wrong)
{
	printf("   %10llu %10.3f %10.2f %9.2f %9.2f %9.2f %7llu\n", (unsigned long long)bytes, gbps,
	       gbps * 8, lat->p50, lat->p99, lat->max, (unsigned long long)wrong);
	fflush(stdout);
}

void bench__table_sr_footer(const struct bench_drv *d)
{
	printf("# Report: %s/results.csv\n#\n", d->o->report.outdir);
}
