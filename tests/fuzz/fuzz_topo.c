/* SPDX-License-Identifier: MIT */
/*
 * fuzz_topo.c - loading an hwloc XML topology (topology/topo.h: topo_load_xml_buffer, what
 * --topology-xml reads) and everything ibcoll computes from it: devices, path classes, the
 * GPU-NIC pairing, a rank's pick and the preflight checks (no sysfs). hwloc parses the XML;
 * the harness is after ibcoll's code on whatever hwloc accepts. hwloc 2.9 itself crashes
 * on some malformed files while loading them (tests/fuzz/known/topo): scripts/fuzz runs this
 * harness with -fork and sets those crashes aside (docs/fuzzing.md).
 */
#include "fuzz.h"
#include "topo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setenv("HWLOC_XML_VERBOSE", "0", 1);
	setenv("HWLOC_HIDE_ERRORS", "2", 1);
	unsetenv("IBCOLL_SYSFS_ROOT");
	return 0;
}

static void count_warning(void *arg, const char *line)
{
	(*(int *)arg)++;
	fuzz_strlen(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct topo_check_opts co = {0};
	struct topo_rank_info info;
	struct topo_device d;
	struct topo *t;
	int ngpu, nnic, i, k, *pair, nwarn = 0;

	char *xml;
	int rc;

	if (size > (1 << 20))
		return 0;
	xml = fuzz_strdup(data, size);
	if (!xml)
		return 0;
	rc = topo_load_xml_buffer("fuzz.xml", xml, size, &t);
	free(xml);
	if (rc)
		return 0;
	ngpu = topo_gpu_count(t);
	nnic = topo_nic_count(t);
	FUZZ_CHECK(ngpu >= 0 && nnic >= 0);
	topo_machine(t, NULL, NULL, NULL, NULL);
	for (i = 0; i < ngpu; i++) {
		FUZZ_CHECK(topo_get_device(t, TOPO_DEV_GPU, i, &d) == 0);
		fuzz_strlen(d.cpus);
		for (k = 0; k < nnic; k++)
			fuzz_strlen(topo_path_name(topo_gpu_nic_path(t, i, k)));
	}
	for (k = 0; k < nnic; k++)
		FUZZ_CHECK(topo_get_device(t, TOPO_DEV_NIC, k, &d) == 0);
	pair = calloc((size_t)ngpu + 1, sizeof(*pair));
	if (pair) {
		topo_pair(t, ngpu, pair);
		for (i = 0; i < ngpu; i++)
			FUZZ_CHECK(pair[i] >= -1 && pair[i] < nnic);
		free(pair);
	}
	for (i = 0; i < 3; i++)
		if (!topo_pick(t, i, 3, &info))
			fuzz_strlen(info.cpus);
	FUZZ_CHECK(topo_check(t, &co, count_warning, &nwarn) >= 0);
	topo_destroy(t);
	return 0;
}
