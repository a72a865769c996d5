/* SPDX-License-Identifier: MIT */
/*
 * ibc_sysfs.c - reading small sysfs files below one root (ibc_sysfs.h).
 */
#include "ibc_sysfs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ibc_sysfs_root(void)
{
	const char *e = getenv("IBCOLL_SYSFS_ROOT");

	return e && *e ? e : "/sys";
}

static int ibc_sysfs_vpath(const char *root, char *path, size_t len, const char *fmt, va_list ap)
{
	int n = snprintf(path, len, "%s/", root ? root : ibc_sysfs_root());

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	n = vsnprintf(path + n, len - (size_t)n, fmt, ap);
	if (n < 0 || strlen(path) + 1 >= len)
		return -ENAMETOOLONG;
	return 0;
}

int ibc_sysfs_path(const char *root, char *path, size_t len, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ibc_sysfs_vpath(root, path, len, fmt, ap);
	va_end(ap);
	return rc;
}

static int ibc_sysfs_line_at(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;
	int rc = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		rc = ferror(f) ? -EIO : -ENODATA;
	fclose(f);
	if (rc)
		return rc;
	n = strcspn(buf, "\r\n");
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	return 0;
}

int ibc_sysfs_read_line(const char *root, char *buf, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int rc;

	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	va_start(ap, fmt);
	rc = ibc_sysfs_vpath(root, path, sizeof(path), fmt, ap);
	va_end(ap);
	return rc ? rc : ibc_sysfs_line_at(path, buf, len);
}

static int ibc_sysfs_vnumber(const char *root, int is_signed, void *out, const char *fmt,
			     va_list ap)
{
	char path[PATH_MAX], text[64], *end;
	int rc = ibc_sysfs_vpath(root, path, sizeof(path), fmt, ap);

	if (!rc)
		rc = ibc_sysfs_line_at(path, text, sizeof(text));
	if (rc)
		return rc;
	errno = 0;
	if (is_signed)
		*(long *)out = strtol(text, &end, 0);
	else
		*(uint64_t *)out = strtoull(text, &end, 0);
	if (end == text || errno || (*end && *end != ' ' && *end != '\t') ||
	    (!is_signed && text[strspn(text, " \t")] == '-'))
		return -EINVAL;
	return 0;
}

int ibc_sysfs_read_long(const char *root, long *v, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ibc_sysfs_vnumber(root, 1, v, fmt, ap);
	va_end(ap);
	return rc;
}

int ibc_sysfs_read_u64(const char *root, uint64_t *v, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ibc_sysfs_vnumber(root, 0, v, fmt, ap);
	va_end(ap);
	return rc;
}

int ibc_sysfs_exists(const char *root, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ibc_sysfs_vpath(root, path, sizeof(path), fmt, ap);
	va_end(ap);
	return rc == 0 && access(path, F_OK) == 0;
}

static int ibc_is_pci_busid(const char *s)
{
	unsigned dom, bus, dev, fn;
	char tail;

	return strlen(s) == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.' &&
	       sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) == 4;
}

int ibc_sysfs_pci_busid(const char *root, char *out, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	va_list ap;
	ssize_t n;
	int rc;

	if (len)
		out[0] = '\0';
	va_start(ap, fmt);
	rc = ibc_sysfs_vpath(root, path, sizeof(path), fmt, ap);
	va_end(ap);
	if (rc)
		return rc;
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!ibc_is_pci_busid(base))
		return -EINVAL;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	memcpy(out, base, strlen(base) + 1);
	return 0;
}
