# topology/ tests (docs/topology.md). Fixtures in tests/data come from tests/data/gen-topo-xml.py
# (dgx-h100.xml, topo-*.xml, sysfs-dgx-*/). The suppression file only matters for ASan builds:
# it hides a leak inside hwloc's libpciaccess plugin on live loads (the slow unwinder is needed
# to see through the dlclose'd plugin to hwloc_topology_load).
ibc_tap_test(test_topo
  SOURCES test_topo.c
  LIBS ibc_topology
  LABELS topology
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
# test_check: `ibcoll check` (the preflight) on the DGX fixture and fake sysfs trees.
ibc_tap_test(test_check SOURCES test_check.c LIBS ibc_reports TIMEOUT 300
  ENV "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0"
      "ASAN_OPTIONS=fast_unwind_on_malloc=0")
add_dependencies(test_check ibcoll)
