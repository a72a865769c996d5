/* SPDX-License-Identifier: MIT */
/*
 * test_verbs_tp.c - the verbs transport against the software HCA (IBCOLL_IBVERBS_LIB).
 *
 * Every scenario runs in forked processes (the verbs library is loaded once per process, and
 * an HCA belongs to the process that opened it): a receiver and a sender exchange the
 * connection handle over a pipe and report their checks back to the parent over another pipe;
 * only the parent prints TAP.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ibc_common.h"
#include "tap.h"
#include "transport.h"
#include "verbs/verbs_int.h"

extern const struct ibc_tp_ops ibc_tp_verbs_ops;
static const struct ibc_tp_ops *ops = &ibc_tp_verbs_ops;

#define CHILD_TIMEOUT_S 120

/* ---- child side: report checks to the parent ---- */

static int report_fd = -1; /* the child's write end of the result pipe */

#define report(cond, ...) report_(cond, __LINE__, __VA_ARGS__)
static int report_(int cond, int line_no, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int report_(int cond, int line_no, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%d|", cond ? 1 : 0);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n - 2, fmt, ap);
	va_end(ap);
	if (!cond && n < (int)sizeof(line) - 40)
		n += snprintf(line + n, sizeof(line) - n, " [%s:%d]", __FILE__, line_no);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	for (int i = 2; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	if (write(report_fd, line, n) != n)
		_exit(99);
	return cond;
}

/* The job key every endpoint proves on the side channel; the "other key" scenario's sender
 * uses key_b. */
static const unsigned char key_a[32] = "ibcoll test job key A 0123456789";
static const unsigned char key_b[32] = "ibcoll test job key B 0123456789";
static const unsigned char *sender_key = key_a;

static void config_init(struct ibc_tp_config *cfg, int rank, int qps)
{
	ibc_tp_config_init(cfg);
	cfg->job_key = rank ? sender_key : key_a;
	cfg->job_key_len = sizeof(key_a);
	cfg->rank = rank;
	cfg->nranks = 2;
	cfg->local_size = 2;
	cfg->local_rank = rank;
	cfg->job_id = "test-verbs";
	cfg->hostname = rank ? "sender-host" : "receiver-host";
	cfg->local_addr = "127.0.0.1";
	cfg->gid_index = -1;
	cfg->qps = qps;
	cfg->timeout_ms = 30000;
}

static int wait_req(struct ibc_tp_req *req, size_t *size)
{
	int done = 0, rc;
	uint64_t deadline = ibc_now_ns() + 60ull * 1000000000ull;

	do {
		rc = ops->test(req, &done, size);
		if (rc)
			return rc;
		if (ibc_now_ns() > deadline)
			return -ETIMEDOUT;
	} while (!done);
	return 0;
}

static uint8_t pattern(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (i >> 9));
}

/* ---- scenario: data transfer ---- */

static const size_t sizes[] = {
    0, 1, 7, 127, 128, 129, 4095, 4096, 65537, 262144, 1048576 + 3, 4194304 + 1, 8388608 - 3, 17,
};
#define NSIZES ((int)IBC_ARRAY_SIZE(sizes))
#define ITERS  4

static size_t total_bytes(void)
{
	size_t t = 0;
	int i;

	for (i = 0; i < NSIZES; i++)
		t += (sizes[i] + 4095) & ~(size_t)4095;
	return t;
}

struct endpoint {
	struct ibc_tp_ctx *ctx;
	struct ibc_tp_listener *l;
	struct ibc_tp_send *s;
	struct ibc_tp_recv *r;
};

static int ep_open_recv(struct endpoint *ep, int qps, int handle_wfd)
{
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_config cfg;
	int rc;

	config_init(&cfg, 0, qps);
	rc = ops->init(&cfg, &ep->ctx);
	if (!report(rc == 0, "receiver: init (qps %d): %s", qps, rc ? ibc_err_get() : "ok"))
		return rc;
	rc = ops->listen(ep->ctx, 0, handle, &ep->l);
	if (!report(rc == 0, "receiver: listen"))
		return rc;
	if (write(handle_wfd, handle, sizeof(handle)) != sizeof(handle))
		return -EIO;
	while ((rc = ops->accept(ep->l, &ep->r)) == -EAGAIN)
		;
	report(rc == 0, "receiver: accept (qps %d): %s", qps, rc ? ops->last_error(ep->ctx) : "ok");
	return rc;
}

/* init and connect; the connect's result unreported (a scenario may expect it to fail) */
static int ep_open_send_rc(struct endpoint *ep, int qps, int handle_rfd)
{
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_config cfg;
	int rc;

	config_init(&cfg, 1, qps);
	rc = ops->init(&cfg, &ep->ctx);
	if (!report(rc == 0, "sender: init (qps %d): %s", qps, rc ? ibc_err_get() : "ok"))
		return rc;
	if (read(handle_rfd, handle, sizeof(handle)) != sizeof(handle))
		return -EIO;
	while ((rc = ops->connect(ep->ctx, 0, handle, &ep->s)) == -EAGAIN)
		;
	return rc;
}

static int ep_open_send(struct endpoint *ep, int qps, int handle_rfd)
{
	int rc = ep_open_send_rc(ep, qps, handle_rfd);

	if (ep->ctx)
		report(rc == 0, "sender: connect (qps %d): %s", qps,
		       rc ? ops->last_error(ep->ctx) : "ok");
	return rc;
}

static void ep_close(struct endpoint *ep, const char *who)
{
	int rc = 0, r2;

	if (ep->s)
		rc = ops->close_send(ep->s);
	if (ep->r) {
		r2 = ops->close_recv(ep->r);
		rc = rc ? rc : r2;
	}
	if (ep->l) {
		r2 = ops->close_listen(ep->l);
		rc = rc ? rc : r2;
	}
	if (ep->ctx) {
		r2 = ops->fini(ep->ctx);
		rc = rc ? rc : r2;
	}
	report(rc == 0, "%s: teardown returns 0 (%d)", who, rc);
}

/* Index of the first byte of message seq that is wrong, -1 when all are right. */
static long first_wrong(const uint8_t *mem, size_t size, uint32_t seq)
{
	for (size_t k = 0; k < size; k++)
		if (mem[k] != pattern(seq, k))
			return (long)k;
	return -1;
}

static void recv_batches(struct endpoint *ep, int qps)
{
	size_t total = total_bytes(), off, got;
	struct ibc_tp_req *reqs[NSIZES];
	struct ibc_tp_mr *big, *sub[NSIZES];
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct vrb_stats st;
	uint8_t *mem;
	uint32_t seq = 0;
	int it, i, rc, bad = 0, bad_size = 0, fails = 0;
	long k;

	mem = aligned_alloc(4096, total);
	buf.addr = mem;
	buf.len = total;
	rc = ops->reg_mr(ep->ctx, 0, &buf, &big);
	report(rc == 0, "receiver: reg_mr of %zu bytes", total);
	for (it = 0; it < ITERS && !rc; it++) {
		memset(mem, 0xee, total);
		for (i = 0, off = 0; i < NSIZES; i++) {
			struct ibc_tp_buf b = buf;

			b.addr = mem + off;
			b.len = sizes[i] ? sizes[i] : 1;
			sub[i] = NULL;
			if (sizes[i] && ops->reg_mr(ep->ctx, 0, &b, &sub[i]))
				fails++;
			while ((rc = ops->post_recv(ep->r, sizes[i] ? mem + off : NULL, sizes[i],
						    seq + i, sizes[i] ? sub[i] : NULL, &reqs[i])) ==
			       -EAGAIN)
				;
			if (rc) {
				report(0, "receiver: post_recv: %s", ops->last_error(ep->ctx));
				break;
			}
			off += (sizes[i] + 4095) & ~(size_t)4095;
		}
		for (i = 0, off = 0; !rc && i < NSIZES; i++) {
			rc = wait_req(reqs[i], &got);
			if (rc) {
				report(0, "receiver: message %u: %s", seq + i,
				       ops->last_error(ep->ctx));
				break;
			}
			if (got != sizes[i])
				bad_size++;
			k = first_wrong(mem + off, sizes[i], seq + i);
			if (k >= 0 && !bad++)
				diag("first wrong byte: message %u index %ld", seq + i, k);
			off += (sizes[i] + 4095) & ~(size_t)4095;
			if (sub[i])
				ops->dereg_mr(ep->ctx, sub[i]);
		}
		seq += NSIZES;
	}
	report(!rc && it == ITERS, "receiver: %d x %d messages (0 B .. 8 MiB) arrive, qps %d",
	       ITERS, NSIZES, qps);
	report(!bad && !bad_size && !fails,
	       "receiver: sizes and bytes correct (%d wrong, %d sizes)", bad, bad_size);
	vrb_get_stats(ep->ctx, &st);
	report(st.registrations == 1 && st.cache_hits == (uint64_t)ITERS * (NSIZES - 1),
	       "receiver: sub-range registrations hit the cache: %llu registration(s), %llu hits",
	       (unsigned long long)st.registrations, (unsigned long long)st.cache_hits);
	ops->dereg_mr(ep->ctx, big);
	vrb_get_stats(ep->ctx, &st);
	report(st.cached == 0 && st.deregistrations == 1, "receiver: dereg at last reference");
	free(mem);
}

static void send_batches(struct endpoint *ep)
{
	size_t total = total_bytes(), off;
	struct ibc_tp_req *reqs[NSIZES];
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct ibc_tp_mr *mr;
	struct vrb_stats st;
	uint8_t *mem;
	uint32_t seq = 0;
	int it, i, rc;

	mem = malloc(total);
	buf.addr = mem;
	buf.len = total;
	rc = ops->reg_mr(ep->ctx, 0, &buf, &mr);
	report(rc == 0, "sender: reg_mr");
	for (it = 0; it < ITERS && !rc; it++) {
		for (i = 0, off = 0; i < NSIZES; i++) {
			for (size_t k = 0; k < sizes[i]; k++)
				mem[off + k] = pattern(seq + i, k);
			while ((rc = ops->post_send(ep->s, mem + off, sizes[i], seq + i, mr,
						    &reqs[i])) == -EAGAIN)
				;
			if (rc) {
				report(0, "sender: post_send: %s", ops->last_error(ep->ctx));
				break;
			}
			off += (sizes[i] + 4095) & ~(size_t)4095;
		}
		for (i = 0; !rc && i < NSIZES; i++) {
			rc = wait_req(reqs[i], NULL);
			if (rc)
				report(0, "sender: message %u: %s", seq + i,
				       ops->last_error(ep->ctx));
		}
		seq += NSIZES;
	}
	report(!rc && it == ITERS, "sender: all messages complete");
	vrb_get_stats(ep->ctx, &st);
	report(st.registrations == 1, "sender: one registration for all iterations (%llu)",
	       (unsigned long long)st.registrations);
	/* fini deregisters what is left: mr is not released on purpose */
	free(mem);
}

/* Credits: the receiver may have VRB_DEPTH receives posted, no more. Then one tag mismatch and
 * one oversize message fail on both sides, and the connection goes on. */
static void recv_limits(struct endpoint *ep)
{
	struct ibc_tp_req *reqs[VRB_DEPTH + 1], *req;
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct ibc_tp_mr *mr;
	char mem[8192];
	struct ibc_tp_props props;
	size_t got;
	int i, rc, n = 0;

	ibc_tp_get_props(ops, ep->ctx, 0, &props);
	buf.addr = mem;
	buf.len = sizeof(mem);
	ops->reg_mr(ep->ctx, 0, &buf, &mr);
	for (i = 0; i < props.max_requests; i++)
		if (ops->post_recv(ep->r, mem + i, 1, 1000 + i, mr, &reqs[i]) == 0)
			n++;
	rc = ops->post_recv(ep->r, mem, 1, 2000, mr, &reqs[i]);
	report(n == props.max_requests && rc == -EAGAIN,
	       "receiver: %d receives posted, one more gets -EAGAIN (%d)", n, rc);
	for (i = 0, rc = 0; i < n && !rc; i++)
		rc = wait_req(reqs[i], &got);
	report(rc == 0, "receiver: the %d credit messages arrive", n);

	while ((rc = ops->post_recv(ep->r, mem, 100, 5, mr, &req)) == -EAGAIN)
		;
	rc = rc ? rc : wait_req(req, &got);
	report(rc == -EPROTO && strstr(ops->last_error(ep->ctx), "tag mismatch"),
	       "receiver: tag mismatch -> -EPROTO (%d): %s", rc, ops->last_error(ep->ctx));
	while ((rc = ops->post_recv(ep->r, mem, 1000, 6, mr, &req)) == -EAGAIN)
		;
	rc = rc ? rc : wait_req(req, &got);
	report(rc == -EMSGSIZE, "receiver: message larger than the buffer -> -EMSGSIZE (%d): %s",
	       rc, ops->last_error(ep->ctx));
	while ((rc = ops->post_recv(ep->r, mem, sizeof(mem), 7, mr, &req)) == -EAGAIN)
		;
	rc = rc ? rc : wait_req(req, &got);
	report(rc == 0 && got == 3000 && mem[2999] == 7,
	       "receiver: the connection goes on after both (%d, %zu bytes)", rc, got);
	ops->dereg_mr(ep->ctx, mr);
}

static void send_limits(struct endpoint *ep)
{
	struct ibc_tp_req *req;
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct ibc_tp_mr *mr;
	static char mem[8192];
	int i, rc = 0;

	buf.addr = mem;
	buf.len = sizeof(mem);
	ops->reg_mr(ep->ctx, 0, &buf, &mr);
	for (i = 0; i < VRB_DEPTH && !rc; i++) {
		while ((rc = ops->post_send(ep->s, mem, 1, 1000 + i, mr, &req)) == -EAGAIN)
			;
		rc = rc ? rc : wait_req(req, NULL);
	}
	report(rc == 0, "sender: %d credit messages sent", VRB_DEPTH);
	while ((rc = ops->post_send(ep->s, mem, 10, 99, mr, &req)) == -EAGAIN)
		;
	rc = rc ? rc : wait_req(req, NULL);
	report(rc == -EPROTO && strstr(ops->last_error(ep->ctx), "tag 99"),
	       "sender: tag mismatch -> -EPROTO (%d): %s", rc, ops->last_error(ep->ctx));
	while ((rc = ops->post_send(ep->s, mem, 2000, 6, mr, &req)) == -EAGAIN)
		;
	rc = rc ? rc : wait_req(req, NULL);
	report(rc == -EMSGSIZE, "sender: oversize -> -EMSGSIZE (%d): %s", rc,
	       ops->last_error(ep->ctx));
	memset(mem, 7, 3000);
	while ((rc = ops->post_send(ep->s, mem, 3000, 7, mr, &req)) == -EAGAIN)
		;
	rc = rc ? rc : wait_req(req, NULL);
	report(rc == 0, "sender: next message ok (%d)", rc);
	ops->dereg_mr(ep->ctx, mr);
}

/* ---- scenario: a link that drops (soft HCA fault) ---- */

static void recv_drop(struct endpoint *ep)
{
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct ibc_tp_req *req;
	struct ibc_tp_mr *mr;
	size_t len = 1 << 20;
	char *mem = malloc(len);
	int i, rc = 0;

	buf.addr = mem;
	buf.len = len;
	ops->reg_mr(ep->ctx, 0, &buf, &mr);
	/* Keep receives posted until the sender says it is done (it closes the pipe). */
	for (i = 0; i < 64 && !rc; i++) {
		int done = 0;
		uint64_t end = ibc_now_ns() + 5000000000ull;

		while ((rc = ops->post_recv(ep->r, mem, len, i, mr, &req)) == -EAGAIN)
			;
		while (!rc && !done && ibc_now_ns() < end)
			rc = ops->test(req, &done, NULL);
		if (!done)
			break;
	}
	ops->dereg_mr(ep->ctx, mr);
	free(mem);
}

static void send_drop(struct endpoint *ep)
{
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct ibc_tp_req *req;
	struct ibc_tp_mr *mr;
	size_t len = 1 << 20;
	char *mem = calloc(1, len);
	const char *err = "";
	struct ibc_tp_props props;
	char dev[96];
	int i, rc = 0;
	uint64_t t0 = ibc_now_ns();

	buf.addr = mem;
	buf.len = len;
	ops->reg_mr(ep->ctx, 0, &buf, &mr);
	for (i = 0; i < 64 && !rc; i++) {
		while ((rc = ops->post_send(ep->s, mem, len, i, mr, &req)) == -EAGAIN &&
		       ibc_now_ns() - t0 < 30000000000ull)
			;
		rc = rc ? rc : wait_req(req, NULL);
	}
	err = ops->last_error(ep->ctx);
	report(rc == -EIO,
	       "sender: dropped link fails the request with -EIO (%d after %d messages)", rc, i);
	ibc_tp_get_props(ops, ep->ctx, 0, &props);
	snprintf(dev, sizeof(dev), "%s port %d", props.name, props.port);
	report(strstr(err, "QP 0x") && strstr(err, dev) && strstr(err, "status"),
	       "sender: error names status, QP, device and port (%s): %s", dev, err);
	rc = ops->post_send(ep->s, mem, 1, 999, mr, &req);
	report(rc == -EIO, "sender: the connection stays failed (%d)", rc);
	ops->dereg_mr(ep->ctx, mr);
	free(mem);
}

/* ---- parent ---- */

typedef void (*child_fn)(int arg, int pipe_fd);

static pid_t spawn(child_fn fn, int arg, int pipe_fd, int result_wfd, const char *const *env)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	report_fd = result_wfd;
	alarm(CHILD_TIMEOUT_S);
	for (; env && *env; env += 2) {
		if (env[1])
			setenv(env[0], env[1], 1);
		else
			unsetenv(env[0]);
	}
	fn(arg, pipe_fd);
	_exit(0);
}

static void run_children(const char *name, child_fn rx, child_fn tx, int arg,
			 const char *const *rx_env, const char *const *tx_env)
{
	int res[2], hp[2];
	pid_t a, b = -1;
	FILE *f;
	char line[1200];
	int st;

	diag("%s", name);
	if (pipe(res) || pipe(hp)) {
		ok(0, "%s: pipes", name);
		return;
	}
	fflush(stdout);
	a = spawn(rx, arg, hp[1], res[1], rx_env);
	if (tx)
		b = spawn(tx, arg, hp[0], res[1], tx_env);
	close(res[1]);
	close(hp[0]);
	close(hp[1]);
	f = fdopen(res[0], "r");
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		ok(line[0] == '1', "%s", line + 2);
	}
	fclose(f);
	waitpid(a, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: first process exits cleanly (status %#x)",
	   name, st);
	if (tx) {
		waitpid(b, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: second process exits cleanly (%#x)",
		   name, st);
	}
}

static void rx_data(int qps, int hfd)
{
	struct endpoint ep = {0};

	if (!ep_open_recv(&ep, qps, hfd)) {
		recv_batches(&ep, qps);
		if (qps == 1)
			recv_limits(&ep);
	}
	ep_close(&ep, "receiver");
}

static void tx_data(int qps, int hfd)
{
	struct endpoint ep = {0};

	if (!ep_open_send(&ep, qps, hfd)) {
		int ndev = 0, hcas = 0, i;

		ops->devices(ep.ctx, &ndev);
		for (i = 0; i < qps; i++)
			hcas |= 1 << ep.ctx->ports[ep.s->c.qps[i].port].hca;
		if (ndev > 1)
			report(hcas == 3, "sender: %d QPs spread over both devices (mask %#x)", qps,
			       hcas);
		send_batches(&ep);
		if (qps == 1)
			send_limits(&ep);
	}
	ep_close(&ep, "sender");
}

static void rx_drop(int qps, int hfd)
{
	struct endpoint ep = {0};

	if (!ep_open_recv(&ep, qps, hfd))
		recv_drop(&ep);
	ep_close(&ep, "receiver");
}

static void tx_drop(int qps, int hfd)
{
	struct endpoint ep = {0};

	if (!ep_open_send(&ep, qps, hfd))
		send_drop(&ep);
	ep_close(&ep, "sender");
}

/* ---- scenario: strangers and another job's key on the side channel ---- */

/* The receiver accepts, despite the strangers before its sender, and gets one message. */
static void rx_strangers(int arg, int hfd)
{
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	struct endpoint ep = {0};
	struct ibc_tp_req *req;
	struct ibc_tp_mr *mr = NULL;
	char mem[64] = "";
	size_t got = 0;
	int rc;

	(void)arg;
	if (!ep_open_recv(&ep, 1, hfd)) {
		buf.addr = mem;
		buf.len = sizeof(mem);
		ops->reg_mr(ep.ctx, 0, &buf, &mr);
		while ((rc = ops->post_recv(ep.r, mem, sizeof(mem), 7, mr, &req)) == -EAGAIN)
			;
		rc = rc ? rc : wait_req(req, &got);
		report(rc == 0 && got == 6 && !strcmp(mem, "hello"),
		       "receiver: the real sender's message arrives after the strangers (%d, %zu "
		       "bytes)",
		       rc, got);
		ops->dereg_mr(ep.ctx, mr);
	}
	ep_close(&ep, "receiver");
}

/* A TCP connection to the receiver's side channel from the handle; -1 on failure. */
static int stranger_connect(const unsigned char *handle)
{
	const struct vrb_handle *h = (const struct vrb_handle *)handle;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = h->port};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memcpy(&a.sin_addr, h->addr, 4);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Three strangers (one byte then close, garbage, silence), then the real sender. */
static void tx_strangers(int arg, int hfd)
{
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	char garbage[200], mem[64] = "hello";
	struct ibc_tp_config cfg;
	struct endpoint ep = {0};
	struct ibc_tp_req *req;
	struct ibc_tp_mr *mr = NULL;
	int fds[3], i, rc;
	uint64_t t0;

	(void)arg;
	if (read(hfd, handle, sizeof(handle)) != sizeof(handle))
		return;
	memset(garbage, 0x5a, sizeof(garbage));
	for (i = 0; i < 3; i++)
		fds[i] = stranger_connect(handle);
	report(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0, "strangers reach the side channel");
	if (fds[0] >= 0 && write(fds[0], "x", 1) == 1)
		close(fds[0]);
	if (fds[1] >= 0 && write(fds[1], garbage, sizeof(garbage)) < 0)
		report(0, "garbage sent");
	config_init(&cfg, 1, 1);
	rc = ops->init(&cfg, &ep.ctx);
	if (!report(rc == 0, "sender: init: %s", rc ? ibc_err_get() : "ok"))
		return;
	t0 = ibc_now_ns();
	while ((rc = ops->connect(ep.ctx, 0, handle, &ep.s)) == -EAGAIN)
		;
	report(rc == 0, "sender: connect after 3 strangers (%.1f s, rc %d): %s",
	       (double)(ibc_now_ns() - t0) / 1e9, rc, rc ? ops->last_error(ep.ctx) : "ok");
	if (!rc) {
		buf.addr = mem;
		buf.len = sizeof(mem);
		ops->reg_mr(ep.ctx, 0, &buf, &mr);
		while ((rc = ops->post_send(ep.s, mem, 6, 7, mr, &req)) == -EAGAIN)
			;
		rc = rc ? rc : wait_req(req, NULL);
		report(rc == 0, "sender: message sent (%d)", rc);
		ops->dereg_mr(ep.ctx, mr);
	}
	for (i = 1; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ep_close(&ep, "sender");
}

/* The receiver keeps waiting (the other job's sender is dropped, not an error). */
static void rx_other_key(int arg, int hfd)
{
	unsigned char handle[IBC_TP_HANDLE_BYTES];
	struct ibc_tp_config cfg;
	struct endpoint ep = {0};
	uint64_t end;
	int rc;

	(void)arg;
	config_init(&cfg, 0, 1);
	rc = ops->init(&cfg, &ep.ctx);
	rc = rc ? rc : ops->listen(ep.ctx, 0, handle, &ep.l);
	if (rc || write(hfd, handle, sizeof(handle)) != sizeof(handle)) {
		report(0, "receiver: init and listen (%d)", rc);
		return;
	}
	end = ibc_now_ns() + 4000000000ull;
	while ((rc = ops->accept(ep.l, &ep.r)) == -EAGAIN && ibc_now_ns() < end)
		usleep(1000);
	report(rc == -EAGAIN && !ep.r,
	       "receiver: a sender with another job's key is dropped; accept still waits (%d)", rc);
	ep_close(&ep, "receiver");
}

static void tx_other_key(int arg, int hfd)
{
	struct endpoint ep = {0};
	const char *err;
	int rc;

	(void)arg;
	sender_key = key_b;
	rc = ep_open_send_rc(&ep, 1, hfd);
	err = ep.ctx ? ops->last_error(ep.ctx) : "";
	report(rc == -EACCES && strstr(err, "handshake failed") && strstr(err, "receiver-host"),
	       "sender with another key: connect fails with -EACCES naming the receiver (%d): %s",
	       rc, err);
	ep_close(&ep, "sender");
}

/* init must fail with -ENODEV and a message containing both strings. */
static void init_fails(const char *what, const char *want1, const char *want2, const char *nic)
{
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx = NULL;
	int rc;

	config_init(&cfg, 0, 1);
	cfg.nic = nic;
	rc = ops->init(&cfg, &ctx);
	report(rc == -ENODEV, "%s: init returns -ENODEV (%d)", what, rc);
	report(strstr(ibc_err_get(), want1) && strstr(ibc_err_get(), want2), "%s: message: %s",
	       what, ibc_err_get());
	if (!rc)
		ops->fini(ctx);
}

static void c_missing_lib(int arg, int fd)
{
	init_fails("missing library", "could not load libibverbs", "--transport tcp", NULL);
}

static void c_no_device(int arg, int fd)
{
	init_fails("no device", "no RDMA device found", "--transport tcp or shm", NULL);
}

static void c_bad_nic(int arg, int fd)
{
	init_fails("--nic naming no device lists what exists", "no RDMA device named 'mlx9_9'",
		   "; available: softhca_", "mlx9_9:1");
}

static void c_port_down(int arg, int fd)
{
	init_fails("port DOWN", "no ACTIVE port", "--transport tcp or shm", NULL);
}

static void c_props(int arg, int fd)
{
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx;
	struct ibc_tp_props p;
	int rc, n = 0;

	config_init(&cfg, 0, 1);
	rc = ops->init(&cfg, &ctx);
	if (!report(rc == 0, "props: init: %s", rc ? ibc_err_get() : "ok"))
		return;
	ops->devices(ctx, &n);
	rc = ibc_tp_get_props(ops, ctx, 0, &p);
	report(n >= 1 && rc == 0 && p.port >= 1 && p.name[0] && p.max_requests == VRB_DEPTH &&
		   (p.caps & IBC_TP_CAP_INTERNODE) && (p.mem_kinds & IBC_MEM_HOST),
	       "props: %d device(s); %s port %d, %s, %u Mb/s, max_requests %d", n, p.name, p.port,
	       p.link_layer, p.speed_mbps, p.max_requests);
	report(ibc_tp_get_props(ops, ctx, n, &p) == -EINVAL, "props: device %d out of range", n);
	report(ops->fini(ctx) == 0, "props: fini");
}

/* ---- scenario: sysfs facts read below IBCOLL_SYSFS_ROOT / cfg->sysfs_root ---- */

static const char *const sysfs_counters[][2] = {
    {"port_xmit_data", "1000"},
    {"port_rcv_data", "2000"},
    {"symbol_error", "3"},
    {"link_downed", "4"},
    {"port_rcv_errors", "5"},
    {"port_xmit_discards", "6"},
    {"port_rcv_remote_physical_errors", "7"},
    {"local_link_integrity_errors", "8"},
};

static int put_file(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", text);
	return fclose(f) ? -EIO : 0;
}

/* A fake tree for HCA dev: fw_ver, board_id, a PCI device link, port 1's counters. */
static int sysfs_tree_make(const char *root, const char *dev)
{
	char rel[PATH_MAX], dir[PATH_MAX + 64];
	size_t k;
	int rc;

	snprintf(rel, sizeof(rel),
		 "mkdir -p '%s/devices/pci0000:16/0000:16:02.0/0000:17:00.0' "
		 "'%s/class/infiniband/%s/ports/1/counters'",
		 root, root, dev);
	if (system(rel) != 0)
		return -EIO;
	snprintf(dir, sizeof(dir), "%s/class/infiniband/%s/device", root, dev);
	if (symlink("../../../devices/pci0000:16/0000:16:02.0/0000:17:00.0", dir))
		return -errno;
	snprintf(rel, sizeof(rel), "class/infiniband/%s/fw_ver", dev);
	rc = put_file(root, rel, "28.39.1002");
	snprintf(rel, sizeof(rel), "class/infiniband/%s/board_id", dev);
	rc = rc ? rc : put_file(root, rel, "MT_0000000838");
	for (k = 0; k < IBC_ARRAY_SIZE(sysfs_counters) && !rc; k++) {
		snprintf(rel, sizeof(rel), "class/infiniband/%s/ports/1/counters/%s", dev,
			 sysfs_counters[k][0]);
		rc = put_file(root, rel, sysfs_counters[k][1]);
	}
	return rc;
}

/* The facts of the fake tree, through get_props and port_counters. */
static void sysfs_check(const struct ibc_tp_config *cfg, const char *what)
{
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_counters c;
	struct ibc_tp_props p;
	int rc = ops->init(cfg, &ctx);

	if (!report(rc == 0, "%s: init: %s", what, rc ? ibc_err_get() : "ok"))
		return;
	rc = ibc_tp_get_props(ops, ctx, 0, &p);
	report(rc == 0 && strcmp(p.pci_busid, "0000:17:00.0") == 0 &&
		   strcmp(p.fw_version, "28.39.1002") == 0 &&
		   strcmp(p.board_id, "MT_0000000838") == 0 && p.size == sizeof(p),
	       "%s: %s pci '%s', firmware '%s', board '%s'", what, p.name, p.pci_busid,
	       p.fw_version, p.board_id);
	rc = ops->port_counters(ctx, 0, &c);
	report(rc == 0 && c.xmit_bytes == 4000 && c.rcv_bytes == 8000 && c.symbol_errors == 3 &&
		   c.link_downed == 4 && c.rcv_errors == 5 && c.xmit_discards == 6 &&
		   c.port_rcv_remote_physical_errors == 7 && c.local_link_integrity_errors == 8,
	       "%s: port counters (%d): xmit %llu B, rcv %llu B, symbol errors %llu", what, rc,
	       (unsigned long long)c.xmit_bytes, (unsigned long long)c.rcv_bytes,
	       (unsigned long long)c.symbol_errors);
	ops->fini(ctx);
}

/* Without the tree (or with a config too old to carry sysfs_root): none of its facts. */
static void sysfs_check_absent(const struct ibc_tp_config *cfg, const char *what)
{
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_counters c;
	struct ibc_tp_props p;
	int rc = ops->init(cfg, &ctx);

	if (!report(rc == 0, "%s: init: %s", what, rc ? ibc_err_get() : "ok"))
		return;
	rc = ibc_tp_get_props(ops, ctx, 0, &p);
	report(rc == 0 && !p.fw_version[0] && !p.board_id[0] && !p.pci_busid[0],
	       "%s: no firmware, board or pci id ('%s' '%s' '%s')", what, p.fw_version, p.board_id,
	       p.pci_busid);
	rc = ops->port_counters(ctx, 0, &c);
	report(rc == -EOPNOTSUPP, "%s: no port counters (%d)", what, rc);
	ops->fini(ctx);
}

static void c_sysfs(int arg, int fd)
{
	char root[] = "/tmp/ibc-verbs-sysfs-XXXXXX", cmd[128];
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_props p;
	int rc;

	config_init(&cfg, 0, 1);
	unsetenv("IBCOLL_SYSFS_ROOT");
	rc = ops->init(&cfg, &ctx); /* learn the device's name */
	rc = rc ? rc : ibc_tp_get_props(ops, ctx, 0, &p);
	if (ctx)
		ops->fini(ctx);
	if (!report(rc == 0 && mkdtemp(root), "sysfs: device %s, tree %s", rc ? "?" : p.name, root))
		return;
	rc = sysfs_tree_make(root, p.name);
	if (report(rc == 0, "sysfs: fake tree made (%d)", rc)) {
		setenv("IBCOLL_SYSFS_ROOT", root, 1);
		sysfs_check(&cfg, "IBCOLL_SYSFS_ROOT");
		unsetenv("IBCOLL_SYSFS_ROOT");
		cfg.sysfs_root = root;
		sysfs_check(&cfg, "cfg->sysfs_root");
		cfg.size = IBC_TP_CFG_BASE_SIZE; /* a host from before sysfs_root */
		sysfs_check_absent(&cfg, "cfg->sysfs_root past cfg->size");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	report(system(cmd) == 0, "sysfs: tree removed");
}

static int lib_loads(const char *path)
{
	pid_t pid = fork();
	int st;

	if (!pid)
		_exit(dlopen(path, RTLD_NOW | RTLD_LOCAL) ? 0 : 1);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	const char *lib = getenv("IBCOLL_IBVERBS_LIB");
	static const char *const missing_env[] = {"IBCOLL_IBVERBS_LIB",
						  "/nonexistent/libibverbs.so.1", NULL};
	static const char *const nodev_env[] = {"IBCOLL_SOFTHCA_DEVICES", "0", NULL};
	static const char *const drop_env[] = {"IBCOLL_SOFTHCA_DROP_AFTER_BYTES",
					       "3000000",
					       "IBCOLL_SOFTHCA_FAULT_RANK",
					       "1",
					       "IBCOLL_RANK",
					       "1",
					       "IBCOLL_IB_TIMEOUT",
					       "8",
					       "IBCOLL_IB_RETRY_CNT",
					       "2",
					       NULL};
	static const char *const real_env[] = {"IBCOLL_IBVERBS_LIB", NULL, NULL};
	static const char *const down_env[] = {"IBCOLL_SOFTHCA_PORT_STATE", "DOWN", NULL};
	static const char *const roce_env[] = {"IBCOLL_SOFTHCA_LINK_LAYER", "Ethernet",
					       "IBCOLL_SOFTHCA_DEVICES", "2", NULL};

	signal(SIGPIPE, SIG_IGN);
	if (!lib || !*lib)
		return tap_skip_all(
		    "IBCOLL_IBVERBS_LIB is not set (point it at libibcoll-softhca.so)");
	if (!lib_loads(lib))
		return tap_skip_all(
		    "cannot load IBCOLL_IBVERBS_LIB (the software HCA is not built)");

	run_children("missing library", c_missing_lib, NULL, 0, missing_env, NULL);
	if (strstr(lib, "softhca"))
		run_children("no device", c_no_device, NULL, 0, nodev_env, NULL);
	if (strstr(lib, "softhca") && lib_loads("libibverbs.so.1") &&
	    access("/sys/class/infiniband", F_OK))
		run_children("no device (system libibverbs, no RDMA hardware here)", c_no_device,
			     NULL, 0, real_env, NULL);
	run_children("bad --nic", c_bad_nic, NULL, 0, NULL, NULL);
	if (strstr(lib, "softhca"))
		run_children("port down", c_port_down, NULL, 0, down_env, NULL);
	run_children("device properties", c_props, NULL, 0, NULL, NULL);
	run_children("sysfs facts from a fake tree", c_sysfs, NULL, 0, NULL, NULL);
	run_children("data, 1 QP", rx_data, tx_data, 1, NULL, NULL);
	run_children("data, 3 QPs", rx_data, tx_data, 3, NULL, NULL);
	if (strstr(lib, "softhca"))
		run_children("data, RoCE, 2 devices, 3 QPs spread over both", rx_data, tx_data, 3,
			     roce_env, roce_env);
	run_children("side channel: strangers before the sender", rx_strangers, tx_strangers, 0,
		     NULL, NULL);
	run_children("side channel: a sender with another job's key", rx_other_key, tx_other_key, 0,
		     NULL, NULL);
	if (strstr(lib, "softhca"))
		run_children("dropped link", rx_drop, tx_drop, 1, NULL, drop_env);
	else
		tap_skip(1,
			 "dropped link: needs the software HCA's IBCOLL_SOFTHCA_DROP_AFTER_BYTES");
	(void)drop_env;
	return tap_done();
}
