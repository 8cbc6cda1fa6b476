"""ComputeTarget: sums its matching Nodes and says whether that meets its purpose's minimum.

Node events re-evaluate the targets (only when a node's relevant facts changed); a target whose
verdict or size changed re-evaluates the services on it.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from bereit.api import ComputeTarget, describe_validation_error
from bereit.api.conditions import FALSE, READY
from bereit.api.quantity import format_bytes, format_cores
from bereit.constants import COMPUTE_TARGET_PLURAL, GROUP, VERSION
from bereit.controllers import capacity, conditions
from bereit.controllers.conditions import Verdict
from bereit.controllers.errors import retry_later
from bereit.controllers.resolution import without_status
from bereit.controllers.state import Operator

log = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, COMPUTE_TARGET_PLURAL)
@kopf.on.create(GROUP, VERSION, COMPUTE_TARGET_PLURAL)
@kopf.on.update(GROUP, VERSION, COMPUTE_TARGET_PLURAL)
async def compute_target_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    op: Operator = memo.operator
    with retry_later():
        await op.targets.run((namespace, name))


@kopf.on.event(GROUP, VERSION, COMPUTE_TARGET_PLURAL)
async def compute_target_event(type: str | None, namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Services on a target re-check when its size, verdict or node placement changed."""
    op: Operator = memo.operator
    key = (namespace, name)
    if type == "DELETED":
        op.seen_targets.pop(key, None)
        op.statuses.forget("ComputeTarget", namespace, name)
        op.targets.forget(key)
        facts: tuple | None = None
    else:
        status = body.get("status") or {}
        ready = conditions.is_true(status.get("conditions"), READY)
        facts = (body["metadata"].get("generation"), ready, status.get("vcpus"))
        if op.seen_targets.get(key) == facts:
            return
        op.seen_targets[key] = facts
    for service in op.caches.services_on_target(namespace, name):
        op.services.trigger((namespace, service))


@kopf.on.event("v1", "nodes")
async def node_event(type: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    op: Operator = memo.operator
    facts = None if type == "DELETED" else capacity.node_facts(body)
    if op.seen_nodes.get(name) == facts:
        return  # a heartbeat or an unrelated change: no target can change its verdict
    if facts is None:
        op.seen_nodes.pop(name, None)
    else:
        op.seen_nodes[name] = facts
    for target in op.caches.targets():
        op.targets.trigger((target["metadata"]["namespace"], target["metadata"]["name"]))


async def reconcile(op: Operator, key: tuple[str, str]) -> None:
    namespace, name = key
    body = op.caches.target(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    generation = body["metadata"].get("generation")
    old = op.current_status(body)
    try:
        target = ComputeTarget.model_validate(without_status(body))
    except ValidationError as error:
        verdict = Verdict(READY, FALSE, "InvalidSpec", describe_validation_error(error))
        status = {"observedGeneration": generation, "conditions": conditions.merge(old.get("conditions"), _with_progress(verdict), generation)}
        if await op.write_status(body, status):
            await op.event(body, "Warning", "InvalidSpec", verdict.message)
        return
    measured = capacity.measure(target, op.caches.nodes())
    verdict = capacity.target_verdict(target, measured)
    status = {
        "observedGeneration": generation,
        "nodes": measured.nodes,
        "vcpus": format_cores(float(measured.vcpus)),
        "memory": format_bytes(measured.memory),
        "requestedVcpus": format_cores(float(op.ledger.reserved(namespace, name))),
        "conditions": conditions.merge(old.get("conditions"), _with_progress(verdict), generation),
    }
    if await op.write_status(body, status):
        for changed in conditions.transitions(old.get("conditions"), status["conditions"]):
            if changed["type"] != READY:
                continue
            kind = "Normal" if changed["status"] == "True" else "Warning"
            await op.event(body, kind, changed["reason"], changed["message"])
            log.info("ComputeTarget %s/%s: %s", namespace, name, changed["message"])


def _with_progress(ready: Verdict) -> list[Verdict]:
    """A target that is not Ready waits for nodes or a spec fix: the user must act."""
    return [ready, *conditions.progress_verdicts(ready, stalled=not ready.ok)]
