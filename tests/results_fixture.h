/* SPDX-License-Identifier: MIT */
/*
 * results_fixture.h - results.csv files with known rows for the tests of what reads them
 * (compare, thresholds); header only.
 */
#ifndef IBC_RESULTS_FIXTURE_H
#define IBC_RESULTS_FIXTURE_H

#include "schema.h"

#include <stdio.h>
#include <sys/stat.h>

/* One results.csv row's varying parts. */
struct row {
	const char *transport;
	long bytes;
	double p50, p99; /* us; min is p50 * 0.95, mean p50 */
	const char *status;
};

/* Write dir/results.csv with the given rows (schema sv, run id id). */
static inline int write_run(const char *dir, const char *sv, const char *id, const struct row *r, int n)
{
	static const char *const cols[] = {RPT_RESULTS_COLUMNS};
	char path[400];
	FILE *f;
	int i, k;

	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	for (k = 0; k < RPT_RESULTS_NCOLS; k++)
		fprintf(f, "%s%c", cols[k], k + 1 < RPT_RESULTS_NCOLS ? ',' : '\n');
	for (i = 0; i < n; i++) {
		double bw = r[i].bytes / (r[i].p50 * 1e3);

		fprintf(
		    f,
		    "%s,%s,2026-12-07T00:00:00Z,0.1.0,allreduce,ring,%s,host,float,sum,out,8,2,4,"
		    "1,%ld,%ld,1,20,%.3f,%.3f,%.3f,%.3f,%.3f,%.6f,%.6f,0,,3,hostb,%s,local\n",
		    sv, id, r[i].transport, r[i].bytes, r[i].bytes / 4, r[i].p50, r[i].p50 * 0.95,
		    r[i].p50, r[i].p99, r[i].p99 * 1.2, bw, bw * 1.75, r[i].status);
	}
	return fclose(f);
}

#endif
