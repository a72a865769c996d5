/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - what the fuzz harnesses share (docs/fuzzing.md). Each fuzz_<name>.c defines
 * LLVMFuzzerTestOneInput; built with clang -fsanitize=fuzzer it is a libFuzzer binary
 * (IBCOLL_FUZZ=ON), linked with replay.c it is the replay test of the main build, which runs
 * the seed and regression corpora through the same code.
 *
 * A harness checks the properties it knows (a decoded message encodes back to the same bytes,
 * a parsed table prints back to the same table) with FUZZ_CHECK, which aborts: libFuzzer and
 * the replay test both report an abort as a failure with the input that caused it.
 */
#ifndef IBC_FUZZ_H
#define IBC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__,      \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A NUL-terminated copy of the input (caller frees); NULL when out of memory. */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s) {
		for (size_t i = 0; i < size; i++)
			s[i] = (char)data[i];
		s[size] = '\0';
	}
	return s;
}

/* Read a string to its end as printf("%s") would: ASan sees a missing terminator. */
static inline size_t fuzz_strlen(const char *s)
{
	volatile size_t n = strlen(s);

	return n;
}

#endif
