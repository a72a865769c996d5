/* SPDX-License-Identifier: MIT */
/*
 * ibv_sym.h - libibverbs loaded at run time (dlopen + a symbol table, as NCCL's ibvsymbols).
 *
 * One binary runs on machines without rdma-core, and tests point the transport at the software
 * HCA with IBCOLL_IBVERBS_LIB=/path/libibcoll-softhca.so. The table is filled once per process
 * (pthread_once) and never changes afterwards; it is the only file-scope mutable state of the
 * verbs transport.
 *
 * Only exported library functions go through the table. The data path (ibv_post_send,
 * ibv_post_recv, ibv_poll_cq) is inline in <infiniband/verbs.h> and dispatches through
 * ibv_context.ops, so it needs no symbol. Never call the verbs.h macros that expand to
 * library calls (ibv_reg_mr, ibv_query_port, ibv_get_device_list): use vrb_sym() members.
 */
#ifndef IBC_VERBS_IBV_SYM_H
#define IBC_VERBS_IBV_SYM_H

#include <infiniband/verbs.h>

struct vrb_ibv_syms {
	/* required */
	struct ibv_device **(*get_device_list)(int *num);
	void (*free_device_list)(struct ibv_device **list);
	const char *(*get_device_name)(struct ibv_device *dev);
	struct ibv_context *(*open_device)(struct ibv_device *dev);
	int (*close_device)(struct ibv_context *ctx);
	int (*query_device)(struct ibv_context *ctx, struct ibv_device_attr *attr);
	/* the exported (compat) entry point; use vrb_query_port() */
	int (*query_port)(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr);
	int (*query_gid)(struct ibv_context *ctx, uint8_t port, int index, union ibv_gid *gid);
	struct ibv_pd *(*alloc_pd)(struct ibv_context *ctx);
	int (*dealloc_pd)(struct ibv_pd *pd);
	struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t len, int access);
	int (*dereg_mr)(struct ibv_mr *mr);
	struct ibv_cq *(*create_cq)(struct ibv_context *ctx, int cqe, void *cq_ctx,
				    struct ibv_comp_channel *ch, int vector);
	int (*destroy_cq)(struct ibv_cq *cq);
	struct ibv_qp *(*create_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
	int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
	int (*destroy_qp)(struct ibv_qp *qp);
	const char *(*wc_status_str)(enum ibv_wc_status status);

	/* optional: NULL when the library lacks them */
	__be64 (*get_device_guid)(struct ibv_device *dev);
	const char *(*port_state_str)(enum ibv_port_state state);
	struct ibv_mr *(*reg_dmabuf_mr)(struct ibv_pd *pd, uint64_t offset, size_t len,
					uint64_t iova, int fd, int access);
};

/*
 * Load the library named by IBCOLL_IBVERBS_LIB (default libibverbs.so.1) once per process.
 * 0 with *syms set (borrowed, valid until exit), or -ENODEV with ibc_err_get() saying what is
 * missing and what to do about it. Later calls return the first call's result.
 */
int vrb_sym_load(const struct vrb_ibv_syms **syms);

/* Path that was (or would be) loaded; for messages. */
const char *vrb_sym_path(void);

/* ibv_query_port without the verbs.h macro: the extended provider op when there is one, else
 * the exported compat entry point, as the inline in verbs.h does. */
int vrb_query_port(const struct vrb_ibv_syms *s, struct ibv_context *ctx, uint8_t port,
		   struct ibv_port_attr *attr);

/* Status text that works even when the library lacks ibv_wc_status_str. */
const char *vrb_wc_status_str(const struct vrb_ibv_syms *s, enum ibv_wc_status status);

#endif
