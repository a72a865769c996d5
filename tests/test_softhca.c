/* SPDX-License-Identifier: MIT */
/*
 * test_softhca.c - the software HCA (tests/softhca/) against the libibverbs API.
 *
 * Every scenario runs in two forked processes, A (requester) and B (responder), which
 * exchange QP numbers, LIDs, GIDs and MR keys over a socketpair, as ranks would. Each process
 * gets its own environment before it first touches the library (the fault injections are
 * read once per process). The children report results over a pipe; the parent prints TAP.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

/* ---------------------------------------------------------------- child reporting */

static int rep_fd = -1; /* children: write end of the results pipe */
static int rep_failed;

static void rep_line(char kind, const char *fmt, va_list ap)
{
	char buf[512];
	int n;

	buf[0] = kind;
	buf[1] = ' ';
	n = vsnprintf(buf + 2, sizeof(buf) - 3, fmt, ap);
	if (n < 0)
		return;
	n = n + 2 > (int)sizeof(buf) - 2 ? (int)sizeof(buf) - 2 : n + 2;
	buf[n++] = '\n';
	if (write(rep_fd, buf, (size_t)n) < 0)
		_exit(99);
}

/* A result from a child: becomes one TAP line in the parent. */
static int check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rep_line(cond ? 'P' : 'F', fmt, ap);
	va_end(ap);
	if (!cond)
		rep_failed++;
	return cond;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rep_line('D', fmt, ap);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- endpoints */

struct xinfo {
	uint32_t qpn;
	uint16_t lid;
	union ibv_gid gid;
	uint64_t addr;
	uint32_t rkey;
	uint64_t len;
};

struct ep {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	size_t len;
	struct xinfo me, peer;
};

struct copts {
	int rnr_retry;	   /* requester */
	int min_rnr_timer; /* responder */
	int timeout, retry_cnt;
	int global; /* address by GRH (gid index 1 on Ethernet, 0 on IB) */
	int cqe;
	int max_wr;
	int access; /* MR access; 0 = local+remote write+read */
};

static const struct copts copts_default = {
    .rnr_retry = 7,
    .min_rnr_timer = 12,
    .timeout = 14,
    .retry_cnt = 7,
    .cqe = 8192,
    .max_wr = 4096,
};

static int ep_open(struct ep *e, size_t len, const struct copts *o)
{
	struct ibv_device **list;
	struct ibv_qp_init_attr ia;
	int n = 0;

	memset(e, 0, sizeof(*e));
	list = ibv_get_device_list(&n);
	if (!list || n < 1)
		return -1;
	e->ctx = ibv_open_device(list[0]);
	ibv_free_device_list(list);
	if (!e->ctx)
		return -1;
	e->pd = ibv_alloc_pd(e->ctx);
	e->cq = ibv_create_cq(e->ctx, o->cqe, NULL, NULL, 0);
	if (!e->pd || !e->cq)
		return -1;
	memset(&ia, 0, sizeof(ia));
	ia.send_cq = e->cq;
	ia.recv_cq = e->cq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = (uint32_t)o->max_wr;
	ia.cap.max_recv_wr = (uint32_t)o->max_wr;
	ia.cap.max_send_sge = 4;
	ia.cap.max_recv_sge = 4;
	ia.cap.max_inline_data = 128;
	e->qp = ibv_create_qp(e->pd, &ia);
	if (!e->qp)
		return -1;
	e->len = len;
	if (posix_memalign((void **)&e->buf, 4096, len))
		return -1;
	memset(e->buf, 0, len);
	e->mr = ibv_reg_mr(e->pd, e->buf, len,
			   o->access ? o->access
				     : IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
					   IBV_ACCESS_REMOTE_READ);
	return e->mr ? 0 : -1;
}

static void ep_close(struct ep *e)
{
	if (e->mr)
		ibv_dereg_mr(e->mr);
	if (e->qp)
		ibv_destroy_qp(e->qp);
	if (e->cq)
		ibv_destroy_cq(e->cq);
	if (e->pd)
		ibv_dealloc_pd(e->pd);
	if (e->ctx)
		ibv_close_device(e->ctx);
	free(e->buf);
}

__attribute__((noinline)) static int xfer(int sock, const void *out, void *in, size_t len)
{
	size_t got = 0;

	if (write(sock, out, len) != (ssize_t)len)
		return -1;
	while (got < len) {
		ssize_t r = read(sock, (char *)in + got, len - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int barrier(int sock)
{
	char a = 'b', b;

	return xfer(sock, &a, &b, 1);
}

static int qp_init(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .port_num = 1, .pkey_index = 0};

	a.qp_access_flags =
	    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	return ibv_modify_qp(qp, &a,
			     IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
}

static int gid_index(int global)
{
	struct ibv_device **l = ibv_get_device_list(NULL);
	struct ibv_context *c = l ? ibv_open_device(l[0]) : NULL;
	struct ibv_port_attr pa;
	int idx = 0;

	if (c && ibv_query_port(c, 1, &pa) == 0 && pa.link_layer == IBV_LINK_LAYER_ETHERNET)
		idx = 1;
	if (c)
		ibv_close_device(c);
	ibv_free_device_list(l);
	return global ? idx : 0;
}

static int qp_rtr(struct ibv_qp *qp, const struct xinfo *peer, const struct copts *o)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = peer->qpn;
	a.rq_psn = 0;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = (uint8_t)o->min_rnr_timer;
	a.ah_attr.port_num = 1;
	a.ah_attr.dlid = peer->lid;
	if (o->global) {
		a.ah_attr.is_global = 1;
		a.ah_attr.grh.dgid = peer->gid;
		a.ah_attr.grh.sgid_index = (uint8_t)gid_index(1);
		a.ah_attr.grh.hop_limit = 64;
	}
	return ibv_modify_qp(qp, &a,
			     IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
}

static int qp_rts(struct ibv_qp *qp, const struct copts *o)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = (uint8_t)o->timeout;
	a.retry_cnt = (uint8_t)o->retry_cnt;
	a.rnr_retry = (uint8_t)o->rnr_retry;
	a.sq_psn = 0;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(qp, &a,
			     IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				 IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* Open, exchange addresses, connect: the rc_pingpong sequence. */
static int ep_setup(struct ep *e, int sock, size_t len, const struct copts *o)
{
	struct ibv_port_attr pa;

	if (ep_open(e, len, o))
		return -1;
	if (ibv_query_port(e->ctx, 1, &pa))
		return -1;
	e->me.qpn = e->qp->qp_num;
	e->me.lid = pa.lid;
	if (ibv_query_gid(e->ctx, 1, gid_index(o->global), &e->me.gid))
		return -1;
	e->me.addr = (uintptr_t)e->buf;
	e->me.rkey = e->mr->rkey;
	e->me.len = len;
	if (xfer(sock, &e->me, &e->peer, sizeof(e->me)))
		return -1;
	if (qp_init(e->qp) || qp_rtr(e->qp, &e->peer, o) || qp_rts(e->qp, o))
		return -1;
	return barrier(sock);
}

/* Wait for one completion; 1 = got it, 0 = timeout, <0 poll error. */
static int wait_wc(struct ibv_cq *cq, struct ibv_wc *wc, double timeout_s)
{
	double end = now_s() + timeout_s;
	unsigned spins = 0;

	for (;;) {
		int n = ibv_poll_cq(cq, 1, wc);

		if (n)
			return n;
		if (now_s() > end)
			return 0;
		if (++spins > 200) {
			struct timespec ts = {0, 20000};

			nanosleep(&ts, NULL);
		}
	}
}

static int post_rdma(struct ep *e, enum ibv_wr_opcode op, uint64_t wr_id, void *laddr, uint32_t len,
		     uint64_t raddr, uint32_t rkey, uint32_t imm, unsigned flags)
{
	struct ibv_sge sge = {.addr = (uintptr_t)laddr, .length = len, .lkey = e->mr->lkey};
	struct ibv_send_wr wr, *bad = NULL;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id;
	wr.sg_list = &sge;
	wr.num_sge = len ? 1 : 0;
	wr.opcode = op;
	wr.send_flags = flags;
	wr.imm_data = htonl(imm);
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(e->qp, &wr, &bad);
}

static int post_recv(struct ep *e, uint64_t wr_id, void *addr, uint32_t len)
{
	struct ibv_sge sge = {.addr = (uintptr_t)addr, .length = len, .lkey = e->mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = len ? 1 : 0};
	struct ibv_recv_wr *bad = NULL;

	return ibv_post_recv(e->qp, &wr, &bad);
}

static enum ibv_qp_state qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &ia))
		return (enum ibv_qp_state) - 1;
	return a.qp_state;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

/* ---------------------------------------------------------------- scenario runner */

typedef void (*side_fn)(int sock);

/* Fork A and B with their own environment; collect their reports as TAP. */
static void run_pair(const char *name, const char *const *env_a, side_fn a,
		     const char *const *env_b, side_fn b)
{
	int sp[2], rp[2], st[2], i;
	pid_t pid[2];
	FILE *f;
	char line[600];

	diag("scenario: %s", name);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || pipe(rp)) {
		ok(0, "%s: socketpair/pipe", name);
		return;
	}
	fflush(stdout);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			const char *const *env = i == 0 ? env_a : env_b;

			close(rp[0]);
			close(sp[1 - i]);
			rep_fd = rp[1];
			alarm(60);
			while (env && *env)
				putenv((char *)*env++);
			(i == 0 ? a : b)(sp[i]);
			exit(rep_failed ? 1 : 0); /* exit, not _exit: LeakSanitizer runs */
		}
	}
	close(rp[1]);
	close(sp[0]);
	close(sp[1]);
	f = fdopen(rp[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 'D')
			diag("%s", line + 2);
		else
			ok(line[0] == 'P', "%s: %s", name, line + 2);
	}
	if (f)
		fclose(f);
	for (i = 0; i < 2; i++) {
		waitpid(pid[i], &st[i], 0);
		ok(WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 0, "%s: process %c exited cleanly",
		   name, 'A' + i);
		if (!WIFEXITED(st[i]))
			diag("process %c: signal %d", 'A' + i, WTERMSIG(st[i]));
	}
}

#define SETUP_OR_RETURN(e, sock, len, o)                                                           \
	do {                                                                                       \
		if (!check(ep_setup(e, sock, len, o) == 0, "connect QPs RESET->INIT->RTR->RTS"))   \
			return;                                                                    \
	} while (0)

/* ---------------------------------------------------------------- single-process checks */

static void t_device(int sock)
{
	struct ibv_device **list;
	struct ibv_device_attr da;
	struct ibv_port_attr pa;
	struct ibv_context *ctx;
	union ibv_gid gid;
	__be16 pkey;
	int n = -1;

	list = ibv_get_device_list(&n);
	if (!check(list && n == 1, "one device by default (got %d)", n))
		return;
	check(strcmp(ibv_get_device_name(list[0]), "softhca_0") == 0, "device name softhca_0");
	check(ibv_get_device_guid(list[0]) != 0, "device GUID");
	ctx = ibv_open_device(list[0]);
	ibv_free_device_list(list);
	if (!check(ctx != NULL, "open device"))
		return;
	check(ibv_query_device(ctx, &da) == 0 && da.max_qp_wr == 32768 && da.max_sge == 30 &&
		  da.max_cqe >= 4 * 1024 * 1024 - 1 && da.phys_port_cnt == 1,
	      "query_device: max_qp_wr 32768, max_sge 30, max_cqe 4M, 1 port");
	memset(&pa, 0xa5, sizeof(pa));
	check(ibv_query_port(ctx, 1, &pa) == 0 && pa.state == IBV_PORT_ACTIVE &&
		  pa.active_mtu == IBV_MTU_4096 && pa.link_layer == IBV_LINK_LAYER_INFINIBAND &&
		  pa.lid != 0 && pa.flags == 0,
	      "query_port: ACTIVE, MTU 4096, InfiniBand, LID set, rest cleared");
	check(pa.active_speed == 128 && pa.active_width == 2,
	      "400 Gb/s reported as NDR 4x (speed %u width %u)", pa.active_speed, pa.active_width);
	check(ibv_query_port(ctx, 2, &pa) != 0, "query_port 2 fails");
	check(ibv_query_gid(ctx, 1, 0, &gid) == 0 && gid.raw[0] == 0xfe && gid.raw[1] == 0x80,
	      "GID 0 is link-local fe80::");
	check(ibv_query_pkey(ctx, 1, 0, &pkey) == 0 && pkey == htons(0xffff), "pkey 0xffff");
	check(strcmp(ibv_wc_status_str(IBV_WC_REM_ACCESS_ERR), "remote access error") == 0 &&
		  strcmp(ibv_port_state_str(IBV_PORT_ACTIVE), "active") == 0,
	      "status strings");
	check(ibv_close_device(ctx) == 0, "close device");
}

static void t_device_config(int sock)
{
	struct ibv_device **list;
	struct ibv_port_attr pa;
	struct ibv_gid_entry ge;
	struct ibv_context *ctx;
	union ibv_gid gid;
	int n = -1;

	list = ibv_get_device_list(&n);
	if (!check(list && n == 2, "IBCOLL_SOFTHCA_DEVICES=2 gives 2 devices (got %d)", n))
		return;
	check(strcmp(ibv_get_device_name(list[1]), "softhca_1") == 0, "second is softhca_1");
	ctx = ibv_open_device(list[1]);
	ibv_free_device_list(list);
	if (!check(ctx != NULL, "open softhca_1"))
		return;
	check(ibv_query_port(ctx, 1, &pa) == 0 && pa.state == IBV_PORT_DOWN &&
		  pa.link_layer == IBV_LINK_LAYER_ETHERNET && pa.lid == 0,
	      "Ethernet port, DOWN, LID 0");
	check(pa.active_speed == 64 && pa.active_width == 2,
	      "200 Gb/s reported as HDR 4x (speed %u width %u)", pa.active_speed, pa.active_width);
	check(ibv_query_gid(ctx, 1, 1, &gid) == 0 && gid.raw[10] == 0xff && gid.raw[11] == 0xff &&
		  gid.raw[12] == 10,
	      "GID 1 is an IPv4-mapped RoCE v2 address");
	check(ibv_query_gid_ex(ctx, 1, 1, &ge, 0) == 0 && ge.gid_type == IBV_GID_TYPE_ROCE_V2,
	      "ibv_query_gid_ex: index 1 is RoCE v2");
	ibv_close_device(ctx);
}

/* The exported names a dlsym-based loader asks for. */
static void t_symbols(int sock)
{
	static const char *const names[] = {
	    "ibv_get_device_list",
	    "ibv_free_device_list",
	    "ibv_get_device_name",
	    "ibv_get_device_guid",
	    "ibv_open_device",
	    "ibv_close_device",
	    "ibv_query_device",
	    "ibv_query_port",
	    "___ibv_query_port",
	    "ibv_query_gid",
	    "ibv_query_pkey",
	    "ibv_alloc_pd",
	    "ibv_dealloc_pd",
	    "ibv_reg_mr",
	    "ibv_reg_mr_iova2",
	    "ibv_reg_dmabuf_mr",
	    "ibv_dereg_mr",
	    "ibv_create_comp_channel",
	    "ibv_destroy_comp_channel",
	    "ibv_create_cq",
	    "ibv_destroy_cq",
	    "ibv_create_qp",
	    "ibv_modify_qp",
	    "ibv_query_qp",
	    "ibv_destroy_qp",
	    "ibv_get_async_event",
	    "ibv_ack_async_event",
	    "ibv_wc_status_str",
	    "ibv_port_state_str",
	    "ibv_fork_init",
	    "ibv_event_type_str",
	    "ibv_query_ece",
	    "ibv_set_ece",
	    "ibv_get_cq_event",
	    "ibv_ack_cq_events",
	    "_ibv_query_gid_ex",
	    "__ibv_reg_mr",
	};
	const char *path = getenv("IBCOLL_SOFTHCA_LIB");
	void *h;
	size_t i;
	int missing = 0;

	if (!path) {
		note("IBCOLL_SOFTHCA_LIB not set: dlsym check skipped");
		return;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!check(h != NULL, "dlopen %s", path))
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!dlsym(h, names[i])) {
			note("missing symbol %s", names[i]);
			missing++;
		}
	}
	check(missing == 0, "all %zu verbs symbols resolve with dlsym",
	      sizeof(names) / sizeof(names[0]));
	check(dlsym(h, "shca__wake") == NULL, "internal symbols are hidden");
	dlclose(h);
}

static int modify(struct ibv_qp *qp, enum ibv_qp_state s, int mask)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = s;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = qp->qp_num;
	a.ah_attr.port_num = 1;
	a.ah_attr.dlid = 1;
	a.min_rnr_timer = 12;
	a.max_dest_rd_atomic = 1;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(qp, &a, mask);
}

/* QP state machine and its EINVALs, in one process. */
static void t_state_machine(int sock)
{
	const int init = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
	const int rtr = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	const int rts = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
	struct ep e;
	struct ibv_send_wr wr, *bad;
	struct ibv_mr *mr;

	if (!check(ep_open(&e, 4096, &copts_default) == 0, "open, PD, CQ, QP, MR"))
		return;
	check(qp_state(e.qp) == IBV_QPS_RESET, "new QP is in RESET");
	check(modify(e.qp, IBV_QPS_RTR, rtr) == EINVAL, "RESET->RTR fails with EINVAL");
	check(modify(e.qp, IBV_QPS_INIT, init & ~IBV_QP_ACCESS_FLAGS) == EINVAL,
	      "RESET->INIT without ACCESS_FLAGS fails with EINVAL");
	check(modify(e.qp, IBV_QPS_INIT, init | IBV_QP_TIMEOUT) == EINVAL,
	      "RESET->INIT with a foreign attribute (TIMEOUT) fails with EINVAL");
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_SEND;
	check(ibv_post_send(e.qp, &wr, &bad) == EINVAL, "post_send in RESET fails with EINVAL");
	check(modify(e.qp, IBV_QPS_INIT, init) == 0 && qp_state(e.qp) == IBV_QPS_INIT,
	      "RESET->INIT");
	check(modify(e.qp, IBV_QPS_RTS, rts) == EINVAL, "INIT->RTS fails with EINVAL");
	check(modify(e.qp, IBV_QPS_RTR, rtr & ~IBV_QP_MIN_RNR_TIMER) == EINVAL,
	      "INIT->RTR without MIN_RNR_TIMER fails with EINVAL");
	check(modify(e.qp, IBV_QPS_RTR, rtr) == 0 && qp_state(e.qp) == IBV_QPS_RTR, "INIT->RTR");
	check(modify(e.qp, IBV_QPS_RTS, rts & ~IBV_QP_SQ_PSN) == EINVAL,
	      "RTR->RTS without SQ_PSN fails with EINVAL");
	check(modify(e.qp, IBV_QPS_RTS, rts) == 0 && qp_state(e.qp) == IBV_QPS_RTS, "RTR->RTS");
	check(modify(e.qp, IBV_QPS_INIT, init) == EINVAL, "RTS->INIT fails with EINVAL");
	check(modify(e.qp, IBV_QPS_ERR, IBV_QP_STATE) == 0 && qp_state(e.qp) == IBV_QPS_ERR,
	      "RTS->ERR");
	check(modify(e.qp, IBV_QPS_RTS, rts) == EINVAL, "ERR->RTS fails with EINVAL");
	check(modify(e.qp, IBV_QPS_RESET, IBV_QP_STATE) == 0 && qp_state(e.qp) == IBV_QPS_RESET,
	      "ERR->RESET");
	mr = ibv_reg_mr(e.pd, e.buf, 64, IBV_ACCESS_REMOTE_WRITE);
	check(mr == NULL && errno == EINVAL, "reg_mr REMOTE_WRITE without LOCAL_WRITE: EINVAL");
	mr = ibv_reg_dmabuf_mr(e.pd, 0, 4096, 0, -1, IBV_ACCESS_LOCAL_WRITE);
	check(mr == NULL && (errno == EOPNOTSUPP || errno == EBADF),
	      "reg_dmabuf_mr(fd -1): EOPNOTSUPP without a GPU, EBADF with one (errno %d)", errno);
	ep_close(&e);
}

/* Two QPs of one process connected to each other (loopback through its own socket). */
static void t_loopback(int sock)
{
	struct ep a, b;
	struct ibv_wc wc;
	struct copts o = copts_default;

	if (!check(ep_open(&a, 65536, &o) == 0 && ep_open(&b, 65536, &o) == 0, "two endpoints"))
		return;
	{
		struct ibv_port_attr pa, pb;

		ibv_query_port(a.ctx, 1, &pa);
		ibv_query_port(b.ctx, 1, &pb);
		a.peer.qpn = b.qp->qp_num;
		a.peer.lid = pb.lid;
		b.peer.qpn = a.qp->qp_num;
		b.peer.lid = pa.lid;
		check(pa.lid != pb.lid, "each open device has its own LID (0x%x, 0x%x)", pa.lid,
		      pb.lid);
	}
	if (!check(qp_init(a.qp) == 0 && qp_init(b.qp) == 0 && qp_rtr(a.qp, &a.peer, &o) == 0 &&
		       qp_rtr(b.qp, &b.peer, &o) == 0 && qp_rts(a.qp, &o) == 0 &&
		       qp_rts(b.qp, &o) == 0,
		   "connect"))
		goto out;
	fill(a.buf, 65536, 7);
	post_rdma(&a, IBV_WR_RDMA_WRITE, 1, a.buf, 65536, (uintptr_t)b.buf, b.mr->rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(a.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 1,
	      "loopback RDMA WRITE completes");
	check(memcmp(a.buf, b.buf, 65536) == 0, "loopback data arrived");
out:
	ep_close(&b);
	ep_close(&a);
}

/* ---------------------------------------------------------------- data path */

#define BIG (64u << 20)

static void dp_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_comp_channel *ch;
	struct ibv_wc wc;
	struct ep e;
	uint8_t *ref;
	double t0, dt;
	int i, n, good;

	SETUP_OR_RETURN(&e, sock, BIG, &o);
	ref = malloc(BIG);

	/* 1: RDMA WRITE */
	fill(e.buf, 4096, 1);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 11, e.buf, 4096, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 11 &&
		  wc.opcode == IBV_WC_RDMA_WRITE,
	      "RDMA WRITE completes (status %s)", ibv_wc_status_str(wc.status));
	barrier(sock);

	/* 2: WRITE WITH IMM, 1000 bytes at offset 8192 */
	barrier(sock); /* B posted its receive */
	fill(e.buf + 8192, 1000, 2);
	post_rdma(&e, IBV_WR_RDMA_WRITE_WITH_IMM, 12, e.buf + 8192, 1000, e.peer.addr + 8192,
		  e.peer.rkey, 0x12345678, IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 12,
	      "RDMA WRITE WITH IMM completes");
	barrier(sock);

	/* 3: SEND from three SGEs (100 + 200 + 300 bytes) */
	barrier(sock);
	{
		struct ibv_sge sge[3] = {
		    {(uintptr_t)(e.buf + 20000), 100, e.mr->lkey},
		    {(uintptr_t)(e.buf + 30000), 200, e.mr->lkey},
		    {(uintptr_t)(e.buf + 40000), 300, e.mr->lkey},
		};
		struct ibv_send_wr wr = {.wr_id = 13,
					 .sg_list = sge,
					 .num_sge = 3,
					 .opcode = IBV_WR_SEND,
					 .send_flags = IBV_SEND_SIGNALED};
		struct ibv_send_wr *bad;

		fill(e.buf + 20000, 100, 31);
		fill(e.buf + 30000, 200, 32);
		fill(e.buf + 40000, 300, 33);
		check(ibv_post_send(e.qp, &wr, &bad) == 0, "post SEND with 3 SGEs");
		check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS &&
			  wc.opcode == IBV_WC_SEND,
		      "SEND completes");
	}
	barrier(sock);

	/* 4: inline SEND WITH IMM from a stack buffer (no lkey) */
	barrier(sock);
	{
		char msg[64] = "inline data: no MR needed";
		struct ibv_sge sge = {(uintptr_t)msg, sizeof(msg), 0};
		struct ibv_send_wr wr = {.wr_id = 14,
					 .sg_list = &sge,
					 .num_sge = 1,
					 .opcode = IBV_WR_SEND_WITH_IMM,
					 .send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE,
					 .imm_data = htonl(42)};
		struct ibv_send_wr *bad;

		check(ibv_post_send(e.qp, &wr, &bad) == 0, "post inline SEND");
		memset(msg, 0, sizeof(msg)); /* reusable at once */
		check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS,
		      "inline SEND completes");
	}
	barrier(sock);

	/* 5: RDMA READ of 8 KiB B prepared at offset 1 MiB */
	barrier(sock);
	memset(e.buf + (2u << 20), 0, 8192);
	post_rdma(&e, IBV_WR_RDMA_READ, 15, e.buf + (2u << 20), 8192, e.peer.addr + (1u << 20),
		  e.peer.rkey, 0, IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS &&
		  wc.opcode == IBV_WC_RDMA_READ && wc.byte_len == 8192,
	      "RDMA READ completes with byte_len 8192");
	fill(ref, 8192, 5);
	check(memcmp(e.buf + (2u << 20), ref, 8192) == 0, "RDMA READ data correct");
	barrier(sock);

	/* 6: unsignaled writes complete silently; one signaled at the end */
	for (i = 0; i < 10; i++)
		post_rdma(&e, IBV_WR_RDMA_WRITE, 100 + i, e.buf, 64, e.peer.addr, e.peer.rkey, 0,
			  0);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 200, e.buf, 64, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	n = wait_wc(e.cq, &wc, 10);
	check(n == 1 && wc.wr_id == 200,
	      "10 unsignaled + 1 signaled WRITE: one completion (wr_id %llu)",
	      (unsigned long long)wc.wr_id);
	check(wait_wc(e.cq, &wc, 0.05) == 0, "no further completion");

	/* 7: in-order delivery: 2000 WRITE WITH IMM, each writes its index into slot i */
	barrier(sock);
	for (i = 0; i < 2000; i++) {
		uint32_t *slot = (uint32_t *)(e.buf + (4u << 20)) + i;

		*slot = (uint32_t)i;
		if (post_rdma(&e, IBV_WR_RDMA_WRITE_WITH_IMM, (uint64_t)i, slot, 4,
			      e.peer.addr + (4u << 20) + 4u * (uint32_t)i, e.peer.rkey, (uint32_t)i,
			      IBV_SEND_SIGNALED))
			break;
	}
	check(i == 2000, "2000 WRITE WITH IMM posted");
	for (i = 0, good = 1; i < 2000 && good; i++)
		good = wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS &&
		       wc.wr_id == (uint64_t)i;
	check(good, "2000 WRITE WITH IMM complete successfully, in order");
	barrier(sock);

	/* 8: completion channel */
	ch = ibv_create_comp_channel(e.ctx);
	check(ch != NULL, "create completion channel");
	if (ch) {
		struct ibv_cq *cq = ibv_create_cq(e.ctx, 16, NULL, ch, 0);

		check(cq && ibv_req_notify_cq(cq, 0) == 0, "CQ on the channel, armed");
		check(cq && ibv_destroy_comp_channel(ch) == EBUSY,
		      "channel busy while a CQ uses it");
		if (cq)
			ibv_destroy_cq(cq);
		check(ibv_destroy_comp_channel(ch) == 0, "destroy channel after its CQ");
	}

	/* 9: 64 MiB WRITE, three times for a bandwidth figure */
	barrier(sock);
	fill(e.buf, BIG, 64);
	t0 = now_s();
	post_rdma(&e, IBV_WR_RDMA_WRITE_WITH_IMM, 64, e.buf, BIG, e.peer.addr, e.peer.rkey, 64,
		  IBV_SEND_SIGNALED);
	n = wait_wc(e.cq, &wc, 30);
	dt = now_s() - t0;
	check(n == 1 && wc.status == IBV_WC_SUCCESS, "64 MiB RDMA WRITE completes");
	note("64 MiB WRITE: %.1f ms, %.2f GB/s", dt * 1e3, BIG / dt / 1e9);
	barrier(sock); /* B verified */
	t0 = now_s();
	for (i = 0; i < 3; i++)
		post_rdma(&e, IBV_WR_RDMA_WRITE, 65, e.buf, BIG, e.peer.addr, e.peer.rkey, 0,
			  IBV_SEND_SIGNALED);
	for (i = 0, good = 1; i < 3; i++)
		good &= wait_wc(e.cq, &wc, 30) == 1 && wc.status == IBV_WC_SUCCESS;
	dt = now_s() - t0;
	check(good, "3 more 64 MiB WRITEs complete");
	note("loopback bandwidth (3 x 64 MiB RDMA WRITE, pipelined): %.2f GB/s",
	     3.0 * BIG / dt / 1e9);
	barrier(sock);
	free(ref);
	ep_close(&e);
}

static void dp_b(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;
	uint8_t *ref;
	int i, good, n;

	SETUP_OR_RETURN(&e, sock, BIG, &o);
	ref = malloc(BIG);

	barrier(sock);
	fill(ref, 4096, 1);
	check(memcmp(e.buf, ref, 4096) == 0, "RDMA WRITE data arrived");

	post_recv(&e, 77, e.buf + (8u << 20), 4096);
	barrier(sock);
	barrier(sock);
	n = wait_wc(e.cq, &wc, 10);
	check(n == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 77 &&
		  wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM && (wc.wc_flags & IBV_WC_WITH_IMM) &&
		  ntohl(wc.imm_data) == 0x12345678 && wc.byte_len == 1000 &&
		  wc.qp_num == e.qp->qp_num && wc.src_qp == e.peer.qpn,
	      "WRITE WITH IMM: receive completion with imm 0x%x, byte_len %u", ntohl(wc.imm_data),
	      wc.byte_len);
	fill(ref, 1000, 2);
	check(memcmp(e.buf + 8192, ref, 1000) == 0, "WRITE WITH IMM data arrived");

	{ /* two receive SGEs: 250 + 1000 bytes for a 600-byte SEND */
		struct ibv_sge sge[2] = {
		    {(uintptr_t)(e.buf + 50000), 250, e.mr->lkey},
		    {(uintptr_t)(e.buf + 60000), 1000, e.mr->lkey},
		};
		struct ibv_recv_wr wr = {.wr_id = 78, .sg_list = sge, .num_sge = 2}, *bad;

		memset(e.buf + 50000, 0xee, 20000);
		check(ibv_post_recv(e.qp, &wr, &bad) == 0, "post receive with 2 SGEs");
	}
	barrier(sock);
	barrier(sock);
	n = wait_wc(e.cq, &wc, 10);
	check(n == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 78 && wc.opcode == IBV_WC_RECV &&
		  wc.byte_len == 600 && !(wc.wc_flags & IBV_WC_WITH_IMM),
	      "SEND: receive completion, byte_len %u", wc.byte_len);
	fill(ref, 100, 31);
	fill(ref + 100, 200, 32);
	fill(ref + 300, 300, 33);
	check(memcmp(e.buf + 50000, ref, 250) == 0 && memcmp(e.buf + 60000, ref + 250, 350) == 0 &&
		  e.buf[60350] == 0xee,
	      "SEND scattered over the receive SGEs, nothing past byte_len");

	post_recv(&e, 79, e.buf + 70000, 128);
	barrier(sock);
	barrier(sock);
	n = wait_wc(e.cq, &wc, 10);
	check(n == 1 && wc.wr_id == 79 && wc.byte_len == 64 && ntohl(wc.imm_data) == 42 &&
		  strcmp((char *)e.buf + 70000, "inline data: no MR needed") == 0,
	      "inline SEND WITH IMM arrived");

	fill(e.buf + (1u << 20), 8192, 5);
	barrier(sock);
	barrier(sock);

	/* in order */
	for (i = 0; i < 2000; i++)
		post_recv(&e, 1000 + (uint64_t)i, NULL, 0);
	barrier(sock);
	for (i = 0, good = 1; i < 2000; i++) {
		uint32_t *slot = (uint32_t *)(e.buf + (4u << 20));

		if (wait_wc(e.cq, &wc, 10) != 1 || wc.status != IBV_WC_SUCCESS) {
			good = 0;
			break;
		}
		/* completion i: imm i, and writes 0..i have landed */
		if (ntohl(wc.imm_data) != (uint32_t)i || wc.wr_id != 1000 + (uint64_t)i ||
		    slot[i] != (uint32_t)i) {
			note("completion %d: imm %u wr_id %llu slot %u", i, ntohl(wc.imm_data),
			     (unsigned long long)wc.wr_id, slot[i]);
			good = 0;
			break;
		}
	}
	check(good, "2000 WRITE WITH IMM delivered in order, data before its completion");
	barrier(sock);

	post_recv(&e, 64, NULL, 0);
	barrier(sock);
	n = wait_wc(e.cq, &wc, 30);
	check(n == 1 && wc.status == IBV_WC_SUCCESS && wc.byte_len == BIG,
	      "64 MiB WRITE WITH IMM: receive completion, byte_len %u", wc.byte_len);
	fill(ref, BIG, 64);
	{
		size_t d = first_diff(e.buf, ref, BIG);

		check(d == BIG, "64 MiB arrived intact (first difference at %zu)", d);
	}
	barrier(sock);
	barrier(sock);
	free(ref);
	ep_close(&e);
}

/* ---------------------------------------------------------------- errors */

/* B: connect, wait until A says done, close. */
static void passive_b(int sock)
{
	struct copts o = copts_default;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	barrier(sock);
	ep_close(&e);
}

static void bad_rkey_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;
	double t0;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	t0 = now_s();
	post_rdma(&e, IBV_WR_RDMA_WRITE, 1, e.buf, 4096, e.peer.addr, e.peer.rkey + 0x100, 0,
		  IBV_SEND_SIGNALED);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 2, e.buf, 4096, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 3, e.buf, 4096, e.peer.addr, e.peer.rkey, 0, 0);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 1 && wc.status == IBV_WC_REM_ACCESS_ERR,
	      "bad rkey: REM_ACCESS_ERR (got %s)", ibv_wc_status_str(wc.status));
	note("bad rkey reported after %.1f ms", (now_s() - t0) * 1e3);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 2 && wc.status == IBV_WC_WR_FLUSH_ERR,
	      "next WR: FLUSH_ERR");
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 3 && wc.status == IBV_WC_WR_FLUSH_ERR,
	      "unsignaled WR after it: FLUSH_ERR too");
	check(qp_state(e.qp) == IBV_QPS_ERR, "requester QP is in ERR");
	post_rdma(&e, IBV_WR_RDMA_WRITE, 4, e.buf, 4096, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 4 && wc.status == IBV_WC_WR_FLUSH_ERR,
	      "WR posted in ERR: FLUSH_ERR");
	barrier(sock);
	ep_close(&e);
}

static void oob_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 1, e.buf, 8192, e.peer.addr + e.peer.len - 4096,
		  e.peer.rkey, 0, IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_REM_ACCESS_ERR,
	      "write past the end of the MR: REM_ACCESS_ERR (got %s)",
	      ibv_wc_status_str(wc.status));
	check(qp_state(e.qp) == IBV_QPS_ERR, "requester QP is in ERR");
	barrier(sock);
	ep_close(&e);
}

/* B registers its MR without REMOTE_WRITE. */
static void ro_b(int sock)
{
	struct copts o = copts_default;
	struct ep e;

	o.access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ;
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	barrier(sock);
	ep_close(&e);
}

static void ro_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 1, e.buf, 64, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_REM_ACCESS_ERR,
	      "write to an MR without REMOTE_WRITE: REM_ACCESS_ERR (got %s)",
	      ibv_wc_status_str(wc.status));
	barrier(sock);
	ep_close(&e);
}

static void lkey_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_sge sge;
	struct ibv_send_wr wr, *bad;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	sge.addr = (uintptr_t)e.buf;
	sge.length = 64;
	sge.lkey = e.mr->lkey ^ 0x5500;
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 5;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = e.peer.addr;
	wr.wr.rdma.rkey = e.peer.rkey;
	check(ibv_post_send(e.qp, &wr, &bad) == 0, "post with a bad lkey is accepted");
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 5 && wc.status == IBV_WC_LOC_PROT_ERR,
	      "bad lkey: LOC_PROT_ERR (got %s)", ibv_wc_status_str(wc.status));
	check(qp_state(e.qp) == IBV_QPS_ERR, "QP is in ERR");
	barrier(sock);
	ep_close(&e);
}

static void len_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	barrier(sock); /* B posted a 16-byte receive */
	post_rdma(&e, IBV_WR_SEND, 1, e.buf, 64, 0, 0, 0, IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_REM_INV_REQ_ERR,
	      "SEND larger than the receive: REM_INV_REQ_ERR (got %s)",
	      ibv_wc_status_str(wc.status));
	barrier(sock);
	ep_close(&e);
}

static void len_b(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	post_recv(&e, 9, e.buf, 16);
	post_recv(&e, 10, e.buf, 16);
	barrier(sock);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 9 && wc.status == IBV_WC_LOC_LEN_ERR,
	      "receiver: LOC_LEN_ERR (got %s)", ibv_wc_status_str(wc.status));
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 10 && wc.status == IBV_WC_WR_FLUSH_ERR,
	      "receiver: next receive flushed");
	barrier(sock);
	ep_close(&e);
}

/* RNR: A sends with rnr_retry 2; B never posts a receive. */
static void rnr_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;
	double t0, dt;

	o.rnr_retry = 2;
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	t0 = now_s();
	post_rdma(&e, IBV_WR_SEND, 1, e.buf, 64, 0, 0, 0, IBV_SEND_SIGNALED);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 2, e.buf, 64, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 1 && wc.status == IBV_WC_RNR_RETRY_EXC_ERR,
	      "no receive posted: RNR_RETRY_EXC_ERR (got %s)", ibv_wc_status_str(wc.status));
	dt = now_s() - t0;
	check(dt >= 0.0015 && dt < 5, "after the RNR retries (%.1f ms: 3 x 0.64 ms and more)",
	      dt * 1e3);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 2 && wc.status == IBV_WC_WR_FLUSH_ERR,
	      "the WRITE behind it is flushed");
	barrier(sock);

	/* a fresh pair with infinite RNR retry: the receive comes late, the SEND succeeds */
	ep_close(&e);
	o.rnr_retry = 7;
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	post_rdma(&e, IBV_WR_SEND, 3, e.buf, 64, 0, 0, 0, IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 3 && wc.status == IBV_WC_SUCCESS,
	      "rnr_retry 7: SEND waits for the late receive and succeeds");
	barrier(sock);
	ep_close(&e);
}

static void rnr_b(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	barrier(sock);
	check(qp_state(e.qp) == IBV_QPS_RTS, "responder QP stays in RTS after RNR");
	ep_close(&e);
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	usleep(100000);
	post_recv(&e, 4, e.buf, 128);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.wr_id == 4 && wc.status == IBV_WC_SUCCESS &&
		  wc.byte_len == 64,
	      "late receive gets the SEND");
	barrier(sock);
	ep_close(&e);
}

/* B dies without cleaning up; A's WRITE ends in RETRY_EXC_ERR. */
static void death_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;
	double t0, dt;
	char c;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	if (read(sock, &c, 1) != 0)
		note("B did not die?");
	t0 = now_s();
	post_rdma(&e, IBV_WR_RDMA_WRITE, 1, e.buf, 4096, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_RETRY_EXC_ERR,
	      "peer died: RETRY_EXC_ERR (got %s)", ibv_wc_status_str(wc.status));
	dt = now_s() - t0;
	check(dt < 3, "within the capped retry time (%.0f ms)", dt * 1e3);
	check(qp_state(e.qp) == IBV_QPS_ERR, "QP is in ERR");
	ep_close(&e);
}

static void death_b(int sock)
{
	struct copts o = copts_default;
	struct ep e;

	if (ep_setup(&e, sock, 1 << 20, &o) == 0)
		_exit(0); /* no cleanup: like a crash (the socket file stays behind) */
	check(0, "B: setup");
}

/* CQ of 4 entries, 8 signaled completions: overrun is an error. */
static void overflow_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc[8];
	struct ep e;
	int i, n, total = 0, err = 0;

	o.cqe = 4;
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	for (i = 0; i < 8; i++)
		post_rdma(&e, IBV_WR_RDMA_WRITE, (uint64_t)i, e.buf, 64, e.peer.addr, e.peer.rkey,
			  0, IBV_SEND_SIGNALED);
	usleep(200000);
	for (i = 0; i < 20 && !err; i++) {
		n = ibv_poll_cq(e.cq, 8, wc);
		if (n < 0)
			err = 1;
		else
			total += n;
	}
	check(total == 4 && err, "CQ overrun: 4 completions, then poll_cq fails (%d, %d)", total,
	      err);
	barrier(sock);
	ep_close(&e);
}

/* ---------------------------------------------------------------- fault injection */

static void drop_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_port_attr pa;
	struct ibv_wc wc;
	struct ep e;
	int i, n, okc = 0, exc = 0, flush = 0, other = 0;
	double t0, dt;

	SETUP_OR_RETURN(&e, sock, 4 << 20, &o);
	t0 = now_s();
	for (i = 0; i < 8; i++) /* 8 x 256 KiB; the link dies after 1 MiB */
		post_rdma(&e, IBV_WR_RDMA_WRITE, (uint64_t)i, e.buf, 256 << 10, e.peer.addr,
			  e.peer.rkey, 0, IBV_SEND_SIGNALED);
	for (i = 0; i < 8; i++) {
		n = wait_wc(e.cq, &wc, 10);
		if (n != 1)
			break;
		if (wc.status == IBV_WC_SUCCESS)
			okc++;
		else if (wc.status == IBV_WC_RETRY_EXC_ERR)
			exc++;
		else if (wc.status == IBV_WC_WR_FLUSH_ERR)
			flush++;
		else
			other++;
	}
	dt = now_s() - t0;
	check(exc == 1 && other == 0 && okc + exc + flush == 8 && okc <= 4,
	      "link dropped after 1 MiB: %d ok, then RETRY_EXC_ERR (%d), %d flushed", okc, exc,
	      flush);
	check(dt < 5, "within bounded time (%.0f ms)", dt * 1e3);
	check(ibv_query_port(e.ctx, 1, &pa) == 0 && pa.state == IBV_PORT_DOWN, "port is DOWN");
	{
		struct ibv_async_event ev;

		fcntl(e.ctx->async_fd, F_SETFL, O_NONBLOCK);
		check(ibv_get_async_event(e.ctx, &ev) == 0 && ev.event_type == IBV_EVENT_PORT_ERR,
		      "async event: %s", ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
	barrier(sock);
	ep_close(&e);
}

static void flip_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	memset(e.buf, 0, 4096);
	post_rdma(&e, IBV_WR_RDMA_WRITE, 1, e.buf, 4096, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS, "WRITE completes");
	check(e.buf[100] == 0, "sender's memory untouched");
	barrier(sock);
	barrier(sock);
	ep_close(&e);
}

static void flip_b(int sock)
{
	struct copts o = copts_default;
	struct ep e;
	int i, others = 0;

	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	barrier(sock);
	for (i = 0; i < 4096; i++)
		others += i != 100 && e.buf[i] != 0;
	check(e.buf[100] == 0x01 && others == 0,
	      "byte 100 arrived with a bit flipped (0x%02x), "
	      "no other damage",
	      e.buf[100]);
	barrier(sock);
	ep_close(&e);
}

/* A: time a small WRITE; expect >= want_ms (or < max_ms when the fault is scoped away). */
static void timed_write(int sock, uint32_t len, double min_ms, double max_ms, const char *what)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;
	double t0, ms;

	SETUP_OR_RETURN(&e, sock, len < 4096 ? 4096 : len, &o);
	t0 = now_s();
	post_rdma(&e, IBV_WR_RDMA_WRITE, 1, e.buf, len, e.peer.addr, e.peer.rkey, 0,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 30) == 1 && wc.status == IBV_WC_SUCCESS, "WRITE completes");
	ms = (now_s() - t0) * 1e3;
	check(ms >= min_ms && ms < max_ms, "%s: %.1f ms (expected %.0f..%.0f)", what, ms, min_ms,
	      max_ms);
	barrier(sock);
	ep_close(&e);
}

static void latency_a(int sock)
{
	timed_write(sock, 64, 50, 5000, "64-byte WRITE with 50 ms added latency");
}

static void scoped_a(int sock)
{
	timed_write(sock, 64, 0, 250, "latency (500 ms) scoped to another rank does not apply");
}

static void bw_a(int sock)
{
	/* 0.8 Gb/s = 100 MB/s: 16 MiB take about 168 ms */
	timed_write(sock, 16 << 20, 140, 10000, "16 MiB at a 0.8 Gb/s cap");
}

static void bw_b(int sock)
{
	struct copts o = copts_default;
	struct ep e;

	SETUP_OR_RETURN(&e, sock, 16 << 20, &o);
	barrier(sock);
	ep_close(&e);
}

/* ---------------------------------------------------------------- RoCE and staged DMA */

static void roce_a(int sock)
{
	struct copts o = copts_default;
	struct ibv_qp_attr a;
	struct ibv_port_attr pa;
	struct ibv_wc wc;
	struct ep e, x;

	/* without a GRH, RTR is refused on Ethernet */
	if (check(ep_open(&x, 4096, &o) == 0, "open")) {
		qp_init(x.qp);
		memset(&a, 0, sizeof(a));
		a.qp_state = IBV_QPS_RTR;
		a.path_mtu = IBV_MTU_1024;
		a.dest_qp_num = 1;
		a.max_dest_rd_atomic = 1;
		a.ah_attr.port_num = 1;
		a.ah_attr.dlid = 5;
		check(ibv_modify_qp(x.qp, &a,
				    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
					IBV_QP_MIN_RNR_TIMER) == EINVAL,
		      "RoCE: INIT->RTR without GRH fails with EINVAL");
		ibv_query_port(x.ctx, 1, &pa);
		check(pa.lid == 0 && pa.link_layer == IBV_LINK_LAYER_ETHERNET, "RoCE port: LID 0");
		ep_close(&x);
	}
	o.global = 1;
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	fill(e.buf, 1 << 20, 9);
	post_rdma(&e, IBV_WR_RDMA_WRITE_WITH_IMM, 1, e.buf, 1 << 20, e.peer.addr, e.peer.rkey, 9,
		  IBV_SEND_SIGNALED);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS,
	      "RoCE (GRH, GID index 1): WRITE WITH IMM completes");
	barrier(sock);
	ep_close(&e);
}

static void roce_b(int sock)
{
	struct copts o = copts_default;
	struct ibv_wc wc;
	struct ep e;
	uint8_t *ref = malloc(1 << 20);

	o.global = 1;
	SETUP_OR_RETURN(&e, sock, 1 << 20, &o);
	post_recv(&e, 1, NULL, 0);
	check(wait_wc(e.cq, &wc, 10) == 1 && wc.status == IBV_WC_SUCCESS && wc.byte_len == 1 << 20,
	      "RoCE: receive completion");
	fill(ref, 1 << 20, 9);
	check(memcmp(ref, e.buf, 1 << 20) == 0, "RoCE: data intact");
	barrier(sock);
	free(ref);
	ep_close(&e);
}

/* ---------------------------------------------------------------- main */

static void nop(int sock)
{
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

int main(void)
{
	static const char *const env_def[] = {NULL};
	static const char *const env_cfg[] = {
	    "IBCOLL_SOFTHCA_DEVICES=2", "IBCOLL_SOFTHCA_LINK_LAYER=Ethernet",
	    "IBCOLL_SOFTHCA_RATE_GBPS=200", "IBCOLL_SOFTHCA_PORT_STATE=DOWN", NULL};
	static const char *const env_drop[] = {"IBCOLL_SOFTHCA_DROP_AFTER_BYTES=1048576", NULL};
	static const char *const env_flip[] = {"IBCOLL_SOFTHCA_FLIP_BYTE=100", NULL};
	static const char *const env_lat[] = {"IBCOLL_SOFTHCA_LATENCY_US=50000", NULL};
	static const char *const env_scoped[] = {"IBCOLL_SOFTHCA_LATENCY_US=500000",
						 "IBCOLL_SOFTHCA_FAULT_RANK=1", "IBCOLL_RANK=0",
						 NULL};
	static const char *const env_bw[] = {"IBCOLL_SOFTHCA_BW_GBPS=0.8", NULL};
	static const char *const env_roce[] = {"IBCOLL_SOFTHCA_LINK_LAYER=Ethernet", NULL};
	static const char *const env_staged[] = {"IBCOLL_SOFTHCA_DMA=staged", NULL};
	char dir[] = "/tmp/ibcoll-shca-test-XXXXXX";
	static char direnv[64];

	if (!mkdtemp(dir))
		return tap_skip_all("cannot create a socket directory in /tmp");
	snprintf(direnv, sizeof(direnv), "IBCOLL_SOFTHCA_DIR=%s", dir);
	putenv(direnv);
	signal(SIGPIPE, SIG_IGN);

	run_pair("device", env_def, t_device, env_cfg, t_device_config);
	run_pair("symbols+states", env_def, t_symbols, env_def, t_state_machine);
	run_pair("loopback", env_def, t_loopback, env_def, nop);
	run_pair("data path", env_def, dp_a, env_def, dp_b);
	run_pair("data path, staged DMA", env_staged, dp_a, env_staged, dp_b);
	run_pair("bad rkey", env_def, bad_rkey_a, env_def, passive_b);
	run_pair("out of bounds", env_def, oob_a, env_def, passive_b);
	run_pair("no REMOTE_WRITE", env_def, ro_a, env_def, ro_b);
	run_pair("bad lkey", env_def, lkey_a, env_def, passive_b);
	run_pair("length error", env_def, len_a, env_def, len_b);
	run_pair("RNR", env_def, rnr_a, env_def, rnr_b);
	run_pair("peer death", env_def, death_a, env_def, death_b);
	run_pair("CQ overrun", env_def, overflow_a, env_def, passive_b);
	run_pair("fault: drop after 1 MiB", env_drop, drop_a, env_def, passive_b);
	run_pair("fault: flip byte 100", env_flip, flip_a, env_def, flip_b);
	run_pair("fault: latency 50 ms", env_lat, latency_a, env_def, passive_b);
	run_pair("fault: scoped to rank 1", env_scoped, scoped_a, env_def, passive_b);
	run_pair("fault: bandwidth 0.8 Gb/s", env_bw, bw_a, env_def, bw_b);
	run_pair("RoCE", env_roce, roce_a, env_roce, roce_b);

	ok(count_files(dir) <= 1,
	   "socket files cleaned up (%d left; the crashed process leaves one)", count_files(dir));
	remove_dir(dir);
	return tap_done();
}
