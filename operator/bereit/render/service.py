"""The Service clients score through; its name and address never change across updates."""

from __future__ import annotations

from bereit.constants import SERVICE_PORT
from bereit.render import names
from bereit.render.context import ResolvedService


def render_service(resolved: ResolvedService) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.object_meta(resolved, names.service_name(resolved)),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector_labels(resolved),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
