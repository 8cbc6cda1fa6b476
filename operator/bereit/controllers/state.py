"""What one operator run keeps in memory besides the kopf indices, and the status writer.

Each store has its own methods and a `forget()`: a deleted object is forgotten in one call
(`Operator.forget_service`), not by handlers editing dicts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bereit.controllers.api_client import ApiClient, resource_version
from bereit.controllers.capacity import CapacityLedger
from bereit.controllers.children import AppliedChildren, ChildApplier, RenderCache
from bereit.controllers.indexes import Caches
from bereit.controllers.keys import KeysSecrets
from bereit.controllers.runner import Runner
from bereit.controllers.settings import Settings

log = logging.getLogger(__name__)


class StatusWrites:
    """Our own latest status writes (and finalizers), newer than the indices until the watch delivers them."""

    def __init__(self) -> None:
        self._written: dict[tuple[str, str, str], dict] = {}

    def fresh(self, body: dict) -> dict:
        """The object as the index has it, updated with our last write if that is newer."""
        meta = body["metadata"]
        key = (body["kind"], meta.get("namespace") or "", meta["name"])
        written = self._written.get(key)
        if written is None:
            return body
        if resource_version(written["resourceVersion"]) <= resource_version(meta.get("resourceVersion")):
            del self._written[key]  # the watch has caught up
            return body
        return {
            **body,
            "metadata": {**meta, "resourceVersion": written["resourceVersion"], "finalizers": written["finalizers"]},
            "status": written["status"],
        }

    def remember(self, answer: dict) -> None:
        """Keep what a write changed (little: status, finalizers) until the watch brings it."""
        meta = answer["metadata"]
        self._written[(answer["kind"], meta.get("namespace") or "", meta["name"])] = {
            "resourceVersion": meta.get("resourceVersion"),
            "finalizers": meta.get("finalizers") or [],
            "status": answer.get("status") or {},
        }

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._written.pop((kind, namespace, name), None)


class FailureLogs:
    """The last log lines of a failed container, fetched once per failure (bounded)."""

    LIMIT = 1000

    def __init__(self) -> None:
        self._messages: dict[tuple, str] = {}

    def get(self, key: tuple) -> str | None:
        return self._messages.get(key)

    def put(self, key: tuple, message: str) -> None:
        self._messages[key] = message
        if len(self._messages) > self.LIMIT:
            self._messages.pop(next(iter(self._messages)))

    def forget(self, namespace: str, service: str) -> None:
        """Keys start with (namespace, service)."""
        for key in [k for k in self._messages if k[:2] == (namespace, service)]:
            self._messages.pop(key, None)


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
    statuses: StatusWrites = field(default_factory=StatusWrites)
    renders: RenderCache = field(default_factory=RenderCache)
    applied: AppliedChildren = field(default_factory=AppliedChildren)
    keys: KeysSecrets = field(init=False)
    children: ChildApplier = field(init=False)
    failure_logs: FailureLogs = field(default_factory=FailureLogs)
    # Facts last seen, to re-evaluate dependants only when something relevant changed.
    seen_nodes: dict[str, Any] = field(default_factory=dict)
    seen_targets: dict[tuple[str, str], tuple] = field(default_factory=dict)
    housekeeping: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.keys = KeysSecrets(self.caches)
        self.children = ChildApplier(self.kube, self.renders, self.applied)

    def fresh(self, body: dict) -> dict:
        return self.statuses.fresh(body)

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
        self.statuses.remember(await self.kube.patch_status(body["apiVersion"], body["kind"], meta["namespace"], meta["name"], patch))
        return True

    def forget_service(self, kind: str, namespace: str, name: str) -> None:
        """An InferenceService is gone: drop everything kept for it."""
        self.services.forget((namespace, name))
        self.statuses.forget(kind, namespace, name)
        self.keys.forget(namespace, name)
        self.renders.forget(namespace, name)
        self.applied.forget(namespace, name)
        self.failure_logs.forget(namespace, name)

    async def event(self, body: dict, type_: str, reason: str, message: str) -> None:
        await self.kube.post_event(body, type_, reason, message)
