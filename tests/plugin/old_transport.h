/* SPDX-License-Identifier: MIT */
/*
 * old_transport.h - transport.h as a plugin built before the ABI 2 structs grew saw it: ABI
 * major 2, the same vtable, but struct ibc_tp_config and struct ibc_tp_props end at the "ABI 2
 * base" (no sysfs_root, no fw_version/board_id). old_plugin.c is built against this copy only,
 * to prove that such a plugin keeps working with a newer host (test_plugin). Never include it
 * together with transports/transport.h. Do not update it when transport.h grows: it stands
 * for the older header.
 */
#ifndef IBC_OLD_TRANSPORT_H
#define IBC_OLD_TRANSPORT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define IBC_TP_ABI_MAJOR    2
#define IBC_TP_HANDLE_BYTES 128

struct ibc_tp_ctx;
struct ibc_tp_listener;
struct ibc_tp_send;
struct ibc_tp_recv;
struct ibc_tp_mr;
struct ibc_tp_req;

enum ibc_mem_kind {
	IBC_MEM_HOST = 1u << 0,
	IBC_MEM_CUDA = 1u << 1,
	IBC_MEM_DMABUF = 1u << 2,
};

enum {
	IBC_TP_CAP_SHARED_ALLOC = 1u << 0,
	IBC_TP_CAP_DIRECT = 1u << 1,
	IBC_TP_CAP_INTERNODE = 1u << 2,
	IBC_TP_CAP_NEEDS_FLUSH = 1u << 3,
};

struct ibc_tp_buf {
	enum ibc_mem_kind kind;
	void *addr; /* borrowed */
	size_t len;
	int dmabuf_fd;
	uint64_t dmabuf_offset;
	int cuda_device;
};

struct ibc_tp_props {
	uint32_t size;
	char name[64];
	char pci_busid[32];
	int port;
	uint64_t guid;
	uint32_t speed_mbps;
	char link_layer[16];
	unsigned mem_kinds;
	int max_requests;
	unsigned caps;
};

struct ibc_tp_counters {
	uint64_t xmit_bytes, rcv_bytes;
	uint64_t symbol_errors, link_downed, rcv_errors, xmit_discards;
	uint64_t port_rcv_remote_physical_errors, local_link_integrity_errors;
};

struct ibc_tp_config {
	uint32_t size;
	int rank, nranks;
	int local_rank, local_size;
	const char *job_id;	/* borrowed */
	const char *hostname;	/* borrowed */
	const char *local_addr; /* borrowed */
	const char *nic;	/* borrowed */
	int gid_index;
	int qps;
	int timeout_ms;
	const volatile int *abort_flag; /* borrowed */
	const char *options;		/* borrowed */
};

struct ibc_tp_ops {
	uint32_t abi_major;	 /* IBC_TP_ABI_MAJOR */
	uint32_t ops_size;	 /* sizeof(struct ibc_tp_ops) the transport was built with */
	const char *name;	 /* "shm", "tcp", "verbs", "gdr" */
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

#define IBC_TP_CFG_BASE_SIZE                                                                       \
	(offsetof(struct ibc_tp_config, options) + sizeof(((struct ibc_tp_config *)0)->options))

static inline int ibc_tp_config_check(const struct ibc_tp_config *cfg)
{
	return cfg && cfg->size >= IBC_TP_CFG_BASE_SIZE ? 0 : -EINVAL;
}

static inline void ibc_tp_props_put(struct ibc_tp_props *props, const struct ibc_tp_props *src)
{
	size_t n = props->size < sizeof(*src) ? props->size : sizeof(*src);

	memcpy((char *)props + sizeof(props->size), (const char *)src + sizeof(src->size),
	       n > sizeof(props->size) ? n - sizeof(props->size) : 0);
	props->size = (uint32_t)n;
}

#endif
