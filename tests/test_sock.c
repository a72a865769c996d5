/* SPDX-License-Identifier: MIT */
/*
 * test_sock.c - the socket layer (common/ibc_sock.h) on the loopback interface: address
 * parsing, resolution and formatting, the local address that routes to a host, listen on an
 * ephemeral port, blocking and non-blocking connect/accept, full sends and receives (with a
 * second process on the other end), a deadline that expires, a refused connection and a peer
 * that closes.
 */
#include "tap.h"
#include "ibc_common.h"
#include "ibc_sock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (8u << 20) /* more than the socket buffers hold: the sender must wait */

static void test_hostport(void)
{
	char host[64];
	int port = 0;

	ok(ibc_sock_split_hostport("node01:29500", host, sizeof(host), &port) == 0 &&
	       strcmp(host, "node01") == 0 && port == 29500,
	   "split node01:29500");
	ok(ibc_sock_split_hostport("[fe80::1]:7", host, sizeof(host), &port) == 0 &&
	       strcmp(host, "fe80::1") == 0 && port == 7,
	   "split [fe80::1]:7 drops the brackets");
	is_int(ibc_sock_split_hostport("node01", host, sizeof(host), &port), -EINVAL, "no port");
	is_int(ibc_sock_split_hostport(":80", host, sizeof(host), &port), -EINVAL, "no host");
	is_int(ibc_sock_split_hostport("h:0", host, sizeof(host), &port), -EINVAL, "port 0");
	is_int(ibc_sock_split_hostport("h:65536", host, sizeof(host), &port), -EINVAL,
	       "port 65536");
	is_int(ibc_sock_split_hostport("longhostname:1", host, 4, &port), -EINVAL,
	       "host longer than the buffer");
}

static void test_resolve(void)
{
	struct sockaddr_storage ss, ip;
	socklen_t len = 0;

	is_int(ibc_sock_resolve("127.0.0.1", 4242, &ss, &len), 0, "resolve 127.0.0.1");
	ok(ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in) &&
	       ibc_sock_port((struct sockaddr *)&ss) == 4242,
	   "IPv4 with the port");
	is_int(ibc_sock_resolve("localhost", 1, &ss, &len), 0, "resolve localhost");
	ibc_err_clear();
	is_int(ibc_sock_resolve("no-such-host.invalid", 1, &ss, &len), -EHOSTUNREACH,
	       "an unknown name -> -EHOSTUNREACH");
	ok(strstr(ibc_err_get(), "cannot resolve 'no-such-host.invalid'") != NULL,
	   "the message names the host: %s", ibc_err_get());

	is_int(ibc_sock_parse_ip("10.1.2.3", &ip), 0, "parse_ip 10.1.2.3");
	is_int(ip.ss_family, AF_INET, "parse_ip: IPv4");
	is_int(ibc_sock_parse_ip("fe80::1", &ip), 0, "parse_ip fe80::1");
	is_int(ip.ss_family, AF_INET6, "parse_ip: IPv6");
	is_int(ibc_sock_parse_ip("eth0", &ip), -EINVAL, "parse_ip of a name -> -EINVAL");
	is_int(ibc_sock_parse_ip("127.0.0.1", &ip), 0, "parse_ip 127.0.0.1");
	ibc_sock_resolve("127.0.0.1", 4242, &ss, &len);
	ok(ibc_sock_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&ip),
	   "same_ip ignores the port");
	ibc_sock_parse_ip("127.0.0.2", &ip);
	ok(!ibc_sock_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&ip),
	   "127.0.0.1 and 127.0.0.2 differ");
}

static void test_format(void)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(80)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	struct sockaddr other = {.sa_family = AF_UNIX};
	char buf[IBC_SOCK_ADDR_LEN];

	inet_pton(AF_INET, "192.168.1.20", &in.sin_addr);
	inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
	ibc_sock_fmt_addr((struct sockaddr *)&in, buf, sizeof(buf));
	is_str(buf, "192.168.1.20:80", "IPv4 address and port");
	ibc_sock_fmt_addr((struct sockaddr *)&in6, buf, sizeof(buf));
	is_str(buf, "[fe80::1]:443", "IPv6 in brackets");
	in6.sin6_scope_id = 3;
	ibc_sock_fmt_addr((struct sockaddr *)&in6, buf, sizeof(buf));
	is_str(buf, "[fe80::1%3]:443", "IPv6 with its scope");
	ibc_sock_fmt_addr(&other, buf, sizeof(buf));
	is_str(buf, "(family 1)", "another family");
	ibc_sock_fmt_ip((struct sockaddr *)&in, buf, sizeof(buf));
	is_str(buf, "192.168.1.20", "fmt_ip: IPv4 alone");
	ibc_sock_fmt_ip((struct sockaddr *)&in6, buf, sizeof(buf));
	is_str(buf, "fe80::1", "fmt_ip: IPv6 alone, no scope");
	is_int(ibc_sock_port((struct sockaddr *)&in6), 443, "port of IPv6");
}

static void test_route(void)
{
	char ip[64] = "";

	is_int(ibc_sock_route_addr("127.0.0.1", 29500, ip, sizeof(ip)), 0, "route to 127.0.0.1");
	is_str(ip, "127.0.0.1", "the local address that reaches 127.0.0.1 is 127.0.0.1");
	is_int(ibc_sock_route_addr("no-such-host.invalid", 1, ip, sizeof(ip)), -EHOSTUNREACH,
	       "route to an unknown name -> -EHOSTUNREACH");
}

/* A listener on 127.0.0.1, ephemeral port; its address in *ss. */
static int lo_listen(unsigned flags, struct sockaddr_storage *ss, socklen_t *len, int *fd)
{
	int rc = ibc_sock_resolve("127.0.0.1", 0, ss, len);

	rc = rc ? rc : ibc_sock_listen((struct sockaddr *)ss, *len, flags, 16, fd);
	return rc ? rc : ibc_sock_local(*fd, ss, len);
}

/* A child writes BIG bytes (i & 0xff) to fd, then waits for one byte back and exits. */
static pid_t big_sender(int fd)
{
	pid_t pid = fork();
	char *buf, c;
	size_t i;

	if (pid != 0)
		return pid;
	buf = malloc(BIG);
	if (!buf)
		_exit(2);
	for (i = 0; i < BIG; i++)
		buf[i] = (char)(i & 0xff);
	if (ibc_sock_send_full(fd, buf, BIG, ibc_sock_deadline(30000)))
		_exit(3);
	if (ibc_sock_recv_full(fd, &c, 1, ibc_sock_deadline(30000)))
		_exit(4);
	_exit(0);
}

static int big_check(const char *buf)
{
	size_t i;

	for (i = 0; i < BIG; i++)
		if (buf[i] != (char)(i & 0xff))
			return 0;
	return 1;
}

static void test_stream(int cfd, int afd)
{
	char *buf = malloc(BIG), c = 'x', local[IBC_SOCK_ADDR_LEN] = "",
	     peer[IBC_SOCK_ADDR_LEN] = "";
	uint64_t t0;
	pid_t pid;
	int status = -1, rc;

	ibc_sock_fd_names(cfd, local, NULL);
	ibc_sock_fd_names(afd, NULL, peer);
	ok(strncmp(local, "127.0.0.1:", 10) == 0 && strcmp(local, peer) == 0,
	   "fd_names: the connector's local end is the acceptor's peer (%s)", local);

	pid = big_sender(cfd);
	rc = buf ? ibc_sock_recv_full(afd, buf, BIG, ibc_sock_deadline(30000)) : -ENOMEM;
	is_int(rc, 0, "recv_full of 8 MiB from another process");
	ok(rc == 0 && big_check(buf), "every byte in order");
	is_int(ibc_sock_send_full(afd, &c, 1, ibc_sock_deadline(30000)), 0, "send_full one byte");
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the sender saw it all through (%d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	t0 = ibc_now_ns();
	rc = ibc_sock_recv_full(afd, buf, 16, ibc_sock_deadline(50));
	is_int(rc, -ETIMEDOUT, "recv_full with nothing coming: -ETIMEDOUT at the deadline");
	ok(ibc_now_ns() - t0 >= 45000000ull, "it waited until the deadline (%.1f ms)",
	   (ibc_now_ns() - t0) / 1e6);
	close(cfd);
	is_int(ibc_sock_recv_full(afd, buf, 16, ibc_sock_deadline(5000)), -ECONNRESET,
	       "peer closed -> -ECONNRESET");
	free(buf);
}

static void test_blocking(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd = -1, cfd = -1, afd = -1, rc;

	rc = lo_listen(IBC_SOCK_REUSEADDR, &ss, &len, &lfd);
	is_int(rc, 0, "listen on 127.0.0.1, ephemeral port");
	ok(rc == 0 && ibc_sock_port((struct sockaddr *)&ss) > 0, "the kernel chose a port (%d)",
	   rc == 0 ? ibc_sock_port((struct sockaddr *)&ss) : 0);
	rc = rc ? rc : ibc_sock_open(ss.ss_family, IBC_SOCK_NODELAY, 0, &cfd);
	rc = rc ? rc : ibc_sock_connect(cfd, (struct sockaddr *)&ss, len);
	is_int(rc, 0, "blocking connect");
	rc = rc ? rc : ibc_sock_accept(lfd, IBC_SOCK_NODELAY, &afd);
	is_int(rc, 0, "accept");
	if (rc) {
		tap_skip(8, "no connection");
		return;
	}
	test_stream(cfd, afd);
	close(afd);
	close(lfd);
}

/* Poll fd for events (at most 5 s) and call connect_done until it answers. */
static int wait_connected(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int rc, k;

	for (k = 0; k < 500; k++) {
		rc = ibc_sock_connect_done(fd);
		if (rc != -EAGAIN)
			return rc;
		poll(&pfd, 1, 10);
	}
	return -ETIMEDOUT;
}

static void test_nonblocking(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char out[6] = "hello", in[6] = "";
	size_t soff = 0, roff = 0;
	int lfd = -1, cfd = -1, afd = -1, rc, k;

	rc = lo_listen(IBC_SOCK_NONBLOCK, &ss, &len, &lfd);
	is_int(rc, 0, "non-blocking listener");
	is_int(ibc_sock_accept(lfd, IBC_SOCK_NONBLOCK, &afd), -EAGAIN,
	       "accept with nobody connecting -> -EAGAIN");
	rc = rc ? rc
		: ibc_sock_open(ss.ss_family, IBC_SOCK_NONBLOCK | IBC_SOCK_NODELAY, 1 << 20, &cfd);
	if (!rc) {
		rc = ibc_sock_connect(cfd, (struct sockaddr *)&ss, len);
		ok(rc == 0 || rc == -EINPROGRESS, "non-blocking connect: 0 or -EINPROGRESS (%d)",
		   rc);
		rc = wait_connected(cfd);
	} else {
		ok(0, "socket");
	}
	is_int(rc, 0, "connect_done says connected");
	for (k = 0; k < 500 && rc == 0; k++) {
		rc = ibc_sock_accept(lfd, IBC_SOCK_NONBLOCK, &afd);
		if (rc == -EAGAIN) {
			usleep(10000);
			rc = 0;
			continue;
		}
		break;
	}
	ok(rc == 0 && afd >= 0, "non-blocking accept");
	is_int(ibc_sock_recv_nb(afd, in, sizeof(in), &roff), -EAGAIN,
	       "recv_nb with nothing there -> -EAGAIN");
	is_int(ibc_sock_send_nb(cfd, out, sizeof(out), &soff), 0, "send_nb of 6 bytes");
	is_int(soff, sizeof(out), "send_nb moved the offset to the end");
	rc = ibc_sock_recv_full(afd, in, sizeof(in), ibc_sock_deadline(5000));
	ok(rc == 0 && strcmp(in, "hello") == 0, "recv_full on a non-blocking socket");
	close(cfd);
	close(afd);
	close(lfd);
}

static void test_refused(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd = -1, fd = -1, rc;

	/* A port that was just in use and is now closed: nobody listens there. */
	rc = lo_listen(0, &ss, &len, &lfd);
	if (rc) {
		tap_skip(3, "no listener");
		return;
	}
	close(lfd);
	ibc_sock_open(ss.ss_family, 0, 0, &fd);
	is_int(ibc_sock_connect(fd, (struct sockaddr *)&ss, len), -ECONNREFUSED,
	       "blocking connect to a closed port -> -ECONNREFUSED");
	close(fd);
	ibc_sock_open(ss.ss_family, IBC_SOCK_NONBLOCK, 0, &fd);
	rc = ibc_sock_connect(fd, (struct sockaddr *)&ss, len);
	ok(rc == -EINPROGRESS || rc == -ECONNREFUSED, "non-blocking connect starts (%d)", rc);
	if (rc == -EINPROGRESS)
		rc = wait_connected(fd);
	is_int(rc, -ECONNREFUSED, "connect_done reports -ECONNREFUSED");
	close(fd);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	tap_plan(54);
	test_hostport();
	test_resolve();
	test_format();
	test_route();
	test_blocking();
	test_nonblocking();
	test_refused();
	return tap_done();
}
