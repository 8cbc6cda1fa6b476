# Shared settings and helpers for the e2e/cluster scripts. Sourced, not run.
# shellcheck shell=bash disable=SC2034  # the settings are used by the scripts that source this

CLUSTER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$CLUSTER_LIB_DIR/versions.env"

BEREIT_CACHE=${BEREIT_CACHE:-$HOME/.cache/bereit}
K8S_CACHE=$BEREIT_CACHE/k8s-$K8S_VERSION
BIN_DIR=$K8S_CACHE/bin
STATE=${BEREIT_CLUSTER_DIR:-$BEREIT_CACHE/cluster}

# Network of the one-node cluster. The bridge's own address is the node's address: pods
# reach the API server and the kubelet there, and it exists only on this machine.
NODE_NAME=${BEREIT_NODE_NAME:-bereit-node}
BRIDGE=bereit0
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=${BEREIT_APISERVER_PORT:-6443}
ETCD_CLIENT_PORT=${BEREIT_ETCD_PORT:-2379}
ETCD_PEER_PORT=$((ETCD_CLIENT_PORT + 1))

# Images built by install-deps.sh / base-image.sh (docker tags; containerd sees docker.io/...).
PAUSE_IMAGE=bereit/pause:$PAUSE_VERSION
COREDNS_IMAGE=bereit/coredns:$COREDNS_VERSION
METRICS_SERVER_IMAGE=bereit/metrics-server:$METRICS_SERVER_VERSION
DEBIAN_IMAGE=bereit/debian:$DEBIAN_SUITE
PYTHON_BASE_IMAGE=bereit/python-base:$DEBIAN_SUITE

export PATH="$BIN_DIR:$PATH"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
  log "$what is up"
}

# write_file FILE < content: replace FILE only when the content differs. Running components
# watch their files (kube-proxy exits when its configuration file changes), so a repeated
# up.sh must not touch them.
write_file() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
  else
    chmod 600 "$tmp"
    mv -f "$tmp" "$1"
  fi
}

# The containerd that dockerd talks to is not the node's; the node's has its own socket.
node_ctr() { ctr --address "$STATE/containerd/containerd.sock" --namespace k8s.io "$@"; }

# ensure_dockerd: start the machine's dockerd in the background unless one answers already.
# It is a machine service shared with image builds, so down.sh leaves it running.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || die "dockerd is not installed (run e2e/cluster/install-deps.sh)"
  mkdir -p "$BEREIT_CACHE/logs"
  log "starting dockerd (log: $BEREIT_CACHE/logs/dockerd.log)"
  nohup dockerd >>"$BEREIT_CACHE/logs/dockerd.log" 2>&1 </dev/null 9>&- &
  wait_for 60 dockerd docker info || die "dockerd did not start; see $BEREIT_CACHE/logs/dockerd.log"
}

# lock_state: one up.sh or down.sh at a time per state folder (tests of several sessions
# may share a cluster); released when the script exits.
lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 600 9 || die "another up.sh/down.sh holds $STATE/.lock"
}

# --- processes: each one's pid is in $STATE/run/NAME.pid, its log in $STATE/logs/NAME.log.

proc_pid() { cat "$STATE/run/$1.pid" 2>/dev/null || true; }

# proc_alive NAME: the recorded pid runs and is still the command that was started (a pid
# can be reused after a reboot or a crash).
proc_alive() {
  local pid exe
  pid=$(proc_pid "$1")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(cat "$STATE/run/$1.exe" 2>/dev/null) || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]
}

# start_proc NAME COMMAND...: run in its own session (so it outlives the shell that started
# it, and a terminal's Ctrl-C does not reach it), unless it is running already.
start_proc() {
  local name=$1
  shift
  if proc_alive "$name"; then
    log "$name is running already (pid $(proc_pid "$name"))"
    return
  fi
  mkdir -p "$STATE/run" "$STATE/logs"
  # 9>&-: the daemon must not inherit the state lock (see lock_state).
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/run/$name.pid"
  readlink -f "$(command -v "$1")" >"$STATE/run/$name.exe"
}

# require_ports NAME PORT...: before starting NAME, make sure nothing else listens on its
# ports. Another cluster's etcd on the same port would otherwise answer our health check
# and our API server would join the other cluster's data.
require_ports() {
  local name=$1 port
  shift
  proc_alive "$name" && return 0
  for port in "$@"; do
    if [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
      die "port $port (for $name) is in use by another program, perhaps another cluster; set BEREIT_APISERVER_PORT, BEREIT_ETCD_PORT, BEREIT_CONTROLLER_MANAGER_PORT, BEREIT_SCHEDULER_PORT (see e2e/README.md)"
    fi
  done
}

# running_and NAME COMMAND...: NAME's process is ours and alive, and COMMAND succeeds.
running_and() {
  local name=$1
  shift
  proc_alive "$name" && "$@"
}

# stop_proc NAME [SECONDS]: SIGTERM by pid, SIGKILL after SECONDS (default 10).
stop_proc() {
  local name=$1 grace=${2:-10} pid
  if proc_alive "$name"; then
    pid=$(proc_pid "$name")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$STATE/run/$name.pid" "$STATE/run/$name.exe"
}
