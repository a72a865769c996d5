/* SPDX-License-Identifier: MIT */
/*
 * machine.c - summary.json, junit.xml and ibcoll.prom from a run's rows and findings
 * (machine.h).
 */
#include "machine.h"
#include "compare.h"
#include "ibc_common.h"
#include "schema.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a growing text buffer ---- */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0 || b->oom) {
			b->oom = true;
			return;
		}
		if (b->s && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		if (b->len + (size_t)n + 1 > b->cap) {
			size_t cap = IBC_MAX(b->cap * 2, b->len + (size_t)n + 4096);
			char *s = realloc(b->s, cap);

			if (!s) {
				b->oom = true;
				return;
			}
			b->s = s;
			b->cap = cap;
		}
	}
}

static char *sb_done(struct sbuf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	return b->s ? b->s : strdup("");
}

/* ---- summary.json ---- */

/* Columns that hold text even when they look like numbers. */
static bool text_col(const char *name)
{
	static const char *const names[] = { "run_id", "started_utc", "tool_version",
					     "wrong_ranks", "slowest_host" };
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(names); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

static cJSON *json_rows(const struct ibc_csv_table *t)
{
	cJSON *arr = cJSON_CreateArray();
	int r, c;

	for (r = 0; arr && t && r < t->nrows; r++) {
		cJSON *o = cJSON_CreateObject();

		for (c = 0; o && c < t->ncols; c++) {
			const char *v = t->rows[r][c];
			double d;

			if (!v[0] && !text_col(t->header[c]))
				cJSON_AddNullToObject(o, t->header[c]);
			else if (!text_col(t->header[c]) && !ibc_parse_double(v, &d))
				cJSON_AddNumberToObject(o, t->header[c], d);
			else
				cJSON_AddStringToObject(o, t->header[c], v);
		}
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static void json_num_or_null(cJSON *o, const char *k, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

static cJSON *json_findings(const struct rpt_findings *f)
{
	cJSON *arr = cJSON_CreateArray();
	int i;

	for (i = 0; arr && i < f->n; i++) {
		const struct rpt_finding *x = &f->v[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "check", x->check);
		cJSON_AddStringToObject(o, "kind", x->kind);
		cJSON_AddStringToObject(o, "host", x->host);
		cJSON_AddStringToObject(o, "nic", x->nic);
		cJSON_AddStringToObject(o, "peer_host", x->peer_host);
		cJSON_AddStringToObject(o, "peer_nic", x->peer_nic);
		json_num_or_null(o, "measured", x->measured);
		json_num_or_null(o, "expected", x->expected);
		cJSON_AddStringToObject(o, "unit", x->unit);
		cJSON_AddStringToObject(o, "evidence", x->evidence);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* {"total": n, "failed": m, "by_check": {"threshold": {"total", "failed"}, ...}} */
static cJSON *json_checks(const struct rpt_cases *cases)
{
	cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
	int i, failed = 0;

	for (i = 0; cases && i < cases->n; i++) {
		cJSON *c = cJSON_GetObjectItemCaseSensitive(by, cases->v[i].check);

		if (!c) {
			c = cJSON_AddObjectToObject(by, cases->v[i].check);
			cJSON_AddNumberToObject(c, "total", 0);
			cJSON_AddNumberToObject(c, "failed", 0);
		}
		cJSON_SetNumberValue(cJSON_GetObjectItem(c, "total"),
				     cJSON_GetObjectItem(c, "total")->valuedouble + 1);
		if (cases->v[i].failed) {
			failed++;
			cJSON_SetNumberValue(cJSON_GetObjectItem(c, "failed"),
					     cJSON_GetObjectItem(c, "failed")->valuedouble + 1);
		}
	}
	cJSON_AddNumberToObject(o, "total", cases ? cases->n : 0);
	cJSON_AddNumberToObject(o, "failed", failed);
	cJSON_AddItemToObject(o, "by_check", by);
	return o;
}

char *rpt_summary_json(const struct rpt_run_info *info, const struct ibc_csv_table *rows,
		       const struct rpt_findings *f, const struct rpt_cases *cases)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "schema", RPT_SCHEMA_VERSION);
	cJSON_AddStringToObject(o, "tool", "ibcoll");
	cJSON_AddStringToObject(o, "tool_version", IBC_VERSION);
	cJSON_AddStringToObject(o, "command", info->command);
	cJSON_AddStringToObject(o, "run_id", info->run_id);
	cJSON_AddStringToObject(o, "started_utc", info->started_utc ? info->started_utc : "");
	cJSON_AddNumberToObject(o, "exit_code", info->exit_code);
	cJSON_AddBoolToObject(o, "passed", info->exit_code == 0);
	cJSON_AddItemToObject(o, "checks", json_checks(cases));
	cJSON_AddItemToObject(o, "findings", json_findings(f));
	cJSON_AddItemToObject(o, "rows", json_rows(rows));
	s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}

/* ---- junit.xml ---- */

static void xml_text(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '&')
			sb_printf(b, "&amp;");
		else if (c == '<')
			sb_printf(b, "&lt;");
		else if (c == '>')
			sb_printf(b, "&gt;");
		else if (c == '"')
			sb_printf(b, "&quot;");
		else if (c == '\'')
			sb_printf(b, "&apos;");
		else if (c < 0x20 && c != '\t' && c != '\n')
			sb_printf(b, " "); /* not allowed in XML 1.0 */
		else
			sb_printf(b, "%c", c);
	}
}

static void junit_suite(struct sbuf *b, const struct rpt_run_info *info,
			const struct rpt_cases *cases, const char *check, const char *stamp)
{
	int i, n = 0, failed = 0;

	for (i = 0; i < cases->n; i++) {
		n += !strcmp(cases->v[i].check, check);
		failed += !strcmp(cases->v[i].check, check) && cases->v[i].failed;
	}
	sb_printf(b, "  <testsuite name=\"ibcoll.%s.", info->command);
	xml_text(b, check);
	sb_printf(b, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"0\" time=\"0\"%s%s%s>\n",
		  n, failed, stamp[0] ? " timestamp=\"" : "", stamp, stamp[0] ? "\"" : "");
	for (i = 0; i < cases->n; i++) {
		const struct rpt_case *c = &cases->v[i];

		if (strcmp(c->check, check))
			continue;
		sb_printf(b, "    <testcase classname=\"ibcoll.%s.", info->command);
		xml_text(b, check);
		sb_printf(b, "\" name=\"");
		xml_text(b, c->name);
		sb_printf(b, "\" time=\"0\"%s\n", c->failed ? ">" : "/>");
		if (!c->failed)
			continue;
		sb_printf(b, "      <failure type=\"");
		xml_text(b, check);
		sb_printf(b, "\" message=\"");
		xml_text(b, c->message);
		sb_printf(b, "\">");
		xml_text(b, c->message);
		sb_printf(b, "</failure>\n    </testcase>\n");
	}
	sb_printf(b, "  </testsuite>\n");
}

char *rpt_junit_xml(const struct rpt_run_info *info, const struct rpt_cases *cases)
{
	static const struct rpt_cases none;
	struct sbuf b = { 0 };
	char stamp[32] = "";
	int i, j, failed = 0;

	if (!cases)
		cases = &none;
	/* xs:dateTime without the zone, as the JUnit schema has it */
	if (info->started_utc && strlen(info->started_utc) == 20)
		snprintf(stamp, sizeof(stamp), "%.19s", info->started_utc);
	for (i = 0; i < cases->n; i++)
		failed += cases->v[i].failed;
	sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ibcoll %s %s\" "
		      "tests=\"%d\" failures=\"%d\" errors=\"0\" time=\"0\">\n",
		  info->command, info->run_id, cases->n, failed);
	for (i = 0; i < cases->n; i++) { /* one suite per check, in order of first appearance */
		for (j = 0; j < i && strcmp(cases->v[j].check, cases->v[i].check); j++)
			;
		if (j == i)
			junit_suite(&b, info, cases, cases->v[i].check, stamp);
	}
	sb_printf(&b, "</testsuites>\n");
	return sb_done(&b);
}

/* ---- ibcoll.prom ---- */

static void prom_label(struct sbuf *b, const char *name, const char *v, bool first)
{
	sb_printf(b, "%s%s=\"", first ? "" : ",", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_printf(b, "\\%c", *v);
		else if (*v == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *v);
	}
	sb_printf(b, "\"");
}

struct prom_metric {
	const char *name, *help, *col;
	double scale; /* the column's unit to the metric's (us -> s) */
};

static void prom_rows(struct sbuf *b, const struct rpt_run_info *info,
		      const struct ibc_csv_table *t, const struct prom_metric *m)
{
	int id[IBC_ARRAY_SIZE(rpt_compare_identity)], col = ibc_csv_col(t, m->col);
	int st = ibc_csv_col(t, "status"), r;
	size_t i;

	for (i = 0; i < IBC_ARRAY_SIZE(id); i++)
		id[i] = ibc_csv_col(t, rpt_compare_identity[i]);
	sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", m->name, m->help, m->name);
	for (r = 0; r < t->nrows; r++) {
		double v = 0;

		if (col >= 0 && ibc_parse_double(t->rows[r][col], &v))
			continue; /* not measured: no sample */
		if (col < 0)
			v = st >= 0 && !strcmp(t->rows[r][st], "ok");
		sb_printf(b, "%s{", m->name);
		prom_label(b, "command", info->command, true);
		for (i = 0; i < IBC_ARRAY_SIZE(id); i++)
			if (id[i] >= 0)
				prom_label(b, rpt_compare_identity[i], t->rows[r][id[i]], false);
		sb_printf(b, "} %.9g\n", v * m->scale);
	}
}

static void prom_run(struct sbuf *b, const struct rpt_run_info *info, const struct rpt_findings *f)
{
	static const char *const checks[] = { "correctness", "run", "threshold", "baseline" };
	struct tm tm;
	size_t i;
	int k, n;

	sb_printf(b, "# HELP ibcoll_findings Problems the run's checks found, per check.\n"
		     "# TYPE ibcoll_findings gauge\n");
	for (i = 0; i < IBC_ARRAY_SIZE(checks); i++) {
		for (k = 0, n = 0; k < f->n; k++)
			n += !strcmp(f->v[k].check, checks[i]);
		sb_printf(b, "ibcoll_findings{");
		prom_label(b, "command", info->command, true);
		prom_label(b, "check", checks[i], false);
		sb_printf(b, "} %d\n", n);
	}
	sb_printf(b, "# HELP ibcoll_run_exit_code The run's exit code (0 passed, 1 a check failed).\n"
		     "# TYPE ibcoll_run_exit_code gauge\nibcoll_run_exit_code{");
	prom_label(b, "command", info->command, true);
	sb_printf(b, "} %d\n# HELP ibcoll_run_info The run: id and ibcoll version.\n"
		     "# TYPE ibcoll_run_info gauge\nibcoll_run_info{",
		  info->exit_code);
	prom_label(b, "command", info->command, true);
	prom_label(b, "run_id", info->run_id, false);
	prom_label(b, "version", IBC_VERSION, false);
	sb_printf(b, "} 1\n");
	memset(&tm, 0, sizeof(tm));
	if (info->started_utc && strptime(info->started_utc, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		sb_printf(b, "# HELP ibcoll_run_start_time_seconds When the run started (Unix time).\n"
			     "# TYPE ibcoll_run_start_time_seconds gauge\n"
			     "ibcoll_run_start_time_seconds{");
		prom_label(b, "command", info->command, true);
		sb_printf(b, "} %lld\n", (long long)timegm(&tm));
	}
}

char *rpt_prometheus(const struct rpt_run_info *info, const struct ibc_csv_table *rows,
		     const struct rpt_findings *f)
{
	static const struct prom_metric metrics[] = {
		{ "ibcoll_busbw_gbps", "Bus bandwidth of a results row (GB/s, 1e9 bytes/s).",
		  "busbw_GBps", 1 },
		{ "ibcoll_algbw_gbps", "Algorithm bandwidth of a results row (GB/s).", "algbw_GBps",
		  1 },
		{ "ibcoll_time_p50_seconds", "Median time of one operation (slowest rank).",
		  "time_p50_us", 1e-6 },
		{ "ibcoll_time_p99_seconds", "99th percentile time of one operation.", "time_p99_us",
		  1e-6 },
		{ "ibcoll_row_ok", "1 when the row's status is ok (bit exact, in time).", "", 1 },
	};
	struct sbuf b = { 0 };
	size_t i;

	for (i = 0; rows && rows->nrows && i < IBC_ARRAY_SIZE(metrics); i++)
		prom_rows(&b, info, rows, &metrics[i]);
	prom_run(&b, info, f);
	return sb_done(&b);
}

/* ---- the three files ---- */

int rpt_machine_write(const char *dir, const struct rpt_run_info *info,
		      const struct ibc_csv_table *rows, const struct rpt_findings *f,
		      const struct rpt_cases *cases, char *err, size_t errlen)
{
	static const char *const names[] = { "summary.json", "junit.xml", "ibcoll.prom" };
	char path[600];
	int i, rc = 0;

	for (i = 0; i < 3 && !rc; i++) {
		char *s = i == 0   ? rpt_summary_json(info, rows, f, cases)
			  : i == 1 ? rpt_junit_xml(info, cases)
				   : rpt_prometheus(info, rows, f);

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = s ? ibc_file_create(path, s, strlen(s)) : -ENOMEM;
		if (rc)
			snprintf(err, errlen, "cannot write %s: %s", path,
				 rc == -ENOMEM ? "out of memory" : ibc_err_get());
		if (i == 0)
			cJSON_free(s);
		else
			free(s);
	}
	return rc;
}
