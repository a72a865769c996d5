/* SPDX-License-Identifier: MIT */
/*
 * test_common.c - common/: the one id generator (ibc_id.h) and the one sysfs reader
 * (ibc_sysfs.h) against a tree made here and against IBCOLL_SYSFS_ROOT.
 */
#include "ibc_common.h"
#include "ibc_id.h"
#include "ibc_sysfs.h"
#include "tap.h"

#include <ctype.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int all_hex(const char *s)
{
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return 0;
	return 1;
}

static void test_ids(void)
{
	char a[IBC_ID_BUFLEN], b[IBC_ID_BUFLEN], small[5];
	unsigned char bytes[300] = { 0 };
	int i, zero = 0;

	ibc_new_id(a, sizeof(a));
	ibc_new_id(b, sizeof(b));
	is_int(strlen(a), IBC_ID_HEX, "an id has IBC_ID_HEX digits");
	ok(all_hex(a) && all_hex(b), "ids are lowercase hex (%s, %s)", a, b);
	ok(strcmp(a, b) != 0, "two ids differ");
	ibc_new_id(small, sizeof(small));
	is_int(strlen(small), 4, "an id is cut to a small buffer, NUL-terminated");
	is_int(ibc_random_bytes(bytes, sizeof(bytes)), 0, "random bytes from the kernel");
	for (i = 0; i < (int)sizeof(bytes); i++)
		zero += bytes[i] == 0;
	ok(zero < 20, "random bytes are not left zero (%d zero of 300)", zero);
	ok(ibc_random_u64() != ibc_random_u64(), "two nonces differ");
}

static void put(const char *dir, const char *rel, const char *text)
{
	char path[600], cmd[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	if (system(cmd))
		diag("mkdir failed for %s", path);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_sysfs(const char *root)
{
	char buf[64], path[600], link[600];
	long v = 0;
	uint64_t u = 0;

	put(root, "class/infiniband/mlx5_0/ports/1/state", "4: ACTIVE\n");
	put(root, "class/infiniband/mlx5_0/ports/1/counters/port_xmit_data", "123456789012\n");
	put(root, "class/net/eth0/speed", "100000\n");
	put(root, "class/net/eth0/type", "  32 \n");
	put(root, "class/net/eth0/bad", "fast\n");
	put(root, "class/net/eth0/neg", "-1\n");
	put(root, "class/net/eth0/empty", "");
	put(root, "devices/pci0000:00/0000:17:00.0/vendor", "0x15b3\n");
	snprintf(path, sizeof(path), "%s/class/net/eth0/device", root);
	snprintf(link, sizeof(link), "../../../devices/pci0000:00/0000:17:00.0");
	ok(symlink(link, path) == 0, "device link made");
	snprintf(path, sizeof(path), "%s/class/net/eth0/notpci", root);
	ok(symlink("../../../devices/virtual/net/lo", path) == 0, "non-PCI link made");

	is_int(ibc_sysfs_read_line(root, buf, sizeof(buf), "class/infiniband/%s/ports/%d/state",
				   "mlx5_0", 1),
	       0, "read a line");
	is_str(buf, "4: ACTIVE", "newline stripped");
	is_int(ibc_sysfs_read_u64(root, &u, "class/infiniband/mlx5_0/ports/1/counters/%s",
				  "port_xmit_data"),
	       0, "read a counter");
	ok(u == 123456789012ull, "64-bit counter value");
	is_int(ibc_sysfs_read_long(root, &v, "class/net/eth0/speed"), 0, "read a number");
	is_int(v, 100000, "speed value");
	is_int(ibc_sysfs_read_long(root, &v, "class/net/eth0/type"), 0, "blanks around a number");
	is_int(v, 32, "type value");
	is_int(ibc_sysfs_read_long(root, &v, "devices/pci0000:00/0000:17:00.0/vendor"), 0, "hex");
	is_int(v, 0x15b3, "hex value");
	is_int(ibc_sysfs_read_long(root, &v, "class/net/eth0/bad"), -EINVAL, "text is -EINVAL");
	is_int(ibc_sysfs_read_u64(root, &u, "class/net/eth0/neg"), -EINVAL, "negative u64: -EINVAL");
	is_int(ibc_sysfs_read_line(root, buf, sizeof(buf), "class/net/eth0/empty"), -ENODATA,
	       "empty file: -ENODATA");
	is_int(ibc_sysfs_read_line(root, buf, sizeof(buf), "class/net/eth9/speed"), -ENOENT,
	       "missing file: -ENOENT");
	is_int(ibc_sysfs_pci_busid(root, buf, sizeof(buf), "class/net/%s/device", "eth0"), 0,
	       "device link resolved");
	is_str(buf, "0000:17:00.0", "PCI address of the link's target");
	is_int(ibc_sysfs_pci_busid(root, buf, sizeof(buf), "class/net/eth0/notpci"), -EINVAL,
	       "a link to a non-PCI device: -EINVAL");
	is_int(ibc_sysfs_pci_busid(root, buf, sizeof(buf), "class/net/eth0/speed"), -EINVAL,
	       "not a link: error");
	ok(ibc_sysfs_exists(root, "class/infiniband/%s", "mlx5_0"), "exists");
	ok(!ibc_sysfs_exists(root, "class/infiniband/mlx5_9"), "does not exist");
	is_int(ibc_sysfs_path(root, path, 12, "class/infiniband"), -ENAMETOOLONG,
	       "a path that does not fit is refused");

	setenv("IBCOLL_SYSFS_ROOT", root, 1);
	is_str(ibc_sysfs_root(), root, "IBCOLL_SYSFS_ROOT is the root");
	is_int(ibc_sysfs_read_long(NULL, &v, "class/net/eth0/speed"), 0, "NULL root reads it");
	is_int(v, 100000, "through the variable");
	setenv("IBCOLL_SYSFS_ROOT", "", 1);
	is_str(ibc_sysfs_root(), "/sys", "empty variable: /sys");
	unsetenv("IBCOLL_SYSFS_ROOT");
	is_str(ibc_sysfs_root(), "/sys", "unset: /sys");
}

int main(void)
{
	char root[] = "/tmp/ibc-test-common-XXXXXX", cmd[100];

	test_ids();
	if (!mkdtemp(root)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	test_sysfs(root);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd))
		diag("could not remove %s", root);
	return tap_done();
}
