# Core: collectives over shm/tcp, bootstrap, launcher, driver CLI.
ibc_tap_test(test_coll SOURCES test_coll.c LIBS ibc_core TIMEOUT 600)
