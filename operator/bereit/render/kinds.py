"""The kinds of child an InferenceService owns: rendered here, applied, watched and pruned by the operator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChildKind:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


CONFIG_MAP = ChildKind("v1", "ConfigMap", "configmaps")
SERVICE = ChildKind("v1", "Service", "services")
DEPLOYMENT = ChildKind("apps/v1", "Deployment", "deployments")
AUTOSCALER = ChildKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
DISRUPTION_BUDGET = ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
NETWORK_POLICY = ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
# Server-side applied on every change and pruned when no longer rendered.
APPLIED_KINDS = (CONFIG_MAP, SERVICE, DEPLOYMENT, AUTOSCALER, DISRUPTION_BUDGET, NETWORK_POLICY)
# Created once and kept across updates (the keys), never pruned by a reconcile.
KEYS_SECRET = ChildKind("v1", "Secret", "secrets")
