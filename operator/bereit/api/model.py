"""Model: one registered, immutable version of a model's files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bereit.api.common import (
    MODEL_NAME_PATTERN,
    ApiModel,
    Condition,
    KeyValues,
    LocalObjectReference,
    Resource,
    cel,
    cel_rules,
)
from bereit.constants import API_VERSION, MODEL_KIND

SOURCE_URI_PATTERN = r"^(oci://[^\s]+|https://[^\s/]+(/[^\s]*)?|pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[^\s]*)?)$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"


class ModelSource(ApiModel):
    """Where a Model's files are."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!has(self.sha256) || self.uri.startsWith('https://')",
                "sha256 can only be checked for https:// sources",
                field_path=".sha256",
            ),
            cel(
                "!has(self.unpack) || !self.unpack || self.uri.startsWith('https://')",
                "unpack applies to https:// downloads only",
                field_path=".unpack",
            ),
        )
    }

    uri: str = Field(
        description=(
            "Where the files are. oci://IMAGE: an image whose /model folder holds the files "
            "(`bereit model register` builds one from a local folder); https://HOST/PATH: a file "
            "downloaded when a replica starts; pvc://CLAIM/PATH: a folder on a "
            "PersistentVolumeClaim in the same namespace, mounted read-only."
        ),
        pattern=SOURCE_URI_PATTERN,
        max_length=2048,
    )
    sha256: str | None = Field(
        default=None,
        description="Expected SHA-256 of an https:// download, 64 lowercase hex digits. A mismatch fails the replica's start.",
        pattern=SHA256_PATTERN,
    )
    unpack: bool | None = Field(
        default=None,
        description="Unpack an https:// download (.tar.gz, .tgz or .zip) into the model folder instead of storing the file as is.",
    )
    secret_ref: LocalObjectReference | None = Field(
        default=None,
        description=(
            "Credentials: for oci:// an image pull Secret (kubernetes.io/dockerconfigjson); for "
            "https:// a Secret whose key `authorization` is sent as the Authorization header."
        ),
    )

    @field_validator("uri")
    @classmethod
    def _uri_shape(cls, uri: str) -> str:
        if not re.fullmatch(SOURCE_URI_PATTERN, uri):
            raise ValueError(
                f"source.uri {uri!r} must start with oci://, https:// or pvc://CLAIM/PATH"
            )
        return uri

    @model_validator(mode="after")
    def _https_only_options(self) -> ModelSource:
        if self.sha256 is not None and not self.uri.startswith("https://"):
            raise ValueError("source.sha256 can only be checked for https:// sources")
        if self.unpack and not self.uri.startswith("https://"):
            raise ValueError("source.unpack applies to https:// downloads only")
        return self

    @property
    def scheme(self) -> Literal["oci", "https", "pvc"]:
        return self.uri.split("://", 1)[0]  # type: ignore[return-value]

    @property
    def location(self) -> str:
        """The URI without its scheme: an image reference, a URL path, or CLAIM/PATH."""
        return self.uri.split("://", 1)[1]


class ModelSpec(ApiModel):
    """A Model's files and metadata. It cannot change after creation: register a new version instead."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self == oldSelf",
                "a Model is immutable: register a new version instead of changing this one",
                reason="FieldValueForbidden",
            )
        )
    }

    model_name: str | None = Field(
        default=None,
        description="The model's name, shared by all its versions. Defaults to the object's name.",
        pattern=MODEL_NAME_PATTERN,
        max_length=63,
    )
    version: int = Field(
        description="Version number, a positive integer, unique per namespace and modelName.",
        ge=1,
    )
    source: ModelSource = Field(description="Where the model's files are.")
    framework: str | None = Field(
        default=None,
        description="The framework the model was made with, e.g. ScikitLearn, Onnx, PyTorch, TensorFlow.",
        max_length=63,
    )
    framework_version: str | None = Field(
        default=None, description="The framework's version, e.g. 1.5.2.", max_length=63
    )
    description: str | None = Field(default=None, description="What the model is, for people.", max_length=4096)
    tags: KeyValues = Field(default_factory=dict, description="Key-value tags to find models by.")
    properties: KeyValues = Field(
        default_factory=dict, description="Key-value properties, e.g. training metrics."
    )


class ModelStatus(ApiModel):
    """Whether the version is usable and which services use it."""

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    model_name: str | None = Field(default=None, description="The effective model name.")
    used_by: list[str] = Field(
        default_factory=list,
        description="InferenceServices in this namespace that serve this version. While any does, the Model cannot be deleted.",
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready and InUse conditions.")


class Model(Resource):
    """A registered, immutable version of a model, served by InferenceServices."""

    max_name_length: ClassVar[int] = 253

    api_version: Literal["bereit.dev/v1alpha1"] = Field(default=API_VERSION)
    kind: Literal["Model"] = Field(default=MODEL_KIND)
    spec: ModelSpec
    status: ModelStatus | None = None

    @property
    def model_name(self) -> str:
        return self.spec.model_name or self.metadata.name


def model_name_of(body: Mapping[str, Any]) -> str:
    """`Model.model_name` for a Model as a plain dict (a watch event, an API answer)."""
    return (body.get("spec") or {}).get("modelName") or body["metadata"]["name"]
