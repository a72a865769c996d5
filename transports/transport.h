/* SPDX-License-Identifier: MIT */
/*
 * transport.h - the ibcoll transport API, ABI major 2.
 *
 * Modelled on NCCL's net plugin (init, devices, getProperties, listen, connect, accept, regMr,
 * isend, irecv, iflush, test, close*), with three changes (docs/design.md#transport-contract):
 *  - typed opaque handles instead of void *;
 *  - every call returns 0 or a negative errno; -EAGAIN means "not yet, call again":
 *    connect, accept, post_send and post_recv never block;
 *  - versioning by abi_major + ops_size: the vtable is append-only. A caller treats an entry
 *    that lies past ops_size, or is NULL, as absent (IBC_TP_HAS()).
 *
 * Versioned structs (ABI 2): struct ibc_tp_config and struct ibc_tp_props begin with a size
 * field, as the vtable has ops_size, so a plugin built against an older transport.h of the
 * same ABI major keeps working with a newer host and the other way round. Both structs, like
 * the vtable, are append-only from ABI 2 on: a new field goes at the end, no field moves,
 * changes type or changes meaning (that would be ABI 3). Fields up to the "ABI 2 base" marker
 * are in every ABI 2 struct (IBC_TP_CFG_BASE_SIZE, IBC_TP_PROPS_BASE_SIZE).
 *  - config (host -> transport): the caller zero-fills the struct and sets cfg->size to
 *    sizeof(its struct) (ibc_tp_config_init() does both), then sets the fields it wants. The
 *    transport reads only fields that lie within cfg->size (IBC_TP_CFG_HAS(cfg, field));
 *    a field past it reads as its zero default. Every appended field is therefore defined so
 *    that 0 / NULL means "the default". A cfg->size below the base is a caller bug: init
 *    refuses it with -EINVAL.
 *  - props (transport -> host): the caller zero-fills the struct and sets props->size to
 *    sizeof(its struct). The transport writes only the fields that lie inside
 *    min(props->size, sizeof(its own struct)) and sets props->size to how many bytes it
 *    filled (ibc_tp_props_put() does this). The host treats every field past the returned
 *    props->size as unknown (zero). ibc_tp_get_props() does the host's part and checks the
 *    answer.
 *  A plugin of ABI 1 (structs without size) is refused by the loader (ibc_tp_validate).
 *
 * Semantics
 *  - A connection is one-directional: the receiver calls listen() and ships the fixed-size
 *    handle (IBC_TP_HANDLE_BYTES) to the sender out of band; the sender calls connect() with
 *    it, the receiver accept(). Both return -EAGAIN until the connection is up.
 *  - Messages on one connection are delivered in order. post_recv(size) accepts a message of at
 *    most size bytes; test() reports the received size. Each message carries a 32-bit tag which
 *    must equal the tag of the matching receive: a mismatch completes with -EPROTO.
 *  - post_* may return -EAGAIN when the transport has no room for another request (at most
 *    props.max_requests in flight per connection); the caller polls and calls again.
 *  - test() completes a request: *done = 1 and the request is freed by the transport. A failed
 *    request returns the error (and is freed). A request must not be tested after completion.
 *  - Memory passed to post_send/post_recv must lie inside an MR returned by reg_mr or mem_alloc
 *    of the same context (NULL mr is allowed only for size 0).
 *  - Errors carry detail: after a call fails, last_error(ctx) returns text naming the local
 *    device/port/QP and what happened. The caller adds who the peer was (the transport does not
 *    know ranks).
 *  - Teardown: close_* and fini keep releasing after an error and return the first error.
 *
 * Plugins: a shared object exporting `const struct ibc_tp_ops ibcoll_transport_plugin`
 * (IBC_TP_PLUGIN_SYMBOL). Loaded with --transport /path/libibcoll-net-NAME.so or
 * IBCOLL_TRANSPORT_PLUGIN=/path.
 */
#ifndef IBC_TRANSPORT_H
#define IBC_TRANSPORT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define IBC_TP_ABI_MAJOR 2
#define IBC_TP_HANDLE_BYTES 128
#define IBC_TP_PLUGIN_SYMBOL "ibcoll_transport_plugin"

/* Typed opaque handles; each transport defines what they point to. */
struct ibc_tp_ctx;
struct ibc_tp_listener;
struct ibc_tp_send;
struct ibc_tp_recv;
struct ibc_tp_mr;
struct ibc_tp_req;

enum ibc_mem_kind {
	IBC_MEM_HOST = 1u << 0,
	IBC_MEM_CUDA = 1u << 1, /* device pointer registered directly (peer memory) */
	IBC_MEM_DMABUF = 1u << 2, /* dma-buf fd + offset */
};

/* Capability bits in ibc_tp_props.caps */
enum {
	/* mem_alloc returns memory that peers on this host read directly: a message sent from
	 * it is copied once, by the receiver. */
	IBC_TP_CAP_SHARED_ALLOC = 1u << 0,
	/* recv_direct/recv_release: the receiver may read a message in place (zero copy). */
	IBC_TP_CAP_DIRECT = 1u << 1,
	/* the transport can move data between hosts (tcp, verbs); shm cannot */
	IBC_TP_CAP_INTERNODE = 1u << 2,
	/* flush() is needed after a receive into GPU memory */
	IBC_TP_CAP_NEEDS_FLUSH = 1u << 3,
};

/* Buffer descriptor for registration. */
struct ibc_tp_buf {
	enum ibc_mem_kind kind;
	void *addr; /* borrowed: host or device virtual address */
	size_t len;
	int dmabuf_fd; /* IBC_MEM_DMABUF only, borrowed; -1 otherwise */
	uint64_t dmabuf_offset;
	int cuda_device; /* IBC_MEM_CUDA / DMABUF: CUDA ordinal, -1 for host */
};

struct ibc_tp_props {
	uint32_t size; /* in: sizeof the caller's struct; out: bytes the transport filled */
	char name[64]; /* "mlx5_0", "shm", "tcp:eth0" */
	char pci_busid[32]; /* "0000:17:00.0" or "" when not a PCI device */
	int port; /* 1-based port, 0 when not applicable */
	uint64_t guid; /* node/port GUID, 0 when none */
	uint32_t speed_mbps; /* link rate in Mb/s, 0 when unknown */
	char link_layer[16]; /* "InfiniBand", "Ethernet", "loopback", "memory" */
	unsigned mem_kinds; /* IBC_MEM_* accepted by reg_mr */
	int max_requests; /* requests in flight per connection */
	unsigned caps; /* IBC_TP_CAP_* */
	/* ---- ABI 2 base ends here; append only below ---- */
	/* NIC firmware version and board id (acceptance reports, metadata): verbs reads them from
	 * sysfs class/infiniband/DEV/fw_ver and board_id; "" when unknown or not a NIC. */
	char fw_version[64]; /* "28.39.1002" */
	char board_id[64]; /* "MT_0000000838" (the PSID on Mellanox/NVIDIA boards) */
};

/* Per-port counters for health runs (optional op). Units are bytes and events. */
struct ibc_tp_counters {
	uint64_t xmit_bytes, rcv_bytes;
	uint64_t symbol_errors, link_downed, rcv_errors, xmit_discards;
	uint64_t port_rcv_remote_physical_errors, local_link_integrity_errors;
};

/* Configuration handed to init(). All pointers are borrowed for the life of the context. */
struct ibc_tp_config {
	uint32_t size; /* sizeof the caller's struct (ibc_tp_config_init) */
	int rank, nranks; /* for names and messages only: the transport never routes by rank */
	int local_rank, local_size;
	const char *job_id; /* unique per job, same on every rank (shm segment names) */
	const char *hostname;
	const char *local_addr; /* IP address this rank used to reach the bootstrap root (hint) */
	const char *nic; /* --nic: "mlx5_0:1,mlx5_1" / tcp interface names; NULL = auto */
	int gid_index; /* --gid-index, -1 = automatic (RoCE v2 IPv4 preferred) */
	int qps; /* --qps: queue pairs per connection, >= 1 */
	int timeout_ms; /* --timeout: bound for any internal wait */
	const volatile int *abort_flag; /* non-NULL: when *abort_flag != 0, a peer died; give up */
	const char *options; /* free-form key=value[,key=value] for plugins; may be NULL */
	/* ---- ABI 2 base ends here; append only below (0 / NULL must mean the default) ---- */
	/* The sysfs tree the transport reads (port counters, PCI bus ids, firmware, GPU peer
	 * memory); NULL = ibc_sysfs_root(): $IBCOLL_SYSFS_ROOT, else /sys. Lets a host point one
	 * context at a copied or fake tree (the one `ibcoll topo --sysfs-root` reads) without
	 * changing the process environment. */
	const char *sysfs_root;
	/* The job key (borrowed, lives as long as the context; NULL or len 0: none). tcp proves it
	 * on every data connection (common/ibc_auth.h); a transport may ignore it. */
	const unsigned char *job_key;
	size_t job_key_len;
};

struct ibc_tp_ops {
	uint32_t abi_major; /* IBC_TP_ABI_MAJOR */
	uint32_t ops_size; /* sizeof(struct ibc_tp_ops) the transport was built with */
	const char *name; /* "shm", "tcp", "verbs", "gdr" */
	const char *description; /* one line for --help */

	/* ---- required ---- */
	int (*init)(const struct ibc_tp_config *cfg, struct ibc_tp_ctx **ctx);
	int (*devices)(struct ibc_tp_ctx *ctx, int *ndev);
	int (*get_props)(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *props);
	/* handle: IBC_TP_HANDLE_BYTES written by listen, read by connect */
	int (*listen)(struct ibc_tp_ctx *ctx, int dev, void *handle, struct ibc_tp_listener **l);
	int (*connect)(struct ibc_tp_ctx *ctx, int dev, const void *handle, struct ibc_tp_send **s);
	int (*accept)(struct ibc_tp_listener *l, struct ibc_tp_recv **r);
	int (*reg_mr)(struct ibc_tp_ctx *ctx, int dev, const struct ibc_tp_buf *buf,
		      struct ibc_tp_mr **mr);
	int (*dereg_mr)(struct ibc_tp_ctx *ctx, struct ibc_tp_mr *mr);
	int (*post_send)(struct ibc_tp_send *s, const void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **req);
	int (*post_recv)(struct ibc_tp_recv *r, void *data, size_t size, uint32_t tag,
			 struct ibc_tp_mr *mr, struct ibc_tp_req **req);
	int (*test)(struct ibc_tp_req *req, int *done, size_t *size);
	int (*close_send)(struct ibc_tp_send *s);
	int (*close_recv)(struct ibc_tp_recv *r);
	int (*close_listen)(struct ibc_tp_listener *l);
	int (*fini)(struct ibc_tp_ctx *ctx);
	const char *(*last_error)(struct ibc_tp_ctx *ctx);

	/* ---- optional: NULL or past ops_size means absent ---- */
	/* Make data a NIC wrote into GPU memory visible to the GPU; *req NULL = nothing to do. */
	int (*flush)(struct ibc_tp_recv *r, void *data, size_t size, struct ibc_tp_mr *mr,
		     struct ibc_tp_req **req);
	/* Allocate memory best suited to this transport, registered (IBC_TP_CAP_SHARED_ALLOC). */
	int (*mem_alloc)(struct ibc_tp_ctx *ctx, size_t size, void **ptr, struct ibc_tp_mr **mr);
	int (*mem_free)(struct ibc_tp_ctx *ctx, void *ptr, struct ibc_tp_mr *mr);
	/* Zero-copy receive (IBC_TP_CAP_DIRECT): 0 with *data pointing at the next message (valid
	 * until recv_release), -EAGAIN when none has arrived. Not mixed with post_recv on one
	 * connection. */
	int (*recv_direct)(struct ibc_tp_recv *r, uint32_t tag, const void **data, size_t *size);
	int (*recv_release)(struct ibc_tp_recv *r);
	/* Sleeping instead of spinning. The caller, about to sleep, calls epoch() (which may arm
	 * a wake-up), polls its requests once more, then calls wait() exactly once: it returns
	 * once something may have changed since epoch(), or after timeout_ms (0: at once, just
	 * disarming). */
	uint64_t (*epoch)(struct ibc_tp_ctx *ctx);
	int (*wait)(struct ibc_tp_ctx *ctx, uint64_t epoch, int timeout_ms);
	int (*port_counters)(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_counters *c);
};

/* Is optional entry `field` present in ops (within ops_size and non-NULL)? */
#define IBC_TP_HAS(ops, field)                                                                     \
	((ops)->ops_size >= offsetof(struct ibc_tp_ops, field) + sizeof((ops)->field) &&          \
	 (ops)->field != NULL)

/* The smallest ops_size a plugin may declare: everything up to last_error. */
#define IBC_TP_OPS_MIN_SIZE                                                                        \
	(offsetof(struct ibc_tp_ops, last_error) + sizeof(((struct ibc_tp_ops *)0)->last_error))

/* Bytes of struct `type` up to and including `field`. */
#define IBC_TP_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Every ABI 2 struct holds at least these bytes (the fields up to the "base" marker). */
#define IBC_TP_CFG_BASE_SIZE   IBC_TP_END(struct ibc_tp_config, options)
#define IBC_TP_PROPS_BASE_SIZE IBC_TP_END(struct ibc_tp_props, caps)

/* Transport side: does the caller's config hold `field` (within cfg->size)? */
#define IBC_TP_CFG_HAS(cfg, field) ((cfg)->size >= IBC_TP_END(struct ibc_tp_config, field))
/* Host side: did the transport fill `field` (within the props->size it returned)? */
#define IBC_TP_PROPS_HAS(p, field) ((p)->size >= IBC_TP_END(struct ibc_tp_props, field))

/* Transport side: is cfg usable (non-NULL, at least the ABI 2 base)? 0 or -EINVAL. */
static inline int ibc_tp_config_check(const struct ibc_tp_config *cfg)
{
	return cfg && cfg->size >= IBC_TP_CFG_BASE_SIZE ? 0 : -EINVAL;
}

/* Transport side: copy the caller's config into a struct of this header's size: the fields
 * within cfg->size are copied, the rest zero-filled; dst->size = the bytes copied. */
static inline void ibc_tp_config_copy(struct ibc_tp_config *dst, const struct ibc_tp_config *cfg)
{
	size_t n = cfg->size < sizeof(*dst) ? cfg->size : sizeof(*dst);

	memset(dst, 0, sizeof(*dst));
	memcpy(dst, cfg, n);
	dst->size = (uint32_t)n;
}

/* Transport side, at the end of get_props: copy the filled src (this header's size) into the
 * caller's props, no more than props->size bytes, and say how many were written. */
static inline void ibc_tp_props_put(struct ibc_tp_props *props, const struct ibc_tp_props *src)
{
	size_t n = props->size < sizeof(*src) ? props->size : sizeof(*src);

	memcpy((char *)props + sizeof(props->size), (const char *)src + sizeof(src->size),
	       n > sizeof(props->size) ? n - sizeof(props->size) : 0);
	props->size = (uint32_t)n;
}

/* ---- registry (transports/registry.c) ---- */

/* Names of built-in transports, NULL-terminated; "verbs"/"gdr" appear when compiled in. */
const char *const *ibc_tp_builtin_names(void);
/* Find a transport by built-in name or plugin path (contains '/' or ends in .so).
 * On failure returns -ENOENT/-ENOEXEC/-EPROTO with ibc_err_get() saying why. */
int ibc_tp_lookup(const char *name_or_path, const struct ibc_tp_ops **ops);
/* Validate a vtable: ABI major, ops_size, required entries. 0 or -EPROTO with error text. */
int ibc_tp_validate(const struct ibc_tp_ops *ops, const char *origin);

/* Host side: zero-fill cfg and set cfg->size = sizeof(*cfg); the caller then sets fields. */
void ibc_tp_config_init(struct ibc_tp_config *cfg);
/* Host side: ops->get_props with the size protocol. props is zero-filled with props->size =
 * sizeof(*props) before the call; afterwards props->size says how much the transport filled
 * and every byte past it is zero. -EPROTO (ibc_err_get() says why) when the transport left
 * props->size below IBC_TP_PROPS_BASE_SIZE or above what it was given; else get_props' rc. */
int ibc_tp_get_props(const struct ibc_tp_ops *ops, struct ibc_tp_ctx *ctx, int dev,
		     struct ibc_tp_props *props);

#endif
