#!/usr/bin/env bash
# Stop the local cluster: every process up.sh started, by its recorded pid, then the pods'
# containers, mounts and network rules. The state folder stays (etcd data, certificates,
# images), so the next up.sh is warm; remove it to forget the cluster:
#
#   e2e/cluster/down.sh            stop
#   e2e/cluster/down.sh --purge    stop and delete $BEREIT_CLUSTER_DIR (~/.cache/bereit/cluster)
#
# dockerd is left running: it is the machine's, for building images.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PURGE=0
case ${1:-} in
  --purge) PURGE=1 ;;
  "") ;;
  -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

[[ -d $STATE ]] || { log "nothing to stop: $STATE does not exist"; exit 0; }
[[ -n ${BEREIT_STATE_LOCKED:-} ]] || lock_state

# Pods' containers: killed through the node's containerd, so their shims exit with them.
# containerd's CRI plugin deletes most exited tasks itself; delete the rest.
stop_containers() {
  proc_alive containerd || return 0
  local ids id left deadline=$((SECONDS + 15))
  ids=$(node_ctr tasks ls -q 2>/dev/null || true)
  [[ -n $ids ]] || return 0
  for id in $ids; do node_ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  while left=$(node_ctr tasks ls -q 2>/dev/null) && [[ -n $left ]] && ((SECONDS < deadline)); do
    for id in $left; do node_ctr tasks delete "$id" >/dev/null 2>&1 || true; done
    sleep 0.2
  done
  if [[ -n $left ]]; then log "containers still running: $left"; fi
  log "stopped $(wc -w <<<"$ids") containers"
}

# Mounts left under the state folder (pod volumes, container rootfs, network namespaces),
# deepest first.
unmount_state() {
  local m
  awk -v s="$STATE/" 'index($2, s) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
}

teardown_network() {
  command -v iptables >/dev/null || return 0
  [[ -x $BIN_DIR/kube-proxy ]] && kube-proxy --cleanup >/dev/null 2>&1 || true
  local chain parent
  for chain in BEREIT-FORWARD BEREIT-INPUT; do
    parent=${chain#BEREIT-}
    while iptables -D "$parent" -j "$chain" 2>/dev/null; do :; done
    iptables -F "$chain" 2>/dev/null && iptables -X "$chain" 2>/dev/null || true
  done
  # The kubelet's own chains, which it never removes.
  local table
  for table in filter nat mangle; do
    while iptables -t "$table" -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while iptables -t "$table" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      iptables -t "$table" -F "$chain" 2>/dev/null && iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$STATE/cni/ipam"
}

stop_proc kube-proxy
stop_proc kubelet
stop_containers
stop_proc containerd
# Clients of the API server first, all at once; etcd last.
stop_proc kube-scheduler &
stop_proc kube-controller-manager &
wait
stop_proc kube-apiserver 20
stop_proc etcd
# Only a full cluster owns the bridge and the rules; control planes in other state folders
# run beside it and must leave them alone.
if [[ $(cat "$STATE/run/mode" 2>/dev/null) == full ]]; then
  teardown_network
fi
unmount_state
rm -f "$STATE/run/mode"
if ((PURGE)); then
  rm -rf "$STATE"
  log "removed $STATE"
fi
log "cluster stopped"
