"""bereit.controllers.api_client without a server: an unreachable API server is a transient error after retries."""

import asyncio

import pytest

from bereit.controllers.api_client import (
    ApiClient,
    Connection,
    TransientError,
    resource_path,
)


def test_an_unreachable_server_is_retried_then_transient():
    async def scenario() -> int:
        # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        kube = ApiClient(Connection(server="http://127.0.0.1:9", ssl=False, authorization=lambda: None), timeout=2, retries=2)
        try:
            with pytest.raises(TransientError):
                await kube.get("v1", "ConfigMap", "default", "x")
            return kube.requests
        finally:
            await kube.close()

    assert asyncio.run(scenario()) == 3


def test_api_paths():
    assert resource_path("apps/v1", "Deployment", "ns", "web") == "/apis/apps/v1/namespaces/ns/deployments/web"
    assert resource_path("v1", "Node", None, "n1", "status") == "/api/v1/nodes/n1/status"
    assert resource_path("bereit.dev/v1alpha1", "Model", "ns") == "/apis/bereit.dev/v1alpha1/namespaces/ns/models"
