"""The Deployment whose replicas run bereit-server with the user's entry script."""

from __future__ import annotations

import hashlib
import json
import posixpath

from bereit import constants as c
from bereit.render import names
from bereit.render.code import inline_code_items
from bereit.render.context import ResolvedService
from bereit.render.models import model_dir, place_models
from bereit.render.resources import container_resources
from bereit.render.security import container_security_context, pod_security_context

CONTAINER_NAME = "server"
CODE_VOLUME = "code"
KEYS_VOLUME = "keys"
TMP_VOLUME = "tmp"
PACKAGES_VOLUME = "packages"
# Long enough for endpoints to drop the pod before the server stops taking requests.
PRE_STOP_SECONDS = 5
READINESS_PERIOD_SECONDS = 2


def _code_dir(resolved: ResolvedService) -> str:
    return resolved.service.spec.inference.code.image_path or c.CODE_DIR


def _entry_script(resolved: ResolvedService) -> str:
    return posixpath.join(_code_dir(resolved), resolved.service.spec.inference.entry_script)


def _env(resolved: ResolvedService) -> list[dict]:
    spec = resolved.service.spec
    scoring = spec.scoring
    collection = spec.data_collection
    model_folder = model_dir(resolved)
    env = [
        {"name": c.ENV_SERVICE_NAME, "value": resolved.name},
        {"name": c.ENV_ENTRY_SCRIPT, "value": _entry_script(resolved)},
        {"name": c.ENV_AZUREML_ENTRY_SCRIPT, "value": _entry_script(resolved)},
        {"name": c.ENV_MODEL_DIR, "value": model_folder},
        {"name": c.ENV_AZUREML_MODEL_DIR, "value": model_folder},
        {"name": c.ENV_PORT, "value": str(c.SERVER_PORT)},
        {"name": c.ENV_AUTH_MODE, "value": spec.auth.mode},
        {"name": c.ENV_KEYS_DIR, "value": c.KEYS_DIR},
        {"name": c.ENV_SCORING_TIMEOUT_MS, "value": str(scoring.timeout_ms)},
        {"name": c.ENV_MAX_CONCURRENT_REQUESTS, "value": str(scoring.max_concurrent_requests_per_replica)},
        {"name": c.ENV_MAX_QUEUE_LENGTH, "value": str(scoring.max_queue_length)},
        {"name": c.ENV_MAX_QUEUE_WAIT_MS, "value": str(scoring.max_queue_wait_ms)},
        {"name": c.ENV_MAX_REQUEST_BYTES, "value": str(scoring.max_request_bytes)},
        {"name": c.ENV_DATA_COLLECTION, "value": "stdout" if collection.enabled else "off"},
        {"name": c.ENV_DATA_COLLECTION_SAMPLE_RATE, "value": str(collection.sample_rate)},
        {"name": c.ENV_LOG_FORMAT, "value": "json"},
    ]
    packages = spec.inference.environment.python_packages
    if packages:
        env.append({"name": c.ENV_EXTRA_PACKAGES, "value": " ".join(packages)})
        env.append({"name": c.ENV_PACKAGE_CACHE_DIR, "value": c.PACKAGE_CACHE_DIR})
    env += [{"name": variable.name, "value": variable.value} for variable in spec.inference.environment.env]
    return env


def _volumes_and_mounts(resolved: ResolvedService, model_mounts: list[dict]) -> tuple[list[dict], list[dict]]:
    spec = resolved.service.spec
    volumes = [{"name": TMP_VOLUME, "emptyDir": {}}]
    mounts = [
        {"name": TMP_VOLUME, "mountPath": c.SCRATCH_DIR},
        {"name": "models", "mountPath": c.MODELS_DIR, "readOnly": True},
        *model_mounts,
    ]
    code = spec.inference.code
    if code.image_path is None:
        if code.config_map:
            volumes.append({"name": CODE_VOLUME, "configMap": {"name": code.config_map.name}})
        else:
            source = {"name": names.code_config_map_name(resolved), "items": inline_code_items(resolved)}
            volumes.append({"name": CODE_VOLUME, "configMap": source})
        mounts.append({"name": CODE_VOLUME, "mountPath": c.CODE_DIR, "readOnly": True})
    if spec.auth.mode != "none":
        # Files, not env vars: a regenerated key reaches running replicas without a restart.
        volumes.append(
            {
                "name": KEYS_VOLUME,
                "secret": {"secretName": names.keys_secret_name(resolved), "defaultMode": 0o440},
            }
        )
        mounts.append({"name": KEYS_VOLUME, "mountPath": c.KEYS_DIR, "readOnly": True})
    if spec.inference.environment.python_packages:
        volumes.append({"name": PACKAGES_VOLUME, "emptyDir": {}})
        mounts.append({"name": PACKAGES_VOLUME, "mountPath": c.PACKAGE_CACHE_DIR})
    return volumes, mounts


def _probes(resolved: ResolvedService) -> dict:
    liveness = resolved.service.spec.liveness_probe
    return {
        "livenessProbe": {
            "httpGet": {"path": c.LIVENESS_PATH, "port": "http"},
            "periodSeconds": liveness.period_seconds,
            "initialDelaySeconds": liveness.initial_delay_seconds,
            "timeoutSeconds": liveness.timeout_seconds,
            "successThreshold": liveness.success_threshold,
            "failureThreshold": liveness.failure_threshold,
        },
        # Ready as soon as init() has finished; traffic follows readiness, not liveness.
        "readinessProbe": {
            "httpGet": {"path": c.READINESS_PATH, "port": "http"},
            "periodSeconds": READINESS_PERIOD_SECONDS,
            "timeoutSeconds": liveness.timeout_seconds,
            "failureThreshold": 3,
        },
    }


def _grace_period(resolved: ResolvedService) -> int:
    """Room for in-flight run() calls to finish after SIGTERM, plus the preStop pause."""
    timeout_seconds = -(-resolved.service.spec.scoring.timeout_ms // 1000)
    return min(max(30, timeout_seconds + PRE_STOP_SECONDS + 5), 3600)


def _spread(resolved: ResolvedService) -> list[dict]:
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": names.selector_labels(resolved)},
        }
    ]


def _pod_annotations(resolved: ResolvedService) -> dict[str, str]:
    if not resolved.service.spec.telemetry.enabled:
        return {}
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(c.SERVER_PORT),
        "prometheus.io/path": c.METRICS_PATH,
    }


def _code_fingerprint(resolved: ResolvedService) -> object:
    code = resolved.service.spec.inference.code
    return code.inline if code.inline is not None else resolved.code_digest


def spec_hash(pod_template: dict, resolved: ResolvedService) -> str:
    """Changes when the pod or the code changes; key rotation changes neither."""
    payload = json.dumps([pod_template, _code_fingerprint(resolved)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def render_deployment(resolved: ResolvedService) -> dict:
    spec = resolved.service.spec
    environment = spec.inference.environment
    placement = place_models(resolved)
    volumes, mounts = _volumes_and_mounts(resolved, placement.mounts)
    container = {
        "name": CONTAINER_NAME,
        "image": environment.image or resolved.runtime.runtime_image,
        "imagePullPolicy": resolved.runtime.image_pull_policy,
        "command": ["bereit-server"],
        "ports": [{"name": "http", "containerPort": c.SERVER_PORT, "protocol": "TCP"}],
        "env": _env(resolved),
        "resources": container_resources(resolved.service, resolved.compute_target),
        "volumeMounts": mounts,
        **_probes(resolved),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": container_security_context(),
        # When init() fails the last log lines become the reason the operator shows.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pull_secrets = [secret.name for secret in environment.image_pull_secrets] + placement.pull_secrets
    target = resolved.compute_target.spec
    pod_spec = {
        "automountServiceAccountToken": False,
        # Hundreds of services share a namespace: no service-link variables in every pod.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "initContainers": placement.init_containers,
        "containers": [container],
        "volumes": volumes + placement.volumes,
        "terminationGracePeriodSeconds": _grace_period(resolved),
        "topologySpreadConstraints": _spread(resolved),
    }
    if pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in dict.fromkeys(pull_secrets)]
    if target.node_selector:
        pod_spec["nodeSelector"] = dict(target.node_selector)
    if target.tolerations:
        pod_spec["tolerations"] = [toleration.to_api() for toleration in target.tolerations]
    template = {
        "metadata": {"labels": names.labels(resolved), "annotations": _pod_annotations(resolved)},
        "spec": pod_spec,
    }
    template["metadata"]["annotations"][c.POD_SPEC_HASH_ANNOTATION] = spec_hash(template, resolved)
    deployment_spec = {
        "selector": {"matchLabels": names.selector_labels(resolved)},
        "revisionHistoryLimit": 5,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": template,
    }
    # With autoscaling the HPA owns the replica count: leaving it out keeps the two from fighting.
    if not spec.autoscaling:
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.object_meta(resolved, names.deployment_name(resolved)),
        "spec": deployment_spec,
    }
