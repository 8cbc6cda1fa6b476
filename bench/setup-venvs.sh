#!/usr/bin/env bash
# The competitors, each in its own virtualenv (they pin conflicting versions; never the main env).
set -euo pipefail
VENVS="${BEREIT_BENCH_VENVS:-$HOME/.cache/bereit/bench-venvs}"
mkdir -p "$VENVS"
make_venv() {
  local name="$1"; shift
  [ -x "$VENVS/$name/bin/python" ] || python3 -m venv "$VENVS/$name"
  "$VENVS/$name/bin/pip" install -q -U pip
  "$VENVS/$name/bin/pip" install -q "$@"
}
make_venv azureml azureml-inference-server-http scikit-learn
# MLServer 1.7 parallel workers call asyncio.get_event_loop() in a fresh process, which uvloop 0.22+ refuses
make_venv mlserver mlserver mlserver-sklearn scikit-learn "uvloop<0.22"
make_venv kserve kserve scikit-learn
for v in azureml mlserver kserve; do "$VENVS/$v/bin/pip" freeze > "$(dirname "$0")/results/versions-$v.txt"; done
