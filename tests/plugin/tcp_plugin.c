/* SPDX-License-Identifier: MIT */
/*
 * tcp_plugin.c - libibcoll-net-tcpplug.so: the tcp transport compiled again as an external
 * plugin, to test the loader end to end. The shared object carries its own copy of the tcp
 * transport's files and of common/ (tests/plugin/CMakeLists.txt) and exports exactly one
 * symbol, ibcoll_transport_plugin, a vtable of the entries tcp_int.h declares (built with hidden
 * visibility and -Wl,--no-undefined, so it needs nothing from ibcoll).
 */
#include "tcp/tcp_int.h"

__attribute__((visibility("default"))) const struct ibc_tp_ops ibcoll_transport_plugin = {
    .abi_major = IBC_TP_ABI_MAJOR,
    .ops_size = sizeof(struct ibc_tp_ops),
    .name = "tcpplug",
    .description = "the tcp transport, loaded as a plugin (tests)",
    TCP_OPS_ENTRIES,
};
