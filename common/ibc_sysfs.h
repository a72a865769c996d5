/* SPDX-License-Identifier: MIT */
/*
 * ibc_sysfs.h - the one sysfs reader. Every file ibcoll reads below /sys goes through here, so
 * one variable, IBCOLL_SYSFS_ROOT, points every module (tcp, verbs, gdr, topology) at a fake
 * tree in tests or at a copy taken from another machine.
 *
 * Paths are given relative to the root ("class/infiniband/%s/ports/%d/state"), printf-style.
 * A root argument of NULL means ibc_sysfs_root(). Every reader returns 0 or -errno (-ENOENT for
 * a missing file, -ENODATA for an empty one, -EINVAL for text that is not a number).
 */
#ifndef IBC_SYSFS_H
#define IBC_SYSFS_H

#include <stddef.h>
#include <stdint.h>

/* $IBCOLL_SYSFS_ROOT when set and non-empty, else "/sys". Borrowed. */
const char *ibc_sysfs_root(void);

/* root + "/" + the formatted relative path into path; -ENAMETOOLONG when it does not fit. */
int ibc_sysfs_path(const char *root, char *path, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* First line of the file, trailing newline and blanks stripped. */
int ibc_sysfs_read_line(const char *root, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The file's first number (decimal, or 0x hex), as sysfs prints counters and ids. */
int ibc_sysfs_read_long(const char *root, long *v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ibc_sysfs_read_u64(const char *root, uint64_t *v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 1 when the path exists (file, directory or link), else 0. */
int ibc_sysfs_exists(const char *root, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The PCI address a device link ("class/net/eth0/device") resolves to, as "0000:17:00.0":
 * the last component of the link's target. -ENOENT without a link, -EINVAL when the target is
 * not a PCI address. */
int ibc_sysfs_pci_busid(const char *root, char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
