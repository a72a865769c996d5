/* SPDX-License-Identifier: MIT */
/*
 * fuzz_tcp.c - the tcp transport's decoders (transports/tcp/tcp_int.h): the handshake hello,
 * the listener's handle a sender connects with, and the per-message header, driven as the
 * receiver drives them: the input is written into a socket pair and read back by the real
 * receive path (post_recv/test) of a connection made by hand.
 *
 * Input: byte 0 picks the mode. Mode 0: the rest is a hello (kind and nonce from the
 * first bytes). Mode 1: a handle (zero-padded to IBC_TP_HANDLE_BYTES). Mode 2: byte 1 is the
 * number of receives to post (1-8), then per receive its size (one byte, x 16) and tag (one
 * byte); the rest is the byte stream from the sender (headers and payloads).
 */
#include "fuzz.h"
#include "tcp_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_TCP_RECVS	8
#define FUZZ_TCP_STREAM 65536 /* fits a socket pair's buffer: written before reading */

static void fuzz_hello(const uint8_t *d, size_t n)
{
	uint64_t nonce = 0;
	uint16_t version;
	int rc;

	if (n < 9)
		return;
	memcpy(&nonce, d + 1, 8);
	rc = tcp__decode_hello(d + 9, n - 9, d[0] & 1 ? TCP_HELLO_ACK : TCP_HELLO, nonce, &version);
	FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EPROTO || rc == -EPROTONOSUPPORT);
}

static void fuzz_handle(const uint8_t *d, size_t n)
{
	unsigned char handle[IBC_TP_HANDLE_BYTES] = {0};
	struct sockaddr_storage ss;
	char name[TCP_ADDR_LEN];
	uint16_t version, family;
	socklen_t len = 0;
	int rc;

	memcpy(handle, d, IBC_MIN(n, sizeof(handle)));
	rc = tcp__decode_handle(handle, &ss, &len, &version, &family);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EPROTONOSUPPORT || rc == -EAFNOSUPPORT);
	if (!rc) {
		FUZZ_CHECK(len > 0 && len <= sizeof(ss));
		ibc_sock_fmt_addr((struct sockaddr *)&ss, name, sizeof(name));
		fuzz_strlen(name);
	}
}

/* A receive connection over fd, as tcp_accept_start and the handshake leave it. */
static struct ibc_tp_recv *fuzz_conn(struct ibc_tp_ctx *ctx, int fd)
{
	struct ibc_tp_recv *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	tcp_list_init(&r->c.link);
	r->c.ctx = ctx;
	r->c.fd = fd;
	r->c.state = TCP_CONN_UP;
	snprintf(r->c.peer, sizeof(r->c.peer), "fuzz-peer");
	snprintf(r->c.local, sizeof(r->c.local), "fuzz-local");
	tcp_list_add(&ctx->conns, &r->c.link);
	return r;
}

/* Post the receives, then test each until it completes (the stream is all there). */
static void fuzz_recvs(struct ibc_tp_ctx *ctx, struct ibc_tp_recv *rv, const uint8_t *spec,
		       int nrecv, char *buf, size_t buflen)
{
	struct ibc_tp_buf b = {.kind = IBC_MEM_HOST, .addr = buf, .len = buflen};
	struct ibc_tp_req *req[FUZZ_TCP_RECVS];
	struct ibc_tp_mr *mr;
	size_t off = 0, got;
	int i, done, rc, spins;

	if (tcp__reg_mr(ctx, 0, &b, &mr))
		return;
	for (i = 0; i < nrecv; i++) {
		size_t sz = (size_t)spec[2 * i] * 16;

		rc = tcp__post_recv(rv, buf + off, sz, spec[2 * i + 1], mr, &req[i]);
		FUZZ_CHECK(rc == 0 || rc < 0);
		if (rc) {
			nrecv = i;
			break;
		}
		off += sz;
	}
	for (i = 0; i < nrecv; i++) {
		done = 0;
		for (spins = 0; !done && spins < 1000; spins++) {
			got = 0;
			rc = tcp__test(req[i], &done, &got);
			FUZZ_CHECK(rc <= 0);
			if (done && !rc)
				FUZZ_CHECK(got <= (size_t)spec[2 * i] * 16);
		}
		FUZZ_CHECK(done); /* the writer closed its end: every receive ends */
	}
	tcp__dereg_mr(ctx, mr);
}

static void fuzz_stream(const uint8_t *d, size_t n)
{
	static struct ibc_tp_ctx ctx;
	static char buf[FUZZ_TCP_RECVS * 255 * 16];
	struct ibc_tp_recv *rv;
	int sv[2], nrecv;
	size_t spec;
	ssize_t w;

	if (n < 1)
		return;
	nrecv = (d[0] & 7) + 1;
	spec = 1 + 2 * (size_t)nrecv;
	if (n < spec || n - spec > FUZZ_TCP_STREAM)
		return;
	memset(&ctx, 0, sizeof(ctx));
	ctx.ndev = 1;
	snprintf(ctx.devs[0].name, sizeof(ctx.devs[0].name), "tcp:fuzz");
	tcp_list_init(&ctx.conns);
	tcp_list_init(&ctx.listeners);
	tcp_list_init(&ctx.mrs);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return;
	w = n > spec ? write(sv[1], d + spec, n - spec) : 0;
	close(sv[1]);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	rv = fuzz_conn(&ctx, sv[0]);
	if (rv && w == (ssize_t)(n - spec))
		fuzz_recvs(&ctx, rv, d + 1, nrecv, buf, sizeof(buf));
	if (rv)
		tcp__close_recv(rv);
	else
		close(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t tag;
	uint64_t len;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_hello(data + 1, size - 1);
		break;
	case 1:
		fuzz_handle(data + 1, size - 1);
		break;
	default:
		fuzz_stream(data + 1, size - 1);
		break;
	}
	if (size > 16)
		FUZZ_CHECK(tcp__decode_hdr(data + size - 16, 16, &tag, &len) == 0);
	return 0;
}
