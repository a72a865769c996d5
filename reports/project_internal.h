/* SPDX-License-Identifier: MIT */
/*
 * project_internal.h - declarations shared by reports/project*.c only.
 */
#ifndef RPT_PROJECT_INTERNAL_H
#define RPT_PROJECT_INTERNAL_H

#include "ibc_csv.h"

/* --validate FILE: compare the model with published measurements (project_validate.c).
 * Returns an exit code (0 target met, 1 missed, 2 bad file content, 3 unreadable). */
int rpt__project_validate(const char *path);

#endif
