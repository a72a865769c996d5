# bench/: the driver's own modules, linked from the ibc_bench library without the binary.
# test_opts: the options message (round trip, truncation, bad magic/version, comparison).
# test_stats: the per-iteration statistics on known inputs and when allocation fails.
ibc_tap_test(test_opts SOURCES test_opts.c LIBS ibc_bench TIMEOUT 60)
ibc_tap_test(test_stats SOURCES test_stats.c LIBS ibc_bench TIMEOUT 60)
