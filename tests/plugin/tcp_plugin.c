/* SPDX-License-Identifier: MIT */
/*
 * tcp_plugin.c - libibcoll-net-tcpplug.so: the tcp transport compiled again as an external
 * plugin, to test the loader end to end. The shared object carries its own copy of tcp.c and
 * ibc_common.c and exports exactly one symbol, ibcoll_transport_plugin (built with hidden
 * visibility and -Wl,--no-undefined, so it needs nothing from ibcoll).
 */
#include "../../transports/tcp/tcp.c"

__attribute__((visibility("default"))) const struct ibc_tp_ops ibcoll_transport_plugin = {
    .abi_major = IBC_TP_ABI_MAJOR,
    .ops_size = sizeof(struct ibc_tp_ops),
    .name = "tcpplug",
    .description = "the tcp transport, loaded as a plugin (tests)",
    .init = tcp_init,
    .devices = tcp_devices,
    .get_props = tcp_get_props,
    .listen = tcp_listen,
    .connect = tcp_connect,
    .accept = tcp_accept,
    .reg_mr = tcp_reg_mr,
    .dereg_mr = tcp_dereg_mr,
    .post_send = tcp_post_send,
    .post_recv = tcp_post_recv,
    .test = tcp_test,
    .close_send = tcp_close_send,
    .close_recv = tcp_close_recv,
    .close_listen = tcp_close_listen,
    .fini = tcp_fini,
    .last_error = tcp_last_error,
    .epoch = tcp_epoch,
    .wait = tcp_wait,
    .port_counters = tcp_port_counters,
};
