/* SPDX-License-Identifier: MIT */
/*
 * port_counters.c - port counters around a measuring run (port_counters.h).
 */
#include "port_counters.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "schema.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The transport device this rank uses as a sysfs name and port; -ENOENT when it is no NIC. */
static int port_of(const struct bench_drv *d, char *dev, size_t len, int *port, char *why,
		   size_t whylen)
{
	const struct ibc_tp_props *p = &d->comm.props;

	*port = 0;
	if (!strncmp(p->name, "tcp:", 4) && !strchr(p->name + 4, '.') &&
	    !strchr(p->name + 4, ':')) {
		snprintf(dev, len, "%s", p->name + 4);
		return 0;
	}
	if (p->port > 0 && (!strcmp(p->link_layer, "InfiniBand") || !strcmp(p->link_layer, "Ethernet"))) {
		snprintf(dev, len, "%s", p->name);
		*port = p->port;
		return 0;
	}
	if (strcmp(p->link_layer, "memory")) /* shm has no NIC: nothing to say */
		snprintf(why, whylen, "transport device %s is not a NIC port with counters",
			 p->name);
	return -ENOENT;
}

void bench__counters_before(const struct bench_drv *d, struct bench_cnt *c)
{
	char dev[64];
	int port;

	memset(c, 0, sizeof(*c));
	snprintf(c->host, sizeof(c->host), "%s", ibc_hostname());
	if (port_of(d, dev, sizeof(dev), &port, c->why, sizeof(c->why)))
		return;
	c->ok = topo_counters_read(NULL, dev, port, &c->before, c->why, sizeof(c->why)) == 0;
}

/* The value of counter idx in s, or -1 when absent. */
static int64_t value_of(const struct topo_counters *s, int idx)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->idx[i] == idx)
			return (int64_t)s->v[i];
	return -1;
}

/* An error counter that moved: a finding naming host, NIC and counter, and a failed case. */
static int counter_finding(struct rpt_findings *f, struct rpt_cases *cases,
			   const struct bench_cnt *c, const char *nic, int idx, uint64_t before,
			   int64_t delta, const char *name)
{
	struct rpt_finding *x = rpt_findings_add(f, "counters", "nic");

	if (!x)
		return -ENOMEM;
	snprintf(x->host, sizeof(x->host), "%s", c->host);
	snprintf(x->nic, sizeof(x->nic), "%.31s", nic);
	x->measured = (double)delta;
	x->expected = 0;
	snprintf(x->unit, sizeof(x->unit), "events");
	snprintf(x->evidence, sizeof(x->evidence),
		 "host %s NIC %s: error counter %s %s by %lld during the run (%llu before)",
		 c->host, nic, topo_counter_name(idx), delta > 0 ? "rose" : "changed",
		 (long long)delta, (unsigned long long)before);
	return rpt_cases_add(cases, "counters", name, x->evidence);
}

/* One port's rows, findings and cases. */
static int port_rows(struct ibc_csv_writer *w, const char *run_id, const struct bench_cnt *c,
		     struct rpt_findings *f, struct rpt_cases *cases)
{
	char sv[8], port[16], b[24], a[24], dl[24], nic[80], name[240];
	int i, rc = 0;

	snprintf(sv, sizeof(sv), "%d", RPT_SCHEMA_VERSION);
	snprintf(port, sizeof(port), "%d", c->before.port);
	snprintf(nic, sizeof(nic), c->before.port ? "%s:%d" : "%s", c->before.dev, c->before.port);
	for (i = 0; i < c->before.n && !rc; i++) {
		int idx = c->before.idx[i];
		int64_t after = value_of(&c->after, idx), delta = after - (int64_t)c->before.v[i];
		enum topo_counter_kind k = topo_counter_kind(idx);
		const char *v[RPT_COUNTERS_NCOLS] = { sv, run_id, c->host, c->before.dev, port,
						      topo_counter_name(idx), topo_counter_kind_name(k),
						      b, a, dl };

		if (after < 0)
			continue;
		snprintf(b, sizeof(b), "%llu", (unsigned long long)c->before.v[i]);
		snprintf(a, sizeof(a), "%lld", (long long)after);
		snprintf(dl, sizeof(dl), "%lld", (long long)delta);
		rc = ibc_csv_add(w, v);
		if (rc || k != TOPO_CNT_ERROR)
			continue;
		snprintf(name, sizeof(name), "host %s NIC %s: %s", c->host, nic, topo_counter_name(idx));
		if (delta == 0) {
			rc = rpt_cases_add(cases, "counters", name, NULL);
			continue;
		}
		rc = counter_finding(f, cases, c, nic, idx, c->before.v[i], delta, name);
	}
	return rc;
}

/* The first of the gathered records for the same host, device and port as all[i]? */
static bool first_of_port(const struct bench_cnt *all, int i)
{
	int k;

	for (k = 0; k < i; k++)
		if (all[k].ok && !strcmp(all[k].host, all[i].host) &&
		    !strcmp(all[k].before.dev, all[i].before.dev) &&
		    all[k].before.port == all[i].before.port)
			return false;
	return true;
}

/* Rank 0: counters.csv from the gathered records; each reason a port was not read, once. */
static int write_all(const struct bench_drv *d, const struct bench_cnt *all,
		     struct rpt_findings *f, struct rpt_cases *cases)
{
	static const char *const cols[] = { RPT_COUNTERS_COLUMNS };
	struct ibc_csv_writer *w;
	char path[600];
	int i, k, rc, ports = 0;

	snprintf(path, sizeof(path), "%s/counters.csv", d->o->report.outdir);
	rc = ibc_csv_create(path, cols, RPT_COUNTERS_NCOLS, &w);
	if (rc) {
		ibc_log("counters: cannot create %s: %s", path, strerror(-rc));
		return 0;
	}
	for (i = 0; i < d->nranks && !rc; i++) {
		if (all[i].ok && first_of_port(all, i)) {
			rc = port_rows(w, d->o->report.run_id, &all[i], f, cases);
			ports++;
			continue;
		}
		for (k = 0; k < i && all[i].why[0]; k++) /* say each reason once */
			if (!strcmp(all[k].why, all[i].why))
				break;
		if (!all[i].ok && all[i].why[0] && k == i)
			printf("# counters: not read on %s (rank %d): %s\n", all[i].host, i,
			       all[i].why);
	}
	if (!rc)
		rc = ibc_csv_commit(w);
	ibc_csv_close(w);
	if (!rc && ports)
		printf("# counters: %d port(s) read before and after the run (counters.csv)\n",
		       ports);
	return rc;
}

int bench__counters_after(struct bench_drv *d, struct bench_cnt *c, struct rpt_findings *f,
			  struct rpt_cases *cases)
{
	struct bench_cnt *all = NULL;
	char why[160];
	int rc;

	if (c->ok && topo_counters_read(NULL, c->before.dev, c->before.port, &c->after, why,
				       sizeof(why))) {
		c->ok = 0;
		snprintf(c->why, sizeof(c->why), "after the run: %.140s", why);
	}
	if (d->rank == 0) {
		all = calloc((size_t)d->nranks, sizeof(*all));
		if (!all)
			return -ENOMEM;
	}
	rc = ibc_boot_gather(d->boot, c, all, sizeof(*c));
	if (!rc && d->rank == 0)
		rc = write_all(d, all, f, cases);
	free(all);
	return rc;
}
