"""InferenceService: models deployed as one scoring web service.

Longer than other modules on purpose: the spec's sections (inference, resources, scaling, auth,
scoring limits, probes, collection) and their descriptions are one CRD's schema, read together.
"""

from __future__ import annotations

import posixpath
import re
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bereit.api.common import (
    DNS_LABEL_PATTERN,
    MODEL_NAME_PATTERN,
    ApiModel,
    Condition,
    KeyValues,
    LocalObjectReference,
    Resource,
    cel,
    cel_rules,
)
from bereit.api.quantity import cpu_cores, memory_bytes
from bereit.constants import API_VERSION, INFERENCE_SERVICE_KIND

# Service and Deployment carry the name, the keys Secret adds "-keys": stay well inside 63.
MAX_NAME_LENGTH = 50
# ConfigMaps hold at most 1 MiB; leave room for metadata.
MAX_INLINE_CODE_BYTES = 900 * 1024
# Inline files may sit in folders (Azure Machine Learning's x/y/score.py); each part must be a valid ConfigMap key.
INLINE_PATH_PATTERN = r"[-._a-zA-Z0-9]+(/[-._a-zA-Z0-9]+)*"
RESERVED_ENV_PREFIXES = ("BEREIT_", "AZUREML_")
DEFAULT_CPU = "0.1"
DEFAULT_MEMORY = "0.5Gi"
MIN_MEMORY_BYTES = 16 * 2**20
CPU_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)m?$"
MEMORY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)$"


class State(StrEnum):
    TRANSITIONING = "Transitioning"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    FAILED = "Failed"


class ModelReference(ApiModel):
    """One Model to serve."""

    name: str = Field(description="The model's modelName.", pattern=MODEL_NAME_PATTERN, max_length=63)
    version: int | None = Field(
        default=None,
        description="The version to serve. Omit it to serve the latest Ready version.",
        ge=1,
    )


class Code(ApiModel):
    """Where the scoring code (the entry script and its source folder) comes from: exactly one."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "[has(self.configMap), has(self.inline), has(self.imagePath)].filter(x, x).size() == 1",
                "set exactly one of code.configMap, code.inline or code.imagePath",
            )
        )
    }

    config_map: LocalObjectReference | None = Field(
        default=None, description="A ConfigMap in the same namespace whose keys are the files of the source folder."
    )
    inline: dict[str, str] | None = Field(
        default=None,
        description=(
            "The source folder's files, relative path (x/y/score.py) to content. bereit stores "
            "them in a ConfigMap it owns and mounts them at the same paths."
        ),
    )
    image_path: str | None = Field(
        default=None,
        description="The source folder is already in the environment's image, at this absolute path.",
        pattern=r"^/.*",
        max_length=1024,
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Code:
        chosen = [self.config_map is not None, self.inline is not None, self.image_path is not None]
        if sum(chosen) != 1:
            raise ValueError("set exactly one of code.configMap, code.inline or code.imagePath")
        if self.inline is not None:
            if not self.inline:
                raise ValueError("code.inline has no files")
            size = sum(len(name) + len(text.encode()) for name, text in self.inline.items())
            if size > MAX_INLINE_CODE_BYTES:
                raise ValueError(
                    f"code.inline holds {size} bytes; at most {MAX_INLINE_CODE_BYTES} fit in a "
                    "ConfigMap: use code.configMap or code.imagePath for larger code"
                )
            for name in self.inline:
                if not re.fullmatch(INLINE_PATH_PATTERN, name) or ".." in name.split("/"):
                    raise ValueError(
                        f"code.inline: {name!r} must be a relative path of letters, digits, '-', '_' "
                        "and '.', with '/' between folders"
                    )
        return self


class EnvVar(ApiModel):
    """An environment variable of the scoring container."""

    name: str = Field(description="Variable name.", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)
    value: str = Field(default="", description="Variable value.")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.upper().startswith(RESERVED_ENV_PREFIXES):
            raise ValueError(f"env name {name!r}: BEREIT_ and AZUREML_ variables are set by bereit")
        return name


class Environment(ApiModel):
    """The runtime the entry script runs in: Azure Machine Learning's environment or custom base image."""

    image: str | None = Field(
        default=None,
        description=(
            "Container image with Python and bereit-server. Defaults to the operator's serving "
            "runtime image. A custom image must contain the `bereit` package."
        ),
        max_length=1024,
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, description="Secrets to pull the image from a private registry."
    )
    python_packages: list[str] = Field(
        default_factory=list,
        description="Extra pip requirements, installed once when a replica starts and cached per package set.",
        max_length=200,
    )
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment variables for the entry script.")

    @field_validator("python_packages")
    @classmethod
    def _requirements(cls, packages: list[str]) -> list[str]:
        for package in packages:
            if not package.strip() or package.strip().startswith("-"):
                raise ValueError(f"environment.pythonPackages: {package!r} is not a pip requirement")
        return packages


class Inference(ApiModel):
    """Azure Machine Learning's inference configuration: entry script, its code and its environment."""

    entry_script: str = Field(
        description="The scoring script with init() and run(data), relative to the code folder, e.g. score.py.",
        min_length=1,
        max_length=1024,
        pattern=r"^[^/].*\.py$",
    )
    code: Code = Field(description="Where the entry script and its source folder come from.")
    environment: Environment = Field(
        default_factory=Environment,
        description="Image, packages and variables the script runs with.",
        json_schema_extra={"default": {}},
    )

    @field_validator("entry_script")
    @classmethod
    def _relative_path(cls, script: str) -> str:
        normalized = posixpath.normpath(script)
        if script.startswith("/") or normalized.startswith(".."):
            raise ValueError(f"inference.entryScript {script!r} must be a path inside the code folder")
        if not script.endswith(".py"):
            raise ValueError(f"inference.entryScript {script!r} must be a Python file (.py)")
        return script

    @model_validator(mode="after")
    def _script_in_inline_code(self) -> Inference:
        inline = self.code.inline
        if inline is not None and self.entry_script not in inline:
            raise ValueError(
                f"inference.entryScript {self.entry_script!r} is not among code.inline's files "
                f"({', '.join(sorted(inline))})"
            )
        return self


class Resources(ApiModel):
    """Per replica. Unset values come from the ComputeTarget's defaults, else cpu 0.1 and memory 0.5Gi."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!has(self.cpu) || !self.cpu.matches('^0*(\\\\.0*)?m?$')",
                "resources.cpu must be more than 0",
                field_path=".cpu",
            )
        )
    }

    cpu: str | None = Field(
        default=None, description="CPU cores as a quantity: 0.1, 1, 500m. Default 0.1.", pattern=CPU_PATTERN, max_length=32
    )
    memory: str | None = Field(
        default=None,
        description="Memory with a unit: 512Mi, 0.5Gi, 2G. Default 0.5Gi. At least 16Mi.",
        pattern=MEMORY_PATTERN,
        max_length=32,
    )
    gpu: int = Field(default=0, description="GPUs (nvidia.com/gpu) per replica.", ge=0, le=16)

    @field_validator("cpu")
    @classmethod
    def _cpu_positive(cls, cpu: str | None) -> str | None:
        if cpu is not None and cpu_cores(cpu) <= 0:
            raise ValueError(f"resources.cpu {cpu!r} must be more than 0")
        return cpu

    @field_validator("memory")
    @classmethod
    def _memory_sensible(cls, memory: str | None) -> str | None:
        if memory is not None and memory_bytes(memory) < MIN_MEMORY_BYTES:
            raise ValueError(f"resources.memory {memory!r} is less than 16Mi: did you mean another unit?")
        return memory


class Autoscale(ApiModel):
    """Replicas follow CPU utilization (a HorizontalPodAutoscaler). On unless spec.replicas is set."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "autoscale.minReplicas must not be more than autoscale.maxReplicas",
                field_path=".minReplicas",
            )
        )
    }

    enabled: bool | None = Field(default=None, description="Autoscale; on by default unless spec.replicas is set.")
    min_replicas: int = Field(default=1, description="Fewest replicas.", ge=1, le=1000)
    max_replicas: int = Field(default=10, description="Most replicas.", ge=1, le=1000)
    target_utilization: int = Field(
        default=70, description="Target CPU utilization in percent of the requested CPU.", ge=1, le=100
    )
    refresh_seconds: int = Field(
        default=1, description="How often the replica count may change, in seconds.", ge=1, le=1800
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscale:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"autoscale.minReplicas ({self.min_replicas}) must not be more than "
                f"autoscale.maxReplicas ({self.max_replicas})"
            )
        return self


class Auth(ApiModel):
    """Key auth (the default) or token auth, never both. Both off makes the service public."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!(has(self.keyAuth) && self.keyAuth && has(self.tokenAuth) && self.tokenAuth)",
                "auth: keyAuth and tokenAuth cannot both be on",
            )
        )
    }

    key_auth: bool | None = Field(
        default=None,
        description="Clients send a primary or secondary key as 'Authorization: Bearer KEY'. On unless tokenAuth is on.",
    )
    token_auth: bool | None = Field(
        default=None,
        description="Clients send a short-lived token signed with a key ('bereit service token'). Off by default.",
    )

    @model_validator(mode="after")
    def _not_both(self) -> Auth:
        if self.key_auth and self.token_auth:
            raise ValueError("auth: keyAuth and tokenAuth cannot both be on")
        return self

    @property
    def mode(self) -> Literal["key", "token", "none"]:
        if self.token_auth:
            return "token"
        return "none" if self.key_auth is False else "key"


class Scoring(ApiModel):
    """How each replica handles requests."""

    timeout_ms: int = Field(
        default=60000, description="A run() call taking longer is answered 504.", ge=1, le=3_600_000
    )
    max_concurrent_requests_per_replica: int = Field(
        default=1, description="run() calls at once per replica.", ge=1, le=1000
    )
    max_queue_length: int = Field(
        default=10, description="Requests that may wait per replica; more are answered 503.", ge=0, le=10000
    )
    max_queue_wait_ms: int = Field(
        default=500, description="Longest wait in the queue before 503 with Retry-After.", ge=0, le=3_600_000
    )
    max_request_bytes: int = Field(
        default=10 * 2**20, description="Largest request body; larger ones are answered 413.", ge=1, le=2**30
    )


class LivenessProbe(ApiModel):
    """Azure Machine Learning's liveness probe settings; GET / on the scoring port."""

    period_seconds: int = Field(default=10, description="How often to probe.", ge=1, le=3600)
    initial_delay_seconds: int = Field(default=310, description="Wait before the first probe.", ge=0, le=3600)
    timeout_seconds: int = Field(default=2, description="Probe timeout.", ge=1, le=3600)
    success_threshold: Literal[1] = Field(
        default=1, description="Successes to count as alive. Kubernetes requires 1 for liveness."
    )
    failure_threshold: int = Field(default=3, description="Failures before the replica restarts.", ge=1, le=100)


class DataCollection(ApiModel):
    """Collection of model inputs and outputs, as JSON lines in the replica's log."""

    enabled: bool = Field(default=False, description="Write each request's input and output as a JSON line to the replica's log.")
    sample_rate: float = Field(default=1.0, description="Share of requests collected, more than 0 and at most 1.", gt=0, le=1)


class Telemetry(ApiModel):
    """Access logs and Prometheus scraping."""

    enabled: bool = Field(
        default=False,
        description="Structured access logs and Prometheus scrape annotations on the replicas.",
    )


class InferenceServiceSpec(ApiModel):
    """Azure Machine Learning's deployment configuration: models, code, resources, scaling, auth and limits."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!has(self.replicas) || !has(self.autoscale) || !has(self.autoscale.enabled) || !self.autoscale.enabled",
                "set either replicas or autoscale.enabled, not both",
                field_path=".replicas",
            )
        )
    }

    compute_target: str = Field(
        description="Name of the ComputeTarget in this namespace to run on.", pattern=DNS_LABEL_PATTERN, max_length=63
    )
    models: list[ModelReference] = Field(
        description="The Models to serve, by modelName and version. Each name at most once.",
        min_length=1,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    inference: Inference = Field(description="Entry script, code and environment.")
    resources: Resources = Field(
        default_factory=Resources, description="CPU, memory and GPU per replica.", json_schema_extra={"default": {}}
    )
    replicas: int | None = Field(
        default=None, description="A fixed number of replicas; turns autoscaling off.", ge=0, le=1000
    )
    autoscale: Autoscale | None = Field(default=None, description="Autoscaling on CPU; on by default.")
    auth: Auth = Field(default_factory=Auth, description="How clients authenticate.", json_schema_extra={"default": {}})
    scoring: Scoring = Field(
        default_factory=Scoring, description="Timeouts, concurrency and queueing.", json_schema_extra={"default": {}}
    )
    liveness_probe: LivenessProbe = Field(
        default_factory=LivenessProbe, description="Liveness probe settings.", json_schema_extra={"default": {}}
    )
    data_collection: DataCollection = Field(
        default_factory=DataCollection, description="Collection of inputs and outputs.", json_schema_extra={"default": {}}
    )
    telemetry: Telemetry = Field(
        default_factory=Telemetry, description="Access logs and metrics scraping.", json_schema_extra={"default": {}}
    )
    description: str | None = Field(default=None, description="What the service is for, for people.", max_length=4096)
    tags: KeyValues = Field(default_factory=dict, description="Key-value tags.")
    properties: KeyValues = Field(default_factory=dict, description="Key-value properties.")

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelReference]) -> list[ModelReference]:
        seen: set[str] = set()
        for reference in models:
            if reference.name in seen:
                raise ValueError(f"models: {reference.name!r} is listed more than once")
            seen.add(reference.name)
        return models

    @model_validator(mode="after")
    def _replicas_or_autoscale(self) -> InferenceServiceSpec:
        if self.replicas is not None and self.autoscale is not None and self.autoscale.enabled:
            raise ValueError("replicas: set either replicas or autoscale.enabled, not both")
        return self

    @property
    def autoscaling(self) -> bool:
        if self.autoscale is not None and self.autoscale.enabled is not None:
            return self.autoscale.enabled
        return self.replicas is None

    @property
    def effective_autoscale(self) -> Autoscale:
        return self.autoscale or Autoscale()

    @property
    def min_replicas(self) -> int:
        """Replicas that must always fit: what capacity checks count."""
        if self.autoscaling:
            return self.effective_autoscale.min_replicas
        return self.replicas if self.replicas is not None else 1


class ResolvedModel(ApiModel):
    """A model version the service serves."""

    name: str = Field(description="modelName.")
    version: int = Field(description="The version served.")
    model: str = Field(description="Name of the Model object.")


class InferenceServiceStatus(ApiModel):
    """Where the service is and how it is doing."""

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    state: State | None = Field(default=None, description="Transitioning, Healthy, Unhealthy or Failed.")
    message: str | None = Field(default=None, description="What is wrong, when something is.")
    scoring_uri: str | None = Field(default=None, description="POST requests here to score.")
    swagger_uri: str | None = Field(default=None, description="The service's OpenAPI document.")
    models: list[ResolvedModel] = Field(default_factory=list, description="The model versions served.")
    model_versions: str | None = Field(default=None, description="The model versions served, as name:version.")
    keys_secret_name: str | None = Field(default=None, description="The Secret holding primaryKey and secondaryKey.")
    replicas: int | None = Field(default=None, description="Replicas that exist.")
    ready_replicas: int | None = Field(default=None, description="Replicas ready to score.")
    selector: str | None = Field(default=None, description="Label selector of the replicas, for the scale subresource.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready and the conditions it derives from.")


class InferenceService(Resource):
    """Models deployed as one scoring web service."""

    max_name_length: ClassVar[int] = MAX_NAME_LENGTH

    api_version: Literal["bereit.dev/v1alpha1"] = Field(default=API_VERSION)
    kind: Literal["InferenceService"] = Field(default=INFERENCE_SERVICE_KIND)
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
