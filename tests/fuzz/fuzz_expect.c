/* SPDX-License-Identifier: MIT */
/*
 * fuzz_expect.c - thresholds (reports/expect.h): an expectations file as the CSV reader hands
 * it over (rpt_expect_from_table) and the --expect-busbw shorthand (rpt_expect_parse_busbw), then
 * the check of what was accepted against a fixed results table. Properties: an accepted
 * expectation has at least one limit and every limit is > 0; a refused one says why; the check
 * makes at most one finding per (expectation, selected row) and never more row checks than
 * expectations x rows.
 */
#include "fuzz.h"
#include "expect.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static const char results[] =
	"schema,run_id,collective,algo,transport,mem,dtype,op,placement,nranks,bytes,"
	"busbw_GBps,time_p50_us,status\n"
	"1,a,allreduce,ring,shm,host,float,sum,out,2,1024,0.5,4.0,ok\n"
	"1,a,allreduce,tree,tcp,host,half,max,in,4,1048576,3.25,600.0,ok\n"
	"1,a,sendrecv,stream,verbs,host,uint8,,out,2,8,,,timeout\n";

static void check_all(const struct rpt_expects *e)
{
	struct ibc_csv_table *t;
	struct rpt_findings f = {0};
	char err[256];
	int i, checked, idle;

	for (i = 0; i < e->n; i++) {
		FUZZ_CHECK(!isnan(e->v[i].min_busbw) || !isnan(e->v[i].max_time));
		FUZZ_CHECK(isnan(e->v[i].min_busbw) || e->v[i].min_busbw > 0);
		FUZZ_CHECK(isnan(e->v[i].max_time) || e->v[i].max_time > 0);
	}
	if (ibc_csv_parse("results", results, sizeof(results) - 1, &t, err, sizeof(err)))
		return;
	if (rpt_expect_check(e, t, &f, NULL, &checked, &idle) == 0) {
		FUZZ_CHECK(checked <= e->n * t->nrows && idle <= e->n);
		FUZZ_CHECK(f.n <= checked);
	}
	rpt_findings_free(&f);
	ibc_csv_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpt_expects e = {0};
	struct ibc_csv_table *t;
	char err[512], *text;
	int rc;

	if (size > 65536)
		return 0;
	if (ibc_csv_parse("fuzz.csv", (const char *)data, size, &t, err, sizeof(err)) == 0) {
		err[0] = '\0';
		rc = rpt_expect_from_table(t, "fuzz.csv", &e, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || err[0]);
		if (rc == 0)
			check_all(&e);
		ibc_csv_free(t);
		rpt_expects_free(&e);
	}
	text = fuzz_strdup(data, size);
	if (!text)
		return 0;
	err[0] = '\0';
	rc = rpt_expect_parse_busbw(text, &e, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || err[0] || rc == -ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(e.n >= 1);
		check_all(&e);
	}
	rpt_expects_free(&e);
	free(text);
	return 0;
}
