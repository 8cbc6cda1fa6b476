"""Run helm on the chart: template, lint, and pick objects out of what it renders.

helm is looked up on PATH, then where the local-cluster tooling builds it
(`e2e/cluster/bin-path.sh`, ~/.cache/bereit/*/bin). Without helm the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "bereit"
RELEASE = "bereit"
NAMESPACE = "bereit-system"
# The Kubernetes version the local cluster runs; manifests are validated against its schema.
KUBE_VERSION = "1.35.0"


def find_helm() -> str | None:
    candidates = [os.environ.get("BEREIT_HELM"), shutil.which("helm")]
    bin_path = REPO / "e2e" / "cluster" / "bin-path.sh"
    if bin_path.is_file():
        result = subprocess.run(["bash", str(bin_path)], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(str(Path(result.stdout.strip()) / "helm"))
    cache = Path.home() / ".cache" / "bereit"
    candidates += sorted(str(path) for path in cache.glob("*/bin/helm"))
    candidates.append(str(cache / "helm-bin" / "helm"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    return None


def values_args(values: dict | None) -> list[str]:
    """Values as a file-free argument: --set-json keeps types (lists, integers) exact."""
    return [arg for key, value in (values or {}).items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]


class Chart:
    def __init__(self, helm: str):
        self.helm = helm

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.helm, *args], capture_output=True, text=True, check=False, timeout=120)

    def template(self, values: dict | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template", RELEASE, str(CHART),
            "--namespace", NAMESPACE,
            "--kube-version", KUBE_VERSION,
            "--include-crds",
            *values_args(values),
        )

    def render(self, values: dict | None = None) -> list[dict]:
        result = self.template(values)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def lint(self, values: dict | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(
            "lint", "--strict", str(CHART),
            "--namespace", NAMESPACE,
            "--kube-version", KUBE_VERSION,
            *values_args(values),
        )


def find(docs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [
        doc
        for doc in docs
        if doc["kind"] == kind
        and (name is None or doc["metadata"]["name"] == name)
        and (namespace is None or doc["metadata"].get("namespace") == namespace)
    ]


def only(docs: list[dict], kind: str, **kwargs: str) -> dict:
    found = find(docs, kind, **kwargs)
    assert len(found) == 1, f"expected one {kind} {kwargs or ''}, found {len(found)}"
    return found[0]

