#!/usr/bin/env bash
# A real Slurm cluster on staged hosts (hosts.sh): munged, slurmctld in this namespace on the
# bridge's address, one slurmd per staged host (../shared/DESIGN.md section 10). The node names
# resolve on the nodes (a hosts file mounted over /etc/hosts in the slurmds' mount namespaces).
#   slurm.sh up DIR PREFIX NET N   config, state, logs and sockets under DIR; nodes PREFIX1..N
#   slurm.sh down DIR              stop every daemon started from DIR
# srun and sinfo then need SLURM_CONF=DIR/slurm.conf. Exit 0 when every node is idle, 77 when
# Slurm or munge is not installed or a daemon cannot run here (the test skips, saying why from
# DIR/*.log), 1 on other failures.
set -uo pipefail
cmd=$1 dir=$2
sbin=/usr/sbin
stop() {
  local f
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.5
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    kill -9 "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}
case $cmd in
down) stop; exit 0 ;;
up) ;;
*) echo "usage: slurm.sh up DIR PREFIX NET N | down DIR" >&2; exit 2 ;;
esac
prefix=$3 net=$4 n=$5
for p in munged slurmctld slurmd; do
  [ -x "$sbin/$p" ] || { echo "slurm.sh: $sbin/$p is not installed (scripts/install-deps)" >&2; exit 77; }
done
[ -r /etc/munge/munge.key ] || { echo "slurm.sh: no /etc/munge/munge.key" >&2; exit 77; }
stop
mkdir -p "$dir/state" "$dir/spool" "$dir/tmp"
chmod 700 "$dir"
# munged wants its key, socket directory and log owned by the user it runs as and not writable
# by others
cp /etc/munge/munge.key "$dir/munge.key" && chmod 400 "$dir/munge.key"
"$sbin/munged" --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" \
  2>>"$dir/munged.log" || { echo "slurm.sh: munged does not start: $(tail -3 "$dir/munged.log")" >&2; exit 77; }
cores=$(nproc)
cat >"$dir/slurm.conf" <<CONF
ClusterName=ibctest
SlurmctldHost=$(hostname -s)($net.254)
MailProg=/bin/true
SlurmctldPort=$((27000 + RANDOM % 2000))
SlurmdPort=$((29500 + RANDOM % 400))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
TmpFS=$dir/tmp
NodeName=${prefix}[1-$n] NodeAddr=$net.[1-$n] CPUs=$cores State=UNKNOWN
PartitionName=test Nodes=${prefix}[1-$n] Default=YES MaxTime=10 State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF=$dir/slurm.conf
"$sbin/slurmctld" -i -f "$dir/slurm.conf" 2>>"$dir/slurmctld.log" ||
  { echo "slurm.sh: slurmctld does not start: $(tail -3 "$dir/slurmctld.log")" >&2; stop; exit 77; }
# the node names resolve on the nodes, as a cluster's DNS makes them: a hosts file of the
# staged addresses over /etc/hosts in each slurmd's mount namespace (and so its tasks')
{
  printf '127.0.0.1\tlocalhost\n'
  for ((i = 1; i <= n; i++)); do printf '%s.%d\t%s%d\n' "$net" "$i" "$prefix" "$i"; done
} >"$dir/hosts"
for ((i = 1; i <= n; i++)); do
  h=$prefix$i
  mkdir -p "$dir/spool/$h" "$dir/tmp-$h"
  # slurmd needs /sys/fs/cgroup, which `ip netns exec` hides; srun --mpi=pmix keeps per-step
  # files under TmpFS, which the nodes must not share: a private mount of TmpFS per node
  nsenter --net="/run/netns/$h" unshare --uts --mount --propagation private sh -c \
    "hostname $h && mount --bind '$dir/tmp-$h' '$dir/tmp' && mount --bind '$dir/hosts' /etc/hosts &&
     exec $sbin/slurmd -N $h -f '$dir/slurm.conf'" \
    2>>"$dir/slurmd-$h.log" ||
    { echo "slurm.sh: slurmd $h does not start: $(tail -3 "$dir/slurmd-$h.log")" >&2; stop; exit 77; }
done
# every node idle within 30 s
for ((t = 0; t < 60; t++)); do
  idle=$(timeout 2 sinfo -h -N -t idle -o %N 2>/dev/null | wc -l)
  [ "$idle" -ge "$n" ] && exit 0
  sleep 0.5
done
echo "slurm.sh: only $idle of $n nodes idle after 30 s:" >&2
timeout 2 sinfo -N -l >&2 || true
tail -n 5 "$dir"/slurm*.log >&2
stop
exit 1
