#!/usr/bin/env bash
# Install what the local cluster needs and build the upstream binaries and images it runs.
#
#   e2e/cluster/install-deps.sh [--no-apt] [--no-images] [PART...]
#
# PART: apt helm k8s coredns metrics-server pause kstatus argocd-health images (default: all,
# helm first). Everything built lands in ~/.cache/bereit/k8s-<version>/bin (see bin-path.sh),
# stamped with its version and recipe, so a second run builds nothing. Idempotent.
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

# recipe_key VERSION DIR [EXTRA]: VERSION plus a digest of the build module's files and
# EXTRA (the ldflags), so a changed recipe at the same version rebuilds instead of keeping a
# binary built the old way.
recipe_key() {
  local version=$1 dir=$CLUSTER_LIB_DIR/build/$2 extra=${3:-}
  local digest
  digest=$({ cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go 2>/dev/null; printf '%s' "$extra"; } | sha256sum)
  echo "$version-${digest:0:12}"
}

# require_pin DIR MODULE VERSION: the build module requires MODULE at the version
# versions.env pins, or the build stops (the two must not drift apart).
require_pin() {
  local gomod=$CLUSTER_LIB_DIR/build/$1/go.mod
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3( |$)" "$gomod" ||
    die "$gomod does not require $2 $3 (versions.env pins it): update one of them"
}

# Helm as its release is built (helm's Makefile at the tag): the version, commit and tree
# state `helm version` shows, and the Kubernetes version that helm template, lint and
# install --dry-run assume without a cluster (.Capabilities.KubeVersion, the chart's
# kubeVersion check). The Makefile derives the latter from the client-go it builds with:
# client-go v0.X.Y is Kubernetes 1.X. Without these flags helm says v1.20.
helm_ldflags() {
  local client_go major minor x
  client_go=$(cd "$CLUSTER_LIB_DIR/build/helm" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/client-go)
  client_go=${client_go#v}
  major=$((${client_go%%.*} + 1))
  minor=${client_go#*.}
  minor=${minor%%.*}
  x="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  x+=" -X helm.sh/helm/v3/internal/version.gitCommit=$HELM_GIT_COMMIT"
  x+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    x+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$x"
}

build_helm() {
  local flags
  require_pin helm helm.sh/helm/v3 "$HELM_VERSION"
  flags=$(helm_ldflags)
  go_build helm "$(recipe_key "$HELM_VERSION" helm "$flags")" helm "$flags" helm.sh/helm/v3/cmd/helm
  log "helm: $BIN_DIR/helm"
}

# Tools of the GitOps checks: kstatus (Flux's health library) and argocd-health (Argo CD's
# Lua runtime for the chart's health checks); small modules of our own under build/.
build_kstatus() {
  require_pin kstatus sigs.k8s.io/cli-utils "$KSTATUS_VERSION"
  go_build kstatus "$(recipe_key "$KSTATUS_VERSION" kstatus)" kstatus "" .
}

build_argocd_health() {
  require_pin argocd-health github.com/yuin/gopher-lua "$GOPHER_LUA_VERSION"
  go_build argocd-health "$(recipe_key "$GOPHER_LUA_VERSION" argocd-health)" argocd-health "" .
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
      apt | helm | k8s | coredns | metrics-server | pause | kstatus | argocd-health | images) parts+=("$1") ;;
      *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
  done
  if ((${#parts[@]} == 0)); then
    parts=(helm k8s pause coredns metrics-server kstatus argocd-health)
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
      kstatus) build_kstatus ;;
      argocd-health) build_argocd_health ;;
      images) build_images ;;
    esac
  done
  log "done in $((SECONDS - start)) s; binaries in $BIN_DIR"
}

main "$@"
