#!/usr/bin/env bash
# Run bereit's e2e tests on a kind cluster: for a machine with Docker and internet access
# (kind pulls its node image, metrics-server and the Python base image).
#
#   e2e/kind/run.sh [pytest args...]      e.g. e2e/kind/run.sh -k smoke
#
# BEREIT_KIND_CLUSTER names the cluster (default bereit); it is created when missing and
# kept afterwards (`kind delete cluster --name bereit` removes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. e2e/cluster/versions.env

export BEREIT_KIND_CLUSTER=${BEREIT_KIND_CLUSTER:-bereit}
if ! kind get clusters 2>/dev/null | grep -qx "$BEREIT_KIND_CLUSTER"; then
  kind create cluster --name "$BEREIT_KIND_CLUSTER" --config e2e/kind/cluster.yaml \
    --image "${BEREIT_KIND_NODE_IMAGE:-kindest/node:$K8S_VERSION}" --wait 180s
fi
KUBECONFIG=$(mktemp)
export KUBECONFIG
trap 'rm -f "$KUBECONFIG"' EXIT
kind get kubeconfig --name "$BEREIT_KIND_CLUSTER" >"$KUBECONFIG"

# kubectl top and CPU autoscaling need metrics-server; kind's kubelets have self-signed certs.
kubectl apply -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/$METRICS_SERVER_VERSION/components.yaml"
kubectl -n kube-system patch deployment metrics-server --type json \
  -p '[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"}]' || true
kubectl -n kube-system rollout status deployment/metrics-server --timeout=180s

# Images are built FROM this base; kind nodes get them with `kind load docker-image`.
export BEREIT_BASE_IMAGE=${BEREIT_BASE_IMAGE:-python:3.11-slim-bookworm}
python3 -m pytest e2e -ra "$@"
