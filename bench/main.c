/* SPDX-License-Identifier: MIT */
/*
 * main.c - `ibcoll <command> [options]`: dispatch to the subcommands. Only main exits.
 */
#include "bootstrap.h"
#include "cmd_check.h"
#include "cmd_compare.h"
#include "driver.h"
#include "ibc_common.h"
#include "project.h"
#include "topo.h"
#include "transport.h"

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "allreduce", ibc_allreduce_main, "time and check all-reduce (ring, tree) over a size sweep" },
	{ "sendrecv", ibc_sendrecv_main, "point-to-point bandwidth and latency between rank pairs" },
	{ "topo", topo_cmd_main, "GPU x NIC matrix, pairing, binding and topology warnings" },
	{ "project", project_cmd_main, "project all-reduce to clusters of up to 200,000 GPUs" },
	{ "check", bench_check_main, "preflight of this host: GPUs, NICs, ports, PCIe links, no traffic" },
	{ "compare", bench_compare_main, "a run against a baseline run: regressions, compare.csv" },
};

static void usage(FILE *f)
{
	const char *const *tp = ibc_tp_builtin_names();
	size_t i;

	fprintf(f, "usage: ibcoll <command> [options]\n\n"
		   "Collective-communication benchmarks for InfiniBand/RDMA GPU clusters.\n\n"
		   "commands:\n");
	for (i = 0; i < IBC_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'ibcoll <command> --help' describes each command's options.\n"
		   "transports built in:");
	for (; *tp; tp++)
		fprintf(f, " %s", *tp);
	fprintf(f, "; plugins: --transport /path/libibcoll-net-NAME.so\n\n"
		   "exit codes:\n"
		   "  0  success\n"
		   "  1  a check failed (wrong data, a threshold or baseline not met)\n"
		   "  2  usage error (bad flag or value; the message names the flag)\n"
		   "  3  environment or runtime failure (no device, connection refused, peer died,\n"
		   "     timeout)\n");
}

/* The version, and how a rank started here would meet its peers (bootstrap.h). */
static void print_version(void)
{
	struct ibc_boot_env env;

	printf("ibcoll %s\n", IBC_VERSION);
	printf("pmix: %s\n", ibc_boot_pmix_built() ? "built (libpmix.so.2 loaded at run time)"
						    : "not built");
	if (ibc_boot_env_detect(&env))
		printf("wire-up: none (%s)\n", ibc_err_get());
	else if (env.wireup == IBC_WIREUP_SINGLE)
		printf("wire-up: local (no launcher: --np forks the ranks)\n");
	else
		printf("wire-up: %s (launcher %s%s%s)\n", ibc_wireup_name(env.wireup), env.source,
		       env.root[0] ? ", root " : "", env.root);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return IBC_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		print_version();
		return 0;
	}
	for (i = 0; i < IBC_ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "ibcoll: unknown command '%s' (valid: allreduce, sendrecv, topo, project, check, compare; "
			"see 'ibcoll --help')\n",
		argv[1]);
	return IBC_EXIT_USAGE;
}
