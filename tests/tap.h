/* SPDX-License-Identifier: MIT */
/*
 * tap.h - a tiny TAP producer for ibcoll's C tests (header only).
 *
 *   int main(void) { tap_plan(2); ok(1 + 1 == 2, "sum"); is_int(f(), 3, "f"); return tap_done(); }
 *
 * tap_skip_all("no RDMA device") prints "1..0 # SKIP no RDMA device" and returns 0: ctest shows the
 * test as skipped (SKIP_REGULAR_EXPRESSION), prove as skipped. Never a silent pass.
 */
#ifndef IBC_TAP_H
#define IBC_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_run_, tap_failed_, tap_planned_ = -1;

static inline void tap_plan(int n)
{
	tap_planned_ = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline int tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	fflush(stdout);
	return 0;
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_run_++;
	if (!cond)
		tap_failed_++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run_);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		printf("#   Failed at %s line %d\n", file, line);
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                                     \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		if (!ok(g_ == w_, __VA_ARGS__))                                                    \
			diag("     got: %lld\n#     expected: %lld", g_, w_);                       \
	} while (0)

#define is_str(got, want, ...)                                                                     \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                             \
			diag("     got: '%s'\n#     expected: '%s'", g_ ? g_ : "(null)",           \
			     w_ ? w_ : "(null)");                                                  \
	} while (0)

static inline void tap_skip(int n, const char *reason)
{
	while (n-- > 0) {
		tap_run_++;
		printf("ok %d # skip %s\n", tap_run_, reason);
	}
	fflush(stdout);
}

/* Returns the process exit code: 0 only if every test ran and passed. */
static inline int tap_done(void)
{
	if (tap_planned_ < 0)
		printf("1..%d\n", tap_run_);
	else if (tap_planned_ != tap_run_) {
		printf("# planned %d tests but ran %d\n", tap_planned_, tap_run_);
		return 1;
	}
	if (tap_failed_)
		printf("# failed %d of %d tests\n", tap_failed_, tap_run_);
	fflush(stdout);
	return tap_failed_ ? 1 : 0;
}

#endif
