"""How model files reach a replica: init containers and volumes, per source scheme.

Layout as in Azure Machine Learning: one model → AZUREML_MODEL_DIR is <models>/<name>/<version>;
several → AZUREML_MODEL_DIR is <models>, holding <name>/<version> for each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bereit.api import Model
from bereit.constants import ENV_FETCH_AUTHORIZATION, MODELS_DIR
from bereit.render.context import ResolvedService
from bereit.render.security import container_security_context

MODELS_VOLUME = "models"
FETCH_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


@dataclass
class ModelPlacement:
    init_containers: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    # Mounts the serving container needs besides the shared models folder (PVC sources).
    mounts: list[dict] = field(default_factory=list)
    pull_secrets: list[str] = field(default_factory=list)


def model_path(model: Model) -> str:
    return f"{MODELS_DIR}/{model.model_name}/{model.spec.version}"


def model_dir(resolved: ResolvedService) -> str:
    """What AZUREML_MODEL_DIR points to."""
    if len(resolved.models) == 1:
        return model_path(resolved.models[0])
    return MODELS_DIR


def _init_name(index: int, model: Model) -> str:
    return f"model-{index}-{model.spec.source.scheme}"


def _models_mount() -> dict:
    return {"name": MODELS_VOLUME, "mountPath": MODELS_DIR}


def _from_image(index: int, model: Model, resolved: ResolvedService) -> dict:
    destination = model_path(model)
    return {
        "name": _init_name(index, model),
        "image": model.spec.source.location,
        "imagePullPolicy": resolved.runtime.image_pull_policy,
        # The model image keeps its files in /model (see `bereit model register`).
        "command": ["sh", "-c", 'mkdir -p "$0" && cp -R /model/. "$0"', destination],
        "volumeMounts": [_models_mount()],
        "resources": FETCH_RESOURCES,
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _from_https(index: int, model: Model, resolved: ResolvedService) -> dict:
    source = model.spec.source
    args = ["fetch", "--url", source.uri, "--dest", model_path(model)]
    if source.sha256:
        args += ["--sha256", source.sha256]
    if source.unpack:
        args.append("--unpack")
    container = {
        "name": _init_name(index, model),
        "image": resolved.runtime.runtime_image,
        "imagePullPolicy": resolved.runtime.image_pull_policy,
        "command": ["bereit-server"],
        "args": args,
        "volumeMounts": [_models_mount()],
        "resources": FETCH_RESOURCES,
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if source.secret_ref:
        container["env"] = [
            {
                "name": ENV_FETCH_AUTHORIZATION,
                "valueFrom": {"secretKeyRef": {"name": source.secret_ref.name, "key": "authorization"}},
            }
        ]
    return container


def _pvc_volume(index: int, model: Model) -> tuple[dict, dict]:
    claim, _, sub_path = model.spec.source.location.partition("/")
    volume_name = f"model-{index}-pvc"
    volume = {"name": volume_name, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    mount = {"name": volume_name, "mountPath": model_path(model), "readOnly": True}
    if sub_path.strip("/"):
        mount["subPath"] = sub_path.strip("/")
    return volume, mount


def place_models(resolved: ResolvedService) -> ModelPlacement:
    placement = ModelPlacement(volumes=[{"name": MODELS_VOLUME, "emptyDir": {}}])
    for index, model in enumerate(resolved.models):
        scheme = model.spec.source.scheme
        if scheme == "oci":
            placement.init_containers.append(_from_image(index, model, resolved))
            if model.spec.source.secret_ref:
                placement.pull_secrets.append(model.spec.source.secret_ref.name)
        elif scheme == "https":
            placement.init_containers.append(_from_https(index, model, resolved))
        else:
            volume, mount = _pvc_volume(index, model)
            placement.volumes.append(volume)
            placement.mounts.append(mount)
    return placement
