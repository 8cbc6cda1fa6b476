"""Building blocks shared by the three resources: base model, conditions, CEL rules."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

# DNS-1035 label: Services and Deployments are named after InferenceServices.
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A Kubernetes label value: model names end up in labels and paths.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# Kubernetes resource quantity (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/)
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei|e[0-9]+)?$"


# Bounded maps keep the API server's CEL cost estimates small (e.g. Model's `self == oldSelf`).
KeyValues = Annotated[
    dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=1024)]],
    Field(max_length=64),
]


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry: a rule the API server checks itself."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """Base of every spec and status part: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A standard Kubernetes condition (metav1.Condition), read by kubectl wait, Argo CD and Flux."""

    type: str = Field(description="Kind of condition, e.g. Ready.", max_length=316)
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="One CamelCase word a program can match on.", max_length=1024, min_length=1
    )
    message: str = Field(default="", description="What happened, for people.", max_length=32768)
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this condition was set for."
    )


class ObjectMeta(ApiModel):
    """The parts of metadata bereit reads. The API server owns the full schema."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    name: str = Field(default="", description="Object name.")
    namespace: str | None = Field(default=None, description="Object namespace.")
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class LocalObjectReference(ApiModel):
    name: str = Field(description="Name of an object in the same namespace.", min_length=1, max_length=253)


def is_dns_label(value: str, max_length: int = 63) -> bool:
    return len(value) <= max_length and re.fullmatch(DNS_LABEL_PATTERN, value) is not None


def check_name(kind: str, name: str, max_length: int) -> None:
    """Names become DNS labels of Services and Pods: refuse the rest with a message that says so."""
    if not is_dns_label(name, max_length):
        raise ValueError(
            f"metadata.name: {kind} name {name!r} must be a DNS label: at most {max_length} "
            "lowercase letters, digits and '-', starting with a letter and ending with a letter "
            "or digit"
        )


class Resource(ApiModel):
    """A whole object (apiVersion, kind, metadata, spec, status): its name is checked here, once."""

    model_config = ApiModel.model_config | {"extra": "ignore"}
    max_name_length: ClassVar[int] = 63

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @model_validator(mode="after")
    def _name(self) -> Resource:
        if self.metadata.name:
            check_name(self.kind, self.metadata.name, self.max_name_length)  # type: ignore[attr-defined]
        return self
