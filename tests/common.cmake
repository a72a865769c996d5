# common/: ids and the sysfs reader.
ibc_tap_test(test_common SOURCES test_common.c TIMEOUT 60)
# common/'s checked number parsers.
ibc_tap_test(test_parse SOURCES test_parse.c TIMEOUT 30)
