/* SPDX-License-Identifier: MIT */
/*
 * ibv_sym.c - the dlopen'ed libibverbs symbol table (see ibv_sym.h).
 */
#include "ibv_sym.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ibc_common.h"

#define VRB_DEFAULT_LIB "libibverbs.so.1"

/* The only file-scope mutable state of the transport: written once under pthread_once. */
static struct {
	struct vrb_ibv_syms syms;
	void *handle; /* owned: dlopen handle, never closed (providers stay loaded) */
	int rc;
	char path[512];
	char err[768];
} vrb_lib;
static pthread_once_t vrb_lib_once = PTHREAD_ONCE_INIT;

struct vrb_sym_entry {
	const char *name;
	size_t offset; /* into struct vrb_ibv_syms */
	int required;
};

#define VRB_SYM(field, req)                                                                        \
	{                                                                                          \
		"ibv_" #field, offsetof(struct vrb_ibv_syms, field), req                           \
	}

static const struct vrb_sym_entry vrb_sym_table[] = {
    VRB_SYM(get_device_list, 1), VRB_SYM(free_device_list, 1), VRB_SYM(get_device_name, 1),
    VRB_SYM(open_device, 1),	 VRB_SYM(close_device, 1),     VRB_SYM(query_device, 1),
    VRB_SYM(query_port, 1),	 VRB_SYM(query_gid, 1),	       VRB_SYM(alloc_pd, 1),
    VRB_SYM(dealloc_pd, 1),	 VRB_SYM(reg_mr, 1),	       VRB_SYM(dereg_mr, 1),
    VRB_SYM(create_cq, 1),	 VRB_SYM(destroy_cq, 1),       VRB_SYM(create_qp, 1),
    VRB_SYM(modify_qp, 1),	 VRB_SYM(destroy_qp, 1),       VRB_SYM(wc_status_str, 0),
    VRB_SYM(get_device_guid, 0), VRB_SYM(port_state_str, 0),   VRB_SYM(reg_dmabuf_mr, 0),
};

static void vrb_sym_do_load(void)
{
	const char *env = getenv("IBCOLL_IBVERBS_LIB");
	const char *path = env && *env ? env : VRB_DEFAULT_LIB;
	size_t i;

	snprintf(vrb_lib.path, sizeof(vrb_lib.path), "%s", path);
	vrb_lib.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!vrb_lib.handle) {
		const char *why = dlerror();

		snprintf(vrb_lib.err, sizeof(vrb_lib.err),
			 "could not load libibverbs (%s): install rdma-core/libibverbs1 or set "
			 "IBCOLL_IBVERBS_LIB; or choose --transport tcp|shm",
			 why ? why : path);
		vrb_lib.rc = -ENODEV;
		return;
	}
	for (i = 0; i < IBC_ARRAY_SIZE(vrb_sym_table); i++) {
		const struct vrb_sym_entry *e = &vrb_sym_table[i];
		void *fn;

		dlerror();
		fn = dlsym(vrb_lib.handle, e->name);
		if (!fn && e->required) {
			snprintf(vrb_lib.err, sizeof(vrb_lib.err),
				 "could not load libibverbs (%s lacks %s): install "
				 "rdma-core/libibverbs1 or set IBCOLL_IBVERBS_LIB; or choose "
				 "--transport tcp|shm",
				 path, e->name);
			memset(&vrb_lib.syms, 0, sizeof(vrb_lib.syms));
			vrb_lib.rc = -ENODEV;
			return; /* the handle stays open: dlclose of providers is not safe */
		}
		memcpy((char *)&vrb_lib.syms + e->offset, &fn, sizeof(fn));
	}
	vrb_lib.rc = 0;
}

int vrb_sym_load(const struct vrb_ibv_syms **syms)
{
	pthread_once(&vrb_lib_once, vrb_sym_do_load);
	if (vrb_lib.rc) {
		ibc_err_set("%s", vrb_lib.err);
		return vrb_lib.rc;
	}
	*syms = &vrb_lib.syms;
	return 0;
}

const char *vrb_sym_path(void)
{
	return vrb_lib.path[0] ? vrb_lib.path : VRB_DEFAULT_LIB;
}

int vrb_query_port(const struct vrb_ibv_syms *s, struct ibv_context *ctx, uint8_t port,
		   struct ibv_port_attr *attr)
{
	struct verbs_context *vctx = verbs_get_ctx_op(ctx, query_port);

	if (vctx)
		return vctx->query_port(ctx, port, attr, sizeof(*attr));
	memset(attr, 0, sizeof(*attr));
	return s->query_port(ctx, port, attr);
}

const char *vrb_wc_status_str(const struct vrb_ibv_syms *s, enum ibv_wc_status status)
{
	if (s && s->wc_status_str)
		return s->wc_status_str(status);
	return "unknown completion status";
}
