"""The HorizontalPodAutoscaler (autoscaling/v2) that follows CPU utilization."""

from __future__ import annotations

from bereit.render import names
from bereit.render.context import ResolvedService


def render_autoscaler(resolved: ResolvedService) -> dict | None:
    """None when the replica count is fixed: then there is no HPA."""
    spec = resolved.service.spec
    if not spec.autoscaling:
        return None
    autoscale = spec.effective_autoscale
    period = autoscale.refresh_seconds
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": names.object_meta(resolved, names.deployment_name(resolved)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.deployment_name(resolved)},
            "minReplicas": autoscale.min_replicas,
            "maxReplicas": autoscale.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": autoscale.target_utilization},
                    },
                }
            ],
            # refreshSeconds (Azure Machine Learning's autoscale_refresh_seconds) is how often the count may change.
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": period},
                        {"type": "Pods", "value": 4, "periodSeconds": period},
                    ],
                },
                # No stabilizationWindowSeconds: the cluster's own scale-down window applies
                # (kube-controller-manager --horizontal-pod-autoscaler-downscale-stabilization,
                # 5 min unless the cluster says otherwise), so a short lull does not drop replicas.
                "scaleDown": {
                    "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": period}],
                },
            },
        },
    }
