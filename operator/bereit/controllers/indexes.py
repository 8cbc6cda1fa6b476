"""kopf indices: the operator's in-memory view of the cluster, kept current by watches.

Reconciles read from here and make no API reads of their own, so a pass with nothing to do
costs no requests. Children and pods are kept as small summaries, not whole objects.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import kopf

from bereit.api.model import model_name_of
from bereit.constants import (
    COMPUTE_TARGET_PLURAL,
    GROUP,
    INFERENCE_SERVICE_PLURAL,
    LABEL_SERVICE,
    MODEL_PLURAL,
    PRIMARY_KEY,
    SECONDARY_KEY,
    VERSION,
)
from bereit.controllers import capacity, health
from bereit.render.kinds import APPLIED_KINDS, ChildKind

# Annotations on the keys Secret: the regenerate-request value last handled for each key.
HANDLED_PRIMARY = "bereit.dev/handled-regenerate-primary-key"
HANDLED_SECONDARY = "bereit.dev/handled-regenerate-secondary-key"

SERVICE_LABEL = {LABEL_SERVICE: kopf.PRESENT}


# Large annotations no reconcile reads: a copy of the whole spec kept by kubectl apply.
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def plain(body: Mapping[str, Any]) -> dict:
    """The object without managedFields and other large parts no reconcile reads.

    A shallow copy: each watch event is freshly parsed and never changed afterwards (neither
    kopf nor the controllers modify bodies), so the nested parts can be shared.
    """
    raw = dict(body)
    meta = {key: value for key, value in raw.get("metadata", {}).items() if key != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and any(a in annotations for a in DROPPED_ANNOTATIONS):
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in DROPPED_ANNOTATIONS}
    raw["metadata"] = meta
    return raw


# --- the operator's own resources ---------------------------------------------------------

@kopf.index(GROUP, VERSION, INFERENCE_SERVICE_PLURAL)
async def services_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): plain(body)}


@kopf.index(GROUP, VERSION, INFERENCE_SERVICE_PLURAL)
async def service_references_index(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict:
    """What each service refers to, for finding the services to re-check when it changes:

    ("target", ns, ComputeTarget), ("model", ns, modelName), ("code", ns, ConfigMap),
    ("serves", ns, Model object) from status.models, ("pins", ns, modelName, version).
    One index, not five: kopf calls each index function on every event.
    """
    keys = {("target", namespace, spec.get("computeTarget"))}
    for ref in spec.get("models") or ():
        keys.add(("model", namespace, ref.get("name")))
        if ref.get("version"):
            keys.add(("pins", namespace, ref.get("name"), ref.get("version")))
    config_map = ((spec.get("inference") or {}).get("code") or {}).get("configMap")
    if config_map:
        keys.add(("code", namespace, config_map.get("name")))
    keys |= {("serves", namespace, m.get("model")) for m in status.get("models") or ()}
    return {key: name for key in keys}


@kopf.index(GROUP, VERSION, MODEL_PLURAL)
async def models_index(namespace: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, model_name_of(body)): plain(body)}


@kopf.index(GROUP, VERSION, MODEL_PLURAL)
async def model_names_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): model_name_of(body)}


@kopf.index(GROUP, VERSION, COMPUTE_TARGET_PLURAL)
async def targets_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): plain(body)}


@kopf.index("v1", "nodes")
async def nodes_index(name: str, body: kopf.Body, **_: Any) -> dict:
    return {name: capacity.node_facts(body)}


# --- children -----------------------------------------------------------------------------

def _child_summary(body: Mapping[str, Any]) -> dict:
    meta = body["metadata"]
    owner = next((o.get("uid") for o in meta.get("ownerReferences") or () if o.get("controller")), None)
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta["name"],
        "uid": meta.get("uid"),
        "owner": owner,
        "fields": health.fields_digest(body),
        "deleting": bool(meta.get("deletionTimestamp")),
    }


def _register_child_index(child: ChildKind) -> None:

    async def child_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
        return {(namespace, labels[LABEL_SERVICE]): _child_summary(body)}

    child_index.__name__ = f"{child.plural}_children_index"
    kopf.index(child.group, child.version, child.plural, labels=SERVICE_LABEL, id=child_index.__name__)(child_index)


for _child in APPLIED_KINDS:
    _register_child_index(_child)


@kopf.index("apps", "v1", "deployments", labels=SERVICE_LABEL)
async def deployments_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[LABEL_SERVICE]): health.deployment_summary(body)}


@kopf.index("v1", "pods", labels=SERVICE_LABEL)
async def pods_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[LABEL_SERVICE]): health.pod_summary(body)}


def _decoded(data: Mapping[str, str], key: str) -> str:
    try:
        return base64.b64decode(data.get(key, "")).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def keys_secret_summary(body: Mapping[str, Any]) -> dict:
    """The keys are kept only to take them out of messages that come from replicas."""
    meta = body["metadata"]
    data = body.get("data") or {}
    annotations = meta.get("annotations") or {}
    return {
        "name": meta["name"],
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
        "handledPrimary": annotations.get(HANDLED_PRIMARY),
        "handledSecondary": annotations.get(HANDLED_SECONDARY),
        "keys": (_decoded(data, PRIMARY_KEY), _decoded(data, SECONDARY_KEY)),
    }


@kopf.index("v1", "secrets", labels=SERVICE_LABEL)
async def keys_secrets_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[LABEL_SERVICE]): keys_secret_summary(body)}


@kopf.index("v1", "configmaps")
async def config_map_digests_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    """A digest of every ConfigMap: a user's code ConfigMap changing rolls the services using it."""
    payload = json.dumps([body.get("data") or {}, body.get("binaryData") or {}], sort_keys=True)
    return {(namespace, name): hashlib.sha256(payload.encode()).hexdigest()[:16]}


class Caches:
    """Typed reads over the kopf indices (which kopf hands to every handler by name)."""

    def __init__(self, indices: Mapping[str, kopf.Index]) -> None:
        self._i = indices

    def _one(self, index: str, key: Any) -> Any:
        store = self._i[index].get(key)
        if not store:
            return None
        for value in store:
            return value
        return None

    def _all(self, index: str, key: Any) -> list:
        return list(self._i[index].get(key, ()))

    # resources
    def service(self, namespace: str, name: str) -> dict | None:
        return self._one("services_index", (namespace, name))

    def services(self) -> Iterator[dict]:
        for store in self._i["services_index"].values():
            yield from store

    def _referring(self, *key: Any) -> list[str]:
        return sorted(set(self._all("service_references_index", key)))

    def services_on_target(self, namespace: str, target: str) -> list[str]:
        return self._referring("target", namespace, target)

    def services_using_model_name(self, namespace: str, model_name: str) -> list[str]:
        return self._referring("model", namespace, model_name)

    def services_using_code(self, namespace: str, config_map: str) -> list[str]:
        return self._referring("code", namespace, config_map)

    def services_serving(self, namespace: str, model: str) -> list[str]:
        return self._referring("serves", namespace, model)

    def services_pinning(self, namespace: str, model_name: str, version: int) -> list[str]:
        return self._referring("pins", namespace, model_name, version)

    def models_named(self, namespace: str, model_name: str) -> list[dict]:
        return self._all("models_index", (namespace, model_name))

    def model(self, namespace: str, name: str) -> dict | None:
        model_name = self._one("model_names_index", (namespace, name))
        if model_name is None:
            return None
        return next((b for b in self.models_named(namespace, model_name) if b["metadata"]["name"] == name), None)

    def target(self, namespace: str, name: str) -> dict | None:
        return self._one("targets_index", (namespace, name))

    def targets(self) -> Iterator[dict]:
        for store in self._i["targets_index"].values():
            yield from store

    def nodes(self) -> list[capacity.NodeFacts]:
        return [facts for store in self._i["nodes_index"].values() for facts in store]

    # children
    def deployment(self, namespace: str, service: str) -> dict | None:
        return self._one("deployments_index", (namespace, service))

    def pods(self, namespace: str, service: str) -> list[dict]:
        return self._all("pods_index", (namespace, service))

    def children(self, namespace: str, service: str) -> list[dict]:
        found = []
        for child in APPLIED_KINDS:
            found += self._all(f"{child.plural}_children_index", (namespace, service))
        return found

    def keys_secret(self, namespace: str, service: str) -> dict | None:
        return self._one("keys_secrets_index", (namespace, service))

    def config_map_digest(self, namespace: str, name: str) -> str | None:
        return self._one("config_map_digests_index", (namespace, name))
