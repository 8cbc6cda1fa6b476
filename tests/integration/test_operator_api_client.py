"""bereit.controllers.api_client, the operator's API client, against a real API server."""

from __future__ import annotations

import asyncio

import pytest

from bereit.constants import FIELD_MANAGER
from bereit.controllers.api_client import (
    ApiClient,
    Conflict,
    Invalid,
    ObjectExists,
    TransientError,
    load_connection,
)


def _run(coroutine):
    return asyncio.run(coroutine)


def _config_map(namespace: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": namespace}, "data": data}


def test_an_unchanged_server_side_apply_writes_nothing(kubeconfig, namespace):
    async def scenario():
        async with ApiClient(load_connection(kubeconfig)) as kube:
            first = await kube.apply(_config_map(namespace, {"a": "1"}))
            again = await kube.apply(_config_map(namespace, {"a": "1"}))
            changed = await kube.apply(_config_map(namespace, {"a": "2"}))
            return first, again, changed, dict(kube.writes)

    first, again, changed, writes = _run(scenario())
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert [m["manager"] for m in changed["metadata"]["managedFields"]] == [FIELD_MANAGER]
    assert writes == {"PATCH apply ConfigMap": 3}


def test_errors_are_told_apart(kubeconfig, namespace):
    async def scenario():
        async with ApiClient(load_connection(kubeconfig), retries=2) as kube:
            created = await kube.create(_config_map(namespace, {"a": "1"}))
            with pytest.raises(ObjectExists):
                await kube.create(_config_map(namespace, {"a": "1"}))
            await kube.patch("v1", "ConfigMap", namespace, "probe", {"data": {"a": "2"}})
            stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"a": "3"}}
            with pytest.raises(Conflict) as conflict:
                await kube.patch("v1", "ConfigMap", namespace, "probe", stale)
            assert isinstance(conflict.value, TransientError)  # a retried pass re-reads and succeeds
            with pytest.raises(Invalid) as invalid:
                await kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name", "namespace": namespace}})
            assert "Not_A_Name" in invalid.value.message
            assert await kube.get("v1", "ConfigMap", namespace, "missing") is None
            await kube.delete("v1", "ConfigMap", namespace, "missing")  # already gone is fine

    _run(scenario())
