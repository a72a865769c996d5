/* SPDX-License-Identifier: MIT */
/*
 * old_plugin.c - libibcoll-net-oldabi.so: a small but complete transport built against
 * old_transport.h, the ABI 2 base structs without the fields appended since (no
 * cfg->sysfs_root, no props->fw_version/board_id). test_plugin loads it through the real
 * loader and checks that a plugin of an older header keeps working with this host: it reads
 * only its own part of the host's larger config, answers get_props within its own struct, and
 * connects and moves data.
 *
 * Connections live inside one process: listen() publishes a mailbox whose id travels in the
 * handle, connect() finds it, post_send copies the message into the connection's queue and
 * the receive that was posted first takes it out (in order, tags checked). One mutex guards
 * every mailbox and queue. Exports ibcoll_transport_plugin only (hidden visibility).
 */
#include "old_transport.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define OLD_MAGIC    0x6f6c646162693200ull /* "oldabi2" */
#define OLD_MAX_REQS 8
#define OLD_DEV_NAME "oldabi0"

struct old_handle {
	uint64_t magic;
	uint64_t id; /* the listener's mailbox */
};

struct old_msg {
	struct old_msg *next; /* owned by the queue */
	uint32_t tag;
	size_t len;
	unsigned char data[];
};

/* One connection: the queue of messages from its sender to its receiver. */
struct old_chan {
	struct old_msg *head;	/* owned */
	struct old_msg **tail;	/* borrowed: where the next message links in */
	uint64_t posted, taken; /* receives posted / completed: they complete in order */
	int refs;		/* sender, receiver (or the listener until accept) */
};

struct ibc_tp_ctx {
	int rank;
	char err[256];
};

struct ibc_tp_listener {
	struct ibc_tp_ctx *ctx; /* borrowed */
	uint64_t id;
	int connected;
	struct old_chan *pending;     /* owned reference until accept() hands it out */
	struct ibc_tp_listener *next; /* borrowed link in old_listeners */
};

struct ibc_tp_send {
	struct old_chan *ch; /* owned reference */
};

struct ibc_tp_recv {
	struct old_chan *ch; /* owned reference */
};

struct ibc_tp_mr {
	const void *addr; /* borrowed */
	size_t len;
};

struct ibc_tp_req {
	struct old_chan *ch; /* borrowed; NULL for a send (complete when posted) */
	uint64_t seq;	     /* receive: its place in the connection's order */
	void *data;	     /* borrowed: receive buffer */
	size_t size;	     /* send: bytes sent; receive: buffer size */
	uint32_t tag;
};

static pthread_mutex_t old_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ibc_tp_listener *old_listeners; /* borrowed list, under old_lock */
static uint64_t old_next_id = 1;
static char old_init_err[256]; /* why the last init failed */

static int old_err(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int old_err(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
{
	char *buf = ctx ? ctx->err : old_init_err;
	size_t len = ctx ? sizeof(ctx->err) : sizeof(old_init_err);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return rc;
}

static int old_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out)
{
	struct ibc_tp_ctx *ctx;

	*out = NULL;
	if (ibc_tp_config_check(cfg))
		return old_err(NULL, -EINVAL, "oldabi: config smaller than the ABI 2 base");
	/* only fields of the base: the host's struct may be larger, never smaller */
	if (cfg->nic && cfg->nic[0] && strcmp(cfg->nic, OLD_DEV_NAME))
		return old_err(NULL, -ENODEV, "oldabi: no device '%s' (the only one is %s)",
			       cfg->nic, OLD_DEV_NAME);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return old_err(NULL, -ENOMEM, "oldabi: out of memory");
	ctx->rank = cfg->rank;
	*out = ctx;
	return 0;
}

static int old_devices(struct ibc_tp_ctx *ctx, int *ndev)
{
	*ndev = 1;
	return 0;
}

static int old_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props)
{
	struct ibc_tp_props p = {0};

	if (dev != 0)
		return old_err(ctx, -EINVAL, "oldabi: no device %d", dev);
	snprintf(p.name, sizeof(p.name), "%s", OLD_DEV_NAME);
	snprintf(p.link_layer, sizeof(p.link_layer), "memory");
	p.mem_kinds = IBC_MEM_HOST;
	p.max_requests = OLD_MAX_REQS;
	ibc_tp_props_put(props, &p); /* at most sizeof(its old struct) */
	return 0;
}

static int old_listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **out)
{
	struct ibc_tp_listener *l = calloc(1, sizeof(*l));
	struct old_handle h = {.magic = OLD_MAGIC};

	*out = NULL;
	if (!l)
		return old_err(ctx, -ENOMEM, "oldabi: out of memory");
	l->ctx = ctx;
	pthread_mutex_lock(&old_lock);
	l->id = old_next_id++;
	l->next = old_listeners;
	old_listeners = l;
	pthread_mutex_unlock(&old_lock);
	h.id = l->id;
	memset(handle, 0, IBC_TP_HANDLE_BYTES);
	memcpy(handle, &h, sizeof(h));
	*out = l;
	return 0;
}

/* Under old_lock. */
static void old_chan_put(struct old_chan *ch)
{
	struct old_msg *m;

	if (!ch || --ch->refs > 0)
		return;
	while ((m = ch->head)) {
		ch->head = m->next;
		free(m);
	}
	free(ch);
}

/* Under old_lock: a new connection for the mailbox id, or -errno. */
static int old_connect_locked(uint64_t id, struct old_chan **out)
{
	struct ibc_tp_listener *l;
	struct old_chan *ch;

	for (l = old_listeners; l && l->id != id; l = l->next)
		;
	if (!l)
		return -ECONNREFUSED;
	if (l->connected)
		return -EISCONN;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->tail = &ch->head;
	ch->refs = 2;
	l->pending = ch;
	l->connected = 1;
	*out = ch;
	return 0;
}

static int old_connect(struct ibc_tp_ctx *ctx, int dev, const void *handle,
		       struct ibc_tp_send **out)
{
	struct ibc_tp_send *s = calloc(1, sizeof(*s));
	struct old_handle h;
	int rc;

	*out = NULL;
	memcpy(&h, handle, sizeof(h));
	if (!s)
		return old_err(ctx, -ENOMEM, "oldabi: out of memory");
	if (h.magic != OLD_MAGIC) {
		free(s);
		return old_err(ctx, -EINVAL, "oldabi: not an oldabi handle");
	}
	pthread_mutex_lock(&old_lock);
	rc = old_connect_locked(h.id, &s->ch);
	pthread_mutex_unlock(&old_lock);
	if (rc) {
		free(s);
		return old_err(ctx, rc, "oldabi: connect to mailbox %llu: %s",
			       (unsigned long long)h.id, strerror(-rc));
	}
	*out = s;
	return 0;
}

static int old_accept(struct ibc_tp_listener *l, struct ibc_tp_recv **out)
{
	struct ibc_tp_recv *r;

	*out = NULL;
	pthread_mutex_lock(&old_lock);
	if (!l->pending) {
		pthread_mutex_unlock(&old_lock);
		return -EAGAIN;
	}
	r = calloc(1, sizeof(*r));
	if (r) {
		r->ch = l->pending;
		l->pending = NULL;
	}
	pthread_mutex_unlock(&old_lock);
	if (!r)
		return old_err(l->ctx, -ENOMEM, "oldabi: out of memory");
	*out = r;
	return 0;
}

static int old_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		      struct ibc_tp_mr **out)
{
	struct ibc_tp_mr *mr;

	*out = NULL;
	if (buf->kind != IBC_MEM_HOST)
		return old_err(ctx, -EOPNOTSUPP, "oldabi: host memory only");
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return old_err(ctx, -ENOMEM, "oldabi: out of memory");
	mr->addr = buf->addr;
	mr->len = buf->len;
	*out = mr;
	return 0;
}

static int old_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr)
{
	free(mr);
	return 0;
}

static int old_post_send(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct old_msg *m = malloc(sizeof(*m) + size);
	struct ibc_tp_req *req = calloc(1, sizeof(*req));

	*out = NULL;
	if (!m || !req || (size && !mr)) {
		free(m);
		free(req);
		return m && req ? -EINVAL : -ENOMEM;
	}
	m->next = NULL;
	m->tag = tag;
	m->len = size;
	if (size)
		memcpy(m->data, data, size);
	pthread_mutex_lock(&old_lock);
	*s->ch->tail = m;
	s->ch->tail = &m->next;
	pthread_mutex_unlock(&old_lock);
	req->size = size;
	*out = req;
	return 0;
}

static int old_post_recv(struct ibc_tp_recv *r, void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct ibc_tp_req *req = calloc(1, sizeof(*req));

	*out = NULL;
	if (!req)
		return -ENOMEM;
	if (size && !mr) {
		free(req);
		return -EINVAL;
	}
	req->ch = r->ch;
	req->data = data;
	req->size = size;
	req->tag = tag;
	pthread_mutex_lock(&old_lock);
	req->seq = r->ch->posted++;
	pthread_mutex_unlock(&old_lock);
	*out = req;
	return 0;
}

/* Under old_lock: the message for receive req when its turn has come, else NULL. */
static struct old_msg *old_take_locked(struct ibc_tp_req *req)
{
	struct old_chan *ch = req->ch;
	struct old_msg *m = ch->head;

	if (!m || ch->taken != req->seq)
		return NULL;
	ch->head = m->next;
	if (!ch->head)
		ch->tail = &ch->head;
	ch->taken++;
	return m;
}

static int old_test(struct ibc_tp_req *req, int *done, size_t *size)
{
	struct old_msg *m;
	int rc = 0;

	*done = 0;
	if (!req->ch) { /* a send: the data was copied when it was posted */
		*done = 1;
		*size = req->size;
		free(req);
		return 0;
	}
	pthread_mutex_lock(&old_lock);
	m = old_take_locked(req);
	pthread_mutex_unlock(&old_lock);
	if (!m)
		return 0;
	if (m->tag != req->tag)
		rc = -EPROTO;
	else if (m->len > req->size)
		rc = -EMSGSIZE;
	else if (m->len)
		memcpy(req->data, m->data, m->len);
	*done = 1;
	*size = rc ? 0 : m->len;
	free(m);
	free(req);
	return rc;
}

static int old_close_send(struct ibc_tp_send *s)
{
	if (!s)
		return 0;
	pthread_mutex_lock(&old_lock);
	old_chan_put(s->ch);
	pthread_mutex_unlock(&old_lock);
	free(s);
	return 0;
}

static int old_close_recv(struct ibc_tp_recv *r)
{
	if (!r)
		return 0;
	pthread_mutex_lock(&old_lock);
	old_chan_put(r->ch);
	pthread_mutex_unlock(&old_lock);
	free(r);
	return 0;
}

static int old_close_listen(struct ibc_tp_listener *l)
{
	struct ibc_tp_listener **pp;

	if (!l)
		return 0;
	pthread_mutex_lock(&old_lock);
	for (pp = &old_listeners; *pp && *pp != l; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = l->next;
	old_chan_put(l->pending);
	pthread_mutex_unlock(&old_lock);
	free(l);
	return 0;
}

static int old_fini(struct ibc_tp_ctx *ctx)
{
	free(ctx);
	return 0;
}

static const char *old_last_error(struct ibc_tp_ctx *ctx)
{
	return ctx ? ctx->err : old_init_err;
}

__attribute__((visibility("default"))) const struct ibc_tp_ops ibcoll_transport_plugin = {
    .abi_major = IBC_TP_ABI_MAJOR,
    .ops_size = sizeof(struct ibc_tp_ops),
    .name = "oldabi",
    .description = "an in-process transport built against the ABI 2 base structs (tests)",
    .init = old_init,
    .devices = old_devices,
    .get_props = old_get_props,
    .listen = old_listen,
    .connect = old_connect,
    .accept = old_accept,
    .reg_mr = old_reg_mr,
    .dereg_mr = old_dereg_mr,
    .post_send = old_post_send,
    .post_recv = old_post_recv,
    .test = old_test,
    .close_send = old_close_send,
    .close_recv = old_close_recv,
    .close_listen = old_close_listen,
    .fini = old_fini,
    .last_error = old_last_error,
};
