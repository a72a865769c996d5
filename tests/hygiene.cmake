# Process hygiene: the --np launcher or a rank killed (SIGKILL) or stopped (SIGSTOP) at a few
# points; what must not outlive the job (ranks, /dev/shm segments) and how fast it ends.
ibc_tap_test(test_hygiene SOURCES test_hygiene.c LIBS ibc_common TIMEOUT 400 LABELS launch
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
add_dependencies(test_hygiene ibcoll)
