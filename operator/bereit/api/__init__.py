"""The three resources of bereit.dev/v1alpha1: the single source of truth for their schemas."""

from pydantic import ValidationError

from bereit.api.common import Condition, ConditionStatus, ObjectMeta
from bereit.api.compute_target import MINIMUM_VCPUS, ComputeTarget, ComputeTargetSpec, ComputeTargetStatus, Purpose
from bereit.api.inference_service import (
    InferenceService,
    InferenceServiceSpec,
    InferenceServiceStatus,
    ResolvedModel,
    State,
)
from bereit.api.model import Model, ModelSpec, ModelStatus

__all__ = [
    "MINIMUM_VCPUS",
    "ComputeTarget",
    "ComputeTargetSpec",
    "ComputeTargetStatus",
    "Condition",
    "ConditionStatus",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "Model",
    "ModelSpec",
    "ModelStatus",
    "ObjectMeta",
    "Purpose",
    "ResolvedModel",
    "State",
    "describe_validation_error",
]


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each starting with the field's path as users write it (spec.resources.cpu)."""
    lines = []
    for problem in error.errors():
        path = ""
        for part in problem["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return "; ".join(lines)
