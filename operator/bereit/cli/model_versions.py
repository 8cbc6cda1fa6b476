"""Models as Azure Machine Learning numbers them: one modelName, versions 1, 2, 3 … each a Model object."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from bereit.api.model import model_name_of
from bereit.cli.errors import NotFound
from bereit.cli.manifests import ModelRef
from bereit.constants import MODEL_KIND

if TYPE_CHECKING:  # the kubernetes client takes a second to import; commands load it when they connect
    from bereit.cli.cluster import Cluster


def version_of(model: dict[str, Any]) -> int:
    return int((model.get("spec") or {}).get("version") or 0)


def versions(kube: Cluster, model_name: str, models: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every Model of that modelName, oldest version first (objects made by kubectl count too)."""
    models = kube.list(MODEL_KIND) if models is None else models
    return sorted((m for m in models if model_name_of(m) == model_name), key=version_of)


def object_name(model_name: str, version: int) -> str:
    """A DNS name for modelName + version: sentiment → sentiment-v1.

    Model names may hold capitals, '_' and '.', which object names may not; those get a short
    hash of the real name, so sklearn_mnist and sklearn-mnist never share an object.
    """
    slug = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-") or "model"
    if slug != model_name:
        slug = f"{slug[:40]}-{hashlib.sha256(model_name.encode()).hexdigest()[:6]}"
    return f"{slug[:200]}-v{version}"


def find(kube: Cluster, ref: ModelRef, models: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Model for NAME:VERSION, or the latest version for NAME; NotFound says what exists."""
    found = versions(kube, ref.name, models)
    if not found:
        raise NotFound(
            f"no model named {ref.name!r} in namespace {kube.namespace!r}: register it with "
            f"`bereit model register -n {ref.name} -p PATH` (bereit model list shows what exists)"
        )
    if ref.version is None:
        return found[-1]
    for model in found:
        if version_of(model) == ref.version:
            return model
    have = ", ".join(str(version_of(m)) for m in found)
    raise NotFound(f"model {ref.name!r} has no version {ref.version} in namespace {kube.namespace!r} (versions: {have})")


def ready(model: dict[str, Any]) -> str:
    for condition in (model.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status", "Unknown")
    return "Unknown"


def pin(kube: Cluster, refs: list[ModelRef]) -> list[ModelRef]:
    """-m options as exact versions (NAME alone means its latest version), each checked to exist."""
    models = kube.list(MODEL_KIND)
    return [ModelRef(ref.name, version_of(find(kube, ref, models))) for ref in refs]
