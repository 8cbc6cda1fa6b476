"""Model: one (modelName, version) per namespace, the services that use it, delete protection.

The finalizer FINALIZER_MODEL_IN_USE is on a Model exactly while some InferenceService uses it,
so deleting a Model in use waits (with a condition and an event naming the users) and goes
through as soon as the last user lets go.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from bereit.api import Model, describe_validation_error
from bereit.api.conditions import FALSE, IN_USE, READY, TRUE
from bereit.api.model import model_name_of
from bereit.constants import FINALIZER_MODEL_IN_USE, GROUP, MODEL_PLURAL, VERSION
from bereit.controllers import conditions
from bereit.controllers.conditions import Verdict
from bereit.controllers.errors import retry_later
from bereit.controllers.resolution import (
    first_registered,
    without_status,
)
from bereit.controllers.state import Operator

log = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, MODEL_PLURAL)
@kopf.on.create(GROUP, VERSION, MODEL_PLURAL)
@kopf.on.update(GROUP, VERSION, MODEL_PLURAL)
async def model_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    op: Operator = memo.operator
    with retry_later():
        await op.models.run((namespace, name))


@kopf.on.event(GROUP, VERSION, MODEL_PLURAL)
async def model_event(type: str | None, namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Versions of one model decide each other's uniqueness; services pick among them."""
    op: Operator = memo.operator
    model_name = model_name_of(body)
    if type == "DELETED":
        op.statuses.forget("Model", namespace, name)
        op.models.forget((namespace, name))
    elif body["metadata"].get("deletionTimestamp"):
        op.models.trigger((namespace, name))  # deletion requested: release or block it now
    for sibling in op.caches.models_named(namespace, model_name):
        if sibling["metadata"]["name"] != name:
            op.models.trigger((namespace, sibling["metadata"]["name"]))
    for service in op.caches.services_using_model_name(namespace, model_name):
        op.services.trigger((namespace, service))


def users_of(op: Operator, namespace: str, body: dict, owns_version: bool) -> list[str]:
    """Services that serve this Model object, or pin its version (when it is the one that counts)."""
    name = body["metadata"]["name"]
    users = set(op.caches.services_serving(namespace, name))
    if owns_version:
        users |= set(op.caches.services_pinning(namespace, model_name_of(body), body["spec"].get("version")))
    return sorted(users)


def _names(users: list[str]) -> str:
    return ", ".join(users)


async def reconcile(op: Operator, key: tuple[str, str]) -> None:
    namespace, name = key
    body = op.caches.model(namespace, name)
    if body is None:
        return
    body = op.fresh(body)
    meta = body["metadata"]
    generation = meta.get("generation")
    deleting = bool(meta.get("deletionTimestamp"))
    old = op.current_status(body)
    model_name = model_name_of(body)
    version = (body.get("spec") or {}).get("version")

    try:
        Model.model_validate(without_status(body))
        owner = first_registered(op.caches.models_named(namespace, model_name), version)
        if deleting or owner is None or owner["metadata"]["name"] == name:
            ready = Verdict(READY, TRUE, "Registered", f"{model_name} version {version}")
        else:
            newest = max(b["spec"]["version"] for b in op.caches.models_named(namespace, model_name))
            ready = Verdict(
                READY, FALSE, "DuplicateVersion",
                f"spec.version: version {version} of model {model_name!r} is already registered as Model "
                f"{owner['metadata']['name']!r}; register version {newest + 1} instead",
            )
    except ValidationError as error:
        ready = Verdict(READY, FALSE, "InvalidSpec", describe_validation_error(error))

    users = users_of(op, namespace, body, owns_version=ready.ok)
    if users and deleting:
        in_use = Verdict(IN_USE, TRUE, "DeletionBlocked", f"cannot be deleted while InferenceServices use it: {_names(users)}")
    elif users:
        in_use = Verdict(IN_USE, TRUE, "InUse", f"used by InferenceServices {_names(users)}")
    else:
        in_use = Verdict(IN_USE, FALSE, "NotInUse", "no InferenceService uses this version")

    body = await _keep_finalizer(op, body, wanted=bool(users))
    if deleting and not users:
        return  # the finalizer is gone, so is the Model

    status = {
        "observedGeneration": generation,
        "modelName": model_name,
        "usedBy": users,
        "conditions": conditions.merge(old.get("conditions"), [ready, in_use, *conditions.progress_verdicts(ready, stalled=not ready.ok)], generation),
    }
    if await op.write_status(body, status):
        for changed in conditions.transitions(old.get("conditions"), status["conditions"]):
            if changed["reason"] == "DeletionBlocked":
                await op.event(body, "Warning", "DeletionBlocked", changed["message"])
            elif changed["type"] == READY and changed["status"] != TRUE:
                await op.event(body, "Warning", changed["reason"], changed["message"])


async def _keep_finalizer(op: Operator, body: dict, wanted: bool) -> dict:
    """Add or remove our finalizer; other finalizers are left as they are.

    The patch carries the resourceVersion it was computed from, so a concurrent change to the
    list is a conflict (retried on fresh data), never a lost finalizer.
    """
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    has = FINALIZER_MODEL_IN_USE in finalizers
    if has == wanted or (wanted and meta.get("deletionTimestamp")):
        return body
    updated = finalizers + [FINALIZER_MODEL_IN_USE] if wanted else [f for f in finalizers if f != FINALIZER_MODEL_IN_USE]
    patch = {"metadata": {"finalizers": updated, "resourceVersion": meta.get("resourceVersion")}}
    answer = await op.kube.patch(body["apiVersion"], body["kind"], meta["namespace"], meta["name"], patch)
    op.statuses.remember(answer)
    log.info("Model %s/%s: %s finalizer", meta["namespace"], meta["name"], "added" if wanted else "removed")
    return answer
