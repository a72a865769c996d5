#!/usr/bin/env bash
# Staged hosts for the tests (../shared/DESIGN.md section 10): network namespaces on one bridge,
# each a "host" with its own address; what runs in one gets its own hostname through
# `unshare --uts` (see rsh).
#   hosts.sh up PREFIX NET N   namespaces PREFIX1..PREFIXN at NET.1..NET.N/24 (NET: 3 octets),
#                              bridge PREFIXbr at NET.254 in this namespace
#   hosts.sh down PREFIX N     remove them (also what a killed test left)
# Exit 0, or 77 when namespaces cannot be made here (not root, no ip, no veth): the test skips.
set -euo pipefail
cmd=$1 prefix=$2
down() {
  local n=$1 i
  for ((i = 1; i <= n; i++)); do ip netns del "$prefix$i" 2>/dev/null || true; done
  ip link del "${prefix}br" 2>/dev/null || true
}
case $cmd in
up)
  net=$3 n=$4
  [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null || exit 77
  down "$n"
  ip link add "${prefix}br" type bridge 2>/dev/null || exit 77
  ip addr add "$net.254/24" dev "${prefix}br"
  ip link set "${prefix}br" up
  for ((i = 1; i <= n; i++)); do
    h=$prefix$i
    ip netns add "$h"
    ip link add "${prefix}v$i" type veth peer name "${prefix}p$i" || { down "$n"; exit 77; }
    ip link set "${prefix}v$i" netns "$h"
    ip link set "${prefix}p$i" master "${prefix}br" up
    ip -n "$h" addr add "$net.$i/24" dev "${prefix}v$i"
    ip -n "$h" link set "${prefix}v$i" up
    ip -n "$h" link set lo up
    ip -n "$h" route add default via "$net.254"
  done
  ;;
down) down "$3" ;;
*) echo "usage: hosts.sh up PREFIX NET N | down PREFIX N" >&2; exit 2 ;;
esac
