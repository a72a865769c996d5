/* SPDX-License-Identifier: MIT */
/*
 * test_tcp.c - the tcp transport through its vtable: device selection, connection setup,
 * awkward message sizes, ordering, queue limits, tag and size errors, peer loss, sleeping, and
 * the same between two processes; props and counters read below IBCOLL_SYSFS_ROOT. Prints
 * loopback bandwidth for 4 MiB messages (diagnostic only: no timing is asserted).
 */
#include "tap.h"
#include "tp_util.h"
#include "transport.h"
#include "ibc_common.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern const struct ibc_tp_ops ibc_tp_tcp_ops;

static const struct ibc_tp_ops *ops = &ibc_tp_tcp_ops;

#define MIB	  (1024 * 1024)
#define BIG	  (64 * MIB)
#define BW_MSG	  (4 * MIB)
#define BW_COUNT  256 /* 1 GiB */
#define BW_WINDOW 8

struct side {
	struct ibc_tp_ctx *ctx; /* owned */
	char *buf;		/* owned */
	size_t len;
	struct ibc_tp_mr *mr; /* owned by ctx */
};

static struct ibc_tp_config lo_cfg(void)
{
	struct ibc_tp_config cfg;

	ibc_tp_config_init(&cfg);
	cfg.nranks = 2;
	cfg.local_size = 1;
	cfg.job_id = "test_tcp";
	cfg.hostname = "localhost";
	cfg.local_addr = "127.0.0.1";
	cfg.gid_index = -1;
	cfg.qps = 1;
	cfg.timeout_ms = 30000;
	return cfg;
}

static int side_init(struct side *sd, const struct ibc_tp_config *cfg, size_t len)
{
	struct ibc_tp_buf b = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	int rc;

	memset(sd, 0, sizeof(*sd));
	rc = ops->init(cfg, &sd->ctx);
	if (rc)
		return rc;
	sd->buf = malloc(len);
	if (!sd->buf)
		return -ENOMEM;
	sd->len = len;
	b.addr = sd->buf;
	b.len = len;
	return ops->reg_mr(sd->ctx, 0, &b, &sd->mr);
}

static int side_fini(struct side *sd)
{
	int rc = 0;

	if (sd->mr)
		rc = ops->dereg_mr(sd->ctx, sd->mr);
	if (sd->ctx) {
		int r = ops->fini(sd->ctx);

		rc = rc ? rc : r;
	}
	free(sd->buf);
	memset(sd, 0, sizeof(*sd));
	return rc;
}

/* ---- device selection ---- */

static void test_devices(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_props p = {.size = sizeof(p)};
	int rc, n = 0;

	rc = ops->init(&cfg, &ctx);
	is_int(rc, 0, "init with local_addr 127.0.0.1");
	if (rc) {
		diag("%s", ibc_err_get());
		tap_skip(6, "no context");
		return;
	}
	is_int(ops->devices(ctx, &n), 0, "devices");
	is_int(n, 1, "one device");
	is_int(ops->get_props(ctx, 0, &p), 0, "get_props");
	is_str(p.name, "tcp:lo", "device is named tcp:lo");
	is_str(p.link_layer, "loopback", "link layer loopback");
	ok(p.max_requests == 32 && p.mem_kinds == IBC_MEM_HOST && (p.caps & IBC_TP_CAP_INTERNODE) &&
	       !(p.caps & IBC_TP_CAP_SHARED_ALLOC),
	   "props: 32 requests, host memory, internode");
	ops->fini(ctx);

	cfg.local_addr = NULL;
	cfg.nic = "lo";
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == 0 && ops->get_props(ctx, 0, &p) == 0 && strcmp(p.name, "tcp:lo") == 0,
	   "--nic lo picks tcp:lo");
	ops->fini(ctx);

	cfg.nic = "lo,lo";
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == 0 && ops->devices(ctx, &n) == 0 && n == 2, "--nic lo,lo gives two devices");
	ops->fini(ctx);

	cfg.nic = "nosuchif0";
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	is_int(rc, -ENODEV, "--nic nosuchif0 -> -ENODEV");
	ok(ctx == NULL, "no context on failure");
	ok(strstr(ibc_err_get(), "nosuchif0") && strstr(ibc_err_get(), "available: ") &&
	       strstr(ibc_err_get(), "lo"),
	   "message names the interface and lists the available ones");
	diag("%s", ibc_err_get());
	ok(strcmp(ops->last_error(NULL), ibc_err_get()) == 0, "last_error(NULL) after failed init");

	cfg.nic = NULL;
	setenv("IBCOLL_TCP_IF", "lo", 1);
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == 0 && ops->get_props(ctx, 0, &p) == 0 && strcmp(p.name, "tcp:lo") == 0,
	   "IBCOLL_TCP_IF=lo picks tcp:lo");
	ops->fini(ctx);
	setenv("IBCOLL_TCP_IF", "bogus9", 1);
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == -ENODEV && strstr(ibc_err_get(), "IBCOLL_TCP_IF"),
	   "IBCOLL_TCP_IF=bogus9 -> -ENODEV naming the variable");
	/* the variable comes before the bootstrap's address (which every rank has) */
	cfg.local_addr = "127.0.0.1";
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == -ENODEV && strstr(ibc_err_get(), "IBCOLL_TCP_IF"),
	   "IBCOLL_TCP_IF is used even when the bootstrap's address is known");
	if (rc == 0)
		ops->fini(ctx);
	cfg.local_addr = NULL;
	unsetenv("IBCOLL_TCP_IF");

	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == 0 && ops->get_props(ctx, 0, &p) == 0 && strncmp(p.name, "tcp:", 4) == 0,
	   "automatic choice without hints");
	if (rc == 0)
		diag("automatic device: %s (%s, %u Mb/s, pci '%s')", p.name, p.link_layer,
		     p.speed_mbps, p.pci_busid);
	if (rc == 0 && IBC_TP_HAS(ops, port_counters)) {
		struct ibc_tp_counters c;

		rc = ops->port_counters(ctx, 0, &c);
		ok(rc == 0 || rc == -ENOTSUP, "port_counters: %d", rc);
	} else {
		ok(0, "port_counters present");
	}
	ops->fini(ctx);

	cfg.options = "sockbuf=junk";
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	ok(rc == -EINVAL && strstr(ibc_err_get(), "sockbuf"), "bad option sockbuf=junk");
}

/* ---- sysfs facts below IBCOLL_SYSFS_ROOT ---- */

static int put_file(const char *root, const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

/* A fake class/net/lo: an IPoIB link at 25 Gb/s on a PCI function, with counters. */
static int fake_sysfs(const char *root)
{
	static const char *const dirs[] = {"class", "class/net", "class/net/lo",
					   "class/net/lo/statistics"};
	static const char *const files[][2] = {
	    {"class/net/lo/type", "32\n"},
	    {"class/net/lo/speed", "25000\n"},
	    {"class/net/lo/statistics/tx_bytes", "1234567890123\n"},
	    {"class/net/lo/statistics/rx_bytes", "42\n"},
	    {"class/net/lo/statistics/rx_errors", "3\n"},
	    {"class/net/lo/statistics/tx_dropped", "7\n"},
	};
	char path[512];
	size_t k;
	int rc = 0;

	for (k = 0; k < IBC_ARRAY_SIZE(dirs) && !rc; k++) {
		snprintf(path, sizeof(path), "%s/%s", root, dirs[k]);
		rc = mkdir(path, 0755) ? -errno : 0;
	}
	for (k = 0; k < IBC_ARRAY_SIZE(files) && !rc; k++)
		rc = put_file(root, files[k][0], files[k][1]);
	snprintf(path, sizeof(path), "%s/class/net/lo/device", root);
	if (!rc && symlink("../../../devices/pci0000:00/0000:17:00.0", path))
		rc = -errno;
	return rc;
}

static void test_sysfs_root(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_counters c;
	struct ibc_tp_props p = {.size = sizeof(p)};
	char root[] = "/tmp/test_tcp_sysfs.XXXXXX", cmd[128], path[512];
	int rc;

	if (!mkdtemp(root) || fake_sysfs(root)) {
		ok(0, "fake sysfs tree in %s", root);
		tap_skip(10, "no fake sysfs tree");
		return;
	}
	ok(1, "fake sysfs tree in %s", root);
	setenv("IBCOLL_SYSFS_ROOT", root, 1);
	rc = ops->init(&cfg, &ctx);
	rc = rc ? rc : ops->get_props(ctx, 0, &p);
	is_int(rc, 0, "init and get_props with IBCOLL_SYSFS_ROOT set");
	is_int(rc ? 0 : p.speed_mbps, 25000, "speed from class/net/lo/speed");
	is_str(rc ? "" : p.link_layer, "InfiniBand", "type 32 reads as InfiniBand (IPoIB)");
	is_str(rc ? "" : p.pci_busid, "0000:17:00.0", "PCI bus id from the device link");
	memset(&c, 0, sizeof(c));
	rc = rc ? rc : ops->port_counters(ctx, 0, &c);
	is_int(rc, 0, "port_counters from class/net/lo/statistics");
	ok(c.xmit_bytes == 1234567890123ull && c.rcv_bytes == 42 && c.rcv_errors == 3 &&
	       c.xmit_discards == 7,
	   "counters: tx_bytes, rx_bytes, rx_errors, tx_dropped");
	snprintf(path, sizeof(path), "%s/class/net/lo/statistics/rx_errors", root);
	unlink(path);
	rc = ctx ? ops->port_counters(ctx, 0, &c) : -EINVAL;
	ok(rc == -ENOTSUP && strstr(ops->last_error(ctx), path),
	   "a missing counter -> -ENOTSUP naming the file: %s", ctx ? ops->last_error(ctx) : "");
	ops->fini(ctx);
	unsetenv("IBCOLL_SYSFS_ROOT");
	cfg.sysfs_root = root; /* the config's root, without the variable */
	ctx = NULL;
	rc = ops->init(&cfg, &ctx);
	rc = rc ? rc : ops->get_props(ctx, 0, &p);
	ok(rc == 0 && p.speed_mbps == 25000 && strcmp(p.pci_busid, "0000:17:00.0") == 0,
	   "cfg->sysfs_root is read without IBCOLL_SYSFS_ROOT");
	rc = rc ? rc : ops->port_counters(ctx, 0, &c);
	ok(rc == -ENOTSUP && strstr(ops->last_error(ctx), root),
	   "counters below cfg->sysfs_root (the removed one is missing there)");
	if (ctx)
		ops->fini(ctx);
	cfg.sysfs_root = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ok(system(cmd) == 0, "fake tree removed");
}

/* ---- one process, two contexts ---- */

/* Send one message of `len` from a.buf and receive it into b.buf with room `room`. */
static int xfer(struct side *a, struct side *b, struct ibc_tp_send *s, struct ibc_tp_recv *r,
		size_t len, uint32_t stag, uint32_t rtag, size_t room, int *src, int *rrc,
		size_t *got)
{
	struct ibc_tp_req *reqs[2] = {NULL, NULL};
	int rcs[2] = {0, 0}, rc;
	size_t sizes[2] = {0, 0};

	rc = ops->post_recv(r, b->buf, room, rtag, b->mr, &reqs[1]);
	if (rc)
		return rc;
	rc = ops->post_send(s, a->buf, len, stag, a->mr, &reqs[0]);
	if (rc)
		return rc;
	rc = tp_complete(ops, reqs, 2, rcs, sizes);
	*src = rcs[0];
	*rrc = rcs[1];
	*got = sizes[1];
	return rc;
}

static void test_sizes(struct side *a, struct side *b, struct ibc_tp_send *s, struct ibc_tp_recv *r)
{
	static const size_t sizes[] = {0, 1, 4095, MIB + 3, BIG};
	enum { N = IBC_ARRAY_SIZE(sizes) };
	struct ibc_tp_req *reqs[2 * N];
	size_t got[2 * N], off[N], o = 0;
	int rcs[2 * N], rc, i, bad = 0;

	/* all in flight at once, each in its own part of the buffers */
	for (i = 0; i < N; i++) {
		off[i] = o;
		o += sizes[i] + 64;
	}
	if (o > a->len) {
		ok(0, "buffers too small");
		return;
	}
	for (i = 0; i < N; i++)
		tp_fill(a->buf + off[i], sizes[i], 1000 + (uint32_t)i);
	memset(b->buf, 0xee, o);
	for (i = 0; i < N; i++) {
		rc = ops->post_recv(r, b->buf + off[i], sizes[i] + 64, 100 + (uint32_t)i, b->mr,
				    &reqs[N + i]);
		bad += rc != 0;
	}
	for (i = 0; i < N; i++) {
		rc = ops->post_send(s, a->buf + off[i], sizes[i], 100 + (uint32_t)i, a->mr,
				    &reqs[i]);
		bad += rc != 0;
	}
	is_int(bad, 0, "posted %d receives and %d sends of 0, 1, 4095, 1 MiB+3, 64 MiB", N, N);
	if (bad)
		return;
	rc = tp_complete(ops, reqs, 2 * N, rcs, got);
	is_int(rc, 0, "all completed");
	for (i = 0; i < N; i++) {
		long w = tp_check(b->buf + off[i], sizes[i], 1000 + (uint32_t)i);

		ok(rcs[i] == 0 && rcs[N + i] == 0 && got[i] == sizes[i] && got[N + i] == sizes[i] &&
		       w < 0 && (unsigned char)b->buf[off[i] + sizes[i]] == 0xee,
		   "message of %zu bytes: rc %d/%d, sizes %zu/%zu, first wrong byte %ld", sizes[i],
		   rcs[i], rcs[N + i], got[i], got[N + i], w);
	}
}

/* Many messages of pseudo-random sizes, a window of them in flight, checked in order. */
static void test_many(struct side *a, struct side *b, struct ibc_tp_send *s, struct ibc_tp_recv *r)
{
	enum { COUNT = 3000, WIN = 24, MAXSZ = 70000 };
	struct ibc_tp_req *sq[WIN] = {0}, *rq[WIN] = {0};
	unsigned sent = 0, sdone = 0, rposted = 0, recvd = 0;
	uint32_t x = 12345;
	size_t len[COUNT], got;
	double end = tp_now() + TP_DEADLINE_S;
	int errors = 0, done, rc, i;

	for (i = 0; i < COUNT; i++) {
		x = x * 1103515245u + 12345u;
		len[i] = (x >> 8) % 8 == 0 ? 0 : (x >> 8) % MAXSZ;
	}
	/* message seq uses slot seq % WIN of both buffers and carries tag seq */
	while ((recvd < COUNT || sdone < COUNT) && !errors && tp_now() < end) {
		while (sent < COUNT && sent < sdone + WIN) {
			char *p = a->buf + (size_t)(sent % WIN) * MAXSZ;

			tp_fill(p, len[sent], sent);
			rc = ops->post_send(s, p, len[sent], sent, a->mr, &sq[sent % WIN]);
			errors += rc && rc != -EAGAIN;
			if (rc)
				break;
			sent++;
		}
		while (rposted < COUNT && rposted < recvd + WIN) {
			rc = ops->post_recv(r, b->buf + (size_t)(rposted % WIN) * MAXSZ, MAXSZ,
					    rposted, b->mr, &rq[rposted % WIN]);
			errors += rc && rc != -EAGAIN;
			if (rc)
				break;
			rposted++;
		}
		/* complete receives in order, then sends in order */
		while (recvd < rposted) {
			got = 0;
			rc = ops->test(rq[recvd % WIN], &done, &got);
			if (!rc && !done)
				break;
			if (rc || got != len[recvd] ||
			    tp_check(b->buf + (size_t)(recvd % WIN) * MAXSZ, got, recvd) >= 0) {
				diag("message %u: rc %d, size %zu (want %zu)", recvd, rc, got,
				     len[recvd]);
				errors++;
			}
			recvd++;
		}
		while (sdone < sent) {
			rc = ops->test(sq[sdone % WIN], &done, &got);
			if (!rc && !done)
				break;
			errors += rc != 0;
			sdone++;
		}
	}
	ok(!errors && recvd == COUNT && sdone == COUNT,
	   "%d messages of 0..%d bytes in order, %d in flight (received %u, sent %u)", COUNT, MAXSZ,
	   WIN, recvd, sdone);
}

static void test_queue_full(struct side *a, struct side *b, struct ibc_tp_send *s,
			    struct ibc_tp_recv *r)
{
	struct ibc_tp_req *sq[33], *rq[33];
	int rcs[66], i, bad = 0, rc;

	for (i = 0; i < 32; i++)
		bad += ops->post_recv(r, NULL, 0, 7, NULL, &rq[i]) != 0;
	rc = ops->post_recv(r, NULL, 0, 7, NULL, &rq[32]);
	ok(bad == 0 && rc == -EAGAIN, "32 receives posted, the 33rd -> -EAGAIN (%d)", rc);
	for (i = 0; i < 32; i++)
		bad += ops->post_send(s, NULL, 0, 7, NULL, &sq[i]) != 0;
	rc = ops->post_send(s, NULL, 0, 7, NULL, &sq[32]);
	ok(bad == 0 && rc == -EAGAIN, "32 sends posted, the 33rd -> -EAGAIN (%d)", rc);
	{
		struct ibc_tp_req *all[64];

		memcpy(all, sq, 32 * sizeof(*all));
		memcpy(all + 32, rq, 32 * sizeof(*all));
		rc = tp_complete(ops, all, 64, rcs, NULL);
	}
	for (i = 0; i < 64; i++)
		bad += rcs[i] != 0;
	ok(rc == 0 && bad == 0, "all 64 completed (size 0, NULL mr)");
	/* out-of-order test: post 3, test the last first */
	{
		struct ibc_tp_req *q[6];
		int done = 0;
		size_t got = 0;

		for (i = 0; i < 3; i++) {
			tp_fill(a->buf + i * 100, 100, 50 + i);
			bad += ops->post_recv(r, b->buf + i * 100, 100, 50 + i, b->mr, &q[3 + i]);
			bad += ops->post_send(s, a->buf + i * 100, 100, 50 + i, a->mr, &q[i]);
		}
		for (double end = tp_now() + 10; !done && tp_now() < end;)
			rc = ops->test(q[5], &done, &got);
		ok(bad == 0 && rc == 0 && done && got == 100,
		   "last receive tested first completes");
		q[5] = NULL;
		rc = tp_complete(ops, q, 6, rcs, NULL);
		ok(rc == 0 && !rcs[0] && !rcs[1] && !rcs[2] && !rcs[3] && !rcs[4] &&
		       tp_check(b->buf, 100, 50) < 0 && tp_check(b->buf + 100, 100, 51) < 0 &&
		       tp_check(b->buf + 200, 100, 52) < 0,
		   "then the others, all three intact");
	}
}

static void test_errors(struct side *a, struct side *b, struct ibc_tp_send *s,
			struct ibc_tp_recv *r)
{
	struct ibc_tp_req *req = NULL;
	struct ibc_tp_buf cb = {.kind = IBC_MEM_CUDA, .addr = a->buf, .len = 64, .dmabuf_fd = -1};
	struct ibc_tp_mr *mr = NULL;
	int src, rrc, rc;
	size_t got = 0;

	/* tag mismatch: the receive fails, the message is dropped, the connection lives on */
	tp_fill(a->buf, 1000, 7);
	rc = xfer(a, b, s, r, 1000, 8, 7, 2000, &src, &rrc, &got);
	ok(rc == 0 && src == 0 && rrc == -EPROTO, "tag mismatch -> -EPROTO (send %d, recv %d)", src,
	   rrc);
	ok(strstr(ops->last_error(b->ctx), "tag mismatch: expected 7 got 8") != NULL, "message: %s",
	   ops->last_error(b->ctx));
	ok(strstr(ibc_err_get(), "tag mismatch") != NULL, "ibc_err_get has it too");
	tp_fill(a->buf, 3000, 9);
	rc = xfer(a, b, s, r, 3000, 9, 9, 3000, &src, &rrc, &got);
	ok(rc == 0 && src == 0 && rrc == 0 && got == 3000 && tp_check(b->buf, 3000, 9) < 0,
	   "the next message arrives intact");

	/* oversize: -EMSGSIZE, dropped, the connection lives on */
	rc = xfer(a, b, s, r, 100, 10, 10, 10, &src, &rrc, &got);
	ok(rc == 0 && src == 0 && rrc == -EMSGSIZE,
	   "100 bytes into a 10-byte receive -> -EMSGSIZE");
	ok(strstr(ops->last_error(b->ctx), "larger than the posted receive of 10 bytes") != NULL,
	   "message: %s", ops->last_error(b->ctx));
	tp_fill(a->buf, MIB + 3, 11);
	rc = xfer(a, b, s, r, MIB + 3, 11, 11, MIB + 3, &src, &rrc, &got);
	ok(rc == 0 && src == 0 && rrc == 0 && got == MIB + 3 && tp_check(b->buf, MIB + 3, 11) < 0,
	   "the next message arrives intact");

	/* memory registration */
	rc = ops->reg_mr(a->ctx, 0, &cb, &mr);
	ok(rc == -ENOTSUP && mr == NULL && strstr(ops->last_error(a->ctx), "host memory"),
	   "reg_mr of CUDA memory -> -ENOTSUP: %s", ops->last_error(a->ctx));
	rc = ops->post_send(s, a->buf, 10, 1, NULL, &req);
	ok(rc == -EINVAL && req == NULL, "post_send of 10 bytes without an MR -> -EINVAL");
	rc = ops->post_send(s, a->buf + a->len - 5, 10, 1, a->mr, &req);
	ok(rc == -EINVAL && strstr(ops->last_error(a->ctx), "outside"),
	   "post_send past the end of the MR -> -EINVAL: %s", ops->last_error(a->ctx));
	rc = ops->post_recv(r, a->buf, 10, 1, b->mr, &req);
	ok(rc == -EINVAL, "post_recv with another context's MR -> -EINVAL");
}

static void test_wait(struct side *a, struct side *b, struct ibc_tp_send *s, struct ibc_tp_recv *r)
{
	struct ibc_tp_req *rq = NULL, *sq = NULL;
	int done = 0, rc;
	uint64_t e;
	double t0, dt;
	size_t got = 0;

	if (!IBC_TP_HAS(ops, wait) || !IBC_TP_HAS(ops, epoch)) {
		ok(0, "epoch/wait present");
		tap_skip(2, "no wait");
		return;
	}
	ok(ops->post_recv(r, b->buf, 64, 3, b->mr, &rq) == 0, "epoch/wait present, receive posted");
	rc = ops->test(rq, &done, &got);
	e = ops->epoch(b->ctx);
	t0 = tp_now();
	rc = ops->wait(b->ctx, e, 50);
	dt = tp_now() - t0;
	ok(rc == 0 && !done && dt >= 0.04, "wait with nothing arriving sleeps its timeout (%.3f s)",
	   dt);
	tp_fill(a->buf, 64, 3);
	rc = ops->post_send(s, a->buf, 64, 3, a->mr, &sq);
	t0 = tp_now();
	rc = rc ? rc : ops->wait(b->ctx, e, 10000);
	dt = tp_now() - t0;
	while (!rc && !done)
		rc = ops->test(rq, &done, &got);
	ok(rc == 0 && done && got == 64 && dt < 5.0,
	   "wait wakes when the message arrives (%.6f s), receive completes", dt);
	done = 0;
	while (!rc && !done)
		rc = ops->test(sq, &done, &got);
}

static void bandwidth_inproc(struct side *a, struct side *b, struct ibc_tp_send *s,
			     struct ibc_tp_recv *r)
{
	struct ibc_tp_req *reqs[2 * BW_WINDOW];
	int rcs[2 * BW_WINDOW], i, k, bad = 0, rc = 0;
	double t0, dt;

	/* a window of receives and sends at a time, tested together (one thread does both) */
	t0 = tp_now();
	for (i = 0; i < BW_COUNT && !rc && !bad; i += BW_WINDOW) {
		for (k = 0; k < BW_WINDOW; k++) {
			bad += ops->post_recv(r, b->buf + (size_t)k * BW_MSG, BW_MSG, 1, b->mr,
					      &reqs[k]) != 0;
			bad += ops->post_send(s, a->buf + (size_t)k * BW_MSG, BW_MSG, 1, a->mr,
					      &reqs[BW_WINDOW + k]) != 0;
		}
		rc = tp_complete(ops, reqs, 2 * BW_WINDOW, rcs, NULL);
		for (k = 0; k < 2 * BW_WINDOW; k++)
			bad += rcs[k] != 0;
	}
	dt = tp_now() - t0;
	ok(!bad && !rc && i >= BW_COUNT, "bandwidth run: %d messages of 4 MiB", BW_COUNT);
	diag("loopback bandwidth, one process, 4 MiB messages, %d in flight: %.2f GB/s "
	     "(%.0f MiB in %.3f s)",
	     BW_WINDOW, (double)BW_COUNT * BW_MSG / dt / 1e9, (double)BW_COUNT * BW_MSG / MIB, dt);
}

static void test_abort(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	volatile int flag = 0;
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_req *req = NULL;
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_listener *l = NULL;
	int rc, done = 0;

	cfg.abort_flag = &flag;
	rc = ops->init(&cfg, &ctx);
	rc = rc ? rc : tp_connect_pair(ops, ctx, ctx, &s, &r);
	rc = rc ? rc : ops->post_recv(r, NULL, 0, 1, NULL, &req);
	rc = rc ? rc : ops->test(req, &done, NULL);
	ok(rc == 0 && !done, "a receive waits (one context, both ends)");
	flag = 1;
	rc = ops->test(req, &done, NULL);
	ok(rc == -ECANCELED && strstr(ops->last_error(ctx), "cancelled"),
	   "abort flag -> test -ECANCELED: %s", ops->last_error(ctx));
	rc = ops->listen(ctx, 0, handle, &l);
	rc = rc ? rc : ops->accept(l, &r);
	ok(rc == -ECANCELED, "abort flag -> accept -ECANCELED");
	is_int(ops->fini(ctx), 0, "fini releases what was left open");
}

static void test_peer_close(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	struct side a, b;
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_req *req = NULL;
	int rc, done = 0, n;
	double end;

	rc = side_init(&a, &cfg, MIB);
	rc = rc ? rc : side_init(&b, &cfg, MIB);
	rc = rc ? rc : tp_connect_pair(ops, a.ctx, b.ctx, &s, &r);
	is_int(rc, 0, "a new pair");
	if (rc)
		return;
	/* the sender goes away: a waiting receive learns it */
	rc = ops->post_recv(r, b.buf, 100, 1, b.mr, &req);
	is_int(ops->close_send(s), 0, "close_send");
	for (end = tp_now() + 10; !rc && !done && tp_now() < end;)
		rc = ops->test(req, &done, NULL);
	ok(rc == -ECONNRESET &&
	       strstr(ops->last_error(b.ctx), "connection closed by peer 127.0.0.1:"),
	   "receiver sees -ECONNRESET: %s", ops->last_error(b.ctx));
	rc = ops->post_recv(r, b.buf, 100, 1, b.mr, &req);
	ok(rc == -ECONNRESET, "posting on the broken connection fails at once");
	is_int(ops->close_recv(r), 0, "close_recv of a broken connection");

	/* the receiver goes away: a sender learns it on a later send, without SIGPIPE */
	rc = tp_connect_pair(ops, a.ctx, b.ctx, &s, &r);
	is_int(rc, 0, "another pair");
	if (rc)
		return;
	ops->close_recv(r);
	rc = 0;
	for (n = 0, end = tp_now() + 20; !rc && tp_now() < end; n++) {
		rc = ops->post_send(s, a.buf, MIB, 1, a.mr, &req);
		for (done = 0; !rc && !done && tp_now() < end;)
			rc = ops->test(req, &done, NULL);
	}
	ok(rc == -ECONNRESET && strstr(ops->last_error(a.ctx), "connection closed by peer"),
	   "sender sees -ECONNRESET after %d sends: %s", n, ops->last_error(a.ctx));
	is_int(ops->close_send(s), 0, "close_send of a broken connection");

	/* connecting to a listener that is gone */
	{
		unsigned char h[IBC_TP_HANDLE_BYTES];
		struct ibc_tp_listener *l = NULL;

		rc = ops->listen(b.ctx, 0, h, &l);
		rc = rc ? rc : ops->close_listen(l);
		for (end = tp_now() + 10, s = NULL; !rc && tp_now() < end;) {
			rc = ops->connect(a.ctx, 0, h, &s);
			rc = rc == -EAGAIN ? 0 : rc;
		}
		ok(rc == -ECONNREFUSED && s == NULL && strstr(ops->last_error(a.ctx), "connect to"),
		   "connect to a closed listener -> -ECONNREFUSED: %s", ops->last_error(a.ctx));
		memset(h, 0, sizeof(h));
		rc = ops->connect(a.ctx, 0, h, &s);
		ok(rc == -EINVAL, "connect with a handle that is not tcp's -> -EINVAL");
	}
	is_int(side_fini(&a) | side_fini(&b), 0, "fini");
}

static void test_ipv6(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_req *q[2];
	struct side a, b;
	int rc, rcs[2] = {-1, -1};

	cfg.local_addr = "::1";
	rc = side_init(&a, &cfg, MIB);
	if (rc) {
		diag("no IPv6 loopback here: %s", ibc_err_get());
		side_fini(&a);
		tap_skip(2, "no IPv6 loopback");
		return;
	}
	rc = side_init(&b, &cfg, MIB);
	rc = rc ? rc : tp_connect_pair(ops, a.ctx, b.ctx, &s, &r);
	is_int(rc, 0, "IPv6 (::1): listen, connect, accept");
	tp_fill(a.buf, MIB, 6);
	rc = rc ? rc : ops->post_recv(r, b.buf, MIB, 6, b.mr, &q[1]);
	rc = rc ? rc : ops->post_send(s, a.buf, MIB, 6, a.mr, &q[0]);
	rc = rc ? rc : tp_complete(ops, q, 2, rcs, NULL);
	ok(rc == 0 && !rcs[0] && !rcs[1] && tp_check(b.buf, MIB, 6) < 0, "IPv6: 1 MiB intact");
	ops->close_send(s);
	ops->close_recv(r);
	side_fini(&a);
	side_fini(&b);
}

/* ---- two processes ---- */

static int child_run(const void *handle, int pipe_w)
{
	struct ibc_tp_config cfg = lo_cfg();
	unsigned char h2[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_listener *l = NULL;
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_req *q[BW_WINDOW];
	struct side sd;
	int rc, i, rcs[BW_WINDOW], done = 0;
	size_t got = 0;

	rc = side_init(&sd, &cfg, (size_t)BW_WINDOW * BW_MSG);
	if (rc)
		return 10;
	do
		rc = ops->connect(sd.ctx, 0, handle, &s);
	while (rc == -EAGAIN);
	if (rc)
		return 11;
	/* awkward sizes, then the bandwidth run */
	for (i = 0; i < 4; i++) {
		static const size_t sz[] = {0, 1, 4095, MIB + 3};

		tp_fill(sd.buf, sz[i], 77 + (uint32_t)i);
		rc = ops->post_send(s, sd.buf, sz[i], 77 + (uint32_t)i, sd.mr, &q[0]);
		if (rc || tp_complete(ops, q, 1, rcs, NULL) || rcs[0])
			return 12;
	}
	tp_fill(sd.buf, (size_t)BW_WINDOW * BW_MSG, 5);
	for (i = 0; i < BW_COUNT;) {
		int k;

		for (k = 0; k < BW_WINDOW; k++)
			if (ops->post_send(s, sd.buf + (size_t)k * BW_MSG, BW_MSG, 2, sd.mr, &q[k]))
				return 13;
		while (k > 0) { /* sleep in wait() while the socket is full */
			uint64_t e = ops->epoch(sd.ctx);

			if (ops->test(q[k - 1], &done, NULL) < 0)
				return 14;
			if (done) {
				k--;
				continue;
			}
			ops->wait(sd.ctx, e, 1000);
		}
		i += BW_WINDOW;
	}
	/* now the other direction: listen here, parent connects */
	rc = ops->listen(sd.ctx, 0, h2, &l);
	if (rc || write(pipe_w, h2, sizeof(h2)) != (ssize_t)sizeof(h2))
		return 15;
	do {
		uint64_t e = ops->epoch(sd.ctx);

		rc = ops->accept(l, &r);
		if (rc == -EAGAIN)
			ops->wait(sd.ctx, e, 1000);
	} while (rc == -EAGAIN);
	if (rc)
		return 16;
	memset(sd.buf, 0, MIB);
	rc = ops->post_recv(r, sd.buf, MIB, 99, sd.mr, &q[0]);
	while (!rc) {
		uint64_t e = ops->epoch(sd.ctx);

		rc = ops->test(q[0], &done, &got);
		if (done)
			break;
		ops->wait(sd.ctx, e, 1000);
	}
	if (rc || got != MIB || tp_check(sd.buf, MIB, 99) >= 0)
		return 17;
	/* wait until the parent closes its end */
	rc = ops->post_recv(r, NULL, 0, 1, NULL, &q[0]);
	for (done = 0; !rc && !done;) {
		uint64_t e = ops->epoch(sd.ctx);

		rc = ops->test(q[0], &done, NULL);
		if (!rc && !done)
			ops->wait(sd.ctx, e, 1000);
	}
	if (rc != -ECONNRESET)
		return 18;
	ops->close_recv(r);
	ops->close_listen(l);
	ops->close_send(s);
	return side_fini(&sd) ? 19 : 0;
}

static void test_fork(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	unsigned char h[IBC_TP_HANDLE_BYTES], h2[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_listener *l = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_req *q[BW_WINDOW];
	struct side sd;
	int rc, i, k, status = 0, bad = 0, rcs[BW_WINDOW], fds[2];
	size_t got = 0;
	double t0, dt;
	pid_t pid;

	rc = side_init(&sd, &cfg, (size_t)BW_WINDOW * BW_MSG);
	rc = rc ? rc : ops->listen(sd.ctx, 0, h, &l);
	if (rc || pipe(fds) != 0) {
		ok(0, "fork test setup: %s", ibc_err_get());
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(child_run(h, fds[1]));
	}
	close(fds[1]);
	do {
		uint64_t e = ops->epoch(sd.ctx);

		rc = ops->accept(l, &r);
		if (rc == -EAGAIN)
			ops->wait(sd.ctx, e, 1000);
	} while (rc == -EAGAIN);
	is_int(rc, 0, "fork: accepted the child's connection");
	if (rc)
		goto out;
	for (i = 0; i < 4; i++) {
		static const size_t sz[] = {0, 1, 4095, MIB + 3};

		memset(sd.buf, 0, sz[i] + 1);
		rc = ops->post_recv(r, sd.buf, MIB + 3, 77 + (uint32_t)i, sd.mr, &q[0]);
		if (!rc)
			rc = tp_complete(ops, q, 1, rcs, &got);
		bad +=
		    rc || rcs[0] || got != sz[i] || tp_check(sd.buf, sz[i], 77 + (uint32_t)i) >= 0;
	}
	is_int(bad, 0, "fork: 0, 1, 4095, 1 MiB+3 bytes from the child, intact");
	t0 = tp_now();
	for (i = 0; i < BW_COUNT && !bad; i += BW_WINDOW) {
		for (k = 0; k < BW_WINDOW; k++)
			bad += ops->post_recv(r, sd.buf + (size_t)k * BW_MSG, BW_MSG, 2, sd.mr,
					      &q[k]) != 0;
		for (k = 0; k < BW_WINDOW && !bad;) {
			uint64_t e = ops->epoch(sd.ctx);
			int done = 0;

			rc = ops->test(q[k], &done, &got);
			if (rc || (done && got != BW_MSG))
				bad++;
			else if (done)
				k++;
			else
				ops->wait(sd.ctx, e, 1000);
		}
	}
	dt = tp_now() - t0;
	ok(!bad && tp_check(sd.buf, (size_t)BW_WINDOW * BW_MSG, 5) < 0,
	   "fork: %d messages of 4 MiB, the last window intact", BW_COUNT);
	diag("loopback bandwidth, two processes, 4 MiB messages, %d in flight: %.2f GB/s "
	     "(%.0f MiB in %.3f s)",
	     BW_WINDOW, (double)BW_COUNT * BW_MSG / dt / 1e9, (double)BW_COUNT * BW_MSG / MIB, dt);
	/* and back: the child listens and sends us its handle through a pipe */
	rc = read(fds[0], h2, sizeof(h2)) == (ssize_t)sizeof(h2) ? 0 : -EIO;
	while (!rc && !s) {
		rc = ops->connect(sd.ctx, 0, h2, &s);
		rc = rc == -EAGAIN ? 0 : rc;
	}
	tp_fill(sd.buf, MIB, 99);
	rc = rc ? rc : ops->post_send(s, sd.buf, MIB, 99, sd.mr, &q[0]);
	rc = rc ? rc : tp_complete(ops, q, 1, rcs, NULL);
	ok(rc == 0 && rcs[0] == 0, "fork: 1 MiB back to the child");
	ops->close_send(s);
out:
	close(fds[0]);
	if (rc)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "fork: the child saw everything right and the close (exit %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	ops->close_recv(r);
	ops->close_listen(l);
	is_int(side_fini(&sd), 0, "fork: fini");
}

int main(void)
{
	struct ibc_tp_config cfg = lo_cfg();
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct side a, b;
	size_t len = (size_t)BIG + 2 * MIB;
	int rc;

	tap_plan(86);
	test_devices();
	test_sysfs_root();

	rc = side_init(&a, &cfg, len);
	rc = rc ? rc : side_init(&b, &cfg, len);
	rc = rc ? rc : tp_connect_pair(ops, a.ctx, b.ctx, &s, &r);
	is_int(rc, 0, "two contexts: listen, connect, accept");
	if (rc) {
		diag("%s", ibc_err_get());
		return tap_done();
	}
	test_sizes(&a, &b, s, r);
	test_many(&a, &b, s, r);
	test_queue_full(&a, &b, s, r);
	test_errors(&a, &b, s, r);
	test_wait(&a, &b, s, r);
	bandwidth_inproc(&a, &b, s, r);
	is_int(ops->close_send(s), 0, "close_send");
	is_int(ops->close_recv(r), 0, "close_recv");
	is_int(side_fini(&a), 0, "fini a");
	is_int(side_fini(&b), 0, "fini b");

	test_abort();
	test_peer_close();
	test_ipv6();
	test_fork();
	return tap_done();
}
