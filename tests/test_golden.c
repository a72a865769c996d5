/* SPDX-License-Identifier: MIT */
/*
 * test_golden.c - behaviour unchanged across refactors: fixed commands are run and everything
 * in their output that does not depend on timing or on the machine is compared with what the
 * binary printed when the fixture was made (tests/data/golden/NAME.txt).
 *
 * Compared: the exit code; the stdout table's size, count, type, redop, algo and #wrong
 * columns; every results.csv column except run_id, started_utc, the times, the bandwidths,
 * slowest_rank and slowest_host; every hosts.csv column except run_id, host and cpus; the
 * first line of stderr for runs that must fail.
 *
 * IBCOLL_GOLDEN_WRITE=1 writes the fixtures instead of comparing (only when the binary's
 * behaviour is meant to change; say why in the commit).
 */
#include "ibc_csv.h"
#include "runcmd.h"
#include "tap.h"

#include <stdio.h>
#include <sys/stat.h>

struct golden_case {
	const char *name;
	int full; /* compare all of stdout (with @DATA for the fixture directory) */
	const char *args[40]; /* after the binary; "@OUT" is replaced by the report directory */
};

static const struct golden_case cases[] = {
	{ "topo-dgx-bad", 1,
	  { "topo", "--topology-xml", "@DATA/dgx-h100.xml", "--sysfs-root", "@DATA/sysfs-dgx-bad",
	    "--np", "8", "--csv", "@OUT/topo.csv" } },
	{ "allreduce-shm", 0,
	  { "allreduce", "--np", "2", "-b", "8", "-e", "64K", "-f", "8", "-d", "float,int32", "-o",
	    "sum,max", "--algo", "ring,tree,rd", "-n", "3", "-w", "1", "--out", "@OUT" } },
	{ "allreduce-tcp", 0,
	  { "allreduce", "--np", "3", "--transport", "tcp", "-b", "1K", "-e", "1M", "-f", "32", "-d",
	    "half,uint8", "-o", "avg,min", "--algo", "ring,rhd", "--placement", "in", "-n", "2", "-w",
	    "1", "--out", "@OUT" } },
	{ "sendrecv", 0, { "sendrecv", "--np", "2", "-b", "8", "-e", "4K", "-f", "8", "-n", "3", "-w",
			"1", "--out", "@OUT" } },
	{ "bad-algo", 0, { "allreduce", "--algo", "ring,bogus", "--out", "@OUT" } },
	{ "bad-size", 0, { "allreduce", "-b", "1M", "-e", "1K", "--out", "@OUT" } },
	{ "bad-dtype", 0, { "allreduce", "-d", "complex64", "--out", "@OUT" } },
	{ "bad-flag", 0, { "allreduce", "--frobnicate", "--out", "@OUT" } },
};

static const char *skip_results[] = { "run_id",	     "started_utc", "time_us",	   "time_min_us",
				      "time_p50_us", "time_p99_us", "time_max_us", "algbw_GBps",
				      "busbw_GBps",  "slowest_rank", "slowest_host", NULL };
static const char *skip_hosts[] = { "run_id", "host", "cpus", NULL };

static int listed(const char *name, const char **list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return 1;
	return 0;
}

static void append(char **buf, size_t *len, const char *s)
{
	size_t n = strlen(s);

	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

static void canon_csv(const char *path, const char **skip, char **buf, size_t *len)
{
	struct ibc_csv_table *t = NULL;
	char err[256];
	int r, c;

	append(buf, len, "== ");
	append(buf, len, strrchr(path, '/') + 1);
	append(buf, len, "\n");
	if (ibc_csv_read(path, &t, err, sizeof(err))) {
		append(buf, len, "(absent)\n");
		return;
	}
	for (r = -1; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			if (listed(t->header[c], skip))
				continue;
			append(buf, len, r < 0 ? t->header[c] : t->rows[r][c]);
			append(buf, len, ",");
		}
		append(buf, len, "\n");
	}
	ibc_csv_free(t);
}

/* The table's data rows, every field without a decimal point: the times and bandwidths are
 * printed with one ("%.2f"), the sizes, counts, names and #wrong without. */
static void canon_table(const char *out, char **buf, size_t *len)
{
	const char *p = out;

	append(buf, len, "== stdout\n");
	while (*p) {
		const char *e = strchr(p, '\n');
		char line[1024], row[1024] = "", *tok, *save = NULL;

		if (!e)
			e = p + strlen(p);
		snprintf(line, sizeof(line), "%.*s", (int)(e - p), p);
		p = *e ? e + 1 : e;
		if (line[0] == '#')
			continue;
		for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
			if (strchr(tok, '.'))
				continue;
			strncat(row, tok, sizeof(row) - strlen(row) - 2);
			strcat(row, " ");
		}
		if (!row[0])
			continue;
		strcat(row, "\n");
		append(buf, len, row);
	}
}

/* All of stdout, the fixture directory written as @DATA. */
static void canon_full(const char *out, const char *data, char **buf, size_t *len)
{
	size_t dl = strlen(data);
	const char *p = out, *q;

	append(buf, len, "== stdout\n");
	while ((q = strstr(p, data))) {
		char *part = strndup(p, (size_t)(q - p));

		append(buf, len, part);
		append(buf, len, "@DATA");
		free(part);
		p = q + dl;
	}
	append(buf, len, p);
}

static char *subst(const char *arg, const char *outdir, const char *data)
{
	char *s;

	if (strncmp(arg, "@OUT", 4) == 0 && asprintf(&s, "%s%s", outdir, arg + 4) > 0)
		return s;
	if (strncmp(arg, "@DATA", 5) == 0 && asprintf(&s, "%s%s", data, arg + 5) > 0)
		return s;
	return strdup(arg);
}

static char *canon(const struct golden_case *gc, const char *bin, const char *outdir,
		   const char *data)
{
	char *argv[48], code[64], path[600];
	char *buf = NULL;
	size_t len = 0;
	struct cmd_result *r = malloc(sizeof(*r));
	int n = 0, i;

	argv[n++] = (char *)bin;
	for (i = 0; gc->args[i]; i++)
		argv[n++] = subst(gc->args[i], outdir, data);
	argv[n] = NULL;
	if (gc->full)
		mkdir(outdir, 0755);
	run_cmd(argv, NULL, 120, NULL, NULL, r);
	for (i = 1; i < n; i++)
		free(argv[i]);
	snprintf(code, sizeof(code), "exit %d\n", r->code);
	append(&buf, &len, code);
	if (r->code == 2) {
		char *nl = strchr(r->err, '\n');

		if (nl)
			nl[1] = '\0';
		append(&buf, &len, "== stderr\n");
		append(&buf, &len, r->err);
	} else if (gc->full) {
		canon_full(r->out, data, &buf, &len);
		snprintf(path, sizeof(path), "%s/topo.csv", outdir);
		canon_csv(path, skip_hosts + 3, &buf, &len);
	} else {
		canon_table(r->out, &buf, &len);
	}
	snprintf(path, sizeof(path), "%s/results.csv", outdir);
	canon_csv(path, skip_results, &buf, &len);
	snprintf(path, sizeof(path), "%s/hosts.csv", outdir);
	canon_csv(path, skip_hosts, &buf, &len);
	free(r);
	return buf;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n)
		s[0] = '\0';
	fclose(f);
	return s;
}

static void first_difference(const char *want, const char *got)
{
	int line = 1;

	while (*want && *want == *got) {
		if (*want == '\n')
			line++;
		want++;
		got++;
	}
	diag("first difference at line %d:\n#   expected: %.80s\n#   got:      %.80s", line, want,
	     got);
}

int main(void)
{
	const char *bin = getenv("IBCOLL_BIN"), *data = getenv("IBCOLL_TEST_DATA");
	int writing = getenv("IBCOLL_GOLDEN_WRITE") != NULL;
	char tmp[] = "/tmp/ibc-golden-XXXXXX";
	size_t i, ncases = sizeof(cases) / sizeof(cases[0]);

	if (!bin || !data)
		return tap_skip_all("IBCOLL_BIN/IBCOLL_TEST_DATA not set (run under ctest)");
	if (!mkdtemp(tmp))
		return tap_skip_all("mkdtemp failed");
	tap_plan((int)ncases);
	for (i = 0; i < ncases; i++) {
		char outdir[400], path[600];
		char *got, *want;

		snprintf(outdir, sizeof(outdir), "%s/%s", tmp, cases[i].name);
		snprintf(path, sizeof(path), "%s/golden/%s.txt", data, cases[i].name);
		got = canon(&cases[i], bin, outdir, data);
		if (writing) {
			FILE *f = fopen(path, "w");

			ok(f && fputs(got, f) >= 0 && fclose(f) == 0, "%s: wrote %s", cases[i].name,
			   path);
			free(got);
			continue;
		}
		want = slurp(path);
		ok(want && strcmp(want, got) == 0, "%s: output matches %s", cases[i].name, path);
		if (!want)
			diag("missing fixture %s (IBCOLL_GOLDEN_WRITE=1 makes it)", path);
		else if (strcmp(want, got))
			first_difference(want, got);
		free(want);
		free(got);
	}
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd))
			diag("could not remove %s", tmp);
	}
	return tap_done();
}
