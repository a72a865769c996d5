/* SPDX-License-Identifier: MIT */
/*
 * replay.c - the fuzz harnesses without libFuzzer (docs/fuzzing.md): a TAP test that runs
 * every file of the directories (or files) on its command line through LLVMFuzzerTestOneInput
 * once, one test point per file. ctest runs it on each harness's seed and regression corpora
 * (tests/fuzz/corpus/<name>, tests/fuzz/regress/<name>) in every build, ASan included; a
 * crash or a failed check aborts the test (ctest names the file: it prints each before
 * running it).
 */
#include "fuzz.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_FILES 4096

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(char **files, int *n, const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (stat(path, &st) != 0)
		return; /* a corpus that does not exist (no regressions yet) */
	if (!S_ISDIR(st.st_mode)) {
		if (*n < REPLAY_MAX_FILES)
			files[(*n)++] = strdup(path);
		return;
	}
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[4096];

		if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		add_path(files, n, p);
	}
	closedir(d);
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return -errno;
	}
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (n < cap)
			break;
		cap *= 2;
		uint8_t *nb = realloc(buf, cap);
		if (!nb) {
			free(buf);
			fclose(f);
			return -ENOMEM;
		}
		buf = nb;
	}
	fclose(f);
	*data = buf;
	*size = n;
	return 0;
}

int main(int argc, char **argv)
{
	static char *files[REPLAY_MAX_FILES];
	int n = 0, i;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++)
		add_path(files, &n, argv[i]);
	if (!n)
		return tap_skip_all("no corpus files");
	qsort(files, (size_t)n, sizeof(*files), cmp_str);
	tap_plan(n);
	for (i = 0; i < n; i++) {
		uint8_t *data = NULL;
		size_t size = 0;
		int rc = read_file(files[i], &data, &size);

		if (!rc) {
			fprintf(stderr, "replay: %s\n", files[i]);
			LLVMFuzzerTestOneInput(data, size);
			free(data);
		}
		ok(rc == 0, "%s (%zu bytes)", files[i], rc ? 0 : size);
		free(files[i]);
	}
	return tap_done();
}
