/* SPDX-License-Identifier: MIT */
/*
 * bootstrap_env.c - who launched this rank (bootstrap.h): rank and size from the launcher's
 * environment (ibcoll's --np launcher, Open MPI, PMI, Slurm, PMIx), and how the ranks will
 * meet (enum ibc_wireup): IBCOLL_ROOT, else the launcher's PMIx server, else under Slurm a
 * port derived from the job on the first host of the node list.
 */
#include "bootstrap.h"
#include "ibc_common.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define IBC_SLURM_PORT_BASE 20000
#define IBC_SLURM_PORT_SPAN 12768

static const char *env(const char *n)
{
	const char *v = getenv(n);

	return v && *v ? v : NULL;
}

static int env_pair(const char *rn, const char *sn, int *rank, int *size)
{
	const char *r = env(rn), *s = env(sn);
	long rv, sv;

	if (!r && !s)
		return 1; /* not this launcher */
	if (!r || !s) {
		ibc_err_set("%s is set but %s is not: the launcher environment is incomplete",
			    r ? rn : sn, r ? sn : rn);
		return -EINVAL;
	}
	if (ibc_parse_int(s, 1, 1 << 30, &sv) || ibc_parse_int(r, 0, 1 << 30, &rv)) {
		ibc_err_set("%s=%s / %s=%s are not valid rank/size numbers", rn, r, sn, s);
		return -EINVAL;
	}
	if (rv >= sv) {
		ibc_err_set("%s=%ld is not below %s=%ld", rn, rv, sn, sv);
		return -EINVAL;
	}
	*rank = (int)rv;
	*size = (int)sv;
	return 0;
}

int ibc_boot_slurm_first_host(const char *nl, char *host, size_t len)
{
	size_t i = 0, n = 0;
	const char *br;

	if (!nl || !*nl)
		return -EINVAL;
	/* prefix up to '[' or ',' */
	while (nl[i] && nl[i] != '[' && nl[i] != ',')
		i++;
	if (i == 0 || i >= len)
		return -EINVAL;
	memcpy(host, nl, i);
	n = i;
	if (nl[i] == '[') {
		br = nl + i + 1;
		while (*br >= '0' && *br <= '9') {
			if (n + 1 >= len)
				return -EINVAL;
			host[n++] = *br++;
		}
		if (n == i || (*br != '-' && *br != ',' && *br != ']'))
			return -EINVAL;
	}
	host[n] = '\0';
	return 0;
}

const char *ibc_wireup_name(int w)
{
	static const char *const names[] = { "single", "root", "pmix", "slurm", "local" };

	return w >= 0 && w < (int)IBC_ARRAY_SIZE(names) ? names[w] : "?";
}

/* Under a PMIx server: PMIX_RANK is this rank; the size is the launcher's variable when one
 * was found (have_size), else PMIx's, read at ibc_boot_init (nranks 0). */
static int pmix_rank(struct ibc_boot_env *e, bool have_size)
{
	long r;

	if (ibc_parse_int(env("PMIX_RANK"), 0, 1 << 30, &r)) {
		ibc_err_set("PMIX_RANK=%s is not a rank number", env("PMIX_RANK"));
		return -EINVAL;
	}
	if (have_size && r != e->rank) {
		ibc_err_set("PMIX_RANK=%ld but the launcher's rank variable (%s) says %d: launch "
			    "with one launcher",
			    r, e->source, e->rank);
		return -EINVAL;
	}
	e->rank = (int)r;
	if (!have_size) {
		e->nranks = 0;
		snprintf(e->source, sizeof(e->source), "pmix");
	}
	e->wireup = IBC_WIREUP_PMIX;
	return 0;
}

int ibc_boot_env_detect(struct ibc_boot_env *e)
{
	static const struct {
		const char *src, *rank, *size;
	} launchers[] = {
		{ "ibcoll", "IBCOLL_RANK", "IBCOLL_NRANKS" },
		{ "ompi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" },
		{ "pmi", "PMI_RANK", "PMI_SIZE" },
		{ "slurm", "SLURM_PROCID", "SLURM_NTASKS" },
	};
	const char *root = env("IBCOLL_ROOT");
	size_t i;
	int rc;

	memset(e, 0, sizeof(*e));
	e->nranks = 1;
	snprintf(e->source, sizeof(e->source), "single");
	for (i = 0; i < IBC_ARRAY_SIZE(launchers); i++) {
		rc = env_pair(launchers[i].rank, launchers[i].size, &e->rank, &e->nranks);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			snprintf(e->source, sizeof(e->source), "%s", launchers[i].src);
			break;
		}
	}
	if (root) {
		snprintf(e->root, sizeof(e->root), "%s", root);
		e->wireup = IBC_WIREUP_ROOT;
	} else if (env("PMIX_RANK") && env("PMIX_NAMESPACE")) {
		rc = pmix_rank(e, i < IBC_ARRAY_SIZE(launchers));
		if (rc)
			return rc;
	} else if (e->nranks > 1 && env("SLURM_JOB_ID")) {
		const char *nl = env("SLURM_STEP_NODELIST") ? env("SLURM_STEP_NODELIST")
							    : env("SLURM_JOB_NODELIST");
		char host[200];
		long job = atol(env("SLURM_JOB_ID"));
		long step = env("SLURM_STEP_ID") ? atol(env("SLURM_STEP_ID")) : 0;

		if (!nl || ibc_boot_slurm_first_host(nl, host, sizeof(host))) {
			ibc_err_set("cannot find the first host in SLURM_JOB_NODELIST='%s': set "
				    "IBCOLL_ROOT=host:port",
				    nl ? nl : "");
			return -EINVAL;
		}
		/* same on every rank without talking; below Linux's ephemeral range (32768+) so
		 * no outgoing connection holds it */
		snprintf(e->root, sizeof(e->root), "%s:%ld", host,
			 IBC_SLURM_PORT_BASE + (job * 7 + step) % IBC_SLURM_PORT_SPAN);
		e->wireup = IBC_WIREUP_SLURM;
	} else if (e->nranks > 1) {
		ibc_err_set("%d ranks were launched (%s) without a PMIx server and no rendezvous "
			    "address is known: launch with mpirun or srun --mpi=pmix, or set "
			    "IBCOLL_ROOT=host:port to a host and free port of rank 0",
			    e->nranks, e->source);
		return -EINVAL;
	}
	if (env("IBCOLL_JOB_ID"))
		snprintf(e->job_id, sizeof(e->job_id), "%s", env("IBCOLL_JOB_ID"));
	return 0;
}
