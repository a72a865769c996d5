# dtypes, host reductions, half/bfloat16 conversions, verifiable data (coll/dtype.c).
ibc_tap_test(test_dtype SOURCES test_dtype.c LIBS ibc_dtype m)

# The same tests on single builds of coll/dtype.c, for the code the run-time dispatch does
# not pick on this machine: baseline (SSE2 on x86-64, software half conversions) and AVX2.
ibc_tap_test(test_dtype_baseline SOURCES test_dtype.c ${PROJECT_SOURCE_DIR}/coll/dtype.c LIBS m)
target_include_directories(test_dtype_baseline PRIVATE ${PROJECT_SOURCE_DIR}/coll)
target_compile_definitions(test_dtype_baseline PRIVATE IBC_DTYPE_BASELINE=1)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  ibc_tap_test(test_dtype_avx2 SOURCES test_dtype.c ${PROJECT_SOURCE_DIR}/coll/dtype.c LIBS m)
  target_include_directories(test_dtype_avx2 PRIVATE ${PROJECT_SOURCE_DIR}/coll)
  target_compile_definitions(test_dtype_avx2 PRIVATE IBC_DTYPE_TARGET="avx2")
endif()
