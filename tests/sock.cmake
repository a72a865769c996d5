# common/: the socket layer that bootstrap/ and the tcp transport share.
ibc_tap_test(test_sock SOURCES test_sock.c TIMEOUT 60)
