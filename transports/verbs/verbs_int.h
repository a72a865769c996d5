/* SPDX-License-Identifier: MIT */
/*
 * verbs_int.h - internals of the verbs transport, shared by its files and by the gdr transport
 * (gdr = verbs with GPU memory, it reuses these functions and adds flush()).
 *
 * Files, by concern:
 *   ibv_sym.c    libibverbs loaded at run time
 *   verbs_dev.c  devices and ports: selection (--nic), state, rate, link layer, GID choice
 *   verbs_reg.c  memory registration cache (address ranges, refcounts), dma-buf
 *   verbs_conn.c listen/connect/accept: TCP side channel, RC QPs, QP state transitions
 *   verbs_data.c post_send/post_recv/test: FIFO of advertised buffers, RDMA write with imm
 *   verbs.c      init/fini/props/last_error and the vtable (ibc_tp_verbs_ops)
 *
 * A context (and everything made from it) is used by one thread at a time.
 */
#ifndef IBC_VERBS_INT_H
#define IBC_VERBS_INT_H

#include <stdint.h>

#include "ibc_auth.h"
#include "ibc_common.h"
#include "ibc_sock.h"
#include "ibc_sysfs.h"
#include "ibv_sym.h"
#include "transport.h"

#define VRB_MAX_HCAS	 8		     /* physical devices (one ibv_context + PD each) */
#define VRB_MAX_PORTS	 16		     /* selected ports: the transport's devices */
#define VRB_MAX_QPS	 64		     /* --qps upper bound (the CLI's) */
#define VRB_DEPTH	 32		     /* requests in flight per connection = FIFO slots */
#define VRB_MAX_SLICE	 (1ull << 30)	     /* bytes in one work request */
#define VRB_HANDLE_MAGIC 0x69626376726273ull /* "ibcvrbs" */
#define VRB_WIRE_MAGIC	 0x5642524943424931ull
#define VRB_WIRE_VERSION 1

/* Immediate data: a slice length, or VRB_IMM_ERR | code when the sender refused a message. */
#define VRB_IMM_ERR 0x80000000u
enum { VRB_IMM_ERR_TAG = 1, VRB_IMM_ERR_SIZE = 2 };

/* wr_id = kind << 56 | sequence number */
enum { VRB_WR_DATA = 1, VRB_WR_RECV = 2, VRB_WR_FIFO = 3 };
#define VRB_WR_ID(kind, seq) (((uint64_t)(kind) << 56) | (uint32_t)(seq))
#define VRB_WR_KIND(id)	     ((int)((id) >> 56))
#define VRB_WR_SEQ(id)	     ((uint32_t)(id))

struct vrb_hca {
	char name[64];
	char pci_busid[32];
	char fw_ver[64];   /* sysfs class/infiniband/NAME/fw_ver, "" when absent */
	char board_id[64]; /* sysfs class/infiniband/NAME/board_id, "" when absent */
	uint64_t guid;	   /* host order */
	int dmabuf; /* 1: ibv_reg_dmabuf_mr works (probed with fd -1: EBADF, not EOPNOTSUPP) */
	struct ibv_context *ctx; /* owned */
	struct ibv_pd *pd;	 /* owned */
};

struct vrb_port {
	int hca;	/* index into ctx->hcas */
	int port;	/* 1-based */
	int link_layer; /* IBV_LINK_LAYER_* */
	uint16_t lid;
	enum ibv_mtu mtu; /* active MTU */
	int use_grh;	  /* RoCE, or --gid-index on InfiniBand, or LID 0 */
	int gid_index;
	union ibv_gid gid;
	uint32_t speed_mbps;
	uint32_t max_msg;
};

/* One registration (a cache entry): the same range registered in every HCA's PD. */
struct ibc_tp_mr {
	struct ibc_tp_mr *next; /* borrowed link in ctx->mrs */
	enum ibc_mem_kind kind;
	uintptr_t start, end; /* registered range [start, end) */
	int dmabuf_fd;	      /* borrowed, -1 unless IBC_MEM_DMABUF */
	uint64_t dmabuf_offset;
	int refs;
	struct ibv_mr *mr[VRB_MAX_HCAS]; /* owned, per HCA */
};

struct vrb_stats {
	uint64_t registrations; /* ranges registered (each counts once, not per HCA) */
	uint64_t cache_hits;	/* reg_mr answered from the cache */
	uint64_t deregistrations;
	uint64_t cached; /* entries now in the cache */
};

struct ibc_tp_ctx {
	const struct vrb_ibv_syms *ibv; /* borrowed: process-wide symbol table */
	int rank;
	const char *hostname;		/* borrowed from the config */
	const char *sysfs_root;		/* borrowed from the config; NULL = ibc_sysfs_root() */
	char local_addr[64];		/* IP the listeners bind to */
	const volatile int *abort_flag; /* borrowed from the config, may be NULL */
	struct ibc_auth_key key;	/* the job key (copied from the config); len 0: none */
	int gid_index;			/* --gid-index or -1 */
	int nqps;
	unsigned mem_kinds;
	int nhcas;
	struct vrb_hca hcas[VRB_MAX_HCAS];
	int nports;
	struct vrb_port ports[VRB_MAX_PORTS];
	struct ibc_tp_mr *mrs; /* owned: registration cache */
	struct vrb_stats stats;
	struct vrb_conn *connecting; /* owned: connects in progress (keyed by handle) */
	int nconns;		     /* open connections, for a warning at fini */
	char err[640];
	/* owned by a transport layered on this one (gdr): set after vrb_init and released by
	 * that transport before it calls vrb_fini; the verbs code never touches it */
	void *ext;
};

/* Sender's FIFO slot, written by the receiver with RDMA WRITE: one cache line. */
struct vrb_fifo_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t rkey[VRB_MAX_HCAS]; /* the buffer's rkey on each of the receiver's HCAs */
	uint32_t tag;
	uint32_t check; /* vrb_fifo_check(): the entry is whole */
	uint64_t idx;	/* sequence number + 1 */
};

/* Connection data exchanged over the TCP side channel (same byte order both ends: the magic
 * says so). */
struct vrb_wire_qp {
	uint32_t qpn, psn;
	uint16_t lid;
	uint8_t port, mtu, link_layer, use_grh, gid_index, hca; /* hca: index of its HCA */
	uint8_t gid[16];
	char dev[32];
};

struct vrb_wire {
	uint64_t magic;
	uint32_t version, nqps, depth, fifo_rkey;
	uint64_t fifo_addr; /* sender only */
	char host[64];
	struct vrb_wire_qp qp[VRB_MAX_QPS];
};

struct vrb_qp {
	int port; /* index into ctx->ports */
	uint32_t psn;
	struct ibv_cq *cq; /* owned */
	struct ibv_qp *qp; /* owned */
	struct vrb_wire_qp remote;
};

struct ibc_tp_req {
	struct vrb_conn *conn; /* borrowed */
	int used;
	uint32_t seq, tag;
	int events, nevents; /* completions seen / needed (one per QP) */
	size_t size, max;    /* bytes received; receive buffer size */
	int rc;		     /* 0 or -EPROTO / -EMSGSIZE once known */
	char err[256];	     /* why rc */
};

/* What listen() writes into the opaque handle: where the receiver's side channel listens. */
struct vrb_handle {
	uint64_t magic;
	uint32_t nqps;
	uint16_t family;
	uint16_t port; /* network order */
	uint8_t addr[16];
	char host[64];
};

/* The side channel's challenge-response context: a proof for the bootstrap or tcp is none here. */
#define VRB_AUTH_CONTEXT "ibcoll-verbs-1"

enum vrb_stage {
	VRB_ST_TCP,  /* connect or accept the side channel */
	VRB_ST_AUTH, /* both sides prove the job key (common/ibc_auth.h, VRB_AUTH_CONTEXT) */
	VRB_ST_SEND_INFO,
	VRB_ST_RECV_INFO,
	VRB_ST_READY, /* sender writes, receiver reads the ready byte */
	VRB_ST_UP,
};

struct vrb_conn {
	struct ibc_tp_ctx *ctx; /* borrowed */
	struct vrb_conn *next;	/* borrowed link in ctx->connecting */
	int is_send;
	int dev;
	int nqps;
	int fd; /* owned: TCP side channel, closed once up */
	enum vrb_stage stage;
	struct ibc_auth auth;	      /* the side channel's challenge-response */
	uint64_t auth_deadline;	      /* receiver: a peer not proved by then is dropped */
	char peer[IBC_SOCK_ADDR_LEN]; /* the side channel's other end, for messages */
	size_t io_off;
	unsigned char handle[IBC_TP_HANDLE_BYTES]; /* connect: the key in ctx->connecting */
	struct vrb_wire local, remote;
	struct vrb_qp qps[VRB_MAX_QPS];
	int failed; /* sticky: first fatal error (-errno), text in ctx->err */
	char failure[640];
	uint32_t seq;	 /* next request */
	int inline_fifo; /* FIFO entries fit the QP's inline data */
	/* sender: the FIFO the receiver writes into */
	struct vrb_fifo_entry *fifo; /* owned, VRB_DEPTH entries, page aligned */
	struct ibv_mr *fifo_mr;	     /* owned, on QP 0's HCA */
	/* receiver: the source of FIFO writes and where they go */
	struct vrb_fifo_entry *fifo_src; /* owned, VRB_DEPTH entries */
	struct ibv_mr *fifo_src_mr;	 /* owned, on QP 0's HCA */
	uint64_t rem_fifo_addr;
	uint32_t rem_fifo_rkey;
	struct ibc_tp_req reqs[VRB_DEPTH];
};

struct ibc_tp_send {
	struct vrb_conn c;
};

struct ibc_tp_recv {
	struct vrb_conn c;
};

struct ibc_tp_listener {
	struct ibc_tp_ctx *ctx; /* borrowed */
	int dev;
	int fd;			     /* owned: listening socket */
	struct ibc_tp_recv *pending; /* owned until accept() hands it out */
};

/* ---- verbs.c ---- */
int vrb_errf(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vrb_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **ctx);
int vrb_fini(struct ibc_tp_ctx *ctx);
int vrb_devices(struct ibc_tp_ctx *ctx, int *ndev);
int vrb_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props);
const char *vrb_last_error(struct ibc_tp_ctx *ctx);
int vrb_port_counters(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_counters *c);
/* registration statistics, for tests and IBCOLL_VERBS_STATS=1 */
void vrb_get_stats(struct ibc_tp_ctx *ctx, struct vrb_stats *st);

/* has another rank failed (cfg->abort_flag)? */
static inline int vrb_aborted(const struct ibc_tp_ctx *ctx)
{
	return ctx->abort_flag && *ctx->abort_flag;
}

/* ---- verbs_dev.c ---- */
int vrb_dev_open(struct ibc_tp_ctx *ctx, const char *nic);
int vrb_dev_close(struct ibc_tp_ctx *ctx);
const char *vrb_port_name(const struct ibc_tp_ctx *ctx, int port, char *buf, size_t len);

/* ---- verbs_reg.c ---- */
int vrb_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
	       struct ibc_tp_mr **mr);
int vrb_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr);
int vrb_reg_cache_fini(struct ibc_tp_ctx *ctx);
/* does [addr, addr + len) lie inside mr? */
int vrb_mr_covers(const struct ibc_tp_mr *mr, const void *addr, size_t len);

/* ---- verbs_conn.c ---- */
/* cfg->local_addr, else the first up, non-loopback IPv4 address, else 127.0.0.1 */
int vrb_pick_local_addr(const char *hint, char *out, size_t len);
int vrb_listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **l);
int vrb_connect(struct ibc_tp_ctx *ctx, int dev, const void *handle, struct ibc_tp_send **s);
int vrb_accept(struct ibc_tp_listener *l, struct ibc_tp_recv **r);
int vrb_close_send(struct ibc_tp_send *s);
int vrb_close_recv(struct ibc_tp_recv *r);
int vrb_close_listen(struct ibc_tp_listener *l);
int vrb_conn_close_all_connecting(struct ibc_tp_ctx *ctx);

/* ---- verbs_data.c ---- */
int vrb_post_send(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
		  struct ibc_tp_mr *mr, struct ibc_tp_req **req);
int vrb_post_recv(struct ibc_tp_recv *r, void *data, size_t size, uint32_t tag,
		  struct ibc_tp_mr *mr, struct ibc_tp_req **req);
int vrb_test(struct ibc_tp_req *req, int *done, size_t *size);
/* poll the connection's CQs; 0 or the connection's failure */
int vrb_progress(struct vrb_conn *c);
uint32_t vrb_fifo_check(const struct vrb_fifo_entry *e);

#endif
