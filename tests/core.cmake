# Core: collectives over shm/tcp, bootstrap, launcher, driver CLI.
ibc_tap_test(test_coll SOURCES test_coll.c LIBS ibc_coll TIMEOUT 600)
ibc_tap_test(test_cli SOURCES test_cli.c LIBS ibc_reports TIMEOUT 600)
add_dependencies(test_cli ibcoll)
# Ranks started outside --np exit through exit(), so LeakSanitizer (ASan builds) sees hwloc's
# own plugin leak on live topology loads: suppress it as test_topo does.
ibc_tap_test(test_netns SOURCES test_netns.c LIBS ibc_reports LABELS netns TIMEOUT 300
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
add_dependencies(test_netns ibcoll)
ibc_tap_test(test_launchers SOURCES test_launchers.c LIBS ibc_reports LABELS launch TIMEOUT 400
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
add_dependencies(test_launchers ibcoll)
# The wire-up through the launcher's PMIx server: real mpirun on this host and across staged
# hosts (tests/stage), real Slurm daemons with srun --mpi=pmix and --mpi=none, a gone server,
# a rank that never reaches the fence.
ibc_tap_test(test_pmix SOURCES test_pmix.c LIBS ibc_reports LABELS launch netns TIMEOUT 900
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
add_dependencies(test_pmix ibcoll)
# Behaviour unchanged: fixed commands compared with what the binary printed when the fixture
# was made (tests/data/golden), every non-timing, machine-independent field.
ibc_tap_test(test_golden SOURCES test_golden.c LIBS ibc_reports TIMEOUT 300)
add_dependencies(test_golden ibcoll)
