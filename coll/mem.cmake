# Memory backends (mem.h): host and hostdev built in, cuda loaded at run time from
# libibcoll-cuda.so (coll/cuda/). Included from coll/CMakeLists.txt.
add_library(ibc_mem STATIC
  ${CMAKE_CURRENT_LIST_DIR}/mem.c
  ${CMAKE_CURRENT_LIST_DIR}/mem_host.c)
target_include_directories(ibc_mem PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(ibc_mem PUBLIC ibc_dtype ibc_common Threads::Threads ${CMAKE_DL_LIBS})
