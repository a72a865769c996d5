/* SPDX-License-Identifier: MIT */
/* coll.c - algorithm names and ibc_allreduce_prepare, which hands each algorithm to its file:
 * ring.c, tree.c, rd.c (recursive doubling, and halving then doubling). */
#include "coll.h"
#include "coll_int.h"
#include "ibc_common.h"

#include <string.h>

static const char *const algo_names[IBC_ALGO_COUNT] = { "ring", "tree", "mpi", "rd", "rhd" };

const char *ibc_algo_name(enum ibc_algo a)
{
	return a < IBC_ALGO_COUNT ? algo_names[a] : "?";
}

int ibc_algo_parse(const char *s, enum ibc_algo *a)
{
	int i;

	for (i = 0; i < IBC_ALGO_COUNT; i++)
		if (strcmp(s, algo_names[i]) == 0) {
			*a = (enum ibc_algo)i;
			return 0;
		}
	return -EINVAL;
}

/* One rank: the output is the input (copied unless in place), finished (avg). */
static int local_prog(const struct ibc_coll_args *a, struct ibc_prog *p)
{
	int rc = ibc_prog_init(p, 1, NULL, 0, a->dt, a->op, 1);

	if (!rc && a->in->ptr != a->out->ptr)
		rc = ibc__add(p, 0, IBC_OPK_COPY, -1, a->count, a->in->ptr, a->out->ptr, NULL);
	if (!rc)
		rc = ibc__add(p, 0, IBC_OPK_FINISH, -1, a->count, NULL, a->out->ptr, NULL);
	return rc;
}

int ibc_allreduce_prepare(struct ibc_comm *c, const struct ibc_coll_args *a, struct ibc_prog *p)
{
	memset(p, 0, sizeof(*p));
	if (a->channels < 1 || a->channels > IBC_MAX_CHANNELS)
		return -EINVAL;
	if (a->chunk_bytes > c->max_chunk) {
		ibc_err_set("chunk of %zu bytes exceeds the engine's %zu", a->chunk_bytes,
			    c->max_chunk);
		return -EINVAL;
	}
	if (c->nranks == 1)
		return local_prog(a, p);
	switch (a->algo) {
	case IBC_ALGO_RING:
		return ibc__ring_prog(c, a, p);
	case IBC_ALGO_TREE:
		return ibc__tree_prog(c, a, p);
	case IBC_ALGO_RD:
		return ibc__rd_prog(c, a, p);
	case IBC_ALGO_RHD:
		return ibc__rhd_prog(c, a, p);
	default:
		ibc_err_set("algorithm %s is not a program of the engine", ibc_algo_name(a->algo));
		return -EINVAL;
	}
}
