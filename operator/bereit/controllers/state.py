"""What one operator run keeps in memory besides the kopf indices, and the status writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from bereit.controllers.api_client import ApiClient
from bereit.controllers.capacity import CapacityLedger
from bereit.controllers.indexes import Caches
from bereit.controllers.runner import Runner
from bereit.controllers.settings import Settings

log = logging.getLogger(__name__)


def resource_version(value: Any) -> int:
    """etcd's revision; compared only to tell which of two copies of one object is newer."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


@dataclass
class AppliedChild:
    """What the operator last applied to one child, to skip applies that would change nothing."""

    digest: str  # of the rendered manifest
    uid: str
    fields: str  # digest of the fields our apply owns, as the API server answered


@dataclass
class Operator:
    settings: Settings
    kube: ApiClient
    caches: Caches
    parallel: asyncio.Semaphore
    ledger: CapacityLedger = field(default_factory=CapacityLedger)
    targets: Runner | None = None
    models: Runner | None = None
    services: Runner | None = None
    applied: dict[tuple[str, str, str], AppliedChild] = field(default_factory=dict)
    # Per service: the inputs fingerprint and what rendering them gave (digests, pod spec hash).
    rendered: dict[tuple[str, str], tuple[tuple, list[tuple[str, str]], str | None]] = field(default_factory=dict)
    # Our own latest writes, newer than the indices until the watch delivers them.
    written: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    written_secrets: dict[tuple[str, str], dict] = field(default_factory=dict)
    # Facts last seen, to re-evaluate dependants only when something relevant changed.
    seen_nodes: dict[str, Any] = field(default_factory=dict)
    seen_targets: dict[tuple[str, str], tuple] = field(default_factory=dict)
    log_messages: dict[tuple, str] = field(default_factory=dict)
    housekeeping: asyncio.Task | None = None

    def fresh(self, body: dict) -> dict:
        """The object as the index has it, updated with our last write if that is newer."""
        meta = body["metadata"]
        key = (body["kind"], meta.get("namespace") or "", meta["name"])
        written = self.written.get(key)
        if written is None:
            return body
        if resource_version(written["resourceVersion"]) <= resource_version(meta.get("resourceVersion")):
            del self.written[key]  # the watch has caught up
            return body
        return {
            **body,
            "metadata": {**meta, "resourceVersion": written["resourceVersion"], "finalizers": written["finalizers"]},
            "status": written["status"],
        }

    def remember(self, answer: dict) -> None:
        """Keep what a write changed (little: status, finalizers) until the watch brings it."""
        meta = answer["metadata"]
        self.written[(answer["kind"], meta.get("namespace") or "", meta["name"])] = {
            "resourceVersion": meta.get("resourceVersion"),
            "finalizers": meta.get("finalizers") or [],
            "status": answer.get("status") or {},
        }

    def current_status(self, body: dict) -> dict:
        return self.fresh(body).get("status") or {}

    async def write_status(self, body: dict, status: dict) -> bool:
        """Patch the status subresource when it differs; returns whether it wrote."""
        old = self.current_status(body)
        comparable = {k: v for k, v in old.items() if k != "kopf"}
        if comparable == status:
            return False
        patch: dict[str, Any] = dict(status)
        for stale in set(comparable) - set(status):
            patch[stale] = None
        meta = body["metadata"]
        self.remember(await self.kube.patch_status(body["apiVersion"], body["kind"], meta["namespace"], meta["name"], patch))
        return True

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self.written.pop((kind, namespace, name), None)

    async def event(self, body: dict, type_: str, reason: str, message: str) -> None:
        await self.kube.post_event(body, type_, reason, message)


def runner_key(namespace: str, name: str) -> Hashable:
    return (namespace, name)
