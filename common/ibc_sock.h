/* SPDX-License-Identifier: MIT */
/*
 * ibc_sock.h - the one socket layer: what bootstrap/ (rendezvous, out-of-band messages) and the
 * tcp transport share. Address parsing, resolution and formatting, socket creation with the
 * options ibcoll uses, listen/accept/connect, moving a buffer without blocking or with a
 * deadline, and the local address that routes to a host.
 *
 * Conventions: every call returns 0 or a negative errno (-EAGAIN: "not yet, call again");
 * every socket is made close-on-exec. Only name resolution (ibc_sock_resolve(), also inside
 * ibc_sock_route_addr()) leaves a text in ibc_err_get(); the caller words every other failure,
 * since only it knows what the socket was for.
 * Deadlines are CLOCK_MONOTONIC nanoseconds (ibc_now_ns()).
 */
#ifndef IBC_SOCK_H
#define IBC_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for any ibc_sock_fmt_addr() text: "[ipv6%scope]:port". */
#define IBC_SOCK_ADDR_LEN 64

/* Flags of ibc_sock_open() and ibc_sock_accept(). */
enum {
	IBC_SOCK_NONBLOCK = 1 << 0,  /* O_NONBLOCK: connect/accept/send/recv never block */
	IBC_SOCK_NODELAY = 1 << 1,   /* TCP_NODELAY */
	IBC_SOCK_REUSEADDR = 1 << 2, /* SO_REUSEADDR (a listener that is restarted) */
	IBC_SOCK_DGRAM = 1 << 3,     /* SOCK_DGRAM instead of SOCK_STREAM (open only) */
};

/* ---- addresses */

/* "host:port" or "[v6]:port" -> host (without brackets) and port 1..65535; 0 or -EINVAL. */
int ibc_sock_split_hostport(const char *s, char *host, size_t hlen, int *port);
/* getaddrinfo() for a stream socket, first answer. 0, or -EHOSTUNREACH with ibc_err_get()
 * saying "cannot resolve 'HOST': REASON". */
int ibc_sock_resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);
/* A numeric IPv4 or IPv6 address (no name, no scope) -> *ss with port 0; 0 or -EINVAL. */
int ibc_sock_parse_ip(const char *ip, struct sockaddr_storage *ss);
/* 1 when both are the same IP address (ports and scopes ignored), else 0. */
int ibc_sock_same_ip(const struct sockaddr *a, const struct sockaddr *b);
/* "1.2.3.4:80", "[fe80::1%2]:80", "[::1]:80", or "(family N)"; at most len bytes. */
void ibc_sock_fmt_addr(const struct sockaddr *sa, char *buf, size_t len);
/* The numeric IP alone ("1.2.3.4", "::1"; anything not IPv6 is read as IPv4), and the port. */
void ibc_sock_fmt_ip(const struct sockaddr *sa, char *buf, size_t len);
int ibc_sock_port(const struct sockaddr *sa);
/* getsockname() into *ss; *len is set. 0 or -errno. */
int ibc_sock_local(int fd, struct sockaddr_storage *ss, socklen_t *len);
/* ibc_sock_fmt_addr() of both ends of fd into local and peer (either may be NULL; each
 * IBC_SOCK_ADDR_LEN bytes); an end that cannot be named is left as it was. */
void ibc_sock_fd_names(int fd, char *local, char *peer);
/* The numeric IP this host uses to reach host:port (a UDP connect, which sends nothing).
 * 0, or -errno (the name does not resolve, no route). */
int ibc_sock_route_addr(const char *host, int port, char *ip, size_t len);
/* An IPv4 address of this host for peers on other hosts to reach, when there is no root to
 * route to: from the interfaces named in list (comma-separated; NULL or "": any), the first
 * that is up, preferring ib* (IPoIB), then other interfaces, then docker and virbr bridges,
 * then loopback. ifname (iflen bytes, may be NULL) gets the interface. 0, -ENODEV (none of
 * list is up with an IPv4 address) or -errno. */
int ibc_sock_pick_ip(const char *list, char *ip, size_t len, char *ifname, size_t iflen);

/* ---- sockets */

/* socket() of family with IBC_SOCK_* flags; bufsize > 0 sets SO_SNDBUF and SO_RCVBUF (before
 * connect or listen, so window scaling follows; best effort, the kernel caps it), 0 leaves the
 * kernel's autotuning. Options are best effort; only socket() itself can fail. */
int ibc_sock_open(int family, unsigned flags, int bufsize, int *fd);
void ibc_sock_set_bufs(int fd, int bufsize);
void ibc_sock_set_nodelay(int fd);
/* bind() + listen(); 0 or -errno (fd stays open). */
int ibc_sock_bind_listen(int fd, const struct sockaddr *sa, socklen_t len, int backlog);
/* ibc_sock_open() + ibc_sock_bind_listen(); the socket is closed on failure. */
int ibc_sock_listen(const struct sockaddr *sa, socklen_t len, unsigned flags, int backlog, int *fd);
/* accept4() with IBC_SOCK_NONBLOCK / IBC_SOCK_NODELAY applied to the new socket. -EAGAIN when
 * nothing is waiting (also for EINTR and a connection aborted in the backlog), else -errno. */
int ibc_sock_accept(int lfd, unsigned flags, int *fd);
/* connect(): 0 when connected, -EINPROGRESS on a non-blocking socket still connecting, -errno. */
int ibc_sock_connect(int fd, const struct sockaddr *sa, socklen_t len);
/* Where a non-blocking connect stands, without waiting: 0 connected, -EAGAIN still in flight,
 * or the connect's -errno (-ECONNREFUSED ...). */
int ibc_sock_connect_done(int fd);

/* ---- moving bytes */

/* Move buf[*off, len) without blocking, advancing *off: 0 when all of it moved, -EAGAIN when
 * the socket would block, -ECONNRESET when the peer closed (end of file), else -errno. Sends
 * never raise SIGPIPE. */
int ibc_sock_send_nb(int fd, const void *buf, size_t len, size_t *off);
int ibc_sock_recv_nb(int fd, void *buf, size_t len, size_t *off);
/* All of buf, sleeping in poll() while the socket would block, until deadline: 0, -ETIMEDOUT,
 * -ECONNRESET (peer closed) or -errno. Works on blocking and non-blocking sockets alike. */
int ibc_sock_send_full(int fd, const void *buf, size_t len, uint64_t deadline);
int ibc_sock_recv_full(int fd, void *buf, size_t len, uint64_t deadline);

/* ---- deadlines */

/* Now + timeout_ms (CLOCK_MONOTONIC ns); timeout_ms >= 0. */
uint64_t ibc_sock_deadline(int timeout_ms);
/* Milliseconds left before deadline, rounded up; 0 once it has passed. */
int ibc_sock_remaining_ms(uint64_t deadline);

#endif
