# bench/: the driver's own modules, linked from the ibc_bench library without the binary.
# test_opts: the options message (round trip, truncation, bad magic/version, comparison).
# test_stats: the per-iteration statistics on known inputs and when allocation fails.
ibc_tap_test(test_opts SOURCES test_opts.c LIBS ibc_bench TIMEOUT 60)
ibc_tap_test(test_stats SOURCES test_stats.c LIBS ibc_bench TIMEOUT 60)
# test_compare: `ibcoll compare` on results.csv files with known times (regressions, noise,
# status changes, unmatched rows, bad input) and on a real run against its copy.
ibc_tap_test(test_compare SOURCES test_compare.c LIBS ibc_bench TIMEOUT 300)
add_dependencies(test_compare ibcoll)
# test_expect: thresholds (the expectations file, --expect-busbw) and the verdict of real runs
# (findings.csv, exit 1 when a limit is missed, exit 2 on a bad file before the run).
ibc_tap_test(test_expect SOURCES test_expect.c LIBS ibc_bench TIMEOUT 300)
add_dependencies(test_expect ibcoll)
