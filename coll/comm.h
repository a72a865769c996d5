/* SPDX-License-Identifier: MIT */
/*
 * comm.h - the communicator: one transport context, cached connections to peers, buffers, and
 * the progress engine that runs collective "programs". Communicator in comm.c, programs and
 * engine in engine.c.
 *
 * A collective algorithm (coll.h; ring.c, tree.c, rd.c) compiles into lanes of simple operations (send a chunk to a
 * link, receive a chunk and reduce it into the output, receive a chunk into the output, wait for
 * another lane, finish an average). The engine runs all lanes of a program together, never
 * blocking in a transport call: it posts what it can, polls completions, pre-posts receives up
 * to a pipeline depth, and sleeps in the transport's wait() when nothing moved. Every wait is
 * bounded: with no progress for the timeout, the engine names the rank, host and link it waited
 * on.
 */
#ifndef IBC_COMM_H
#define IBC_COMM_H

#include "bootstrap.h"
#include "dtype.h"
#include "mem.h"
#include "transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ibc_comm_opts {
	const struct ibc_tp_ops *ops; /* borrowed */
	struct ibc_tp_config cfg; /* zero-filled; size and rank fields set by ibc_comm_init */
	int timeout_ms;
	const volatile int *abort_flag; /* borrowed, may be NULL */
	int depth; /* receives pre-posted per link (pipeline depth), >= 1 */
	size_t max_chunk; /* largest message the engine will send (staging slots) */
	/* user buffers in device memory: the backend and its context (borrowed; NULL = host) */
	const struct ibc_mem_ops *mem;
	struct ibc_mem_ctx *memctx;
};

/* A one-directional connection to a peer for one stream. */
struct ibc_link {
	int peer;
	bool is_send;
	int stream;
	struct ibc_tp_send *s; /* owned (send links) */
	struct ibc_tp_recv *r; /* owned (recv links) */
	uint32_t seq; /* messages posted so far: the tag of the next one */
	/* engine state (reset per program run) */
	struct ibc_eng_link *eng; /* borrowed during a run */
};

struct ibc_buf {
	void *ptr;
	size_t len;
	struct ibc_tp_mr *mr; /* owned */
	bool from_tp; /* allocated with the transport's mem_alloc */
	bool device; /* allocated with the memory backend (device memory) */
	bool registered; /* host memory registered (pinned) with the memory backend */
};

struct ibc_comm {
	struct ibc_boot *boot; /* borrowed */
	const struct ibc_tp_ops *ops; /* borrowed */
	struct ibc_tp_ctx *ctx; /* owned */
	struct ibc_tp_props props;
	struct ibc_tp_config cfg;
	int rank, nranks;
	int timeout_ms;
	const volatile int *abort_flag;
	int depth;
	size_t max_chunk;
	bool direct; /* transport offers recv_direct */
	const struct ibc_mem_ops *mem; /* borrowed; NULL for host memory */
	struct ibc_mem_ctx *memctx; /* borrowed */
	bool device; /* user buffers live in device memory */
	bool staged; /* ... and the transport cannot touch it: chunks go through host slots */
	bool oversubscribed; /* more local ranks than cores */
	int spin_ns; /* poll this long before sleeping in the transport's wait() */
	int wait_ms; /* longest single sleep in wait() before timeouts are looked at again */
	struct ibc_link **links; /* owned array of owned links */
	int nlinks, caplinks;
	struct ibc_buf *tmp; /* owned staging buffers (depth * max_chunk) per recv link */
	int ntmp, captmp;
	struct ibc_buf scratch; /* owned: a whole-buffer scratch area for algorithms */
};

int ibc_comm_init(struct ibc_comm *c, struct ibc_boot *boot, const struct ibc_comm_opts *o);
int ibc_comm_fini(struct ibc_comm *c);

/* Allocate a buffer the transport can send from and receive into (shared memory for shm). */
int ibc_comm_alloc(struct ibc_comm *c, size_t len, struct ibc_buf *b);
int ibc_comm_free(struct ibc_comm *c, struct ibc_buf *b);
/* A user buffer: device memory (registered with the transport when it takes device memory)
 * when the communicator has a device backend, else ibc_comm_alloc. */
int ibc_comm_alloc_user(struct ibc_comm *c, size_t len, struct ibc_buf *b);
/* A scratch buffer of at least len bytes owned by the communicator (host memory the
 * transport can use); valid until the next call or ibc_comm_fini. */
int ibc_comm_scratch(struct ibc_comm *c, size_t len, struct ibc_buf **b);

/* Links wanted by this rank: every rank calls ibc_comm_connect collectively (even with n == 0)
 * with its own list; a send link (peer P, stream S) on this rank must match a recv link
 * (this rank, S) on P. Existing links are reused. On return links[i] point into the comm. */
struct ibc_link_req {
	int peer;
	bool is_send;
	int stream;
};
int ibc_comm_connect(struct ibc_comm *c, const struct ibc_link_req *req, int n,
		     struct ibc_link **links);

/* ---- programs ---- */

enum ibc_opk {
	IBC_OPK_SEND, /* send bytes at src over link */
	IBC_OPK_RECV_REDUCE, /* dst = src OP received (count elements) */
	IBC_OPK_RECV_COPY, /* dst = received */
	IBC_OPK_WAIT_LANE, /* until lane `lane` has completed `pc` ops */
	IBC_OPK_FINISH, /* ibc_reduce_finish on dst (avg) */
	IBC_OPK_COPY, /* dst = src, local */
	IBC_OPK_WAIT_SENDS, /* until every send posted on `link` has completed */
};

struct ibc_step {
	uint8_t kind;
	int link; /* index into the program's link table */
	int lane, pc; /* WAIT_LANE */
	size_t count; /* elements */
	const void *src; /* borrowed */
	void *dst; /* borrowed */
	struct ibc_tp_mr *mr; /* borrowed: MR of src (SEND) or dst (RECV_COPY) */
};

struct ibc_lane {
	struct ibc_step *ops; /* owned */
	int nops, cap;
	int pc;
};

struct ibc_prog {
	struct ibc_lane *lanes; /* owned */
	int nlanes;
	struct ibc_link **links; /* owned array of links owned by the comm */
	int nlinks;
	enum ibc_dtype dt;
	enum ibc_op op;
	int nranks;
	struct ibc_eng_link *eng; /* owned engine state per link */
};

int ibc_prog_init(struct ibc_prog *p, int nlanes, struct ibc_link **links, int nlinks,
		  enum ibc_dtype dt, enum ibc_op op, int nranks);
/* Give the program its link table (array ownership passes to p); before any ibc_prog_add. */
int ibc_prog_set_links(struct ibc_prog *p, struct ibc_link **links, int nlinks);
int ibc_prog_add(struct ibc_prog *p, int lane, const struct ibc_step *op);
void ibc_prog_free(struct ibc_prog *p);
/* Run a program to completion. On failure ibc_err_get() names the peer and what failed. */
int ibc_prog_run(struct ibc_comm *c, struct ibc_prog *p);

#endif
