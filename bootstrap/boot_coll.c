/* SPDX-License-Identifier: MIT */
/*
 * boot_coll.c - gather, bcast, allgather and barrier over the bootstrap's point-to-point
 * messages (bootstrap.h).
 */
#include "boot_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- collectives */

int ibc_boot_gather(struct ibc_boot *b, const void *mine, void *all, size_t len)
{
	uint32_t tag = BOOT_TAG_GATHER | ibc__boot_seq(b);
	int i, rc;

	if (ibc_boot_rank(b) != 0)
		return ibc_boot_send(b, 0, tag, mine, len);
	memcpy(all, mine, len);
	for (i = 1; i < ibc_boot_nranks(b); i++) {
		rc = ibc_boot_recv(b, i, tag, (char *)all + (size_t)i * len, len);
		if (rc)
			return rc;
	}
	return 0;
}

int ibc_boot_bcast(struct ibc_boot *b, void *data, size_t len)
{
	uint32_t tag = BOOT_TAG_BCAST | ibc__boot_seq(b);
	int i, rc;

	if (ibc_boot_rank(b) != 0)
		return ibc_boot_recv(b, 0, tag, data, len);
	for (i = 1; i < ibc_boot_nranks(b); i++) {
		rc = ibc_boot_send(b, i, tag, data, len);
		if (rc)
			return rc;
	}
	return 0;
}

int ibc_boot_allgather(struct ibc_boot *b, const void *mine, void *all, size_t len)
{
	int rc = ibc_boot_gather(b, mine, all, len);

	if (rc)
		return rc;
	return ibc_boot_bcast(b, all, len * (size_t)ibc_boot_nranks(b));
}

int ibc_boot_barrier(struct ibc_boot *b)
{
	char c = 0, *all = NULL;
	int rc;

	if (ibc_boot_rank(b) == 0) {
		all = malloc((size_t)ibc_boot_nranks(b));
		if (!all)
			return -ENOMEM;
	}
	rc = ibc_boot_gather(b, &c, all, 1);
	if (!rc)
		rc = ibc_boot_bcast(b, &c, 1);
	free(all);
	return rc;
}
