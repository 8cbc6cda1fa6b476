#!/usr/bin/env bash
# Start the local cluster from the binaries install-deps.sh built.
#
#   e2e/cluster/up.sh controlplane [--fresh]   etcd, kube-apiserver, controller-manager, scheduler
#   e2e/cluster/up.sh full [--fresh]           plus containerd, kubelet, CNI bridge, kube-proxy,
#                                              CoreDNS and metrics-server: one node that runs pods
#
# All state lives in one folder: $BEREIT_CLUSTER_DIR (default ~/.cache/bereit/cluster).
# --fresh starts from an empty etcd. Prints the kubeconfig's path last; it is always also
# $STATE/kubeconfig. Stop with e2e/cluster/down.sh. Running it again while up is a no-op.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$CLUSTER_LIB_DIR/pki.sh"

MODE=${1:-}
[[ $MODE == controlplane || $MODE == full ]] || die "usage: up.sh controlplane|full [--fresh]"
FRESH=0
[[ ${2:-} == --fresh ]] && FRESH=1
[[ -n ${2:-} && $FRESH == 0 ]] && die "unknown argument '$2'"

# Seconds the HPA waits before scaling down (upstream: 5 min); short so tests see it.
HPA_DOWNSCALE=${BEREIT_HPA_DOWNSCALE_STABILIZATION:-20s}
CM_PORT=${BEREIT_CONTROLLER_MANAGER_PORT:-10257}
SCHEDULER_PORT=${BEREIT_SCHEDULER_PORT:-10259}

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b is missing: run e2e/cluster/install-deps.sh"
done
if [[ $MODE == full ]]; then
  ((EUID == 0)) || die "full mode runs a kubelet and changes the network: run it as root"
  for b in kubelet kube-proxy; do
    [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b is missing: run e2e/cluster/install-deps.sh"
  done
  for b in containerd runc ctr iptables ip; do
    command -v "$b" >/dev/null || die "$b is missing: run e2e/cluster/install-deps.sh"
  done
fi

START=$SECONDS
lock_state
mkdir -p "$STATE"/{run,logs}

# A full cluster includes the control plane; a control plane alone is restarted as full
# (the API server's address differs).
if [[ $MODE == controlplane && $(cat "$STATE/run/mode" 2>/dev/null) == full ]] && proc_alive kube-apiserver; then
  log "a full cluster is running; it includes the control plane"
  echo "$STATE/kubeconfig"
  exit 0
fi
all_running() {
  local name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler; do proc_alive "$name" || return 1; done
  if [[ $MODE == full ]]; then
    for name in containerd kubelet kube-proxy; do proc_alive "$name" || return 1; done
  fi
}
if [[ $(cat "$STATE/run/mode" 2>/dev/null) == "$MODE" ]] && ((FRESH == 0)) && all_running; then
  log "the $MODE cluster is running already"
  echo "$STATE/kubeconfig"
  exit 0
fi
if [[ -f $STATE/run/mode && $(cat "$STATE/run/mode") != "$MODE" ]] && proc_alive kube-apiserver; then
  log "a $(cat "$STATE/run/mode") cluster is running; restarting it as $MODE"
  BEREIT_STATE_LOCKED=1 "$CLUSTER_LIB_DIR/down.sh"
elif ((FRESH)) && { proc_alive etcd || proc_alive kube-apiserver; }; then
  log "--fresh: stopping the running cluster first"
  BEREIT_STATE_LOCKED=1 "$CLUSTER_LIB_DIR/down.sh"
fi
echo "$MODE" >"$STATE/run/mode"

if [[ $MODE == full ]]; then
  # Pods reach the API server and the kubelet at the bridge's address, which exists only on
  # this machine; in control-plane mode nothing but loopback is used.
  API_HOST=$NODE_IP
else
  API_HOST=127.0.0.1
fi
SERVER=https://$API_HOST:$APISERVER_PORT

ensure_pki
write_kubeconfig "$STATE/kubeconfig" "$SERVER" bereit-admin
write_kubeconfig "$PKI/controller-manager.kubeconfig" "$SERVER" system:kube-controller-manager
write_kubeconfig "$PKI/scheduler.kubeconfig" "$SERVER" system:kube-scheduler
export KUBECONFIG=$STATE/kubeconfig

# --- node network (full mode): a bridge whose address is the node's address -------------
setup_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The host reaches ClusterIPs through kube-proxy's DNAT; this route keeps a packet to a
  # ClusterIP without endpoints on the bridge instead of sending it off the machine.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # Pods talk to each other and to this machine, never beyond it; nothing from outside
  # reaches the node address. Own chains, so down.sh removes exactly what was added.
  iptables -N BEREIT-FORWARD 2>/dev/null || iptables -F BEREIT-FORWARD
  iptables -A BEREIT-FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -A BEREIT-FORWARD -i "$BRIDGE" -j REJECT
  iptables -A BEREIT-FORWARD -o "$BRIDGE" -j ACCEPT
  iptables -C FORWARD -j BEREIT-FORWARD 2>/dev/null || iptables -I FORWARD 1 -j BEREIT-FORWARD
  iptables -N BEREIT-INPUT 2>/dev/null || iptables -F BEREIT-INPUT
  iptables -A BEREIT-INPUT -i lo -j RETURN
  iptables -A BEREIT-INPUT -i "$BRIDGE" -j RETURN
  iptables -A BEREIT-INPUT -d "$CLUSTER_CIDR" -j DROP
  iptables -C INPUT -j BEREIT-INPUT 2>/dev/null || iptables -I INPUT 1 -j BEREIT-INPUT
}

# --- control plane ----------------------------------------------------------------------
start_etcd() {
  if ((FRESH)) && ! proc_alive etcd; then
    rm -rf "$STATE/etcd"
  fi
  require_ports etcd "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
  # --unsafe-no-fsync: a throwaway test cluster; much faster writes on a shared disk.
  start_proc etcd etcd --name bereit --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bereit=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --unsafe-no-fsync --log-level warn
  wait_for 30 etcd running_and etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" ||
    die "etcd did not start; see $STATE/logs/etcd.log"
}

start_apiserver() {
  require_ports kube-apiserver "$APISERVER_PORT"
  start_proc kube-apiserver kube-apiserver \
    --bind-address "$API_HOST" --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true --profiling=false
  wait_for 60 kube-apiserver running_and kube-apiserver curl -fsS --cacert "$PKI/ca.crt" "$SERVER/readyz" ||
    die "kube-apiserver did not become ready; see $STATE/logs/kube-apiserver.log"
}

start_controllers() {
  require_ports kube-controller-manager "$CM_PORT"
  require_ports kube-scheduler "$SCHEDULER_PORT"
  start_proc kube-controller-manager kube-controller-manager \
    --kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CM_PORT" --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-cidr "$CLUSTER_CIDR" --service-cluster-ip-range "$SERVICE_CIDR" \
    --horizontal-pod-autoscaler-sync-period 5s \
    --horizontal-pod-autoscaler-downscale-stabilization "$HPA_DOWNSCALE" \
    --profiling=false
  start_proc kube-scheduler kube-scheduler \
    --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false \
    --profiling=false
  # The controller-manager works once it has made the default namespace's ServiceAccount,
  # which every Pod needs.
  wait_for 60 kube-controller-manager running_and kube-controller-manager kubectl get serviceaccount default -n default ||
    die "kube-controller-manager did not start; see $STATE/logs/kube-controller-manager.log"
}

# --- node ----------------------------------------------------------------------------------
start_containerd() {
  local dir=$STATE/containerd
  mkdir -p "$dir" "$STATE/cni/net.d"
  write_file "$STATE/cni/net.d/10-bereit.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "bereit",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # A containerd of the node's own (the machine's other containerd belongs to dockerd).
  write_file "$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  # This VM withholds CAP_SYS_RESOURCE, so no process may lower its oom_score_adj; the
  # kubelet asks for -998 for every pod sandbox, which runc then fails to set. Clamp to 0.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
  start_proc containerd containerd --config "$dir/config.toml"
  wait_for 30 containerd node_ctr version || die "containerd did not start; see $STATE/logs/containerd.log"
}

# The node's system images come from docker (install-deps.sh built them); nothing is pulled.
load_system_images() {
  local missing=() image
  for image in "$PAUSE_IMAGE" "$COREDNS_IMAGE" "$METRICS_SERVER_IMAGE"; do
    node_ctr images ls -q | grep -qx "docker.io/$image" || missing+=("$image")
  done
  ((${#missing[@]} == 0)) && return
  "$CLUSTER_LIB_DIR/load-image.sh" "${missing[@]}"
}

start_kubelet() {
  local dir=$STATE/kubelet
  mkdir -p "$dir" "$STATE/pod-logs"
  write_kubeconfig "$PKI/kubelet.kubeconfig" "$SERVER" "system:node:$NODE_NAME"
  write_kubeconfig "$PKI/kube-proxy.kubeconfig" "$SERVER" system:kube-proxy
  write_file "$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM's kernel has cgroup v1 only; Kubernetes 1.35 refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$STATE/containerd/containerd.sock
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: $CLUSTER_DOMAIN
podLogsDir: $STATE/pod-logs
volumePluginDir: $dir/volume-plugins
failSwapOn: false
# Images cannot be pulled again here: never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
EOF
  start_proc kubelet kubelet --config "$STATE/kubelet-config.yaml" \
    --kubeconfig "$PKI/kubelet.kubeconfig" --root-dir "$dir" --cert-dir "$dir/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --oom-score-adj 0
}

# containerd's CRI server answers a little after its socket does (it first recovers the
# state of earlier runs), and a kubelet that asks before then exits at once ("server is not
# initialized yet" in its log). Start it again until it stays up and its health check passes.
kubelet_healthy() {
  proc_alive kubelet || start_kubelet
  running_and kubelet curl -fsS --max-time 2 http://127.0.0.1:10248/healthz
}

start_kube_proxy() {
  write_file "$STATE/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
oomScoreAdj: 0
# Leave the machine's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start_proc kube-proxy kube-proxy --config "$STATE/kube-proxy-config.yaml"
}

node_ready() {
  [[ $(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

apply_addons() {
  local f
  for f in "$CLUSTER_LIB_DIR"/addons/*.yaml; do
    sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@METRICS_SERVER_IMAGE@|$METRICS_SERVER_IMAGE|g" \
      -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" "$f" |
      kubectl apply --server-side --force-conflicts -f - >/dev/null
  done
  kubectl -n kube-system rollout status deployment/coredns --timeout=90s >/dev/null ||
    die "CoreDNS did not become ready: kubectl -n kube-system describe pods -l k8s-app=kube-dns"
  log "coredns is up"
  kubectl -n kube-system rollout status deployment/metrics-server --timeout=90s >/dev/null ||
    die "metrics-server did not become ready: kubectl -n kube-system describe pods -l k8s-app=metrics-server"
  log "metrics-server is up"
}

[[ $MODE == full ]] && setup_network
start_etcd
start_apiserver
if [[ $MODE == full ]]; then
  # The node starts while the controllers come up.
  start_containerd
  load_system_images
  start_kubelet
fi
start_controllers
if [[ $MODE == full ]]; then
  start_kube_proxy
  wait_for 90 kubelet kubelet_healthy || die "the kubelet did not stay up; see $STATE/logs/kubelet.log"
  wait_for 90 "node $NODE_NAME" node_ready || die "node did not become Ready; see $STATE/logs/kubelet.log"
  # Its health check passes once it has written the Services' rules: tests reach ClusterIPs.
  wait_for 90 kube-proxy running_and kube-proxy curl -fsS --max-time 2 http://127.0.0.1:10256/healthz ||
    die "kube-proxy did not become healthy; see $STATE/logs/kube-proxy.log"
  apply_addons
fi

log "$MODE cluster up in $((SECONDS - START)) s (state: $STATE)"
echo "$STATE/kubeconfig"
