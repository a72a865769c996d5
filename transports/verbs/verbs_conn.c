/* SPDX-License-Identifier: MIT */
/*
 * verbs_conn.c - connection setup, as NCCL's net_ib does it.
 *
 * listen() opens a TCP socket on the context's address (cfg->local_addr, else the first
 * non-loopback IPv4 address, else 127.0.0.1) and writes magic + address + port + QP count into
 * the handle. connect() (the sender) opens its QPs and the FIFO the receiver will write into,
 * connects to that socket, and both sides prove the job key (cfg->job_key) with
 * common/ibc_auth.h's challenge-response; the receiver drops a peer that does not prove it
 * within 2 s (logged; the job goes on) and accepts the next. The sender then sends its QP data;
 * accept() (the receiver) takes it, opens its QPs, moves them to RTR/RTS and answers with its own;
 * the sender moves its QPs to RTR/RTS and sends a ready byte, after which the receiver may write
 * FIFO entries. Every step is non-blocking: connect/accept return -EAGAIN until the connection is
 * up.
 *
 * QP i of a connection on device (port) d uses port (d + i) % nports, so --qps spreads a
 * connection over the selected ports and HCAs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ibc_sock.h"
#include "verbs_int.h"

_Static_assert(sizeof(struct vrb_handle) <= IBC_TP_HANDLE_BYTES, "handle too large");
_Static_assert(sizeof(struct vrb_fifo_entry) == 64, "FIFO entry is one cache line");

static int vrb_env_int(const char *name, int def, int min, int max)
{
	const char *s = getenv(name);
	long v;

	if (!s || ibc_parse_int(s, min, max, &v))
		return def;
	return (int)v;
}

/* ---- the TCP side channel ---- */

/* Move len bytes at buf[*off..] without blocking: 0 when all moved (and *off back at 0 for the
 * next stage), -EAGAIN, or -errno. */
static int vrb_sock_io(int fd, void *buf, size_t len, size_t *off, int send_dir)
{
	int rc =
	    send_dir ? ibc_sock_send_nb(fd, buf, len, off) : ibc_sock_recv_nb(fd, buf, len, off);

	if (rc == 0)
		*off = 0;
	return rc;
}

static int vrb_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	if (ibc_sock_parse_ip(s, ss))
		return -EINVAL;
	*len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	return 0;
}

int vrb_pick_local_addr(const char *hint, char *out, size_t len)
{
	struct sockaddr_storage ss;
	struct ifaddrs *ifs, *i;
	socklen_t sl;

	if (hint && *hint && strcmp(hint, "0.0.0.0") && !vrb_addr_parse(hint, &ss, &sl)) {
		snprintf(out, len, "%s", hint);
		return 0;
	}
	snprintf(out, len, "127.0.0.1");
	if (getifaddrs(&ifs))
		return 0;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, len);
		break;
	}
	freeifaddrs(ifs);
	return 0;
}

/* The listener's address a handle carries, as a socket address. */
static socklen_t vrb_handle_sockaddr(const struct vrb_handle *h, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = h->family;
	if (h->family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_port = h->port;
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, h->addr, 4);
		return sizeof(struct sockaddr_in);
	}
	((struct sockaddr_in6 *)ss)->sin6_port = h->port;
	memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, h->addr, 16);
	return sizeof(struct sockaddr_in6);
}

static void vrb_handle_addr(const struct vrb_handle *h, char *buf, size_t len)
{
	struct sockaddr_storage ss;

	vrb_handle_sockaddr(h, &ss);
	ibc_sock_fmt_addr((struct sockaddr *)&ss, buf, len);
}

/* ---- queue pairs ---- */

static uint32_t vrb_psn(struct vrb_conn *c, int i)
{
	uint64_t x = ibc_now_ns() ^ ((uint64_t)getpid() << 20) ^ ((uint64_t)(uintptr_t)c >> 4) ^ i;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 29;
	return (uint32_t)x & 0xffffff;
}

static int vrb_qp_create(struct vrb_conn *c, int i)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	struct vrb_qp *q = &c->qps[i];
	struct vrb_port *p;
	struct vrb_hca *h;
	struct ibv_qp_init_attr ia;
	struct ibv_qp_attr attr;
	struct vrb_wire_qp *w = &c->local.qp[i];

	q->port = (c->dev + i) % ctx->nports;
	p = &ctx->ports[q->port];
	h = &ctx->hcas[p->hca];
	q->cq = ctx->ibv->create_cq(h->ctx, 4 * VRB_DEPTH, NULL, NULL, 0);
	if (!q->cq)
		return vrb_errf(ctx, -ENOMEM, "ibv_create_cq on %s port %d failed: %s", h->name,
				p->port, strerror(errno));
	memset(&ia, 0, sizeof(ia));
	ia.send_cq = q->cq;
	ia.recv_cq = q->cq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = 2 * VRB_DEPTH;
	ia.cap.max_recv_wr = VRB_DEPTH;
	ia.cap.max_send_sge = 1;
	ia.cap.max_recv_sge = 1;
	ia.cap.max_inline_data = sizeof(struct vrb_fifo_entry);
	q->qp = ctx->ibv->create_qp(h->pd, &ia);
	if (!q->qp) { /* some devices have no inline data: FIFO entries then go by lkey */
		ia.cap.max_inline_data = 0;
		q->qp = ctx->ibv->create_qp(h->pd, &ia);
	}
	if (!q->qp)
		return vrb_errf(ctx, -ENOMEM, "ibv_create_qp(RC) on %s port %d failed: %s", h->name,
				p->port, strerror(errno));
	if (i == 0)
		c->inline_fifo = ia.cap.max_inline_data >= sizeof(struct vrb_fifo_entry) &&
				 !getenv("IBCOLL_VERBS_NO_INLINE");
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_INIT;
	attr.pkey_index = vrb_env_int("IBCOLL_IB_PKEY_INDEX", 0, 0, 65535);
	attr.port_num = p->port;
	attr.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	if (ctx->ibv->modify_qp(
		q->qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		return vrb_errf(ctx, -EIO, "QP 0x%x on %s port %d: INIT failed: %s", q->qp->qp_num,
				h->name, p->port, strerror(errno));
	q->psn = vrb_psn(c, i);
	w->qpn = q->qp->qp_num;
	w->psn = q->psn;
	w->lid = p->lid;
	w->port = p->port;
	w->mtu = p->mtu;
	w->link_layer = p->link_layer;
	w->use_grh = p->use_grh;
	w->gid_index = p->gid_index;
	w->hca = p->hca;
	memcpy(w->gid, p->gid.raw, sizeof(w->gid));
	snprintf(w->dev, sizeof(w->dev), "%s", h->name);
	return 0;
}

static int vrb_qp_rtr_rts(struct vrb_conn *c, int i)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	struct vrb_qp *q = &c->qps[i];
	struct vrb_port *p = &ctx->ports[q->port];
	const char *dev = ctx->hcas[p->hca].name;
	struct vrb_wire_qp *r = &c->remote.qp[i];
	struct ibv_qp_attr a;

	q->remote = *r;
	if ((r->link_layer == IBV_LINK_LAYER_ETHERNET) !=
	    (p->link_layer == IBV_LINK_LAYER_ETHERNET))
		return vrb_errf(
		    ctx, -EPROTO, "QP 0x%x: %s port %d is %s but the peer's %.32s port %u is %s",
		    q->qp->qp_num, dev, p->port,
		    p->link_layer == IBV_LINK_LAYER_ETHERNET ? "RoCE" : "InfiniBand", r->dev,
		    r->port, r->link_layer == IBV_LINK_LAYER_ETHERNET ? "RoCE" : "InfiniBand");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBC_MIN(p->mtu, (enum ibv_mtu)r->mtu);
	a.dest_qp_num = r->qpn;
	a.rq_psn = r->psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.dlid = r->lid;
	a.ah_attr.sl = vrb_env_int("IBCOLL_IB_SL", 0, 0, 15);
	a.ah_attr.port_num = p->port;
	if (p->use_grh || r->use_grh) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, r->gid, sizeof(r->gid));
		a.ah_attr.grh.sgid_index = p->gid_index;
		a.ah_attr.grh.hop_limit = 255;
		a.ah_attr.grh.traffic_class = vrb_env_int("IBCOLL_IB_TC", 0, 0, 255);
	}
	if (ctx->ibv->modify_qp(q->qp, &a,
				IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				    IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				    IBV_QP_MIN_RNR_TIMER))
		return vrb_errf(
		    ctx, -EIO,
		    "QP 0x%x on %s port %d: RTR to peer QP 0x%x (%.32s port %u, LID %u, "
		    "GID index %d) failed: %s",
		    q->qp->qp_num, dev, p->port, r->qpn, r->dev, r->port, r->lid, p->gid_index,
		    strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = vrb_env_int("IBCOLL_IB_TIMEOUT", 14, 1, 31);
	a.retry_cnt = vrb_env_int("IBCOLL_IB_RETRY_CNT", 7, 0, 7);
	a.rnr_retry = 7;
	a.sq_psn = q->psn;
	a.max_rd_atomic = 1;
	if (ctx->ibv->modify_qp(q->qp, &a,
				IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				    IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		return vrb_errf(ctx, -EIO, "QP 0x%x on %s port %d: RTS failed: %s", q->qp->qp_num,
				dev, p->port, strerror(errno));
	return 0;
}

/* FIFO memory: the sender's (remote-written) or the receiver's source of FIFO writes. */
static int vrb_fifo_alloc(struct vrb_conn *c, struct vrb_fifo_entry **mem, struct ibv_mr **mr,
			  int access)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	struct vrb_hca *h = &ctx->hcas[ctx->ports[c->qps[0].port].hca];
	size_t len = VRB_DEPTH * sizeof(struct vrb_fifo_entry);
	void *p;

	if (posix_memalign(&p, 4096, len))
		return vrb_errf(ctx, -ENOMEM, "FIFO: out of memory");
	memset(p, 0, len);
	*mem = p;
	*mr = ctx->ibv->reg_mr(h->pd, p, len, access);
	if (!*mr)
		return vrb_errf(ctx, errno ? -errno : -ENOMEM, "FIFO: ibv_reg_mr on %s failed: %s",
				h->name, strerror(errno));
	return 0;
}

/* Local resources of a connection: FIFO, then CQ + QP per QP index. */
static int vrb_conn_resources(struct vrb_conn *c)
{
	int i, rc;

	for (i = 0; i < c->nqps; i++) /* ports first: the FIFO goes on QP 0's HCA */
		c->qps[i].port = (c->dev + i) % c->ctx->nports;
	if (c->is_send)
		rc = vrb_fifo_alloc(c, &c->fifo, &c->fifo_mr,
				    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	else
		rc = vrb_fifo_alloc(c, &c->fifo_src, &c->fifo_src_mr, IBV_ACCESS_LOCAL_WRITE);
	if (rc)
		return rc;
	for (i = 0; i < c->nqps; i++) {
		rc = vrb_qp_create(c, i);
		if (rc)
			return rc;
	}
	c->local.magic = VRB_WIRE_MAGIC;
	c->local.version = VRB_WIRE_VERSION;
	c->local.nqps = c->nqps;
	c->local.depth = VRB_DEPTH;
	if (c->is_send) {
		c->local.fifo_addr = (uintptr_t)c->fifo;
		c->local.fifo_rkey = c->fifo_mr->rkey;
	}
	snprintf(c->local.host, sizeof(c->local.host), "%s",
		 c->ctx->hostname ? c->ctx->hostname : ibc_hostname());
	return 0;
}

static int vrb_wire_check(struct vrb_conn *c)
{
	struct vrb_wire *r = &c->remote;

	r->host[sizeof(r->host) - 1] = '\0';
	if (r->magic != VRB_WIRE_MAGIC || r->version != VRB_WIRE_VERSION)
		return vrb_errf(
		    c->ctx, -EPROTO,
		    "connection setup: the peer is not an ibcoll verbs endpoint of this "
		    "version (magic %#llx version %u)",
		    (unsigned long long)r->magic, r->version);
	if (r->nqps != (uint32_t)c->nqps || r->depth != VRB_DEPTH)
		return vrb_errf(
		    c->ctx, -EPROTO,
		    "connection setup: peer %s uses %u QPs and depth %u, we use %d and %d", r->host,
		    r->nqps, r->depth, c->nqps, VRB_DEPTH);
	return 0;
}

/* Release in reverse order of acquisition; keep going after an error, return the first. */
static int vrb_conn_destroy(struct vrb_conn *c)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	int first = 0, i;

	for (i = VRB_MAX_QPS - 1; i >= 0; i--) {
		struct vrb_qp *q = &c->qps[i];

		if (q->qp && ctx->ibv->destroy_qp(q->qp) && !first)
			first = vrb_errf(ctx, -EIO, "ibv_destroy_qp(0x%x) failed: %s",
					 q->qp->qp_num, strerror(errno));
		q->qp = NULL;
		if (q->cq && ctx->ibv->destroy_cq(q->cq) && !first)
			first = vrb_errf(ctx, -EBUSY, "ibv_destroy_cq failed: %s", strerror(errno));
		q->cq = NULL;
	}
	if (c->fifo_src_mr && ctx->ibv->dereg_mr(c->fifo_src_mr) && !first)
		first = vrb_errf(ctx, -EIO, "FIFO: ibv_dereg_mr failed: %s", strerror(errno));
	free(c->fifo_src);
	if (c->fifo_mr && ctx->ibv->dereg_mr(c->fifo_mr) && !first)
		first = vrb_errf(ctx, -EIO, "FIFO: ibv_dereg_mr failed: %s", strerror(errno));
	free(c->fifo);
	c->fifo_src_mr = c->fifo_mr = NULL;
	c->fifo_src = c->fifo = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	return first;
}

static int vrb_setup_io_error(struct vrb_conn *c, int rc, const char *what)
{
	if (rc == -EAGAIN)
		return rc;
	return vrb_errf(c->ctx, rc == -ECONNRESET ? -ECONNRESET : rc,
			"connection setup with %s: %s: %s",
			c->remote.host[0] ? c->remote.host : "the peer", what,
			rc == -ECONNRESET ? "the peer closed the connection" : strerror(-rc));
}

/* ---- listen / accept (receiver) ---- */

int vrb_listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **out)
{
	struct vrb_handle *h = handle;
	struct sockaddr_storage ss;
	struct ibc_tp_listener *l;
	socklen_t sl;
	int rc;

	if (dev < 0 || dev >= ctx->nports)
		return vrb_errf(ctx, -EINVAL, "listen: no device %d (0..%d)", dev, ctx->nports - 1);
	if (vrb_addr_parse(ctx->local_addr, &ss, &sl))
		return vrb_errf(ctx, -EINVAL, "listen: bad local address '%s'", ctx->local_addr);
	l = calloc(1, sizeof(*l));
	if (!l)
		return vrb_errf(ctx, -ENOMEM, "listen: out of memory");
	l->ctx = ctx;
	l->dev = dev;
	rc = ibc_sock_listen((struct sockaddr *)&ss, sl, IBC_SOCK_NONBLOCK | IBC_SOCK_REUSEADDR, 16,
			     &l->fd);
	if (rc) {
		rc = vrb_errf(ctx, rc, "listen on %s: %s", ctx->local_addr, strerror(-rc));
		goto clean_l;
	}
	rc = ibc_sock_local(l->fd, &ss, &sl);
	if (rc) {
		rc = vrb_errf(ctx, rc, "listen on %s: %s", ctx->local_addr, strerror(-rc));
		goto clean_fd;
	}
	memset(handle, 0, IBC_TP_HANDLE_BYTES);
	h->magic = VRB_HANDLE_MAGIC;
	h->nqps = ctx->nqps;
	h->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		h->port = ((struct sockaddr_in *)&ss)->sin_port;
		memcpy(h->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else {
		h->port = ((struct sockaddr_in6 *)&ss)->sin6_port;
		memcpy(h->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
	snprintf(h->host, sizeof(h->host), "%s", ctx->hostname ? ctx->hostname : ibc_hostname());
	*out = l;
	return 0;

clean_fd:
	close(l->fd);
clean_l:
	free(l);
	return rc;
}

/* Receiver: a side channel that did not prove the job key is closed and logged, and the
 * listener waits for the next one (-EAGAIN): a stranger neither joins nor aborts the job. */
static int vrb_accept_drop(struct vrb_conn *c, const char *why)
{
	ibc_log("verbs: dropped a connection from %s: %s", c->peer, why);
	close(c->fd);
	c->fd = -1;
	c->io_off = 0;
	c->stage = VRB_ST_TCP;
	return -EAGAIN;
}

/* Receiver: accept a side channel and start the handshake; 0, -EAGAIN or an error. */
static int vrb_accept_tcp(struct ibc_tp_listener *l, struct vrb_conn *c)
{
	int fd, rc = ibc_sock_accept(l->fd, IBC_SOCK_NONBLOCK | IBC_SOCK_NODELAY, &fd);

	if (rc == -EAGAIN)
		return rc;
	if (rc)
		return vrb_errf(c->ctx, rc, "accept: %s", strerror(-rc));
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "a peer");
	ibc_sock_fd_names(fd, NULL, c->peer);
	ibc_auth_start(&c->auth, true, c->ctx->key.bytes, c->ctx->key.len, VRB_AUTH_CONTEXT);
	c->auth_deadline = ibc_sock_deadline(IBC_AUTH_DEADLINE_MS);
	c->stage = VRB_ST_AUTH;
	return 0;
}

/* Receiver: step the handshake; 0 when the peer proved the key, else -EAGAIN (waiting, or a
 * stranger dropped). */
static int vrb_accept_auth(struct vrb_conn *c)
{
	int rc = ibc_auth_step(&c->auth, c->fd);

	if (rc == -EAGAIN && !ibc_sock_remaining_ms(c->auth_deadline))
		return vrb_accept_drop(c, "no handshake within 2 s (not an ibcoll rank?)");
	if (rc == -EAGAIN)
		return rc;
	if (rc)
		return vrb_accept_drop(c, ibc_auth_strerror(&c->auth, rc));
	c->stage = VRB_ST_RECV_INFO;
	return 0;
}

static int vrb_accept_step(struct ibc_tp_listener *l, struct vrb_conn *c)
{
	int rc, i;
	char ready;

	switch (c->stage) {
	case VRB_ST_TCP:
		rc = vrb_accept_tcp(l, c);
		if (rc)
			return rc;
		/* fall through */
	case VRB_ST_AUTH:
		rc = vrb_accept_auth(c);
		if (rc)
			return rc;
		/* fall through */
	case VRB_ST_RECV_INFO:
		rc = vrb_sock_io(c->fd, &c->remote, sizeof(c->remote), &c->io_off, 0);
		if (rc)
			return vrb_setup_io_error(c, rc, "receiving the sender's QP data");
		rc = vrb_wire_check(c);
		if (!rc)
			rc = vrb_conn_resources(c);
		for (i = 0; !rc && i < c->nqps; i++)
			rc = vrb_qp_rtr_rts(c, i);
		if (rc)
			return rc;
		c->rem_fifo_addr = c->remote.fifo_addr;
		c->rem_fifo_rkey = c->remote.fifo_rkey;
		c->stage = VRB_ST_SEND_INFO;
		/* fall through */
	case VRB_ST_SEND_INFO:
		rc = vrb_sock_io(c->fd, &c->local, sizeof(c->local), &c->io_off, 1);
		if (rc)
			return vrb_setup_io_error(c, rc, "sending our QP data");
		c->stage = VRB_ST_READY;
		/* fall through */
	case VRB_ST_READY:
		rc = vrb_sock_io(c->fd, &ready, 1, &c->io_off, 0);
		if (rc)
			return vrb_setup_io_error(c, rc, "waiting for the sender's ready");
		c->stage = VRB_ST_UP;
		close(c->fd);
		c->fd = -1;
		/* fall through */
	case VRB_ST_UP:
		return 0;
	}
	return -EINVAL;
}

int vrb_accept(struct ibc_tp_listener *l, struct ibc_tp_recv **out)
{
	struct ibc_tp_ctx *ctx = l->ctx;
	struct ibc_tp_recv *r = l->pending;
	int rc;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return vrb_errf(ctx, -ENOMEM, "accept: out of memory");
		r->c.ctx = ctx;
		r->c.dev = l->dev;
		r->c.nqps = ctx->nqps;
		r->c.fd = -1;
		r->c.stage = VRB_ST_TCP;
		l->pending = r;
	}
	rc = vrb_accept_step(l, &r->c);
	if (rc == -EAGAIN && !vrb_aborted(ctx))
		return rc;
	if (rc == -EAGAIN)
		rc = vrb_errf(ctx, -ECANCELED, "accept cancelled: another rank failed");
	l->pending = NULL;
	if (rc) {
		vrb_conn_destroy(&r->c);
		free(r);
		return rc;
	}
	ctx->nconns++;
	IBC_DBG("verbs: accepted %d QP(s) from %s", r->c.nqps, r->c.remote.host);
	*out = r;
	return 0;
}

int vrb_close_listen(struct ibc_tp_listener *l)
{
	int first = 0;

	if (!l)
		return 0;
	if (l->pending) {
		first = vrb_conn_destroy(&l->pending->c);
		free(l->pending);
	}
	if (l->fd >= 0 && close(l->fd) && !first)
		first = -errno;
	free(l);
	return first;
}

/* ---- connect (sender) ---- */

static int vrb_connect_start(struct ibc_tp_ctx *ctx, int dev, const void *handle,
			     struct ibc_tp_send **out)
{
	const struct vrb_handle *h = handle;
	struct sockaddr_storage ss;
	struct ibc_tp_send *s;
	char where[IBC_SOCK_ADDR_LEN];
	socklen_t sl;
	int rc;

	if (h->magic != VRB_HANDLE_MAGIC)
		return vrb_errf(ctx, -EINVAL, "connect: not a verbs handle (magic %#llx)",
				(unsigned long long)h->magic);
	if (h->nqps < 1 || h->nqps > VRB_MAX_QPS)
		return vrb_errf(ctx, -EINVAL, "connect: handle asks for %u QPs (1..%d)", h->nqps,
				VRB_MAX_QPS);
	s = calloc(1, sizeof(*s));
	if (!s)
		return vrb_errf(ctx, -ENOMEM, "connect: out of memory");
	s->c.ctx = ctx;
	s->c.is_send = 1;
	s->c.dev = dev;
	s->c.nqps = h->nqps;
	s->c.fd = -1;
	s->c.stage = VRB_ST_TCP;
	memcpy(s->c.handle, handle, IBC_TP_HANDLE_BYTES);
	snprintf(s->c.remote.host, sizeof(s->c.remote.host), "%.63s", h->host);
	rc = vrb_conn_resources(&s->c);
	if (rc)
		goto clean_conn;
	sl = vrb_handle_sockaddr(h, &ss);
	rc = ibc_sock_open(h->family, IBC_SOCK_NONBLOCK | IBC_SOCK_NODELAY, 0, &s->c.fd);
	if (rc) {
		rc = vrb_errf(ctx, rc, "connect: socket: %s", strerror(-rc));
		goto clean_conn;
	}
	rc = ibc_sock_connect(s->c.fd, (struct sockaddr *)&ss, sl);
	if (rc && rc != -EINPROGRESS) {
		vrb_handle_addr(h, where, sizeof(where));
		rc = vrb_errf(ctx, rc, "connect to %s (%s): %s", where, h->host, strerror(-rc));
		goto clean_conn;
	}
	rc = 0;
	*out = s;
	return 0;

clean_conn:
	vrb_conn_destroy(&s->c);
	free(s);
	return rc;
}

static int vrb_connect_step(struct vrb_conn *c)
{
	const struct vrb_handle *h = (const struct vrb_handle *)c->handle;
	int rc, i;
	char where[IBC_SOCK_ADDR_LEN], ready = 1;

	switch (c->stage) {
	case VRB_ST_TCP:
		rc = ibc_sock_connect_done(c->fd);
		if (rc == -EAGAIN)
			return rc;
		if (rc) {
			vrb_handle_addr(h, where, sizeof(where));
			return vrb_errf(c->ctx, rc, "connect to %s (%s): %s", where, h->host,
					strerror(-rc));
		}
		ibc_auth_start(&c->auth, false, c->ctx->key.bytes, c->ctx->key.len,
			       VRB_AUTH_CONTEXT);
		c->stage = VRB_ST_AUTH;
		/* fall through */
	case VRB_ST_AUTH:
		rc = ibc_auth_step(&c->auth, c->fd);
		if (rc == -EAGAIN)
			return rc;
		if (rc) {
			vrb_handle_addr(h, where, sizeof(where));
			return vrb_errf(c->ctx, rc == -ECONNRESET ? -ECONNRESET : -EACCES,
					"connection setup with %s (%s): handshake failed: %s",
					where, h->host, ibc_auth_strerror(&c->auth, rc));
		}
		c->stage = VRB_ST_SEND_INFO;
		/* fall through */
	case VRB_ST_SEND_INFO:
		rc = vrb_sock_io(c->fd, &c->local, sizeof(c->local), &c->io_off, 1);
		if (rc)
			return vrb_setup_io_error(c, rc, "sending our QP data");
		c->stage = VRB_ST_RECV_INFO;
		/* fall through */
	case VRB_ST_RECV_INFO:
		rc = vrb_sock_io(c->fd, &c->remote, sizeof(c->remote), &c->io_off, 0);
		if (rc)
			return vrb_setup_io_error(c, rc, "receiving the receiver's QP data");
		rc = vrb_wire_check(c);
		for (i = 0; !rc && i < c->nqps; i++)
			rc = vrb_qp_rtr_rts(c, i);
		if (rc)
			return rc;
		c->stage = VRB_ST_READY;
		/* fall through */
	case VRB_ST_READY:
		rc = vrb_sock_io(c->fd, &ready, 1, &c->io_off, 1);
		if (rc)
			return vrb_setup_io_error(c, rc, "sending ready");
		c->stage = VRB_ST_UP;
		close(c->fd);
		c->fd = -1;
		/* fall through */
	case VRB_ST_UP:
		return 0;
	}
	return -EINVAL;
}

int vrb_connect(struct ibc_tp_ctx *ctx, int dev, const void *handle, struct ibc_tp_send **out)
{
	struct vrb_conn **pp, *c = NULL;
	struct ibc_tp_send *s = NULL;
	int rc;

	if (dev < 0 || dev >= ctx->nports)
		return vrb_errf(ctx, -EINVAL, "connect: no device %d (0..%d)", dev,
				ctx->nports - 1);
	/* a connect in progress is found again by its handle: the caller keeps nothing */
	for (pp = &ctx->connecting; *pp; pp = &(*pp)->next) {
		if ((*pp)->dev == dev && !memcmp((*pp)->handle, handle, IBC_TP_HANDLE_BYTES)) {
			c = *pp;
			break;
		}
	}
	if (!c) {
		rc = vrb_connect_start(ctx, dev, handle, &s);
		if (rc)
			return rc;
		c = &s->c;
		c->next = ctx->connecting;
		ctx->connecting = c;
		pp = &ctx->connecting;
	}
	rc = vrb_connect_step(c);
	if (rc == -EAGAIN && !vrb_aborted(ctx))
		return rc;
	if (rc == -EAGAIN)
		rc = vrb_errf(ctx, -ECANCELED, "connect to %s cancelled: another rank failed",
			      c->remote.host);
	*pp = c->next; /* unlink */
	c->next = NULL;
	s = (struct ibc_tp_send *)c;
	if (rc) {
		vrb_conn_destroy(c);
		free(s);
		return rc;
	}
	ctx->nconns++;
	IBC_DBG("verbs: connected %d QP(s) to %s", c->nqps, c->remote.host);
	*out = s;
	return 0;
}

/* Both directions wrap a vrb_conn as their first member: release it and the wrapper. */
static int vrb_close_conn(struct vrb_conn *c, void *wrapper)
{
	struct ibc_tp_ctx *ctx = c->ctx;
	int rc = vrb_conn_destroy(c);

	ctx->nconns--;
	free(wrapper);
	return rc;
}

int vrb_close_send(struct ibc_tp_send *s)
{
	return s ? vrb_close_conn(&s->c, s) : 0;
}

int vrb_close_recv(struct ibc_tp_recv *r)
{
	return r ? vrb_close_conn(&r->c, r) : 0;
}

int vrb_conn_close_all_connecting(struct ibc_tp_ctx *ctx)
{
	int first = 0, rc;

	while (ctx->connecting) {
		struct vrb_conn *c = ctx->connecting;

		ctx->connecting = c->next;
		rc = vrb_conn_destroy(c);
		if (rc && !first)
			first = rc;
		free((struct ibc_tp_send *)c);
	}
	return first;
}
