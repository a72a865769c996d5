/* SPDX-License-Identifier: MIT */
/*
 * mpi_algo.h - `--algo mpi`: the MPI library's own MPI_Allreduce through ibcoll's driver, so a
 * user compares their MPI with ibcoll's ring and tree in one run and one CSV. Present when the
 * build found MPI (IBCOLL_MPI); otherwise ibc_mpi_available() is 0 and the rest fail cleanly.
 */
#ifndef IBC_MPI_ALGO_H
#define IBC_MPI_ALGO_H

#include "dtype.h"

#include <stddef.h>

int ibc_mpi_available(void);
/* MPI_Init (once); checks MPI's world matches ibcoll's rank and size. */
int ibc_mpi_init(int rank, int nranks);
int ibc_mpi_allreduce(const void *in, void *out, size_t count, enum ibc_dtype dt, enum ibc_op op);
void ibc_mpi_fini(void);

#endif
