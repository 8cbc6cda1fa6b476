"""The GitOps checkers, built by the local-cluster tooling: `kstatus` (Flux's health library)
and `argocd-health` (Argo CD's Lua runtime), from their Go modules under e2e/cluster/build/.

`install-deps.sh PART` builds one into ~/.cache/bereit/k8s-*/bin, stamped with its version and
a digest of its sources, so it runs once per change (seconds when Go's caches are warm).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "e2e" / "cluster"
TESTDATA = REPO / "tests" / "unit" / "gitops" / "testdata"
HEALTH_LUA = REPO / "charts" / "bereit" / "argocd" / "health.lua"


class ToolMissing(Exception):
    """The tool is not built and cannot be: the reason is the message."""


def bin_dir() -> Path:
    result = subprocess.run(["bash", str(CLUSTER / "bin-path.sh")], capture_output=True, text=True, check=True)
    return Path(result.stdout.strip())


def ensure_tool(name: str) -> str:
    """The path of `name`, built (or rebuilt after a change of its sources) first when Go is here."""
    path = bin_dir() / name
    if shutil.which("go"):
        result = subprocess.run(
            ["bash", str(CLUSTER / "install-deps.sh"), name], capture_output=True, text=True, check=False, timeout=900
        )
        if result.returncode != 0:
            raise AssertionError(f"install-deps.sh {name} failed:\n{result.stderr[-3000:]}")
    elif not os.access(path, os.X_OK):
        raise ToolMissing(f"{name} is not built and go is not on PATH to build it (e2e/cluster/install-deps.sh {name})")
    return str(path)


def verdicts(command: list[str], inputs: list[Path]) -> list[dict]:
    """One JSON line per input from a checker."""
    result = subprocess.run([*command, *map(str, inputs)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]
