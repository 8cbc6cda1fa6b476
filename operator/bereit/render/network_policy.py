"""The NetworkPolicy that lets traffic reach the scoring port only."""

from __future__ import annotations

from bereit.constants import SERVER_PORT
from bereit.render import names
from bereit.render.context import ResolvedService


def render_network_policy(resolved: ResolvedService) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": names.object_meta(resolved, names.deployment_name(resolved)),
        "spec": {
            "podSelector": {"matchLabels": names.selector_labels(resolved)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": SERVER_PORT}]}],
        },
    }
