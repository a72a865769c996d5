/* SPDX-License-Identifier: MIT */
/*
 * ibc_common.h - small helpers every ibcoll module may use: error text, logging, clocks,
 * checked number parsing. Nothing here knows about transports, collectives or reports.
 *
 * Convention (libuv/rdma-core): every function returns 0 or a negative errno. A function that
 * fails may leave a human-readable explanation with ibc_err_set(); the caller that finally
 * reports the failure prints ibc_err_get(). Only main() exits.
 */
#ifndef IBC_COMMON_H
#define IBC_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IBC_VERSION "0.1.0"

/* Exit codes (docs/design.md#exit-codes). */
enum {
	IBC_EXIT_OK = 0,
	IBC_EXIT_CHECK = 1, /* wrong data, threshold or baseline not met */
	IBC_EXIT_USAGE = 2, /* bad flag or value */
	IBC_EXIT_ENV = 3, /* no device, peer died, timeout, I/O failure */
};

#define IBC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IBC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define IBC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Thread-local "why did the last call fail" text. ibc_err_set overwrites, ibc_err_prefix
 * prepends context ("rank 3 (host n01): " + previous text). */
void ibc_err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ibc_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ibc_err_get(void);
void ibc_err_clear(void);
/* For functions that report into a caller's buffer instead: format into err (when err and
 * errlen are non-zero) and return -EINVAL, the error of input that does not make sense. */
int ibc_err_buf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Logging to stderr, prefixed with "ibcoll[rank]: " once ibc_log_set_rank() was called. */
void ibc_log_set_rank(int rank);
void ibc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int ibc_debug; /* IBCOLL_DEBUG=1 */
#define IBC_DBG(...)                                                                               \
	do {                                                                                       \
		if (ibc_debug)                                                                     \
			ibc_log(__VA_ARGS__);                                                      \
	} while (0)

/* Evaluate an expression returning 0/-errno; on failure record file:line (debug) and go to a
 * cleanup label with rc set. */
#define IBC_CHECK_GOTO(expr, rc, label)                                                            \
	do {                                                                                       \
		(rc) = (expr);                                                                     \
		if ((rc) < 0) {                                                                    \
			IBC_DBG("%s:%d: %s failed: %d", __FILE__, __LINE__, #expr, (rc));          \
			goto label;                                                                \
		}                                                                                  \
	} while (0)

uint64_t ibc_now_ns(void); /* CLOCK_MONOTONIC */
double ibc_now_s(void);

/* Checked parsing. All return 0 or -EINVAL (junk, empty) / -ERANGE (out of range). A number is
 * plain decimal: it starts with a digit (or '-' and a digit, for ibc_parse_int only when min < 0,
 * and for ibc_parse_double), with no blanks around it, no '+', no hex, no trailing text. */
int ibc_parse_u64(const char *s, uint64_t *out);
int ibc_parse_int(const char *s, long min, long max, long *out);
int ibc_parse_double(const char *s, double *out);
/* Sizes with optional binary suffix K/M/G/T (1K = 1024), as nccl-tests. "0" is allowed. */
int ibc_parse_size(const char *s, uint64_t *out);
/* Human size: 1024 -> "1K", 1536 -> "1536" ... writes into buf. */
const char *ibc_format_size(uint64_t bytes, char *buf, size_t len);

/* Split a comma-separated list into at most max items (pointers into a copy owned by *store;
 * caller frees *store). Returns item count or -EINVAL / -E2BIG. */
int ibc_split_list(const char *s, char **store, const char **items, int max);

/* mkdir -p: path and every missing parent (mode 0755). 0 or -errno (-ENAMETOOLONG). */
int ibc_mkdir_p(const char *path);
/* Hostname of this machine (short form, cached), or IBCOLL_HOSTID. */
const char *ibc_hostname(void);
/* IBCOLL_HOSTID names this host instead of its hostname (as NCCL_HOSTID does), so ranks in
 * network namespaces of one machine are hosts of their own in the rank table and the
 * reports: 1..IBC_HOSTID_MAX characters of [A-Za-z0-9._-]. ibc_hostname() takes it when it
 * is valid; the commands refuse an invalid one (exit 2). 0 or -EINVAL. */
#define IBC_HOSTID_MAX 63
int ibc_hostid_check(const char *id);
/* The CPUs this process may run on (its affinity mask) as a list: "0-3,8". 0, or -errno. */
int ibc_affinity_list(char *buf, size_t len);

/* Duplicate or die-free helpers returning NULL on failure. */
char *ibc_strdup(const char *s);
int ibc_snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
