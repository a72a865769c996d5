/* SPDX-License-Identifier: MIT */
/*
 * report.c - results.csv and hosts.csv rows of a run (docs/design.md#csv-reports), written through
 * common/ibc_csv.h (exclusive create, every row committed atomically).
 */
#include "report.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "schema.h"
#include "transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int bench__report_open(struct bench_drv *d)
{
	static const char *const cols[] = { RPT_RESULTS_COLUMNS };
	const char *dir = d->o->report.outdir;
	char path[600];
	int rc = ibc_mkdir_p(dir);

	if (rc) {
		ibc_log("cannot create report directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	rc = ibc_csv_create(path, cols, RPT_RESULTS_NCOLS, &d->csv);
	if (rc)
		ibc_log("cannot create %s: %s%s", path, strerror(-rc),
			rc == -EEXIST ? " (ibcoll never overwrites a report: choose another --out)"
				      : "");
	return rc;
}

/* The values of one results.csv row, formatted into f where they are numbers. */
struct row_fields {
	const char *v[RPT_RESULTS_NCOLS]; /* borrowed: into f and wr, or the row's strings */
	char f[32][64];
	char wr[256];
	int i;
};

static void put_s(struct row_fields *rf, const char *s)
{
	rf->v[rf->i++] = s;
}

static void put_n(struct row_fields *rf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put_n(struct row_fields *rf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rf->f[rf->i], sizeof(rf->f[rf->i]), fmt, ap);
	va_end(ap);
	rf->v[rf->i] = rf->f[rf->i];
	rf->i++;
}

/* time_us .. slowest_host: the measured columns, empty when the measurement failed. */
static void put_measured(struct row_fields *rf, const struct bench_drv *d,
			 const struct bench_row *r)
{
	const struct bench_stats *st = r->st;
	int k;

	if (!st) {
		for (k = 0; k < 8; k++)
			put_s(rf, "");
		put_s(rf, r->wrong_ranks);
		put_s(rf, "");
		put_s(rf, "");
		return;
	}
	put_n(rf, "%.3f", st->mean);
	put_n(rf, "%.3f", st->min);
	put_n(rf, "%.3f", st->p50);
	put_n(rf, "%.3f", st->p99);
	put_n(rf, "%.3f", st->max);
	/* plain decimals with enough digits that a 1-byte message is not a zero */
	put_n(rf, r->algbw >= 1e-3 ? "%.6f" : "%.12f", r->algbw);
	put_n(rf, r->busbw >= 1e-3 ? "%.6f" : "%.12f", r->busbw);
	put_n(rf, "%llu", (unsigned long long)r->wrong);
	snprintf(rf->wr, sizeof(rf->wr), "%s", r->wrong_ranks);
	put_s(rf, rf->wr);
	put_n(rf, "%d", st->slowest);
	put_s(rf, ibc_boot_host(d->boot, st->slowest));
}

int bench__report_row(struct bench_drv *d, const struct bench_row *r)
{
	const struct bench_opts *o = d->o;
	struct row_fields rf;
	int rc;

	if (!d->csv)
		return 0;
	rf.i = 0;
	put_n(&rf, "%d", RPT_SCHEMA_VERSION);
	put_s(&rf, o->report.run_id);
	put_s(&rf, o->report.started);
	put_s(&rf, IBC_VERSION);
	put_s(&rf, r->collective);
	put_s(&rf, r->algo);
	put_s(&rf, d->ops ? d->ops->name : "mpi");
	put_s(&rf, o->tp.mem);
	put_s(&rf, ibc_dtype_name(r->dt));
	put_s(&rf, r->collective[0] == 's' ? "" : ibc_op_name(r->op));
	put_s(&rf, r->place == BENCH_PLACE_IN ? "in" : "out");
	put_n(&rf, "%d", d->nranks);
	put_n(&rf, "%d", d->nnodes);
	put_n(&rf, "%d", d->ranks_per_node);
	put_n(&rf, "%d", r->channels);
	put_n(&rf, "%llu", (unsigned long long)r->bytes);
	put_n(&rf, "%llu", (unsigned long long)r->count);
	put_n(&rf, "%ld", o->sweep.warmup);
	put_n(&rf, "%ld", o->sweep.iters);
	put_measured(&rf, d, r);
	put_s(&rf, r->status);
	put_s(&rf, ibc_wireup_name(ibc_boot_wireup(d->boot)));
	rc = ibc_csv_append(d->csv, rf.v);
	if (rc)
		ibc_log("writing results.csv failed: %s", strerror(-rc));
	return rc;
}

static int write_host(struct ibc_csv_writer *w, const char *run_id, int rank,
		      const struct bench_host *h)
{
	char sv[8], rk[16], lr[16], nu[16], np[16], lg[32];
	const char *v[RPT_HOSTS_NCOLS] = { sv, run_id, rk, h->host, lr, h->cpus, nu,
					   h->gpu, h->gpu_busid, h->nic, h->nic_busid, np,
					   lg, h->path };

	snprintf(sv, sizeof(sv), "%d", RPT_SCHEMA_VERSION);
	snprintf(rk, sizeof(rk), "%d", rank);
	snprintf(lr, sizeof(lr), "%d", h->local_rank);
	nu[0] = np[0] = lg[0] = '\0';
	if (h->numa >= 0)
		snprintf(nu, sizeof(nu), "%d", h->numa);
	if (h->nic_port > 0)
		snprintf(np, sizeof(np), "%d", h->nic_port);
	if (h->link_gbps > 0)
		snprintf(lg, sizeof(lg), "%g", h->link_gbps);
	return ibc_csv_append(w, v);
}

int bench__report_hosts(struct bench_drv *d, const struct bench_host *all)
{
	static const char *const cols[] = { RPT_HOSTS_COLUMNS };
	struct ibc_csv_writer *w;
	char path[600];
	int r, rc;

	snprintf(path, sizeof(path), "%s/hosts.csv", d->o->report.outdir);
	rc = ibc_csv_create(path, cols, RPT_HOSTS_NCOLS, &w);
	if (rc) {
		ibc_log("cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	for (r = 0; r < d->nranks && !rc; r++)
		rc = write_host(w, d->o->report.run_id, r, &all[r]);
	ibc_csv_close(w);
	return rc;
}

void bench__rank_list_add(char *buf, size_t len, size_t *n, int rank)
{
	*n += (size_t)snprintf(buf + *n, len - *n, "%s%d", *n ? ";" : "", rank);
	if (*n >= len)
		*n = len - 1;
}
