/* SPDX-License-Identifier: MIT */
/*
 * tcp.c - the tcp transport: stream sockets between hosts, network namespaces or processes.
 *
 * Devices are IP interfaces (cfg->nic, else IBCOLL_TCP_IF, else the address this rank used to
 * reach the bootstrap root, else the first non-loopback interface that is up, else 127.0.0.1).
 *
 * Wire format (all integers big-endian):
 *   handshake  connector -> listener  hello {magic, version = 2, kind = 1, nonce}
 *              listener  -> connector hello {magic, version, kind = 2, nonce}
 *   message    header {tag u32, flags u32 = 0, size u64} followed by size bytes of payload
 * The nonce comes from the listener's handle, so a connection that reaches the wrong listener
 * (a stale handle, a reused port) is refused instead of carrying another job's data. After the
 * hello, both sides prove the job key (cfg->job_key) with common/ibc_auth.h's challenge-response
 * (context "ibcoll-tcp-1", the listener is the server); a connection that does not within
 * IBC_AUTH_DEADLINE_MS of its accept is dropped and logged, and the listener goes on.
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
 *
 * Files: this one holds the vtable, init/fini, device selection, properties and counters;
 * tcp_conn.c the connections, tcp_data.c the data path; tcp_int.h what they share.
 */
#include "tcp_int.h"
#include "ibc_sysfs.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/utsname.h>

/* ---------------------------------------------------------------------------------------- */
/* device selection */

/* Fill the sysfs facts of an interface (below cfg->sysfs_root, else IBCOLL_SYSFS_ROOT): link
 * layer, speed, PCI bus id. A fact that cannot be read stays unknown. */
static void tcp_dev_facts(const char *root, struct tcp_dev *d)
{
	long v;

	snprintf(d->link_layer, sizeof(d->link_layer), "%s", d->loopback ? "loopback" : "Ethernet");
	if (!d->ifname[0])
		return;
	if (ibc_sysfs_read_long(root, &v, "class/net/%s/type", d->ifname) == 0 &&
	    v == 32) /* ARPHRD_INFINIBAND: IPoIB */
		snprintf(d->link_layer, sizeof(d->link_layer), "InfiniBand");
	if (ibc_sysfs_read_long(root, &v, "class/net/%s/speed", d->ifname) == 0 && v > 0 &&
	    v < UINT32_MAX)
		d->speed_mbps = (uint32_t)v;
	(void)ibc_sysfs_pci_busid(root, d->pci_busid, sizeof(d->pci_busid), "class/net/%s/device",
				  d->ifname);
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

		ibc_sock_fmt_addr(sa, a, sizeof(a));
		snprintf(d->name, sizeof(d->name), "tcp:%.59s", a);
	}
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

	if (ibc_sock_parse_ip(ip, &ss))
		return -EINVAL;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || !ibc_sock_same_ip(i->ifa_addr, (struct sockaddr *)&ss))
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
	env = getenv("IBCOLL_TCP_IF");
	if (env && env[0]) {
		rc = tcp_devs_from_list(ctx, ifs, env, "IBCOLL_TCP_IF");
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

int tcp__init(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **out)
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
	ctx->sysfs_root = IBC_TP_CFG_HAS(cfg, sysfs_root) ? cfg->sysfs_root : NULL;
	if (IBC_TP_CFG_HAS(cfg, job_key_len) && cfg->job_key && cfg->job_key_len) {
		ctx->key.len = IBC_MIN(cfg->job_key_len, sizeof(ctx->key.bytes));
		memcpy(ctx->key.bytes, cfg->job_key, ctx->key.len);
	}
	ctx->lowat_max = tcp_lowat_max();
	IBC_CHECK_GOTO(tcp_parse_options(ctx, cfg->options), rc, free_ctx);
	IBC_CHECK_GOTO(tcp_pick_devs(ctx, cfg), rc, free_ctx);
	for (int k = 0; k < ctx->ndev; k++) {
		tcp_dev_facts(ctx->sysfs_root, &ctx->devs[k]);
		IBC_DBG("tcp: device %d: %s (%s, %u Mb/s)", k, ctx->devs[k].name,
			ctx->devs[k].link_layer, ctx->devs[k].speed_mbps);
	}
	*out = ctx;
	return 0;

free_ctx:
	free(ctx);
	return rc;
}

int tcp__devices(struct ibc_tp_ctx *ctx, int *ndev)
{
	*ndev = ctx->ndev;
	return 0;
}

int tcp__get_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *p)
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

const char *tcp__last_error(struct ibc_tp_ctx *ctx)
{
	/* Without a context (init failed) the text is this module's ibc_err_get(). */
	if (!ctx)
		return ibc_err_get();
	return ctx->err[0] ? ctx->err : "no error";
}

/* ---------------------------------------------------------------------------------------- */
/* counters, teardown */

int tcp__port_counters(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_counters *cnt)
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
	uint64_t u;
	int rc = tcp_check_dev(ctx, dev);

	if (rc)
		return rc;
	d = &ctx->devs[dev];
	if (!d->ifname[0])
		return tcp_err(ctx, -ENOTSUP, "%s: no interface name, no counters", d->name);
	memset(cnt, 0, sizeof(*cnt));
	for (k = 0; k < IBC_ARRAY_SIZE(map); k++) {
		if (ibc_sysfs_read_u64(ctx->sysfs_root, &u, "class/net/%s/%s", d->ifname,
				       map[k].file))
			return tcp_err(ctx, -ENOTSUP, "%s: cannot read %s/class/net/%s/%s", d->name,
				       ctx->sysfs_root ? ctx->sysfs_root : ibc_sysfs_root(),
				       d->ifname, map[k].file);
		memcpy((char *)cnt + map[k].off, &u, sizeof(u));
	}
	return 0;
}

/* Release everything the caller did not: connections, listeners, registrations. */
int tcp__fini(struct ibc_tp_ctx *ctx)
{
	int rc = 0, r;

	if (!ctx)
		return 0;
	while (ctx->conns.next != &ctx->conns) {
		r = tcp__conn_free(tcp_container_of(ctx->conns.next, struct tcp_conn, link));
		if (r && !rc)
			rc = r;
	}
	while (ctx->listeners.next != &ctx->listeners) {
		r = tcp__close_listen(
		    tcp_container_of(ctx->listeners.next, struct ibc_tp_listener, link));
		if (r && !rc)
			rc = r;
	}
	while (ctx->mrs.next != &ctx->mrs)
		tcp__dereg_mr(ctx, tcp_container_of(ctx->mrs.next, struct ibc_tp_mr, link));
	free(ctx->pfds);
	free(ctx);
	return rc;
}

const struct ibc_tp_ops ibc_tp_tcp_ops = {
    .abi_major = IBC_TP_ABI_MAJOR,
    .ops_size = sizeof(struct ibc_tp_ops),
    .name = "tcp",
    .description = "TCP sockets between hosts, namespaces or processes (host memory)",
    TCP_OPS_ENTRIES,
};
