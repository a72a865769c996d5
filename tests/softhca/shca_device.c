/* SPDX-License-Identifier: MIT */
/*
 * shca_device.c - configuration, device list, contexts (HCA instances), port/GID queries,
 * async events and the verbs string helpers of the software HCA.
 */
#include "shca.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- configuration */

static struct shca_config shca_cfg;
static pthread_once_t shca_cfg_once = PTHREAD_ONCE_INIT;

atomic_uint_fast64_t shca__tx_bytes;
atomic_int shca__link_dead;
atomic_int shca__flip_done;

uint64_t shca__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void shca__log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "softhca[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);
}

/* Parse an unsigned number; 0 on success, -EINVAL on junk. */
static int shca_env_u64(const char *name, uint64_t *out)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return -ENOENT;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || *s == '-') {
		shca__log("ignoring %s='%s': not an unsigned number", name, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int shca_env_double(const char *name, double *out)
{
	const char *s = getenv(name);
	char *end;
	double v;

	if (!s || !*s)
		return -ENOENT;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0)) {
		shca__log("ignoring %s='%s': not a positive number", name, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Faults apply to this process unless IBCOLL_SOFTHCA_FAULT_RANK names another rank. */
static int shca_faults_apply(void)
{
	const char *want = getenv("IBCOLL_SOFTHCA_FAULT_RANK");
	const char *rank = getenv("IBCOLL_RANK");

	if (!want || !*want)
		return 1;
	return rank && strcmp(want, rank) == 0;
}

static void shca_config_faults(struct shca_config *c)
{
	uint64_t v;
	double d;

	if (!shca_faults_apply())
		return;
	if (shca_env_u64("IBCOLL_SOFTHCA_DROP_AFTER_BYTES", &v) == 0) {
		c->drop_set = 1;
		c->drop_after = v;
	}
	if (shca_env_u64("IBCOLL_SOFTHCA_LATENCY_US", &v) == 0)
		c->latency_ns = v * 1000;
	if (shca_env_double("IBCOLL_SOFTHCA_BW_GBPS", &d) == 0)
		c->bw_bytes_per_ns = d / 8.0; /* Gb/s -> bytes/ns */
	if (shca_env_u64("IBCOLL_SOFTHCA_FLIP_BYTE", &v) == 0) {
		c->flip_set = 1;
		c->flip_byte = v;
	}
}

static void shca_config_load(void)
{
	struct shca_config *c = &shca_cfg;
	const char *s;
	uint64_t v;

	c->ndev = 1;
	c->link_layer = IBV_LINK_LAYER_INFINIBAND;
	c->rate_gbps = 400;
	c->port_state = IBV_PORT_ACTIVE;
	s = getenv("IBCOLL_SOFTHCA_DEBUG");
	c->debug = s && *s && strcmp(s, "0") != 0;
	if (shca_env_u64("IBCOLL_SOFTHCA_DEVICES", &v) == 0) {
		if (v > SHCA_MAX_DEVICES)
			shca__log("IBCOLL_SOFTHCA_DEVICES=%llu: using the maximum, %d",
				  (unsigned long long)v, SHCA_MAX_DEVICES);
		c->ndev = v > SHCA_MAX_DEVICES ? SHCA_MAX_DEVICES : (int)v;
	}
	s = getenv("IBCOLL_SOFTHCA_LINK_LAYER");
	if (s && (!strcasecmp(s, "Ethernet") || !strcasecmp(s, "RoCE") || !strcasecmp(s, "eth")))
		c->link_layer = IBV_LINK_LAYER_ETHERNET;
	else if (s && *s && strcasecmp(s, "IB") && strcasecmp(s, "InfiniBand"))
		shca__log("ignoring IBCOLL_SOFTHCA_LINK_LAYER='%s' (IB or Ethernet)", s);
	shca_env_double("IBCOLL_SOFTHCA_RATE_GBPS", &c->rate_gbps);
	s = getenv("IBCOLL_SOFTHCA_PORT_STATE");
	if (s && !strcasecmp(s, "DOWN"))
		c->port_state = IBV_PORT_DOWN;
	else if (s && !strcasecmp(s, "INIT"))
		c->port_state = IBV_PORT_INIT;
	else if (s && *s && strcasecmp(s, "ACTIVE"))
		shca__log("ignoring IBCOLL_SOFTHCA_PORT_STATE='%s' (ACTIVE, DOWN or INIT)", s);
	s = getenv("IBCOLL_SOFTHCA_DIR");
	if (s && *s && strlen(s) >= sizeof(c->dir))
		shca__log("IBCOLL_SOFTHCA_DIR is longer than %zu characters: using the default",
			  sizeof(c->dir) - 1);
	if (s && *s && strlen(s) < sizeof(c->dir))
		snprintf(c->dir, sizeof(c->dir), "%s", s);
	else
		snprintf(c->dir, sizeof(c->dir), "/tmp/ibcoll-softhca-%u", (unsigned)getuid());
	s = getenv("IBCOLL_SOFTHCA_DMA");
	c->dma_staged = s && !strcasecmp(s, "staged");
	shca_config_faults(c);
	if (c->port_state != IBV_PORT_ACTIVE)
		atomic_store(&shca__link_dead, 1);
	if (c->drop_set && c->drop_after == 0)
		atomic_store(&shca__link_dead, 1);
	if (c->debug) /* not SHCA_DBG: that would re-enter pthread_once */
		shca__log(
		    "config: %d device(s), %s, %.0f Gb/s, dir %s, drop %s%llu, latency %llu ns, "
		    "bw %.3f B/ns, flip %s%llu",
		    c->ndev, c->link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "IB",
		    c->rate_gbps, c->dir, c->drop_set ? "" : "off/",
		    (unsigned long long)c->drop_after, (unsigned long long)c->latency_ns,
		    c->bw_bytes_per_ns, c->flip_set ? "" : "off/",
		    (unsigned long long)c->flip_byte);
}

const struct shca_config *shca__config(void)
{
	pthread_once(&shca_cfg_once, shca_config_load);
	return &shca_cfg;
}

int shca__link_up(void)
{
	return !atomic_load(&shca__link_dead);
}

/* ---------------------------------------------------------------- devices */

static struct ibv_device shca_devs[SHCA_MAX_DEVICES];
static pthread_mutex_t shca_open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shca_ctx *shca_open_list; /* borrowed entries; guarded by shca_open_lock */
static int shca_atexit_done;

static void shca_devs_init(void)
{
	const struct shca_config *c = shca__config();
	int i;

	for (i = 0; i < c->ndev; i++) {
		struct ibv_device *d = &shca_devs[i];

		d->node_type = IBV_NODE_CA;
		d->transport_type = IBV_TRANSPORT_IB;
		snprintf(d->name, sizeof(d->name), "softhca_%d", i);
		snprintf(d->dev_name, sizeof(d->dev_name), "uverbs%d", i);
		snprintf(d->dev_path, sizeof(d->dev_path), "/sys/class/infiniband_verbs/uverbs%d",
			 i);
		snprintf(d->ibdev_path, sizeof(d->ibdev_path), "/sys/class/infiniband/softhca_%d",
			 i);
	}
}

static pthread_once_t shca_devs_once = PTHREAD_ONCE_INIT;

static int shca_dev_index(struct ibv_device *dev)
{
	long i = dev - shca_devs;

	if (i < 0 || i >= shca__config()->ndev)
		return -1;
	return (int)i;
}

/* Node GUID: known before open, so it comes from the pid and the device index. */
static uint64_t shca_node_guid(int index)
{
	return 0x02c9030000000000ull | ((uint64_t)(getpid() & 0xffffff) << 8) |
	       (uint64_t)(index & 0xff);
}

SHCA_EXPORT struct ibv_device **ibv_get_device_list(int *num_devices)
{
	struct ibv_device **list;
	int i, n;

	pthread_once(&shca_devs_once, shca_devs_init);
	n = shca__config()->ndev;
	list = calloc((size_t)n + 1, sizeof(*list));
	if (!list) {
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++)
		list[i] = &shca_devs[i];
	if (num_devices)
		*num_devices = n;
	return list;
}

SHCA_EXPORT void ibv_free_device_list(struct ibv_device **list)
{
	free(list);
}

SHCA_EXPORT const char *ibv_get_device_name(struct ibv_device *device)
{
	return device->name;
}

SHCA_EXPORT int ibv_get_device_index(struct ibv_device *device)
{
	return shca_dev_index(device);
}

SHCA_EXPORT __be64 ibv_get_device_guid(struct ibv_device *device)
{
	int i = shca_dev_index(device);

	return i < 0 ? 0 : htobe64(shca_node_guid(i));
}

/* ---------------------------------------------------------------- identity */

/* GIDs carry the LID: fe80::02c9:03ff:fe<lid16><dev8> (index 0) and, on Ethernet, the
 * IPv4-mapped RoCE v2 address ::ffff:10.73.<lid_hi>.<lid_lo> (index 1). */
static void shca_make_gids(struct shca_ctx *ctx)
{
	union ibv_gid *g = &ctx->gid[0];

	memset(ctx->gid, 0, sizeof(ctx->gid));
	g->raw[0] = 0xfe;
	g->raw[1] = 0x80;
	g->raw[8] = 0x02;
	g->raw[9] = 0xc9;
	g->raw[10] = 0x03;
	g->raw[11] = 0xff;
	g->raw[12] = 0xfe;
	g->raw[13] = (uint8_t)(ctx->lid >> 8);
	g->raw[14] = (uint8_t)ctx->lid;
	g->raw[15] = (uint8_t)ctx->index;
	ctx->ngid = 1;
	if (shca__config()->link_layer != IBV_LINK_LAYER_ETHERNET)
		return;
	g = &ctx->gid[1];
	g->raw[10] = 0xff;
	g->raw[11] = 0xff;
	g->raw[12] = 10;
	g->raw[13] = 73;
	g->raw[14] = (uint8_t)(ctx->lid >> 8);
	g->raw[15] = (uint8_t)ctx->lid;
	ctx->ngid = 2;
}

uint16_t shca__lid_from_gid(const union ibv_gid *g)
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(g->raw, v4, sizeof(v4)) == 0)
		return (uint16_t)(g->raw[14] << 8 | g->raw[15]);
	return (uint16_t)(g->raw[13] << 8 | g->raw[14]);
}

const union ibv_gid *shca__gid(struct shca_ctx *ctx, int index)
{
	return index >= 0 && index < ctx->ngid ? &ctx->gid[index] : NULL;
}

int shca__port_active(struct shca_ctx *ctx)
{
	return shca__config()->port_state == IBV_PORT_ACTIVE && shca__link_up();
}

static int shca_mkdir_p(const char *dir)
{
	char tmp[256];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The socket of the HCA instance with this LID. */
int shca__sock_path(char *buf, size_t len, uint16_t lid)
{
	int n = snprintf(buf, len, "%s/lid-%04x.sock", shca__config()->dir, lid);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Is somebody listening at path? (a leftover file of a dead process is not) */
static int shca_path_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int alive;

	if (fd < 0)
		return 1;
	alive = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno != ECONNREFUSED;
	close(fd);
	return alive;
}

/* Bind a listening socket at dir/lid-XXXX.sock; the file system makes the LID unique. */
static int shca_listen(struct shca_ctx *ctx)
{
	const struct shca_config *c = shca__config();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint32_t h = (uint32_t)getpid() * 2654435761u + (uint32_t)ctx->index * 40503u;
	int fd, rc, tries;

	rc = shca_mkdir_p(c->dir);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (tries = 0; tries < 4096; tries++) {
		ctx->lid = (uint16_t)(1 + (h + (uint32_t)tries) % 0xbffe);
		if (shca__sock_path(sa.sun_path, sizeof(sa.sun_path), ctx->lid) < 0) {
			rc = -ENAMETOOLONG;
			goto close_fd;
		}
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno != EADDRINUSE) {
			rc = -errno;
			goto close_fd;
		}
		if (!shca_path_alive(&sa) && unlink(sa.sun_path) == 0) {
			tries--; /* stale: retry the same LID */
			continue;
		}
	}
	if (tries == 4096) {
		rc = -EADDRINUSE;
		goto close_fd;
	}
	if (listen(fd, 256) < 0) {
		rc = -errno;
		unlink(sa.sun_path);
		goto close_fd;
	}
	snprintf(ctx->sock_path, sizeof(ctx->sock_path), "%s", sa.sun_path);
	ctx->listen_fd = fd;
	return 0;

close_fd:
	close(fd);
	return rc;
}

static void shca_atexit(void)
{
	struct shca_ctx *c;

	pthread_mutex_lock(&shca_open_lock);
	for (c = shca_open_list; c; c = c->next_open)
		unlink(c->sock_path);
	pthread_mutex_unlock(&shca_open_lock);
}

__attribute__((destructor)) static void shca_fini(void)
{
	shca_atexit();
}

static int shca_ctx_fds(struct shca_ctx *ctx)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int p[2];

	ctx->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->wake_fd < 0)
		return -errno;
	if (pipe2(p, O_CLOEXEC) < 0)
		goto close_wake;
	ctx->async_rfd = p[0];
	ctx->async_wfd = p[1];
	fcntl(ctx->async_wfd, F_SETFL, O_NONBLOCK);
	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->epfd < 0)
		goto close_pipe;
	ev.data.ptr = &ctx->listen_fd;
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->listen_fd, &ev) < 0)
		goto close_ep;
	ev.data.ptr = &ctx->wake_fd;
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->wake_fd, &ev) < 0)
		goto close_ep;
	return 0;

close_ep:
	close(ctx->epfd);
close_pipe:
	close(ctx->async_rfd);
	close(ctx->async_wfd);
close_wake:
	close(ctx->wake_fd);
	return -EMFILE;
}

static void shca_ctx_close_fds(struct shca_ctx *ctx)
{
	close(ctx->epfd);
	close(ctx->async_rfd);
	close(ctx->async_wfd);
	close(ctx->wake_fd);
}

/* The progress thread takes no signals: they belong to the application's threads. */
static int shca_start_thread(struct shca_ctx *ctx)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ctx->thread, NULL, shca__progress, ctx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

SHCA_EXPORT struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	struct shca_ctx *ctx;
	int index = shca_dev_index(device), rc;

	if (index < 0) {
		errno = ENODEV;
		return NULL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	ctx->index = index;
	ctx->bounce = malloc(SHCA_BOUNCE_BYTES);
	if (!ctx->bounce) {
		rc = -ENOMEM;
		goto free_ctx;
	}
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->cond, NULL);
	rc = shca_listen(ctx);
	if (rc)
		goto free_bounce;
	rc = shca_ctx_fds(ctx);
	if (rc)
		goto close_listen;
	shca_make_gids(ctx);

	ctx->ibctx.device = device;
	ctx->ibctx.ops.poll_cq = shca__poll_cq;
	ctx->ibctx.ops.req_notify_cq = shca__req_notify_cq;
	ctx->ibctx.ops.post_send = shca__post_send;
	ctx->ibctx.ops.post_recv = shca__post_recv;
	ctx->ibctx.cmd_fd = -1;
	ctx->ibctx.async_fd = ctx->async_rfd;
	ctx->ibctx.num_comp_vectors = 1;
	ctx->ibctx.abi_compat = NULL; /* a plain context: inlines take their legacy paths */
	pthread_mutex_init(&ctx->ibctx.mutex, NULL);

	rc = shca_start_thread(ctx);
	if (rc)
		goto close_fds;

	pthread_mutex_lock(&shca_open_lock);
	ctx->next_open = shca_open_list;
	shca_open_list = ctx;
	if (!shca_atexit_done) {
		shca_atexit_done = 1;
		atexit(shca_atexit);
	}
	pthread_mutex_unlock(&shca_open_lock);
	SHCA_DBG("%s: opened, lid 0x%04x, socket %s", device->name, ctx->lid, ctx->sock_path);
	return &ctx->ibctx;

close_fds:
	shca_ctx_close_fds(ctx);
close_listen:
	close(ctx->listen_fd);
	unlink(ctx->sock_path);
free_bounce:
	free(ctx->bounce);
free_ctx:
	free(ctx);
	errno = -rc;
	return NULL;
}

SHCA_EXPORT int ibv_close_device(struct ibv_context *context)
{
	struct shca_ctx *ctx = shca_ctx_of(context), **pp;

	pthread_mutex_lock(&shca_open_lock);
	for (pp = &shca_open_list; *pp; pp = &(*pp)->next_open) {
		if (*pp == ctx) {
			*pp = ctx->next_open;
			break;
		}
	}
	pthread_mutex_unlock(&shca_open_lock);

	pthread_mutex_lock(&ctx->lock);
	ctx->stop = 1;
	pthread_mutex_unlock(&ctx->lock);
	shca__wake(ctx);
	pthread_join(ctx->thread, NULL);
	shca__conns_close_all(ctx);
	shca_ctx_close_fds(ctx);
	close(ctx->listen_fd);
	unlink(ctx->sock_path);
	SHCA_DBG("%s: closed", context->device->name);
	free(ctx->qps);
	free(ctx->mrs);
	free(ctx->bounce);
	pthread_mutex_destroy(&ctx->ibctx.mutex);
	pthread_cond_destroy(&ctx->cond);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
	return 0;
}

void shca__wake(struct shca_ctx *ctx)
{
	uint64_t one = 1;

	if (atomic_exchange(&ctx->wake_pending, 1))
		return;
	if (write(ctx->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		shca__log("wake: %s", strerror(errno));
}

int shca__sync(struct shca_ctx *ctx)
{
	uint64_t req;

	pthread_mutex_lock(&ctx->lock);
	req = ++ctx->sync_req;
	pthread_mutex_unlock(&ctx->lock);
	atomic_store(&ctx->wake_pending, 0);
	shca__wake(ctx);
	pthread_mutex_lock(&ctx->lock);
	while (ctx->sync_done < req && !ctx->stop)
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

/* ---------------------------------------------------------------- async events */

void shca__async_event(struct shca_ctx *ctx, enum ibv_event_type type, void *obj)
{
	struct ibv_async_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.event_type = type;
	switch (type) {
	case IBV_EVENT_CQ_ERR:
		ev.element.cq = obj;
		break;
	case IBV_EVENT_PORT_ERR:
	case IBV_EVENT_PORT_ACTIVE:
		ev.element.port_num = 1;
		break;
	default:
		ev.element.qp = obj;
		break;
	}
	if (write(ctx->async_wfd, &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
		SHCA_DBG("async event %d dropped", type);
}

SHCA_EXPORT int ibv_get_async_event(struct ibv_context *context, struct ibv_async_event *event)
{
	ssize_t n = read(context->async_fd, event, sizeof(*event));

	if (n == (ssize_t)sizeof(*event))
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

SHCA_EXPORT void ibv_ack_async_event(struct ibv_async_event *event)
{
}

/* Mark the link dead (DROP_AFTER_BYTES reached) and tell every open instance. */
void shca__kill_link(void)
{
	struct shca_ctx *c;

	if (atomic_exchange(&shca__link_dead, 1))
		return;
	SHCA_DBG("fault: link dropped after %llu payload bytes",
		 (unsigned long long)atomic_load(&shca__tx_bytes));
	pthread_mutex_lock(&shca_open_lock);
	for (c = shca_open_list; c; c = c->next_open) {
		shca__async_event(c, IBV_EVENT_PORT_ERR, NULL);
		shca__wake(c);
	}
	pthread_mutex_unlock(&shca_open_lock);
}

/* ---------------------------------------------------------------- queries */

SHCA_EXPORT int ibv_query_device(struct ibv_context *context, struct ibv_device_attr *a)
{
	struct shca_ctx *ctx = shca_ctx_of(context);

	memset(a, 0, sizeof(*a));
	snprintf(a->fw_ver, sizeof(a->fw_ver), "1.0.0 (ibcoll softhca)");
	a->node_guid = htobe64(shca_node_guid(ctx->index));
	a->sys_image_guid = a->node_guid;
	a->max_mr_size = ~0ull;
	a->page_size_cap = 0xfffff000;
	a->vendor_id = 0;
	a->vendor_part_id = 0;
	a->hw_ver = 1;
	a->max_qp = SHCA_MAX_QPS;
	a->max_qp_wr = SHCA_MAX_QP_WR;
	a->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN | IBV_DEVICE_PORT_ACTIVE_EVENT |
			      IBV_DEVICE_SYS_IMAGE_GUID | IBV_DEVICE_CHANGE_PHY_PORT;
	a->max_sge = SHCA_MAX_SGE;
	a->max_sge_rd = SHCA_MAX_SGE;
	a->max_cq = 1 << 24;
	a->max_cqe = SHCA_MAX_CQE;
	a->max_mr = SHCA_MAX_MRS;
	a->max_pd = 1 << 24;
	a->max_qp_rd_atom = SHCA_MAX_RD_ATOMIC;
	a->max_qp_init_rd_atom = SHCA_MAX_RD_ATOMIC;
	a->max_res_rd_atom = SHCA_MAX_RD_ATOMIC * SHCA_MAX_QPS;
	a->atomic_cap = IBV_ATOMIC_NONE;
	a->max_pkeys = 1;
	a->local_ca_ack_delay = 16;
	a->phys_port_cnt = 1;
	return 0;
}

/* IB lane speeds (active_speed codes) and widths (active_width codes). */
static const struct {
	uint8_t code;
	double gbps;
} shca_speeds[] = {{1, 2.5}, {2, 5}, {4, 10}, {16, 14}, {32, 25}, {64, 50}, {128, 100}};
static const struct {
	uint8_t code;
	int lanes;
} shca_widths[] = {{2, 4}, {1, 1}, {16, 2}, {4, 8}, {8, 12}};

/* Pick the speed x width whose product is the configured rate (4x preferred), else the
 * largest product not above it. */
static void shca_rate_encode(double gbps, uint8_t *speed, uint8_t *width)
{
	double best = -1;
	size_t s, w;

	*speed = 128;
	*width = 2;
	for (w = 0; w < SHCA_ARRAY_SIZE(shca_widths); w++) {
		for (s = 0; s < SHCA_ARRAY_SIZE(shca_speeds); s++) {
			double r = shca_speeds[s].gbps * shca_widths[w].lanes;

			if (r > gbps + 1e-9 || r <= best + 1e-9)
				continue;
			best = r;
			*speed = shca_speeds[s].code;
			*width = shca_widths[w].code;
		}
	}
	if (best < 0) { /* below 1x SDR */
		*speed = 1;
		*width = 1;
	}
}

static void shca_fill_port(struct shca_ctx *ctx, struct ibv_port_attr *a)
{
	const struct shca_config *c = shca__config();
	int active = shca__port_active(ctx);

	a->state = active			    ? IBV_PORT_ACTIVE
		   : c->port_state == IBV_PORT_INIT ? IBV_PORT_INIT
						    : IBV_PORT_DOWN;
	a->max_mtu = IBV_MTU_4096;
	a->active_mtu = IBV_MTU_4096;
	a->gid_tbl_len = SHCA_GID_TBL_LEN;
	a->port_cap_flags = c->link_layer == IBV_LINK_LAYER_ETHERNET ? IBV_PORT_IP_BASED_GIDS : 0;
	a->max_msg_sz = SHCA_MAX_MSG;
	a->pkey_tbl_len = 1;
	a->lid = c->link_layer == IBV_LINK_LAYER_ETHERNET ? 0 : ctx->lid;
	a->sm_lid = c->link_layer == IBV_LINK_LAYER_ETHERNET ? 0 : 1;
	a->lmc = 0;
	a->max_vl_num = 4;
	a->subnet_timeout = 18;
	shca_rate_encode(c->rate_gbps, &a->active_speed, &a->active_width);
	a->phys_state = a->state == IBV_PORT_DOWN ? 3 /* Disabled */ : 5 /* LinkUp */;
	a->link_layer = c->link_layer;
}

/* The exported ibv_query_port has libibverbs' compat signature: it fills the fields up to
 * link_layer (what struct _compat_ibv_port_attr holds); the header's inline clears the rest. */
#undef ibv_query_port
SHCA_EXPORT int ibv_query_port(struct ibv_context *context, uint8_t port_num,
			       struct _compat_ibv_port_attr *port_attr)
{
	struct ibv_port_attr a;

	if (port_num != 1) {
		errno = EINVAL;
		return EINVAL;
	}
	memset(&a, 0, sizeof(a));
	shca_fill_port(shca_ctx_of(context), &a);
	memcpy(port_attr, &a, offsetof(struct ibv_port_attr, flags));
	return 0;
}

/* Called through ___ibv_query_port (shca_compat.c): the whole current struct. */
int shca__query_port_full(struct ibv_context *context, uint8_t port_num,
			  struct ibv_port_attr *port_attr)
{
	if (port_num != 1) {
		errno = EINVAL;
		return EINVAL;
	}
	memset(port_attr, 0, sizeof(*port_attr));
	shca_fill_port(shca_ctx_of(context), port_attr);
	return 0;
}

SHCA_EXPORT int ibv_query_gid(struct ibv_context *context, uint8_t port_num, int index,
			      union ibv_gid *gid)
{
	const union ibv_gid *g;

	if (port_num != 1 || index < 0 || index >= SHCA_GID_TBL_LEN) {
		errno = EINVAL;
		return -1;
	}
	g = shca__gid(shca_ctx_of(context), index);
	if (g)
		*gid = *g;
	else
		memset(gid, 0, sizeof(*gid));
	return 0;
}

static void shca_gid_entry(struct shca_ctx *ctx, int index, struct ibv_gid_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->gid = ctx->gid[index];
	e->gid_index = (uint32_t)index;
	e->port_num = 1;
	if (shca__config()->link_layer != IBV_LINK_LAYER_ETHERNET)
		e->gid_type = IBV_GID_TYPE_IB;
	else
		e->gid_type = index == 0 ? IBV_GID_TYPE_ROCE_V1 : IBV_GID_TYPE_ROCE_V2;
}

SHCA_EXPORT int _ibv_query_gid_ex(struct ibv_context *context, uint32_t port_num,
				  uint32_t gid_index, struct ibv_gid_entry *entry, uint32_t flags,
				  size_t entry_size)
{
	struct shca_ctx *ctx = shca_ctx_of(context);

	if (port_num != 1 || flags || entry_size < sizeof(*entry))
		return EINVAL;
	if (gid_index >= (uint32_t)ctx->ngid)
		return gid_index < SHCA_GID_TBL_LEN ? ENODATA : EINVAL;
	shca_gid_entry(ctx, (int)gid_index, entry);
	return 0;
}

SHCA_EXPORT ssize_t _ibv_query_gid_table(struct ibv_context *context, struct ibv_gid_entry *entries,
					 size_t max_entries, uint32_t flags, size_t entry_size)
{
	struct shca_ctx *ctx = shca_ctx_of(context);
	int i;

	if (flags || entry_size < sizeof(*entries))
		return -EINVAL;
	if (max_entries < (size_t)ctx->ngid)
		return -EINVAL;
	for (i = 0; i < ctx->ngid; i++)
		shca_gid_entry(ctx, i, &entries[i]);
	return ctx->ngid;
}

SHCA_EXPORT int ibv_query_pkey(struct ibv_context *context, uint8_t port_num, int index,
			       __be16 *pkey)
{
	if (port_num != 1 || index != 0) {
		errno = EINVAL;
		return -1;
	}
	*pkey = htobe16(0xffff);
	return 0;
}

SHCA_EXPORT int ibv_get_pkey_index(struct ibv_context *context, uint8_t port_num, __be16 pkey)
{
	if (port_num == 1 && (be16toh(pkey) & 0x7fff) == 0x7fff)
		return 0;
	return -1;
}

SHCA_EXPORT int ibv_fork_init(void)
{
	return 0;
}

SHCA_EXPORT enum ibv_fork_status ibv_is_fork_initialized(void)
{
	return IBV_FORK_UNNEEDED;
}

/* ---------------------------------------------------------------- strings and rates */

SHCA_EXPORT const char *ibv_wc_status_str(enum ibv_wc_status status)
{
	static const char *const str[] = {
	    [IBV_WC_SUCCESS] = "success",
	    [IBV_WC_LOC_LEN_ERR] = "local length error",
	    [IBV_WC_LOC_QP_OP_ERR] = "local QP operation error",
	    [IBV_WC_LOC_EEC_OP_ERR] = "local EE context operation error",
	    [IBV_WC_LOC_PROT_ERR] = "local protection error",
	    [IBV_WC_WR_FLUSH_ERR] = "Work Request Flushed Error",
	    [IBV_WC_MW_BIND_ERR] = "memory management operation error",
	    [IBV_WC_BAD_RESP_ERR] = "bad response error",
	    [IBV_WC_LOC_ACCESS_ERR] = "local access error",
	    [IBV_WC_REM_INV_REQ_ERR] = "remote invalid request error",
	    [IBV_WC_REM_ACCESS_ERR] = "remote access error",
	    [IBV_WC_REM_OP_ERR] = "remote operation error",
	    [IBV_WC_RETRY_EXC_ERR] = "transport retry counter exceeded",
	    [IBV_WC_RNR_RETRY_EXC_ERR] = "RNR retry counter exceeded",
	    [IBV_WC_LOC_RDD_VIOL_ERR] = "local RDD violation error",
	    [IBV_WC_REM_INV_RD_REQ_ERR] = "remote invalid RD request",
	    [IBV_WC_REM_ABORT_ERR] = "aborted error",
	    [IBV_WC_INV_EECN_ERR] = "invalid EE context number",
	    [IBV_WC_INV_EEC_STATE_ERR] = "invalid EE context state",
	    [IBV_WC_FATAL_ERR] = "fatal error",
	    [IBV_WC_RESP_TIMEOUT_ERR] = "response timeout error",
	    [IBV_WC_GENERAL_ERR] = "general error",
	    [IBV_WC_TM_ERR] = "TM error",
	    [IBV_WC_TM_RNDV_INCOMPLETE] = "TM software rendezvous",
	};

	if ((unsigned)status < SHCA_ARRAY_SIZE(str) && str[status])
		return str[status];
	return "unknown";
}

SHCA_EXPORT const char *ibv_port_state_str(enum ibv_port_state port_state)
{
	static const char *const str[] = {
	    [IBV_PORT_NOP] = "no state change (NOP)",
	    [IBV_PORT_DOWN] = "down",
	    [IBV_PORT_INIT] = "init",
	    [IBV_PORT_ARMED] = "armed",
	    [IBV_PORT_ACTIVE] = "active",
	    [IBV_PORT_ACTIVE_DEFER] = "active defer",
	};

	if ((unsigned)port_state < SHCA_ARRAY_SIZE(str))
		return str[port_state];
	return "unknown";
}

SHCA_EXPORT const char *ibv_node_type_str(enum ibv_node_type node_type)
{
	switch (node_type) {
	case IBV_NODE_CA:
		return "InfiniBand channel adapter";
	case IBV_NODE_SWITCH:
		return "InfiniBand switch";
	case IBV_NODE_ROUTER:
		return "InfiniBand router";
	case IBV_NODE_RNIC:
		return "iWARP NIC";
	case IBV_NODE_USNIC:
		return "usNIC";
	case IBV_NODE_USNIC_UDP:
		return "usNIC UDP";
	case IBV_NODE_UNSPECIFIED:
		return "unspecified";
	default:
		return "unknown";
	}
}

SHCA_EXPORT const char *ibv_event_type_str(enum ibv_event_type event)
{
	static const char *const str[] = {
	    [IBV_EVENT_CQ_ERR] = "CQ error",
	    [IBV_EVENT_QP_FATAL] = "local work queue catastrophic error",
	    [IBV_EVENT_QP_REQ_ERR] = "invalid request local work queue error",
	    [IBV_EVENT_QP_ACCESS_ERR] = "local access violation work queue error",
	    [IBV_EVENT_COMM_EST] = "communication established",
	    [IBV_EVENT_SQ_DRAINED] = "send queue drained",
	    [IBV_EVENT_PATH_MIG] = "path migrated",
	    [IBV_EVENT_PATH_MIG_ERR] = "path migration request error",
	    [IBV_EVENT_DEVICE_FATAL] = "local catastrophic error",
	    [IBV_EVENT_PORT_ACTIVE] = "port active",
	    [IBV_EVENT_PORT_ERR] = "port error",
	    [IBV_EVENT_LID_CHANGE] = "LID change",
	    [IBV_EVENT_PKEY_CHANGE] = "P_Key change",
	    [IBV_EVENT_SM_CHANGE] = "SM change",
	    [IBV_EVENT_SRQ_ERR] = "SRQ catastrophic error",
	    [IBV_EVENT_SRQ_LIMIT_REACHED] = "SRQ limit reached",
	    [IBV_EVENT_QP_LAST_WQE_REACHED] = "last WQE reached",
	    [IBV_EVENT_CLIENT_REREGISTER] = "client reregistration",
	    [IBV_EVENT_GID_CHANGE] = "GID table change",
	    [IBV_EVENT_WQ_FATAL] = "WQ fatal",
	};

	if ((unsigned)event < SHCA_ARRAY_SIZE(str) && str[event])
		return str[event];
	return "unknown";
}

static const struct {
	enum ibv_rate rate;
	int mult; /* of 2.5 Gb/s */
	int mbps;
} shca_rates[] = {
    {IBV_RATE_2_5_GBPS, 1, 2500},     {IBV_RATE_5_GBPS, 2, 5000},
    {IBV_RATE_10_GBPS, 4, 10000},     {IBV_RATE_20_GBPS, 8, 20000},
    {IBV_RATE_30_GBPS, 12, 30000},    {IBV_RATE_40_GBPS, 16, 40000},
    {IBV_RATE_60_GBPS, 24, 60000},    {IBV_RATE_80_GBPS, 32, 80000},
    {IBV_RATE_120_GBPS, 48, 120000},  {IBV_RATE_14_GBPS, 5, 14062},
    {IBV_RATE_56_GBPS, 22, 56250},    {IBV_RATE_112_GBPS, 45, 112500},
    {IBV_RATE_168_GBPS, 67, 168750},  {IBV_RATE_25_GBPS, 10, 25781},
    {IBV_RATE_100_GBPS, 40, 103125},  {IBV_RATE_200_GBPS, 80, 206250},
    {IBV_RATE_300_GBPS, 120, 309375}, {IBV_RATE_28_GBPS, 11, 28125},
    {IBV_RATE_50_GBPS, 20, 53125},    {IBV_RATE_400_GBPS, 160, 425000},
    {IBV_RATE_600_GBPS, 240, 637500},
};

SHCA_EXPORT int ibv_rate_to_mult(enum ibv_rate rate)
{
	size_t i;

	for (i = 0; i < SHCA_ARRAY_SIZE(shca_rates); i++)
		if (shca_rates[i].rate == rate)
			return shca_rates[i].mult;
	return -1;
}

SHCA_EXPORT enum ibv_rate mult_to_ibv_rate(int mult)
{
	size_t i;

	for (i = 0; i < SHCA_ARRAY_SIZE(shca_rates); i++)
		if (shca_rates[i].mult == mult)
			return shca_rates[i].rate;
	return IBV_RATE_MAX;
}

SHCA_EXPORT int ibv_rate_to_mbps(enum ibv_rate rate)
{
	size_t i;

	for (i = 0; i < SHCA_ARRAY_SIZE(shca_rates); i++)
		if (shca_rates[i].rate == rate)
			return shca_rates[i].mbps;
	return -1;
}

SHCA_EXPORT enum ibv_rate mbps_to_ibv_rate(int mbps)
{
	size_t i;

	for (i = 0; i < SHCA_ARRAY_SIZE(shca_rates); i++)
		if (shca_rates[i].mbps == mbps)
			return shca_rates[i].rate;
	return IBV_RATE_MAX;
}
