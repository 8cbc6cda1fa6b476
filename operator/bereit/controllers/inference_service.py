"""InferenceService: resolve, check capacity, keep the keys, apply the children, report health.

One level-based pass does it all and is cheap when nothing changed: it reads only the kopf
indices, applies only children whose rendered manifest or owned fields changed, and writes
status only when it differs. Its own kopf handlers run it on create/update/resume; watches on
children, pods, models, targets and code ConfigMaps trigger it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from bereit.api import ComputeTarget, InferenceService, describe_validation_error
from bereit.api.conditions import (
    CAPACITY_RESERVED,
    CHILDREN_APPLIED,
    CODE_AVAILABLE,
    COMPUTE_TARGET_READY,
    FALSE,
    READY,
    SPEC_VALID,
    TRUE,
    UNKNOWN,
)
from bereit.api.quantity import format_cores
from bereit.constants import GROUP, INFERENCE_SERVICE_KIND, INFERENCE_SERVICE_PLURAL, LABEL_SERVICE, VERSION
from bereit.controllers import capacity, conditions, health
from bereit.controllers.api_client import ApiError
from bereit.controllers.children import ApplyOutcome, child_ref
from bereit.controllers.conditions import Verdict
from bereit.controllers.errors import retry_later
from bereit.controllers.indexes import SERVICE_LABEL
from bereit.controllers.keys import ensure_keys
from bereit.controllers.resolution import resolve, without_status
from bereit.controllers.state import Operator
from bereit.render import ResolvedService, names
from bereit.render.kinds import APPLIED_KINDS

log = logging.getLogger(__name__)

# --- handlers ---------------------------------------------------------------------------

@kopf.on.resume(GROUP, VERSION, INFERENCE_SERVICE_PLURAL)
@kopf.on.create(GROUP, VERSION, INFERENCE_SERVICE_PLURAL)
@kopf.on.update(GROUP, VERSION, INFERENCE_SERVICE_PLURAL)
async def inference_service_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    op: Operator = memo.operator
    with retry_later():
        await op.services.run((namespace, name))


@kopf.on.event(GROUP, VERSION, INFERENCE_SERVICE_PLURAL)
async def inference_service_event(type: str | None, namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Models list their users; a deleted service frees capacity on its target."""
    op: Operator = memo.operator
    spec = body.get("spec") or {}
    for reference in spec.get("models") or ():
        for model in op.caches.models_named(namespace, reference.get("name")):
            op.models.trigger((namespace, model["metadata"]["name"]))
    for served in (body.get("status") or {}).get("models") or ():
        op.models.trigger((namespace, served.get("model")))
    annotations = body.get("metadata", {}).get("annotations") or {}
    if type != "DELETED" and op.keys.regeneration_requested(namespace, name, annotations):
        # kopf leaves bereit.dev/* annotations out of what counts as a change (its own
        # annotations share the prefix), so a key request is noticed here.
        op.services.trigger((namespace, name))
    if type == "DELETED":
        op.forget_service(INFERENCE_SERVICE_KIND, namespace, name)
        target = op.ledger.release(namespace, name)
        if target:
            op.targets.trigger((namespace, target))
            for other in op.caches.services_on_target(namespace, target):
                op.services.trigger((namespace, other))


def _trigger_owner(op: Operator, namespace: str, labels: kopf.Labels) -> None:
    service = labels.get(LABEL_SERVICE)
    if service:
        op.services.trigger((namespace, service))


async def _child_event(type: str | None, namespace: str, name: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child changed or went away: its service checks it (and restores it if needed)."""
    op: Operator = memo.operator
    service = labels.get(LABEL_SERVICE)
    if type == "DELETED" and service:
        op.applied.drop(namespace, service, child_ref(body.get("kind"), name))
    _trigger_owner(op, namespace, labels)


for _child in APPLIED_KINDS:
    kopf.on.event(_child.group, _child.version, _child.plural, labels=SERVICE_LABEL, id=f"{_child.plural}_child_event")(_child_event)


@kopf.on.event("v1", "pods", labels=SERVICE_LABEL)
async def pod_event(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    _trigger_owner(memo.operator, namespace, labels)


@kopf.on.event("v1", "secrets", labels=SERVICE_LABEL)
async def keys_secret_event(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    _trigger_owner(memo.operator, namespace, labels)


@kopf.on.event("v1", "configmaps")
async def code_config_map_event(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A user's code ConfigMap changed: the services running its code roll."""
    op: Operator = memo.operator
    for service in op.caches.services_using_code(namespace, name):
        op.services.trigger((namespace, service))


# --- the reconcile pass ------------------------------------------------------------------

class Pass:
    """One reconcile of one InferenceService; collects verdicts and what it did."""

    def __init__(self, op: Operator, body: dict) -> None:
        self.op = op
        self.body = body
        self.meta = body["metadata"]
        self.namespace: str = self.meta["namespace"]
        self.name: str = self.meta["name"]
        self.generation = self.meta.get("generation")
        self.old = op.current_status(body)
        self.verdicts: list[Verdict] = []
        self.events: list[tuple[str, str, str]] = []
        self.spec_hash: str | None = None
        self.keys_created = False

    # Each step adds its verdict; one that returns None or False stops the service this pass.

    def validate(self) -> InferenceService | None:
        try:
            return InferenceService.model_validate(without_status(self.body))
        except ValidationError as error:
            self.verdicts.append(Verdict(SPEC_VALID, FALSE, "InvalidSpec", describe_validation_error(error)))
            return None

    def target(self, service: InferenceService) -> ComputeTarget | None:
        name = service.spec.compute_target
        body = self.op.caches.target(self.namespace, name)
        if body is None:
            self.verdicts.append(Verdict(
                COMPUTE_TARGET_READY, FALSE, "ComputeTargetNotFound",
                f"spec.computeTarget: ComputeTarget {name!r} not found in namespace {self.namespace}",
            ))
            return None
        target = ComputeTarget.model_validate(without_status(body))
        ready = conditions.find((body.get("status") or {}).get("conditions"), READY)
        if ready is not None and ready.get("status") == TRUE:
            self.verdicts.append(Verdict(COMPUTE_TARGET_READY, TRUE, "Ready", f"ComputeTarget {name!r}: {ready.get('message', '')}"))
            return target
        why = ready.get("message") if ready else "it has not been evaluated yet"
        if self.op.ledger.holds(self.namespace, self.name) == name:
            # Already running there: a target that lost nodes degrades the service, it does not stop it.
            self.verdicts.append(Verdict(COMPUTE_TARGET_READY, FALSE, "ComputeTargetDegraded", f"ComputeTarget {name!r} is not Ready: {why}"))
            return target
        self.verdicts.append(Verdict(COMPUTE_TARGET_READY, FALSE, "ComputeTargetNotReady", f"ComputeTarget {name!r} is not Ready: {why}"))
        return None

    def code_digest(self, service: InferenceService) -> tuple[bool, str | None]:
        code = service.spec.inference.code
        if code.config_map is None:
            source = "inline files" if code.inline is not None else f"the image at {code.image_path}"
            self.verdicts.append(Verdict(CODE_AVAILABLE, TRUE, "Available", f"code from {source}"))
            return True, None
        digest = self.op.caches.config_map_digest(self.namespace, code.config_map.name)
        if digest is None:
            self.verdicts.append(Verdict(
                CODE_AVAILABLE, FALSE, "CodeConfigMapNotFound",
                f"spec.inference.code.configMap: ConfigMap {code.config_map.name!r} not found in namespace {self.namespace}",
            ))
            return False, None
        self.verdicts.append(Verdict(CODE_AVAILABLE, TRUE, "Available", f"code from ConfigMap {code.config_map.name!r}"))
        return True, digest

    def reserve(self, service: InferenceService, target: ComputeTarget) -> bool:
        """Minimum replicas × CPU must fit in what the target has left after the others on it.

        No await between reading the ledger and writing it: on one event loop, two services
        cannot both take the last free vCPUs.
        """
        op, target_name, ledger = self.op, service.spec.compute_target, self.op.ledger
        need = capacity.cpu_need(service, target)
        reserved = Verdict(CAPACITY_RESERVED, TRUE, "Reserved", f"{capacity.describe_need(service, target)} reserved on ComputeTarget {target_name!r}")
        held_on = ledger.holds(self.namespace, self.name)
        if held_on == target_name and ledger.held(self.namespace, self.name) >= need:
            # Admitted before and asking no more: a shrinking target never evicts it.
            self.verdicts.append(reserved)
            return True
        total = capacity.measure(target, op.caches.nodes()).vcpus
        left = total - ledger.reserved(self.namespace, target_name, excluding=self.name)
        if need > left:
            self.verdicts.append(Verdict(
                CAPACITY_RESERVED, FALSE, "InsufficientCapacity",
                f"needs {capacity.describe_need(service, target)} but ComputeTarget {target_name!r} has "
                f"{format_cores(float(max(left, 0)))} of {format_cores(float(total))} vCPUs left after the other services on it",
            ))
            return False
        ledger.reserve(self.namespace, target_name, self.name, need)
        for changed in {target_name, held_on} - {None}:
            op.targets.trigger((self.namespace, changed))  # requestedVcpus in its status
        self.verdicts.append(reserved)
        return True

    async def deploy(self, resolved: ResolvedService) -> tuple[dict, bool]:
        """The keys Secret, then the children; returns the Secret and whether all were applied."""
        op = self.op
        annotations = self.meta.get("annotations") or {}
        keys = asyncio.ensure_future(ensure_keys(op.kube, op.keys, resolved, annotations))
        try:
            outcome, rendering = await op.children.converge(
                resolved, op.caches.children(self.namespace, self.name), self.meta.get("uid"), before_pods=keys
            )
        except BaseException:
            keys.cancel()
            raise
        made = await keys
        self.spec_hash = rendering.spec_hash
        for which in made.regenerated:
            self.events.append(("Normal", "KeyRegenerated", f"regenerated the {which} key in Secret {made.secret['name']}; the other key is unchanged"))
        if not outcome.applied:
            self.verdicts.append(Verdict(CHILDREN_APPLIED, FALSE, "ApplyRefused", f"the API server refused a child: {outcome.refused}"))
            return made.secret, False
        self.report_applied(resolved, outcome, len(rendering.children), made.created)
        return made.secret, True

    def report_applied(self, resolved: ResolvedService, outcome: ApplyOutcome, count: int, keys_created: bool) -> None:
        if outcome.restored:
            self.events.append(("Warning", "ChildRestored", f"restored {', '.join(outcome.restored)} after it was changed or deleted by someone else"))
        if outcome.created and not conditions.is_true(self.old.get("conditions"), CHILDREN_APPLIED):
            keys = f"; created Secret {names.keys_secret_name(resolved)} with a primary and a secondary key" if keys_created else ""
            self.events.append(("Normal", "Deployed", f"applied {', '.join(outcome.created + outcome.updated)}{keys}"))
        elif outcome.updated and self.old.get("observedGeneration") != self.generation:
            self.events.append(("Normal", "Updated", f"applied generation {self.generation}: {', '.join(outcome.updated)}"))
        self.verdicts.append(Verdict(CHILDREN_APPLIED, TRUE, "Applied", f"{count} children applied"))

    async def assess(self, secret: dict | None) -> None:
        op = self.op
        deployment = op.caches.deployment(self.namespace, self.name)
        spec_hash = self.spec_hash or (deployment or {}).get("specHash")
        found = health.assess(deployment, op.caches.pods(self.namespace, self.name), spec_hash)
        verdict = found.verdict
        if found.wants_log:
            verdict = Verdict(verdict.type, verdict.status, verdict.reason, await self._with_log(verdict.message, found.wants_log))
        keys = secret["keys"] if secret else ()
        self.verdicts.append(Verdict(verdict.type, verdict.status, verdict.reason, health.redact(verdict.message, keys)))
        self.replicas, self.ready_replicas = found.replicas, found.ready_replicas

    async def _with_log(self, message: str, where: tuple[str, str, bool]) -> str:
        """The last log lines of a failed container, fetched once per failure."""
        op = self.op
        cache_key = (self.namespace, self.name, *where, message)
        found = op.failure_logs.get(cache_key)
        if found is None:
            pod, container, previous = where
            try:
                text = await op.kube.pod_log(self.namespace, pod, container, op.settings.log_tail_lines, previous)
                lines = " | ".join(line for line in text.strip().splitlines()[-op.settings.log_tail_lines:])
                found = f"{message}; last log lines: {lines}" if lines else message
            except ApiError:
                found = message
            op.failure_logs.put(cache_key, found)
        return found


async def reconcile(op: Operator, key: tuple[str, str]) -> None:
    namespace, name = key
    body = op.caches.service(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    body = op.fresh(body)
    step = Pass(op, body)
    service = step.validate()
    secret = op.keys.freshest(namespace, name)
    served = step.old.get("models") or []
    target = None
    if service is not None:
        capacity.seed_ledger(op.ledger, op.caches.services(), op.caches.target)
        target = step.target(service)
        code_ok, code_digest = step.code_digest(service)
        resolution = resolve(
            service,
            {ref.name: op.caches.models_named(namespace, ref.name) for ref in service.spec.models},
            serving={m.get("model") for m in served},
        )
        step.verdicts.append(resolution.verdict)
        if target is not None and resolution.verdict.ok and code_ok and step.reserve(service, target):
            resolved = ResolvedService(service, resolution.models, target, op.settings.runtime(), code_digest)
            secret, applied = await step.deploy(resolved)
            if applied:
                served = [
                    {"name": m.model_name, "version": m.spec.version, "model": m.metadata.name} for m in resolution.models
                ]
        if not any(v.type == CAPACITY_RESERVED for v in step.verdicts):
            step.verdicts.append(Verdict(CAPACITY_RESERVED, UNKNOWN, "NotChecked", "checked once the target, models and code are resolved"))
        if not any(v.type == CHILDREN_APPLIED for v in step.verdicts):
            kept = " (the replicas of the last good generation keep running)" if served else ""
            step.verdicts.append(Verdict(CHILDREN_APPLIED, FALSE, "Blocked", f"not applied until the problems above are fixed{kept}"))
    await step.assess(secret)
    await finish(step, service, target, served, secret)


async def finish(step: Pass, service: InferenceService | None, target: ComputeTarget | None, served: list[dict], secret: dict | None) -> None:
    op, body = step.op, step.body
    verdicts = step.verdicts
    ready = conditions.ready_verdict(verdicts)
    state = conditions.derive_state(verdicts)
    all_verdicts = [*verdicts, ready, *conditions.progress_verdicts(ready, conditions.service_stalled(state, ready))]
    status: dict[str, Any] = {
        "observedGeneration": step.generation,
        "state": state.value,
        "conditions": conditions.merge(step.old.get("conditions"), all_verdicts, step.generation),
    }
    if not ready.ok:
        status["message"] = ready.message
    if service is not None:
        uris = ResolvedService(service, (), target or ComputeTarget(), op.settings.runtime())
        status["scoringUri"] = names.scoring_uri(uris)
        status["swaggerUri"] = names.swagger_uri(uris)
        status["selector"] = names.selector_string(uris)
    if served:
        status["models"] = served
        status["modelVersions"] = ",".join(f"{m['name']}:{m['version']}" for m in served)
    if secret is not None:
        status["keysSecretName"] = secret["name"]
    status["replicas"] = step.replicas
    status["readyReplicas"] = step.ready_replicas
    old_state = step.old.get("state")
    if await op.write_status(body, status):
        if old_state != state.value:
            if state.value == "Healthy":
                step.events.append(("Normal", "Healthy", ready.message))
            elif state.value in ("Failed", "Unhealthy"):
                step.events.append(("Warning", ready.reason, ready.message))
        elif state.value in ("Failed", "Unhealthy") and ready.reason != _ready_reason(step.old):
            step.events.append(("Warning", ready.reason, ready.message))
    for type_, reason, message in step.events:
        await op.event(body, type_, reason, message)


def _ready_reason(status: dict) -> str | None:
    condition = conditions.find(status.get("conditions"), READY)
    return condition.get("reason") if condition else None
