/* SPDX-License-Identifier: MIT */
/*
 * findings.h - findings.csv, one format for every check (docs/design.md#findings): a problem
 * found (a baseline regression, later a slow link, a port below its rate, a counter that moved)
 * is one row: which check, what kind of thing (host, nic, link, rank, row), where (host, nic and
 * their peers), what was measured against what was expected, in which unit, and a sentence of
 * evidence. A run with findings exits 1; its last lines on stdout state each finding in words.
 */
#ifndef RPT_FINDINGS_H
#define RPT_FINDINGS_H

#include "ibc_csv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct rpt_finding {
	char check[16]; /* baseline, threshold, links, preflight, counters, attribution */
	char kind[8];	/* host, nic, link, rank, row */
	char host[64], nic[32], peer_host[64], peer_nic[32];
	double measured, expected; /* NAN: not a number (the field is left empty) */
	char unit[16];
	char evidence[400];
};

/* A growing list of findings. */
struct rpt_findings {
	struct rpt_finding *v; /* owned */
	int n, cap;
};

/* Append a zeroed finding of check and kind (measured and expected NAN); NULL when out of
 * memory. */
struct rpt_finding *rpt_findings_add(struct rpt_findings *f, const char *check, const char *kind);
void rpt_findings_free(struct rpt_findings *f);

/* One check made, passed or failed: a JUnit testcase (machine.h). A failed case has a
 * finding too. */
struct rpt_case {
	char check[16];
	char name[240];	  /* what was checked: the row, with the expectation that selected it */
	char message[400]; /* failed: why ("" when passed) */
	bool failed;
};

struct rpt_cases {
	struct rpt_case *v; /* owned */
	int n, cap;
};

/* Append a case (c may be NULL: nothing recorded); 0 or -ENOMEM. message NULL = passed. */
int rpt_cases_add(struct rpt_cases *c, const char *check, const char *name, const char *message);
void rpt_cases_free(struct rpt_cases *c);

/* A results.csv row in words for evidence and case names, the same in every check:
 * "allreduce ring over tcp (host, float sum, out-place, 8 ranks on 2 nodes, 1M bytes)";
 * a column the table lacks reads "?". */
void rpt_row_words(const struct ibc_csv_table *t, int row, char *out, size_t len);

/* Make room for one more element of size elem in *v (n used, *cap allocated; doubling from
 * first): 0 or -ENOMEM (*v unchanged). The lists of findings, cases and expectations. */
int rpt__grow(void **v, int n, int *cap, size_t elem, int first);

/* Write dir/findings.csv (exclusive create; a header only when there are none). 0 or -errno
 * with err saying what failed. */
int rpt_findings_write(const char *dir, const char *run_id, const struct rpt_findings *f, char *err,
		       size_t errlen);

/* The closing lines: "# findings: none" or "# findings: N" and one "#   kind where: evidence"
 * line each. */
void rpt_findings_print(FILE *out, const struct rpt_findings *f);

#endif
