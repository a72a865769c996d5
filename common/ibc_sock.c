/* SPDX-License-Identifier: MIT */
/*
 * ibc_sock.c - the socket layer shared by bootstrap/ and the tcp transport (ibc_sock.h).
 */
#include "ibc_sock.h"
#include "ibc_common.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#define IBC_SOCK_SLICE_MS 100 /* the full-buffer waits poll at least this often */

/* ---------------------------------------------------------------- addresses */

int ibc_sock_split_hostport(const char *s, char *host, size_t hlen, int *port)
{
	const char *colon = strrchr(s, ':');
	long p;
	size_t n;

	if (!colon || colon == s)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (s[0] == '[' && colon[-1] == ']') { /* [v6]:port */
		s++;
		n -= 2;
	}
	if (n >= hlen || ibc_parse_int(colon + 1, 1, 65535, &p))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}

int ibc_sock_resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	char ps[16];
	int rc;

	snprintf(ps, sizeof(ps), "%d", port);
	rc = getaddrinfo(host, ps, &hints, &res);
	if (rc) {
		ibc_err_set("cannot resolve '%s': %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int ibc_sock_parse_ip(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)(void *)ss)->sin_addr) == 1)
		ss->ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)(void *)ss)->sin6_addr) == 1)
		ss->ss_family = AF_INET6;
	else
		return -EINVAL;
	return 0;
}

int ibc_sock_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return 0;
}

void ibc_sock_fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
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

void ibc_sock_fmt_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
	}
}

int ibc_sock_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
}

int ibc_sock_local(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof(*ss);
	return getsockname(fd, (struct sockaddr *)ss, len) == 0 ? 0 : -errno;
}

void ibc_sock_fd_names(int fd, char *local, char *peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (local && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		ibc_sock_fmt_addr((struct sockaddr *)&ss, local, IBC_SOCK_ADDR_LEN);
	len = sizeof(ss);
	if (peer && getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		ibc_sock_fmt_addr((struct sockaddr *)&ss, peer, IBC_SOCK_ADDR_LEN);
}

int ibc_sock_route_addr(const char *host, int port, char *ip, size_t len)
{
	struct sockaddr_storage ss, me;
	socklen_t sl, ml;
	int fd, rc;

	rc = ibc_sock_resolve(host, port, &ss, &sl);
	if (!rc)
		rc = ibc_sock_open(ss.ss_family, IBC_SOCK_DGRAM, 0, &fd);
	if (rc)
		return rc;
	rc = ibc_sock_connect(fd, (struct sockaddr *)&ss, sl);
	if (!rc)
		rc = ibc_sock_local(fd, &me, &ml);
	if (!rc)
		ibc_sock_fmt_ip((struct sockaddr *)&me, ip, len);
	close(fd);
	return rc;
}

/* How good an interface is for reaching other hosts when nobody said: 0 unusable, then
 * higher is better (IPoIB first, as NCCL does; container bridges last). */
static int if_rank(const struct ifaddrs *i)
{
	if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP))
		return 0;
	if (i->ifa_flags & IFF_LOOPBACK)
		return 1;
	if (strncmp(i->ifa_name, "docker", 6) == 0 || strncmp(i->ifa_name, "virbr", 5) == 0)
		return 2;
	return strncmp(i->ifa_name, "ib", 2) == 0 ? 4 : 3;
}

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (p && *p) {
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

int ibc_sock_pick_ip(const char *list, char *ip, size_t len, char *ifname, size_t iflen)
{
	struct ifaddrs *ifs, *i, *best = NULL;
	int r, br = 0;

	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i; i = i->ifa_next) {
		r = if_rank(i);
		if (list && *list)
			r = r && in_list(list, i->ifa_name) ? 1 : 0;
		if (r > br) {
			best = i;
			br = r;
		}
	}
	if (best) {
		ibc_sock_fmt_ip(best->ifa_addr, ip, len);
		if (ifname)
			snprintf(ifname, iflen, "%s", best->ifa_name);
	}
	freeifaddrs(ifs);
	return best ? 0 : -ENODEV;
}

/* ---------------------------------------------------------------- sockets */

void ibc_sock_set_bufs(int fd, int bufsize)
{
	if (bufsize <= 0)
		return;
	/* Best effort: the kernel caps the value at [rw]mem_max. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
}

void ibc_sock_set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int ibc_sock_open(int family, unsigned flags, int bufsize, int *fd)
{
	int type = (flags & IBC_SOCK_DGRAM) ? SOCK_DGRAM : SOCK_STREAM, one = 1;

	if (flags & IBC_SOCK_NONBLOCK)
		type |= SOCK_NONBLOCK;
	*fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	if (flags & IBC_SOCK_REUSEADDR)
		(void)setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ibc_sock_set_bufs(*fd, bufsize);
	if (flags & IBC_SOCK_NODELAY)
		ibc_sock_set_nodelay(*fd);
	return 0;
}

int ibc_sock_bind_listen(int fd, const struct sockaddr *sa, socklen_t len, int backlog)
{
	if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0)
		return -errno;
	return 0;
}

int ibc_sock_listen(const struct sockaddr *sa, socklen_t len, unsigned flags, int backlog, int *fd)
{
	int rc = ibc_sock_open(sa->sa_family, flags, 0, fd);

	if (rc)
		return rc;
	rc = ibc_sock_bind_listen(*fd, sa, len, backlog);
	if (rc) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int ibc_sock_accept(int lfd, unsigned flags, int *fd)
{
	*fd = accept4(lfd, NULL, NULL,
		      SOCK_CLOEXEC | (flags & IBC_SOCK_NONBLOCK ? SOCK_NONBLOCK : 0));
	if (*fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return -EAGAIN;
		return -errno;
	}
	if (flags & IBC_SOCK_NODELAY)
		ibc_sock_set_nodelay(*fd);
	return 0;
}

int ibc_sock_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return connect(fd, sa, len) == 0 ? 0 : -errno;
}

int ibc_sock_connect_done(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t len = sizeof(err);

	if (poll(&pfd, 1, 0) == 0)
		return -EAGAIN;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return -EAGAIN;
	return -err;
}

/* ---------------------------------------------------------------- moving bytes */

static int ibc_sock_io_nb(int fd, char *buf, size_t len, size_t *off, bool out)
{
	ssize_t n;

	while (*off < len) {
		if (out)
			n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			n = recv(fd, buf + *off, len - *off, MSG_DONTWAIT);
		if (n > 0) {
			*off += (size_t)n;
			continue;
		}
		if (n == 0)
			return out ? -EAGAIN : -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
	return 0;
}

int ibc_sock_send_nb(int fd, const void *buf, size_t len, size_t *off)
{
	return ibc_sock_io_nb(fd, (char *)buf, len, off, true);
}

int ibc_sock_recv_nb(int fd, void *buf, size_t len, size_t *off)
{
	return ibc_sock_io_nb(fd, buf, len, off, false);
}

static int ibc_sock_io_full(int fd, char *buf, size_t len, uint64_t deadline, bool out)
{
	struct pollfd pfd = {.fd = fd, .events = out ? POLLOUT : POLLIN};
	size_t off = 0;
	int rc, ms;

	for (;;) {
		rc = ibc_sock_io_nb(fd, buf, len, &off, out);
		if (rc != -EAGAIN)
			return rc;
		ms = ibc_sock_remaining_ms(deadline);
		if (!ms)
			return -ETIMEDOUT;
		(void)poll(&pfd, 1, IBC_MIN(ms, IBC_SOCK_SLICE_MS));
	}
}

int ibc_sock_send_full(int fd, const void *buf, size_t len, uint64_t deadline)
{
	return ibc_sock_io_full(fd, (char *)buf, len, deadline, true);
}

int ibc_sock_recv_full(int fd, void *buf, size_t len, uint64_t deadline)
{
	return ibc_sock_io_full(fd, buf, len, deadline, false);
}

/* ---------------------------------------------------------------- deadlines */

uint64_t ibc_sock_deadline(int timeout_ms)
{
	return ibc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int ibc_sock_remaining_ms(uint64_t deadline)
{
	uint64_t now = ibc_now_ns();

	return now >= deadline ? 0 : (int)((deadline - now) / 1000000ull) + 1;
}
