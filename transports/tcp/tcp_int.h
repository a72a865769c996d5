/* SPDX-License-Identifier: MIT */
/*
 * tcp_int.h - the tcp transport's internals, shared by its files (and by the test plugin,
 * tests/plugin/tcp_plugin.c, which builds its own vtable from the same functions):
 *   tcp.c       the vtable, init/fini, device selection, properties, counters
 *   tcp_conn.c  connections: listen/accept, connect, the handshake, errors, teardown
 *   tcp_data.c  memory registration, framing, post/test/progress, epoch/wait
 * The wire format and the threading rules are described at the top of tcp.c.
 */
#ifndef IBC_TCP_INT_H
#define IBC_TCP_INT_H

#include "transport.h"
#include "ibc_auth.h"
#include "ibc_common.h"
#include "ibc_sock.h"

#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define TCP_MAGIC	  0x49424354u /* "IBCT" */
#define TCP_VERSION	  2 /* 2: the job key's challenge-response follows the hello */
#define TCP_HELLO	  1
#define TCP_HELLO_ACK	  2
#define TCP_MAX_DEVS	  8
#define TCP_MAX_REQS	  32 /* requests in flight per connection */
#define TCP_MAX_IOV	  64 /* iovecs in one sendmsg: header + payload of up to 32 messages */
#define TCP_SOCKBUF	  (4 << 20) /* socket buffers we want at least (see tcp_default_sockbuf) */
#define TCP_DISCARD_BYTES (64 << 10)
#define TCP_WAIT_SLICE_MS 100	    /* wait() looks at abort_flag at least this often */
#define TCP_LOWAT_MAX	  (1 << 20) /* wait(): wake a receiver for this much payload at most */
#define TCP_ERR_LEN	  512
#define TCP_ADDR_LEN	  IBC_SOCK_ADDR_LEN /* "[ipv6%scope]:port" */
#define TCP_AUTH_CONTEXT  "ibcoll-tcp-1"

#define tcp_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct tcp_link {
	struct tcp_link *prev, *next; /* borrowed: neighbours in an intrusive list */
};

/* The listener's half of the out-of-band exchange; lives in the 128-byte handle. */
struct tcp_handle {
	uint32_t magic;	  /* TCP_MAGIC */
	uint16_t version; /* TCP_VERSION */
	uint16_t family;  /* 4 or 6 */
	uint16_t port;	  /* network order */
	uint16_t reserved;
	uint32_t scope_id;	  /* IPv6 link-local scope, host order */
	uint64_t nonce;		  /* opaque, names this listener */
	uint8_t addr[16];	  /* IPv4 in the first 4 bytes, or IPv6 */
	char ifname[IF_NAMESIZE]; /* listener's interface, for messages */
};
_Static_assert(sizeof(struct tcp_handle) <= IBC_TP_HANDLE_BYTES, "tcp handle too large");

struct tcp_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t kind; /* TCP_HELLO or TCP_HELLO_ACK */
	uint64_t nonce;
};

struct tcp_hdr {
	uint32_t tag;
	uint32_t flags;
	uint64_t size;
};

struct tcp_dev {
	char ifname[IF_NAMESIZE]; /* "" when the address was given without an interface */
	char name[64];		  /* "tcp:eth0" */
	char link_layer[16];
	char pci_busid[32];
	uint32_t speed_mbps;
	struct sockaddr_storage addr; /* port 0 */
	socklen_t addrlen;
	bool loopback;
};

struct ibc_tp_ctx {
	struct tcp_dev devs[TCP_MAX_DEVS];
	int ndev;
	int sockbuf;   /* SO_SNDBUF/SO_RCVBUF to set, 0 = leave the kernel's autotuning */
	int lowat_max; /* SO_RCVLOWAT bound for wait(), 0 = never set it */
	const volatile int *abort_flag; /* borrowed from the config, may be NULL */
	const char *sysfs_root; /* borrowed from the config; NULL = ibc_sysfs_root() */
	struct ibc_auth_key key; /* the job key from the config (copied); len 0: none */
	uint64_t epoch;			/* bumped on every completion, failure and new connection */
	struct tcp_link conns; /* owned: send and recv connections, also those still connecting */
	struct tcp_link listeners; /* owned */
	struct tcp_link mrs;	   /* owned */
	struct pollfd *pfds;	   /* owned: wait()'s poll set */
	size_t npfds_cap;
	char err[TCP_ERR_LEN]; /* last_error() */
};

enum tcp_req_state {
	TCP_REQ_FREE,
	TCP_REQ_PENDING,
	TCP_REQ_DONE,
};

struct tcp_conn;

struct ibc_tp_req {
	struct tcp_conn *conn; /* borrowed: the connection this slot belongs to */
	void *data;	       /* borrowed: the caller's buffer */
	size_t size;	       /* send: message size; recv: room in the buffer */
	size_t len;	       /* recv: size of the message that matched */
	size_t off;	       /* bytes moved so far; a send counts its header too */
	uint32_t tag;
	enum tcp_req_state state;
	int err;	  /* completed with this error (recv: tag mismatch, oversize) */
	bool matched;	  /* recv: the message header was taken for this request */
	uint32_t got_tag; /* recv error details for the message */
	uint64_t got_size;
	struct tcp_hdr hdr; /* send: the header, wire order */
};

enum tcp_conn_state {
	TCP_CONN_CONNECTING, /* send: non-blocking connect() in flight */
	TCP_CONN_HELLO,	     /* send: writing hello; recv: reading hello */
	TCP_CONN_ACK,	     /* send: reading ack; recv: writing ack */
	TCP_CONN_AUTH,	     /* the job key's challenge-response (common/ibc_auth.h) */
	TCP_CONN_UP,
};

struct tcp_conn {
	struct tcp_link link;	/* in ctx->conns (a recv conn joins once accepted) */
	struct ibc_tp_ctx *ctx; /* borrowed: owner */
	int fd;			/* owned */
	int dev;
	bool is_send;
	enum tcp_conn_state state;
	int err; /* sticky: the connection is broken */
	char errmsg[TCP_ERR_LEN];
	char local[TCP_ADDR_LEN], peer[TCP_ADDR_LEN];
	unsigned char key[IBC_TP_HANDLE_BYTES]; /* send: the handle, to find a pending connect */
	uint64_t nonce;
	struct tcp_hello hello; /* handshake buffer */
	size_t hello_off;
	struct ibc_auth auth; /* state TCP_CONN_AUTH: the challenge-response */
	/* Request slots in posting order: [head, tail) are in use, prog is the first one not yet
	 * completed. Counters run freely; slot = counter % TCP_MAX_REQS. */
	struct ibc_tp_req reqs[TCP_MAX_REQS];
	unsigned head, prog, tail;
	/* receive side */
	struct tcp_hdr rhdr; /* header of the next message, wire order */
	size_t rhdr_got;
	uint64_t discard; /* payload bytes of a refused message still to skip */
	int lowat;	  /* SO_RCVLOWAT now set on fd (0 = the default, 1) */
	char *dbuf;	  /* owned: scratch for skipped payload, allocated on first use */
};

struct ibc_tp_send {
	struct tcp_conn c;
};

struct ibc_tp_recv {
	struct tcp_conn c;
};

struct ibc_tp_listener {
	struct tcp_link link;	/* in ctx->listeners */
	struct ibc_tp_ctx *ctx; /* borrowed: owner */
	int fd;			/* owned: listening socket */
	int dev;
	uint64_t nonce;
	bool accepting; /* the caller is waiting in accept(): wait() watches this listener */
	char local[TCP_ADDR_LEN];
	struct ibc_tp_recv *pending; /* owned: accepted, handshake in progress */
	uint64_t pending_deadline; /* a pending connection not up by then is dropped */
};

struct ibc_tp_mr {
	struct tcp_link link;	/* in ctx->mrs */
	struct ibc_tp_ctx *ctx; /* borrowed: owner */
	uintptr_t addr;
	size_t len;
};

/* ---------------------------------------------------------------------------------------- */
/* lists, errors, small helpers */

static inline void tcp_list_init(struct tcp_link *head)
{
	head->prev = head;
	head->next = head;
}

static inline void tcp_list_add(struct tcp_link *head, struct tcp_link *n)
{
	n->next = head;
	n->prev = head->prev;
	head->prev->next = n;
	head->prev = n;
}

static inline void tcp_list_del(struct tcp_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n;
	n->next = n;
}

/* Record an error for last_error(ctx) (ctx may be NULL during init) and ibc_err_get(). */
static inline int tcp_err(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int tcp_err(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
{
	char buf[TCP_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ctx)
		memcpy(ctx->err, buf, sizeof(buf));
	ibc_err_set("%s", buf);
	return rc;
}

static inline bool tcp_aborted(const struct ibc_tp_ctx *ctx)
{
	return ctx->abort_flag && *ctx->abort_flag;
}

static inline const char *tcp_devname(const struct tcp_conn *c)
{
	return c->ctx->devs[c->dev].name;
}

static inline int tcp_check_dev(struct ibc_tp_ctx *ctx, int dev)
{
	if (dev < 0 || dev >= ctx->ndev)
		return tcp_err(ctx, -EINVAL, "tcp: device %d out of range (this context has %d)",
			       dev, ctx->ndev);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* tcp.c: the context (the vtable's entries, for tcp.c and the test plugin) */

int tcp__init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out);
int tcp__devices(struct ibc_tp_ctx *ctx, int *ndev);
int tcp__get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *p);
const char *tcp__last_error(struct ibc_tp_ctx *ctx);
int tcp__port_counters(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_counters *cnt);
int tcp__fini(struct ibc_tp_ctx *ctx);

/* ---------------------------------------------------------------------------------------- */
/* tcp_conn.c: connections */

/* Break a connection: the first error sticks, every request on it fails with it. */
int tcp__conn_fail(struct tcp_conn *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copy a broken connection's error to last_error() and ibc_err_get(); returns it. */
int tcp__conn_report(struct tcp_conn *c);
/* err: a positive errno from a socket call, 0 for end of file. */
int tcp__conn_io_fail(struct tcp_conn *c, int err, const char *op);
/* Unlink and free; 0 or the error of close(). */
int tcp__conn_free(struct tcp_conn *c);
int tcp__listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **out);
int tcp__accept(struct ibc_tp_listener *l, struct ibc_tp_recv **out);
int tcp__close_listen(struct ibc_tp_listener *l);
int tcp__connect(struct ibc_tp_ctx *ctx, int dev, const void *handle, struct ibc_tp_send **out);
int tcp__close_send(struct ibc_tp_send *s);
int tcp__close_recv(struct ibc_tp_recv *r);

/* The wire's decoders, pure functions over received bytes (the fuzz harness
 * tests/fuzz/fuzz_tcp.c calls them too). A hello of len bytes expected to be of kind for the
 * listener nonce: 0, 1 when it is not an ibcoll hello at all (short or wrong magic),
 * -EPROTONOSUPPORT for another protocol version (*version says which), -EPROTO when it
 * answers another listener or is of the wrong kind. */
int tcp__decode_hello(const void *buf, size_t len, uint16_t kind, uint64_t nonce,
		      uint16_t *version);
/* A listener's handle (IBC_TP_HANDLE_BYTES at handle) into the address to connect to: 0,
 * -EINVAL (not a tcp handle), -EPROTONOSUPPORT (another version, *version says which) or
 * -EAFNOSUPPORT (unknown family, *family says which). */
int tcp__decode_handle(const void *handle, struct sockaddr_storage *ss, socklen_t *len,
		       uint16_t *version, uint16_t *family);

/* ---------------------------------------------------------------------------------------- */
/* tcp_data.c: registration, data path, sleeping */

/* A message header (len bytes): 0 with the tag and the payload size, -EPROTO when short. */
int tcp__decode_hdr(const void *buf, size_t len, uint32_t *tag, uint64_t *size);

int tcp__reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		struct ibc_tp_mr **out);
int tcp__dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr);
int tcp__post_send(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
		   struct ibc_tp_mr *mr, struct ibc_tp_req **req);
int tcp__post_recv(struct ibc_tp_recv *rv, void *data, size_t size, uint32_t tag,
		   struct ibc_tp_mr *mr, struct ibc_tp_req **req);
int tcp__test(struct ibc_tp_req *r, int *done, size_t *size);
uint64_t tcp__epoch(struct ibc_tp_ctx *ctx);
int tcp__wait(struct ibc_tp_ctx *ctx, uint64_t epoch, int timeout_ms);

/* The vtable's entries, shared by ibc_tp_tcp_ops and the test plugin built from these files
 * (tests/plugin/tcp_plugin.c). */
#define TCP_OPS_ENTRIES                                                                            \
	.init = tcp__init, .devices = tcp__devices, .get_props = tcp__get_props,                   \
	.listen = tcp__listen, .connect = tcp__connect, .accept = tcp__accept,                     \
	.reg_mr = tcp__reg_mr, .dereg_mr = tcp__dereg_mr, .post_send = tcp__post_send,             \
	.post_recv = tcp__post_recv, .test = tcp__test, .close_send = tcp__close_send,             \
	.close_recv = tcp__close_recv, .close_listen = tcp__close_listen, .fini = tcp__fini,       \
	.last_error = tcp__last_error, .epoch = tcp__epoch, .wait = tcp__wait,                     \
	.port_counters = tcp__port_counters

#endif
