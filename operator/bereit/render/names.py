"""Names, labels and owner references of an InferenceService's children."""

from __future__ import annotations

from bereit.constants import (
    API_VERSION,
    INFERENCE_SERVICE_KIND,
    KEYS_SECRET_SUFFIX,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_SERVICE,
    MANAGED_BY,
    PART_OF,
    SCORE_PATH,
    SERVICE_PORT,
    SWAGGER_PATH,
)
from bereit.render.context import ResolvedService

APP_NAME = "bereit-inference"
COMPONENT = "predictor"


def deployment_name(resolved: ResolvedService) -> str:
    return resolved.name


def service_name(resolved: ResolvedService) -> str:
    return resolved.name


def keys_secret_name(resolved: ResolvedService) -> str:
    return resolved.name + KEYS_SECRET_SUFFIX


def code_config_map_name(resolved: ResolvedService) -> str:
    return resolved.name + "-code"


def selector_labels(resolved: ResolvedService) -> dict[str, str]:
    """Labels that pick this service's pods; never change them, Deployments cannot."""
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: resolved.name, LABEL_SERVICE: resolved.name}


def labels(resolved: ResolvedService) -> dict[str, str]:
    return {
        **selector_labels(resolved),
        LABEL_COMPONENT: COMPONENT,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def selector_string(resolved: ResolvedService) -> str:
    """The label selector as text, for the scale subresource (status.selector)."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(resolved).items()))


def owner_reference(resolved: ResolvedService) -> dict:
    if not resolved.service.metadata.uid:
        raise ValueError("the InferenceService has no uid: resolve it from the API server before rendering")
    return {
        "apiVersion": API_VERSION,
        "kind": INFERENCE_SERVICE_KIND,
        "name": resolved.name,
        "uid": resolved.service.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(resolved: ResolvedService, name: str) -> dict:
    return {
        "name": name,
        "namespace": resolved.namespace,
        "labels": labels(resolved),
        "ownerReferences": [owner_reference(resolved)],
    }


def _base_uri(resolved: ResolvedService) -> str:
    host = f"{service_name(resolved)}.{resolved.namespace}.svc.{resolved.runtime.cluster_domain}"
    return f"http://{host}" if SERVICE_PORT == 80 else f"http://{host}:{SERVICE_PORT}"


def scoring_uri(resolved: ResolvedService) -> str:
    return _base_uri(resolved) + SCORE_PATH


def swagger_uri(resolved: ResolvedService) -> str:
    return _base_uri(resolved) + SWAGGER_PATH
