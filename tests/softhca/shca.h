/* SPDX-License-Identifier: MIT */
/*
 * shca.h - internals of the software HCA (libibcoll-softhca.so), shared by its source files.
 *
 * The library exports the libibverbs entry points (real names, real <infiniband/verbs.h>
 * signatures) and behaves like an RC HCA in user space. Every ibv_open_device() creates one
 * HCA instance (struct shca_ctx): its own LID/GID, a UNIX-domain listening socket at
 * ${IBCOLL_SOFTHCA_DIR:-/tmp/ibcoll-softhca-$UID}/lid-XXXX.sock and one progress thread.
 * An RC QP connects to its peer's socket when it moves to RTR; the progress thread of each
 * process transmits requests (requester role) and executes the peer's requests against its
 * MRs (responder role). See docs/softhca.md.
 *
 * Locking: ctx->lock guards the QP table, the MR table and the sync counters; qp->lock guards
 * one QP's state and rings; cq->lock one CQ's ring. Order: ctx->lock, then qp->lock, then
 * cq->lock; never the reverse. Connections (struct shca_conn) belong to the progress thread
 * alone.
 *
 * Names: shca_ for file-local (static) functions, shca__ for functions shared between files.
 * Nothing is exported but the ibv_* entry points (SHCA_EXPORT; -fvisibility=hidden).
 */
#ifndef SHCA_H
#define SHCA_H

#include <infiniband/verbs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#define SHCA_EXPORT	   __attribute__((visibility("default")))
#define SHCA_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define SHCA_MAX_DEVICES   16
#define SHCA_MAX_QP_WR	   32768
#define SHCA_MAX_SGE	   30
#define SHCA_MAX_INLINE	   512
#define SHCA_MAX_CQE	   (4 * 1024 * 1024 - 1)
#define SHCA_MAX_MSG	   (1u << 31)
#define SHCA_MAX_RD_ATOMIC 16
#define SHCA_QPN_BASE	   0x100
#define SHCA_MAX_QPS	   65536
#define SHCA_MAX_MRS	   (1 << 20)
#define SHCA_GID_TBL_LEN   8
#define SHCA_RETRY_CAP_NS  1000000000ull /* retry-exceeded wait is capped at 1 s */
#define SHCA_RNR_CAP_NS	   2000000000ull /* total RNR wait (rnr_retry < 7) capped at 2 s */

/* ---- configuration (environment, read once per process) ---- */
struct shca_config {
	int ndev;			/* IBCOLL_SOFTHCA_DEVICES */
	uint8_t link_layer;		/* IBV_LINK_LAYER_INFINIBAND / _ETHERNET */
	double rate_gbps;		/* IBCOLL_SOFTHCA_RATE_GBPS */
	enum ibv_port_state port_state; /* IBCOLL_SOFTHCA_PORT_STATE */
	char dir[92];			/* socket directory (fits sun_path with the file name) */
	int debug;
	int dma_staged; /* IBCOLL_SOFTHCA_DMA=staged: all MR I/O through the bounce path */
	/* faults: already resolved against IBCOLL_SOFTHCA_FAULT_RANK (0/unset = not active) */
	int drop_set;
	uint64_t drop_after;
	uint64_t latency_ns;
	double bw_bytes_per_ns; /* 0 = no cap */
	int flip_set;
	uint64_t flip_byte;
};

const struct shca_config *shca__config(void);
void shca__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define SHCA_DBG(...)                                                                              \
	do {                                                                                       \
		if (shca__config()->debug)                                                         \
			shca__log(__VA_ARGS__);                                                    \
	} while (0)
uint64_t shca__now_ns(void);

/* Process-wide fault state (payload bytes this process sent; link killed by DROP_AFTER). */
extern atomic_uint_fast64_t shca__tx_bytes;
extern atomic_int shca__link_dead;
extern atomic_int shca__flip_done;
void shca__kill_link(void); /* marks the link dead and wakes every HCA instance */
int shca__link_up(void);

/* ---- wire protocol between processes (same host: native byte order) ---- */
enum shca_msg_type {
	SHCA_MSG_HELLO = 1, /* first message on a new connection: who is calling whom */
	SHCA_MSG_SEND,
	SHCA_MSG_SEND_IMM,
	SHCA_MSG_WRITE,
	SHCA_MSG_WRITE_IMM,
	SHCA_MSG_READ,	    /* no payload; len = bytes wanted */
	SHCA_MSG_ACK,	    /* cumulative: every request with seq <= hdr.seq is done */
	SHCA_MSG_NAK,	    /* request seq failed with hdr.status (enum ibv_wc_status) */
	SHCA_MSG_READ_RESP, /* payload of READ seq (also acks everything before it) */
};

#define SHCA_HELLO_MAGIC 0x53484341u /* "SHCA" */

struct shca_hdr {
	uint8_t type;	   /* enum shca_msg_type */
	uint8_t status;	   /* NAK: status the requester completes with */
	uint8_t rnr_retry; /* requests: the requester's rnr_retry (7 = infinite) */
	uint8_t pad;
	uint32_t len;	/* payload bytes; READ: bytes wanted; HELLO: destination QPN */
	uint32_t rkey;	/* HELLO: source QPN */
	uint32_t imm;	/* immediate data, network order as posted; HELLO: magic */
	uint64_t raddr; /* HELLO: source LID */
	uint64_t seq;	/* request sequence number on this QP */
};

/* ---- objects ---- */
enum shca_mem_kind {
	SHCA_MEM_HOST = 0, /* the kernel moves bytes between socket and MR directly */
	SHCA_MEM_STAGED,   /* moved through a bounce buffer with shca__dma_copy (CUDA memory) */
	SHCA_MEM_CUDA,	   /* CUDA device memory, staged too: shca__dma_copy is a CUDA copy */
};

struct shca_ctx;

struct shca_pd {
	struct ibv_pd ibpd;
	struct shca_ctx *ctx; /* borrowed */
};

struct shca_mr {
	struct ibv_mr ibmr;
	struct shca_pd *pd; /* borrowed */
	enum shca_mem_kind kind;
	uint64_t iova; /* remote addresses are iova-based */
	unsigned int access;
	int refs;      /* I/O in progress on this MR; guarded by ctx->lock */
	uint32_t slot; /* index in ctx->mrs */
};

/* A slice of memory the wire I/O reads or writes: an MR range or a private buffer. */
struct shca_seg {
	void *addr;
	size_t len;
	struct shca_mr *mr; /* referenced (refs held) or NULL for private memory */
};

struct shca_cq {
	struct ibv_cq ibcq;
	pthread_mutex_t lock;
	struct ibv_wc *ring; /* owned */
	uint32_t size;
	atomic_uint_fast64_t head; /* next to fill (writers hold lock) */
	atomic_uint_fast64_t tail; /* next to poll (poll holds lock) */
	atomic_int overflow;
	int armed;
};

struct shca_channel {
	struct ibv_comp_channel ibch; /* ibch.fd: read end of the pipe */
	int wfd;		      /* write end: each event is one struct shca_cq pointer */
};

enum shca_swqe_stage {
	SHCA_SWQE_QUEUED = 0, /* posted, not yet on the wire */
	SHCA_SWQE_SENT,	      /* on the wire, awaiting ACK / READ_RESP */
	SHCA_SWQE_FAILED,     /* local error found before transmission (status holds it) */
};

struct shca_swqe {
	uint64_t wr_id;
	enum ibv_wr_opcode opcode;
	unsigned int send_flags;
	int signaled;
	uint32_t imm;
	uint64_t raddr;
	uint32_t rkey;
	uint32_t len; /* total payload bytes */
	int nsge;
	struct ibv_sge *sge; /* points into the QP's slot storage */
	uint8_t *inline_buf; /* non-NULL when the payload was copied at post time */
	uint64_t post_ns;
	uint64_t seq;
	enum shca_swqe_stage stage;
	enum ibv_wc_status status;
};

struct shca_rwqe {
	uint64_t wr_id;
	int nsge;
	struct ibv_sge *sge; /* points into the QP's slot storage */
};

struct shca_qp {
	struct ibv_qp ibqp;
	struct shca_ctx *ctx; /* borrowed */
	pthread_mutex_t lock;
	enum ibv_qp_state state;
	/* attributes */
	uint8_t port_num;
	uint16_t pkey_index;
	unsigned int access;
	enum ibv_mtu path_mtu;
	uint32_t dest_qpn, rq_psn, sq_psn;
	uint8_t timeout, retry_cnt, rnr_retry, min_rnr_timer;
	uint8_t max_rd_atomic, max_dest_rd_atomic;
	struct ibv_ah_attr ah;
	uint16_t peer_lid;
	struct ibv_qp_cap cap;
	int sq_sig_all;
	struct shca_cq *scq, *rcq; /* borrowed */
	/* send queue: free-running indices, slot = idx % sq_size */
	struct shca_swqe *sq; /* owned */
	uint8_t *sq_store;    /* owned: SGE arrays and inline buffers */
	uint32_t sq_size;
	uint32_t sq_head;    /* next post */
	uint32_t sq_tail;    /* oldest not completed (progress thread) */
	uint32_t sq_next_tx; /* next to transmit (progress thread) */
	uint64_t tx_seq;     /* last sequence number sent (progress thread) */
	uint64_t acked_seq;  /* highest sequence number the responder acknowledged */
	int tx_stopped;	     /* a WQE failed locally: nothing more goes out */
	/* receive queue */
	struct shca_rwqe *rq;	  /* owned */
	struct ibv_sge *rq_store; /* owned */
	uint32_t rq_size, rq_head, rq_tail;
	/* progress-thread view */
	int new_out_fd; /* connected at RTR, adopted by the progress thread; -1 none */
	int out_dead;	/* link to the peer is gone: requests end in RETRY_EXC_ERR */
	uint64_t retry_deadline_ns;
	atomic_int rnr_waiting; /* responder waits for a receive: post_recv wakes us */
	int destroyed;
	uint64_t generation; /* bumped on RESET: connections of an older one are closed */
};

/* One HCA instance: what ibv_open_device returns (context is its first member). */
struct shca_ctx {
	struct ibv_context ibctx;
	int index;
	uint16_t lid;
	union ibv_gid gid[2];
	int ngid;
	char sock_path[256];
	int listen_fd;
	int wake_fd; /* eventfd */
	atomic_int wake_pending;
	int async_rfd, async_wfd; /* async events: pipe of struct ibv_async_event */
	pthread_t thread;
	int stop; /* guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t sync_req, sync_done; /* guarded by lock */
	struct shca_qp **qps; /* owned array, entries borrowed; index = qpn - SHCA_QPN_BASE */
	uint32_t nqps;
	struct shca_mr **mrs; /* owned array, entries borrowed */
	uint32_t nmrs;
	uint8_t mr_gen;
	/* progress-thread private */
	int epfd;
	struct shca_conn *conns; /* owned list */
	int link_seen_dead;
	double tokens; /* bandwidth cap: bytes we may send now */
	uint64_t tokens_ns;
	uint8_t *bounce;	    /* owned: staged DMA and discard buffer */
	struct shca_ctx *next_open; /* list of open contexts (atexit cleanup) */
};

#define SHCA_BOUNCE_BYTES (256 * 1024)

static inline struct shca_ctx *shca_ctx_of(struct ibv_context *c)
{
	return (struct shca_ctx *)c;
}

/* shca_device.c */
void shca__async_event(struct shca_ctx *ctx, enum ibv_event_type type, void *obj);
void shca__wake(struct shca_ctx *ctx);
int shca__sync(struct shca_ctx *ctx); /* wait for one full progress-thread pass */
const union ibv_gid *shca__gid(struct shca_ctx *ctx, int index);
uint16_t shca__lid_from_gid(const union ibv_gid *gid);
int shca__query_port_full(struct ibv_context *context, uint8_t port_num,
			  struct ibv_port_attr *port_attr);
int shca__port_active(struct shca_ctx *ctx);
int shca__sock_path(char *buf, size_t len, uint16_t lid);

/* shca_mem.c */
struct shca_mr *shca__mr_get(struct shca_ctx *ctx, uint32_t key); /* takes a ref */
void shca__mr_put(struct shca_ctx *ctx, struct shca_mr *mr);
void shca__dma_copy(void *dst, enum shca_mem_kind dst_kind, const void *src,
		    enum shca_mem_kind src_kind, size_t len);

/* shca_cuda.c: device memory where a GPU is present; all "no" without one */
int shca__cuda_present(void);
int shca__cuda_is_device(const void *addr);
/* ibv_reg_dmabuf_mr: 0 with *addr = the device range (iova), or an errno */
int shca__cuda_dmabuf_addr(int fd, uint64_t iova, size_t len, void **addr);
void shca__cuda_copy(void *dst, int dst_dev, const void *src, int src_dev, size_t len);

/* shca_cq.c */
void shca__cq_push(struct shca_cq *cq, const struct ibv_wc *wc);
int shca__poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int shca__req_notify_cq(struct ibv_cq *cq, int solicited_only);

/* shca_qp.c */
void shca__qp_to_err(struct shca_qp *qp); /* qp->lock held */
void shca__qp_flush(struct shca_qp *qp);  /* progress thread; qp->lock held */
void shca__sq_complete(struct shca_qp *qp, struct shca_swqe *w, enum ibv_wc_status st);
uint64_t shca__retry_ns(const struct shca_qp *qp);
uint64_t shca__rnr_ns(uint8_t min_rnr_timer);
int shca__post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
int shca__post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

/* shca_wire.c */
void *shca__progress(void *arg);
int shca__connect(struct shca_ctx *ctx, struct shca_qp *qp); /* at RTR; returns fd or -errno */
void shca__conns_close_all(struct shca_ctx *ctx);

#endif
