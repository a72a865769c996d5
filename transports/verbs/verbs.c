/* SPDX-License-Identifier: MIT */
/*
 * verbs.c - the verbs transport's lifecycle and vtable (ibc_tp_verbs_ops).
 *
 * init: load libibverbs (ibv_sym.c) -> open HCAs, choose ports and GIDs (verbs_dev.c).
 * fini: connects in progress -> registration cache (verbs_reg.c) -> PDs and HCAs, in reverse
 * order of acquisition, releasing everything even after an error and returning the first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "verbs_int.h"

int vrb_errf(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
{
	char buf[sizeof(ctx->err)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap); /* fmt's arguments may point into ctx->err */
	va_end(ap);
	memcpy(ctx->err, buf, sizeof(buf));
	ibc_err_set("%s", ctx->err);
	IBC_DBG("verbs: %s", ctx->err);
	return rc;
}

int vrb_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out)
{
	const struct vrb_ibv_syms *ibv;
	struct ibc_tp_ctx *ctx;
	int rc, h;

	if (ibc_tp_config_check(cfg)) {
		ibc_err_set("verbs: init without a configuration of at least %zu bytes (cfg->size)",
			    (size_t)IBC_TP_CFG_BASE_SIZE);
		return -EINVAL;
	}
	if (cfg->qps < 0 || cfg->qps > VRB_MAX_QPS) {
		ibc_err_set("--qps %d: the verbs transport takes 1..%d queue pairs per connection",
			    cfg->qps, VRB_MAX_QPS);
		return -EINVAL;
	}
	rc = vrb_sym_load(&ibv);
	if (rc)
		return rc;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		ibc_err_set("verbs: out of memory");
		return -ENOMEM;
	}
	ctx->ibv = ibv;
	ctx->rank = cfg->rank;
	ctx->hostname = cfg->hostname;
	ctx->sysfs_root = IBC_TP_CFG_HAS(cfg, sysfs_root) ? cfg->sysfs_root : NULL;
	ctx->gid_index = cfg->gid_index;
	ctx->abort_flag = cfg->abort_flag;
	if (IBC_TP_CFG_HAS(cfg, job_key_len) && cfg->job_key && cfg->job_key_len) {
		ctx->key.len = IBC_MIN(cfg->job_key_len, sizeof(ctx->key.bytes));
		memcpy(ctx->key.bytes, cfg->job_key, ctx->key.len);
	}
	ctx->nqps = cfg->qps ? cfg->qps : 1;
	vrb_pick_local_addr(cfg->local_addr, ctx->local_addr, sizeof(ctx->local_addr));
	rc = vrb_dev_open(ctx, cfg->nic);
	if (rc)
		goto clean_ctx;
	ctx->mem_kinds = IBC_MEM_HOST | IBC_MEM_DMABUF;
	for (h = 0; h < ctx->nhcas; h++)
		if (!ctx->hcas[h].dmabuf)
			ctx->mem_kinds &= ~IBC_MEM_DMABUF;
	*out = ctx;
	return 0;

clean_ctx:
	free(ctx);
	return rc;
}

void vrb_get_stats(struct ibc_tp_ctx *ctx, struct vrb_stats *st)
{
	*st = ctx->stats;
}

int vrb_fini(struct ibc_tp_ctx *ctx)
{
	int first, rc;

	if (!ctx)
		return 0;
	if (ctx->nconns)
		ibc_log("verbs: fini with %d connection(s) still open", ctx->nconns);
	if (getenv("IBCOLL_VERBS_STATS"))
		ibc_log("verbs: registrations %" PRIu64 ", cache hits %" PRIu64
			", deregistrations %" PRIu64 ", still cached %" PRIu64,
			ctx->stats.registrations, ctx->stats.cache_hits, ctx->stats.deregistrations,
			ctx->stats.cached);
	first = vrb_conn_close_all_connecting(ctx);
	rc = vrb_reg_cache_fini(ctx);
	if (rc && !first)
		first = rc;
	rc = vrb_dev_close(ctx);
	if (rc && !first)
		first = rc;
	free(ctx);
	return first;
}

int vrb_devices(struct ibc_tp_ctx *ctx, int *ndev)
{
	*ndev = ctx->nports;
	return 0;
}

int vrb_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props)
{
	struct ibc_tp_props p = {0};
	const struct vrb_port *port;
	const struct vrb_hca *h;

	if (dev < 0 || dev >= ctx->nports)
		return vrb_errf(ctx, -EINVAL, "get_props: no device %d (0..%d)", dev,
				ctx->nports - 1);
	port = &ctx->ports[dev];
	h = &ctx->hcas[port->hca];
	snprintf(p.name, sizeof(p.name), "%s", h->name);
	snprintf(p.pci_busid, sizeof(p.pci_busid), "%s", h->pci_busid);
	p.port = port->port;
	p.guid = h->guid;
	p.speed_mbps = port->speed_mbps;
	snprintf(p.link_layer, sizeof(p.link_layer), "%s",
		 port->link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand");
	p.mem_kinds = ctx->mem_kinds;
	p.max_requests = VRB_DEPTH;
	p.caps = IBC_TP_CAP_INTERNODE;
	snprintf(p.fw_version, sizeof(p.fw_version), "%s", h->fw_ver);
	snprintf(p.board_id, sizeof(p.board_id), "%s", h->board_id);
	ibc_tp_props_put(props, &p);
	return 0;
}

const char *vrb_last_error(struct ibc_tp_ctx *ctx)
{
	return ctx && ctx->err[0] ? ctx->err : ibc_err_get();
}

/* A port counter from sysfs (below the context's root). */
static int vrb_counter(const struct ibc_tp_ctx *ctx, const char *dev, int port, const char *name,
		       uint64_t *v)
{
	uint64_t x;
	int rc = ibc_sysfs_read_u64(ctx->sysfs_root, &x, "class/infiniband/%s/ports/%d/counters/%s",
				    dev, port, name);

	if (!rc)
		*v = x;
	return rc;
}

int vrb_port_counters(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_counters *c)
{
	const struct vrb_port *p;
	const char *name;
	int rc;

	if (dev < 0 || dev >= ctx->nports)
		return vrb_errf(ctx, -EINVAL, "port_counters: no device %d", dev);
	p = &ctx->ports[dev];
	name = ctx->hcas[p->hca].name;
	memset(c, 0, sizeof(*c));
	rc = vrb_counter(ctx, name, p->port, "port_xmit_data", &c->xmit_bytes);
	if (rc)
		return vrb_errf(ctx, -EOPNOTSUPP, "%s port %d has no counters in sysfs", name,
				p->port);
	vrb_counter(ctx, name, p->port, "port_rcv_data", &c->rcv_bytes);
	c->xmit_bytes *= 4; /* these two count 4-byte words */
	c->rcv_bytes *= 4;
	vrb_counter(ctx, name, p->port, "symbol_error", &c->symbol_errors);
	vrb_counter(ctx, name, p->port, "link_downed", &c->link_downed);
	vrb_counter(ctx, name, p->port, "port_rcv_errors", &c->rcv_errors);
	vrb_counter(ctx, name, p->port, "port_xmit_discards", &c->xmit_discards);
	vrb_counter(ctx, name, p->port, "port_rcv_remote_physical_errors",
		    &c->port_rcv_remote_physical_errors);
	vrb_counter(ctx, name, p->port, "local_link_integrity_errors",
		    &c->local_link_integrity_errors);
	return 0;
}

const struct ibc_tp_ops ibc_tp_verbs_ops = {
    .abi_major = IBC_TP_ABI_MAJOR,
    .ops_size = sizeof(struct ibc_tp_ops),
    .name = "verbs",
    .description = "InfiniBand/RoCE: RC queue pairs, RDMA write with immediate into "
		   "advertised buffers (libibverbs loaded at run time)",
    .init = vrb_init,
    .devices = vrb_devices,
    .get_props = vrb_get_props,
    .listen = vrb_listen,
    .connect = vrb_connect,
    .accept = vrb_accept,
    .reg_mr = vrb_reg_mr,
    .dereg_mr = vrb_dereg_mr,
    .post_send = vrb_post_send,
    .post_recv = vrb_post_recv,
    .test = vrb_test,
    .close_send = vrb_close_send,
    .close_recv = vrb_close_recv,
    .close_listen = vrb_close_listen,
    .fini = vrb_fini,
    .last_error = vrb_last_error,
    .port_counters = vrb_port_counters,
};
