# common/: ids and the sysfs reader.
ibc_tap_test(test_common SOURCES test_common.c TIMEOUT 60)
