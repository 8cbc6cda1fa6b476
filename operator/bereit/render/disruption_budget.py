"""The PodDisruptionBudget that keeps node drains from taking every replica at once."""

from __future__ import annotations

from bereit.render import names
from bereit.render.context import ResolvedService


def _most_replicas(resolved: ResolvedService) -> int:
    spec = resolved.service.spec
    return spec.effective_autoscale.max_replicas if spec.autoscaling else (spec.replicas or 0)


def render_disruption_budget(resolved: ResolvedService) -> dict | None:
    """None when the service never has more than one replica: a budget could only block drains."""
    if _most_replicas(resolved) <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": names.object_meta(resolved, names.deployment_name(resolved)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": names.selector_labels(resolved)},
            # A replica that never became ready may always be evicted.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
