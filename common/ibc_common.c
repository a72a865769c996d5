/* SPDX-License-Identifier: MIT */
#include "ibc_common.h"

#include <ctype.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static __thread char err_buf[1024];
static int log_rank = -1;
int ibc_debug;

__attribute__((constructor)) static void ibc_common_init(void)
{
	const char *d = getenv("IBCOLL_DEBUG");

	ibc_debug = d && *d ? atoi(d) : 0;
}

void ibc_err_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
}

void ibc_err_prefix(const char *fmt, ...)
{
	char pre[512], old[sizeof(err_buf)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	size_t n;

	memcpy(old, err_buf, sizeof(old));
	n = strlen(pre);
	if (n >= sizeof(err_buf))
		n = sizeof(err_buf) - 1;
	memcpy(err_buf, pre, n);
	snprintf(err_buf + n, sizeof(err_buf) - n, "%.*s", (int)(sizeof(err_buf) - n - 1), old);
}

int ibc_err_buf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

const char *ibc_err_get(void)
{
	return err_buf[0] ? err_buf : "unknown error";
}

void ibc_err_clear(void)
{
	err_buf[0] = '\0';
}

void ibc_log_set_rank(int rank)
{
	log_rank = rank;
}

void ibc_log(const char *fmt, ...)
{
	char line[2048];
	int n = 0;
	va_list ap;

	if (log_rank >= 0)
		n = snprintf(line, sizeof(line), "ibcoll[%d]: ", log_rank);
	else
		n = snprintf(line, sizeof(line), "ibcoll: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write so lines from several ranks do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

uint64_t ibc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double ibc_now_s(void)
{
	return (double)ibc_now_ns() * 1e-9;
}

int ibc_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A decimal number starts with a digit, or with '-' and a digit where negative values make
 * sense: no blanks, no '+', no hex, no "inf" or "nan" (strtol and strtod take all of those). */
static bool plain_number(const char *s, bool neg_ok)
{
	if (*s == '-' && neg_ok)
		s++;
	return isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]));
}

int ibc_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long long v;

	if (!s || !*s || !plain_number(s, min < 0) || *s == '.')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = (long)v;
	return 0;
}

int ibc_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s || !plain_number(s, true) || strspn(s, "0123456789.eE+-") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end)
		return -EINVAL;
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	*out = v;
	return 0;
}

int ibc_parse_size(const char *s, uint64_t *out)
{
	char num[64];
	size_t n;
	uint64_t v, mul = 1;
	int rc;

	if (!s || !*s)
		return -EINVAL;
	n = strlen(s);
	if (n >= sizeof(num))
		return -ERANGE;
	memcpy(num, s, n + 1);
	switch (toupper((unsigned char)num[n - 1])) {
	case 'K': mul = 1ull << 10; break;
	case 'M': mul = 1ull << 20; break;
	case 'G': mul = 1ull << 30; break;
	case 'T': mul = 1ull << 40; break;
	default: break;
	}
	if (mul != 1) {
		num[--n] = '\0';
		if (n && toupper((unsigned char)num[n - 1]) == 'I') /* accept "Ki", "Mi" */
			return -EINVAL;
	}
	rc = ibc_parse_u64(num, &v);
	if (rc)
		return rc;
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

const char *ibc_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char sfx[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--) {
		uint64_t unit = 1ull << (10 * (i + 1));

		if (bytes >= unit && bytes % unit == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes / unit), sfx[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}

int ibc_split_list(const char *s, char **store, const char **items, int max)
{
	char *copy, *p, *save = NULL;
	int n = 0;

	*store = NULL;
	if (!s || !*s)
		return -EINVAL;
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	for (p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (n == max) {
			free(copy);
			return -E2BIG;
		}
		items[n++] = p;
	}
	if (n == 0 || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,")) {
		free(copy);
		return -EINVAL;
	}
	*store = copy;
	return n;
}

int ibc_mkdir_p(const char *path)
{
	char tmp[512];
	size_t i, n = strlen(path);

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		tmp[i] = path[i];
	}
	return 0;
}

int ibc_hostid_check(const char *id)
{
	size_t i, n = id ? strlen(id) : 0;

	if (n == 0 || n > IBC_HOSTID_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return -EINVAL;
	}
	return 0;
}

const char *ibc_hostname(void)
{
	static char host[256];

	if (!host[0]) {
		const char *id = getenv("IBCOLL_HOSTID");
		char *dot;

		if (id && ibc_hostid_check(id) == 0) {
			snprintf(host, sizeof(host), "%s", id);
			return host;
		}

		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "unknown");
		dot = strchr(host, '.');
		if (dot)
			*dot = '\0';
	}
	return host;
}

char *ibc_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int ibc_snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int ibc_affinity_list(char *buf, size_t len)
{
	cpu_set_t set;
	size_t o = 0;
	int i, start = -1;

	if (!len)
		return -EINVAL;
	buf[0] = 0;
	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	for (i = 0; i <= CPU_SETSIZE; i++) {
		bool in = i < CPU_SETSIZE && CPU_ISSET(i, &set);
		int n;

		if (in && start < 0)
			start = i;
		if (in || start < 0)
			continue;
		n = i - 1 == start ? snprintf(buf + o, len - o, "%s%d", o ? "," : "", start)
				   : snprintf(buf + o, len - o, "%s%d-%d", o ? "," : "", start, i - 1);
		if (n < 0 || (size_t)n >= len - o)
			return -ENOSPC;
		o += (size_t)n;
		start = -1;
	}
	return 0;
}

