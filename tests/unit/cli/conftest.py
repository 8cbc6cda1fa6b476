"""Helpers for the CLI's unit tests: config files written into a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCORE_PY = """import json


def init():
    pass


def run(raw_data):
    return json.loads(raw_data)
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the seeds' score.py, used as the working directory."""
    (tmp_path / "score.py").write_text(SCORE_PY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.fixture
def dead_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose API server address refuses connections (port 1 on loopback)."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        """apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: dead
  context: {cluster: dead, user: u, namespace: ns1}
current-context: dead
users:
- name: u
  user: {token: not-a-real-token}
"""
    )
    return path
