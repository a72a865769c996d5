/* SPDX-License-Identifier: MIT */
#include "mpi_algo.h"
#include "ibc_common.h"

#if defined(IBCOLL_HAVE_MPI)
#include <mpi.h>
#include <stdlib.h>

static int mpi_inited;

int ibc_mpi_available(void)
{
	return 1;
}

int ibc_mpi_init(int rank, int nranks)
{
	int r = -1, n = -1, provided, flag = 0;

	if (mpi_inited)
		return 0;
	if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) {
		ibc_err_set("--algo mpi needs ranks started by mpirun (not --np): e.g. mpirun -np "
			    "%d -x IBCOLL_ROOT=host:port ibcoll allreduce --algo mpi,ring",
			    nranks);
		return -EINVAL;
	}
	MPI_Initialized(&flag);
	if (!flag && MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) {
		ibc_err_set("MPI_Init failed");
		return -EIO;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &r);
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	if (r != rank || n != nranks) {
		ibc_err_set("MPI says rank %d of %d but ibcoll's launcher says %d of %d", r, n, rank,
			    nranks);
		return -EINVAL;
	}
	mpi_inited = 1;
	atexit(ibc_mpi_fini);
	return 0;
}

static int mpi_type(enum ibc_dtype dt, MPI_Datatype *t)
{
	switch (dt) {
	case IBC_INT8: *t = MPI_INT8_T; return 0;
	case IBC_UINT8: *t = MPI_UINT8_T; return 0;
	case IBC_INT32: *t = MPI_INT32_T; return 0;
	case IBC_UINT32: *t = MPI_UINT32_T; return 0;
	case IBC_INT64: *t = MPI_INT64_T; return 0;
	case IBC_UINT64: *t = MPI_UINT64_T; return 0;
	case IBC_FLOAT: *t = MPI_FLOAT; return 0;
	case IBC_DOUBLE: *t = MPI_DOUBLE; return 0;
	default: return -ENOTSUP;
	}
}

int ibc_mpi_allreduce(const void *in, void *out, size_t count, enum ibc_dtype dt, enum ibc_op op)
{
	static const MPI_Op ops[IBC_OP_COUNT] = { MPI_SUM, MPI_PROD, MPI_MIN, MPI_MAX, MPI_SUM };
	MPI_Datatype t;
	int n;

	if (mpi_type(dt, &t)) {
		ibc_err_set("--algo mpi: MPI has no %s type", ibc_dtype_name(dt));
		return -ENOTSUP;
	}
	if (count > (size_t)0x7fffffff) {
		ibc_err_set("--algo mpi: count %zu exceeds MPI's int", count);
		return -ERANGE;
	}
	if (MPI_Allreduce(in == out ? MPI_IN_PLACE : in, out, (int)count, t, ops[op],
			  MPI_COMM_WORLD) != MPI_SUCCESS) {
		ibc_err_set("MPI_Allreduce failed");
		return -EIO;
	}
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	ibc_reduce_finish(out, count, dt, op, n);
	return 0;
}

void ibc_mpi_fini(void)
{
	if (mpi_inited) {
		mpi_inited = 0;
		MPI_Finalize();
	}
}
#else
int ibc_mpi_available(void)
{
	return 0;
}

int ibc_mpi_init(int rank, int nranks)
{
	ibc_err_set("--algo mpi: this ibcoll was built without MPI (install libopenmpi-dev and "
		    "rebuild with -DIBCOLL_MPI=ON)");
	return -ENOTSUP;
}

int ibc_mpi_allreduce(const void *in, void *out, size_t count, enum ibc_dtype dt, enum ibc_op op)
{
	return -ENOTSUP;
}

void ibc_mpi_fini(void)
{
}
#endif
