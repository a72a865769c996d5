/* SPDX-License-Identifier: MIT */
/*
 * ibc_csv.h - the one writer and reader of RFC 4180 CSV files, which are never truncated or
 * overwritten (docs/design.md#csv-reports). Every report (results.csv, hosts.csv, the topo CSV,
 * projection.csv) goes through it.
 *
 * Writer: the file is created exclusively (an existing file is an error, -EEXIST) and every
 * committed state is written to a temporary file in the same directory and renamed over the
 * target, so a reader (or a crash) only ever sees whole rows.
 *
 * Reader: loads a whole file; errors name file, line and column.
 */
#ifndef IBC_CSV_H
#define IBC_CSV_H

#include <stddef.h>

struct ibc_csv_writer;

/* Create path exclusively and write the header row. *w owned by caller (ibc_csv_close). */
int ibc_csv_create(const char *path, const char *const *columns, int ncols,
		   struct ibc_csv_writer **w);
/* Append one row of ncols values (NULL = empty field) and commit it to disk atomically (with
 * any rows added before it). */
int ibc_csv_append(struct ibc_csv_writer *w, const char *const *values);
/* Many rows at once: ibc_csv_add keeps a row in memory (nothing is written), ibc_csv_commit
 * writes every row added since the last commit in one atomic step (one fsync + rename, where
 * ibc_csv_append costs one per row). A failed commit drops the rows it was to write. */
int ibc_csv_add(struct ibc_csv_writer *w, const char *const *values);
int ibc_csv_commit(struct ibc_csv_writer *w);
/* ibc_csv_add of nrows rows (values is nrows x ncols) and one ibc_csv_commit; on failure none
 * of them is kept. */
int ibc_csv_append_rows(struct ibc_csv_writer *w, const char *const *values, int nrows);
/* A whole file of len bytes at path, created exclusively and atomically as ibc_csv_create
 * does (a temporary file, fsynced, linked into place): a reader sees all of it or nothing, and
 * an existing file is never replaced. 0 or -EEXIST / -errno with ibc_err_get() saying why.
 * For the reports that are not CSV (summary.json, JUnit XML, the Prometheus text file). */
int ibc_file_create(const char *path, const char *data, size_t len);
/* Free the writer; the file on disk stays as last committed (rows not committed are lost). */
void ibc_csv_close(struct ibc_csv_writer *w);

struct ibc_csv_table {
	int ncols; /* columns in the header */
	int nrows; /* data rows (header excluded) */
	char **header; /* ncols strings, owned */
	char ***rows; /* nrows x ncols strings, owned */
	int *row_line; /* source line number of each data row, owned */
	int **row_cols; /* nrows x ncols: the column (1-based, in characters) where each field
			 * starts on its line, owned; for "path:line:col" messages */
};

/* Read a whole CSV file. Every row must have as many fields as the header.
 * On error returns -errno / -EINVAL and writes "path:line:col: what" into err. */
int ibc_csv_read(const char *path, struct ibc_csv_table **t, char *err, size_t errlen);
/* Parse from memory (name is used in messages). */
int ibc_csv_parse(const char *name, const char *text, size_t len, struct ibc_csv_table **t,
		  char *err, size_t errlen);
/* The column (characters, 1-based) where field col of data row row starts. */
int ibc_csv_field_col(const struct ibc_csv_table *t, int row, int col);
/* Index of a column by name, or -1. */
int ibc_csv_col(const struct ibc_csv_table *t, const char *name);
void ibc_csv_free(struct ibc_csv_table *t);

/* Format one field into out per RFC 4180 (quoted when it holds , " CR or LF). */
int ibc_csv_quote(const char *in, char *out, size_t outlen);

#endif
