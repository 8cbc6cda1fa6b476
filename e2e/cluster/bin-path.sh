#!/usr/bin/env bash
# Print the folder holding the cluster's binaries (kube-*, kubectl, kubelet, etcd, helm, ...).
#   export PATH="$(e2e/cluster/bin-path.sh):$PATH"
set -euo pipefail
. "$(dirname "$0")/lib.sh"
echo "$BIN_DIR"
