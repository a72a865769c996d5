/* SPDX-License-Identifier: MIT */
/*
 * ibc_csv.c - the one RFC 4180 CSV writer (exclusive create, atomic whole-file commits) and reader
 * (whole file, strict field counts, errors as "path:line:col: what").
 *
 * Writer: the serialized text of every committed row is kept in memory. Each commit writes it
 * all to ".NAME.tmp.PID" in the target's directory, fsyncs it and renames it over the target;
 * creation links the first temp file to the target instead, which fails with EEXIST when the
 * target exists (even when another process created it a moment ago). Line endings are "\n".
 */
#include "ibc_csv.h"

#include "ibc_common.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ibc_csv_writer {
	char *path; /* owned: target file */
	char *tmp;  /* owned: ".NAME.tmp.PID" beside it */
	char *dir;  /* owned: directory holding both (for fsync) */
	int ncols;
	char *buf; /* owned: the committed text, then rows added but not yet committed */
	size_t len, cap;
	size_t committed; /* bytes of buf on disk */
};

/* ---------------------------------------------------------------- writer */

static int needs_quotes(const char *s)
{
	return s[strcspn(s, ",\"\r\n")] != '\0';
}

int ibc_csv_quote(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	const char *p;
	int q;

	if (!out || outlen == 0)
		return -EINVAL;
	if (!in)
		in = "";
	q = needs_quotes(in);
	if (q) {
		if (n + 1 >= outlen)
			return -ENOSPC;
		out[n++] = '"';
	}
	for (p = in; *p; p++) {
		size_t need = (q && *p == '"') ? 2 : 1;

		if (n + need >= outlen)
			return -ENOSPC;
		if (need == 2)
			out[n++] = '"';
		out[n++] = *p;
	}
	if (q) {
		if (n + 1 >= outlen)
			return -ENOSPC;
		out[n++] = '"';
	}
	out[n] = '\0';
	return 0;
}

static int buf_reserve(struct ibc_csv_writer *w, size_t extra)
{
	size_t cap = w->cap ? w->cap : 4096;
	char *nb;

	if (w->len + extra < w->cap)
		return 0;
	while (cap <= w->len + extra) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	nb = realloc(w->buf, cap);
	if (!nb)
		return -ENOMEM;
	w->buf = nb;
	w->cap = cap;
	return 0;
}

/* Append one serialized row (fields quoted as needed, "\n" terminated) to w->buf. */
static int buf_add_row(struct ibc_csv_writer *w, const char *const *values)
{
	int i, rc;

	for (i = 0; i < w->ncols; i++) {
		const char *v = values[i] ? values[i] : "";
		size_t vlen = strlen(v);
		int q = needs_quotes(v);
		const char *p;

		/* worst case: every byte a quote (doubled), two enclosing quotes, separator */
		if (vlen > (SIZE_MAX - 8) / 2)
			return -EOVERFLOW;
		rc = buf_reserve(w, 2 * vlen + 4);
		if (rc)
			return rc;
		if (i)
			w->buf[w->len++] = ',';
		if (!q) {
			memcpy(w->buf + w->len, v, vlen);
			w->len += vlen;
			continue;
		}
		w->buf[w->len++] = '"';
		for (p = v; *p; p++) {
			if (*p == '"')
				w->buf[w->len++] = '"';
			w->buf[w->len++] = *p;
		}
		w->buf[w->len++] = '"';
	}
	rc = buf_reserve(w, 1);
	if (rc)
		return rc;
	w->buf[w->len++] = '\n';
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	(void)fsync(fd); /* best effort: some file systems refuse fsync on directories */
	close(fd);
}

/* Write w->buf into the temp file and fsync it. The temp file is left in place. */
static int write_tmp(struct ibc_csv_writer *w)
{
	int fd, rc;

	(void)unlink(w->tmp); /* a stale one from a crashed process with our pid */
	fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		ibc_err_set("%s: cannot create temporary file: %s", w->tmp, strerror(-rc));
		return rc;
	}
	rc = write_all(fd, w->buf, w->len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc) {
		ibc_err_set("%s: write failed: %s", w->tmp, strerror(-rc));
		unlink(w->tmp);
	}
	return rc;
}

static int commit(struct ibc_csv_writer *w)
{
	int rc = write_tmp(w);

	if (rc)
		return rc;
	if (rename(w->tmp, w->path) < 0) {
		rc = -errno;
		ibc_err_set("%s: cannot rename %s over it: %s", w->path, w->tmp, strerror(-rc));
		unlink(w->tmp);
		return rc;
	}
	fsync_dir(w->dir);
	return 0;
}

/* First commit: the header must appear at path only if nothing is there. */
static int commit_exclusive(struct ibc_csv_writer *w)
{
	int rc = write_tmp(w), fd;

	if (rc)
		return rc;
	if (link(w->tmp, w->path) == 0) {
		unlink(w->tmp);
		fsync_dir(w->dir);
		return 0;
	}
	rc = -errno;
	unlink(w->tmp);
	if (rc == -EEXIST) {
		ibc_err_set("%s: file exists; ibcoll never overwrites results (choose another name "
			    "or remove it)",
			    w->path);
		return rc;
	}
	if (rc != -EPERM && rc != -EOPNOTSUPP && rc != -ENOSYS && rc != -EMLINK) {
		ibc_err_set("%s: cannot create: %s", w->path, strerror(-rc));
		return rc;
	}
	/* No hard links here (vfat, some FUSE mounts): O_EXCL create, then write the header. */
	fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		ibc_err_set("%s: cannot create%s: %s", w->path,
			    rc == -EEXIST ? " (file exists; ibcoll never overwrites results)" : "",
			    strerror(-rc));
		return rc;
	}
	rc = write_all(fd, w->buf, w->len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc)
		ibc_err_set("%s: write failed: %s", w->path, strerror(-rc));
	return rc;
}

static void writer_free(struct ibc_csv_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w->dir);
	free(w->tmp);
	free(w->path);
	free(w);
}

static int writer_paths(struct ibc_csv_writer *w, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	size_t n;

	if (!*base)
		return -EISDIR;
	w->path = strdup(path);
	w->dir = slash ? strndup(path, dlen ? dlen : 1) : strdup(".");
	n = dlen + strlen(base) + 48;
	w->tmp = malloc(n);
	if (!w->path || !w->dir || !w->tmp)
		return -ENOMEM;
	snprintf(w->tmp, n, "%.*s%s.%s.tmp.%ld", (int)dlen, path, slash ? "/" : "", base,
		 (long)getpid());
	return 0;
}

int ibc_csv_create(const char *path, const char *const *columns, int ncols,
		   struct ibc_csv_writer **out)
{
	struct ibc_csv_writer *w;
	int rc, i;

	*out = NULL;
	if (!path || !*path || !columns || ncols < 1) {
		ibc_err_set("ibc_csv_create: need a path and at least one column");
		return -EINVAL;
	}
	for (i = 0; i < ncols; i++)
		if (!columns[i]) {
			ibc_err_set("ibc_csv_create: column %d has no name", i + 1);
			return -EINVAL;
		}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->ncols = ncols;
	rc = writer_paths(w, path);
	if (rc) {
		ibc_err_set("%s: %s", path, rc == -EISDIR ? "not a file name" : strerror(-rc));
		goto fail;
	}
	IBC_CHECK_GOTO(buf_add_row(w, columns), rc, fail);
	IBC_CHECK_GOTO(commit_exclusive(w), rc, fail);
	w->committed = w->len;
	*out = w;
	return 0;
fail:
	writer_free(w);
	return rc;
}

int ibc_file_create(const char *path, const char *data, size_t len)
{
	struct ibc_csv_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	rc = writer_paths(w, path);
	if (!rc)
		rc = buf_reserve(w, len + 1);
	if (rc) {
		ibc_err_set("%s: %s", path, rc == -EISDIR ? "not a file name" : strerror(-rc));
	} else {
		memcpy(w->buf, data, len);
		w->len = len;
		rc = commit_exclusive(w);
	}
	writer_free(w);
	return rc;
}

int ibc_csv_add(struct ibc_csv_writer *w, const char *const *values)
{
	size_t old = w->len;
	int rc;

	if (!values)
		return -EINVAL;
	rc = buf_add_row(w, values);
	if (rc)
		w->len = old; /* never half a row */
	return rc;
}

int ibc_csv_commit(struct ibc_csv_writer *w)
{
	int rc;

	if (w->len == w->committed)
		return 0;
	rc = commit(w);
	if (rc)
		w->len = w->committed; /* the file still holds the previous state; so do we */
	else
		w->committed = w->len;
	return rc;
}

int ibc_csv_append(struct ibc_csv_writer *w, const char *const *values)
{
	int rc = ibc_csv_add(w, values);

	return rc ? rc : ibc_csv_commit(w);
}

int ibc_csv_append_rows(struct ibc_csv_writer *w, const char *const *values, int nrows)
{
	size_t old = w->len;
	int rc = 0, r;

	if (!values || nrows < 0)
		return -EINVAL;
	for (r = 0; r < nrows && !rc; r++)
		rc = ibc_csv_add(w, values + (size_t)r * (size_t)w->ncols);
	if (rc) {
		w->len = old;
		return rc;
	}
	return ibc_csv_commit(w);
}

void ibc_csv_close(struct ibc_csv_writer *w)
{
	writer_free(w);
}

/* ---------------------------------------------------------------- reader */

struct parser {
	const char *name;    /* borrowed */
	const char *p, *end; /* borrowed: the text */
	int line, col;	     /* of *p, 1-based; col counts UTF-8 characters */
	char *field;	     /* owned: the field being built */
	size_t flen, fcap;
	char **rec; /* owned: fields of the record being built */
	int *reccol; /* owned: where each of them starts */
	int nrec, caprec;
	int fcol; /* where the field being built starts */
	struct ibc_csv_table *t; /* owned until returned */
	int caprows;
	char *err; /* borrowed */
	size_t errlen;
};

static int perr(struct parser *ps, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int perr(struct parser *ps, int line, int col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "%s:%d:%d: %s", ps->name, line, col, msg);
	ibc_err_set("%s:%d:%d: %s", ps->name, line, col, msg);
	return -EINVAL;
}

/* Consume one byte, keeping line/col. "\r\n" counts as one line break at the '\n'. */
static void advance(struct parser *ps)
{
	unsigned char c = (unsigned char)*ps->p++;

	if (c == '\n') {
		ps->line++;
		ps->col = 1;
	} else if (c == '\r' && (ps->p == ps->end || *ps->p != '\n')) {
		ps->line++; /* a lone CR inside a quoted field still starts a new line */
		ps->col = 1;
	} else if ((c & 0xC0) != 0x80) {
		ps->col++;
	}
}

static int field_put(struct parser *ps, char c)
{
	if (ps->flen + 1 >= ps->fcap) {
		size_t cap = ps->fcap ? ps->fcap * 2 : 64;
		char *nf = realloc(ps->field, cap);

		if (!nf)
			return -ENOMEM;
		ps->field = nf;
		ps->fcap = cap;
	}
	ps->field[ps->flen++] = c;
	return 0;
}

static int field_end(struct parser *ps)
{
	char *s;

	if (ps->nrec == ps->caprec) {
		int cap = ps->caprec ? ps->caprec * 2 : 16;
		char **nr = realloc(ps->rec, (size_t)cap * sizeof(*nr));
		int *nc;

		if (!nr)
			return -ENOMEM;
		ps->rec = nr;
		nc = realloc(ps->reccol, (size_t)cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		ps->reccol = nc;
		ps->caprec = cap;
	}
	s = malloc(ps->flen + 1);
	if (!s)
		return -ENOMEM;
	if (ps->flen) /* an empty first field has no buffer yet: no memcpy from NULL */
		memcpy(s, ps->field, ps->flen);
	s[ps->flen] = '\0';
	ps->flen = 0;
	ps->reccol[ps->nrec] = ps->fcol;
	ps->rec[ps->nrec++] = s;
	return 0;
}

static void rec_clear(struct parser *ps)
{
	while (ps->nrec > 0)
		free(ps->rec[--ps->nrec]);
}

/* Hand the finished record (started at line) to the table: header or data row. */
static int record_end(struct parser *ps, int line, int endcol)
{
	struct ibc_csv_table *t = ps->t;
	char **copy;
	int **nc, *cols, i, j;

	if (!t->header) {
		for (i = 0; i < ps->nrec; i++)
			for (j = 0; j < i; j++)
				if (strcmp(ps->rec[i], ps->rec[j]) == 0)
					return perr(
					    ps, line, 1,
					    "duplicate column '%s' in the header (columns %d "
					    "and %d)",
					    ps->rec[i], j + 1, i + 1);
		t->ncols = ps->nrec;
		t->header = ps->rec;
		ps->rec = NULL;
		ps->nrec = ps->caprec = 0;
		free(ps->reccol);
		ps->reccol = NULL;
		return 0;
	}
	if (ps->nrec == 1 && ps->rec[0][0] == '\0' && t->ncols > 1)
		return perr(ps, line, 1, "empty line (a row needs %d fields)", t->ncols);
	if (ps->nrec != t->ncols)
		return perr(ps, line, endcol, "line %d: %d field%s, header has %d", line, ps->nrec,
			    ps->nrec == 1 ? "" : "s", t->ncols);
	if (t->nrows == ps->caprows) {
		int cap = ps->caprows ? ps->caprows * 2 : 64;
		char ***nr = realloc(t->rows, (size_t)cap * sizeof(*nr));
		int *nl;

		if (!nr)
			return -ENOMEM;
		t->rows = nr;
		nl = realloc(t->row_line, (size_t)cap * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		t->row_line = nl;
		nc = realloc(t->row_cols, (size_t)cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		t->row_cols = nc;
		ps->caprows = cap;
	}
	copy = malloc((size_t)ps->nrec * sizeof(*copy));
	cols = malloc((size_t)ps->nrec * sizeof(*cols));
	if (!copy || !cols) {
		free(copy);
		free(cols);
		return -ENOMEM;
	}
	memcpy(copy, ps->rec, (size_t)ps->nrec * sizeof(*copy));
	memcpy(cols, ps->reccol, (size_t)ps->nrec * sizeof(*cols));
	t->row_cols[t->nrows] = cols;
	t->rows[t->nrows] = copy;
	t->row_line[t->nrows] = line;
	t->nrows++;
	ps->nrec = 0; /* the strings now belong to the table */
	return 0;
}

/* Parse one quoted field; *ps->p is the opening quote. */
static int parse_quoted(struct parser *ps)
{
	int qline = ps->line, qcol = ps->col, rc;

	advance(ps);
	for (;;) {
		if (ps->p == ps->end)
			return perr(ps, qline, qcol,
				    "unterminated quoted field (the quote opened "
				    "here is never closed)");
		if (*ps->p == '"') {
			if (ps->p + 1 < ps->end && ps->p[1] == '"') {
				advance(ps);
				advance(ps);
				rc = field_put(ps, '"');
				if (rc)
					return rc;
				continue;
			}
			advance(ps);
			break;
		}
		if (*ps->p == '\0')
			return perr(ps, ps->line, ps->col, "NUL byte in the file");
		rc = field_put(ps, *ps->p);
		if (rc)
			return rc;
		advance(ps);
	}
	if (ps->p < ps->end && *ps->p != ',' && *ps->p != '\n' && *ps->p != '\r')
		return perr(ps, ps->line, ps->col,
			    "unexpected '%c' after the closing quote of a field (a quote inside a "
			    "quoted field is written \"\")",
			    *ps->p);
	return 0;
}

static int parse_unquoted(struct parser *ps)
{
	int rc;

	while (ps->p < ps->end && *ps->p != ',' && *ps->p != '\n' && *ps->p != '\r') {
		if (*ps->p == '"')
			return perr(ps, ps->line, ps->col,
				    "stray quote in an unquoted field (quote the whole field and "
				    "double the quote)");
		if (*ps->p == '\0')
			return perr(ps, ps->line, ps->col, "NUL byte in the file");
		rc = field_put(ps, *ps->p);
		if (rc)
			return rc;
		advance(ps);
	}
	return 0;
}

static int parse_all(struct parser *ps)
{
	int rc;

	while (ps->p < ps->end) {
		int line = ps->line;

		for (;;) { /* the fields of one record */
			ps->fcol = ps->col;
			/* "a,<EOF>" ends in an empty field: nothing to read there */
			rc = ps->p < ps->end && *ps->p == '"' ? parse_quoted(ps) : parse_unquoted(ps);
			if (!rc)
				rc = field_end(ps);
			if (rc)
				return rc;
			if (ps->p == ps->end || *ps->p != ',')
				break;
			advance(ps); /* "a,<EOF>" or "a,\n": the next field is empty */
		}
		rc = record_end(ps, line, ps->col);
		if (rc)
			return rc;
		if (ps->p < ps->end && *ps->p == '\r')
			advance(ps);
		if (ps->p < ps->end && *ps->p == '\n')
			advance(ps);
	}
	return 0;
}

void ibc_csv_free(struct ibc_csv_table *t)
{
	int i, j;

	if (!t)
		return;
	for (i = 0; i < t->nrows; i++) {
		for (j = 0; j < t->ncols; j++)
			free(t->rows[i][j]);
		free(t->rows[i]);
		free(t->row_cols[i]);
	}
	if (t->header)
		for (j = 0; j < t->ncols; j++)
			free(t->header[j]);
	free(t->header);
	free(t->rows);
	free(t->row_line);
	free(t->row_cols);
	free(t);
}

int ibc_csv_parse(const char *name, const char *text, size_t len, struct ibc_csv_table **out,
		  char *err, size_t errlen)
{
	struct parser ps = {
	    .name = name ? name : "(csv)",
	    .p = text,
	    .end = text + len,
	    .line = 1,
	    .col = 1,
	    .err = err,
	    .errlen = errlen,
	};
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3; /* UTF-8 byte order mark (Excel writes one) */
	if (ps.p == ps.end)
		return perr(&ps, 1, 1, "empty file (expected a header row)");
	ps.t = calloc(1, sizeof(*ps.t));
	if (!ps.t)
		return -ENOMEM;
	rc = parse_all(&ps);
	if (!rc && ps.t->ncols == 1 && ps.t->header[0][0] == '\0')
		rc = perr(&ps, 1, 1, "empty header row");
	rec_clear(&ps);
	free(ps.rec);
	free(ps.reccol);
	free(ps.field);
	if (rc) {
		if (rc == -ENOMEM && err && errlen && !err[0])
			snprintf(err, errlen, "%s: out of memory", ps.name);
		ibc_csv_free(ps.t);
		return rc;
	}
	*out = ps.t;
	return 0;
}

int ibc_csv_read(const char *path, struct ibc_csv_table **out, char *err, size_t errlen)
{
	struct stat st;
	char *text = NULL;
	size_t n = 0;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail_msg;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		close(fd);
		if (err && errlen)
			snprintf(err, errlen, "%s: not a regular file", path);
		return rc;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		rc = -ENOMEM;
		goto fail_msg;
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, text + n, (size_t)st.st_size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			goto fail_msg;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	fd = -1;
	rc = ibc_csv_parse(path, text, n, out, err, errlen);
	free(text);
	return rc;
fail_msg:
	if (fd >= 0)
		close(fd);
	free(text);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	ibc_err_set("%s: %s", path, strerror(-rc));
	return rc;
}

int ibc_csv_field_col(const struct ibc_csv_table *t, int row, int col)
{
	if (!t || row < 0 || row >= t->nrows || col < 0 || col >= t->ncols)
		return 1;
	return t->row_cols[row][col];
}

int ibc_csv_col(const struct ibc_csv_table *t, const char *name)
{
	int i;

	for (i = 0; t && name && i < t->ncols; i++)
		if (strcmp(t->header[i], name) == 0)
			return i;
	return -1;
}
