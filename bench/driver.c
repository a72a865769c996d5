/* SPDX-License-Identifier: MIT */
/*
 * driver.c - `ibcoll allreduce` and `ibcoll sendrecv` (driver.h): options parsed and
 * validated, the run stamped (run id, start time, report directory), the launcher found, and
 * the ranks started: forked by --np, or this process as one rank of a launcher's job.
 */
#include "driver.h"
#include "bench.h"
#include "bootstrap.h"
#include "ibc_common.h"
#include "ibc_id.h"
#include "launch.h"
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void bench__stamp(struct bench_report_cfg *r)
{
	time_t now = time(NULL);
	struct tm tm;
	char ts[32];

	ibc_new_id(r->run_id, sizeof(r->run_id));
	gmtime_r(&now, &tm);
	strftime(r->started, sizeof(r->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	if (r->out)
		snprintf(r->outdir, sizeof(r->outdir), "%s", r->out);
	else
		snprintf(r->outdir, sizeof(r->outdir), "ibcoll-results/%s-%s", ts, r->run_id);
}

/* Options into o: 0 to run, or the exit code (0 after --help). */
static int get_opts(int argc, char **argv, bool sendrecv, struct bench_opts *o, bool *done)
{
	int rc = bench__opts_parse(argc, argv, sendrecv, o);

	*done = true;
	if (rc)
		return IBC_EXIT_USAGE;
	if (o->help)
		return 0;
	rc = bench__opts_validate(o);
	if (rc)
		return rc == -EINVAL ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	*done = false;
	return 0;
}

/* The run of validated options o: fork the local ranks, or be one rank of a launcher's. */
static int run_opts(struct bench_opts *o, bool sendrecv)
{
	struct ibc_boot_env env;
	char path[600];
	bool launched;
	bench__stamp(&o->report);
	snprintf(path, sizeof(path), "%s/results.csv", o->report.outdir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr,
			"ibcoll: --out %s already holds results.csv: ibcoll never overwrites a "
			"report; choose another directory\n",
			o->report.outdir);
		return IBC_EXIT_USAGE;
	}
	if (getenv("IBCOLL_HOSTID") && ibc_hostid_check(getenv("IBCOLL_HOSTID"))) {
		fprintf(stderr,
			"ibcoll: IBCOLL_HOSTID='%s': give 1 to %d characters of letters, digits, "
			"'-', '_' and '.' (a name for this host in the reports)\n",
			getenv("IBCOLL_HOSTID"), IBC_HOSTID_MAX);
		return IBC_EXIT_USAGE;
	}
	if (ibc_boot_env_detect(&env)) {
		fprintf(stderr, "ibcoll: %s\n", ibc_err_get());
		return IBC_EXIT_USAGE;
	}
	if (env.nranks > 1 && strcmp(env.source, "ibcoll") != 0 && o->launch.np_set &&
	    o->launch.np != env.nranks) {
		fprintf(stderr,
			"ibcoll: --np %ld conflicts with the launcher's %d ranks (%s): drop --np "
			"under mpirun/srun\n",
			o->launch.np, env.nranks, env.source);
		return IBC_EXIT_USAGE;
	}
	/* under PMIx even one rank is the launcher's (mpirun -np 1), unless --np asks for more */
	launched = env.nranks > 1 ||
		   (env.wireup == IBC_WIREUP_PMIX && (env.nranks == 0 || !o->launch.np_set));
	if (sendrecv && !launched && o->launch.np < 2) {
		fprintf(stderr, "ibcoll sendrecv: --np %ld: sendrecv needs at least 2 ranks (use "
				"--np 2 or a launcher)\n",
			o->launch.np);
		return IBC_EXIT_USAGE;
	}
	if (launched) /* a launcher's rank (its size maybe from PMIx), or one of --np re-executed */
		return bench__rank_main(NULL, o);
	return ibc_launch_local((int)o->launch.np, bench__rank_main, o,
				(int)o->launch.timeout_s * 1000 + 5000);
}

static int bench_main(int argc, char **argv, bool sendrecv)
{
	struct bench_opts o;
	bool done;
	int code = get_opts(argc, argv, sendrecv, &o, &done);

	if (done)
		return code;
	code = run_opts(&o, sendrecv);
	bench__opts_free(&o); /* what validation read: thresholds, the baseline */
	return code;
}

int ibc_allreduce_main(int argc, char **argv)
{
	return bench_main(argc, argv, false);
}

int ibc_sendrecv_main(int argc, char **argv)
{
	return bench_main(argc, argv, true);
}
