# Verbs transport tests: run against the software HCA (tests/softhca) through
# IBCOLL_IBVERBS_LIB; they print "1..0 # SKIP" when that library cannot be loaded.
if(IBCOLL_HAVE_VERBS)
  if(TARGET ibcoll_softhca)
    set(ibc_verbs_test_env "IBCOLL_IBVERBS_LIB=$<TARGET_FILE:ibcoll_softhca>")
  else()
    set(ibc_verbs_test_env "IBCOLL_IBVERBS_LIB=")
  endif()
  ibc_tap_test(test_verbs_tp
    SOURCES test_verbs_tp.c
    LIBS ibc_transports ${CMAKE_DL_LIBS}
    LABELS rdma
    TIMEOUT 300
    ENV ${ibc_verbs_test_env})
  target_include_directories(test_verbs_tp PRIVATE ${IBVERBS_INCLUDE_DIR})
  if(TARGET ibcoll_softhca)
    add_dependencies(test_verbs_tp ibcoll_softhca)
  endif()
endif()

# End to end: ibcoll allreduce/sendrecv --transport verbs over the software HCA, and the
# failures (no library, no device, a dropped link) with their exit codes and messages.
if(IBCOLL_HAVE_VERBS AND TARGET ibcoll)
  ibc_tap_test(test_verbs_e2e
    SOURCES test_verbs_e2e.c
    LIBS ${CMAKE_DL_LIBS}
    LABELS rdma
    TIMEOUT 600
    ENV ${ibc_verbs_test_env})
  add_dependencies(test_verbs_e2e ibcoll)
  if(TARGET ibcoll_softhca)
    add_dependencies(test_verbs_e2e ibcoll_softhca)
  endif()
endif()
