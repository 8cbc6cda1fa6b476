"""InferenceService: resolve, check capacity, keep the keys, apply the children, report health.

One level-based pass does it all and is cheap when nothing changed: it reads only the kopf
indices, applies only children whose rendered manifest or owned fields changed, and writes
status only when it differs. Its own kopf handlers run it on create/update/resume; watches on
children, pods, models, targets and code ConfigMaps trigger it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
from typing import Any

import kopf
from pydantic import ValidationError

from bereit.api import ComputeTarget, InferenceService, describe_validation_error
from bereit.api.quantity import format_cores
from bereit.constants import (
    GROUP,
    LABEL_SERVICE,
    POD_SPEC_HASH_ANNOTATION,
    PRIMARY_KEY,
    REGENERATE_PRIMARY_KEY_ANNOTATION,
    REGENERATE_SECONDARY_KEY_ANNOTATION,
    SECONDARY_KEY,
    VERSION,
)
from bereit.controllers import capacity, conditions, health
from bereit.controllers.api_client import (
    ApiError,
    Invalid,
    ObjectExists,
    TransientError,
)
from bereit.controllers.conditions import FALSE, TRUE, UNKNOWN, Verdict
from bereit.controllers.errors import retry_later
from bereit.controllers.indexes import (
    HANDLED_PRIMARY,
    HANDLED_SECONDARY,
    SERVICE_LABEL,
    keys_secret_summary,
)
from bereit.controllers.resolution import resolve, without_status
from bereit.controllers.state import AppliedChild, Operator, resource_version
from bereit.render import ResolvedService, names, render_children, render_keys_secret

log = logging.getLogger(__name__)
PLURAL = "inferenceservices"
KIND = "InferenceService"

TARGET_READY = "ComputeTargetReady"
CODE_AVAILABLE = "CodeAvailable"
CAPACITY = "CapacityReserved"
APPLIED = "ChildrenApplied"
KEY_BYTES = 32


# --- handlers ---------------------------------------------------------------------------

@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def inference_service_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    op: Operator = memo.operator
    with retry_later():
        await op.services.run((namespace, name))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def inference_service_event(type: str | None, namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Models list their users; a deleted service frees capacity on its target."""
    op: Operator = memo.operator
    spec = body.get("spec") or {}
    for reference in spec.get("models") or ():
        for model in op.caches.models_named(namespace, reference.get("name")):
            op.models.trigger((namespace, model["metadata"]["name"]))
    for served in (body.get("status") or {}).get("models") or ():
        op.models.trigger((namespace, served.get("model")))
    if type != "DELETED" and _regeneration_requested(op, namespace, name, body):
        # kopf leaves bereit.dev/* annotations out of what counts as a change (its own
        # annotations share the prefix), so a key request is noticed here.
        op.services.trigger((namespace, name))
    if type == "DELETED":
        op.services.forget((namespace, name))
        op.forget(KIND, namespace, name)
        op.written_secrets.pop((namespace, name), None)
        op.rendered.pop((namespace, name), None)
        for key in [k for k in op.applied if k[0] == namespace and k[1] == name]:
            op.applied.pop(key, None)
        target = op.ledger.release(namespace, name)
        if target:
            op.targets.trigger((namespace, target))
            for other in op.caches.services_on_target(namespace, target):
                op.services.trigger((namespace, other))


def _regeneration_requested(op: Operator, namespace: str, name: str, body: kopf.Body) -> bool:
    secret = _freshest_secret(op, namespace, name)
    if secret is None:
        return False
    annotations = body.get("metadata", {}).get("annotations") or {}
    primary = annotations.get(REGENERATE_PRIMARY_KEY_ANNOTATION)
    secondary = annotations.get(REGENERATE_SECONDARY_KEY_ANNOTATION)
    return (primary is not None and primary != secret["handledPrimary"]) or (
        secondary is not None and secondary != secret["handledSecondary"]
    )


def _trigger_owner(op: Operator, namespace: str, labels: kopf.Labels) -> None:
    service = labels.get(LABEL_SERVICE)
    if service:
        op.services.trigger((namespace, service))


async def _child_event(type: str | None, namespace: str, name: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child changed or went away: its service checks it (and restores it if needed)."""
    op: Operator = memo.operator
    service = labels.get(LABEL_SERVICE)
    if type == "DELETED" and service:
        op.applied.pop((namespace, service, f"{body.get('kind')}/{name}"), None)
    _trigger_owner(op, namespace, labels)


for _group, _version, _plural in (
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("apps", "v1", "deployments"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
):
    kopf.on.event(_group, _version, _plural, labels=SERVICE_LABEL, id=f"{_plural}_child_event")(_child_event)


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
            self.verdicts.append(Verdict("SpecValid", FALSE, "InvalidSpec", describe_validation_error(error)))
            return None

    def target(self, service: InferenceService) -> ComputeTarget | None:
        name = service.spec.compute_target
        body = self.op.caches.target(self.namespace, name)
        if body is None:
            self.verdicts.append(Verdict(
                TARGET_READY, FALSE, "ComputeTargetNotFound",
                f"spec.computeTarget: ComputeTarget {name!r} not found in namespace {self.namespace}",
            ))
            return None
        target = ComputeTarget.model_validate(without_status(body))
        ready = conditions.find((body.get("status") or {}).get("conditions"), "Ready")
        if ready is not None and ready.get("status") == TRUE:
            self.verdicts.append(Verdict(TARGET_READY, TRUE, "Ready", f"ComputeTarget {name!r}: {ready.get('message', '')}"))
            return target
        why = ready.get("message") if ready else "it has not been evaluated yet"
        if self.op.ledger.holds(self.namespace, self.name) == name:
            # Already running there: a target that lost nodes degrades the service, it does not stop it.
            self.verdicts.append(Verdict(TARGET_READY, FALSE, "ComputeTargetDegraded", f"ComputeTarget {name!r} is not Ready: {why}"))
            return target
        self.verdicts.append(Verdict(TARGET_READY, FALSE, "ComputeTargetNotReady", f"ComputeTarget {name!r} is not Ready: {why}"))
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
        reserved = Verdict(CAPACITY, TRUE, "Reserved", f"{capacity.describe_need(service, target)} reserved on ComputeTarget {target_name!r}")
        held_on = ledger.holds(self.namespace, self.name)
        if held_on == target_name and ledger.held(self.namespace, self.name) >= need:
            # Admitted before and asking no more: a shrinking target never evicts it.
            self.verdicts.append(reserved)
            return True
        total = capacity.measure(target, op.caches.nodes()).vcpus
        left = total - ledger.reserved(self.namespace, target_name, excluding=self.name)
        if need > left:
            self.verdicts.append(Verdict(
                CAPACITY, FALSE, "InsufficientCapacity",
                f"needs {capacity.describe_need(service, target)} but ComputeTarget {target_name!r} has "
                f"{format_cores(float(max(left, 0)))} of {format_cores(float(total))} vCPUs left after the other services on it",
            ))
            return False
        ledger.reserve(self.namespace, target_name, self.name, need)
        for changed in {target_name, held_on} - {None}:
            op.targets.trigger((self.namespace, changed))  # requestedVcpus in its status
        self.verdicts.append(reserved)
        return True

    async def ensure_keys(self, resolved: ResolvedService) -> dict:
        """Create the keys Secret once; regenerate one key when its annotation asks for it."""
        op = self.op
        secret = _freshest_secret(op, self.namespace, self.name)
        annotations = self.meta.get("annotations") or {}
        if secret is None:
            manifest = render_keys_secret(resolved, secrets.token_urlsafe(KEY_BYTES), secrets.token_urlsafe(KEY_BYTES))
            handled = {
                HANDLED_PRIMARY: annotations.get(REGENERATE_PRIMARY_KEY_ANNOTATION),
                HANDLED_SECONDARY: annotations.get(REGENERATE_SECONDARY_KEY_ANNOTATION),
            }
            manifest["metadata"]["annotations"] = {k: v for k, v in handled.items() if v is not None}
            try:
                created = await op.kube.create(manifest)
                self.keys_created = True
            except ObjectExists:
                created = await op.kube.get("v1", "Secret", self.namespace, manifest["metadata"]["name"])
                if created is None:
                    raise TransientError(409, "Conflict", "the keys Secret exists and does not") from None
            secret = _remember_secret(op, self.namespace, self.name, created)
        for annotation, handled_key, data_key, which in (
            (REGENERATE_PRIMARY_KEY_ANNOTATION, "handledPrimary", PRIMARY_KEY, "primary"),
            (REGENERATE_SECONDARY_KEY_ANNOTATION, "handledSecondary", SECONDARY_KEY, "secondary"),
        ):
            wanted = annotations.get(annotation)
            if wanted is None or wanted == secret[handled_key]:
                continue
            patch = {
                "metadata": {
                    "resourceVersion": secret["resourceVersion"],
                    "annotations": {HANDLED_PRIMARY if which == "primary" else HANDLED_SECONDARY: wanted},
                },
                "data": {data_key: base64.b64encode(secrets.token_urlsafe(KEY_BYTES).encode()).decode()},
            }
            answer = await op.kube.patch("v1", "Secret", self.namespace, secret["name"], patch)
            secret = _remember_secret(op, self.namespace, self.name, answer)
            self.events.append(("Normal", "KeyRegenerated", f"regenerated the {which} key in Secret {secret['name']}; the other key is unchanged"))
        return secret

    async def deploy(self, resolved: ResolvedService) -> tuple[dict, bool]:
        """The keys Secret, then the children; returns the Secret and whether all were applied."""
        keys = asyncio.ensure_future(self.ensure_keys(resolved))
        try:
            applied = await self.apply_children(resolved, before_pods=keys)
        except BaseException:
            keys.cancel()
            raise
        return await keys, applied

    async def apply_children(self, resolved: ResolvedService, before_pods: asyncio.Future) -> bool:
        """Apply the children whose manifest changed or whose owned fields someone else changed.

        What pods mount (the keys Secret, passed in as `before_pods`, and the code ConfigMap)
        is written first, side by side; the rest are applied at once, so a slow Service (its
        ClusterIP is allocated on create) does not hold up the Deployment.
        """
        op = self.op
        _, digests, self.spec_hash = _rendered(op, resolved)
        live = {f"{c['kind']}/{c['name']}": c for c in op.caches.children(self.namespace, self.name)}
        wanted: set[str] = set()
        stale = []
        for ref, digest in digests:
            wanted.add(ref)
            record = op.applied.get((self.namespace, self.name, ref))
            seen = live.get(ref)
            if record and record.digest == digest and (
                seen is None or (seen["uid"] == record.uid and seen["fields"] == record.fields and not seen["deleting"])
            ):
                continue  # applied, and nobody changed what we own since
            stale.append((ref, digest, record, seen))
        first, rest = [], []
        if stale:
            children, _, _ = _rendered(op, resolved, manifests=True)
            by_ref = {f"{c['kind']}/{c['metadata']['name']}": c for c in children}
            for ref, digest, record, seen in stale:
                (first if ref.startswith("ConfigMap/") else rest).append((ref, by_ref[ref], digest, record, seen))
        outcomes: dict[str, list[str]] = {"created": [], "restored": [], "updated": []}
        try:
            await asyncio.gather(before_pods, *(self._apply(item, outcomes) for item in first))
            await asyncio.gather(*(self._apply(item, outcomes) for item in rest))
            for ref, seen in live.items():
                if ref not in wanted and seen["owner"] == self.meta.get("uid") and not seen["deleting"]:
                    await op.kube.delete(seen["apiVersion"], seen["kind"], self.namespace, seen["name"], uid=seen["uid"])
                    op.applied.pop((self.namespace, self.name, ref), None)
                    outcomes["updated"].append(f"{ref} (removed)")
        except Invalid as error:
            self.verdicts.append(Verdict(APPLIED, FALSE, "ApplyRefused", f"the API server refused a child: {error.message}"))
            return False
        created, restored, updated = (sorted(outcomes[k]) for k in ("created", "restored", "updated"))
        if restored:
            self.events.append(("Warning", "ChildRestored", f"restored {', '.join(restored)} after it was changed or deleted by someone else"))
        if created and (self.old.get("conditions") is None or not conditions.is_true(self.old.get("conditions"), APPLIED)):
            keys = f"; created Secret {names.keys_secret_name(resolved)} with a primary and a secondary key" if self.keys_created else ""
            self.events.append(("Normal", "Deployed", f"applied {', '.join(created + updated)}{keys}"))
        elif updated and self.old.get("observedGeneration") != self.generation:
            self.events.append(("Normal", "Updated", f"applied generation {self.generation}: {', '.join(updated)}"))
        self.verdicts.append(Verdict(APPLIED, TRUE, "Applied", f"{len(digests)} children applied"))
        return True

    async def _apply(self, item: tuple, outcomes: dict[str, list[str]]) -> None:
        ref, child, digest, record, seen = item
        answer = await self.op.kube.apply(child)
        self.op.applied[(self.namespace, self.name, ref)] = AppliedChild(
            digest, answer["metadata"].get("uid", ""), health.fields_digest(answer)
        )
        if seen is None and record is None:
            outcomes["created"].append(ref)
        elif record is not None and record.digest == digest:
            outcomes["restored"].append(ref)
        else:
            outcomes["updated"].append(ref)

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
        cache_key = (self.namespace, *where, message)
        if cache_key not in op.log_messages:
            pod, container, previous = where
            try:
                text = await op.kube.pod_log(self.namespace, pod, container, op.settings.log_tail_lines, previous)
                lines = " | ".join(line for line in text.strip().splitlines()[-op.settings.log_tail_lines:])
                op.log_messages[cache_key] = f"{message}; last log lines: {lines}" if lines else message
            except ApiError:
                op.log_messages[cache_key] = message
            if len(op.log_messages) > 1000:
                op.log_messages.pop(next(iter(op.log_messages)))
        return op.log_messages[cache_key]


async def reconcile(op: Operator, key: tuple[str, str]) -> None:
    namespace, name = key
    body = op.caches.service(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    body = op.fresh(body)
    step = Pass(op, body)
    service = step.validate()
    secret = _freshest_secret(op, namespace, name)
    served = step.old.get("models") or []
    target = None
    if service is not None:
        seed_ledger(op)
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
        if not any(v.type == CAPACITY for v in step.verdicts):
            step.verdicts.append(Verdict(CAPACITY, UNKNOWN, "NotChecked", "checked once the target, models and code are resolved"))
        if not any(v.type == APPLIED for v in step.verdicts):
            kept = " (the replicas of the last good generation keep running)" if served else ""
            step.verdicts.append(Verdict(APPLIED, FALSE, "Blocked", f"not applied until the problems above are fixed{kept}"))
    await step.assess(secret)
    await finish(step, service, target, served, secret)


async def finish(step: Pass, service: InferenceService | None, target: ComputeTarget | None, served: list[dict], secret: dict | None) -> None:
    op, body = step.op, step.body
    verdicts = step.verdicts
    ready = conditions.ready_verdict(verdicts)
    state = conditions.derive_state(verdicts)
    all_verdicts = [*verdicts, ready]
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


def _fingerprint(resolved: ResolvedService) -> tuple:
    """What rendering reads: the service's name, uid and spec, the models' and the target's
    specs (their generations say when they change) and the code digest."""
    service = resolved.service.metadata
    return (
        service.uid, service.generation,
        tuple((m.metadata.uid, m.metadata.generation) for m in resolved.models),
        (resolved.compute_target.metadata.uid, resolved.compute_target.metadata.generation),
        resolved.code_digest,
    )


def _rendered(op: Operator, resolved: ResolvedService, manifests: bool = False) -> tuple[list[dict] | None, list[tuple[str, str]], str | None]:
    """(children, [(ref, digest)], pod spec hash); rendered again only when an input changed.

    Only the digests are kept between passes (manifests are large; hundreds of services):
    `manifests=True` renders when the caller is about to apply.
    """
    key, fingerprint = (resolved.namespace, resolved.name), _fingerprint(resolved)
    cached = op.rendered.get(key)
    if cached is not None and cached[0] == fingerprint and not manifests:
        return None, cached[1], cached[2]
    children = render_children(resolved)
    digests = [
        (f"{c['kind']}/{c['metadata']['name']}", hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()[:20])
        for c in children
    ]
    spec_hash = next(
        (c["spec"]["template"]["metadata"]["annotations"].get(POD_SPEC_HASH_ANNOTATION) for c in children if c["kind"] == "Deployment"),
        None,
    )
    op.rendered[key] = (fingerprint, digests, spec_hash)
    return children, digests, spec_hash


def _ready_reason(status: dict) -> str | None:
    condition = conditions.find(status.get("conditions"), "Ready")
    return condition.get("reason") if condition else None


def _freshest_secret(op: Operator, namespace: str, service: str) -> dict | None:
    indexed = op.caches.keys_secret(namespace, service)
    written = op.written_secrets.get((namespace, service))
    if written and (indexed is None or resource_version(written["resourceVersion"]) > resource_version(indexed["resourceVersion"])):
        return written
    return indexed


def _remember_secret(op: Operator, namespace: str, service: str, answer: dict) -> dict:
    summary = keys_secret_summary(answer)
    op.written_secrets[(namespace, service)] = summary
    return summary


def seed_ledger(op: Operator) -> None:
    """After a start, the reservations are those the services' statuses report."""
    if op.ledger.seeded:
        return
    op.ledger.seeded = True
    for body in op.caches.services():
        status = body.get("status") or {}
        if not conditions.is_true(status.get("conditions"), CAPACITY):
            continue
        try:
            service = InferenceService.model_validate(without_status(body))
            target_body = op.caches.target(body["metadata"]["namespace"], service.spec.compute_target)
            if target_body is None:
                continue
            target = ComputeTarget.model_validate(without_status(target_body))
        except ValidationError:
            continue
        op.ledger.reserve(body["metadata"]["namespace"], service.spec.compute_target, service.metadata.name, capacity.cpu_need(service, target))
