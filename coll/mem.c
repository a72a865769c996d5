/* SPDX-License-Identifier: MIT */
/*
 * mem.c - memory backend lookup (mem.h): the built-in host and hostdev backends, and the CUDA
 * backend loaded from libibcoll-cuda.so with dlopen, so that the ibcoll binary itself never
 * links CUDA and runs on machines without it.
 *
 * Where the library is looked for, in order:
 *   1. $IBCOLL_CUDA_LIB (a file, or a directory holding libibcoll-cuda.so);
 *   2. the directory of the running executable (/proc/self/exe): the build and install
 *      layouts put the library beside ibcoll;
 *   3. the default library path (dlopen of the bare name: LD_LIBRARY_PATH, ld.so.cache).
 * The first that loads is used; a failure lists every attempt with its dlerror().
 *
 * The library is loaded once per process (pthread_once) and never closed: its ops must
 * outlive every context. That table is this file's only mutable state.
 */
#include "mem.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibc_common.h"

#define MEM_CUDA_LIB "libibcoll-cuda.so"
#define MEM_ENV_LIB  "IBCOLL_CUDA_LIB"

extern const struct ibc_mem_ops ibc_mem_host;
extern const struct ibc_mem_ops ibc_mem_hostdev;

/* the CUDA backend: loaded once, guarded by mem_cuda_once */
static struct {
	void *dl;		       /* owned, never closed */
	const struct ibc_mem_ops *ops; /* borrowed from dl */
	char path[512];		       /* what was loaded (for messages) */
	int rc;		/* 0, -ENOENT (not loadable), -EPROTO (bad library), -ENODEV (no GPU) */
	char err[2048]; /* why rc */
} mem_cuda;
static pthread_once_t mem_cuda_once = PTHREAD_ONCE_INIT;

#define MEM_OPS_MIN_SIZE                                                                           \
	(offsetof(struct ibc_mem_ops, last_error) + sizeof(((struct ibc_mem_ops *)0)->last_error))

/* Append "; " + text to the attempt list. */
static void mem_note(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void mem_note(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 3 >= len)
		return;
	if (n)
		n += (size_t)snprintf(buf + n, len - n, "; ");
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

static void *mem_try_open(const char *path, char *tried, size_t len)
{
	void *dl;

	dlerror();
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl) {
		snprintf(mem_cuda.path, sizeof(mem_cuda.path), "%.511s", path);
		return dl;
	}
	mem_note(tried, len, "%s: %s", path, dlerror());
	return NULL;
}

static void *mem_open_env(const char *env, char *tried, size_t len)
{
	char path[PATH_MAX];
	struct stat st;

	if (stat(env, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof(path), "%s/%s", env, MEM_CUDA_LIB);
		return mem_try_open(path, tried, len);
	}
	return mem_try_open(env, tried, len);
}

static void *mem_open_exe_dir(char *tried, size_t len)
{
	char exe[PATH_MAX - 32], path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0) {
		mem_note(tried, len, "/proc/self/exe: %s", strerror(errno));
		return NULL;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/%s", exe, MEM_CUDA_LIB);
	if (access(path, F_OK) != 0) {
		mem_note(tried, len, "%s: not found", path);
		return NULL;
	}
	return mem_try_open(path, tried, len);
}

static int mem_validate(const struct ibc_mem_ops *ops)
{
	static const size_t required[] = {
	    offsetof(struct ibc_mem_ops, init),
	    offsetof(struct ibc_mem_ops, fini),
	    offsetof(struct ibc_mem_ops, info),
	    offsetof(struct ibc_mem_ops, alloc),
	    offsetof(struct ibc_mem_ops, free),
	    offsetof(struct ibc_mem_ops, host_alloc),
	    offsetof(struct ibc_mem_ops, host_free),
	    offsetof(struct ibc_mem_ops, host_register),
	    offsetof(struct ibc_mem_ops, host_unregister),
	    offsetof(struct ibc_mem_ops, copy),
	    offsetof(struct ibc_mem_ops, copy_async),
	    offsetof(struct ibc_mem_ops, done),
	    offsetof(struct ibc_mem_ops, reduce),
	    offsetof(struct ibc_mem_ops, finish),
	    offsetof(struct ibc_mem_ops, fill),
	    offsetof(struct ibc_mem_ops, poison),
	    offsetof(struct ibc_mem_ops, check),
	    offsetof(struct ibc_mem_ops, sync),
	    offsetof(struct ibc_mem_ops, last_error),
	};

	if (ops->abi != IBC_MEM_ABI) {
		snprintf(
		    mem_cuda.err, sizeof(mem_cuda.err),
		    "%.511s: memory backend ABI %u, this ibcoll expects %u (rebuild both together)",
		    mem_cuda.path, ops->abi, IBC_MEM_ABI);
		return -EPROTO;
	}
	if (ops->ops_size < MEM_OPS_MIN_SIZE) {
		snprintf(mem_cuda.err, sizeof(mem_cuda.err),
			 "%.511s: ops_size %u is smaller than the required %zu", mem_cuda.path,
			 ops->ops_size, (size_t)MEM_OPS_MIN_SIZE);
		return -EPROTO;
	}
	for (size_t k = 0; k < IBC_ARRAY_SIZE(required); k++) {
		void *const *fn = (void *const *)((const char *)ops + required[k]);

		if (!*fn) {
			snprintf(mem_cuda.err, sizeof(mem_cuda.err),
				 "%.511s: required entry at offset %zu is NULL", mem_cuda.path,
				 required[k]);
			return -EPROTO;
		}
	}
	return 0;
}

static void mem_cuda_load(void)
{
	char tried[1536] = "";
	const char *env = getenv(MEM_ENV_LIB);
	char why[512] = "";
	void *dl = NULL;
	int rc;

	if (env && *env)
		dl = mem_open_env(env, tried, sizeof(tried));
	if (!dl)
		dl = mem_open_exe_dir(tried, sizeof(tried));
	if (!dl)
		dl = mem_try_open(MEM_CUDA_LIB, tried, sizeof(tried));
	if (!dl) {
		mem_cuda.rc = -ENOENT;
		snprintf(
		    mem_cuda.err, sizeof(mem_cuda.err),
		    "--mem cuda: the CUDA memory backend (%s) could not be loaded; tried %s%s. "
		    "Build with -DIBCOLL_CUDA=ON, keep %s beside the ibcoll binary or set "
		    "%s=/path/to/%s",
		    MEM_CUDA_LIB, tried, env && *env ? "" : " (" MEM_ENV_LIB " is not set)",
		    MEM_CUDA_LIB, MEM_ENV_LIB, MEM_CUDA_LIB);
		return;
	}
	dlerror();
	mem_cuda.ops = dlsym(dl, IBC_MEM_CUDA_SYMBOL);
	if (!mem_cuda.ops) {
		mem_cuda.rc = -EPROTO;
		snprintf(mem_cuda.err, sizeof(mem_cuda.err), "%.511s does not export %s: %s",
			 mem_cuda.path, IBC_MEM_CUDA_SYMBOL, dlerror());
		return;
	}
	rc = mem_validate(mem_cuda.ops);
	if (rc) {
		mem_cuda.rc = rc;
		mem_cuda.ops = NULL;
		return;
	}
	mem_cuda.dl = dl;
	if (!IBC_MEM_HAS(mem_cuda.ops, probe))
		return;
	rc = mem_cuda.ops->probe(why, sizeof(why));
	if (rc <= 0) {
		mem_cuda.rc = rc < 0 ? rc : -ENODEV;
		snprintf(mem_cuda.err, sizeof(mem_cuda.err),
			 "--mem cuda: no GPU found: %.511s (%.511s)",
			 why[0] ? why : "no CUDA device", mem_cuda.path);
	}
}

int ibc_mem_lookup(const char *name, const struct ibc_mem_ops **ops)
{
	if (!name || !*name || strcmp(name, "host") == 0) {
		*ops = &ibc_mem_host;
		return 0;
	}
	if (strcmp(name, "hostdev") == 0) {
		*ops = &ibc_mem_hostdev;
		return 0;
	}
	if (strcmp(name, "cuda") != 0) {
		ibc_err_set("--mem '%s': unknown memory backend (expected host, cuda or hostdev)",
			    name);
		return -ENOENT;
	}
	pthread_once(&mem_cuda_once, mem_cuda_load);
	if (mem_cuda.rc) {
		ibc_err_set("%s", mem_cuda.err);
		return mem_cuda.rc;
	}
	*ops = mem_cuda.ops;
	return 0;
}

int ibc_mem_open(const struct ibc_mem_ops *ops, int local_rank, int device,
		 struct ibc_mem_ctx **ctx)
{
	char why[512] = "";
	int rc;

	*ctx = NULL;
	if (IBC_MEM_HAS(ops, init_err))
		rc = ops->init_err(local_rank, device, ctx, why, sizeof(why));
	else
		rc = ops->init(local_rank, device, ctx);
	if (rc)
		ibc_err_set("%s: %s", ops->name ? ops->name : "memory backend",
			    why[0] ? why : strerror(-rc));
	return rc;
}
