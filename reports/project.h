/* SPDX-License-Identifier: MIT */
/*
 * project.h - `ibcoll project`: project all-reduce time from a few measured nodes (or a preset)
 * to 200,000 GPUs and beyond (docs/projection.md).
 */
#ifndef RPT_PROJECT_H
#define RPT_PROJECT_H

/* argv[0] == "project". Prints the table on stdout, messages on stderr.
 * Returns 0 ok, 1 validation target missed (--validate), 2 usage error (names the flag, value
 * or file:line), 3 I/O failure (a file that cannot be read or created). */
int project_cmd_main(int argc, char **argv);

#endif
