"""A hand-built cluster for running the operator's reconcile passes without an API server.

`World` holds objects as the API server would answer them and builds the same kopf indices
the watches keep (with the real index functions), so a pass reads what it would read live.
`MemoryApi` is the operator's `ApiClient` surface over that world: it records every write, and
`World.sync()` is the watch catching up. Unit tests only: the integration tier runs the same
passes against a real kube-apiserver.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import defaultdict
from typing import Any

from bereit.constants import FIELD_MANAGER, LABEL_SERVICE
from bereit.controllers import indexes
from bereit.controllers.api_client import Invalid, ObjectExists
from bereit.controllers.capacity import CapacityLedger
from bereit.controllers.runner import Runner
from bereit.controllers.settings import Settings
from bereit.controllers.state import Operator
from bereit.render.kinds import APPLIED_KINDS
from tests.unit.specs import compute_target_body, inference_service_body, model_body

NAMESPACE = "ml"
CHILD_PLURALS = {child.kind: child.plural for child in APPLIED_KINDS}


def ready(status: str = "True", reason: str = "Ready") -> dict:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason, "message": ""}]}


def node(name: str = "node-1", cpu: str = "4") -> dict:
    return {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}},
        "spec": {}, "status": {"allocatable": {"cpu": cpu, "memory": "16Gi"}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


class World:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name) → body
        self._uids = itertools.count(1)
        self._versions = itertools.count(100)
        self.indices: dict[str, dict[Any, list]] = {}

    def add(self, body: dict, namespace: str | None = NAMESPACE) -> dict:
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        if namespace is not None:
            meta.setdefault("namespace", namespace)
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[(body["kind"], meta.get("namespace") or "", meta["name"])] = body
        return body

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self.objects.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[dict]:
        return [body for (k, _, _), body in self.objects.items() if k == kind]

    def sync(self) -> dict[str, dict[Any, list]]:
        """Rebuild the indices from the objects: the watches have delivered every change."""
        indices: dict[str, dict[Any, list]] = defaultdict(lambda: defaultdict(list))

        def put(index: str, entries: dict) -> None:
            for key, value in entries.items():
                indices[index][key].append(value)

        for (kind, namespace, name), body in self.objects.items():
            labels = body["metadata"].get("labels") or {}
            spec, status = body.get("spec") or {}, body.get("status") or {}
            if kind == "InferenceService":
                put("services_index", {(namespace, name): indexes.plain(body)})
                put("service_references_index", _run(indexes.service_references_index(namespace=namespace, name=name, spec=spec, status=status)))
            elif kind == "Model":
                put("models_index", _run(indexes.models_index(namespace=namespace, body=body)))
                put("model_names_index", _run(indexes.model_names_index(namespace=namespace, name=name, body=body)))
            elif kind == "ComputeTarget":
                put("targets_index", {(namespace, name): indexes.plain(body)})
            elif kind == "Node":
                put("nodes_index", _run(indexes.nodes_index(name=name, body=body)))
            if kind == "ConfigMap":
                put("config_map_digests_index", _run(indexes.config_map_digests_index(namespace=namespace, name=name, body=body)))
            service = labels.get(LABEL_SERVICE)
            if service is None:
                continue
            if kind in CHILD_PLURALS:
                put(f"{CHILD_PLURALS[kind]}_children_index", {(namespace, service): indexes._child_summary(body)})
            if kind == "Deployment":
                put("deployments_index", _run(indexes.deployments_index(namespace=namespace, labels=labels, body=body)))
            elif kind == "Pod":
                put("pods_index", _run(indexes.pods_index(namespace=namespace, labels=labels, body=body)))
            elif kind == "Secret":
                put("keys_secrets_index", _run(indexes.keys_secrets_index(namespace=namespace, labels=labels, body=body)))
        self.indices.clear()
        self.indices.update({name: dict(entries) for name, entries in indices.items()})
        for name in _INDEX_NAMES:
            self.indices.setdefault(name, {})
        return self.indices


_INDEX_NAMES = (
    "services_index", "service_references_index", "models_index", "model_names_index", "targets_index", "nodes_index",
    "deployments_index", "pods_index", "keys_secrets_index", "config_map_digests_index",
    *(f"{child.plural}_children_index" for child in APPLIED_KINDS),
)


def _run(coroutine):
    """The index functions are async only because kopf calls them so; they never await."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("an index function awaited")


class MemoryApi:
    """The ApiClient calls a reconcile makes, answered from a World; writes are recorded."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.writes: list[tuple[str, str]] = []  # (verb, "Kind/name")
        self.events: list[tuple[str, str, str]] = []
        self.refuse: set[str] = set()  # kinds whose applies the "API server" refuses (422)

    def _answer(self, body: dict) -> dict:
        return copy.deepcopy(body)

    async def apply(self, manifest: dict, subresource: str | None = None) -> dict:
        await asyncio.sleep(0)
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind in self.refuse:
            raise Invalid(422, "Invalid", f"{kind}.spec: refused")
        self.writes.append(("apply", f"{kind}/{name}"))
        existing = self.world.get(kind, name, manifest["metadata"].get("namespace") or "")
        body = copy.deepcopy(manifest)
        if existing is not None:
            body["metadata"]["uid"] = existing["metadata"]["uid"]
            body.setdefault("status", existing.get("status"))
        owned = {"f:" + key: {} for key in sorted(manifest) if key not in ("apiVersion", "kind")}
        body["metadata"]["managedFields"] = [{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": owned}]
        return self._answer(self.world.add(body, namespace=None))

    async def create(self, manifest: dict) -> dict:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if self.world.get(kind, name, manifest["metadata"]["namespace"]) is not None:
            raise ObjectExists(409, "AlreadyExists", f"{kind} {name} exists")
        self.writes.append(("create", f"{kind}/{name}"))
        return self._answer(self.world.add(manifest, namespace=None))

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        found = self.world.get(kind, name, namespace or "")
        return self._answer(found) if found else None

    async def patch(self, api_version: str, kind: str, namespace: str | None, name: str, body: Any, *, subresource: str | None = None) -> dict:
        self.writes.append(("patch" + (f"/{subresource}" if subresource else ""), f"{kind}/{name}"))
        current = copy.deepcopy(self.world.get(kind, name, namespace or ""))
        _merge(current, body)
        current["metadata"].pop("resourceVersion", None)
        return self._answer(self.world.add(current, namespace=None))

    async def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict) -> dict:
        return await self.patch(api_version, kind, namespace, name, {"status": status}, subresource="status")

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None) -> None:
        self.writes.append(("delete", f"{kind}/{name}"))
        self.world.objects.pop((kind, namespace or "", name), None)

    async def post_event(self, involved: dict, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    async def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool = False) -> str:
        return "Traceback (most recent call last):\nValueError: no model\n"


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def standard_world(cpu: str = "4", **service_spec) -> World:
    """One Ready DevTest target on a node, a Ready model digits:1, and a service that uses them."""
    world = World()
    world.add(node(cpu=cpu), namespace=None)
    world.add({**compute_target_body(), "status": ready()})
    world.add({**model_body(), "status": ready()})
    world.add(inference_service_body(**service_spec))
    world.sync()
    return world


def operator_for(world: World) -> tuple[Operator, MemoryApi]:
    api = MemoryApi(world)
    op = Operator(settings=Settings(), kube=api, caches=indexes.Caches(world.indices), parallel=asyncio.Semaphore(8), ledger=CapacityLedger())

    async def nothing(key: Any) -> None:
        return None

    op.targets, op.models, op.services = (Runner(name, nothing, op.parallel) for name in ("ComputeTarget", "Model", "InferenceService"))
    return op, api
