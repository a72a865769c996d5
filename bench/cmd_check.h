/* SPDX-License-Identifier: MIT */
/*
 * cmd_check.h - `ibcoll check`: the preflight of one host (docs/design.md#preflight).
 */
#ifndef BENCH_CMD_CHECK_H
#define BENCH_CMD_CHECK_H

/* argv[0] == "check". The process exit code (docs/design.md#exit-codes). */
int bench_check_main(int argc, char **argv);

#endif
