#!/usr/bin/env bash
# Put locally built docker images into the node's containerd, where the kubelet finds them.
#
#   e2e/cluster/load-image.sh IMAGE...     e.g. bereit/operator:dev
#
# Nothing is pulled: `docker save | ctr images import`. Use an explicit tag other than
# :latest (or imagePullPolicy: Never/IfNotPresent) in pod specs, so the kubelet never tries
# to pull. A re-built image loaded again replaces the old one under the same tag.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($#)) || die "usage: load-image.sh IMAGE..."
proc_alive containerd || die "the node's containerd is not running: start the cluster with e2e/cluster/up.sh full"
ensure_dockerd
for image in "$@"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "no docker image '$image' on this machine (build it first)"
done
start=$SECONDS
docker save "$@" | node_ctr images import - >/dev/null
log "loaded $* into the node's containerd in $((SECONDS - start)) s"
