# Fabric telemetry around runs. After softhca.cmake (fragments are included in name order),
# so that the software HCA's target is known here.
# test_counters: port counters on fake sysfs trees, and real runs (tcp on loopback; verbs on
# the software HCA when it is built) whose fake counters move during the run.
if(TARGET ibcoll_softhca)
  set(ibc_counters_env "IBCOLL_SOFTHCA_LIB=$<TARGET_FILE:ibcoll_softhca>")
else()
  set(ibc_counters_env "IBCOLL_SOFTHCA_LIB=")
endif()
ibc_tap_test(test_counters SOURCES test_counters.c LIBS ibc_topology TIMEOUT 300
  ENV ${ibc_counters_env})
add_dependencies(test_counters ibcoll)
if(TARGET ibcoll_softhca)
  add_dependencies(test_counters ibcoll_softhca)
endif()
