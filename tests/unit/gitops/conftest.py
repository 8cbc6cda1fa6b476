"""Fixtures of the GitOps health tests: the checkers, or a clear skip when they cannot be built."""

from __future__ import annotations

import pytest

from e2e.cluster.gitops_tools import ToolMissing, ensure_tool


def _tool(name: str) -> str:
    try:
        return ensure_tool(name)
    except ToolMissing as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def argocd_health() -> str:
    return _tool("argocd-health")


@pytest.fixture(scope="session")
def kstatus() -> str:
    return _tool("kstatus")
