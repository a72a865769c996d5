# Fuzzing (docs/fuzzing.md). Each harness tests/fuzz/fuzz_<name>.c is built twice:
#  - fuzz_replay_<name> (every build, any compiler): replay.c's main() runs the seed corpus
#    tests/fuzz/corpus/<name> and the crashes already fixed, tests/fuzz/regress/<name>, once
#    through the harness; a ctest test per harness (label fuzz).
#  - fuzz_<name> (IBCOLL_FUZZ=ON with clang): the libFuzzer binary that scripts/fuzz runs.
# test_fuzz_short runs every libFuzzer binary for a few seconds (scripts/fuzz --tap, which
# builds build-fuzz/ with clang); it skips where clang or libFuzzer is missing.
set(ibc_fuzz_dir ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(ibc_fuzz_names boot cluster csv expect opts optmsg tcp topo)
set(ibc_fuzz_libs_boot ibc_bootstrap)
set(ibc_fuzz_libs_cluster ibc_reports)
set(ibc_fuzz_libs_csv ibc_reports)
set(ibc_fuzz_libs_expect ibc_reports)
set(ibc_fuzz_libs_opts ibc_bench)
set(ibc_fuzz_libs_optmsg ibc_bench)
set(ibc_fuzz_libs_tcp ibc_transports)
set(ibc_fuzz_libs_topo ibc_topology)

function(ibc_fuzz_target target name)
  target_include_directories(${target} PRIVATE ${ibc_fuzz_dir} ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${target} PRIVATE ${ibc_fuzz_libs_${name}} ibc_common)
  if(name STREQUAL "tcp")
    target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/transports/tcp)
  endif()
endfunction()

foreach(name ${ibc_fuzz_names})
  add_executable(fuzz_replay_${name} ${ibc_fuzz_dir}/replay.c ${ibc_fuzz_dir}/fuzz_${name}.c)
  ibc_fuzz_target(fuzz_replay_${name} ${name})
  add_test(NAME fuzz_replay_${name}
    COMMAND fuzz_replay_${name} ${ibc_fuzz_dir}/corpus/${name} ${ibc_fuzz_dir}/regress/${name})
  set_tests_properties(fuzz_replay_${name} PROPERTIES
    SKIP_REGULAR_EXPRESSION "1\\.\\.0 # SKIP" LABELS fuzz TIMEOUT 120
    ENVIRONMENT "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/data/topo-lsan.supp:print_suppressions=0;ASAN_OPTIONS=fast_unwind_on_malloc=0")
endforeach()

if(IBCOLL_FUZZ)
  add_custom_target(fuzz)
  foreach(name ${ibc_fuzz_names})
    add_executable(fuzz_${name} ${ibc_fuzz_dir}/fuzz_${name}.c)
    ibc_fuzz_target(fuzz_${name} ${name})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzz fuzz_${name})
  endforeach()
endif()

# A few seconds of libFuzzer per harness (about 30 s in all); builds build-fuzz/ when needed.
add_test(NAME test_fuzz_short COMMAND ${CMAKE_SOURCE_DIR}/scripts/fuzz --tap --seconds 4)
set_tests_properties(test_fuzz_short PROPERTIES
  SKIP_REGULAR_EXPRESSION "1\\.\\.0 # SKIP" LABELS fuzz TIMEOUT 900)
