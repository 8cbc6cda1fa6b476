#!/usr/bin/env bash
# Make sure a Docker engine answers (for building images): starts the machine's dockerd in
# the background, logging to ~/.cache/bereit/logs/dockerd.log, unless one runs already.
# down.sh leaves it running; it is the machine's, not the cluster's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_dockerd
