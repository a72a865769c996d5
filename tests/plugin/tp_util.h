/* SPDX-License-Identifier: MIT */
/*
 * tp_util.h - helpers shared by the transport tests (test_tcp.c, test_plugin.c): connect a
 * pair through any vtable, drive requests to completion with a deadline, fill and check data.
 * Header only; every function is static.
 */
#ifndef IBC_TP_UTIL_H
#define IBC_TP_UTIL_H

#include "transport.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define TP_DEADLINE_S 60.0

static inline double tp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Listen on rctx, connect from sctx, accept; 0 or the first error (or -ETIMEDOUT). */
static inline int tp_connect_pair(const struct ibc_tp_ops *ops, struct ibc_tp_ctx *sctx,
				  struct ibc_tp_ctx *rctx, struct ibc_tp_send **s,
				  struct ibc_tp_recv **r)
{
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_listener *l = NULL;
	double end = tp_now() + TP_DEADLINE_S;
	int rc, crc = -EAGAIN, arc = -EAGAIN;

	*s = NULL;
	*r = NULL;
	rc = ops->listen(rctx, 0, handle, &l);
	if (rc)
		return rc;
	while ((crc == -EAGAIN || arc == -EAGAIN) && tp_now() < end) {
		if (crc == -EAGAIN)
			crc = ops->connect(sctx, 0, handle, s);
		if (arc == -EAGAIN)
			arc = ops->accept(l, r);
		if (crc == -EAGAIN || arc == -EAGAIN)
			sched_yield();
	}
	ops->close_listen(l);
	if (crc == -EAGAIN || arc == -EAGAIN)
		rc = -ETIMEDOUT;
	else
		rc = crc ? crc : arc;
	if (rc) {
		ops->close_send(*s);
		ops->close_recv(*r);
		*s = NULL;
		*r = NULL;
	}
	return rc;
}

/* Test a set of requests until all are done; rcs[i] gets each test() result, sizes[i] the
 * size. Returns 0 when all completed (with or without error), -ETIMEDOUT otherwise. Finished
 * entries are set to NULL. */
static inline int tp_complete(const struct ibc_tp_ops *ops, struct ibc_tp_req **reqs, int n,
			      int *rcs, size_t *sizes)
{
	double end = tp_now() + TP_DEADLINE_S;
	int left = 0, i;

	for (i = 0; i < n; i++)
		left += reqs[i] != NULL;
	while (left && tp_now() < end) {
		for (i = 0; i < n; i++) {
			int done = 0, rc;
			size_t sz = 0;

			if (!reqs[i])
				continue;
			rc = ops->test(reqs[i], &done, &sz);
			if (!done && !rc)
				continue;
			rcs[i] = rc;
			if (sizes)
				sizes[i] = sz;
			reqs[i] = NULL;
			left--;
		}
		if (left)
			sched_yield();
	}
	return left ? -ETIMEDOUT : 0;
}

/* Byte i of message `seed`: cheap, differs between messages and positions. */
static inline unsigned char tp_byte(uint32_t seed, size_t i)
{
	uint32_t x = seed * 2654435761u ^ (uint32_t)(i * 40503u) ^ (uint32_t)(i >> 12);

	return (unsigned char)(x ^ (x >> 13));
}

static inline void tp_fill(void *buf, size_t n, uint32_t seed)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = tp_byte(seed, i);
}

/* Index of the first wrong byte, or -1 when all n bytes are right. */
static inline long tp_check(const void *buf, size_t n, uint32_t seed)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != tp_byte(seed, i))
			return (long)i;
	return -1;
}

#endif
