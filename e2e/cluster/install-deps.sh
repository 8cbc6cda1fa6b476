#!/usr/bin/env bash
# Install what the local cluster needs and build the upstream binaries and images it runs.
#
#   e2e/cluster/install-deps.sh [--no-apt] [--no-images] [PART...]
#
# PART is any of: apt helm k8s coredns metrics-server pause images (default: all, helm
# first). Everything built lands in ~/.cache/bereit/k8s-<version>/bin (see bin-path.sh),
# stamped with its version, so a second run builds nothing. Non-interactive and idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
  docker.io containerd runc containernetworking-plugins iptables conntrack socat ethtool
  iproute2 util-linux kmod debootstrap ca-certificates openssl curl
)

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && { log "apt packages: all installed"; return; }
  log "apt-get install ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# go_build NAME VERSION MODULE_DIR LDFLAGS PACKAGE: build PACKAGE into BIN_DIR/NAME unless
# the stamp for NAME at VERSION is there. Builds into a temporary file, then renames,
# so an interrupted build never leaves a half-written binary behind.
go_build() {
  local out=$1 version=$2 dir=$3 ldflags=$4 package=$5
  local stamp="$BIN_DIR/.built-$out-$version"
  if [[ -e $stamp && -x $BIN_DIR/$out ]]; then
    log "$out $version: cached"
    return
  fi
  log "building $out $version (from $package)"
  local start=$SECONDS
  (
    cd "$CLUSTER_LIB_DIR/build/$dir"
    CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
      go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN_DIR/.$out.tmp" "$package"
  )
  mv -f "$BIN_DIR/.$out.tmp" "$BIN_DIR/$out"
  rm -f "$BIN_DIR"/.built-"$out"-*
  touch "$stamp"
  log "built $out in $((SECONDS - start)) s"
}

build_helm() {
  go_build helm "$HELM_VERSION" helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  log "helm: $BIN_DIR/helm"
}

# Version stamps that `kubectl version` and the API server's /version report; without them
# they say v0.0.0 and version-aware clients (helm's kubeVersion checks) misbehave.
k8s_ldflags() {
  local v=${K8S_VERSION#v} x pkg
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$x"
}

build_k8s() {
  local flags cmd
  flags=$(k8s_ldflags)
  local etcd_flags="-X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}"
  # One component after another, control plane first (usable before the node parts are
  # built); each later build reuses the packages compiled before it.
  go_build kube-apiserver "$K8S_VERSION" k8s "$flags" k8s.io/kubernetes/cmd/kube-apiserver
  go_build etcd "$ETCD_VERSION" k8s "$etcd_flags" go.etcd.io/etcd/server/v3
  for cmd in kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    go_build "$cmd" "$K8S_VERSION" k8s "$flags" "k8s.io/kubernetes/cmd/$cmd"
  done
  go_build etcdctl "$ETCD_VERSION" k8s "$etcd_flags" go.etcd.io/etcd/etcdctl/v3
}

build_coredns() {
  go_build coredns "$COREDNS_VERSION" coredns "" .
}

build_metrics_server() {
  go_build metrics-server "$METRICS_SERVER_VERSION" metrics-server \
    "-X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
}

build_pause() {
  go_build pause "$PAUSE_VERSION" pause "" .
}

# scratch_image TAG BINARY: an image holding one static binary as its entrypoint. FROM scratch
# needs nothing pulled.
scratch_image() {
  local tag=$1 binary=$2
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "image $tag: cached"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  cp "$BIN_DIR/$binary" "$ctx/$binary"
  printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$binary" "$binary" "$binary" >"$ctx/Dockerfile"
  log "building image $tag"
  # The classic builder: Debian's docker has no buildx. Its deprecation notice is noise.
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" 2>&1); then
    echo "$out" >&2
    die "building image $tag failed"
  fi
  rm -rf "$ctx"
}

build_images() {
  ensure_dockerd
  scratch_image "$PAUSE_IMAGE" pause
  scratch_image "$COREDNS_IMAGE" coredns
  scratch_image "$METRICS_SERVER_IMAGE" metrics-server
}

main() {
  local apt=1 images=1 parts=()
  while (($#)); do
    case $1 in
      --no-apt) apt=0 ;;
      --no-images) images=0 ;;
      -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
      apt | helm | k8s | coredns | metrics-server | pause | images) parts+=("$1") ;;
      *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
  done
  if ((${#parts[@]} == 0)); then
    parts=(helm k8s pause coredns metrics-server)
    ((apt)) && parts=(apt "${parts[@]}")
    ((images)) && parts+=(images)
  fi
  command -v go >/dev/null || die "go is not on PATH (Go 1.25 or newer is needed)"
  mkdir -p "$BIN_DIR"
  local start=$SECONDS part
  for part in "${parts[@]}"; do
    case $part in
      apt) install_apt ;;
      helm) build_helm ;;
      k8s) build_k8s ;;
      coredns) build_coredns ;;
      metrics-server) build_metrics_server ;;
      pause) build_pause ;;
      images) build_images ;;
    esac
  done
  log "done in $((SECONDS - start)) s; binaries in $BIN_DIR"
}

main "$@"
