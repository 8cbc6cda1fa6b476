"""Operator settings come from BEREIT_* environment variables, with clear errors."""

import pytest
from pydantic import ValidationError

from bereit.controllers.settings import Settings


def test_namespaces_and_image_from_the_environment(monkeypatch):
    monkeypatch.setenv("BEREIT_WATCH_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("BEREIT_RUNTIME_IMAGE", "registry.local/bereit/runtime:1")
    settings = Settings()
    assert settings.watch_namespaces == ["team-a", "team-b"] and not settings.clusterwide
    assert settings.runtime().runtime_image == "registry.local/bereit/runtime:1"


def test_empty_namespaces_mean_the_whole_cluster(monkeypatch):
    monkeypatch.delenv("BEREIT_WATCH_NAMESPACES", raising=False)
    assert Settings().clusterwide


def test_a_bad_log_format_names_the_setting(monkeypatch):
    monkeypatch.setenv("BEREIT_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()
