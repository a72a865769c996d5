/* SPDX-License-Identifier: MIT */
/*
 * cluster.c - cluster presets and the key=value description format (docs/projection.md).
 *
 * Every preset number carries its public source. "NCCL cost model" means the constants of
 * NVIDIA/nccl src/graph/tuning.cc (hwLat, the tree bandwidth factor and the comment that a
 * Simple-protocol chunk moves at about 12 GB/s per channel).
 */
#include "cluster.h"

#include "ibc_common.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Model constants shared by every preset (the "physics" of NCCL-like collectives). */
#define RPT_SHARED_CONSTANTS                                                                       \
	/* NCCL-tests#212 (sjeaugey): "with the protocol overhead (~20%) NCCL can get an           \
	 * effective NVLink bandwidth of 370GB/s" of 450: 370/450 = 0.82; NCCL#1455 measures       \
	 * 365-370 GB/s ring busbw on 2..8 H100. */                                                \
	.nvlink_efficiency =                                                                       \
	    0.82, /* NCCL cost model: NVLink ring step latency, Simple protocol (hwLat) 3.4 us. */ \
	    .nvlink_latency_us = 3.4, /* nccl-tests#290 (AddyLaddy): "For NDR @ 400Gbps you should \
				       * see 46-48GB/s per NIC": 47.5/50 = 0.95. */                \
	    .nic_efficiency = 0.95, /* NCCL cost model: network ring step latency, Simple protocol \
				       (hwLat) 9.6 us. */                                          \
	    .net_latency_us = 9.6,  /* PCIe DMA reaches about 80% of the raw rate (TLP headers,    \
				       flow control): assumption. */                               \
	    .pcie_efficiency =                                                                     \
		0.8, /* NCCL cost model: tree busBw = 0.9 x the channels' bandwidth. */            \
	    .tree_efficiency = 0.9, /* NCCL Simple protocol: NCCL_BUFFSIZE 4 MiB (NCCL docs) in    \
				       NCCL_STEPS = 8 slots. */                                    \
	    .chunk_KiB =                                                                           \
		512, /* NCCL cost model comment: a Simple chunk moves at ~12 GB/s per channel. */  \
	    .channel_GBps = 12, /* GPU reductions are fused into the copy kernel (NCCL prims), so  \
				   they overlap. */                                                \
	    .reduce_overlap = 1

static const struct rpt_cluster presets[] = {
    {
	.name = "h100-ndr",
	.description = "8x H100 SXM per node (NVLink4), 8x ConnectX-7 NDR 400 Gb/s, "
		       "rail-optimized non-blocking fat tree of 64-port switches",
	/* NVIDIA HGX/DGX H100: 8 H100 SXM5 GPUs per node */
	.gpus_per_node = 8,
	/* NVIDIA H100 datasheet: NVLink 900 GB/s per GPU (both directions) */
	.nvlink_GBps = 450,
	/* DGX H100: 8 ConnectX-7 single-port NDR 400 Gb/s, one per GPU */
	.nics_per_node = 8,
	.nic_Gbps = 400,
	/* H100 SXM host link: PCIe Gen5 x16 = 32 GT/s x 16 x 128/130 / 8 = 63 GB/s */
	.pcie_GBps = 63,
	/* NVIDIA Quantum-2 QM9700: 64 ports of NDR 400 Gb/s */
	.switch_radix = 64,
	/* assumption: sub-microsecond cut-through InfiniBand switch hop */
	.switch_latency_us = 0.2,
	/* 3 tiers of 64-port switches serve 65,536 NICs; a 4th tier reaches 2,097,152 */
	.max_tiers = 4,
	.oversubscription = 1,
	.rail_optimized = 1,
	/* NVIDIA H100 SXM datasheet: HBM3 3.35 TB/s; a reduction moves 3 bytes (2 reads,
	 * 1 write) per reduced byte: ~1100 GB/s */
	.reduce_GBps = 1100,
	RPT_SHARED_CONSTANTS,
    },
    {
	.name = "h100-spectrumx",
	.description = "Colossus-like: 8x H100 per node, one 400GbE SuperNIC per GPU, "
		       "Spectrum-X switches of 64x800G = 128x400G ports, three tiers",
	.gpus_per_node = 8,
	.nvlink_GBps = 450, /* NVIDIA H100 datasheet, as above */
	/* NVIDIA newsroom, xAI Colossus (Oct 2024): BlueField-3 SuperNICs at 400 GbE, one
	 * per GPU; Spectrum-X keeps 95% data throughput (our nic_efficiency 0.95) */
	.nics_per_node = 8,
	.nic_Gbps = 400,
	.pcie_GBps = 63, /* PCIe Gen5 x16, as above */
	/* NVIDIA Spectrum-4 SN5600: 64 ports of 800 GbE, split as 128 x 400 GbE */
	.switch_radix = 128,
	/* assumption: Ethernet cut-through switch hop, slower than InfiniBand */
	.switch_latency_us = 0.5,
	/* three tiers of 128 ports serve 524,288 NICs: 100,000 GPUs growing to 200,000 */
	.max_tiers = 3,
	.oversubscription = 1,
	.rail_optimized = 1,
	.reduce_GBps = 1100, /* H100 HBM3, as above */
	RPT_SHARED_CONSTANTS,
    },
};

const char *const rpt_cluster_preset_names[] = {"h100-ndr", "h100-spectrumx", NULL};

int rpt_cluster_preset(const char *name, struct rpt_cluster *c)
{
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(presets); i++)
		if (strcmp(presets[i].name, name) == 0) {
			*c = presets[i];
			return 0;
		}
	return -ENOENT;
}

/* ---------------------------------------------------------------- keys */

enum key_type { K_INT, K_DOUBLE, K_BOOL, K_STRING };

struct key {
	const char *name;
	enum key_type type;
	size_t off;
	double min, max;  /* inclusive; for K_STRING max is the buffer size */
	const char *what; /* accepted values, for messages */
};

#define KOFF(field) offsetof(struct rpt_cluster, field)

static const struct key keys[] = {
    {"name", K_STRING, KOFF(name), 1, 64, "a name of 1-63 characters"},
    {"description", K_STRING, KOFF(description), 0, 160, "text up to 159 characters"},
    {"gpus_per_node", K_INT, KOFF(gpus_per_node), 1, 1024, "an integer 1-1024"},
    {"nvlink_GBps", K_DOUBLE, KOFF(nvlink_GBps), 0.001, 1e5, "GB/s > 0"},
    {"nvlink_efficiency", K_DOUBLE, KOFF(nvlink_efficiency), 0.01, 1, "a fraction 0.01-1"},
    {"nvlink_latency_us", K_DOUBLE, KOFF(nvlink_latency_us), 0, 1e6, "microseconds >= 0"},
    {"nics_per_node", K_INT, KOFF(nics_per_node), 1, 1024, "an integer 1-1024"},
    {"nic_Gbps", K_DOUBLE, KOFF(nic_Gbps), 0.001, 1e6, "Gb/s > 0"},
    {"nic_efficiency", K_DOUBLE, KOFF(nic_efficiency), 0.01, 1, "a fraction 0.01-1"},
    {"net_latency_us", K_DOUBLE, KOFF(net_latency_us), 0, 1e6, "microseconds >= 0"},
    {"pcie_GBps", K_DOUBLE, KOFF(pcie_GBps), 0.001, 1e5, "GB/s > 0"},
    {"pcie_efficiency", K_DOUBLE, KOFF(pcie_efficiency), 0.01, 1, "a fraction 0.01-1"},
    {"switch_radix", K_INT, KOFF(switch_radix), 4, 4096, "an even integer 4-4096"},
    {"switch_latency_us", K_DOUBLE, KOFF(switch_latency_us), 0, 1e3, "microseconds >= 0"},
    {"max_tiers", K_INT, KOFF(max_tiers), 1, 8, "an integer 1-8"},
    {"oversubscription", K_DOUBLE, KOFF(oversubscription), 1, 64,
     "a ratio 1-64 (1 = non-blocking)"},
    {"rail_optimized", K_BOOL, KOFF(rail_optimized), 0, 1, "yes or no"},
    {"reduce_GBps", K_DOUBLE, KOFF(reduce_GBps), 0.001, 1e6, "GB/s > 0"},
    {"reduce_overlap", K_BOOL, KOFF(reduce_overlap), 0, 1, "yes or no"},
    {"tree_efficiency", K_DOUBLE, KOFF(tree_efficiency), 0.01, 1, "a fraction 0.01-1"},
    {"chunk_KiB", K_DOUBLE, KOFF(chunk_KiB), 0, 1 << 20, "KiB >= 0"},
    {"channel_GBps", K_DOUBLE, KOFF(channel_GBps), 0.001, 1e5, "GB/s > 0"},
};

static int seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", buf);
	ibc_err_set("%s", buf);
	return -EINVAL;
}

static const struct key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

int rpt_cluster_set(struct rpt_cluster *c, const char *key, const char *value, char *err,
		    size_t errlen)
{
	const struct key *k = find_key(key);
	char *field;
	double d;
	long l;
	int b;

	if (!k) {
		char known[1024] = "";
		size_t i;

		for (i = 0; i < IBC_ARRAY_SIZE(keys); i++) {
			strncat(known, i ? ", " : "", sizeof(known) - strlen(known) - 1);
			strncat(known, keys[i].name, sizeof(known) - strlen(known) - 1);
		}
		return seterr(err, errlen, "unknown key '%s' (known keys: base, %s)", key, known);
	}
	field = (char *)c + k->off;
	switch (k->type) {
	case K_STRING:
		if (strlen(value) < (size_t)k->min || strlen(value) >= (size_t)k->max)
			return seterr(err, errlen, "%s = '%s': expected %s", key, value, k->what);
		snprintf(field, (size_t)k->max, "%s", value);
		return 0;
	case K_BOOL:
		if (parse_bool(value, &b))
			return seterr(err, errlen, "%s = '%s': expected %s", key, value, k->what);
		*(int *)field = b;
		return 0;
	case K_INT:
		if (ibc_parse_int(value, (long)k->min, (long)k->max, &l) ||
		    (k->off == KOFF(switch_radix) && l % 2))
			return seterr(err, errlen, "%s = '%s': expected %s", key, value, k->what);
		*(int *)field = (int)l;
		return 0;
	case K_DOUBLE:
		if (ibc_parse_double(value, &d) || d < k->min || d > k->max)
			return seterr(err, errlen, "%s = '%s': expected %s", key, value, k->what);
		*(double *)field = d;
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One line: "key = value", "# comment" or blank; *nkeys counts keys ("base" only first). */
static int parse_line(const char *name, int lineno, char *line, struct rpt_cluster *c, int *nkeys,
		      char *err, size_t errlen)
{
	char *eq, *key, *val, *hash = strchr(line, '#');
	char sub[512];
	int rc;

	if (hash)
		*hash = '\0';
	line = trim(line);
	if (!*line)
		return 0;
	eq = strchr(line, '=');
	if (!eq)
		return seterr(err, errlen, "%s:%d: expected 'key = value', got '%s'", name, lineno,
			      line);
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	if (!*key)
		return seterr(err, errlen, "%s:%d: missing key before '='", name, lineno);
	if (strcmp(key, "base") == 0) {
		if (*nkeys)
			return seterr(
			    err, errlen,
			    "%s:%d: 'base' must be the first key (it replaces every value)", name,
			    lineno);
		if (rpt_cluster_preset(val, c))
			return seterr(err, errlen,
				      "%s:%d: base = '%s': unknown preset (known: h100-ndr, "
				      "h100-spectrumx)",
				      name, lineno, val);
		(*nkeys)++;
		return 0;
	}
	rc = rpt_cluster_set(c, key, val, sub, sizeof(sub));
	if (rc)
		return seterr(err, errlen, "%s:%d: %s", name, lineno, sub);
	(*nkeys)++;
	return 0;
}

int rpt_cluster_parse(const char *name, const char *text, struct rpt_cluster *c, char *err,
		      size_t errlen)
{
	char *copy = strdup(text), *line, *p;
	int lineno = 0, nkeys = 0, rc = 0;

	if (!copy)
		return -ENOMEM;
	/* strtok_r would merge empty lines and lose the count: split by hand */
	for (line = copy; line && !rc; line = p) {
		p = strchr(line, '\n');
		if (p)
			*p++ = '\0';
		lineno++;
		rc = parse_line(name, lineno, line, c, &nkeys, err, errlen);
	}
	free(copy);
	if (rc)
		return rc;
	if (nkeys == 0)
		return seterr(err, errlen, "%s: no keys (an empty description)", name);
	rc = rpt_cluster_check(c, err, errlen);
	if (rc) {
		char sub[512];

		snprintf(sub, sizeof(sub), "%s", err ? err : "");
		return seterr(err, errlen, "%s: %s", name, sub);
	}
	return 0;
}

int rpt_cluster_check(const struct rpt_cluster *c, char *err, size_t errlen)
{
	if (!c->name[0])
		return seterr(err, errlen, "no name (set name = ...)");
	if (c->gpus_per_node < 1)
		return seterr(err, errlen, "gpus_per_node is not set");
	if (c->nics_per_node < 1 || c->nic_Gbps <= 0)
		return seterr(err, errlen, "nics_per_node and nic_Gbps must be set");
	if (c->nvlink_GBps <= 0 || c->pcie_GBps <= 0 || c->reduce_GBps <= 0 || c->channel_GBps <= 0)
		return seterr(err, errlen,
			      "nvlink_GBps, pcie_GBps, reduce_GBps and channel_GBps must be set");
	if (c->nvlink_efficiency <= 0 || c->nic_efficiency <= 0 || c->pcie_efficiency <= 0 ||
	    c->tree_efficiency <= 0)
		return seterr(err, errlen, "efficiencies must be set (0 < e <= 1)");
	if (c->switch_radix < 4 || c->switch_radix % 2)
		return seterr(err, errlen, "switch_radix = %d: expected an even integer >= 4",
			      c->switch_radix);
	if (c->max_tiers < 1)
		return seterr(err, errlen, "max_tiers must be >= 1");
	if (c->oversubscription < 1)
		return seterr(err, errlen, "oversubscription must be >= 1");
	return 0;
}

int rpt_cluster_load(const char *name_or_file, struct rpt_cluster *c, char *err, size_t errlen)
{
	struct rpt_cluster base = {0};
	FILE *f;
	char *text;
	long n;
	int rc;

	if (rpt_cluster_preset(name_or_file, c) == 0)
		return 0;
	f = fopen(name_or_file, "r");
	if (!f) {
		rc = -errno;
		if (rc == -ENOENT && !strchr(name_or_file, '/') && !strchr(name_or_file, '.')) {
			seterr(err, errlen,
			       "'%s' is neither a preset (h100-ndr, h100-spectrumx) nor a file",
			       name_or_file);
			return -ENOENT;
		}
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", name_or_file, strerror(-rc));
		return rc;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) || n > (1 << 20)) {
		fclose(f);
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot read (or larger than 1 MiB)",
				 name_or_file);
		return -EIO;
	}
	text = malloc((size_t)n + 1);
	if (!text) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(text, 1, (size_t)n, f) != (size_t)n) {
		free(text);
		fclose(f);
		if (err && errlen)
			snprintf(err, errlen, "%s: read error", name_or_file);
		return -EIO;
	}
	fclose(f);
	text[n] = '\0';
	if (memchr(text, '\0', (size_t)n)) {
		free(text);
		return seterr(err, errlen, "%s: NUL byte: not a text file", name_or_file);
	}
	rc = rpt_cluster_parse(name_or_file, text, &base, err, errlen);
	free(text);
	if (!rc)
		*c = base;
	return rc;
}

void rpt_cluster_print(const struct rpt_cluster *c, FILE *f)
{
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)c + k->off;

		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case K_STRING:
			fprintf(f, "%s\n", field);
			break;
		case K_BOOL:
			fprintf(f, "%s\n", *(const int *)field ? "yes" : "no");
			break;
		case K_INT:
			fprintf(f, "%d\n", *(const int *)field);
			break;
		case K_DOUBLE:
			fprintf(f, "%g\n", *(const double *)field);
			break;
		}
	}
}

double rpt_cluster_capacity(int radix, int tiers)
{
	if (tiers <= 0)
		return 1;
	if (tiers == 1)
		return radix;
	return 2.0 * pow(radix / 2.0, tiers);
}

int rpt_cluster_tiers(long endpoints, int radix)
{
	int t;

	if (endpoints <= 1)
		return 0;
	for (t = 1; t < 64; t++)
		if (rpt_cluster_capacity(radix, t) >= (double)endpoints)
			return t;
	return 64;
}
