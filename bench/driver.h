/* SPDX-License-Identifier: MIT */
/*
 * driver.h - the benchmark subcommands (DESIGN 4): `ibcoll allreduce` and `ibcoll sendrecv`.
 * Each returns the process exit code (DESIGN 9); only main() exits.
 */
#ifndef IBC_DRIVER_H
#define IBC_DRIVER_H

int ibc_allreduce_main(int argc, char **argv);
int ibc_sendrecv_main(int argc, char **argv);

#endif
