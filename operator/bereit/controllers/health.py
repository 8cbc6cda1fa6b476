"""How an InferenceService's replicas are doing, from its Deployment and Pods. Pure, no I/O.

The watches keep only these small summaries in memory (not whole objects), so hundreds of
services cost little.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bereit.api.conditions import AVAILABLE, FALSE, TRUE
from bereit.constants import FIELD_MANAGER, POD_SPEC_HASH_ANNOTATION
from bereit.controllers.conditions import Verdict

IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_ERROR_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
MAX_MESSAGE = 2000


def fields_digest(body: Mapping[str, Any]) -> str:
    """A digest of the fields the operator's server-side applies own.

    When someone else changes one of them (kubectl edit, scale, apply), the API server moves
    its ownership away from us, the digest changes, and the child is applied again.
    """
    for entry in body.get("metadata", {}).get("managedFields") or ():
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply" and not entry.get("subresource"):
            raw = json.dumps(entry.get("fieldsV1", {}), sort_keys=True, separators=(",", ":"))
            return hashlib.sha256(raw.encode()).hexdigest()[:20]
    return ""


def deployment_summary(body: Mapping[str, Any]) -> dict:
    meta, spec, status = body.get("metadata", {}), body.get("spec", {}) or {}, body.get("status", {}) or {}
    template_annotations = (spec.get("template", {}).get("metadata", {}) or {}).get("annotations") or {}
    return {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "generation": meta.get("generation", 0),
        "observedGeneration": status.get("observedGeneration", 0),
        "specHash": template_annotations.get(POD_SPEC_HASH_ANNOTATION),
        "desired": spec.get("replicas", 1),
        "replicas": status.get("replicas", 0),
        "updated": status.get("updatedReplicas", 0),
        "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "conditions": [
            {k: c.get(k, "") for k in ("type", "status", "reason", "message")} for c in status.get("conditions") or ()
        ],
    }


@dataclass(frozen=True)
class Failure:
    reason: str
    container: str
    message: str
    restarts: int = 0
    # Where the last log lines are when the termination message is empty.
    log_container: str = ""
    log_previous: bool = False


def _container_failure(status: Mapping[str, Any], init: bool) -> Failure | None:
    name = status.get("name", "")
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    restarts = status.get("restartCount", 0)
    if waiting.get("reason") in IMAGE_PULL_REASONS:
        return Failure("ImagePullFailed", name, waiting.get("message") or waiting["reason"], restarts)
    if waiting.get("reason") in CONFIG_ERROR_REASONS:
        return Failure("ContainerConfigError", name, waiting.get("message") or waiting["reason"], restarts)
    failed = terminated if terminated.get("exitCode") not in (None, 0) else {}
    previous = False
    # The last crash tells why a container waits to restart or is not ready again yet; once
    # it is ready, it is history (e.g. the SIGKILL of a node restart): not a failure now.
    if not failed and last.get("exitCode") not in (None, 0) and (waiting or (restarts and not status.get("ready"))):
        failed, previous = last, True
    if not failed:
        return None
    if init:
        reason = "ModelDownloadFailed" if name.startswith("model-") else "InitContainerFailed"
    else:  # a failure is only reported while the container is not ready (see above)
        reason = "InitFailed"
    # The exit code first: 137 (killed) reads differently from 1 (init() raised).
    exited = f"exited with code {failed.get('exitCode')} ({failed.get('reason') or 'Error'})"
    message = (failed.get("message") or "").strip()
    if not message:
        return Failure(reason, name, exited, restarts, log_container=name, log_previous=previous)
    return Failure(reason, name, f"{exited}: {message}", restarts)


def pod_summary(body: Mapping[str, Any]) -> dict:
    meta, status = body.get("metadata", {}), body.get("status", {}) or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    failure = None
    for container in status.get("initContainerStatuses") or ():
        failure = _container_failure(container, init=True)
        if failure:
            break
    if failure is None:
        for container in status.get("containerStatuses") or ():
            failure = _container_failure(container, init=False)
            if failure:
                break
    if failure is None and status.get("phase") == "Failed":
        failure = Failure("ContainerFailed", "", status.get("message") or status.get("reason") or "the pod failed")
    scheduled = conditions.get("PodScheduled", {})
    return {
        "name": meta.get("name"),
        "specHash": (meta.get("annotations") or {}).get(POD_SPEC_HASH_ANNOTATION),
        "deleting": bool(meta.get("deletionTimestamp")),
        "ready": conditions.get("Ready", {}).get("status") == "True",
        "unschedulable": scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable",
        "schedulingMessage": scheduled.get("message", ""),
        "failure": failure,
    }


@dataclass(frozen=True)
class Health:
    verdict: Verdict
    replicas: int
    ready_replicas: int
    # A failing pod whose message must come from its log: (pod, container, previous).
    wants_log: tuple[str, str, bool] | None = None


def _replica_word(count: int) -> str:
    return "replica" if count == 1 else "replicas"


def assess(deployment: Mapping[str, Any] | None, pods: Iterable[Mapping[str, Any]], spec_hash: str | None) -> Health:
    """The Available condition: the current pod template rolled out and every replica ready."""
    if deployment is None:
        return Health(Verdict(AVAILABLE, FALSE, "DeploymentMissing", "the Deployment does not exist yet"), 0, 0)
    desired, ready = deployment["desired"], deployment["ready"]
    current = [p for p in pods if p["specHash"] == spec_hash and not p["deleting"]]
    for pod in sorted(current, key=lambda p: p["name"]):
        failure: Failure | None = pod["failure"]
        if failure is None:
            continue
        where = f"container {failure.container!r} of replica {pod['name']}" if failure.container else f"replica {pod['name']}"
        restarts = f" (restarted {failure.restarts} times)" if failure.restarts else ""
        message = f"{where}{restarts}: {failure.message}"[:MAX_MESSAGE]
        wants = (pod["name"], failure.log_container, failure.log_previous) if failure.log_container else None
        return Health(Verdict(AVAILABLE, FALSE, failure.reason, message), deployment["replicas"], ready, wants)
    for condition in deployment["conditions"]:
        if condition["type"] == "Progressing" and condition["status"] == "False" and condition["reason"] == "ProgressDeadlineExceeded":
            return Health(Verdict(AVAILABLE, FALSE, "ProgressDeadlineExceeded", condition["message"]), deployment["replicas"], ready)
        if condition["type"] == "ReplicaFailure" and condition["status"] == "True":
            return Health(Verdict(AVAILABLE, FALSE, "ReplicaFailure", condition["message"]), deployment["replicas"], ready)
    rolled_out = (
        deployment["specHash"] == spec_hash
        and deployment["observedGeneration"] >= deployment["generation"]
        and deployment["updated"] >= desired
        and deployment["replicas"] == deployment["updated"]
        and deployment["available"] >= desired
        and ready >= desired
    )
    if rolled_out:
        message = f"{ready} {_replica_word(ready)} ready" if desired else "scaled to 0 replicas"
        return Health(Verdict(AVAILABLE, TRUE, "RolledOut", message), deployment["replicas"], ready)
    message = (
        f"{deployment['updated'] if deployment['specHash'] == spec_hash else 0} of {desired} "
        f"{_replica_word(desired)} updated, {ready} ready"
    )
    unschedulable = [p for p in current if p["unschedulable"]]
    if unschedulable:
        message += f"; replica {unschedulable[0]['name']} cannot be scheduled: {unschedulable[0]['schedulingMessage']}"
    return Health(Verdict(AVAILABLE, FALSE, "RollingOut", message[:MAX_MESSAGE]), deployment["replicas"], ready)


def redact(message: str, secrets: Iterable[str]) -> str:
    """Remove keys from a message that came from a replica (its log or termination message)."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    return re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1[redacted]", message)
