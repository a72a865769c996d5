# tests/softhca/: the software HCA (libibcoll-softhca.so) - the libibverbs entry points over
# local sockets, so the verbs transport runs without RDMA hardware - and its test.
# Other tests point the verbs transport at it with
#   ENV "IBCOLL_IBVERBS_LIB=$<TARGET_FILE:ibcoll_softhca>"
# (or ${IBCOLL_SOFTHCA_LIB}, the same generator expression). See docs/softhca.md.
if(IBCOLL_HAVE_VERBS)
  file(GLOB shca_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/softhca/*.c)
  add_library(ibcoll_softhca SHARED ${shca_sources})
  set_target_properties(ibcoll_softhca PROPERTIES
    OUTPUT_NAME ibcoll-softhca
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  target_include_directories(ibcoll_softhca PRIVATE ${IBVERBS_INCLUDE_DIR}
    ${CMAKE_CURRENT_SOURCE_DIR}/softhca)
  target_link_libraries(ibcoll_softhca PRIVATE Threads::Threads)
  target_link_options(ibcoll_softhca PRIVATE -Wl,--no-undefined -Wl,-z,defs)
  set(IBCOLL_SOFTHCA_LIB $<TARGET_FILE:ibcoll_softhca> CACHE INTERNAL
    "software HCA for tests (generator expression)")

  ibc_tap_test(test_softhca SOURCES test_softhca.c LIBS ibcoll_softhca Threads::Threads
    LABELS rdma TIMEOUT 300
    ENV "IBCOLL_SOFTHCA_LIB=$<TARGET_FILE:ibcoll_softhca>")
  target_include_directories(test_softhca PRIVATE ${IBVERBS_INCLUDE_DIR})
endif()
