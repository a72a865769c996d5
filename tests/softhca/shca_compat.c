/* SPDX-License-Identifier: MIT */
/*
 * shca_compat.c - entry points that <infiniband/verbs.h> defines as static inlines or macros
 * (___ibv_query_port, __ibv_reg_mr, __ibv_reg_mr_iova). A program compiled against the
 * header never calls them by name, but a loader that resolves names with dlsym may ask for
 * them. This file does not include verbs.h, so the names are free to define here.
 */
#include <stddef.h>
#include <stdint.h>

#define SHCA_EXPORT __attribute__((visibility("default")))

struct ibv_context;
struct ibv_pd;
struct ibv_port_attr;
struct ibv_mr;

int shca__query_port_full(struct ibv_context *context, uint8_t port_num,
			  struct ibv_port_attr *port_attr);
struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);
struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
			       int access);
struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				unsigned int access);

SHCA_EXPORT int ___ibv_query_port(struct ibv_context *context, uint8_t port_num,
				  struct ibv_port_attr *port_attr)
{
	return shca__query_port_full(context, port_num, port_attr);
}

SHCA_EXPORT struct ibv_mr *__ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
					unsigned int access, int is_access_const)
{
	return ibv_reg_mr_iova2(pd, addr, length, (uintptr_t)addr, access);
}

SHCA_EXPORT struct ibv_mr *__ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length,
					     uint64_t iova, unsigned int access,
					     int is_access_const)
{
	return ibv_reg_mr_iova2(pd, addr, length, iova, access);
}
