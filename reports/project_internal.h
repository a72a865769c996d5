/* SPDX-License-Identifier: MIT */
/*
 * project_internal.h - declarations shared by reports/project*.c only.
 */
#ifndef RPT_PROJECT_INTERNAL_H
#define RPT_PROJECT_INTERNAL_H

#include "csv.h"

/* Defined in csv.c: commit nrows rows (nrows x ncols values) with one temp file + rename, for
 * writers that produce thousands of rows at once (one fsync + rename per row would take
 * seconds). Same guarantees as rpt_csv_append. Candidate for csv.h. */
int rpt__csv_append_rows(struct rpt_csv_writer *w, const char *const *values, int nrows);

/* --validate FILE: compare the model with published measurements (project_validate.c).
 * Returns an exit code (0 target met, 1 missed, 2 bad file content, 3 unreadable). */
int rpt__project_validate(const char *path);

#endif
