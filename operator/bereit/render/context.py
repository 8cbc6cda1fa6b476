"""What the renderers need to know, resolved by the controller beforehand: no I/O below this line."""

from __future__ import annotations

from dataclasses import dataclass

from bereit.api import ComputeTarget, InferenceService, Model


@dataclass(frozen=True)
class RuntimeSettings:
    """Operator-wide choices the renderers need (from bereit.controllers.settings)."""

    runtime_image: str
    image_pull_policy: str = "IfNotPresent"
    cluster_domain: str = "cluster.local"


@dataclass(frozen=True)
class ResolvedService:
    """An InferenceService with the objects it refers to, as the controller found them.

    `service.metadata` must carry name, namespace and uid (owner references need the uid).
    `models` are in the order of `service.spec.models`.
    """

    service: InferenceService
    models: tuple[Model, ...]
    compute_target: ComputeTarget
    runtime: RuntimeSettings
    # A digest of the user's code ConfigMap (spec.inference.code.configMap), read by the
    # controller: a change of the code rolls the pods even though the pod spec is the same.
    code_digest: str | None = None

    @property
    def name(self) -> str:
        return self.service.metadata.name

    @property
    def namespace(self) -> str:
        return self.service.metadata.namespace or "default"
