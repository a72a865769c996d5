# The job key and strangers: the challenge-response, tcp data connections with a wrong key or an
# idle stranger, and real ranks whose rendezvous sees an impostor, a stranger without the key,
# one byte, garbage, nothing or a huge length; the key file's mode, the open-rendezvous warning
# and --require-auth.
ibc_tap_test(test_auth SOURCES test_auth.c LIBS ibc_transports ibc_reports LABELS launch TIMEOUT 400
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
target_include_directories(test_auth PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/plugin
  ${CMAKE_CURRENT_SOURCE_DIR}/../transports/tcp)
add_dependencies(test_auth ibcoll)
