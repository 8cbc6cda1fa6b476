"""ComputeTarget: the pool of nodes InferenceServices run on, with Azure Machine Learning's vCPU checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bereit.api.common import ApiModel, Condition, Resource, cel, cel_rules
from bereit.api.quantity import parse_quantity
from bereit.constants import API_VERSION, COMPUTE_TARGET_KIND


class Purpose(StrEnum):
    DEV_TEST = "DevTest"
    FAST_PROD = "FastProd"


# Azure Machine Learning's cluster sizes: a production cluster needs 12 vCPUs, a dev-test one 2.
MINIMUM_VCPUS = {Purpose.DEV_TEST: 2, Purpose.FAST_PROD: 12}


class Toleration(ApiModel):
    """A taint the target's nodes carry that its pods tolerate (core/v1 Toleration)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                "a toleration with operator Exists must not have a value",
                field_path=".value",
            )
        )
    }

    key: str | None = Field(default=None, description="Taint key; empty with operator Exists matches every taint.", max_length=316)
    operator: Literal["Equal", "Exists"] | None = Field(default=None, description="Equal (default) or Exists.")
    value: str | None = Field(default=None, description="Taint value, for operator Equal.", max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, description="For NoExecute: how long a pod stays bound after the taint appears."
    )

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("toleration: operator Exists must not have a value")
        return self

    def tolerates(self, taint: dict) -> bool:
        """Whether this toleration matches a node taint (the scheduler's rule)."""
        if self.effect and self.effect != taint.get("effect"):
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != taint.get("key"):
            return False
        if self.operator == "Exists":
            return True
        return (self.value or "") == (taint.get("value") or "")


class ResourceDefaults(ApiModel):
    """Per-replica resources for services on this target that set none."""

    cpu: str | None = Field(
        default=None,
        description="CPU for services on this target that set none, as a quantity (0.5, 500m). Default 0.1.",
        pattern=r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)m?$",
    )
    memory: str | None = Field(
        default=None,
        description="Memory for services on this target that set none, as a quantity (512Mi, 1Gi). Default 0.5Gi.",
        pattern=r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)$",
    )

    @field_validator("cpu")
    @classmethod
    def _positive_cpu(cls, value: str | None) -> str | None:
        if value is not None and parse_quantity(value) <= 0:
            raise ValueError("defaults.cpu must be more than 0")
        return value


class ComputeTargetSpec(ApiModel):
    """Which nodes belong to the target and what it is for."""

    purpose: Purpose = Field(
        default=Purpose.FAST_PROD,
        description=(
            "FastProd: a production pool, Ready only with at least 12 allocatable vCPUs on its "
            "nodes. DevTest: a development pool (one node is enough, no fault tolerance), Ready "
            "with at least 2 vCPUs."
        ),
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Labels that select this target's nodes. Empty selects every node.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints of this target's nodes that its services tolerate."
    )
    defaults: ResourceDefaults = Field(
        default_factory=ResourceDefaults,
        description="Resources for services on this target that set none.",
    )


class ComputeTargetStatus(ApiModel):
    """What the operator found on the matching nodes."""

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    nodes: int | None = Field(default=None, description="Ready, schedulable nodes that match.")
    vcpus: str | None = Field(default=None, description="Allocatable vCPUs of those nodes.")
    memory: str | None = Field(default=None, description="Allocatable memory of those nodes.")
    requested_vcpus: str | None = Field(
        default=None, description="vCPUs reserved by the minimum replicas of the services on this target."
    )
    conditions: list[Condition] = Field(default_factory=list, description="The Ready condition says whether the target is big enough.")


class ComputeTarget(Resource):
    """A pool of nodes that InferenceServices run on, checked against Azure Machine Learning's vCPU minimums."""

    api_version: Literal["bereit.dev/v1alpha1"] = Field(default=API_VERSION)
    kind: Literal["ComputeTarget"] = Field(default=COMPUTE_TARGET_KIND)
    spec: ComputeTargetSpec = Field(default_factory=ComputeTargetSpec)
    status: ComputeTargetStatus | None = None
