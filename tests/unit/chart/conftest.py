"""Fixtures of the chart tests: helm, or a clear skip when it is absent."""

from __future__ import annotations

import pytest

from tests.unit.chart.helm import Chart, find_helm


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        pytest.skip(
            "helm not found: put it on PATH, set BEREIT_HELM, or build it with the local-cluster "
            "tooling (e2e/cluster); the chart tests need it"
        )
    return found



@pytest.fixture(scope="session")
def chart(helm: str) -> Chart:
    return Chart(helm)
