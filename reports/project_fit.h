/* SPDX-License-Identifier: MIT */
/*
 * project_fit.h - calibration: fit per-step latency alpha, inverse bandwidth beta and
 * reduction cost gamma to measured results.csv rows by least squares
 * (docs/projection.md#calibration).
 *
 * Row models (p ranks, n bytes; docs/projection.md#the-model):
 *   ring all-reduce   t = 2(p-1) a + 2(p-1)/p n b + (p-1)/p n g
 *   tree all-reduce   t = 2 ceil(log2 p) a + n b + n g
 *   sendrecv          t = a + n b
 * Residuals are relative (each row weighted by 1/t), so small and large sizes count alike.
 */
#ifndef RPT_PROJECT_FIT_H
#define RPT_PROJECT_FIT_H

#include "cluster.h"
#include "ibc_csv.h"

#include <stddef.h>

struct rpt_fit {
	char transport[64];
	char run_id[80];
	int nrows;	    /* rows used */
	int nskipped;	    /* rows of status != ok, other transports or collectives */
	int nsizes, nranks; /* distinct sizes and rank counts among the rows used */
	long p_min, p_max;  /* smallest and largest rank count */
	int multinode;	    /* some row has nnodes > 1 */
	double alpha_us;    /* per step */
	double beta_us_per_byte;
	double gamma_us_per_byte; /* 0 when not separable (have_gamma = 0) */
	int have_gamma;
	double r2;	    /* of the relative (weighted) fit */
	double max_rel_err; /* worst |model - measured| / measured */
	char warn[768];	    /* "" or warnings, "; "-separated */
};

/* Fit from a results.csv table (reports/schema.h columns). transport NULL: the table must hold one
 * transport. name is used in messages. Returns 0, or -EINVAL with "name:line: what" in err ("name:line:col: what" for a field out of
 * range: nranks 1..2^40, nnodes 1..nranks, bytes 0..2^50, time_us 0 or 0.001..1e12); a fit whose
 * numbers are not finite, or whose bandwidth is outside 0.001..1e5 GB/s, is refused. */
int rpt_fit_table(const char *name, const struct ibc_csv_table *t, const char *transport,
		  struct rpt_fit *fit, char *err, size_t errlen);

/* Use the fit in a cluster description: network latency and NIC bandwidth when the rows span
 * nodes, NVLink latency and bandwidth when they do not; gamma as a serial reduction cost. */
void rpt_fit_apply(const struct rpt_fit *fit, struct rpt_cluster *c);
/* The reduction rate gamma stands for, in GB/s (at most 1e6, as a cluster file); 0 without one. */
double rpt_fit_reduce_GBps(const struct rpt_fit *fit);

#endif
