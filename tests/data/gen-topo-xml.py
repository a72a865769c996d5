#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the topology fixtures used by tests/test_topo.c (Python 3, standard library only).

    python3 tests/data/gen-topo-xml.py [OUTDIR]      (default: the directory of this script)

Writes hwloc v2 XML files describing machines we do not have, and small fake sysfs trees
(IBCOLL_SYSFS_ROOT) for the port-state and PCIe-link checks:

  dgx-h100.xml             DGX H100-class node: 2 sockets x 56 cores x 2 threads, one NUMA node
                           per socket; 8 H100 SXM GPUs, each beside one ConnectX-7 under its own
                           PCIe switch (its own root complex), 4 pairs per socket; 2 more
                           ConnectX-7 for storage, one per socket, straight on a root port.
                           NIC names follow bus order, so the storage NICs (mlx5_3, mlx5_8) sit
                           between compute NICs and the right pairing is not the identity.
  topo-server-4gpu.xml     2-socket server with 4 GPUs and 4 NICs, all NICs in socket-0 slots:
                           GPU0-mlx5_0 PIX, GPU1-mlx5_1 PXB (nested switch), GPU2/GPU3 on
                           socket 1 with no NIC (SYS).
  topo-gpu-nonic.xml       1 socket, 2 NVIDIA GPUs (classes 0302 and 0300), an Ethernet NIC, no
                           RDMA NIC.
  topo-nogpu-nonic.xml     1 socket, an Ethernet NIC and an NVMe drive: no GPU, no RDMA NIC.
  topo-malformed.xml       dgx-h100.xml cut off in the middle of an element.
  sysfs-dgx-healthy/       ports and PCIe links of dgx-h100.xml, all as they should be (GPU0 idles
                           at 2.5 GT/s, which is normal for a GPU; the storage NIC mlx5_3 has its
                           port DOWN, which is not a compute NIC and must not warn).
  sysfs-dgx-bad/           the same with faults: mlx5_1 port DOWN, mlx5_2 at 200 Gb/s (HDR) where
                           the others run 400, GPU3 trained at x8 of x16, mlx5_5 at 16 of 32 GT/s.

The bus numbers and the layout are our own, modelled on the public description of the DGX H100
(each GPU shares a PCIe switch with one NIC, 4 pairs per socket).
"""
import os
import shutil
import sys

NV_H100_SXM = (0x10DE, 0x2330, 0x0302)
NV_H100_PCIE = (0x10DE, 0x2331, 0x0302)
NV_RTX = (0x10DE, 0x2684, 0x0300)
MLX_CX7 = (0x15B3, 0x1021, 0x0207)
MLX_CX6 = (0x15B3, 0x101B, 0x0207)
INTEL_E810 = (0x8086, 0x1593, 0x0200)
NVME = (0x144D, 0xA80A, 0x0108)
PLX_SWITCH = (0x1000, 0xC030, 0x0604)
ROOT_PORT = (0x8086, 0x352A, 0x0604)


def cpuset(bits):
    """hwloc bitmap string: 32-bit words, most significant first, e.g. 0x000000ff,0xffffffff."""
    if not bits:
        return "0x0"
    value = 0
    for b in bits:
        value |= 1 << b
    words = []
    while value:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
    return ",".join("0x%08x" % w for w in reversed(words))


class Gen:
    def __init__(self):
        self.gp = 0
        self.lines = []

    def gpi(self):
        self.gp += 1
        return self.gp

    def out(self, depth, text):
        self.lines.append("  " * depth + text)


def sets(pus, nodes):
    return ('cpuset="%s" complete_cpuset="%s" nodeset="%s" complete_nodeset="%s"'
            % (cpuset(pus), cpuset(pus), cpuset(nodes), cpuset(nodes)))


def busid(bus, dev=0, fn=0):
    return "0000:%02x:%02x.%x" % (bus, dev, fn)


def pci_type(ids, rev=0):
    vendor, device, cls = ids
    return "%04x [%04x:%04x] [%04x:%04x] %02x" % (cls, vendor, device, vendor, 0x0001, rev)


# A PCI tree node: ("hostbridge", lo, hi, children) | ("bridge", bus_id, (sec, sub), ids, children)
# | ("dev", bus_id, ids, osdevs, gbps). osdevs: list of (name, osdev_type, infos).
def emit_io(g, depth, node, bdepth=0):
    kind = node[0]
    if kind == "hostbridge":
        _, lo, hi, children = node
        g.out(depth, '<object type="Bridge" gp_index="%d" bridge_type="0-1" depth="0" '
              'bridge_pci="0000:[%02x-%02x]">' % (g.gpi(), lo, hi))
        for c in children:
            emit_io(g, depth + 1, c, 1)
        g.out(depth, "</object>")
    elif kind == "bridge":
        _, bid, (sec, sub), ids, children = node
        g.out(depth, '<object type="Bridge" gp_index="%d" bridge_type="1-1" depth="%d" '
              'bridge_pci="0000:[%02x-%02x]" pci_busid="%s" pci_type="%s" '
              'pci_link_speed="63.015385">' % (g.gpi(), bdepth, sec, sub, bid, pci_type(ids)))
        for c in children:
            emit_io(g, depth + 1, c, bdepth + 1)
        g.out(depth, "</object>")
    else:
        _, bid, ids, osdevs, gbps = node
        g.out(depth, '<object type="PCIDev" gp_index="%d" pci_busid="%s" pci_type="%s" '
              'pci_link_speed="%.6f">' % (g.gpi(), bid, pci_type(ids, 0xA1), gbps))
        for name, otype, infos in osdevs:
            g.out(depth + 1, '<object type="OSDev" gp_index="%d" name="%s" osdev_type="%d">'
                  % (g.gpi(), name, otype))
            for k, v in infos:
                g.out(depth + 2, '<info name="%s" value="%s"/>' % (k, v))
            g.out(depth + 1, "</object>")
        g.out(depth, "</object>")


def mlx(bid, ids, index, guid):
    osdevs = [("mlx5_%d" % index, 3, [("NodeGUID", guid), ("SysImageGUID", guid),
                                      ("Port1State", "4"), ("Port1LID", "0x%x" % (index + 1)),
                                      ("Port1LMC", "0")]),
              ("ibp%ds0" % int(bid[5:7], 16), 2, [("Port", "1")])]
    return ("dev", bid, ids, osdevs, 63.015385)


def gpu(bid, ids):
    return ("dev", bid, ids, [], 63.015385)


def machine_xml(hostname, sockets, io_of_socket, threads=2):
    """sockets: list of core counts; PU numbering as Linux on Intel: first threads of all cores,
    then second threads."""
    g = Gen()
    ncores = sum(sockets)
    socket_pus = []
    first = 0
    for n in sockets:
        pus = []
        for t in range(threads):
            pus += [t * ncores + first + c for c in range(n)]
        socket_pus.append(sorted(pus))
        first += n
    all_pus = sorted(p for s in socket_pus for p in s)
    all_nodes = list(range(len(sockets)))
    g.out(0, '<?xml version="1.0" encoding="UTF-8"?>')
    g.out(0, '<!DOCTYPE topology SYSTEM "hwloc2.dtd">')
    g.out(0, '<topology version="2.0">')
    g.out(1, '<object type="Machine" os_index="0" %s allowed_cpuset="%s" allowed_nodeset="%s" '
          'gp_index="%d">' % (sets(all_pus, all_nodes), cpuset(all_pus), cpuset(all_nodes),
                              g.gpi()))
    for k, v in (("Backend", "Linux"), ("OSName", "Linux"), ("HostName", hostname),
                 ("Architecture", "x86_64"), ("Generator", "ibcoll tests/data/gen-topo-xml.py")):
        g.out(2, '<info name="%s" value="%s"/>' % (k, v))
    first = 0
    for s, n in enumerate(sockets):
        pus = socket_pus[s]
        g.out(2, '<object type="Package" os_index="%d" %s gp_index="%d">'
              % (s, sets(pus, [s]), g.gpi()))
        g.out(3, '<info name="CPUVendor" value="GenuineIntel"/>')
        g.out(3, '<info name="CPUModel" value="Fixture Xeon %d-core"/>' % n)
        g.out(3, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
              'local_memory="%d"/>' % (s, sets(pus, [s]), g.gpi(), 1 << 39))
        for c in range(n):
            core = first + c
            cpus = [t * ncores + core for t in range(threads)]
            g.out(3, '<object type="Core" os_index="%d" %s gp_index="%d">'
                  % (core, sets(cpus, [s]), g.gpi()))
            for p in cpus:
                g.out(4, '<object type="PU" os_index="%d" %s gp_index="%d"/>'
                      % (p, sets([p], [s]), g.gpi()))
            g.out(3, "</object>")
        for hb in io_of_socket[s]:
            emit_io(g, 3, hb)
        g.out(2, "</object>")
        first += n
    g.out(1, "</object>")
    g.out(0, "</topology>")
    return "\n".join(g.lines) + "\n"


# --- DGX H100 class -------------------------------------------------------------------------
# Each pair: host bridge [b, b+f] -> root port b:01.0 -> switch upstream port (b+1):00.0 ->
# downstream ports (b+2):00.0 (GPU at (b+3):00.0) and (b+2):01.0 (NIC at (b+4):00.0).
DGX_PAIRS = [[0x10, 0x20, 0x30, 0x50], [0x90, 0xA0, 0xB0, 0xD0]]
DGX_STORAGE = [0x40, 0xC0]


def dgx_layout():
    """Returns (io_of_socket, gpus, nics): gpus/nics are lists of (name, busid) in bus order."""
    entries = []  # (bus, kind, socket)
    for s in range(2):
        for b in DGX_PAIRS[s]:
            entries.append((b, "pair", s))
        entries.append((DGX_STORAGE[s], "storage", s))
    entries.sort()
    io = [[], []]
    gpus, nics = [], []
    for b, kind, s in entries:
        if kind == "pair":
            g_bid, n_bid = busid(b + 3), busid(b + 4)
            gpus.append(("GPU%d" % len(gpus), g_bid))
            nic = mlx(n_bid, MLX_CX7, len(nics), "0x%016x" % (0xB83FD20300A00000 + b))
            nics.append(("mlx5_%d" % len(nics), n_bid))
            sw = ("bridge", busid(b + 1), (b + 2, b + 4), PLX_SWITCH, [
                ("bridge", busid(b + 2, 0), (b + 3, b + 3), PLX_SWITCH, [gpu(g_bid, NV_H100_SXM)]),
                ("bridge", busid(b + 2, 1), (b + 4, b + 4), PLX_SWITCH, [nic]),
            ])
            rp = ("bridge", busid(b, 1), (b + 1, b + 4), ROOT_PORT, [sw])
        else:
            n_bid = busid(b + 1)
            nic = mlx(n_bid, MLX_CX7, len(nics), "0x%016x" % (0xB83FD20300A00000 + b))
            nics.append(("mlx5_%d" % len(nics), n_bid))
            rp = ("bridge", busid(b, 1), (b + 1, b + 1), ROOT_PORT, [nic])
        io[s].append(("hostbridge", b, b + 0xF, [rp]))
    return io, gpus, nics


def server4_layout():
    s0 = [
        ("hostbridge", 0x00, 0x1F, [
            ("bridge", busid(0x00, 1), (0x01, 0x04), ROOT_PORT, [
                ("bridge", busid(0x01), (0x02, 0x04), PLX_SWITCH, [
                    ("bridge", busid(0x02, 0), (0x03, 0x03), PLX_SWITCH,
                     [gpu(busid(0x03), NV_H100_PCIE)]),
                    ("bridge", busid(0x02, 1), (0x04, 0x04), PLX_SWITCH,
                     [mlx(busid(0x04), MLX_CX6, 0, "0x0c42a10300000004")]),
                ])])]),
        ("hostbridge", 0x20, 0x3F, [
            ("bridge", busid(0x20, 1), (0x21, 0x26), ROOT_PORT, [
                ("bridge", busid(0x21), (0x22, 0x26), PLX_SWITCH, [
                    ("bridge", busid(0x22, 0), (0x23, 0x23), PLX_SWITCH,
                     [gpu(busid(0x23), NV_H100_PCIE)]),
                    ("bridge", busid(0x22, 1), (0x24, 0x26), PLX_SWITCH, [
                        ("bridge", busid(0x24), (0x25, 0x26), PLX_SWITCH, [
                            ("bridge", busid(0x25), (0x26, 0x26), PLX_SWITCH,
                             [mlx(busid(0x26), MLX_CX6, 1, "0x0c42a10300000026")]),
                        ])]),
                ])]),
            ("bridge", busid(0x20, 2), (0x27, 0x27), ROOT_PORT,
             [mlx(busid(0x27), MLX_CX6, 2, "0x0c42a10300000027")]),
            ("bridge", busid(0x20, 3), (0x28, 0x28), ROOT_PORT,
             [mlx(busid(0x28), MLX_CX6, 3, "0x0c42a10300000028")]),
        ]),
    ]
    s1 = [
        ("hostbridge", 0x80, 0x9F, [
            ("bridge", busid(0x80, 1), (0x81, 0x86), ROOT_PORT, [
                ("bridge", busid(0x81), (0x82, 0x86), PLX_SWITCH, [
                    ("bridge", busid(0x82), (0x83, 0x86), PLX_SWITCH, [
                        ("bridge", busid(0x83), (0x84, 0x86), PLX_SWITCH, [
                            ("bridge", busid(0x84, 0), (0x85, 0x85), PLX_SWITCH,
                             [gpu(busid(0x85), NV_H100_PCIE)]),
                            ("bridge", busid(0x84, 1), (0x86, 0x86), PLX_SWITCH,
                             [gpu(busid(0x86), NV_H100_PCIE)]),
                        ])])])])]),
    ]
    return [s0, s1]


def eth(bid):
    return ("dev", bid, INTEL_E810, [("eth0", 2, [("Address", "02:00:00:00:00:01")])], 15.75)


def gpu_nonic_layout():
    return [[("hostbridge", 0x00, 0x3F, [
        ("bridge", busid(0x00, 1), (0x01, 0x01), ROOT_PORT, [gpu(busid(0x01), NV_H100_PCIE)]),
        ("bridge", busid(0x00, 2), (0x02, 0x02), ROOT_PORT, [gpu(busid(0x02), NV_RTX)]),
        ("bridge", busid(0x00, 3), (0x03, 0x03), ROOT_PORT, [eth(busid(0x03))]),
    ])]]


def nogpu_layout():
    return [[("hostbridge", 0x00, 0x3F, [
        ("bridge", busid(0x00, 1), (0x01, 0x01), ROOT_PORT, [eth(busid(0x01))]),
        ("bridge", busid(0x00, 2), (0x02, 0x02), ROOT_PORT,
         [("dev", busid(0x02), NVME, [("nvme0n1", 0, [("Size", "1000204886")])], 7.88)]),
    ])]]


# --- fake sysfs ----------------------------------------------------------------------------
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def sysfs_tree(root, gpus, nics, faults):
    if os.path.isdir(root):
        shutil.rmtree(root)
    for name, _ in nics:
        port = faults.get((name, "port"), ("4: ACTIVE", "400 Gb/sec (4X NDR)"))
        write(os.path.join(root, "class/infiniband", name, "ports/1/state"), port[0])
        write(os.path.join(root, "class/infiniband", name, "ports/1/rate"), port[1])
    for name, bid in gpus + nics:
        link = faults.get((name, "pcie"), ("32.0 GT/s PCIe", "32.0 GT/s PCIe", "16", "16"))
        d = os.path.join(root, "bus/pci/devices", bid)
        write(os.path.join(d, "current_link_speed"), link[0])
        write(os.path.join(d, "max_link_speed"), link[1])
        write(os.path.join(d, "current_link_width"), link[2])
        write(os.path.join(d, "max_link_width"), link[3])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    dgx_io, dgx_gpus, dgx_nics = dgx_layout()
    files = {
        "dgx-h100.xml": machine_xml("dgx-h100", [56, 56], dgx_io),
        "topo-server-4gpu.xml": machine_xml("server-4gpu", [16, 16], server4_layout(), 1),
        "topo-gpu-nonic.xml": machine_xml("gpu-nonic", [8], gpu_nonic_layout()),
        "topo-nogpu-nonic.xml": machine_xml("nogpu-nonic", [4], nogpu_layout()),
    }
    dgx = files["dgx-h100.xml"]
    cut = dgx.index("<object type=\"PCIDev\"")
    files["topo-malformed.xml"] = dgx[:cut + 40] + "\n"
    for name, text in files.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(text)
    healthy = {
        ("GPU0", "pcie"): ("2.5 GT/s PCIe", "32.0 GT/s PCIe", "16", "16"),
        ("mlx5_3", "port"): ("1: DOWN", "40 Gb/sec (4X QDR)"),
    }
    bad = dict(healthy)
    bad.update({
        ("mlx5_1", "port"): ("1: DOWN", "40 Gb/sec (4X QDR)"),
        ("mlx5_2", "port"): ("4: ACTIVE", "200 Gb/sec (4X HDR)"),
        ("GPU3", "pcie"): ("32.0 GT/s PCIe", "32.0 GT/s PCIe", "8", "16"),
        ("mlx5_5", "pcie"): ("16.0 GT/s PCIe", "32.0 GT/s PCIe", "16", "16"),
    })
    sysfs_tree(os.path.join(outdir, "sysfs-dgx-healthy"), dgx_gpus, dgx_nics, healthy)
    sysfs_tree(os.path.join(outdir, "sysfs-dgx-bad"), dgx_gpus, dgx_nics, bad)


if __name__ == "__main__":
    main()
