/* SPDX-License-Identifier: MIT */
/*
 * test_parse.c - common/'s checked number parsers (ibc_parse_int, _u64, _double, _size), which
 * every option and every numeric field goes through: plain decimals only, no blanks around
 * them, no signs where none make sense, no trailing junk, ranges kept.
 */
#include "ibc_common.h"
#include "tap.h"

static void check_int(const char *s, long min, long max, int want, long want_v)
{
	long v = -12345;
	int rc = ibc_parse_int(s, min, max, &v);

	if (want)
		is_int(rc, want, "int '%s' (%ld..%ld) refused", s, min, max);
	else
		ok(rc == 0 && v == want_v, "int '%s' = %ld (rc %d, got %ld)", s, want_v, rc, v);
}

static void check_u64(const char *s, int want, uint64_t want_v)
{
	uint64_t v = 12345;
	int rc = ibc_parse_u64(s, &v);

	if (want)
		is_int(rc, want, "u64 '%s' refused", s);
	else
		ok(rc == 0 && v == want_v, "u64 '%s' = %llu", s, (unsigned long long)want_v);
}

static void check_double(const char *s, int want, double want_v)
{
	double v = -1;
	int rc = ibc_parse_double(s, &v);

	if (want)
		is_int(rc, want, "double '%s' refused", s);
	else
		ok(rc == 0 && v == want_v, "double '%s' = %g (rc %d, got %g)", s, want_v, rc, v);
}

static void check_size(const char *s, int want, uint64_t want_v)
{
	uint64_t v = 12345;
	int rc = ibc_parse_size(s, &v);

	if (want)
		is_int(rc, want, "size '%s' refused", s);
	else
		ok(rc == 0 && v == want_v, "size '%s' = %llu", s, (unsigned long long)want_v);
}

static void test_int(void)
{
	check_int("1", 1, 10, 0, 1);
	check_int("10", 1, 10, 0, 10);
	check_int("-3", -5, 5, 0, -3);
	check_int("0", 0, 5, 0, 0);
	check_int(" 1", 1, 10, -EINVAL, 0);
	check_int("1 ", 1, 10, -EINVAL, 0);
	check_int("\t1", 1, 10, -EINVAL, 0);
	check_int("1\n", 1, 10, -EINVAL, 0);
	check_int("+1", 1, 10, -EINVAL, 0);
	check_int("-1", 0, 10, -EINVAL, 0); /* no sign where no negative value is valid */
	check_int("-0", 0, 10, -EINVAL, 0);
	check_int("+-1", -5, 5, -EINVAL, 0);
	check_int("--1", -5, 5, -EINVAL, 0);
	check_int("1x", 1, 10, -EINVAL, 0);
	check_int("0x10", 0, 100, -EINVAL, 0);
	check_int("1.0", 1, 10, -EINVAL, 0);
	check_int(".5", 0, 10, -EINVAL, 0);
	check_int("1e3", 1, 10000, -EINVAL, 0);
	check_int("", 1, 10, -EINVAL, 0);
	check_int(NULL, 1, 10, -EINVAL, 0);
	check_int("11", 1, 10, -ERANGE, 0);
	check_int("0", 1, 10, -ERANGE, 0);
	check_int("-6", -5, 5, -ERANGE, 0);
	check_int("99999999999999999999", 1, 10, -ERANGE, 0);
}

static void test_u64(void)
{
	check_u64("0", 0, 0);
	check_u64("18446744073709551615", 0, UINT64_MAX);
	check_u64("18446744073709551616", -ERANGE, 0);
	check_u64(" 1", -EINVAL, 0);
	check_u64("1 ", -EINVAL, 0);
	check_u64("+1", -EINVAL, 0);
	check_u64("-1", -EINVAL, 0);
	check_u64("1x", -EINVAL, 0);
	check_u64("", -EINVAL, 0);
}

static void test_double(void)
{
	check_double("1.5", 0, 1.5);
	check_double("-2", 0, -2);
	check_double(".25", 0, 0.25);
	check_double("3.", 0, 3);
	check_double("1e3", 0, 1000);
	check_double("1.5E-2", 0, 0.015);
	check_double(" 1", -EINVAL, 0);
	check_double("1 ", -EINVAL, 0);
	check_double("+1", -EINVAL, 0);
	check_double("0x10", -EINVAL, 0); /* strtod takes hex floats */
	check_double("0x1p3", -EINVAL, 0);
	check_double("inf", -EINVAL, 0);
	check_double("nan", -EINVAL, 0);
	check_double("-inf", -EINVAL, 0);
	check_double("1,5", -EINVAL, 0);
	check_double("1e", -EINVAL, 0);
	check_double(".", -EINVAL, 0);
	check_double("-", -EINVAL, 0);
	check_double("", -EINVAL, 0);
	check_double("1e999", -ERANGE, 0);
	check_double("-1e999", -ERANGE, 0);
}

static void test_size(void)
{
	check_size("0", 0, 0);
	check_size("64K", 0, 64 << 10);
	check_size("1m", 0, 1 << 20);
	check_size("2G", 0, 2ull << 30);
	check_size("1T", 0, 1ull << 40);
	check_size(" 1K", -EINVAL, 0);
	check_size("1K ", -EINVAL, 0);
	check_size("1 K", -EINVAL, 0);
	check_size("+1K", -EINVAL, 0);
	check_size("-1K", -EINVAL, 0);
	check_size("1KiB", -EINVAL, 0);
	check_size("1Ki", -EINVAL, 0);
	check_size("K", -EINVAL, 0);
	check_size("1.5K", -EINVAL, 0);
	check_size("", -EINVAL, 0);
	check_size("16777216T", -ERANGE, 0);
}

int main(void)
{
	test_int();
	test_u64();
	test_double();
	test_size();
	return tap_done();
}
