#!/usr/bin/env python3
# Write the binary seed inputs of tests/fuzz/corpus (docs/fuzzing.md): valid bootstrap
# messages, tcp hellos, handles and framed streams, options messages and command lines, in the
# layouts the harnesses read (see the comment at the top of each fuzz_<name>.c). The text seeds
# (CSV, cluster files, XML) are copies of tests/data fixtures. Run from anywhere; rewrites the
# files it owns (gen-*).
import os
import shutil
import struct

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, '..', 'data')


def put(name, fname, blob):
    d = os.path.join(here, 'corpus', name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), 'wb') as f:
        f.write(blob)


def copy(name, src):
    d = os.path.join(here, 'corpus', name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(data, src), os.path.join(d, src))


# bootstrap/boot_wire.h: host order (little endian here)
BOOT_MAGIC = 0x69624253


def peer(rank, nranks, host, addr, port):
    return struct.pack('<iiii64s64sH6x', rank, nranks, 1000 + rank, 0, host.encode(),
                       addr.encode(), port)


def table(status, nranks, job, msg, peers):
    return struct.pack('<ii40s400s', status, nranks, job.encode(), msg.encode()) + b''.join(peers)


put('boot', 'gen-hdr', bytes([3]) + struct.pack('<IiIIQ', BOOT_MAGIC, 2, 1 << 24, 0, 152))
put('boot', 'gen-hello', bytes([0x40 | 3]) + peer(1, 4, 'node-a', '10.0.0.2', 40001))
peers = [peer(i, 4, 'node-%d' % (i // 2), '10.0.0.%d' % (i + 1), 40000 + i) for i in range(4)]
put('boot', 'gen-table', bytes([0x80 | 3]) + table(0, 4, '0123456789abcdef', '', peers))
put('boot', 'gen-table-refused',
    bytes([0x80 | 3]) + table(-22, 4, '', 'rank 5 (host x) joined twice or is out of range', []))

# transports/tcp/tcp_int.h: network order
TCP_MAGIC = 0x49424354
nonce = b'\x11\x22\x33\x44\x55\x66\x77\x88'
hello = struct.pack('>IHH', TCP_MAGIC, 1, 1) + nonce
put('tcp', 'gen-hello', bytes([0, 0]) + nonce + hello)
ack = struct.pack('>IHH', TCP_MAGIC, 1, 2) + nonce
put('tcp', 'gen-ack', bytes([0, 1]) + nonce + ack)
h4 = struct.pack('>IHHHHI', TCP_MAGIC, 1, 4, 40000, 0, 0) + nonce + bytes([10, 0, 0, 1]) + \
    bytes(12) + b'eth0'.ljust(16, b'\0')
put('tcp', 'gen-handle4', bytes([1]) + h4)
h6 = struct.pack('>IHHHHI', TCP_MAGIC, 1, 6, 40000, 0, 2) + nonce + \
    bytes([0xfe, 0x80] + [0] * 13 + [1]) + b'ib0'.ljust(16, b'\0')
put('tcp', 'gen-handle6', bytes([1]) + h6)


def frame(tag, payload):
    return struct.pack('>IIQ', tag, 0, len(payload)) + payload


# mode 2: 3 receives of 64, 16 and 32 bytes, tags 7, 8, 9; the second message too large
spec = bytes([2, 4, 7, 1, 8, 2, 9])
put('tcp', 'gen-stream', bytes([2]) + spec +
    frame(7, b'a' * 60) + frame(8, b'b' * 40) + frame(9, b'c' * 32))
put('tcp', 'gen-stream-mismatch', bytes([2]) + bytes([1, 4, 7, 4, 8]) + frame(9, b'x' * 10))


# bench/opts_msg.h, version 1: little endian
def u32(v): return struct.pack('<I', v)
def u64(v): return struct.pack('<Q', v & (2**64 - 1))
def b(v): return bytes([1 if v else 0])
def s(v): return u32(len(v)) + v.encode()
def lst(v): return u32(len(v)) + b''.join(u32(x) for x in v)


def optmsg(sendrecv=False, transport='', mem='host'):
    body = (b(sendrecv) + u64(8) + u64(32 << 20) + u64(2) + u64(0) + u64(20) + u64(5) + u64(1) +
            lst([7]) + lst([0]) + lst([] if sendrecv else [0, 1]) + b(True) + b(True) + u64(2) +
            b(False) + u64(0) + u64(16) + b(False) + s(transport) + u64(4) + u64(1) + s(mem) +
            u64(60) + s('0123456789abcdef') + s('2026-01-01T00:00:00Z') +
            s('ibcoll-results/x'))
    return u32(0x4f434249) + u32(1) + u32(12 + len(body)) + body


put('optmsg', 'gen-allreduce', optmsg())
put('optmsg', 'gen-sendrecv', optmsg(True, 'tcp', 'hostdev'))


def argv(cmd, *args):
    return bytes([cmd]) + b'\0'.join(a.encode() for a in args)


put('opts', 'gen-allreduce', argv(0, '-b', '8', '-e', '1M', '-f', '2', '-d', 'float,half',
                                  '-o', 'sum,max', '--algo', 'ring,tree', '-n', '10'))
put('opts', 'gen-sendrecv', argv(1, '--window', '8', '--bidir', '-b', '1K', '-e', '64K',
                                 '-i', '1K', '--transport', 'tcp', '--mem', 'hostdev'))
put('opts', 'gen-launch', argv(0, '--np', '4', '--timeout', '30', '--bind', 'off', '--nic',
                               'mlx5_0:1', '--gpu', '1', '--placement', 'in', '--channels', '4',
                               '--chunk', '256K', '--depth', '8', '--qps', '2', '--out', 'x'))
put('opts', 'gen-help', argv(0, '--help'))

for f in ('results-calibrate.csv', 'published.csv'):
    copy('csv', f)
put('csv', 'gen-quoted.csv', b'a,"b,c","d""e"\r\n1,"x\ny",\n"",2,3\n')
for f in ('cluster-dgx-a100-hdr.conf', 'cluster-h100-roce-4nic.conf'):
    copy('cluster', f)
put('cluster', 'gen-base.conf', b'base = h100-ndr\nname = mine  # a comment\n\nmax_tiers = 2\n')
for f in ('topo-gpu-nonic.xml', 'topo-nogpu-nonic.xml', 'topo-server-4gpu.xml'):
    copy('topo', f)
