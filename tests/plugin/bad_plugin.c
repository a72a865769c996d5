/* SPDX-License-Identifier: MIT */
/*
 * bad_plugin.c - plugins the loader must refuse (or accept with care), one per build flag:
 *   PLUG_BADABI   abi_major 1 (structs without size)  -> -EPROTO, "built for transport ABI 1"
 *   PLUG_SHORT    ops_size below IBC_TP_OPS_MIN_SIZE -> -EPROTO, "ops_size"
 *   PLUG_NULLOP   required entry accept is NULL      -> -EPROTO, "'accept' is NULL"
 *   PLUG_NOSYM    exports another symbol              -> -ENOEXEC
 *   PLUG_MINSIZE  valid, ops_size = IBC_TP_OPS_MIN_SIZE, flush set beyond it -> loads, and
 *                 IBC_TP_HAS(ops, flush) is false
 * Every entry is a stub returning -ENOSYS: these plugins are only looked at, never run.
 */
#include "transport.h"

#include <errno.h>

#define PLUG_ABI    IBC_TP_ABI_MAJOR
#define PLUG_SIZE   sizeof(struct ibc_tp_ops)
#define PLUG_ACCEPT stub_accept
#define PLUG_SYMBOL ibcoll_transport_plugin

#if defined(PLUG_BADABI)
#undef PLUG_ABI
#define PLUG_ABI 1 /* the ABI before ibc_tp_config/ibc_tp_props had a size field */
#elif defined(PLUG_SHORT)
#undef PLUG_SIZE
#define PLUG_SIZE (IBC_TP_OPS_MIN_SIZE - sizeof(void *))
#elif defined(PLUG_NULLOP)
#undef PLUG_ACCEPT
#define PLUG_ACCEPT NULL
#elif defined(PLUG_NOSYM)
#undef PLUG_SYMBOL
#define PLUG_SYMBOL not_an_ibcoll_transport
#elif defined(PLUG_MINSIZE)
#undef PLUG_SIZE
#define PLUG_SIZE IBC_TP_OPS_MIN_SIZE
#else
#error "define one of PLUG_BADABI PLUG_SHORT PLUG_NULLOP PLUG_NOSYM PLUG_MINSIZE"
#endif

static int stub_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **ctx)
{
	*ctx = NULL;
	return -ENOSYS;
}

static int stub_devices(struct ibc_tp_ctx *ctx, int *ndev)
{
	return -ENOSYS;
}

static int stub_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props)
{
	return -ENOSYS;
}

static int stub_listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **l)
{
	return -ENOSYS;
}

static int stub_connect(struct ibc_tp_ctx *ctx, int dev, const void *handle, struct ibc_tp_send **s)
{
	return -ENOSYS;
}

#ifndef PLUG_NULLOP
static int stub_accept(struct ibc_tp_listener *l, struct ibc_tp_recv **r)
{
	return -ENOSYS;
}
#endif

static int stub_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		       struct ibc_tp_mr **mr)
{
	return -ENOSYS;
}

static int stub_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr)
{
	return -ENOSYS;
}

static int stub_post_send(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
			  struct ibc_tp_mr *mr, struct ibc_tp_req **req)
{
	return -ENOSYS;
}

static int stub_post_recv(struct ibc_tp_recv *r, void *data, size_t size, uint32_t tag,
			  struct ibc_tp_mr *mr, struct ibc_tp_req **req)
{
	return -ENOSYS;
}

static int stub_test(struct ibc_tp_req *req, int *done, size_t *size)
{
	return -ENOSYS;
}

static int stub_close_send(struct ibc_tp_send *s)
{
	return -ENOSYS;
}

static int stub_close_recv(struct ibc_tp_recv *r)
{
	return -ENOSYS;
}

static int stub_close_listen(struct ibc_tp_listener *l)
{
	return -ENOSYS;
}

static int stub_fini(struct ibc_tp_ctx *ctx)
{
	return -ENOSYS;
}

static const char *stub_last_error(struct ibc_tp_ctx *ctx)
{
	return "stub";
}

static int stub_flush(struct ibc_tp_recv *r, void *data, size_t size, struct ibc_tp_mr *mr,
		      struct ibc_tp_req **req)
{
	return -ENOSYS;
}

__attribute__((visibility("default"))) const struct ibc_tp_ops PLUG_SYMBOL = {
    .abi_major = PLUG_ABI,
    .ops_size = PLUG_SIZE,
    .name = "stub",
    .description = "a plugin the loader must judge (tests)",
    .init = stub_init,
    .devices = stub_devices,
    .get_props = stub_get_props,
    .listen = stub_listen,
    .connect = stub_connect,
    .accept = PLUG_ACCEPT,
    .reg_mr = stub_reg_mr,
    .dereg_mr = stub_dereg_mr,
    .post_send = stub_post_send,
    .post_recv = stub_post_recv,
    .test = stub_test,
    .close_send = stub_close_send,
    .close_recv = stub_close_recv,
    .close_listen = stub_close_listen,
    .fini = stub_fini,
    .last_error = stub_last_error,
    .flush = stub_flush, /* lies past ops_size in PLUG_MINSIZE: must read as absent */
};
