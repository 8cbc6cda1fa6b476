"""Per-replica resources: the service's own, else its ComputeTarget's defaults, else Azure Machine Learning's."""

from __future__ import annotations

from bereit.api import ComputeTarget, InferenceService
from bereit.api.inference_service import DEFAULT_CPU, DEFAULT_MEMORY


def effective_cpu(service: InferenceService, target: ComputeTarget) -> str:
    return service.spec.resources.cpu or target.spec.defaults.cpu or DEFAULT_CPU


def effective_memory(service: InferenceService, target: ComputeTarget) -> str:
    return service.spec.resources.memory or target.spec.defaults.memory or DEFAULT_MEMORY


def container_resources(service: InferenceService, target: ComputeTarget) -> dict:
    """CPU is requested, not limited (a CPU limit throttles scoring latency); memory is both."""
    memory = effective_memory(service, target)
    resources = {
        "requests": {"cpu": effective_cpu(service, target), "memory": memory},
        "limits": {"memory": memory},
    }
    if service.spec.resources.gpu:
        resources["limits"]["nvidia.com/gpu"] = str(service.spec.resources.gpu)
    return resources
