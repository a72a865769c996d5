/* SPDX-License-Identifier: MIT */
/*
 * project_internal.h - declarations shared by reports/project*.c only.
 */
#ifndef RPT_PROJECT_INTERNAL_H
#define RPT_PROJECT_INTERNAL_H

#include "ibc_csv.h"

/* --validate FILE: compare the model with published measurements (project_validate.c).
 * Returns an exit code (0 target met, 1 missed, 2 missing or bad file, 3 other I/O failure). */
int rpt__project_validate(const char *path);
/* The exit code for a failed ibc_csv_read of a file named on the command line: a file that is
 * not there, not readable or not a file, or malformed, is a usage error (2); other I/O errors
 * are 3. */
int rpt__read_exit(int rc);

#endif
