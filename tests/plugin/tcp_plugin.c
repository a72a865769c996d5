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
    .init = tcp__init,
    .devices = tcp__devices,
    .get_props = tcp__get_props,
    .listen = tcp__listen,
    .connect = tcp__connect,
    .accept = tcp__accept,
    .reg_mr = tcp__reg_mr,
    .dereg_mr = tcp__dereg_mr,
    .post_send = tcp__post_send,
    .post_recv = tcp__post_recv,
    .test = tcp__test,
    .close_send = tcp__close_send,
    .close_recv = tcp__close_recv,
    .close_listen = tcp__close_listen,
    .fini = tcp__fini,
    .last_error = tcp__last_error,
    .epoch = tcp__epoch,
    .wait = tcp__wait,
    .port_counters = tcp__port_counters,
};
