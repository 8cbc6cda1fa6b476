"""The operator's settings: one class, read from BEREIT_* environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bereit import __version__
from bereit.render.context import RuntimeSettings

DEFAULT_RUNTIME_IMAGE = f"bereit/runtime:{__version__}"


class Settings(BaseSettings):
    """Every choice an operator deployment makes; the chart sets these as env vars."""

    model_config = SettingsConfigDict(env_prefix="BEREIT_", extra="ignore", frozen=True)

    watch_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "BEREIT_WATCH_NAMESPACES: comma-separated namespaces to watch; empty watches the whole "
            "cluster. `kopf run --namespace` overrides it."
        ),
    )
    runtime_image: str = Field(
        default=DEFAULT_RUNTIME_IMAGE,
        description="BEREIT_RUNTIME_IMAGE: image with bereit-server for services that name none.",
        min_length=1,
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="BEREIT_IMAGE_PULL_POLICY for the runtime and model images."
    )
    cluster_domain: str = Field(
        default="cluster.local", description="BEREIT_CLUSTER_DOMAIN: used in scoring and swagger URIs."
    )
    log_format: Literal["json", "text"] = Field(default="json", description="BEREIT_LOG_FORMAT: json or text.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="BEREIT_LOG_LEVEL.")
    liveness_port: int = Field(
        default=8080, ge=0, le=65535,
        description="BEREIT_LIVENESS_PORT: GET /healthz answers here (python -m bereit.controllers); 0 turns it off.",
    )
    max_parallel_reconciles: int = Field(
        default=64, ge=1, le=1000,
        description=(
            "BEREIT_MAX_PARALLEL_RECONCILES: reconciles running at once, to spare the API server "
            "during bursts. Passes mostly wait for the API server (creating a Service takes "
            "seconds when many are created at once), so this is well above the core count."
        ),
    )
    api_timeout_seconds: float = Field(default=30.0, gt=0, description="BEREIT_API_TIMEOUT_SECONDS per API request.")
    api_retries: int = Field(
        default=6, ge=0, le=20, description="BEREIT_API_RETRIES: retries with backoff of a request on 409, 429 and 5xx."
    )
    log_tail_lines: int = Field(
        default=10, ge=1, le=200,
        description="BEREIT_LOG_TAIL_LINES: log lines shown when a replica fails without a termination message.",
    )

    @field_validator("watch_namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def clusterwide(self) -> bool:
        return not self.watch_namespaces

    def runtime(self) -> RuntimeSettings:
        return RuntimeSettings(
            runtime_image=self.runtime_image,
            image_pull_policy=self.image_pull_policy,
            cluster_domain=self.cluster_domain,
        )
