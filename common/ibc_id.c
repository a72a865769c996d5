/* SPDX-License-Identifier: MIT */
/*
 * ibc_id.c - random bytes and ids (ibc_id.h).
 */
#include "ibc_id.h"
#include "ibc_common.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Without the kernel's source: time, pid and a counter, run through splitmix64 so that two
 * calls in one nanosecond still differ. */
static uint64_t ibc_id_fallback(void)
{
	static atomic_uint_fast64_t counter;
	uint64_t x = ibc_now_ns() ^ ((uint64_t)getpid() << 32) ^
		     (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull);

	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int ibc_random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(p + got, len - got, GRND_NONBLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == len)
		return 0;
	while (got < len) {
		uint64_t x = ibc_id_fallback();
		size_t k = IBC_MIN(sizeof(x), len - got);

		memcpy(p + got, &x, k);
		got += k;
	}
	return -EIO;
}

uint64_t ibc_random_u64(void)
{
	uint64_t x;

	ibc_random_bytes(&x, sizeof(x));
	return x;
}

void ibc_new_id(char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[IBC_ID_HEX / 2];
	size_t i;

	if (!outlen)
		return;
	ibc_random_bytes(b, sizeof(b));
	for (i = 0; i < IBC_ID_HEX && i + 1 < outlen; i++)
		out[i] = hex[(b[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
	out[i] = '\0';
}
