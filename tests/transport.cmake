# Transport tests: the tcp transport (test_tcp), the registry and the plugin loader (test_plugin,
# with the plugins built in tests/plugin/).
add_subdirectory(plugin)

ibc_tap_test(test_tcp
  SOURCES test_tcp.c
  LIBS ibc_transports
  LABELS transport
  TIMEOUT 300)
target_include_directories(test_tcp PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/plugin)

set(ibc_plugin_kinds tcpplug oldabi badabi short nullop nosym minsize)
set(ibc_plugin_env "")
foreach(name ${ibc_plugin_kinds})
  string(TOUPPER ${name} up)
  list(APPEND ibc_plugin_env "IBC_TEST_PLUGIN_${up}=$<TARGET_FILE:ibc_plug_${name}>")
endforeach()
ibc_tap_test(test_plugin
  SOURCES test_plugin.c
  LIBS ibc_transports
  LABELS transport
  TIMEOUT 120
  ENV ${ibc_plugin_env})
target_include_directories(test_plugin PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/plugin)
foreach(name ${ibc_plugin_kinds})
  add_dependencies(test_plugin ibc_plug_${name})
endforeach()
