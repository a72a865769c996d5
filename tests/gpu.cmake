# Memory backends: host/hostdev (test_mem_host, runs everywhere, label mem) and the CUDA
# backend (test_gpu_mem, label gpu: "1..0 # SKIP <why>" without a GPU or driver).
# tests/gpu/: gpu_check (kernel and staging bandwidth for tests/gpu/check.sh on an H100/H200).
# (ibc_mem comes from coll/mem.cmake, ibcoll_cuda from coll/cuda.)

if(TARGET ibcoll_cuda)
  set(ibc_gpu_env "IBCOLL_CUDA_LIB=$<TARGET_FILE:ibcoll_cuda>" "IBC_TEST_HAVE_CUDA=1")
else()
  set(ibc_gpu_env "IBCOLL_CUDA_LIB=" "IBC_TEST_HAVE_CUDA=0")
endif()

ibc_tap_test(test_mem_host
  SOURCES test_mem_host.c
  LIBS ibc_mem ${CMAKE_DL_LIBS}
  LABELS mem
  TIMEOUT 120
  ENV ${ibc_gpu_env})

ibc_tap_test(test_gpu_mem
  SOURCES test_gpu_mem.c
  LIBS ibc_mem
  LABELS gpu
  TIMEOUT 300
  ENV ${ibc_gpu_env})

# The value scheme (coll/vdata.h) as nvcc compiles it for the CUDA kernels, checked on the
# host against the same header compiled by gcc into dtype.c (ibc_dtype, which also puts
# coll/ on the include path).
if(IBCOLL_HAVE_CUDA)
  ibc_tap_test(test_cu_vdata
    SOURCES gpu/test_cu_vdata.cu
    LIBS ibc_dtype
    LABELS mem
    TIMEOUT 120)
  set_target_properties(test_cu_vdata PROPERTIES
    CUDA_ARCHITECTURES "${IBCOLL_CUDA_ARCHITECTURES}" CUDA_STANDARD 17)
endif()

add_executable(gpu_check gpu/gpu_check.c)
target_link_libraries(gpu_check PRIVATE ibc_mem ibc_common)
target_include_directories(gpu_check PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})

if(TARGET ibcoll_cuda)
  add_dependencies(test_mem_host ibcoll_cuda)
  add_dependencies(test_gpu_mem ibcoll_cuda)
  add_dependencies(gpu_check ibcoll_cuda)
endif()

# The gdr transport against the software HCA (tests/softhca.cmake defines ibcoll_softhca; this
# file is read first, so the library is named by generator expression).
if(IBCOLL_HAVE_VERBS)
  ibc_tap_test(test_gdr_tp
    SOURCES test_gdr_tp.c
    LIBS ibc_transports ibc_mem ${CMAKE_DL_LIBS}
    LABELS rdma
    TIMEOUT 300
    ENV "IBCOLL_IBVERBS_LIB=$<TARGET_FILE:ibcoll_softhca>" ${ibc_gpu_env})
  add_dependencies(test_gdr_tp ibcoll_softhca)
  if(TARGET ibcoll_cuda)
    add_dependencies(test_gdr_tp ibcoll_cuda)
  endif()
endif()
