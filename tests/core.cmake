# Core: collectives over shm/tcp, bootstrap, launcher, driver CLI.
ibc_tap_test(test_coll SOURCES test_coll.c LIBS ibc_core TIMEOUT 600)
ibc_tap_test(test_cli SOURCES test_cli.c LIBS ibc_reports TIMEOUT 600)
add_dependencies(test_cli ibcoll)
ibc_tap_test(test_netns SOURCES test_netns.c LIBS ibc_reports LABELS netns TIMEOUT 300)
add_dependencies(test_netns ibcoll)
