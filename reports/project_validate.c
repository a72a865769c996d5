/* SPDX-License-Identifier: MIT */
/*
 * project_validate.c - `ibcoll project --validate published.csv`: the model's error against
 * public all-reduce measurements (tests/data/published.csv, docs/projection.md).
 *
 * Columns: system,gpus,gpus_per_node,nics_per_node,bytes,algo,busbw_GBps,source_url,note.
 * system is a preset or the name of cluster-<system>.conf beside the CSV file; gpus_per_node
 * and nics_per_node (when not empty) say how many of the node's GPUs and NICs the run used.
 * Target: median |error| <= 10%, no row worse than 25%; the same constants serve every row.
 */
#include "cluster.h"
#include "ibc_csv.h"
#include "ibc_common.h"
#include "project_internal.h"
#include "project_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TARGET_MEDIAN 0.10
#define TARGET_WORST  0.25

static const char *const vcols[] = {"system", "gpus", "gpus_per_node", "nics_per_node",
				    "bytes",  "algo", "busbw_GBps",    "source_url"};
enum { V_SYSTEM, V_GPUS, V_GPN, V_NICS, V_BYTES, V_ALGO, V_BUSBW, V_URL, V_NCOLS };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int load_system(const char *csv_path, const char *system, struct rpt_cluster *c, char *err,
		       size_t errlen)
{
	const char *slash = strrchr(csv_path, '/');
	char path[1024];

	if (rpt_cluster_preset(system, c) == 0)
		return 0;
	snprintf(path, sizeof(path), "%.*s%scluster-%s.conf", slash ? (int)(slash - csv_path) : 0,
		 csv_path, slash ? "/" : "", system);
	return rpt_cluster_load(path, c, err, errlen);
}

/* One row: model busbw into *model. Returns 0 or an exit code after printing why. */
static int one_row(const char *path, const struct ibc_csv_table *t, int r, const int *col,
		   double *measured, double *model)
{
	char **row = t->rows[r];
	struct rpt_cluster c;
	struct rpt_point pt;
	char err[1024];
	enum rpt_algo algo;
	long gpus, v;
	uint64_t bytes;
	int line = t->row_line[r], rc;

	rc = load_system(path, row[col[V_SYSTEM]], &c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ibcoll project: --validate: %s:%d: system '%s': %s\n", path, line,
			row[col[V_SYSTEM]], err);
		return rc == -EINVAL || rc == -ENOENT ? IBC_EXIT_USAGE : IBC_EXIT_ENV;
	}
	if (row[col[V_GPN]][0]) {
		if (ibc_parse_int(row[col[V_GPN]], 1, 1024, &v))
			goto bad_gpn;
		c.gpus_per_node = (int)v;
	}
	if (row[col[V_NICS]][0]) {
		if (ibc_parse_int(row[col[V_NICS]], 1, 1024, &v))
			goto bad_nics;
		c.nics_per_node = (int)v;
	}
	if (ibc_parse_int(row[col[V_GPUS]], 1, 1L << 40, &gpus))
		goto bad_gpus;
	if (ibc_parse_size(row[col[V_BYTES]], &bytes))
		goto bad_bytes;
	if (rpt_algo_parse(row[col[V_ALGO]], &algo))
		goto bad_algo;
	if (ibc_parse_double(row[col[V_BUSBW]], measured) || *measured <= 0)
		goto bad_busbw;
	rc = rpt_project_point(&c, algo, gpus, (double)bytes, &pt, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ibcoll project: --validate: %s:%d: %s\n", path, line, err);
		return IBC_EXIT_USAGE;
	}
	*model = pt.busbw_GBps;
	return 0;
#define BAD(label, what)                                                                           \
	label:                                                                                     \
	fprintf(stderr, "ibcoll project: --validate: %s:%d: %s\n", path, line, what);              \
	return IBC_EXIT_USAGE
	BAD(bad_gpn, "gpus_per_node: expected an integer 1-1024 or empty");
	BAD(bad_nics, "nics_per_node: expected an integer 1-1024 or empty");
	BAD(bad_gpus, "gpus: expected an integer >= 1");
	BAD(bad_bytes, "bytes: expected a size (1048576 or 1M)");
	BAD(bad_algo, "algo: expected ring, tree, hier-ring or hier-tree");
	BAD(bad_busbw, "busbw_GBps: expected a number > 0");
#undef BAD
}

int rpt__project_validate(const char *path)
{
	struct ibc_csv_table *t = NULL;
	int col[V_NCOLS], i, rc, worst_row = 0, ret;
	double *err_abs = NULL, median, worst = 0;
	char err[1024];

	rc = ibc_csv_read(path, &t, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ibcoll project: --validate: %s\n", err);
		return rpt__read_exit(rc);
	}
	for (i = 0; i < V_NCOLS; i++) {
		col[i] = ibc_csv_col(t, vcols[i]);
		if (col[i] < 0) {
			fprintf(stderr, "ibcoll project: --validate: %s:1: no column '%s'\n", path,
				vcols[i]);
			ibc_csv_free(t);
			return IBC_EXIT_USAGE;
		}
	}
	if (t->nrows == 0) {
		fprintf(stderr, "ibcoll project: --validate: %s: no rows\n", path);
		ibc_csv_free(t);
		return IBC_EXIT_USAGE;
	}
	err_abs = calloc((size_t)t->nrows, sizeof(*err_abs));
	if (!err_abs) {
		ibc_csv_free(t);
		return IBC_EXIT_ENV;
	}
	printf("# ibcoll project --validate %s: all-reduce busbw, model vs published\n", path);
	printf("# %-16s %6s %4s %4s %-9s %8s %9s %9s %8s  %s\n", "system", "gpus", "g/n", "nics",
	       "algo", "bytes", "measured", "model", "error", "source");
	for (i = 0; i < t->nrows; i++) {
		char **row = t->rows[i];
		double meas, model, e;

		ret = one_row(path, t, i, col, &meas, &model);
		if (ret)
			goto out;
		e = (model - meas) / meas;
		err_abs[i] = fabs(e);
		if (err_abs[i] > worst) {
			worst = err_abs[i];
			worst_row = i;
		}
		printf("  %-16s %6s %4s %4s %-9s %8s %9.1f %9.1f %+7.1f%%  %s\n",
		       row[col[V_SYSTEM]], row[col[V_GPUS]], row[col[V_GPN]], row[col[V_NICS]],
		       row[col[V_ALGO]], row[col[V_BYTES]], meas, model, 100 * e, row[col[V_URL]]);
	}
	qsort(err_abs, (size_t)t->nrows, sizeof(*err_abs), cmp_double);
	median = t->nrows % 2 ? err_abs[t->nrows / 2]
			      : (err_abs[t->nrows / 2 - 1] + err_abs[t->nrows / 2]) / 2;
	ret = median <= TARGET_MEDIAN && worst <= TARGET_WORST ? IBC_EXIT_OK : IBC_EXIT_CHECK;
	printf("# %d rows: median |error| %.1f%%, worst %.1f%% (line %d); target median <= %.0f%%, "
	       "worst <= %.0f%%: %s\n",
	       t->nrows, 100 * median, 100 * worst, t->row_line[worst_row], 100 * TARGET_MEDIAN,
	       100 * TARGET_WORST, ret ? "MISSED" : "met");
out:
	free(err_abs);
	ibc_csv_free(t);
	return ret;
}
