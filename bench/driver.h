/* SPDX-License-Identifier: MIT */
/*
 * driver.h - the benchmark subcommands (docs/design.md#timing-and-checks): `ibcoll allreduce` and
 * `ibcoll sendrecv`. Each returns the process exit code (docs/design.md#exit-codes); only main()
 * exits.
 */
#ifndef IBC_DRIVER_H
#define IBC_DRIVER_H

int ibc_allreduce_main(int argc, char **argv);
int ibc_sendrecv_main(int argc, char **argv);

#endif
