/* SPDX-License-Identifier: MIT */
/*
 * verbs_dev.c - devices and ports: open the HCAs named by --nic (default: all), keep their
 * ACTIVE ports, read rate, MTU and link layer, choose the GID (RoCE v2 IPv4-mapped preferred,
 * or --gid-index), allocate one PD per HCA and probe dma-buf registration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verbs_int.h"

#define VRB_MAX_NIC_ITEMS 32

struct vrb_nic_sel {
	const char *name;
	int port; /* 0: every port */
	int found;
};

const char *vrb_port_name(const struct ibc_tp_ctx *ctx, int port, char *buf, size_t len)
{
	const struct vrb_port *p = &ctx->ports[port];

	snprintf(buf, len, "%s port %d", ctx->hcas[p->hca].name, p->port);
	return buf;
}

/* Per-lane signalling rate in Mb/s for ibv_port_attr.active_speed (XDR needs active_speed_ex,
 * which rdma-core 44 lacks). */
static uint32_t vrb_lane_mbps(uint8_t speed)
{
	switch (speed) {
	case 1:
		return 2500; /* SDR */
	case 2:
		return 5000; /* DDR */
	case 4:
		return 10000; /* QDR */
	case 8:
		return 10000; /* FDR10 */
	case 16:
		return 14000; /* FDR */
	case 32:
		return 25000; /* EDR */
	case 64:
		return 50000; /* HDR */
	case 128:
		return 100000; /* NDR */
	default:
		return 0;
	}
}

static uint32_t vrb_lanes(uint8_t width)
{
	switch (width) {
	case 1:
		return 1;
	case 2:
		return 4;
	case 4:
		return 8;
	case 8:
		return 12;
	case 16:
		return 2;
	default:
		return 0;
	}
}

static int vrb_gid_is_zero(const union ibv_gid *g)
{
	static const uint8_t zero[16];

	return memcmp(g->raw, zero, sizeof(zero)) == 0;
}

static int vrb_gid_is_ipv4(const union ibv_gid *g)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(g->raw, prefix, sizeof(prefix)) == 0;
}

/* Preference of a RoCE GID: v2 IPv4-mapped > v2 > v1 IPv4 > other non-zero > none. The type
 * comes from sysfs where present (a software HCA may have none: then "unknown"). */
static int vrb_gid_score(const struct ibc_tp_ctx *ctx, const char *dev, int port, int idx,
			 const union ibv_gid *g)
{
	char type[32];
	int v2 = 0, known, rc;

	if (vrb_gid_is_zero(g))
		return 0;
	rc = ibc_sysfs_read_line(ctx->sysfs_root, type, sizeof(type),
				 "class/infiniband/%s/ports/%d/gid_attrs/types/%d", dev, port, idx);
	known = rc == 0 || rc == -ENODATA; /* an empty file is there, of no known type */
	if (known)
		v2 = strstr(type, "v2") != NULL;
	if (v2)
		return vrb_gid_is_ipv4(g) ? 5 : 4;
	if (!known)
		return vrb_gid_is_ipv4(g) ? 3 : 2;
	return vrb_gid_is_ipv4(g) ? 2 : 1;
}

static int vrb_port_gid(struct ibc_tp_ctx *ctx, struct vrb_port *p, int tbl_len)
{
	struct vrb_hca *h = &ctx->hcas[p->hca];
	int best = -1, best_score = 0, i;
	union ibv_gid g;

	p->use_grh = p->link_layer == IBV_LINK_LAYER_ETHERNET || ctx->gid_index >= 0 || !p->lid;
	if (ctx->gid_index >= 0) {
		if (ctx->gid_index >= tbl_len && tbl_len > 0)
			return vrb_errf(ctx, -EINVAL,
					"--gid-index %d: %s port %d has %d GIDs (0..%d)",
					ctx->gid_index, h->name, p->port, tbl_len, tbl_len - 1);
		p->gid_index = ctx->gid_index;
		if (ctx->ibv->query_gid(h->ctx, p->port, p->gid_index, &p->gid))
			return vrb_errf(ctx, -EINVAL,
					"--gid-index %d: cannot read GID on %s port %d",
					p->gid_index, h->name, p->port);
		return 0;
	}
	for (i = 0; i < IBC_MIN(tbl_len, 256); i++) {
		int score;

		if (ctx->ibv->query_gid(h->ctx, p->port, i, &g))
			continue;
		score = vrb_gid_score(ctx, h->name, p->port, i, &g);
		if (score > best_score) {
			best_score = score;
			best = i;
		}
		if (p->link_layer != IBV_LINK_LAYER_ETHERNET && score)
			break; /* InfiniBand: the first (port GID) is the one */
	}
	p->gid_index = best < 0 ? 0 : best;
	if (ctx->ibv->query_gid(h->ctx, p->port, p->gid_index, &p->gid))
		memset(&p->gid, 0, sizeof(p->gid));
	if (p->use_grh && vrb_gid_is_zero(&p->gid))
		ibc_log(
		    "verbs: %s port %d has no usable GID (RoCE needs one: check the interface's IP "
		    "address, or pass --gid-index)",
		    h->name, p->port);
	IBC_DBG("verbs: %s port %d: GID index %d (score %d)", h->name, p->port, p->gid_index,
		best_score);
	return 0;
}

static const char *vrb_state_str(struct ibc_tp_ctx *ctx, enum ibv_port_state st)
{
	if (ctx->ibv->port_state_str)
		return ctx->ibv->port_state_str(st);
	return st == IBV_PORT_DOWN ? "DOWN" : st == IBV_PORT_INIT ? "INIT" : "not ACTIVE";
}

/* Add the ACTIVE ports of HCA h (only `want` when > 0). Returns ports added or -errno. */
static int vrb_add_ports(struct ibc_tp_ctx *ctx, int h, int want)
{
	struct vrb_hca *hca = &ctx->hcas[h];
	struct ibv_device_attr da;
	int p, added = 0, rc;

	if (ctx->ibv->query_device(hca->ctx, &da))
		return vrb_errf(ctx, -ENODEV, "ibv_query_device(%s) failed: %s", hca->name,
				strerror(errno));
	if (want > da.phys_port_cnt)
		return vrb_errf(ctx, -ENODEV, "--nic %s:%d: %s has %d port(s)", hca->name, want,
				hca->name, da.phys_port_cnt);
	for (p = 1; p <= da.phys_port_cnt; p++) {
		struct ibv_port_attr pa;
		struct vrb_port *port;

		if (want && p != want)
			continue;
		if (vrb_query_port(ctx->ibv, hca->ctx, p, &pa)) {
			ibc_log("verbs: skipping %s port %d: ibv_query_port failed", hca->name, p);
			continue;
		}
		if (pa.state != IBV_PORT_ACTIVE) {
			ibc_log("verbs: skipping %s port %d: state %s", hca->name, p,
				vrb_state_str(ctx, pa.state));
			continue;
		}
		if (ctx->nports == VRB_MAX_PORTS) {
			ibc_log("verbs: more than %d active ports; using the first %d (select with "
				"--nic)",
				VRB_MAX_PORTS, VRB_MAX_PORTS);
			break;
		}
		port = &ctx->ports[ctx->nports];
		memset(port, 0, sizeof(*port));
		port->hca = h;
		port->port = p;
		port->link_layer = pa.link_layer == IBV_LINK_LAYER_ETHERNET
				       ? IBV_LINK_LAYER_ETHERNET
				       : IBV_LINK_LAYER_INFINIBAND;
		port->lid = pa.lid;
		port->mtu = pa.active_mtu ? pa.active_mtu : IBV_MTU_1024;
		port->speed_mbps = vrb_lane_mbps(pa.active_speed) * vrb_lanes(pa.active_width);
		port->max_msg = pa.max_msg_sz;
		rc = vrb_port_gid(ctx, port, pa.gid_tbl_len);
		if (rc)
			return rc;
		ctx->nports++;
		added++;
	}
	return added;
}

/* Opening HCA dev as ctx->hcas[nhcas]: context, then PD, then the dma-buf probe. */
static int vrb_hca_open(struct ibc_tp_ctx *ctx, struct ibv_device *dev)
{
	struct vrb_hca *h = &ctx->hcas[ctx->nhcas];

	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", ctx->ibv->get_device_name(dev));
	h->ctx = ctx->ibv->open_device(dev);
	if (!h->ctx)
		return vrb_errf(ctx, -ENODEV, "ibv_open_device(%s) failed: %s", h->name,
				strerror(errno));
	/* sysfs facts; each stays "" when its file is absent (a software HCA has none) */
	ibc_sysfs_pci_busid(ctx->sysfs_root, h->pci_busid, sizeof(h->pci_busid),
			    "class/infiniband/%s/device", h->name);
	ibc_sysfs_read_line(ctx->sysfs_root, h->fw_ver, sizeof(h->fw_ver),
			    "class/infiniband/%s/fw_ver", h->name);
	ibc_sysfs_read_line(ctx->sysfs_root, h->board_id, sizeof(h->board_id),
			    "class/infiniband/%s/board_id", h->name);
	if (ctx->ibv->get_device_guid)
		h->guid = be64toh(ctx->ibv->get_device_guid(dev));
	ctx->nhcas++;
	return 0;
}

static void vrb_hca_probe_dmabuf(struct ibc_tp_ctx *ctx, struct vrb_hca *h)
{
	struct ibv_mr *mr;

	h->dmabuf = 0;
	if (!ctx->ibv->reg_dmabuf_mr || getenv("IBCOLL_VERBS_NO_DMABUF"))
		return;
	errno = 0;
	mr = ctx->ibv->reg_dmabuf_mr(h->pd, 0, 0, 0, -1, 0);
	if (mr) { /* cannot happen with fd -1; be tidy if it does */
		ctx->ibv->dereg_mr(mr);
		return;
	}
	h->dmabuf = errno != EOPNOTSUPP && errno != EPROTONOSUPPORT && errno != ENOSYS;
}

static int vrb_parse_nic(struct ibc_tp_ctx *ctx, const char *nic, char **store,
			 struct vrb_nic_sel *sel, int *nsel)
{
	const char *items[VRB_MAX_NIC_ITEMS];
	int n, i;

	n = ibc_split_list(nic, store, items, VRB_MAX_NIC_ITEMS);
	if (n <= 0)
		return vrb_errf(ctx, -EINVAL,
				"--nic '%s': expected device[:port][,device[:port]...], at most %d",
				nic, VRB_MAX_NIC_ITEMS);
	for (i = 0; i < n; i++) {
		char *colon = strchr(items[i], ':');
		long port = 0;

		sel[i].name = items[i];
		sel[i].found = 0;
		if (colon) {
			*colon = '\0';
			if (ibc_parse_int(colon + 1, 1, 255, &port))
				return vrb_errf(ctx, -EINVAL,
						"--nic '%s': port of %s must be 1..255", nic,
						items[i]);
		}
		sel[i].port = (int)port;
	}
	*nsel = n;
	return 0;
}

/* "mlx5_0, mlx5_1" (or "none") into names. */
static void vrb_dev_names(struct ibc_tp_ctx *ctx, struct ibv_device **list, int n, char *names,
			  size_t len)
{
	size_t off = 0;
	int i;

	snprintf(names, len, "none");
	for (i = 0; i < n && off < len - 1; i++)
		off += snprintf(names + off, len - off, "%s%s", i ? ", " : "",
				ctx->ibv->get_device_name(list[i]));
}

static int vrb_no_ports_error(struct ibc_tp_ctx *ctx, struct ibv_device **list, int n)
{
	char names[256];

	vrb_dev_names(ctx, list, n, names, sizeof(names));
	return vrb_errf(
	    ctx, -ENODEV,
	    "no ACTIVE port on the selected RDMA devices (found: %s): check ibv_devinfo, "
	    "the cable and the subnet manager, or choose --nic; or select another "
	    "transport with --transport tcp or shm",
	    names);
}

/* Open the selected HCAs; keep those with at least one usable port. */
static int vrb_open_selected(struct ibc_tp_ctx *ctx, struct ibv_device **list, int n,
			     struct vrb_nic_sel *sel, int nsel)
{
	int d, s, rc;

	for (d = 0; d < n; d++) {
		const char *name = ctx->ibv->get_device_name(list[d]);
		int h, want_all = !nsel, added = 0;

		for (s = 0; s < nsel; s++)
			if (!strcmp(sel[s].name, name))
				want_all = 1;
		if (!want_all)
			continue;
		if (ctx->nhcas == VRB_MAX_HCAS) {
			ibc_log("verbs: more than %d RDMA devices; using the first %d (select with "
				"--nic)",
				VRB_MAX_HCAS, VRB_MAX_HCAS);
			break;
		}
		rc = vrb_hca_open(ctx, list[d]);
		if (rc)
			return rc;
		h = ctx->nhcas - 1;
		for (s = 0; s < nsel || (!nsel && s == 0); s++) {
			if (nsel && strcmp(sel[s].name, name))
				continue;
			if (nsel)
				sel[s].found = 1;
			rc = vrb_add_ports(ctx, h, nsel ? sel[s].port : 0);
			if (rc < 0)
				return rc;
			added += rc;
		}
		if (!added) { /* nothing usable: give it back now */
			ctx->ibv->close_device(ctx->hcas[h].ctx);
			ctx->nhcas--;
		}
	}
	for (s = 0; s < nsel; s++) {
		char names[256];

		if (sel[s].found)
			continue;
		vrb_dev_names(ctx, list, n, names, sizeof(names));
		return vrb_errf(ctx, -ENODEV,
				"--nic: no RDMA device named '%s'; available: %s (see ibv_devices)",
				sel[s].name, names);
	}
	if (!ctx->nports)
		return vrb_no_ports_error(ctx, list, n);
	for (d = 0; d < ctx->nhcas; d++) {
		struct vrb_hca *h = &ctx->hcas[d];

		h->pd = ctx->ibv->alloc_pd(h->ctx);
		if (!h->pd)
			return vrb_errf(ctx, -ENOMEM, "ibv_alloc_pd(%s) failed: %s", h->name,
					strerror(errno));
		vrb_hca_probe_dmabuf(ctx, h);
	}
	return 0;
}

int vrb_dev_open(struct ibc_tp_ctx *ctx, const char *nic)
{
	struct vrb_nic_sel sel[VRB_MAX_NIC_ITEMS];
	struct ibv_device **list;
	char *store = NULL;
	int n = 0, nsel = 0, rc;

	if (nic && *nic) {
		rc = vrb_parse_nic(ctx, nic, &store, sel, &nsel);
		if (rc)
			goto clean_store;
	}
	errno = 0;
	list = ctx->ibv->get_device_list(&n);
	if (!list || n <= 0) {
		rc = vrb_errf(ctx, -ENODEV,
			      "no RDMA device found (ibv_get_device_list returned 0 devices%s%s, "
			      "library %s); select another transport with --transport tcp or shm",
			      errno ? ": " : "", errno ? strerror(errno) : "", vrb_sym_path());
		goto clean_list;
	}
	rc = vrb_open_selected(ctx, list, n, sel, nsel);
	if (rc)
		vrb_dev_close(ctx);
clean_list:
	if (list)
		ctx->ibv->free_device_list(list);
clean_store:
	free(store);
	return rc;
}

int vrb_dev_close(struct ibc_tp_ctx *ctx)
{
	int first = 0, i;

	for (i = ctx->nhcas - 1; i >= 0; i--) {
		struct vrb_hca *h = &ctx->hcas[i];

		if (h->pd && ctx->ibv->dealloc_pd(h->pd) && !first)
			first = vrb_errf(ctx, -EBUSY, "ibv_dealloc_pd(%s) failed", h->name);
		h->pd = NULL;
		if (h->ctx && ctx->ibv->close_device(h->ctx) && !first)
			first = vrb_errf(ctx, -EIO, "ibv_close_device(%s) failed", h->name);
		h->ctx = NULL;
	}
	ctx->nhcas = 0;
	ctx->nports = 0;
	return first;
}
