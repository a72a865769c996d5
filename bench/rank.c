/* SPDX-License-Identifier: MIT */
/*
 * rank.c - what every rank does around a command: bootstrap, agreement on the options,
 * topology facts and binding, memory backend, transport and communicator, rank 0's banner and
 * reports, the user buffers; and the teardown in reverse order.
 */
#include "bench.h"
#include "port_counters.h"
#include "verdict.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "mpi_algo.h"
#include "report.h"
#include "table.h"
#include "topo.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bench__gather_rec(struct bench_drv *d, const struct bench_rank_rec *mine, size_t len,
		      char **all)
{
	*all = NULL;
	if (d->rank == 0) {
		*all = malloc(len * (size_t)d->nranks);
		if (!*all)
			return -ENOMEM;
	}
	return ibc_boot_gather(d->boot, mine, *all, len);
}

const char *bench__status_of(int rc)
{
	return rc == -ETIMEDOUT ? "timeout" : "error";
}

int bench__report_failure(struct bench_drv *d, int rc)
{
	const char *msg = ibc_err_get();

	if (rc == -ECANCELED && d->job && d->job->dead_rank >= 0) {
		char how[96];

		ibc_launch_describe(d->job->dead_status, how, sizeof(how));
		ibc_log("rank %d stopping: rank %d (pid %d, host %s) %s", d->rank,
			d->job->dead_rank, d->job->dead_pid,
			ibc_boot_host(d->boot, d->job->dead_rank), how);
	} else {
		ibc_log("%s", msg);
	}
	return IBC_EXIT_ENV;
}

/* ------------------------------------------------------------------ topology */

static void take_pick(struct bench_host *h, const struct topo_rank_info *info)
{
	h->numa = info->numa;
	snprintf(h->gpu, sizeof(h->gpu), "%s", info->gpu);
	snprintf(h->gpu_busid, sizeof(h->gpu_busid), "%s", info->gpu_busid);
	snprintf(h->nic, sizeof(h->nic), "%s", info->nic);
	snprintf(h->nic_busid, sizeof(h->nic_busid), "%s", info->nic_busid);
	h->nic_port = info->nic_port;
	h->link_gbps = info->link_gbps;
	snprintf(h->path, sizeof(h->path), "%s", topo_path_name(info->path));
}

/* auto: ranks with a GPU bind to its NUMA node; without GPUs, ranks bind to their own block of
 * cores when every local rank can have one (as MPI binds to cores), and stay unbound when they
 * outnumber the cores (the scheduler balances better). A --topology-xml plan is of another
 * machine: never bound. */
static bool should_bind(const struct bench_drv *d, const struct bench_host *h,
			const struct topo_rank_info *info)
{
	const char *bind = d->o->launch.bind;

	if (d->o->launch.topo_xml)
		return false;
	if (strcmp(bind, "on") == 0)
		return true;
	return strcmp(bind, "auto") == 0 &&
	       (info->gpu[0] || h->local_size <= sysconf(_SC_NPROCESSORS_ONLN));
}

/* Bind to the picked cores; hosts.csv then lists them. A failure is a warning. */
static void bind_rank(const struct bench_drv *d, struct topo *t, const struct topo_rank_info *info,
		      struct bench_host *h)
{
	if (topo_bind(t, info) == 0)
		snprintf(h->cpus, sizeof(h->cpus), "%s", info->cpus);
	else
		ibc_log("warning: could not bind rank %d to cpus %s: %s", d->rank, info->cpus,
			ibc_err_get());
}

/* Topology facts of this rank; binds when asked. Never fatal: a rank without hwloc facts
 * still benchmarks, with empty columns. */
static void topo_facts(struct bench_drv *d, struct bench_host *h)
{
	struct topo_rank_info info;
	struct topo *t = NULL;

	memset(h, 0, sizeof(*h));
	h->numa = -1;
	h->local_rank = ibc_boot_local_rank(d->boot);
	h->local_size = ibc_boot_local_size(d->boot);
	snprintf(h->host, sizeof(h->host), "%s", ibc_hostname());
	/* hosts.csv says where the rank may run: its affinity as inherited, or the cores it is
	 * bound to below */
	if (ibc_affinity_list(h->cpus, sizeof(h->cpus)))
		h->cpus[0] = 0;
	if (topo_load(d->o->launch.topo_xml, &t)) {
		if (d->rank == 0)
			ibc_log("warning: topology unavailable (%s): hosts.csv topology columns "
				"stay empty",
				ibc_err_get());
		return;
	}
	if (topo_pick(t, h->local_rank, h->local_size, &info) == 0) {
		take_pick(h, &info);
		if (should_bind(d, h, &info))
			bind_rank(d, t, &info, h);
	}
	topo_destroy(t);
}

/* Everyone's facts at rank 0 (*hosts, caller frees); ranks_per_node from them. */
static int gather_hosts(struct bench_drv *d, struct bench_host *me, struct bench_host **hosts)
{
	int i;

	topo_facts(d, me);
	*hosts = NULL;
	if (d->rank == 0) {
		*hosts = calloc((size_t)d->nranks, sizeof(**hosts));
		if (!*hosts)
			return IBC_EXIT_ENV;
	}
	if (ibc_boot_gather(d->boot, me, *hosts, sizeof(*me))) {
		ibc_log("%s", ibc_err_get());
		return IBC_EXIT_ENV;
	}
	d->ranks_per_node = me->local_size;
	for (i = 0; d->rank == 0 && i < d->nranks; i++)
		d->ranks_per_node = IBC_MAX(d->ranks_per_node, (*hosts)[i].local_size);
	return 0;
}

/* ------------------------------------------------------------------ transport and buffers */

static int pick_transport(struct bench_drv *d)
{
	const char *name = d->o->tp.transport;
	int rc;

	if (!name || strcmp(name, "auto") == 0)
		name = d->nnodes > 1 ? "tcp" : "shm";
	rc = ibc_tp_lookup(name, &d->ops);
	if (rc) {
		if (d->rank == 0)
			ibc_log("%s", ibc_err_get());
		return rc;
	}
	if (strcmp(d->ops->name, "shm") == 0 && d->nnodes > 1) {
		if (d->rank == 0)
			ibc_log("the shm transport moves data between ranks of one host, but this "
				"job spans %d hosts: use --transport tcp or verbs",
				d->nnodes);
		return -EINVAL;
	}
	return 0;
}

static int comm_init(struct bench_drv *d, const struct bench_host *me)
{
	const struct bench_tp_cfg *tp = &d->o->tp;
	struct ibc_comm_opts co = {
		.ops = d->ops,
		.timeout_ms = (int)d->o->launch.timeout_s * 1000,
		.abort_flag = d->abort_flag,
		.depth = (int)tp->depth,
		.max_chunk = d->o->coll.chunk ? (size_t)d->o->coll.chunk : (1u << 20),
		.mem = d->mem,
		.memctx = d->memctx,
	};
	char paired[96] = "";

	co.cfg.nic = tp->nic;
	/* verbs/gdr without --nic: the NIC the topology paired with this rank's GPU */
	if (!tp->nic && me->nic[0] &&
	    (!strcmp(d->ops->name, "verbs") || !strcmp(d->ops->name, "gdr"))) {
		if (me->nic_port > 0)
			snprintf(paired, sizeof(paired), "%s:%d", me->nic, me->nic_port);
		else
			snprintf(paired, sizeof(paired), "%s", me->nic);
		co.cfg.nic = paired;
	}
	co.cfg.gid_index = (int)tp->gid_index;
	co.cfg.qps = (int)tp->qps;
	if (ibc_comm_init(&d->comm, d->boot, &co)) {
		ibc_log("%s", ibc_err_get());
		return IBC_EXIT_ENV;
	}
	return 0;
}

/* Rank 0's banner and reports; everyone learns whether rank 0 could open them: without both
 * reports the run would be unrecorded, so every rank stops (exit 3). */
static int open_reports(struct bench_drv *d, const struct bench_host *hosts)
{
	int32_t ok;

	if (d->rank == 0) {
		bench__table_banner(d, hosts);
		if (bench__report_open(d) || bench__report_hosts(d, hosts)) {
			ibc_csv_close(d->csv);
			d->csv = NULL;
		}
	}
	ok = d->rank == 0 ? (d->csv != NULL) : 0;
	if (ibc_boot_bcast(d->boot, &ok, sizeof(ok)) || !ok)
		return IBC_EXIT_ENV;
	return 0;
}

/* The user buffers and MPI, then the command. */
static int run_command(struct bench_drv *d)
{
	const struct bench_opts *o = d->o;
	size_t maxbytes = (size_t)o->sweep.maxb;
	int i, code = IBC_EXIT_ENV;

	if (ibc_comm_alloc_user(&d->comm, maxbytes, &d->in) ||
	    ibc_comm_alloc_user(&d->comm, maxbytes, &d->out)) {
		ibc_log("cannot allocate 2 x %zu bytes: %s", maxbytes, ibc_err_get());
		goto out;
	}
	for (i = 0; !o->sendrecv && i < o->coll.nalgo; i++)
		if (o->coll.algo[i] == IBC_ALGO_MPI && ibc_mpi_init(d->rank, d->nranks)) {
			ibc_log("%s", ibc_err_get());
			goto out;
		}
	code = o->sendrecv ? bench__sendrecv_run(d) : bench__allreduce_run(d);
out:
	ibc_comm_free(&d->comm, &d->out);
	ibc_comm_free(&d->comm, &d->in);
	return code;
}

/* Transport, communicator, reports, command; the communicator torn down last. */
static int with_comm(struct bench_drv *d, const struct bench_host *me,
		     const struct bench_host *hosts)
{
	struct rpt_findings f = { 0 };
	struct rpt_cases cases = { 0 };
	struct bench_cnt cnt;
	int rc = pick_transport(d), code;

	if (rc)
		return rc == -EINVAL ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	memset(&cnt, 0, sizeof(cnt));
	code = comm_init(d, me);
	if (code)
		return code;
	bench__counters_before(d, &cnt); /* before results.csv exists: tests wait for it */
	code = open_reports(d, hosts);
	if (!code)
		code = run_command(d);
	ibc_csv_close(d->csv);
	d->csv = NULL;
	if ((code == 0 || code == IBC_EXIT_CHECK) && bench__counters_after(d, &cnt, &f, &cases))
		ibc_log("port counters: %s", ibc_err_get());
	rc = code; /* every rank knows the run's code: the barrier below is taken by all or none */
	if (d->rank == 0 && (code == 0 || code == IBC_EXIT_CHECK))
		code = bench__verdict(d->o, code, &f, &cases);
	rpt_cases_free(&cases);
	rpt_findings_free(&f);
	if (rc != IBC_EXIT_ENV)
		ibc_boot_barrier(d->boot); /* nobody tears down while a peer still reads */
	ibc_comm_fini(&d->comm);
	return code;
}

/* The memory backend (--mem other than host) around everything after it. */
static int with_mem(struct bench_drv *d, const struct bench_host *me,
		    const struct bench_host *hosts)
{
	const char *mem = d->o->tp.mem;
	int rc, code;

	if (strcmp(mem, "host") == 0)
		return with_comm(d, me, hosts);
	rc = ibc_mem_lookup(mem, &d->mem);
	if (!rc)
		rc = ibc_mem_open(d->mem, me->local_rank, (int)d->o->tp.gpu, &d->memctx);
	if (rc) {
		ibc_log("rank %d (host %s): %s", d->rank, ibc_hostname(), ibc_err_get());
		d->memctx = NULL;
		return IBC_EXIT_ENV;
	}
	code = with_comm(d, me, hosts); /* sendrecv with --mem: refused by the options check */
	d->mem->fini(d->memctx);
	return code;
}

/* ------------------------------------------------------------------ the rank */

/* Rank, size and rendezvous from the --np launcher (ctx) or the environment; then the
 * bootstrap. 0 or the exit code. */
static int boot(struct bench_drv *d, const struct ibc_rank_ctx *ctx)
{
	struct ibc_boot_opts bo = { .root_fd = -1,
				    .timeout_ms = (int)d->o->launch.timeout_s * 1000 };
	struct ibc_boot_env env;
	int rc;

	if (ctx) {
		bo.rank = ctx->rank;
		bo.nranks = ctx->nranks;
		bo.root = ctx->root;
		bo.root_fd = ctx->root_fd;
		bo.job_id = ctx->job_id;
		bo.job_key = ctx->job_key;
		bo.job_key_len = sizeof(ctx->job_key);
		bo.abort_flag = &ctx->job->abort;
		bo.wireup = IBC_WIREUP_LOCAL;
		d->job = ctx->job;
		d->abort_flag = bo.abort_flag;
	} else {
		if (ibc_boot_env_detect(&env)) {
			ibc_log("%s", ibc_err_get());
			return IBC_EXIT_USAGE;
		}
		bo.rank = env.rank;
		bo.nranks = env.nranks;
		bo.root = env.root[0] ? env.root : NULL;
		bo.job_id = env.job_id[0] ? env.job_id : NULL;
		bo.wireup = env.wireup;
	}
	ibc_log_set_rank(bo.rank);
	bo.require_auth = d->o->launch.require_auth;
	rc = ibc_boot_init(&bo, &d->boot);
	if (rc) {
		ibc_log("%s", ibc_err_get());
		return rc == -ENOKEY ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	d->rank = ibc_boot_rank(d->boot);
	d->nranks = ibc_boot_nranks(d->boot);
	d->progress = d->rank == 0 && isatty(STDERR_FILENO);
	d->nnodes = ibc_boot_nnodes(d->boot);
	return 0;
}

int bench__rank_main(const struct ibc_rank_ctx *ctx, void *arg)
{
	struct bench_drv d = { .o = arg };
	struct bench_host me, *hosts = NULL;
	int code = boot(&d, ctx), rc;

	if (code)
		return code;
	/* rank 0's options hold for everyone; its run id, start time and report directory too */
	rc = bench__opts_agree(d.boot, d.o);
	if (rc)
		code = rc == -EINVAL ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	if (!code)
		code = gather_hosts(&d, &me, &hosts);
	if (!code)
		code = bench__resources_check(&d, &me);
	if (!code)
		code = with_mem(&d, &me, hosts);
	free(hosts);
	ibc_boot_fini(d.boot);
	fflush(stdout);
	return code;
}
