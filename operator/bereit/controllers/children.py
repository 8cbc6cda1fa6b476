"""Applying an InferenceService's children: render, compare, server-side apply, prune by owner.

A pass renders only when an input changed (`RenderCache`), applies only the children whose
manifest changed or whose owned fields someone else changed (`AppliedChildren` remembers what
each apply answered), and deletes the children it owns but no longer renders. Planning is
pure (`plan`); `ChildApplier` does the writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field

from bereit.constants import POD_SPEC_HASH_ANNOTATION
from bereit.controllers import health
from bereit.controllers.api_client import ApiClient, Invalid
from bereit.render import ResolvedService, render_children
from bereit.render.kinds import CONFIG_MAP

ServiceKey = tuple[str, str]  # (namespace, name)


def child_ref(kind: str, name: str) -> str:
    """How a child is named in records and messages: `Deployment/digits`."""
    return f"{kind}/{name}"


@dataclass(frozen=True)
class RenderedChild:
    ref: str
    digest: str  # of the rendered manifest


@dataclass(frozen=True)
class Rendering:
    """What rendering one service's inputs gave, small enough to keep for hundreds of services."""

    fingerprint: tuple
    children: tuple[RenderedChild, ...]
    spec_hash: str | None  # the pod template's hash: which pods run the current generation


def fingerprint(resolved: ResolvedService) -> tuple:
    """What rendering reads: the service's name, uid and spec, the models' and the target's
    specs (their generations say when they change) and the code digest."""
    service = resolved.service.metadata
    return (
        service.uid, service.generation,
        tuple((m.metadata.uid, m.metadata.generation) for m in resolved.models),
        (resolved.compute_target.metadata.uid, resolved.compute_target.metadata.generation),
        resolved.code_digest,
    )


def summarize(fingerprint_: tuple, manifests: Iterable[dict]) -> Rendering:
    manifests = list(manifests)
    children = tuple(
        RenderedChild(
            child_ref(m["kind"], m["metadata"]["name"]),
            hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:20],
        )
        for m in manifests
    )
    spec_hash = next(
        (m["spec"]["template"]["metadata"]["annotations"].get(POD_SPEC_HASH_ANNOTATION) for m in manifests if m["kind"] == "Deployment"),
        None,
    )
    return Rendering(fingerprint_, children, spec_hash)


class RenderCache:
    """Per service, the last `Rendering`; manifests are rendered again only to apply them."""

    def __init__(self) -> None:
        self._renderings: dict[ServiceKey, Rendering] = {}

    def rendering(self, resolved: ResolvedService) -> Rendering:
        key, wanted = (resolved.namespace, resolved.name), fingerprint(resolved)
        cached = self._renderings.get(key)
        if cached is not None and cached.fingerprint == wanted:
            return cached
        return self.manifests(resolved)[1]

    def manifests(self, resolved: ResolvedService) -> tuple[list[dict], Rendering]:
        manifests = render_children(resolved)
        rendering = self._renderings[(resolved.namespace, resolved.name)] = summarize(fingerprint(resolved), manifests)
        return manifests, rendering

    def forget(self, namespace: str, name: str) -> None:
        self._renderings.pop((namespace, name), None)


@dataclass(frozen=True)
class AppliedChild:
    """What the operator last applied to one child, to skip applies that would change nothing."""

    digest: str  # of the rendered manifest
    uid: str
    fields: str  # digest of the fields our apply owns, as the API server answered


class AppliedChildren:
    """Per service and child, the last `AppliedChild`."""

    def __init__(self) -> None:
        self._by_service: dict[ServiceKey, dict[str, AppliedChild]] = {}

    def of(self, namespace: str, service: str) -> dict[str, AppliedChild]:
        return dict(self._by_service.get((namespace, service), {}))

    def record(self, namespace: str, service: str, ref: str, applied: AppliedChild) -> None:
        self._by_service.setdefault((namespace, service), {})[ref] = applied

    def drop(self, namespace: str, service: str, ref: str) -> None:
        """The child is gone (deleted by someone, or pruned): the next pass applies it again."""
        self._by_service.get((namespace, service), {}).pop(ref, None)

    def forget(self, namespace: str, service: str) -> None:
        self._by_service.pop((namespace, service), None)


@dataclass(frozen=True)
class ChildChange:
    """One child to apply, and why: never applied, changed by us, or changed by someone else."""

    ref: str
    digest: str
    record: AppliedChild | None  # what we applied last
    live: dict | None  # the child as the watch has it (a summary, see indexes)

    @property
    def outcome(self) -> str:
        if self.live is None and self.record is None:
            return "created"
        if self.record is not None and self.record.digest == self.digest:
            return "restored"
        return "updated"


@dataclass(frozen=True)
class Plan:
    changes: tuple[ChildChange, ...]
    prune: tuple[dict, ...]  # live children we own but no longer render


def plan(rendering: Rendering, live: Iterable[dict], records: dict[str, AppliedChild], owner_uid: str | None) -> Plan:
    """Which children to apply and which to delete. Pure."""
    live_by_ref = {child_ref(c["kind"], c["name"]): c for c in live}
    changes = []
    for child in rendering.children:
        record, seen = records.get(child.ref), live_by_ref.get(child.ref)
        if record and record.digest == child.digest and (
            seen is None or (seen["uid"] == record.uid and seen["fields"] == record.fields and not seen["deleting"])
        ):
            continue  # applied, and nobody changed what we own since
        changes.append(ChildChange(child.ref, child.digest, record, seen))
    wanted = {child.ref for child in rendering.children}
    prune = tuple(
        seen for ref, seen in live_by_ref.items()
        if ref not in wanted and seen["owner"] == owner_uid and not seen["deleting"]
    )
    return Plan(tuple(changes), prune)


@dataclass
class ApplyOutcome:
    created: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    refused: str | None = None  # the API server's message when it refused a child

    @property
    def applied(self) -> bool:
        return self.refused is None


class ChildApplier:
    """Converges one service's children with what its inputs render."""

    def __init__(self, api: ApiClient, renders: RenderCache, applied: AppliedChildren) -> None:
        self.api = api
        self.renders = renders
        self.applied = applied

    async def converge(
        self, resolved: ResolvedService, live: list[dict], owner_uid: str | None, before_pods: Awaitable | None = None
    ) -> tuple[ApplyOutcome, Rendering]:
        """Apply what changed, then prune.

        What pods mount (the keys Secret, awaited as `before_pods`, and the code ConfigMap) is
        written first, side by side; the rest are applied at once, so a slow Service (its
        ClusterIP is allocated on create) does not hold up the Deployment.
        """
        namespace, name = resolved.namespace, resolved.name
        rendering = self.renders.rendering(resolved)
        todo = plan(rendering, live, self.applied.of(namespace, name), owner_uid)
        manifests: dict[str, dict] = {}
        if todo.changes:
            rendered, rendering = self.renders.manifests(resolved)
            manifests = {child_ref(m["kind"], m["metadata"]["name"]): m for m in rendered}
        mounted = [c for c in todo.changes if c.ref.startswith(f"{CONFIG_MAP.kind}/")]
        rest = [c for c in todo.changes if not c.ref.startswith(f"{CONFIG_MAP.kind}/")]
        outcome = ApplyOutcome()
        waits = [before_pods] if before_pods is not None else []
        try:
            await asyncio.gather(*waits, *(self._apply(resolved, c, manifests[c.ref], outcome) for c in mounted))
            await asyncio.gather(*(self._apply(resolved, c, manifests[c.ref], outcome) for c in rest))
            for seen in todo.prune:
                await self.api.delete(seen["apiVersion"], seen["kind"], namespace, seen["name"], uid=seen["uid"])
                ref = child_ref(seen["kind"], seen["name"])
                self.applied.drop(namespace, name, ref)
                outcome.updated.append(f"{ref} (removed)")
        except Invalid as error:
            outcome.refused = error.message
        for refs in (outcome.created, outcome.restored, outcome.updated):
            refs.sort()
        return outcome, rendering

    async def _apply(self, resolved: ResolvedService, change: ChildChange, manifest: dict, outcome: ApplyOutcome) -> None:
        answer = await self.api.apply(manifest)
        self.applied.record(
            resolved.namespace, resolved.name, change.ref,
            AppliedChild(change.digest, answer["metadata"].get("uid", ""), health.fields_digest(answer)),
        )
        getattr(outcome, change.outcome).append(change.ref)
