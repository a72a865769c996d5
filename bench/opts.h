/* SPDX-License-Identifier: MIT */
/*
 * opts.h - the options of `ibcoll allreduce` and `ibcoll sendrecv`
 * (docs/design.md#timing-and-checks), parsed into one small config struct per concern and validated
 * after parsing. Every message names the flag (and the accepted range); a usage error is exit 2
 * (docs/design.md#exit-codes). Internal to bench/.
 */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include "coll.h"
#include "dtype.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_SIZES 256 /* rows of one size sweep */
#define BENCH_MAX_ITERS 100000 /* -n and -w */

enum bench_place { BENCH_PLACE_OUT, BENCH_PLACE_IN, BENCH_PLACE_COUNT };

/* -b -e -f -i -n -w -c: the size sweep and the iterations of every size (both commands). */
struct bench_sweep_cfg {
	uint64_t minb, maxb;
	uint64_t stepf; /* multiply by stepf each step; 0: add stepi instead (-i) */
	uint64_t stepi;
	long iters, warmup, check;
};

/* -d -o --algo --placement --channels --chunk: what `ibcoll allreduce` runs. */
struct bench_coll_cfg {
	enum ibc_dtype dt[IBC_DTYPE_COUNT];
	int ndt;
	enum ibc_op op[IBC_OP_COUNT];
	int nop;
	enum ibc_algo algo[IBC_ALGO_COUNT];
	int nalgo; /* 0 for sendrecv */
	bool place[BENCH_PLACE_COUNT];
	long channels;
	bool channels_set; /* --channels given: no automatic choice */
	uint64_t chunk; /* 0 = auto */
};

/* --window --bidir: `ibcoll sendrecv`. */
struct bench_sr_cfg {
	long window;
	bool bidir;
};

/* --transport --depth --qps --gid-index --nic --mem --gpu: the communicator of each rank. */
struct bench_tp_cfg {
	const char *transport; /* borrowed (argv or a decoded message); NULL = auto */
	long depth;
	long qps;
	long gid_index; /* -1 = automatic */
	const char *nic; /* borrowed from argv; NULL = the topology's pairing */
	const char *mem; /* borrowed (argv, a literal or a decoded message): host, cuda, hostdev */
	long gpu; /* -1 = local rank modulo GPUs (or the topology pairing) */
};

/* --np --timeout --topology-xml --bind: launch and placement of the ranks. */
struct bench_launch_cfg {
	long np;
	bool np_set;
	long timeout_s;
	const char *topo_xml; /* borrowed from argv; NULL = the live machine */
	const char *bind; /* borrowed (argv or a literal): auto, on, off */
	bool require_auth; /* --require-auth: no job key across hosts is an error */
};

/* --out and the run's identity. Rank 0's stamp (run id, start time, report directory) holds
 * for every rank of the job. */
struct rpt_expects;
struct ibc_csv_table;

struct bench_report_cfg {
	const char *out; /* borrowed from argv; NULL = the default directory */
	const char *baseline; /* --baseline DIR (borrowed): compare with it at the end; NULL */
	double tolerance;     /* --tolerance as a fraction (default 0.05) */
	const char *expect_busbw; /* --expect-busbw SIZE=GB/s,... (borrowed) or NULL */
	const char *expect_file;  /* --expect-file FILE (borrowed) or NULL */
	/* read once by bench__opts_validate (bench__opts_free releases them); rank 0 judges the
	 * run with them, nothing reads the files again */
	struct rpt_expects *expects;	 /* --expect-busbw and --expect-file, or NULL */
	struct ibc_csv_table *base;	 /* --baseline's results.csv, or NULL */
	char base_path[600];		 /* the file base was read from */
	char run_id[20];
	char started[32];
	char outdir[512];
};

struct bench_opts {
	bool sendrecv; /* which subcommand */
	bool help; /* --help was given (and printed): nothing else to do */
	struct bench_sweep_cfg sweep;
	struct bench_coll_cfg coll;
	struct bench_sr_cfg sr;
	struct bench_tp_cfg tp;
	struct bench_launch_cfg launch;
	struct bench_report_cfg report;
};

/* What bench__opts_validate loaded (thresholds, the baseline); o stays valid otherwise. */
void bench__opts_free(struct bench_opts *o);
/* A new run of any command: a run id, the UTC start time and the run directory's name
 * (r->out, else ibcoll-results/<time>-<run_id>); creates nothing (driver.c). */
void bench__stamp(struct bench_report_cfg *r);
/* Parse argv (argv[0] is the subcommand) into o, defaults first. 0 (o->help set when --help
 * printed the usage), or -EINVAL after a usage message on stderr naming the flag. */
int bench__opts_parse(int argc, char **argv, bool sendrecv, struct bench_opts *o);
/* Checks across flags, and the transport (looked up, a plugin loaded), after parsing. 0,
 * -EINVAL (usage error, message printed) or another -errno (the plugin named by a path
 * cannot be loaded: an environment failure, message printed). */
int bench__opts_validate(struct bench_opts *o);
/* Print "ibcoll CMD: <message>" and the --help hint to stderr; returns -EINVAL. */
int bench__usage_err(const struct bench_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void bench__usage(const struct bench_opts *o, FILE *f);

/* The sizes of the sweep, smallest first, into sizes[BENCH_MAX_SIZES]; returns how many. */
int bench__sweep_sizes(const struct bench_sweep_cfg *s, uint64_t *sizes);

#endif
