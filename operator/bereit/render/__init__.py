"""Pure functions: a resolved InferenceService in, the manifests of its children out. No I/O."""

from __future__ import annotations

from bereit.render.autoscaler import render_autoscaler
from bereit.render.code import render_code_config_map
from bereit.render.context import ResolvedService, RuntimeSettings
from bereit.render.deployment import render_deployment
from bereit.render.disruption_budget import render_disruption_budget
from bereit.render.network_policy import render_network_policy
from bereit.render.secret import render_keys_secret
from bereit.render.service import render_service


def render_children(resolved: ResolvedService) -> list[dict]:
    """Every child to server-side apply, in apply order (code before the pods that mount it)."""
    children = [
        render_code_config_map(resolved),
        render_service(resolved),
        render_deployment(resolved),
        render_autoscaler(resolved),
        render_disruption_budget(resolved),
        render_network_policy(resolved),
    ]
    return [child for child in children if child is not None]


__all__ = [
    "ResolvedService",
    "RuntimeSettings",
    "render_children",
    "render_keys_secret",
]
