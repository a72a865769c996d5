/* SPDX-License-Identifier: MIT */
/*
 * tcp.c - the tcp transport: stream sockets between hosts, network namespaces or processes.
 *
 * Devices are IP interfaces (cfg->nic, else the address this rank used to reach the bootstrap
 * root, else IBCOLL_TCP_IF, else the first non-loopback interface that is up, else 127.0.0.1).
 *
 * Wire format (all integers big-endian):
 *   handshake  connector -> listener  hello {magic, version, kind = 1, nonce}
 *              listener  -> connector hello {magic, version, kind = 2, nonce}
 *   message    header {tag u32, flags u32 = 0, size u64} followed by size bytes of payload
 * The nonce comes from the listener's handle, so a connection that reaches the wrong listener
 * (a stale handle, a reused port) is refused instead of carrying another job's data.
 *
 * Data path: a send is one sendmsg() of header + payload straight from the caller's buffer (and
 * of the headers and payloads queued behind it); a receive reads the payload straight into the
 * caller's buffer together with the next message's header. Nothing is copied in user space.
 * Every call is non-blocking; test() moves as many bytes as the socket takes. wait() sleeps in
 * poll() on the connections that have work pending (a receiver in a large payload with
 * SO_RCVLOWAT raised, so it wakes once per MiB rather than once per segment).
 *
 * connect() keeps a pending connection inside the context, found again by the handle's bytes:
 * the caller just calls connect() again with the same handle until it returns 0 (*s is only
 * written on success). accept() keeps its pending connection in the listener.
 *
 * Threading: a context and everything made from it are used by one thread at a time (as NCCL
 * calls its net plugins from one proxy thread). Different contexts are independent.
 */
#include "transport.h"
#include "ibc_common.h"
#include "ibc_id.h"

#include <arpa/inet.h>
#include <endian.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#define TCP_MAGIC	  0x49424354u /* "IBCT" */
#define TCP_VERSION	  1
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
#define TCP_ADDR_LEN	  64 /* "[ipv6%scope]:port" */

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
};

struct ibc_tp_mr {
	struct tcp_link link;	/* in ctx->mrs */
	struct ibc_tp_ctx *ctx; /* borrowed: owner */
	uintptr_t addr;
	size_t len;
};

/* ---------------------------------------------------------------------------------------- */
/* lists, errors, small helpers */

static void tcp_list_init(struct tcp_link *head)
{
	head->prev = head;
	head->next = head;
}

static void tcp_list_add(struct tcp_link *head, struct tcp_link *n)
{
	n->next = head;
	n->prev = head->prev;
	head->prev->next = n;
	head->prev = n;
}

static void tcp_list_del(struct tcp_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n;
	n->next = n;
}

/* Record an error for last_error(ctx) (ctx may be NULL during init) and ibc_err_get(). */
static int tcp_err(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tcp_err(struct ibc_tp_ctx *ctx, int rc, const char *fmt, ...)
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

static bool tcp_aborted(const struct ibc_tp_ctx *ctx)
{
	return ctx->abort_flag && *ctx->abort_flag;
}

static const char *tcp_devname(const struct tcp_conn *c)
{
	return c->ctx->devs[c->dev].name;
}

/* Break a connection: the first error sticks, every request on it fails with it. */
static int tcp_conn_fail(struct tcp_conn *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tcp_conn_fail(struct tcp_conn *c, int rc, const char *fmt, ...)
{
	char what[TCP_ERR_LEN / 2];
	va_list ap;

	if (c->err)
		return c->err;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->errmsg, sizeof(c->errmsg), "%s (%s%s%s): %s", tcp_devname(c),
		 c->is_send ? "send" : "recv", c->local[0] ? " " : "", c->local, what);
	c->err = rc;
	c->ctx->epoch++;
	return rc;
}

static int tcp_conn_report(struct tcp_conn *c)
{
	return tcp_err(c->ctx, c->err, "%s", c->errmsg);
}

/* err: a positive errno from a socket call, 0 for end of file. */
static int tcp_conn_io_fail(struct tcp_conn *c, int err, const char *op)
{
	if (err == 0 || err == ECONNRESET || err == EPIPE)
		return tcp_conn_fail(c, -ECONNRESET, "connection closed by peer %s%s", c->peer,
				     c->state == TCP_CONN_UP ? "" : " during the handshake");
	return tcp_conn_fail(c, -err, "%s %s failed: %s", op, c->peer, strerror(err));
}

static void tcp_fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		if (in6->sin6_scope_id)
			snprintf(buf, len, "[%s%%%u]:%u", ip, in6->sin6_scope_id,
				 ntohs(in6->sin6_port));
		else
			snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
}

static void tcp_fd_names(int fd, char *local, char *peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (local && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		tcp_fmt_addr((struct sockaddr *)&ss, local, TCP_ADDR_LEN);
	len = sizeof(ss);
	if (peer && getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		tcp_fmt_addr((struct sockaddr *)&ss, peer, TCP_ADDR_LEN);
}

/* Socket options for data sockets; buffer sizes must be set before connect/listen. */
static void tcp_set_bufs(struct ibc_tp_ctx *ctx, int fd)
{
	int v = ctx->sockbuf;

	if (!v)
		return;
	/* Best effort: the kernel caps the value at [rw]mem_max. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

static void tcp_set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static long tcp_read_sysfs_long(const char *ifname, const char *file)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* ---------------------------------------------------------------------------------------- */
/* device selection */

/* Fill the sysfs facts of an interface: link layer, speed, PCI bus id. */
static void tcp_dev_facts(struct tcp_dev *d)
{
	char path[128], target[256];
	unsigned dom, bus, slot, fn;
	const char *base;
	long v;
	ssize_t n;

	snprintf(d->link_layer, sizeof(d->link_layer), "%s", d->loopback ? "loopback" : "Ethernet");
	if (!d->ifname[0])
		return;
	if (tcp_read_sysfs_long(d->ifname, "type") == 32) /* ARPHRD_INFINIBAND: IPoIB */
		snprintf(d->link_layer, sizeof(d->link_layer), "InfiniBand");
	v = tcp_read_sysfs_long(d->ifname, "speed");
	d->speed_mbps = v > 0 && v < UINT32_MAX ? (uint32_t)v : 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/device", d->ifname);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (sscanf(base, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) == 4)
		snprintf(d->pci_busid, sizeof(d->pci_busid), "%.31s", base);
}

static void tcp_dev_set(struct tcp_dev *d, const char *ifname, const struct sockaddr *sa,
			bool loopback)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->ifname, sizeof(d->ifname), "%s", ifname ? ifname : "");
	if (sa->sa_family == AF_INET) {
		d->addrlen = sizeof(struct sockaddr_in);
	} else {
		d->addrlen = sizeof(struct sockaddr_in6);
	}
	memcpy(&d->addr, sa, d->addrlen);
	((struct sockaddr_in *)(void *)&d->addr)->sin_port = 0; /* same offset for v6 */
	d->loopback = loopback;
	if (ifname) {
		snprintf(d->name, sizeof(d->name), "tcp:%s", ifname);
	} else {
		char a[TCP_ADDR_LEN];

		tcp_fmt_addr(sa, a, sizeof(a));
		snprintf(d->name, sizeof(d->name), "tcp:%.59s", a);
	}
	tcp_dev_facts(d);
}

/* Rank of an address for one interface: IPv4 best, then global IPv6, then link-local. */
static int tcp_addr_rank(const struct sockaddr *sa)
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET)
		return 3;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		return IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ? 1 : 2;
	}
	return 0;
}

static bool tcp_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

/* "lo, eth0, eth1" for messages. */
static void tcp_if_list(const struct ifaddrs *ifs, char *buf, size_t len)
{
	const struct ifaddrs *i, *j;
	size_t n = 0;

	buf[0] = '\0';
	for (i = ifs; i; i = i->ifa_next) {
		for (j = ifs; j != i; j = j->ifa_next)
			if (strcmp(j->ifa_name, i->ifa_name) == 0)
				break;
		if (j != i || n >= len)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", i->ifa_name);
	}
	if (!buf[0])
		snprintf(buf, len, "(none)");
}

/* The best address of interface `name`: 0, -ENODEV (no such interface or no IP address). */
static int tcp_dev_by_name(const struct ifaddrs *ifs, const char *name, const char *origin,
			   struct tcp_dev *d)
{
	const struct ifaddrs *i, *best = NULL;
	bool exists = false;
	char avail[512];

	for (i = ifs; i; i = i->ifa_next) {
		if (strcmp(i->ifa_name, name) != 0)
			continue;
		exists = true;
		if (tcp_addr_rank(i->ifa_addr) > tcp_addr_rank(best ? best->ifa_addr : NULL))
			best = i;
	}
	if (!best || !tcp_addr_rank(best->ifa_addr)) {
		tcp_if_list(ifs, avail, sizeof(avail));
		if (exists)
			return tcp_err(NULL, -ENODEV,
				       "tcp: interface '%s' (%s) has no IP address; interfaces: %s",
				       name, origin, avail);
		return tcp_err(NULL, -ENODEV, "tcp: no network interface '%s' (%s); available: %s",
			       name, origin, avail);
	}
	if (!(best->ifa_flags & IFF_UP))
		IBC_DBG("tcp: interface %s is down, using it anyway (%s)", name, origin);
	tcp_dev_set(d, name, best->ifa_addr, best->ifa_flags & IFF_LOOPBACK);
	return 0;
}

/* The interface that holds IP `ip`; 0, -ENOENT (not local), -EINVAL (not an IP address). */
static int tcp_dev_by_ip(const struct ifaddrs *ifs, const char *ip, struct tcp_dev *d)
{
	struct sockaddr_storage ss;
	const struct ifaddrs *i;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)(void *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return -EINVAL;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || !tcp_same_ip(i->ifa_addr, (struct sockaddr *)&ss))
			continue;
		tcp_dev_set(d, i->ifa_name, i->ifa_addr, i->ifa_flags & IFF_LOOPBACK);
		return 0;
	}
	return -ENOENT;
}

/* A comma-separated list of interface names (or local IP addresses) -> devices. */
static int tcp_devs_from_list(struct ibc_tp_ctx *ctx, const struct ifaddrs *ifs, const char *list,
			      const char *origin)
{
	const char *items[TCP_MAX_DEVS];
	char *store = NULL;
	int n, k, rc = 0;

	n = ibc_split_list(list, &store, items, TCP_MAX_DEVS);
	if (n < 0)
		return tcp_err(NULL, n == -E2BIG ? -E2BIG : -EINVAL,
			       "tcp: bad interface list '%s' (%s): %s", list, origin,
			       n == -E2BIG ? "at most 8 interfaces" : "empty item");
	for (k = 0; k < n && !rc; k++) {
		if (tcp_dev_by_ip(ifs, items[k], &ctx->devs[k]) == 0)
			continue;
		rc = tcp_dev_by_name(ifs, items[k], origin, &ctx->devs[k]);
	}
	free(store);
	if (rc)
		return rc;
	ctx->ndev = n;
	return 0;
}

/* First interface that is up, not loopback and not a container bridge, best address family. */
static void tcp_devs_auto(struct ibc_tp_ctx *ctx, const struct ifaddrs *ifs)
{
	static const char *const skip[] = {"docker", "virbr", "veth"};
	const struct ifaddrs *i, *best = NULL;
	struct sockaddr_in lo;
	size_t k;

	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		for (k = 0; k < IBC_ARRAY_SIZE(skip); k++)
			if (strncmp(i->ifa_name, skip[k], strlen(skip[k])) == 0)
				break;
		if (k < IBC_ARRAY_SIZE(skip) || tcp_addr_rank(i->ifa_addr) < 2)
			continue; /* link-local IPv6 alone is not worth choosing automatically */
		if (!best || tcp_addr_rank(i->ifa_addr) > tcp_addr_rank(best->ifa_addr))
			best = i;
	}
	if (best) {
		tcp_dev_set(&ctx->devs[0], best->ifa_name, best->ifa_addr, false);
	} else {
		memset(&lo, 0, sizeof(lo));
		lo.sin_family = AF_INET;
		lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		tcp_dev_set(&ctx->devs[0], "lo", (struct sockaddr *)&lo, true);
	}
	ctx->ndev = 1;
}

static int tcp_pick_devs(struct ibc_tp_ctx *ctx, const struct ibc_tp_config *cfg)
{
	struct ifaddrs *ifs = NULL;
	const char *env;
	int rc = 0;

	if (getifaddrs(&ifs) != 0)
		return tcp_err(NULL, -errno, "tcp: getifaddrs failed: %s", strerror(errno));
	if (cfg->nic && cfg->nic[0]) {
		rc = tcp_devs_from_list(ctx, ifs, cfg->nic, "--nic");
		goto out;
	}
	if (cfg->local_addr && cfg->local_addr[0]) {
		rc = tcp_dev_by_ip(ifs, cfg->local_addr, &ctx->devs[0]);
		if (rc == 0) {
			ctx->ndev = 1;
			goto out;
		}
		IBC_DBG("tcp: local address %s is not on any interface here, choosing another",
			cfg->local_addr);
		rc = 0;
	}
	env = getenv("IBCOLL_TCP_IF");
	if (env && env[0]) {
		rc = tcp_devs_from_list(ctx, ifs, env, "IBCOLL_TCP_IF");
		goto out;
	}
	tcp_devs_auto(ctx, ifs);
out:
	freeifaddrs(ifs);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* context */

/* Field `idx` (0-based) of a /proc/sys file of numbers, -1 when unreadable. */
static long tcp_read_proc_long(const char *path, int idx)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (idx-- >= 0)
		if (fscanf(f, "%ld", &v) != 1) {
			v = -1;
			break;
		}
	fclose(f);
	return v;
}

/* Socket buffers: Linux autotunes each socket up to net.ipv4.tcp_[rw]mem[2] (often 4-32 MiB),
 * and an explicit SO_RCVBUF turns that off. So ask for TCP_SOCKBUF only where autotuning would
 * stop short of it and net.core.[rw]mem_max lets an explicit request go further. */
static int tcp_default_sockbuf(void)
{
	static const char *const autotune[] = {"/proc/sys/net/ipv4/tcp_rmem",
					       "/proc/sys/net/ipv4/tcp_wmem"};
	static const char *const maxes[] = {"/proc/sys/net/core/rmem_max",
					    "/proc/sys/net/core/wmem_max"};
	size_t k;

	for (k = 0; k < IBC_ARRAY_SIZE(autotune); k++) {
		long a = tcp_read_proc_long(autotune[k], 2), m = tcp_read_proc_long(maxes[k], 0);

		if (a >= 0 && a < TCP_SOCKBUF && m > a)
			return TCP_SOCKBUF;
	}
	return 0;
}

/* Linux >= 4.18 caps SO_RCVLOWAT at half the receive buffer (growing the buffer when it may);
 * older kernels would let poll() wait for more than the window can ever hold. */
static int tcp_lowat_max(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major > 4 || (major == 4 && minor >= 18) ? TCP_LOWAT_MAX : 0;
}

/* cfg->options: "sockbuf=SIZE" (0 = kernel autotuning); unknown keys belong to others. */
static int tcp_parse_options(struct ibc_tp_ctx *ctx, const char *opts)
{
	const char *p = opts ? strstr(opts, "sockbuf=") : NULL;
	char val[32];
	uint64_t v;
	size_t n;

	ctx->sockbuf = tcp_default_sockbuf();
	if (!p || (p != opts && p[-1] != ','))
		return 0;
	p += strlen("sockbuf=");
	n = strcspn(p, ",");
	if (n >= sizeof(val))
		n = sizeof(val) - 1;
	memcpy(val, p, n);
	val[n] = '\0';
	if (ibc_parse_size(val, &v) || v > (1u << 30))
		return tcp_err(NULL, -EINVAL,
			       "tcp: bad option sockbuf=%s: expected a size from 0 to 1G", val);
	ctx->sockbuf = (int)v;
	return 0;
}

static int tcp_init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out)
{
	struct ibc_tp_ctx *ctx;
	int rc;

	*out = NULL;
	if (ibc_tp_config_check(cfg))
		return tcp_err(NULL, -EINVAL,
			       "tcp: init without a configuration of at least %zu bytes (cfg->size)",
			       (size_t)IBC_TP_CFG_BASE_SIZE);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return tcp_err(NULL, -ENOMEM, "tcp: out of memory");
	tcp_list_init(&ctx->conns);
	tcp_list_init(&ctx->listeners);
	tcp_list_init(&ctx->mrs);
	ctx->abort_flag = cfg->abort_flag;
	ctx->lowat_max = tcp_lowat_max();
	IBC_CHECK_GOTO(tcp_parse_options(ctx, cfg->options), rc, free_ctx);
	IBC_CHECK_GOTO(tcp_pick_devs(ctx, cfg), rc, free_ctx);
	for (int k = 0; k < ctx->ndev; k++)
		IBC_DBG("tcp: device %d: %s (%s, %u Mb/s)", k, ctx->devs[k].name,
			ctx->devs[k].link_layer, ctx->devs[k].speed_mbps);
	*out = ctx;
	return 0;

free_ctx:
	free(ctx);
	return rc;
}

static int tcp_devices(struct ibc_tp_ctx *ctx, int *ndev)
{
	*ndev = ctx->ndev;
	return 0;
}

static int tcp_check_dev(struct ibc_tp_ctx *ctx, int dev)
{
	if (dev < 0 || dev >= ctx->ndev)
		return tcp_err(ctx, -EINVAL, "tcp: device %d out of range (this context has %d)",
			       dev, ctx->ndev);
	return 0;
}

static int tcp_get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *p)
{
	struct ibc_tp_props q = {0};
	const struct tcp_dev *d;
	int rc = tcp_check_dev(ctx, dev);

	if (rc)
		return rc;
	d = &ctx->devs[dev];
	snprintf(q.name, sizeof(q.name), "%s", d->name);
	snprintf(q.pci_busid, sizeof(q.pci_busid), "%s", d->pci_busid);
	snprintf(q.link_layer, sizeof(q.link_layer), "%s", d->link_layer);
	q.speed_mbps = d->speed_mbps;
	q.mem_kinds = IBC_MEM_HOST;
	q.max_requests = TCP_MAX_REQS;
	q.caps = IBC_TP_CAP_INTERNODE;
	ibc_tp_props_put(p, &q);
	return 0;
}

static const char *tcp_last_error(struct ibc_tp_ctx *ctx)
{
	/* Without a context (init failed) the text is this module's ibc_err_get(). */
	if (!ctx)
		return ibc_err_get();
	return ctx->err[0] ? ctx->err : "no error";
}

/* ---------------------------------------------------------------------------------------- */
/* connections: creation and teardown */

static struct tcp_conn *tcp_conn_new(struct ibc_tp_ctx *ctx, int dev, bool is_send)
{
	struct tcp_conn *c;

	if (is_send) {
		struct ibc_tp_send *s = calloc(1, sizeof(*s));

		c = s ? &s->c : NULL;
	} else {
		struct ibc_tp_recv *r = calloc(1, sizeof(*r));

		c = r ? &r->c : NULL;
	}
	if (!c)
		return NULL;
	tcp_list_init(&c->link);
	c->ctx = ctx;
	c->dev = dev;
	c->is_send = is_send;
	c->fd = -1;
	return c;
}

/* Unlink and free; 0 or the error of close(). */
static int tcp_conn_free(struct tcp_conn *c)
{
	int rc = 0;

	tcp_list_del(&c->link);
	if (c->fd >= 0 && close(c->fd) != 0)
		rc = tcp_err(c->ctx, -errno, "%s: close of connection to %s failed: %s",
			     tcp_devname(c), c->peer, strerror(errno));
	free(c->dbuf);
	/* c is the first member of ibc_tp_send / ibc_tp_recv: this frees the allocation. */
	free(c);
	return rc;
}

static void tcp_hello_fill(struct tcp_hello *h, uint16_t kind, uint64_t nonce)
{
	h->magic = htonl(TCP_MAGIC);
	h->version = htons(TCP_VERSION);
	h->kind = htons(kind);
	h->nonce = nonce; /* opaque bytes, echoed as they came */
}

/* Check a received hello; 0 or -EPROTO (with the connection failed), 1 = not ibcoll at all. */
static int tcp_hello_check(struct tcp_conn *c, uint16_t kind)
{
	const struct tcp_hello *h = &c->hello;

	if (ntohl(h->magic) != TCP_MAGIC)
		return 1;
	if (ntohs(h->version) != TCP_VERSION)
		return tcp_conn_fail(c, -EPROTO,
				     "peer %s speaks tcp transport protocol %u, this side %u: "
				     "run the same ibcoll version everywhere",
				     c->peer, ntohs(h->version), TCP_VERSION);
	if (ntohs(h->kind) != kind || h->nonce != c->nonce)
		return tcp_conn_fail(c, -EPROTO,
				     "peer %s answered for another listener (stale handle or "
				     "reused port?)",
				     c->peer);
	return 0;
}

/* Move the handshake buffer; 0 when complete, -EAGAIN, or an error (connection failed). */
static int tcp_hello_io(struct tcp_conn *c, bool out)
{
	char *buf = (char *)&c->hello;
	ssize_t n;

	while (c->hello_off < sizeof(c->hello)) {
		if (out)
			n = send(c->fd, buf + c->hello_off, sizeof(c->hello) - c->hello_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			n = recv(c->fd, buf + c->hello_off, sizeof(c->hello) - c->hello_off,
				 MSG_DONTWAIT);
		if (n > 0) {
			c->hello_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		return tcp_conn_io_fail(c, n == 0 ? 0 : errno,
					out ? "handshake send to" : "handshake recv from");
	}
	c->hello_off = 0;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* listen / accept */

static int tcp_listen(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **out)
{
	struct ibc_tp_listener *l;
	struct tcp_handle h;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct tcp_dev *d;
	int rc;

	*out = NULL;
	rc = tcp_check_dev(ctx, dev);
	if (rc)
		return rc;
	d = &ctx->devs[dev];
	l = calloc(1, sizeof(*l));
	if (!l)
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	tcp_list_init(&l->link);
	l->ctx = ctx;
	l->dev = dev;
	l->fd = socket(d->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		rc = tcp_err(ctx, -errno, "%s: socket failed: %s", d->name, strerror(errno));
		goto free_l;
	}
	tcp_set_bufs(ctx, l->fd); /* accepted sockets inherit them, window scaling included */
	if (bind(l->fd, (const struct sockaddr *)&d->addr, d->addrlen) != 0 ||
	    listen(l->fd, 128) != 0 || getsockname(l->fd, (struct sockaddr *)&ss, &len) != 0) {
		tcp_fmt_addr((const struct sockaddr *)&d->addr, l->local, sizeof(l->local));
		rc = tcp_err(ctx, -errno, "%s: cannot listen on %s: %s", d->name, l->local,
			     strerror(errno));
		goto close_fd;
	}
	tcp_fmt_addr((struct sockaddr *)&ss, l->local, sizeof(l->local));
	l->nonce = ibc_random_u64();

	memset(&h, 0, sizeof(h));
	h.magic = htonl(TCP_MAGIC);
	h.version = htons(TCP_VERSION);
	h.nonce = l->nonce;
	snprintf(h.ifname, sizeof(h.ifname), "%s", d->ifname);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;

		h.family = htons(4);
		h.port = in->sin_port;
		memcpy(h.addr, &in->sin_addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;

		h.family = htons(6);
		h.port = in6->sin6_port;
		h.scope_id = htonl(in6->sin6_scope_id);
		memcpy(h.addr, &in6->sin6_addr, 16);
	}
	memset(handle, 0, IBC_TP_HANDLE_BYTES);
	memcpy(handle, &h, sizeof(h));
	tcp_list_add(&ctx->listeners, &l->link);
	*out = l;
	return 0;

close_fd:
	close(l->fd);
free_l:
	free(l);
	return rc;
}

/* Take the next connection off the backlog; 0, -EAGAIN, or an error. */
static int tcp_accept_start(struct ibc_tp_listener *l)
{
	struct ibc_tp_ctx *ctx = l->ctx;
	struct tcp_conn *c;
	int fd;

	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return -EAGAIN;
		return tcp_err(ctx, -errno, "%s: accept on %s failed: %s", ctx->devs[l->dev].name,
			       l->local, strerror(errno));
	}
	c = tcp_conn_new(ctx, l->dev, false);
	if (!c) {
		close(fd);
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	}
	c->fd = fd;
	c->state = TCP_CONN_HELLO;
	c->nonce = l->nonce;
	tcp_set_nodelay(fd);
	tcp_fd_names(fd, c->local, c->peer);
	l->pending = tcp_container_of(c, struct ibc_tp_recv, c);
	return 0;
}

/* Drive the pending accepted connection's handshake; 0 when up, -EAGAIN, or an error. */
static int tcp_accept_step(struct ibc_tp_listener *l)
{
	struct tcp_conn *c = &l->pending->c;
	int rc;

	if (c->state == TCP_CONN_HELLO) {
		rc = tcp_hello_io(c, false);
		if (rc)
			return rc;
		rc = tcp_hello_check(c, TCP_HELLO);
		if (rc == 1) { /* not an ibcoll peer (a port scan?): drop it, keep listening */
			IBC_DBG("tcp: %s: dropping a stray connection from %s", l->local, c->peer);
			tcp_conn_free(c);
			l->pending = NULL;
			return -EAGAIN;
		}
		if (rc)
			return rc;
		tcp_hello_fill(&c->hello, TCP_HELLO_ACK, c->nonce);
		c->state = TCP_CONN_ACK;
	}
	rc = tcp_hello_io(c, true);
	if (rc)
		return rc;
	c->state = TCP_CONN_UP;
	return 0;
}

static int tcp_accept(struct ibc_tp_listener *l, struct ibc_tp_recv **out)
{
	struct ibc_tp_ctx *ctx = l->ctx;
	struct tcp_conn *c;
	int rc;

	*out = NULL;
	l->accepting = true;
	do {
		if (!l->pending) {
			rc = tcp_accept_start(l);
			if (rc)
				break;
		}
		rc = tcp_accept_step(l);
	} while (rc == -EAGAIN && !l->pending); /* a stray was dropped: try the next one */
	if (rc == -EAGAIN) {
		if (!tcp_aborted(ctx))
			return -EAGAIN;
		rc = tcp_err(ctx, -ECANCELED, "%s: accept on %s cancelled: another rank failed",
			     ctx->devs[l->dev].name, l->local);
	}
	l->accepting = false;
	if (rc) {
		if (l->pending) {
			c = &l->pending->c;
			if (c->err)
				tcp_conn_report(c);
			tcp_conn_free(c);
			l->pending = NULL;
		}
		return rc;
	}
	c = &l->pending->c;
	l->pending = NULL;
	tcp_list_add(&ctx->conns, &c->link);
	ctx->epoch++;
	*out = tcp_container_of(c, struct ibc_tp_recv, c);
	return 0;
}

static int tcp_close_listen(struct ibc_tp_listener *l)
{
	int rc = 0;

	if (!l)
		return 0;
	tcp_list_del(&l->link);
	if (l->pending)
		rc = tcp_conn_free(&l->pending->c);
	if (close(l->fd) != 0 && !rc)
		rc = tcp_err(l->ctx, -errno, "tcp: close of listener %s failed: %s", l->local,
			     strerror(errno));
	free(l);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* connect */

static int tcp_handle_addr(struct ibc_tp_ctx *ctx, const void *handle, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	struct tcp_handle h;

	memcpy(&h, handle, sizeof(h));
	memset(ss, 0, sizeof(*ss));
	if (ntohl(h.magic) != TCP_MAGIC)
		return tcp_err(ctx, -EINVAL,
			       "tcp: connect with a handle that is not a tcp "
			       "listener's (another transport's, or corrupted)");
	if (ntohs(h.version) != TCP_VERSION)
		return tcp_err(ctx, -EPROTO,
			       "tcp: listener speaks tcp transport protocol %u, this side %u: run "
			       "the same ibcoll version everywhere",
			       ntohs(h.version), TCP_VERSION);
	if (ntohs(h.family) == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;

		in->sin_family = AF_INET;
		in->sin_port = h.port;
		memcpy(&in->sin_addr, h.addr, 4);
		*len = sizeof(*in);
	} else if (ntohs(h.family) == 6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = h.port;
		in6->sin6_scope_id = ntohl(h.scope_id);
		memcpy(&in6->sin6_addr, h.addr, 16);
		*len = sizeof(*in6);
	} else {
		return tcp_err(ctx, -EINVAL, "tcp: handle has unknown address family %u",
			       ntohs(h.family));
	}
	return 0;
}

static struct tcp_conn *tcp_find_connecting(struct ibc_tp_ctx *ctx, int dev, const void *handle)
{
	struct tcp_link *p;

	for (p = ctx->conns.next; p != &ctx->conns; p = p->next) {
		struct tcp_conn *c = tcp_container_of(p, struct tcp_conn, link);

		if (c->is_send && c->state != TCP_CONN_UP && c->dev == dev &&
		    memcmp(c->key, handle, IBC_TP_HANDLE_BYTES) == 0)
			return c;
	}
	return NULL;
}

/* Socket + non-blocking connect(); the connection joins ctx->conns in state CONNECTING. */
static int tcp_connect_start(struct ibc_tp_ctx *ctx, int dev, const void *handle,
			     struct tcp_conn **out)
{
	const struct tcp_dev *d = &ctx->devs[dev];
	struct sockaddr_storage ss;
	struct tcp_handle h;
	struct tcp_conn *c;
	socklen_t len = 0;
	int rc, one = 1;

	rc = tcp_handle_addr(ctx, handle, &ss, &len);
	if (rc)
		return rc;
	c = tcp_conn_new(ctx, dev, true);
	if (!c)
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	memcpy(c->key, handle, IBC_TP_HANDLE_BYTES);
	memcpy(&h, handle, sizeof(h));
	c->nonce = h.nonce;
	tcp_fmt_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rc = tcp_err(ctx, -errno, "%s: socket failed: %s", d->name, strerror(errno));
		goto free_c;
	}
	tcp_set_bufs(ctx, c->fd);
	tcp_set_nodelay(c->fd);
	/* Leave through the chosen interface (multi-rail); loopback addresses cannot reach out.
	 * The port is picked at connect time, so the ephemeral range is shared per destination. */
	(void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (!d->loopback && d->addr.ss_family == ss.ss_family &&
	    bind(c->fd, (const struct sockaddr *)&d->addr, d->addrlen) != 0)
		IBC_DBG("tcp: %s: bind before connect failed (%s), letting routing choose", d->name,
			strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
		rc = tcp_err(ctx, -errno, "%s: connect to %s failed: %s", d->name, c->peer,
			     strerror(errno));
		goto free_c;
	}
	c->state = TCP_CONN_CONNECTING;
	tcp_list_add(&ctx->conns, &c->link);
	*out = c;
	return 0;

free_c:
	tcp_conn_free(c);
	return rc;
}

/* Drive a pending connect; 0 when up, -EAGAIN, or an error (connection failed). */
static int tcp_connect_step(struct tcp_conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
	int err = 0, rc;
	socklen_t len = sizeof(err);

	if (c->state == TCP_CONN_CONNECTING) {
		if (poll(&pfd, 1, 0) == 0)
			return -EAGAIN;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return -EAGAIN;
		if (err)
			return tcp_conn_fail(c, -err, "connect to %s failed: %s", c->peer,
					     strerror(err));
		tcp_fd_names(c->fd, c->local, NULL);
		tcp_hello_fill(&c->hello, TCP_HELLO, c->nonce);
		c->state = TCP_CONN_HELLO;
	}
	if (c->state == TCP_CONN_HELLO) {
		rc = tcp_hello_io(c, true);
		if (rc)
			return rc;
		c->state = TCP_CONN_ACK;
	}
	rc = tcp_hello_io(c, false);
	if (rc)
		return rc;
	rc = tcp_hello_check(c, TCP_HELLO_ACK);
	if (rc == 1)
		return tcp_conn_fail(c, -EPROTO, "%s is not an ibcoll tcp listener", c->peer);
	if (rc)
		return rc;
	c->state = TCP_CONN_UP;
	return 0;
}

static int tcp_connect(struct ibc_tp_ctx *ctx, int dev, const void *handle,
		       struct ibc_tp_send **out)
{
	struct tcp_conn *c;
	int rc;

	*out = NULL;
	rc = tcp_check_dev(ctx, dev);
	if (rc)
		return rc;
	c = tcp_find_connecting(ctx, dev, handle);
	if (!c) {
		rc = tcp_connect_start(ctx, dev, handle, &c);
		if (rc)
			return rc;
	}
	rc = tcp_connect_step(c);
	if (rc == -EAGAIN) {
		if (!tcp_aborted(ctx))
			return -EAGAIN;
		tcp_conn_fail(c, -ECANCELED, "connect to %s cancelled: another rank failed",
			      c->peer);
		rc = -ECANCELED;
	}
	if (rc) {
		tcp_conn_report(c);
		tcp_conn_free(c);
		return rc;
	}
	ctx->epoch++;
	*out = tcp_container_of(c, struct ibc_tp_send, c);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* memory registration */

static int tcp_reg_mr(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		      struct ibc_tp_mr **out)
{
	struct ibc_tp_mr *mr;
	int rc;

	*out = NULL;
	rc = tcp_check_dev(ctx, dev);
	if (rc)
		return rc;
	if (buf->kind != IBC_MEM_HOST)
		return tcp_err(ctx, -ENOTSUP,
			       "tcp: %s cannot register %s memory: sockets move host memory only "
			       "(use --mem host, or the verbs/gdr transport for GPU memory)",
			       ctx->devs[dev].name,
			       buf->kind == IBC_MEM_CUDA     ? "CUDA"
			       : buf->kind == IBC_MEM_DMABUF ? "dma-buf"
							     : "unknown");
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
	mr->ctx = ctx;
	mr->addr = (uintptr_t)buf->addr;
	mr->len = buf->len;
	tcp_list_add(&ctx->mrs, &mr->link);
	*out = mr;
	return 0;
}

static int tcp_dereg_mr(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr)
{
	if (!mr)
		return 0;
	tcp_list_del(&mr->link);
	free(mr);
	return 0;
}

static int tcp_check_mr(struct tcp_conn *c, const void *data, size_t size,
			const struct ibc_tp_mr *mr)
{
	uintptr_t a = (uintptr_t)data;

	if (size == 0)
		return 0;
	if (!mr)
		return tcp_err(c->ctx, -EINVAL, "%s: %s of %zu bytes without a memory registration",
			       tcp_devname(c), c->is_send ? "post_send" : "post_recv", size);
	if (mr->ctx != c->ctx || a < mr->addr || a - mr->addr > mr->len ||
	    size > mr->len - (a - mr->addr))
		return tcp_err(c->ctx, -EINVAL,
			       "%s: %s buffer %p + %zu lies outside its memory registration "
			       "%p + %zu%s",
			       tcp_devname(c), c->is_send ? "post_send" : "post_recv", data, size,
			       (void *)mr->addr, mr->len,
			       mr->ctx != c->ctx ? " (of another context)" : "");
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* data path */

static struct ibc_tp_req *tcp_slot(struct tcp_conn *c, unsigned i)
{
	return &c->reqs[i % TCP_MAX_REQS];
}

static void tcp_req_done(struct tcp_conn *c, struct ibc_tp_req *r, int err)
{
	r->state = TCP_REQ_DONE;
	r->err = err;
	c->prog++;
	c->ctx->epoch++;
}

/* Write queued messages, header and payload of several at once, until the socket is full. */
static void tcp_send_progress(struct tcp_conn *c)
{
	struct iovec iov[TCP_MAX_IOV];
	struct msghdr msg = {.msg_iov = iov};
	size_t want, left;
	unsigned i;
	ssize_t n;

	while (c->prog != c->tail && !c->err) {
		msg.msg_iovlen = 0;
		want = 0;
		for (i = c->prog; i != c->tail && msg.msg_iovlen + 2 <= TCP_MAX_IOV; i++) {
			struct ibc_tp_req *r = tcp_slot(c, i);
			size_t off = r->off;

			if (off < sizeof(r->hdr)) {
				iov[msg.msg_iovlen].iov_base = (char *)&r->hdr + off;
				iov[msg.msg_iovlen++].iov_len = sizeof(r->hdr) - off;
				want += sizeof(r->hdr) - off;
				off = 0;
			} else {
				off -= sizeof(r->hdr);
			}
			if (r->size > off) {
				iov[msg.msg_iovlen].iov_base = (char *)r->data + off;
				iov[msg.msg_iovlen++].iov_len = r->size - off;
				want += r->size - off;
			}
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tcp_conn_io_fail(c, errno, "send to");
			return;
		}
		for (left = (size_t)n; left;) {
			struct ibc_tp_req *r = tcp_slot(c, c->prog);
			size_t rest = sizeof(r->hdr) + r->size - r->off;

			if (left < rest) {
				r->off += left;
				break;
			}
			r->off += rest;
			left -= rest;
			tcp_req_done(c, r, 0);
		}
		if ((size_t)n < want)
			return; /* the socket is full: the next call would say EAGAIN */
	}
}

/* Read and drop the payload of a refused message; false when the socket has nothing more. */
static bool tcp_recv_discard(struct tcp_conn *c)
{
	ssize_t n;

	if (!c->dbuf) {
		c->dbuf = malloc(TCP_DISCARD_BYTES);
		if (!c->dbuf) {
			tcp_conn_fail(c, -ENOMEM, "out of memory");
			return false;
		}
	}
	n = recv(c->fd, c->dbuf, IBC_MIN(c->discard, (uint64_t)TCP_DISCARD_BYTES), MSG_DONTWAIT);
	if (n > 0) {
		c->discard -= (uint64_t)n;
		return true;
	}
	if (n < 0 && errno == EINTR)
		return true;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		tcp_conn_io_fail(c, n == 0 ? 0 : errno, "recv from");
	return false;
}

/* Match the complete header in c->rhdr against the oldest open receive. */
static void tcp_recv_match(struct tcp_conn *c, struct ibc_tp_req *r)
{
	uint32_t tag = ntohl(c->rhdr.tag);
	uint64_t size = be64toh(c->rhdr.size);

	c->rhdr_got = 0;
	r->got_tag = tag;
	r->got_size = size;
	if (tag != r->tag || size > r->size) {
		c->discard = size;
		tcp_req_done(c, r, tag != r->tag ? -EPROTO : -EMSGSIZE);
		return;
	}
	r->matched = true;
	r->len = (size_t)size;
	r->off = 0;
}

/* Read headers and payloads into the open receives until the socket is empty. */
static void tcp_recv_progress(struct tcp_conn *c)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	struct ibc_tp_req *r;
	size_t need;
	ssize_t n;

	while (!c->err) {
		if (c->discard) {
			if (!tcp_recv_discard(c))
				return;
			continue;
		}
		r = c->prog != c->tail ? tcp_slot(c, c->prog) : NULL;
		if (r && r->matched && r->off == r->len) {
			tcp_req_done(c, r, 0);
			continue;
		}
		if (!r || !r->matched) {
			if (c->rhdr_got == sizeof(c->rhdr)) {
				if (!r)
					return; /* a header waits for the next post_recv */
				tcp_recv_match(c, r);
				continue;
			}
			/* the next header; its payload goes straight to the buffer after matching
			 */
			iov[0].iov_base = (char *)&c->rhdr + c->rhdr_got;
			iov[0].iov_len = sizeof(c->rhdr) - c->rhdr_got;
			msg.msg_iovlen = 1;
		} else {
			/* payload straight into the caller's buffer, then the next header */
			iov[0].iov_base = (char *)r->data + r->off;
			iov[0].iov_len = r->len - r->off;
			iov[1].iov_base = (char *)&c->rhdr + c->rhdr_got;
			iov[1].iov_len = sizeof(c->rhdr) - c->rhdr_got;
			msg.msg_iovlen = 2;
		}
		n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			tcp_conn_io_fail(c, n == 0 ? 0 : errno, "recv from");
			return;
		}
		if (msg.msg_iovlen == 1) {
			c->rhdr_got += (size_t)n;
			continue;
		}
		need = r->len - r->off;
		r->off += IBC_MIN((size_t)n, need);
		if ((size_t)n > need)
			c->rhdr_got += (size_t)n - need;
	}
}

static void tcp_progress(struct tcp_conn *c)
{
	if (c->is_send)
		tcp_send_progress(c);
	else
		tcp_recv_progress(c);
}

static int tcp_post(struct tcp_conn *c, void *data, size_t size, uint32_t tag,
		    const struct ibc_tp_mr *mr, struct ibc_tp_req **out)
{
	struct ibc_tp_req *r;
	int rc;

	*out = NULL;
	if (c->err)
		return tcp_conn_report(c);
	rc = tcp_check_mr(c, data, size, mr);
	if (rc)
		return rc;
	if (c->tail - c->head == TCP_MAX_REQS)
		return -EAGAIN;
	r = tcp_slot(c, c->tail);
	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->data = data;
	r->size = size;
	r->tag = tag;
	r->state = TCP_REQ_PENDING;
	if (c->is_send) {
		r->hdr.tag = htonl(tag);
		r->hdr.size = htobe64((uint64_t)size);
	}
	c->tail++;
	*out = r;
	return 0;
}

static int tcp_post_send(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **req)
{
	int rc = tcp_post(&s->c, (void *)data, size, tag, mr, req);

	if (rc == 0)
		tcp_send_progress(&s->c); /* start now: latency, and the peer may be waiting */
	return rc;
}

static int tcp_post_recv(struct ibc_tp_recv *rv, void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **req)
{
	return tcp_post(&rv->c, data, size, tag, mr, req);
}

/* Release a completed or failed slot; the ring's head moves past released slots. */
static void tcp_req_free(struct tcp_conn *c, struct ibc_tp_req *r)
{
	r->state = TCP_REQ_FREE;
	while (c->head != c->tail && tcp_slot(c, c->head)->state == TCP_REQ_FREE)
		c->head++;
	if ((int)(c->prog - c->head) < 0) /* only on a failed connection */
		c->prog = c->head;
}

static int tcp_req_error(struct tcp_conn *c, const struct ibc_tp_req *r)
{
	if (r->err == -EPROTO)
		return tcp_err(c->ctx, r->err,
			       "%s (recv %s): tag mismatch: expected %u got %u (message of %llu "
			       "bytes from %s dropped)",
			       tcp_devname(c), c->local, r->tag, r->got_tag,
			       (unsigned long long)r->got_size, c->peer);
	return tcp_err(c->ctx, r->err,
		       "%s (recv %s): message of %llu bytes (tag %u) from %s is larger than the "
		       "posted receive of %zu bytes (dropped)",
		       tcp_devname(c), c->local, (unsigned long long)r->got_size, r->got_tag,
		       c->peer, r->size);
}

static int tcp_test(struct ibc_tp_req *r, int *done, size_t *size)
{
	struct tcp_conn *c = r->conn;
	int rc = 0;

	*done = 0;
	if (r->state == TCP_REQ_FREE)
		return tcp_err(c->ctx, -EINVAL, "tcp: test of a request that already completed");
	if (r->state == TCP_REQ_PENDING && !c->err)
		tcp_progress(c);
	if (r->state == TCP_REQ_PENDING && !c->err && tcp_aborted(c->ctx))
		tcp_conn_fail(c, -ECANCELED, "cancelled: another rank failed");
	if (r->state == TCP_REQ_DONE) {
		if (r->err)
			rc = tcp_req_error(c, r);
		else if (size)
			*size = c->is_send ? r->size : r->len;
	} else if (c->err) {
		rc = tcp_conn_report(c);
	} else {
		return 0;
	}
	*done = 1;
	tcp_req_free(c, r);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* sleeping: epoch + wait */

static uint64_t tcp_epoch(struct ibc_tp_ctx *ctx)
{
	return ctx->epoch;
}

static int tcp_pfd_add(struct ibc_tp_ctx *ctx, size_t *n, int fd, short events)
{
	if (*n == ctx->npfds_cap) {
		size_t cap = ctx->npfds_cap ? 2 * ctx->npfds_cap : 16;
		struct pollfd *p = realloc(ctx->pfds, cap * sizeof(*p));

		if (!p)
			return tcp_err(ctx, -ENOMEM, "tcp: out of memory");
		ctx->pfds = p;
		ctx->npfds_cap = cap;
	}
	ctx->pfds[*n].fd = fd;
	ctx->pfds[*n].events = events;
	ctx->pfds[*n].revents = 0;
	(*n)++;
	return 0;
}

/* What would a connection wait for: 0 nothing, POLLIN/POLLOUT, or -1 = ready right now. */
static int tcp_conn_events(const struct tcp_conn *c)
{
	if (c->state == TCP_CONN_CONNECTING)
		return POLLOUT;
	if (c->state != TCP_CONN_UP)
		return (c->state == TCP_CONN_HELLO) == c->is_send ? POLLOUT : POLLIN;
	if (c->prog == c->tail)
		return 0;
	if (c->err)
		return -1;
	if (c->is_send)
		return POLLOUT;
	if (!c->discard && c->rhdr_got == sizeof(c->rhdr) &&
	    !c->reqs[c->prog % TCP_MAX_REQS].matched)
		return -1;
	return POLLIN;
}

/* A receiver in the middle of a large payload sleeps until much of it is there, not until
 * the next segment: one wakeup per TCP_LOWAT_MAX bytes instead of one per 64 KiB. The kernel
 * caps the value at half the receive buffer, and end of file or an error wake it anyway. */
static void tcp_set_lowat(struct tcp_conn *c)
{
	const struct ibc_tp_req *r = tcp_slot(c, c->prog);
	int want = 1;

	if (c->state == TCP_CONN_UP && !c->discard && c->prog != c->tail && r->matched)
		want = (int)IBC_MIN(r->len - r->off, (size_t)c->ctx->lowat_max);
	if (want < 1)
		want = 1;
	if (want == (c->lowat ? c->lowat : 1))
		return;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) == 0)
		c->lowat = want;
}

/* Fill ctx->pfds; 1 when something is ready without waiting. */
static int tcp_collect(struct ibc_tp_ctx *ctx, size_t *n)
{
	struct tcp_link *p;
	int ev, rc = 0;

	*n = 0;
	for (p = ctx->conns.next; p != &ctx->conns && !rc; p = p->next) {
		struct tcp_conn *c = tcp_container_of(p, struct tcp_conn, link);

		ev = tcp_conn_events(c);
		if (ev < 0)
			return 1;
		if (ev == POLLIN)
			tcp_set_lowat(c);
		if (ev)
			rc = tcp_pfd_add(ctx, n, c->fd, (short)ev);
	}
	for (p = ctx->listeners.next; p != &ctx->listeners && !rc; p = p->next) {
		struct ibc_tp_listener *l = tcp_container_of(p, struct ibc_tp_listener, link);

		if (!l->accepting)
			continue;
		if (l->pending)
			rc = tcp_pfd_add(ctx, n, l->pending->c.fd,
					 (short)tcp_conn_events(&l->pending->c));
		else
			rc = tcp_pfd_add(ctx, n, l->fd, POLLIN);
	}
	return rc;
}

static int tcp_wait(struct ibc_tp_ctx *ctx, uint64_t epoch, int timeout_ms)
{
	uint64_t end = ibc_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	int rc, slice;
	size_t n;

	if (timeout_ms == 0) /* the engine disarms: nothing to wait for */
		return 0;
	for (;;) {
		if (ctx->epoch != epoch || tcp_aborted(ctx))
			return 0;
		rc = tcp_collect(ctx, &n);
		if (rc)
			return rc > 0 ? 0 : rc;
		slice = TCP_WAIT_SLICE_MS;
		if (timeout_ms >= 0) {
			uint64_t now = ibc_now_ns();

			if (now >= end)
				return 0;
			slice = (int)IBC_MIN((end - now + 999999) / 1000000, (uint64_t)slice);
		}
		rc = poll(ctx->pfds, (nfds_t)n, slice);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return tcp_err(ctx, -errno, "tcp: poll failed: %s", strerror(errno));
		if (timeout_ms == 0)
			return 0;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* counters, teardown */

static int tcp_port_counters(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_counters *cnt)
{
	static const struct {
		const char *file;
		size_t off;
	} map[] = {
	    {"statistics/tx_bytes", offsetof(struct ibc_tp_counters, xmit_bytes)},
	    {"statistics/rx_bytes", offsetof(struct ibc_tp_counters, rcv_bytes)},
	    {"statistics/rx_errors", offsetof(struct ibc_tp_counters, rcv_errors)},
	    {"statistics/tx_dropped", offsetof(struct ibc_tp_counters, xmit_discards)},
	};
	const struct tcp_dev *d;
	size_t k;
	long v;
	int rc = tcp_check_dev(ctx, dev);

	if (rc)
		return rc;
	d = &ctx->devs[dev];
	if (!d->ifname[0])
		return tcp_err(ctx, -ENOTSUP, "%s: no interface name, no counters", d->name);
	memset(cnt, 0, sizeof(*cnt));
	for (k = 0; k < IBC_ARRAY_SIZE(map); k++) {
		uint64_t u;

		v = tcp_read_sysfs_long(d->ifname, map[k].file);
		if (v < 0)
			return tcp_err(ctx, -ENOTSUP, "%s: cannot read /sys/class/net/%s/%s",
				       d->name, d->ifname, map[k].file);
		u = (uint64_t)v;
		memcpy((char *)cnt + map[k].off, &u, sizeof(u));
	}
	return 0;
}

static int tcp_close_send(struct ibc_tp_send *s)
{
	return s ? tcp_conn_free(&s->c) : 0;
}

static int tcp_close_recv(struct ibc_tp_recv *r)
{
	return r ? tcp_conn_free(&r->c) : 0;
}

/* Release everything the caller did not: connections, listeners, registrations. */
static int tcp_fini(struct ibc_tp_ctx *ctx)
{
	int rc = 0, r;

	if (!ctx)
		return 0;
	while (ctx->conns.next != &ctx->conns) {
		r = tcp_conn_free(tcp_container_of(ctx->conns.next, struct tcp_conn, link));
		if (r && !rc)
			rc = r;
	}
	while (ctx->listeners.next != &ctx->listeners) {
		r = tcp_close_listen(
		    tcp_container_of(ctx->listeners.next, struct ibc_tp_listener, link));
		if (r && !rc)
			rc = r;
	}
	while (ctx->mrs.next != &ctx->mrs)
		tcp_dereg_mr(ctx, tcp_container_of(ctx->mrs.next, struct ibc_tp_mr, link));
	free(ctx->pfds);
	free(ctx);
	return rc;
}

const struct ibc_tp_ops ibc_tp_tcp_ops = {
    .abi_major = IBC_TP_ABI_MAJOR,
    .ops_size = sizeof(struct ibc_tp_ops),
    .name = "tcp",
    .description = "TCP sockets between hosts, namespaces or processes (host memory)",
    .init = tcp_init,
    .devices = tcp_devices,
    .get_props = tcp_get_props,
    .listen = tcp_listen,
    .connect = tcp_connect,
    .accept = tcp_accept,
    .reg_mr = tcp_reg_mr,
    .dereg_mr = tcp_dereg_mr,
    .post_send = tcp_post_send,
    .post_recv = tcp_post_recv,
    .test = tcp_test,
    .close_send = tcp_close_send,
    .close_recv = tcp_close_recv,
    .close_listen = tcp_close_listen,
    .fini = tcp_fini,
    .last_error = tcp_last_error,
    .epoch = tcp_epoch,
    .wait = tcp_wait,
    .port_counters = tcp_port_counters,
};
