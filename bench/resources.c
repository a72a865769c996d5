/* SPDX-License-Identifier: MIT */
/*
 * resources.c - before any buffer is allocated: does the sweep fit in this host's memory, and
 * are there more ranks than cores?
 *
 * What a rank needs in host memory: its input and output buffers of the largest size (-e), a
 * scratch buffer of that size for rd and rhd, and BENCH_RANK_OVERHEAD for staging slots and
 * the rest; with --mem cuda the buffers are device memory and only the overhead counts. A host
 * has min(MemAvailable, the memory cgroup's limit minus its usage, over the cgroup and its
 * ancestors, v1 or v2). A host that cannot hold its local ranks' need makes every rank exit 2,
 * rank 0 naming the host, the need, what is available and the largest -e that fits, instead
 * of the kernel's OOM killer ending the run halfway. Cgroup files are read through ibc_sysfs
 * (IBCOLL_SYSFS_ROOT), so tests can give a host a small limit.
 */
#include "bench.h"
#include "ibc_common.h"
#include "ibc_sysfs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_RANK_OVERHEAD (32ull << 20)

/* One host's verdict, allgathered (fixed-size, host string NUL-terminated on receipt). */
struct bench_memv {
	int32_t fits;
	int32_t local_size;
	uint64_t need, avail, efit;
	char host[64];
};

/* MemAvailable from /proc/meminfo, in bytes; UINT64_MAX when unknown. */
static uint64_t meminfo_available(void)
{
	char line[256];
	unsigned long long kb;
	uint64_t v = UINT64_MAX;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			v = (uint64_t)kb * 1024;
			break;
		}
	fclose(f);
	return v;
}

/* Room left in one cgroup directory (relative to the sysfs root): limit - usage, or
 * UINT64_MAX without a limit ("max", absent, or v1's "unlimited" huge number). */
static uint64_t cgroup_room(const char *dir, bool v2)
{
	char text[64];
	uint64_t lim = 0, use = 0;

	if (ibc_sysfs_read_line(NULL, text, sizeof(text), "%s/%s", dir,
				v2 ? "memory.max" : "memory.limit_in_bytes") ||
	    strcmp(text, "max") == 0 ||
	    ibc_sysfs_read_u64(NULL, &lim, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes") ||
	    lim >= (1ull << 62))
		return UINT64_MAX;
	if (ibc_sysfs_read_u64(NULL, &use, "%s/%s", dir,
			       v2 ? "memory.current" : "memory.usage_in_bytes"))
		use = 0;
	return lim > use ? lim - use : 0;
}

/* The least room over a cgroup path and its ancestors below mount ("fs/cgroup" for v2,
 * "fs/cgroup/memory" for v1). */
static uint64_t cgroup_path_room(const char *mount, const char *path, bool v2)
{
	char dir[512], p[400];
	uint64_t room = UINT64_MAX;
	char *slash;

	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		uint64_t r;

		snprintf(dir, sizeof(dir), "%s%s", mount, p);
		r = cgroup_room(dir, v2);
		room = IBC_MIN(room, r);
		slash = strrchr(p, '/');
		if (!slash || (slash == p && !p[1]))
			break;
		if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
	}
	return room;
}

/* The memory cgroup limit of this process (from /proc/self/cgroup): v2 "0::/path" and v1
 * "N:...memory...:/path" lines; UINT64_MAX without a limit. */
static uint64_t cgroup_available(void)
{
	char line[512];
	uint64_t room = UINT64_MAX;
	FILE *f = fopen("/proc/self/cgroup", "r");

	if (!f)
		return room;
	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path = ctl ? strchr(ctl + 1, ':') : NULL;

		if (!path)
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (strcmp(ctl + 1, "") == 0) {
			room = IBC_MIN(room, cgroup_path_room("fs/cgroup", path, true));
			room = IBC_MIN(room, cgroup_path_room("fs/cgroup/unified", path, true));
		} else if (strstr(ctl + 1, "memory")) {
			room = IBC_MIN(room, cgroup_path_room("fs/cgroup/memory", path, false));
		}
	}
	fclose(f);
	return room;
}

/* Host memory one rank needs for a largest size of maxb bytes. */
static uint64_t rank_need(const struct bench_opts *o, uint64_t maxb)
{
	uint64_t bufs = 2;
	int i;

	for (i = 0; !o->sendrecv && i < o->coll.nalgo; i++)
		if (o->coll.algo[i] == IBC_ALGO_RD || o->coll.algo[i] == IBC_ALGO_RHD)
			bufs = 3;
	if (strcmp(o->tp.mem, "cuda") == 0)
		bufs = 0;
	return bufs * maxb + BENCH_RANK_OVERHEAD;
}

/* This host's verdict for its local ranks. */
static void host_verdict(const struct bench_opts *o, int local_size, struct bench_memv *v)
{
	uint64_t per = rank_need(o, o->sweep.maxb), room, bufs;

	memset(v, 0, sizeof(*v));
	snprintf(v->host, sizeof(v->host), "%s", ibc_hostname());
	v->local_size = local_size;
	v->need = per * (uint64_t)local_size;
	v->avail = IBC_MIN(meminfo_available(), cgroup_available());
	v->fits = v->avail == UINT64_MAX || v->need <= v->avail;
	if (v->fits)
		return;
	bufs = (rank_need(o, 1) - BENCH_RANK_OVERHEAD);
	room = v->avail / (uint64_t)local_size;
	if (bufs && room > BENCH_RANK_OVERHEAD)
		v->efit = (room - BENCH_RANK_OVERHEAD) / bufs & ~((1ull << 20) - 1);
	if (bufs && room > BENCH_RANK_OVERHEAD && !v->efit)
		v->efit = (room - BENCH_RANK_OVERHEAD) / bufs & ~1023ull;
}

/* "1.5 GiB", "320 MiB": amounts of memory for people (efit stays in -e's own syntax). */
static const char *human(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(buf, len, "%.1f GiB", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, len, "%.0f MiB", (double)b / (double)(1ull << 20));
	return buf;
}

static void log_refusal(const struct bench_memv *v)
{
	char need[32], avail[32], efit[32];

	human(v->need, need, sizeof(need));
	human(v->avail, avail, sizeof(avail));
	ibc_format_size(v->efit, efit, sizeof(efit));
	if (v->efit)
		ibc_log("-e: host %s cannot hold this sweep: its %d rank(s) need %s of memory, %s "
			"is available (MemAvailable and the memory cgroup); the largest -e that fits "
			"is %s",
			v->host, v->local_size, need, avail, efit);
	else
		ibc_log("host %s cannot hold %d rank(s) even with small sizes: they need %s, %s is "
			"available (MemAvailable and the memory cgroup); run fewer ranks per host",
			v->host, v->local_size, need, avail);
}

/* More ranks than cores: their timings include waiting for a core. Local rank 0 says so. */
static void warn_cores(const struct bench_host *me)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (me->local_rank == 0 && cores > 0 && me->local_size > cores)
		ibc_log("warning: %d ranks on host %s share %ld cores: ranks wait for a core, so "
			"times include scheduling (run at most %ld ranks per host for clean figures)",
			me->local_size, ibc_hostname(), cores, cores);
}

/* Is r the lowest failing rank of its host (one line per host)? */
static bool first_of_host(const struct bench_memv *all, int r)
{
	int k;

	for (k = 0; k < r; k++)
		if (!all[k].fits && strcmp(all[k].host, all[r].host) == 0)
			return false;
	return true;
}

int bench__resources_check(struct bench_drv *d, const struct bench_host *me)
{
	struct bench_memv mine, *all;
	int r, bad = 0;

	warn_cores(me);
	host_verdict(d->o, me->local_size, &mine);
	all = calloc((size_t)d->nranks, sizeof(*all));
	if (!all || ibc_boot_allgather(d->boot, &mine, all, sizeof(mine))) {
		ibc_log("resource check: %s", all ? ibc_err_get() : "out of memory");
		free(all);
		return IBC_EXIT_ENV;
	}
	for (r = 0; r < d->nranks; r++) {
		all[r].host[sizeof(all[r].host) - 1] = '\0';
		if (all[r].fits)
			continue;
		bad = 1;
		if (d->rank == 0 && first_of_host(all, r))
			log_refusal(&all[r]);
	}
	free(all);
	return bad ? IBC_EXIT_USAGE : 0;
}
