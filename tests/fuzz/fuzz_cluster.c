/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cluster.c - the projection's cluster description files (reports/cluster.h:
 * rpt_cluster_parse, the key=value parser rpt_cluster_load reads files with) and the model on
 * what it accepts. Properties: a description that parses passes rpt_cluster_check, prints
 * (rpt_cluster_print) to text that parses to the same values, and projects without a crash.
 */
#include "fuzz.h"
#include "cluster.h"
#include "project_model.h"

#include <string.h>

/* Print c and parse it again from an empty description. */
static void reparse(const struct rpt_cluster *c)
{
	struct rpt_cluster c2 = {0};
	char *buf = NULL, err[512];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	rpt_cluster_print(c, f);
	fclose(f);
	if (rpt_cluster_parse("printed", buf, &c2, err, sizeof(err)))
		fprintf(stderr, "reparse: %s\n", err);
	else
		FUZZ_CHECK(strcmp(c->name, c2.name) == 0 && c->gpus_per_node == c2.gpus_per_node &&
			   c->switch_radix == c2.switch_radix && c->max_tiers == c2.max_tiers);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpt_cluster c = {0};
	struct rpt_point pt;
	char err[512], *text;
	long gpus;
	int rc, a;

	if (size > (1 << 16) || memchr(data, '\0', size)) /* rpt_cluster_load refuses these */
		return 0;
	text = fuzz_strdup(data, size);
	if (!text)
		return 0;
	rc = rpt_cluster_parse("fuzz.conf", text, &c, err, sizeof(err));
	free(text);
	if (rc) {
		FUZZ_CHECK(rc < 0 && err[0]);
		return 0;
	}
	FUZZ_CHECK(rpt_cluster_check(&c, err, sizeof(err)) == 0);
	fuzz_strlen(c.name);
	fuzz_strlen(c.description);
	reparse(&c);
	for (gpus = c.gpus_per_node; gpus <= 1L << 20; gpus *= 8)
		for (a = 0; a < RPT_ALGO_COUNT; a++)
			rpt_project_point(&c, (enum rpt_algo)a, gpus, 1 << 20, &pt, err,
					  sizeof(err));
	return 0;
}
