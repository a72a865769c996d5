/* SPDX-License-Identifier: MIT */
/*
 * topo.c - load a topology with hwloc 2.x, find NVIDIA GPUs and RDMA NICs, classify every
 * GPU-NIC path as nvidia-smi does, pair GPUs with NICs, pick and bind a rank's cores.
 */
#include "topo_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ibc_common.h"
#include "ibc_sysfs.h"

#define PCI_VENDOR_NVIDIA 0x10de
#define PCI_CLASS_VGA	  0x0300
#define PCI_CLASS_3D	  0x0302

#define TOPO_BAD_XML                                                                               \
	"%s is not a valid hwloc v2 XML topology (HWLOC_XML_VERBOSE=1 shows what the parser "      \
	"rejected); regenerate it with lstopo --of xml FILE on the machine it describes"

const char *topo_path_name(enum topo_path p)
{
	static const char *const names[] = {
	    [TOPO_PATH_PIX] = "PIX",   [TOPO_PATH_PXB] = "PXB", [TOPO_PATH_PHB] = "PHB",
	    [TOPO_PATH_NODE] = "NODE", [TOPO_PATH_SYS] = "SYS", [TOPO_PATH_NONE] = "",
	};

	if ((unsigned)p >= IBC_ARRAY_SIZE(names))
		return "";
	return names[p];
}

/* The one place that knows how hwloc marks an OpenFabrics (verbs) OS device: 2.x has one type
 * per osdev, 3.0 a bit mask. */
static int topo_is_openfabrics(hwloc_obj_t o)
{
	if (o->type != HWLOC_OBJ_OS_DEVICE)
		return 0;
#if HWLOC_API_VERSION >= 0x00030000
	return (o->attr->osdev.types & HWLOC_OBJ_OSDEV_OPENFABRICS) != 0;
#else
	return o->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS;
#endif
}

static int topo_is_pci_bridge(hwloc_obj_t o)
{
	return o->type == HWLOC_OBJ_BRIDGE && o->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_PCI;
}

static int topo_is_gpu(hwloc_obj_t pci)
{
	const struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;

	return a->vendor_id == PCI_VENDOR_NVIDIA &&
	       (a->class_id == PCI_CLASS_3D || a->class_id == PCI_CLASS_VGA);
}

/* The OpenFabrics OS device below a PCI device, or NULL. */
static hwloc_obj_t topo_ofed_child(hwloc_obj_t pci)
{
	hwloc_obj_t c;

	for (c = pci->io_first_child; c; c = c->next_sibling)
		if (topo_is_openfabrics(c) && c->name)
			return c;
	return NULL;
}

static size_t topo_stem_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isdigit((unsigned char)s[n - 1]))
		n--;
	return n;
}

/* "mlx5_2" < "mlx5_10": same stem, then compare the trailing numbers. */
static int topo_natcmp(const char *a, const char *b)
{
	size_t na = topo_stem_len(a), nb = topo_stem_len(b);

	if (na == nb && memcmp(a, b, na) == 0 && a[na] && b[nb]) {
		unsigned long x = strtoul(a + na, NULL, 10), y = strtoul(b + nb, NULL, 10);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return strcmp(a, b);
}

static int topo_cmp_busid(const void *x, const void *y)
{
	return strcmp(((const struct topo_dev *)x)->busid, ((const struct topo_dev *)y)->busid);
}

static int topo_cmp_name(const void *x, const void *y)
{
	return topo_natcmp(((const struct topo_dev *)x)->name, ((const struct topo_dev *)y)->name);
}

static int topo_socket_of(const struct topo *t, hwloc_obj_t local)
{
	hwloc_obj_t pkg = local;

	if (pkg->type != HWLOC_OBJ_PACKAGE)
		pkg = hwloc_get_ancestor_obj_by_type(t->hw, HWLOC_OBJ_PACKAGE, local);
	if (!pkg && t->npackages == 1)
		pkg = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_PACKAGE, 0);
	if (!pkg)
		return -1;
	return pkg->os_index == HWLOC_UNKNOWN_INDEX ? (int)pkg->logical_index : (int)pkg->os_index;
}

/* First port hwloc saw ACTIVE (Linux fills Port<N>State infos on OpenFabrics devices). */
static int topo_hw_active_port(hwloc_obj_t ofed)
{
	unsigned i;
	int port;

	for (i = 0; i < ofed->infos_count; i++) {
		if (sscanf(ofed->infos[i].name, "Port%dState", &port) == 1 &&
		    strcmp(ofed->infos[i].value, "4") == 0)
			return port;
	}
	return 0;
}

static void topo_fill_dev(struct topo *t, struct topo_dev *d, hwloc_obj_t pci)
{
	const struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;

	d->pci = pci;
	d->vendor = a->vendor_id;
	d->device = a->device_id;
	snprintf(d->busid, sizeof(d->busid), "%04x:%02x:%02x.%01x", (unsigned)a->domain, a->bus,
		 a->dev, a->func);
	d->local = hwloc_get_non_io_ancestor_obj(t->hw, pci);
	d->numa = -1;
	d->socket = -1;
	if (!d->local)
		return;
	d->socket = topo_socket_of(t, d->local);
	if (d->local->cpuset)
		hwloc_bitmap_list_snprintf(d->cpus, sizeof(d->cpus), d->local->cpuset);
	if (d->local->nodeset) {
		hwloc_bitmap_list_snprintf(d->numas, sizeof(d->numas), d->local->nodeset);
		if (hwloc_bitmap_weight(d->local->nodeset) == 1)
			d->numa = hwloc_bitmap_first(d->local->nodeset);
	}
}

static hwloc_obj_t topo_common_ancestor(hwloc_obj_t a, hwloc_obj_t b)
{
	hwloc_obj_t x, y;

	for (x = a; x; x = x->parent)
		for (y = b; y; y = y->parent)
			if (x == y)
				return x;
	return NULL;
}

/* PCI bridges strictly between dev and its ancestor top. */
static int topo_bridges_between(hwloc_obj_t dev, hwloc_obj_t top)
{
	hwloc_obj_t x;
	int n = 0;

	for (x = dev->parent; x && x != top; x = x->parent)
		n += x->type == HWLOC_OBJ_BRIDGE;
	return n;
}

/*
 * As nvidia-smi: below one PCIe switch (the switch's upstream port, or a root port, is the
 * common ancestor and each device hangs at most one downstream port below it) is PIX; deeper
 * switch trees are PXB; meeting at a host bridge is PHB; meeting above the host bridges is NODE
 * when both sides are local to the same NUMA nodes, else SYS.
 */
static enum topo_path topo_classify(const struct topo_dev *g, const struct topo_dev *n)
{
	hwloc_obj_t c = topo_common_ancestor(g->pci, n->pci);

	if (!c)
		return TOPO_PATH_NONE;
	if (c->type == HWLOC_OBJ_PCI_DEVICE)
		return TOPO_PATH_PIX;
	if (topo_is_pci_bridge(c))
		return topo_bridges_between(g->pci, c) <= 1 && topo_bridges_between(n->pci, c) <= 1
			   ? TOPO_PATH_PIX
			   : TOPO_PATH_PXB;
	if (c->type == HWLOC_OBJ_BRIDGE)
		return TOPO_PATH_PHB;
	if (g->local && n->local && g->local->nodeset && n->local->nodeset &&
	    hwloc_bitmap_isequal(g->local->nodeset, n->local->nodeset))
		return TOPO_PATH_NODE;
	return TOPO_PATH_SYS;
}

static int topo_discover(struct topo *t)
{
	hwloc_obj_t pci = NULL, root = hwloc_get_root_obj(t->hw);
	const char *host = hwloc_obj_get_info_by_name(root, "HostName");
	int n = 0, g, k;

	t->npackages = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PACKAGE);
	t->nnuma = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_NUMANODE);
	t->ncores = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_CORE);
	t->npus = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PU);
	snprintf(t->hostname, sizeof(t->hostname), "%s", host ? host : "");

	while ((pci = hwloc_get_next_pcidev(t->hw, pci)))
		n++;
	t->gpus = calloc(n ? n : 1, sizeof(*t->gpus));
	t->nics = calloc(n ? n : 1, sizeof(*t->nics));
	if (!t->gpus || !t->nics) {
		ibc_err_set("out of memory listing %d PCI devices", n);
		return -ENOMEM;
	}
	while ((pci = hwloc_get_next_pcidev(t->hw, pci))) {
		hwloc_obj_t ofed = topo_ofed_child(pci);
		struct topo_dev *d;

		if (topo_is_gpu(pci)) {
			d = &t->gpus[t->ngpu++];
			d->kind = TOPO_DEV_GPU;
		} else if (ofed) {
			d = &t->nics[t->nnic++];
			d->kind = TOPO_DEV_NIC;
			snprintf(d->name, sizeof(d->name), "%s", ofed->name);
			d->hw_port = topo_hw_active_port(ofed);
		} else {
			continue;
		}
		topo_fill_dev(t, d, pci);
	}
	qsort(t->gpus, t->ngpu, sizeof(*t->gpus), topo_cmp_busid);
	qsort(t->nics, t->nnic, sizeof(*t->nics), topo_cmp_name);
	for (g = 0; g < t->ngpu; g++)
		snprintf(t->gpus[g].name, sizeof(t->gpus[g].name), "GPU%d", g);

	t->paths = calloc((size_t)(t->ngpu * t->nnic) + 1, sizeof(*t->paths));
	if (!t->paths) {
		ibc_err_set("out of memory for the %dx%d path matrix", t->ngpu, t->nnic);
		return -ENOMEM;
	}
	for (g = 0; g < t->ngpu; g++)
		for (k = 0; k < t->nnic; k++)
			t->paths[g * t->nnic + k] = topo_classify(&t->gpus[g], &t->nics[k]);
	return 0;
}

/* hwloc crashes on some malformed XML while it loads it (2.9: a NUMA node without
 * complete_nodeset dereferences a NULL bitmap). A file a user names is first loaded by a
 * child process: when hwloc crashes there, the file is refused with a message instead of
 * ibcoll dying with it. 0 (the child loaded it, or refused it as hwloc does: the parent's own
 * load then says why) or -EINVAL with the error text set. */
#define TOPO_PROBE_REFUSED 42 /* the probe's exit when hwloc refused the file (no crash) */

static int topo_xml_probe(const char *path)
{
	int st = 0;
	pid_t pid = fork();

	if (pid < 0)
		return 0; /* no child to spare: load it here, as before */
	if (pid == 0) {
		hwloc_topology_t hw;
		int ok = hwloc_topology_init(&hw) == 0;

		if (ok) {
			hwloc_topology_set_io_types_filter(hw, HWLOC_TYPE_FILTER_KEEP_ALL);
			ok = hwloc_topology_set_xml(hw, path) == 0 && hwloc_topology_load(hw) == 0;
			hwloc_topology_destroy(hw);
		}
		_exit(ok ? 0 : TOPO_PROBE_REFUSED);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* any other end is a crash: a signal, or a sanitizer's report and exit */
	if (WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == TOPO_PROBE_REFUSED))
		return 0;
	if (WIFSIGNALED(st))
		ibc_err_set("hwloc crashed (signal %d, %s) while reading topology file %s: it is "
			    "not a topology hwloc can load; make it again with lstopo --of xml FILE",
			    WTERMSIG(st), strsignal(WTERMSIG(st)), path);
	else
		ibc_err_set("hwloc crashed (exit %d) while reading topology file %s: it is not a "
			    "topology hwloc can load; make it again with lstopo --of xml FILE",
			    WEXITSTATUS(st), path);
	return -EINVAL;
}

static int topo_load_xml_file(struct topo *t, const char *path)
{
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		rc = -errno;
		ibc_err_set(
		    "cannot read topology file %s: %s (give an hwloc v2 XML file, e.g. from "
		    "lstopo --of xml FILE)",
		    path, strerror(-rc));
		return rc;
	}
	fclose(f);
	rc = topo_xml_probe(path);
	if (rc)
		return rc;
	if (hwloc_topology_set_xml(t->hw, path) < 0) {
		ibc_err_set(TOPO_BAD_XML, path);
		return -EINVAL;
	}
	t->from_xml = 1;
	snprintf(t->source, sizeof(t->source), "%s", path);
	return 0;
}

/* *out: a topology not loaded yet, its hwloc handle initialised. ret is the public caller's
 * result pointer: refused when NULL, else cleared (so it is NULL after any failure). */
static int topo_new(struct topo **ret, struct topo **out)
{
	struct topo *t;
	int rc;

	if (!ret) {
		ibc_err_set("topo_load: no place to store the topology");
		return -EINVAL;
	}
	*ret = NULL;
	if ((hwloc_get_api_version() >> 16) != (HWLOC_API_VERSION >> 16)) {
		ibc_err_set("hwloc library %#x does not match the headers ibcoll was built with "
			    "(%#x): rebuild ibcoll against the installed hwloc",
			    hwloc_get_api_version(), HWLOC_API_VERSION);
		return -ENOTSUP;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		ibc_err_set("out of memory for the topology");
		return -ENOMEM;
	}
	if (hwloc_topology_init(&t->hw) < 0) {
		rc = errno ? -errno : -ENOMEM;
		ibc_err_set("hwloc_topology_init failed: %s", strerror(-rc));
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* Load t from its source (set before: XML when t->from_xml, else the live machine) and find
 * its devices; on failure t is destroyed. */
static int topo_finish(struct topo *t)
{
	const char *env;
	int rc;

	/* Keep every bridge: PIX/PXB/PHB are counted on them. */
	hwloc_topology_set_io_types_filter(t->hw, HWLOC_TYPE_FILTER_KEEP_ALL);
	if (hwloc_topology_load(t->hw) < 0) {
		if (t->from_xml) {
			rc = -EINVAL;
			ibc_err_set(TOPO_BAD_XML, t->source);
		} else {
			rc = errno ? -errno : -EIO;
			ibc_err_set("hwloc could not read this machine's topology: %s (is /sys "
				    "mounted? try lstopo to see hwloc's own message)",
				    strerror(-rc));
		}
		goto destroy_hw;
	}
	env = getenv("IBCOLL_SYSFS_ROOT");
	if (!t->from_xml || (env && *env))
		topo_set_sysfs_root(t, ibc_sysfs_root());
	rc = topo_discover(t);
	if (rc < 0)
		goto free_devs;
	return 0;

free_devs:
	free(t->paths);
	free(t->nics);
	free(t->gpus);
destroy_hw:
	hwloc_topology_destroy(t->hw);
	free(t);
	return rc;
}

int topo_load(const char *xml_path, struct topo **out)
{
	struct topo *t;
	int rc = topo_new(out, &t);

	if (rc)
		return rc;
	if (xml_path) {
		rc = topo_load_xml_file(t, xml_path);
		if (rc < 0) {
			hwloc_topology_destroy(t->hw);
			free(t);
			return rc;
		}
	}
	rc = topo_finish(t);
	if (!rc)
		*out = t;
	return rc;
}

int topo_load_xml_buffer(const char *name, const char *buf, size_t len, struct topo **out)
{
	struct topo *t;
	char *copy;
	int rc;

	rc = topo_new(out, &t);
	if (rc)
		return rc;
	copy = len < INT_MAX ? malloc(len + 1) : NULL; /* hwloc counts the terminating NUL */
	if (!copy) {
		hwloc_topology_destroy(t->hw);
		free(t);
		ibc_err_set("%s: no memory for %zu bytes of XML", name, len);
		return len < INT_MAX ? -ENOMEM : -EINVAL;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	t->from_xml = 1;
	snprintf(t->source, sizeof(t->source), "%s", name);
	rc = hwloc_topology_set_xmlbuffer(t->hw, copy, (int)len + 1);
	if (rc < 0) {
		free(copy);
		hwloc_topology_destroy(t->hw);
		free(t);
		ibc_err_set(TOPO_BAD_XML, name);
		return -EINVAL;
	}
	rc = topo_finish(t);
	free(copy); /* hwloc parsed it during the load */
	if (!rc)
		*out = t;
	return rc;
}

void topo_destroy(struct topo *t)
{
	if (!t)
		return;
	free(t->paths);
	free(t->nics);
	free(t->gpus);
	hwloc_topology_destroy(t->hw);
	free(t);
}

int topo_set_sysfs_root(struct topo *t, const char *root)
{
	if (!root) {
		t->sysfs_on = 0;
		t->sysfs_root[0] = '\0';
		return 0;
	}
	if (strlen(root) >= sizeof(t->sysfs_root)) {
		ibc_err_set("sysfs root %.64s... is longer than %zu characters", root,
			    sizeof(t->sysfs_root) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(t->sysfs_root, sizeof(t->sysfs_root), "%s", root);
	t->sysfs_on = 1;
	return 0;
}

int topo_gpu_count(const struct topo *t)
{
	return t->ngpu;
}

int topo_nic_count(const struct topo *t)
{
	return t->nnic;
}

const char *topo_source(const struct topo *t)
{
	return t->source;
}

void topo_machine(const struct topo *t, int *packages, int *numas, int *cores, int *pus)
{
	if (packages)
		*packages = t->npackages;
	if (numas)
		*numas = t->nnuma;
	if (cores)
		*cores = t->ncores;
	if (pus)
		*pus = t->npus;
}

int topo_get_device(const struct topo *t, enum topo_dev_kind kind, int i, struct topo_device *d)
{
	const struct topo_dev *s;
	int n = kind == TOPO_DEV_GPU ? t->ngpu : t->nnic;

	if (i < 0 || i >= n) {
		ibc_err_set("no %s number %d (this topology has %d)",
			    kind == TOPO_DEV_GPU ? "GPU" : "RDMA NIC", i, n);
		return -ERANGE;
	}
	s = kind == TOPO_DEV_GPU ? &t->gpus[i] : &t->nics[i];
	memset(d, 0, sizeof(*d));
	d->kind = s->kind;
	d->vendor = s->vendor;
	d->device = s->device;
	d->socket = s->socket;
	d->numa = s->numa;
	snprintf(d->name, sizeof(d->name), "%s", s->name);
	snprintf(d->busid, sizeof(d->busid), "%s", s->busid);
	snprintf(d->cpus, sizeof(d->cpus), "%s", s->cpus);
	return 0;
}

enum topo_path topo_gpu_nic_path(const struct topo *t, int gpu, int nic)
{
	if (gpu < 0 || gpu >= t->ngpu || nic < 0 || nic >= t->nnic)
		return TOPO_PATH_NONE;
	return t->paths[gpu * t->nnic + nic];
}

/* Among GPU g's candidates (NICs of its nearest class) the least loaded; ties go to the NIC
 * fewer of the GPUs still waiting want, then to the lowest index. */
static int topo_pick_nic(const struct topo *t, int g, const enum topo_path *best, const int *load,
			 const int *nic_of_gpu, int nused)
{
	int k, h, pick = -1, pick_demand = 0;

	for (k = 0; k < t->nnic; k++) {
		int demand = 0;

		if (t->paths[g * t->nnic + k] != best[g])
			continue;
		for (h = 0; h < nused; h++)
			demand +=
			    h != g && nic_of_gpu[h] < 0 && t->paths[h * t->nnic + k] == best[h];
		if (pick < 0 || load[k] < load[pick] ||
		    (load[k] == load[pick] && demand < pick_demand)) {
			pick = k;
			pick_demand = demand;
		}
	}
	return pick;
}

int topo_pair(const struct topo *t, int nused, int *nic_of_gpu)
{
	enum topo_path *best = NULL;
	int *ncand = NULL, *load = NULL;
	int g, k, step, rc = 0;

	if (nused < 0 || nused > t->ngpu) {
		ibc_err_set("cannot pair %d GPUs: this topology has %d", nused, t->ngpu);
		return -EINVAL;
	}
	for (g = 0; g < nused; g++)
		nic_of_gpu[g] = -1;
	if (!t->nnic || !nused)
		return 0;
	best = calloc(nused, sizeof(*best));
	ncand = calloc(nused, sizeof(*ncand));
	load = calloc(t->nnic, sizeof(*load));
	if (!best || !ncand || !load) {
		ibc_err_set("out of memory pairing %d GPUs with %d NICs", nused, t->nnic);
		rc = -ENOMEM;
		goto out;
	}
	for (g = 0; g < nused; g++) {
		best[g] = TOPO_PATH_NONE;
		for (k = 0; k < t->nnic; k++)
			best[g] = IBC_MIN(best[g], t->paths[g * t->nnic + k]);
		for (k = 0; k < t->nnic; k++)
			ncand[g] += t->paths[g * t->nnic + k] == best[g];
	}
	for (step = 0; step < nused; step++) {
		int next = -1;

		/* The most constrained GPU chooses first. */
		for (g = 0; g < nused; g++)
			if (nic_of_gpu[g] < 0 && (next < 0 || ncand[g] < ncand[next]))
				next = g;
		k = topo_pick_nic(t, next, best, load, nic_of_gpu, nused);
		nic_of_gpu[next] = k;
		if (k >= 0)
			load[k]++;
	}
out:
	free(load);
	free(ncand);
	free(best);
	return rc;
}

static int topo_copy_cpus(struct topo_rank_info *info, const char *cpus, const char *what)
{
	if (strlen(cpus) >= sizeof(info->cpus)) {
		ibc_err_set("the cpu list of %s (%zu characters) is longer than %zu", what,
			    strlen(cpus), sizeof(info->cpus) - 1);
		return -ENOBUFS;
	}
	topo__copy(info->cpus, sizeof(info->cpus), cpus);
	return 0;
}

/* Neither GPU nor NIC: local rank r gets block r of local_size equal blocks of cores. */
static int topo_pick_cores(struct topo *t, int r, int size, struct topo_rank_info *info)
{
	hwloc_obj_type_t type = t->ncores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
	int n = t->ncores > 0 ? t->ncores : t->npus, lo, hi, i, rc = -ENOMEM;
	hwloc_bitmap_t set = hwloc_bitmap_alloc(), nodes = hwloc_bitmap_alloc();
	char buf[1024];

	if (!set || !nodes) {
		ibc_err_set("out of memory choosing cores for local rank %d", r);
		goto out;
	}
	lo = (int)((long long)r * n / size);
	hi = (int)((long long)(r + 1) * n / size);
	if (hi <= lo) /* more ranks than cores: neighbouring ranks share core lo */
		hi = lo + 1;
	for (i = lo; i < hi && i < n; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, type, i);

		if (o && o->cpuset)
			hwloc_bitmap_or(set, set, o->cpuset);
	}
	hwloc_bitmap_list_snprintf(buf, sizeof(buf), set);
	hwloc_cpuset_to_nodeset(t->hw, set, nodes);
	if (hwloc_bitmap_weight(nodes) == 1)
		info->numa = hwloc_bitmap_first(nodes);
	rc = topo_copy_cpus(info, buf, "the chosen cores");
out:
	hwloc_bitmap_free(nodes);
	hwloc_bitmap_free(set);
	return rc;
}

static void topo_fill_nic(struct topo *t, int nic, struct topo_rank_info *info)
{
	const struct topo_dev *d = &t->nics[nic];
	struct topo_port port;

	topo__copy(info->nic, sizeof(info->nic), d->name);
	topo__copy(info->nic_busid, sizeof(info->nic_busid), d->busid);
	info->nic_port = d->hw_port;
	if (topo__best_port(t, nic, &port) == 0) {
		info->nic_port = port.port;
		info->link_gbps = port.rate_gbps;
	}
}

int topo_pick(struct topo *t, int local_rank, int local_size, struct topo_rank_info *info)
{
	int *pair = NULL, g, nused, rc;

	if (!t || !info || local_size < 1 || local_rank < 0 || local_rank >= local_size) {
		ibc_err_set("topo_pick: local rank %d of %d is out of range (0 <= rank < size)",
			    local_rank, local_size);
		return -EINVAL;
	}
	memset(info, 0, sizeof(*info));
	info->numa = -1;
	info->path = TOPO_PATH_NONE;
	if (t->ngpu == 0 && t->nnic == 0)
		return topo_pick_cores(t, local_rank, local_size, info);
	if (t->ngpu == 0) {
		topo_fill_nic(t, local_rank % t->nnic, info);
		info->numa = t->nics[local_rank % t->nnic].numa;
		return topo_copy_cpus(info, t->nics[local_rank % t->nnic].cpus, info->nic);
	}
	g = local_rank % t->ngpu;
	nused = IBC_MIN(local_size, t->ngpu);
	pair = calloc(nused, sizeof(*pair));
	if (!pair) {
		ibc_err_set("out of memory pairing %d GPUs", nused);
		return -ENOMEM;
	}
	rc = topo_pair(t, nused, pair);
	if (rc < 0)
		goto out;
	topo__copy(info->gpu, sizeof(info->gpu), t->gpus[g].name);
	topo__copy(info->gpu_busid, sizeof(info->gpu_busid), t->gpus[g].busid);
	info->numa = t->gpus[g].numa;
	if (pair[g] >= 0) {
		topo_fill_nic(t, pair[g], info);
		info->path = t->paths[g * t->nnic + pair[g]];
	}
	rc = topo_copy_cpus(info, t->gpus[g].cpus, info->gpu);
out:
	free(pair);
	return rc;
}

static int topo_bind_mem(struct topo *t, const struct topo_rank_info *info)
{
	const struct hwloc_topology_support *s = hwloc_topology_get_support(t->hw);
	hwloc_bitmap_t nodes;
	int flags = HWLOC_MEMBIND_BYNODESET, rc = 0;

	if (info->numa < 0)
		return 0;
	if (s->membind->set_thisproc_membind)
		flags |= HWLOC_MEMBIND_PROCESS;
	else if (s->membind->set_thisthread_membind)
		flags |= HWLOC_MEMBIND_THREAD; /* threads created later inherit it on Linux */
	else
		return 0; /* first touch on the bound cores keeps memory local anyway */
	nodes = hwloc_bitmap_alloc();
	if (!nodes) {
		ibc_err_set("out of memory binding memory to NUMA node %d", info->numa);
		return -ENOMEM;
	}
	hwloc_bitmap_only(nodes, (unsigned)info->numa);
	if (hwloc_set_membind(t->hw, nodes, HWLOC_MEMBIND_BIND, flags) < 0) {
		rc = errno ? -errno : -EPERM;
		ibc_err_set("cannot bind memory to NUMA node %d: %s (binding is not permitted "
			    "here; memory stays where first touched)",
			    info->numa, strerror(-rc));
	}
	hwloc_bitmap_free(nodes);
	return rc;
}

int topo_bind(struct topo *t, const struct topo_rank_info *info)
{
	hwloc_bitmap_t set;
	int rc = 0;

	if (!hwloc_topology_is_thissystem(t->hw)) {
		ibc_err_set("the topology was loaded from %s, which may describe another machine: "
			    "not binding (load the live machine to bind)",
			    t->source[0] ? t->source : "a file");
		return -ENOTSUP;
	}
	set = hwloc_bitmap_alloc();
	if (!set) {
		ibc_err_set("out of memory binding to cpus %s", info->cpus);
		return -ENOMEM;
	}
	if (!info->cpus[0] || hwloc_bitmap_list_sscanf(set, info->cpus) < 0 ||
	    hwloc_bitmap_iszero(set)) {
		ibc_err_set("cannot bind to cpu list '%s': not a list like 0-15,64-79", info->cpus);
		rc = -EINVAL;
		goto out;
	}
	if (hwloc_set_cpubind(t->hw, set, HWLOC_CPUBIND_PROCESS) < 0) {
		rc = errno ? -errno : -EPERM;
		ibc_err_set("cannot bind to cpus %s: %s (binding is not permitted here, e.g. a "
			    "cgroup or container limits the cpus; the rank runs unbound)",
			    info->cpus, strerror(-rc));
		goto out;
	}
	rc = topo_bind_mem(t, info);
out:
	hwloc_bitmap_free(set);
	return rc;
}
