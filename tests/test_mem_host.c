/* SPDX-License-Identifier: MIT */
/*
 * test_mem_host.c - the built-in memory backends (coll/mem_host.c) and the lookup (mem.c):
 *  - host and hostdev: every data operation against dtype.c for every dtype and op
 *    (tests/gpu/kcheck.h, the same checks the CUDA backend gets on a GPU);
 *  - hostdev: copy_async is asynchronous-looking (the data is not there before done() said
 *    1; tickets complete in order; sync drains), info.is_device = 1;
 *  - lookup: unknown names, and "cuda" on a machine without a GPU or driver fails with a
 *    message that says so (in a CUDA build: -ENODEV "no GPU found ... no CUDA device";
 *    without one: -ENOENT naming the library and what was tried). With a GPU present the
 *    lookup must succeed (CUDA builds).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibc_common.h"
#include "mem.h"
#include "tap.h"

#include "gpu/kcheck.h"

static void report(void *arg, int okv, const char *text)
{
	ok(okv, "%s: %s", (const char *)arg, text);
}

static void run_backend(const char *name, size_t count)
{
	const struct ibc_mem_ops *ops;
	struct ibc_mem_ctx *ctx;
	struct ibc_mem_info info;
	struct kc k;

	is_int(ibc_mem_lookup(name, &ops), 0, "lookup %s", name);
	is_str(ops->name, name, "%s: name", name);
	ok(IBC_MEM_HAS(ops, probe) && IBC_MEM_HAS(ops, init_err), "%s: appended entries present",
	   name);
	is_int(ibc_mem_open(ops, 0, -1, &ctx), 0, "%s: open", name);
	is_int(ops->info(ctx, &info), 0, "%s: info", name);
	is_int(info.is_device, strcmp(name, "hostdev") == 0, "%s: is_device", name);
	is_int(info.device, -1, "%s: device -1", name);
	memset(&k, 0, sizeof(k));
	k.ops = ops;
	k.ctx = ctx;
	k.count = count;
	k.nranks = 5;
	k.rng = 42;
	k.report = report;
	k.arg = (void *)name;
	kc_run(&k);
	is_int(ops->fini(ctx), 0, "%s: fini", name);
}

/* hostdev: copies land only when done() says so, in order. */
static void hostdev_async(void)
{
	const struct ibc_mem_ops *ops;
	struct ibc_mem_ctx *ctx;
	char src[3][64], dst[3][64];
	uint64_t t[3];
	int polls = 0, d;

	ibc_mem_lookup("hostdev", &ops);
	ibc_mem_open(ops, 0, -1, &ctx);
	for (int i = 0; i < 3; i++) {
		memset(src[i], 'a' + i, sizeof(src[i]));
		memset(dst[i], 0, sizeof(dst[i]));
		is_int(ops->copy_async(ctx, dst[i], src[i], sizeof(src[i]), IBC_COPY_H2D, &t[i]), 0,
		       "hostdev: copy_async %d", i);
	}
	ok(t[0] && t[1] > t[0] && t[2] > t[1], "hostdev: tickets increase");
	ok(dst[0][0] == 0 && dst[2][0] == 0, "hostdev: nothing copied before done()");
	while ((d = ops->done(ctx, t[1])) == 0)
		polls++;
	is_int(d, 1, "hostdev: ticket 1 completes");
	ok(polls >= 1, "hostdev: done() answered 0 first (%d polls)", polls);
	ok(dst[0][0] == 'a' && dst[1][63] == 'b', "hostdev: copies 0 and 1 landed, in order");
	is_int(ops->done(ctx, t[0]), 1, "hostdev: the earlier ticket is done too");
	is_int(dst[2][0], 0, "hostdev: copy 2 still pending");
	is_int(ops->done(ctx, t[2] + 1), -EINVAL, "hostdev: unknown ticket is -EINVAL");
	ok(strstr(ops->last_error(ctx), "never issued") != NULL, "hostdev: last_error says why: %s",
	   ops->last_error(ctx));
	is_int(ops->sync(ctx), 0, "hostdev: sync");
	ok(dst[2][0] == 'c', "hostdev: sync drained the queue");
	is_int(ops->done(ctx, t[2]), 1, "hostdev: done after sync");
	/* many in flight: the queue grows */
	{
		enum { N = 300 };
		static char big_src[N], big_dst[N];
		uint64_t last = 0;

		for (int i = 0; i < N; i++) {
			big_src[i] = (char)i;
			ops->copy_async(ctx, &big_dst[i], &big_src[i], 1, IBC_COPY_D2H, &last);
		}
		while ((d = ops->done(ctx, last)) == 0)
			;
		ok(d == 1 && memcmp(big_src, big_dst, N) == 0, "hostdev: %d queued copies", N);
	}
	is_int(ops->copy_async(ctx, dst[0], src[0], 1, (enum ibc_copy_kind)9, &t[0]), -EINVAL,
	       "hostdev: bad copy kind");
	ops->fini(ctx);
}

static int gpu_present(void)
{
	void *dl;

	if (access("/dev/nvidiactl", F_OK) == 0 || access("/dev/nvidia0", F_OK) == 0)
		return 1;
	dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (dl)
		dlclose(dl);
	return dl != NULL;
}

static void lookup_errors(void)
{
	const char *have_cuda = getenv("IBC_TEST_HAVE_CUDA");
	const struct ibc_mem_ops *ops = NULL;
	int rc;

	is_int(ibc_mem_lookup("nvlink", &ops), -ENOENT, "lookup of an unknown backend fails");
	ok(strstr(ibc_err_get(), "nvlink") && strstr(ibc_err_get(), "host, cuda"),
	   "the message names it and the choices: %s", ibc_err_get());
	is_int(ibc_mem_lookup(NULL, &ops), 0, "NULL means host");
	is_str(ops->name, "host", "NULL gives host");

	rc = ibc_mem_lookup("cuda", &ops);
	if (gpu_present()) {
		diag("a GPU or driver is present: lookup(cuda) -> %d %s", rc,
		     rc ? ibc_err_get() : "");
		if (have_cuda && *have_cuda == '1')
			is_int(rc, 0, "lookup(cuda) succeeds where a GPU is present");
		else
			ok(rc == -ENOENT,
			   "host-only build: lookup(cuda) says the library is absent");
		return;
	}
	if (have_cuda && *have_cuda == '1') {
		is_int(rc, -ENODEV, "lookup(cuda) without a GPU: -ENODEV");
		ok(strstr(ibc_err_get(), "no GPU found") && strstr(ibc_err_get(), "no CUDA device"),
		   "the message says no GPU/driver was found: %s", ibc_err_get());
		ok(strstr(ibc_err_get(), "driver") != NULL, "and what the driver state is");
	} else {
		is_int(rc, -ENOENT, "lookup(cuda) in a build without CUDA: -ENOENT");
		ok(strstr(ibc_err_get(), "libibcoll-cuda.so") &&
		       strstr(ibc_err_get(), "IBCOLL_CUDA_LIB"),
		   "the message names the library and how to point at it: %s", ibc_err_get());
		ok(strstr(ibc_err_get(), "tried") != NULL, "and lists what was tried");
	}
	/* the answer is remembered: same result again */
	is_int(ibc_mem_lookup("cuda", &ops), rc, "second lookup(cuda) gives the same answer");
}

int main(void)
{
	lookup_errors();
	hostdev_async();
	run_backend("host", 1003);
	run_backend("hostdev", 1003);
	return tap_done();
}
