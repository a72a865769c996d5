/* SPDX-License-Identifier: MIT */
/*
 * test_csv.c - common/ibc_csv.{h,c}: RFC 4180 round trip, exclusive create, whole-row commits,
 * parse errors with line and column.
 */
#include "tap.h"

#include "ibc_csv.h"
#include "ibc_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	if (len)
		*len = (size_t)n;
	fclose(f);
	return buf;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Parse text; return the error string (static) or "" when it parsed. */
static const char *parse_err(const char *text, int *rc_out)
{
	static char err[512];
	struct ibc_csv_table *t = NULL;
	int rc = ibc_csv_parse("in.csv", text, strlen(text), &t, err, sizeof(err));

	if (rc_out)
		*rc_out = rc;
	if (rc == 0) {
		ibc_csv_free(t);
		err[0] = '\0';
	} else {
		ok(t == NULL, "failed parse leaves no table");
	}
	return err;
}

static const char *const nasty[] = {
    "plain",
    "with,comma",
    "with \"quotes\" inside",
    "\"",
    "line1\nline2",
    "crlf\r\ninside",
    "lone\rcr",
    "",
    "  spaces kept  ",
    "utf8 \xC3\xA9\xE2\x82\xAC",
    ",\",\n,",
};
#define NNASTY ((int)IBC_ARRAY_SIZE(nasty))

static void test_round_trip(void)
{
	static const char *const cols[] = {"a", "b,c", "d\"e"};
	struct ibc_csv_writer *w = NULL;
	struct ibc_csv_table *t = NULL;
	char path[512], err[512];
	int rc, i, good = 1;

	path_in(path, sizeof(path), "round.csv");
	rc = ibc_csv_create(path, cols, 3, &w);
	is_int(rc, 0, "create round.csv");
	if (rc)
		return;
	/* every nasty value in every column position */
	for (i = 0; i < NNASTY; i++) {
		const char *row[3] = {nasty[i], nasty[(i + 1) % NNASTY], nasty[(i + 2) % NNASTY]};

		if (ibc_csv_append(w, row))
			good = 0;
	}
	{
		const char *row[3] = {NULL, "x", NULL};

		if (ibc_csv_append(w, row))
			good = 0;
	}
	ok(good, "append %d rows with nasty fields", NNASTY + 1);
	ibc_csv_close(w);

	rc = ibc_csv_read(path, &t, err, sizeof(err));
	is_int(rc, 0, "read back round.csv (%s)", err);
	if (rc)
		return;
	is_int(t->ncols, 3, "3 columns");
	is_int(t->nrows, NNASTY + 1, "all rows back");
	is_str(t->header[1], "b,c", "header with comma");
	is_str(t->header[2], "d\"e", "header with quote");
	is_int(ibc_csv_col(t, "d\"e"), 2, "ibc_csv_col finds quoted name");
	is_int(ibc_csv_col(t, "nope"), -1, "ibc_csv_col unknown = -1");
	good = t->nrows == NNASTY + 1;
	for (i = 0; good && i < NNASTY; i++) {
		good = strcmp(t->rows[i][0], nasty[i]) == 0 &&
		       strcmp(t->rows[i][1], nasty[(i + 1) % NNASTY]) == 0 &&
		       strcmp(t->rows[i][2], nasty[(i + 2) % NNASTY]) == 0;
		if (!good)
			diag("row %d differs: '%s'", i, t->rows[i][0]);
	}
	ok(good, "every nasty field survives byte for byte");
	ok(good && strcmp(t->rows[NNASTY][0], "") == 0 && strcmp(t->rows[NNASTY][2], "") == 0,
	   "NULL values are written as empty fields");
	is_int(t->row_line[0], 2, "first data row is on line 2");
	/* rows 2, 3, 4 hold 1, 2, 3 line breaks (LF, CRLF, lone CR each count one) */
	is_int(t->row_line[5], 2 + 5 + 6, "row_line counts embedded line breaks");
	ibc_csv_free(t);
}

static void test_exclusive(void)
{
	static const char *const cols[] = {"x"};
	static const char keep[] = "do not touch\n";
	struct ibc_csv_writer *w = (struct ibc_csv_writer *)0x1;
	char path[512], *after;
	size_t len = 0;
	FILE *f;
	int rc;

	path_in(path, sizeof(path), "existing.csv");
	f = fopen(path, "w");
	fputs(keep, f);
	fclose(f);
	rc = ibc_csv_create(path, cols, 1, &w);
	is_int(rc, -EEXIST, "create over an existing file fails with -EEXIST");
	ok(w == NULL, "and returns no writer");
	ok(strstr(ibc_err_get(), "exists") != NULL, "message says the file exists: %s",
	   ibc_err_get());
	after = slurp(path, &len);
	ok(after && len == strlen(keep) && memcmp(after, keep, len) == 0,
	   "existing file is untouched");
	free(after);
}

/* N processes race to create the same file: exactly one may win. */
static void test_exclusive_race(void)
{
	static const char *const cols[] = {"who"};
	enum { N = 8 };
	char path[512];
	pid_t pids[N];
	int i, wins = 0, status;

	path_in(path, sizeof(path), "race.csv");
	for (i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct ibc_csv_writer *w;
			char me[16];
			const char *row[1] = {me};
			int rc = ibc_csv_create(path, cols, 1, &w);

			snprintf(me, sizeof(me), "%d", i);
			if (rc == 0)
				rc = ibc_csv_append(w, row);
			ibc_csv_close(w);
			_exit(rc == 0 ? 0 : rc == -EEXIST ? 1 : 2);
		}
	}
	for (i = 0; i < N; i++) {
		waitpid(pids[i], &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			wins++;
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
			wins += 100; /* an unexpected failure */
	}
	is_int(wins, 1, "%d racing creators: exactly one wins, the rest get -EEXIST", N);
	{
		struct ibc_csv_table *t = NULL;
		char err[512];
		int rc = ibc_csv_read(path, &t, err, sizeof(err));

		ok(rc == 0 && t->nrows == 1, "race winner's file holds its header and one row");
		ibc_csv_free(t);
	}
}

static void test_commits(void)
{
	static const char *const cols[] = {"n", "text"};
	struct ibc_csv_writer *w = NULL;
	char path[600], sub[512], err[512];
	int rc, i, good = 1;

	path_in(sub, sizeof(sub), "commits");
	mkdir(sub, 0755);
	snprintf(path, sizeof(path), "%s/c.csv", sub);
	rc = ibc_csv_create(path, cols, 2, &w);
	is_int(rc, 0, "create commits/c.csv");
	if (rc)
		return;
	{
		struct ibc_csv_table *t = NULL;

		rc = ibc_csv_read(path, &t, err, sizeof(err));
		ok(rc == 0 && t->nrows == 0 && t->ncols == 2, "after create: header only");
		ibc_csv_free(t);
	}
	for (i = 0; i < 20; i++) {
		struct ibc_csv_table *t = NULL;
		char n[16];
		const char *row[2] = {n, "multi\nline, \"quoted\""};

		snprintf(n, sizeof(n), "%d", i);
		if (ibc_csv_append(w, row)) {
			good = 0;
			break;
		}
		rc = ibc_csv_read(path, &t, err, sizeof(err));
		if (rc || t->nrows != i + 1 || strcmp(t->rows[i][0], n) != 0) {
			diag("after append %d: rc %d (%s) rows %d", i, rc, err, t ? t->nrows : -1);
			good = 0;
		}
		ibc_csv_free(t);
		if (count_entries(sub) != 1) {
			diag("after append %d: %d entries in the directory", i, count_entries(sub));
			good = 0;
		}
	}
	ok(good, "after each append the file parses with exactly the rows so far, no temp left");
	{
		const char *row[2] = {"a", "b"};

		unlink(path);
		rmdir(sub);
		rc = ibc_csv_append(w, row);
		ok(rc < 0, "append into a vanished directory fails (%d: %s)", rc, ibc_err_get());
	}
	ibc_csv_close(w);
}

/* Rows on disk in path, or -1 when it does not parse. */
static int rows_in(const char *path)
{
	struct ibc_csv_table *t = NULL;
	char err[512];
	int n;

	if (ibc_csv_read(path, &t, err, sizeof(err)))
		return -1;
	n = t->nrows;
	ibc_csv_free(t);
	return n;
}

/* ibc_csv_add keeps rows in memory; ibc_csv_commit writes them all at once. */
static void test_add_commit(void)
{
	static const char *const cols[] = {"n", "text"};
	const char *r1[2] = {"1", "one"}, *r2[2] = {"2", "two, quoted"}, *r3[2] = {"3", NULL};
	struct ibc_csv_writer *w = NULL;
	char path[600];
	int rc;

	path_in(path, sizeof(path), "batch.csv");
	rc = ibc_csv_create(path, cols, 2, &w);
	is_int(rc, 0, "create batch.csv");
	if (rc)
		return;
	rc = ibc_csv_add(w, r1);
	rc = rc ? rc : ibc_csv_add(w, r2);
	ok(rc == 0 && rows_in(path) == 0, "two rows added: nothing written yet");
	ok(ibc_csv_commit(w) == 0 && rows_in(path) == 2, "commit: both rows on disk");
	ok(ibc_csv_commit(w) == 0 && rows_in(path) == 2, "commit with nothing pending: no change");
	ok(ibc_csv_add(w, NULL) == -EINVAL, "add without values: -EINVAL");
	ok(ibc_csv_add(w, r3) == 0 && ibc_csv_append(w, r1) == 0 && rows_in(path) == 4,
	   "append commits the rows added before it too");
	ok(ibc_csv_add(w, r2) == 0, "a row added and never committed ...");
	ibc_csv_close(w);
	is_int(rows_in(path), 4, "... is not in the file after close");
}

static void test_reader_ok(void)
{
	struct ibc_csv_table *t = NULL;
	char err[512];
	static const char crlf[] = "\xEF\xBB\xBF"
				   "a,b,c\r\n1,\"x\r\ny\",\r\n\"\",\"\"\"\",3";
	int rc;

	rc = ibc_csv_parse("crlf.csv", crlf, sizeof(crlf) - 1, &t, err, sizeof(err));
	is_int(rc, 0, "CRLF + BOM + no trailing newline parses (%s)", err);
	if (rc)
		return;
	is_str(t->header[0], "a", "BOM stripped from the first column name");
	is_int(t->nrows, 2, "two rows");
	is_str(t->rows[0][1], "x\r\ny", "quoted CRLF kept inside a field");
	is_str(t->rows[0][2], "", "empty last field before CRLF");
	is_str(t->rows[1][1], "\"", "doubled quote");
	is_str(t->rows[1][2], "3", "last field without newline");
	is_int(t->row_line[1], 4, "row after a quoted line break is on line 4");
	ibc_csv_free(t);

	rc = ibc_csv_parse("h.csv", "a,b\n", 4, &t, err, sizeof(err));
	ok(rc == 0 && t->nrows == 0 && t->ncols == 2, "header only is a valid empty table");
	ibc_csv_free(t);
	rc = ibc_csv_parse("h.csv", "a,b\n1,", 6, &t, err, sizeof(err));
	ok(rc == 0 && t->nrows == 1 && strcmp(t->rows[0][1], "") == 0,
	   "trailing comma at EOF is an empty last field");
	ibc_csv_free(t);
}

/* Files that start with an empty field (nothing in the field buffer yet: the copy of it used
 * to read from a NULL pointer, which UBSan reports), and where each field starts. */
static void test_reader_edges(void)
{
	static const char cols[] = "a,b,c\n1,\"x,y\",\xC3\xA9z\n,,3\n";
	struct ibc_csv_table *t = NULL;
	char err[512];
	int rc;

	rc = ibc_csv_parse("e.csv", ",a\n1,2\n", 7, &t, err, sizeof(err));
	ok(rc == 0 && t->ncols == 2 && !strcmp(t->header[0], "") && !strcmp(t->rows[0][0], "1"),
	   "a header whose first name is empty (pandas' index column) parses (%s)", err);
	ibc_csv_free(t);
	rc = ibc_csv_parse("e.csv", ",\n,\n", 4, &t, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "e.csv:1:1: duplicate column ''"),
	   "a header of two empty names: duplicate names (%s)", err);
	rc = ibc_csv_parse("e.csv", "\"\"\n", 3, &t, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "e.csv:1:1: empty header row"),
	   "an empty quoted header is an empty header row (%s)", err);
	rc = ibc_csv_parse("e.csv", "\n", 1, &t, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "empty header row"), "a lone newline (%s)", err);
	rc = ibc_csv_parse("e.csv", "\"", 1, &t, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "e.csv:1:1: unterminated"), "a lone quote (%s)", err);
	rc = ibc_csv_parse("e.csv", "a,b\n1,2", 7, &t, err, sizeof(err));
	ok(rc == 0 && t->nrows == 1 && !strcmp(t->rows[0][1], "2"),
	   "no newline at the end (%s)", err);
	ibc_csv_free(t);

	rc = ibc_csv_parse("c.csv", cols, sizeof(cols) - 1, &t, err, sizeof(err));
	ok(rc == 0 && ibc_csv_field_col(t, 0, 0) == 1 && ibc_csv_field_col(t, 0, 1) == 3 &&
	       ibc_csv_field_col(t, 0, 2) == 9 && ibc_csv_field_col(t, 1, 2) == 3,
	   "field start columns 1, 3, 9 and 3 (%s)", err);
	ok(rc == 0 && ibc_csv_field_col(t, 5, 0) == 1, "a row out of range gives column 1");
	ibc_csv_free(t);
}

static void test_reader_errors(void)
{
	char big[4096], *p = big;
	const char *e;
	int rc, i, j;

	e = parse_err("", &rc);
	is_int(rc, -EINVAL, "empty file is an error");
	is_str(e, "in.csv:1:1: empty file (expected a header row)", "empty file message");
	e = parse_err("\xEF\xBB\xBF", &rc);
	ok(rc == -EINVAL && strstr(e, "empty file"), "BOM only is an empty file");

	e = parse_err("a,b\n1,\"open\n2,3\n", &rc);
	is_str(e, "in.csv:2:3: unterminated quoted field (the quote opened here is never closed)",
	       "unterminated quote names where it opened");
	e = parse_err("a,b\n1,2\nx,ab\"c\n", &rc);
	ok(rc == -EINVAL && strncmp(e, "in.csv:3:5: stray quote", 23) == 0,
	   "stray quote in unquoted field: line 3 col 5 (%s)", e);
	e = parse_err("a,b\n\"q\"x,2\n", &rc);
	ok(strncmp(e, "in.csv:2:4: unexpected 'x' after the closing quote", 50) == 0,
	   "text after a closing quote: line 2 col 4 (%s)", e);
	e = parse_err("a,b\n1,2\n1,2,3\n", &rc);
	is_str(e, "in.csv:3:6: line 3: 3 fields, header has 2", "too many fields");
	e = parse_err("a,b,c\n1,2,3\n\n", &rc);
	ok(strncmp(e, "in.csv:3:1: empty line", 22) == 0, "blank line is named (%s)", e);
	e = parse_err("a,a\n", &rc);
	ok(rc == -EINVAL && strstr(e, "duplicate column 'a'"), "duplicate header name (%s)", e);
	e = parse_err("a,b\n1,\xC3\xA9\"\n", &rc);
	ok(strncmp(e, "in.csv:2:4:", 11) == 0, "column counts UTF-8 characters (%s)", e);

	/* the example of the brief: a 31-column header, a 30-field row on line 7 */
	for (j = 0; j < 31; j++)
		p += sprintf(p, "%sc%d", j ? "," : "", j);
	*p++ = '\n';
	for (i = 2; i <= 7; i++) {
		for (j = 0; j < (i == 7 ? 30 : 31); j++)
			p += sprintf(p, "%s%d", j ? "," : "", j);
		*p++ = '\n';
	}
	*p = '\0';
	e = parse_err(big, &rc);
	ok(rc == -EINVAL && strstr(e, "in.csv:7:") == e &&
	       strstr(e, "line 7: 30 fields, header has 31"),
	   "wrong field count names line 7, 30 vs 31 (%s)", e);
	{
		struct ibc_csv_table *t = NULL;
		char err[512];

		rc = ibc_csv_read("/nonexistent/x.csv", &t, err, sizeof(err));
		ok(rc == -ENOENT && strstr(err, "/nonexistent/x.csv"), "missing file: %s", err);
	}
}

static void test_quote(void)
{
	char out[32];

	ok(ibc_csv_quote("abc", out, sizeof(out)) == 0 && strcmp(out, "abc") == 0, "plain");
	ok(ibc_csv_quote("a\"b", out, sizeof(out)) == 0 && strcmp(out, "\"a\"\"b\"") == 0,
	   "quote doubled and field quoted");
	ok(ibc_csv_quote("a\nb", out, sizeof(out)) == 0 && strcmp(out, "\"a\nb\"") == 0,
	   "newline quoted");
	ok(ibc_csv_quote(NULL, out, sizeof(out)) == 0 && out[0] == '\0', "NULL is empty");
	is_int(ibc_csv_quote("a,b", out, 5), -ENOSPC, "too small a buffer: -ENOSPC");
	ok(ibc_csv_quote("a,b", out, 6) == 0 && strcmp(out, "\"a,b\"") == 0, "exact fit");
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ibcoll-test-csv-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		return tap_skip_all("cannot create a temporary directory");
	test_round_trip();
	test_exclusive();
	test_exclusive_race();
	test_commits();
	test_add_commit();
	test_reader_ok();
	test_reader_edges();
	test_reader_errors();
	test_quote();
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			diag("could not remove %s", tmpdir);
	}
	return tap_done();
}
