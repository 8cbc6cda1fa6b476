"""The keys Secret of an InferenceService: created once, kept across updates, one key regenerated on request.

A user (or `bereit service regen-key`) asks for a new key by setting a regenerate annotation on
the service to any new value; the Secret remembers the value last handled, so a GitOps tool
that keeps the annotation in place does not regenerate the key again and again.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bereit.constants import (
    PRIMARY_KEY,
    REGENERATE_PRIMARY_KEY_ANNOTATION,
    REGENERATE_SECONDARY_KEY_ANNOTATION,
    SECONDARY_KEY,
)
from bereit.controllers.api_client import ApiClient, ObjectExists, TransientError, resource_version
from bereit.controllers.indexes import HANDLED_PRIMARY, HANDLED_SECONDARY, Caches, keys_secret_summary
from bereit.render import ResolvedService, render_keys_secret

KEY_BYTES = 32


@dataclass(frozen=True)
class KeySlot:
    which: str  # "primary" | "secondary", as users name them
    request_annotation: str  # on the service: set to a new value to ask for a new key
    handled_annotation: str  # on the Secret: the request value last handled
    handled_field: str  # the same, in the indexed summary
    data_key: str


SLOTS = (
    KeySlot("primary", REGENERATE_PRIMARY_KEY_ANNOTATION, HANDLED_PRIMARY, "handledPrimary", PRIMARY_KEY),
    KeySlot("secondary", REGENERATE_SECONDARY_KEY_ANNOTATION, HANDLED_SECONDARY, "handledSecondary", SECONDARY_KEY),
)


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def pending_regenerations(secret: Mapping[str, Any], annotations: Mapping[str, str]) -> list[KeySlot]:
    """The keys whose regenerate annotation holds a value the Secret has not handled yet."""
    return [
        slot for slot in SLOTS
        if annotations.get(slot.request_annotation) is not None
        and annotations.get(slot.request_annotation) != secret[slot.handled_field]
    ]


class KeysSecrets:
    """Our own writes to keys Secrets, newer than the index until the watch delivers them."""

    def __init__(self, caches: Caches) -> None:
        self._caches = caches
        self._written: dict[tuple[str, str], dict] = {}

    def freshest(self, namespace: str, service: str) -> dict | None:
        indexed = self._caches.keys_secret(namespace, service)
        written = self._written.get((namespace, service))
        if written and (indexed is None or resource_version(written["resourceVersion"]) > resource_version(indexed["resourceVersion"])):
            return written
        return indexed

    def remember(self, namespace: str, service: str, answer: Mapping[str, Any]) -> dict:
        summary = self._written[(namespace, service)] = keys_secret_summary(answer)
        return summary

    def forget(self, namespace: str, service: str) -> None:
        self._written.pop((namespace, service), None)

    def regeneration_requested(self, namespace: str, service: str, annotations: Mapping[str, str]) -> bool:
        secret = self.freshest(namespace, service)
        return secret is not None and bool(pending_regenerations(secret, annotations))


@dataclass
class KeysResult:
    secret: dict  # the summary (see indexes.keys_secret_summary)
    created: bool
    regenerated: list[str]  # "primary" / "secondary"


async def ensure_keys(api: ApiClient, store: KeysSecrets, resolved: ResolvedService, annotations: Mapping[str, str]) -> KeysResult:
    """Create the keys Secret once; regenerate one key when its annotation asks for it."""
    namespace, name = resolved.namespace, resolved.name
    secret = store.freshest(namespace, name)
    created = False
    if secret is None:
        manifest = render_keys_secret(resolved, new_key(), new_key())
        handled = {slot.handled_annotation: annotations.get(slot.request_annotation) for slot in SLOTS}
        manifest["metadata"]["annotations"] = {k: v for k, v in handled.items() if v is not None}
        try:
            answer = await api.create(manifest)
            created = True
        except ObjectExists:
            answer = await api.get("v1", "Secret", namespace, manifest["metadata"]["name"])
            if answer is None:
                raise TransientError(409, "Conflict", "the keys Secret exists and does not") from None
        secret = store.remember(namespace, name, answer)
    regenerated = []
    for slot in pending_regenerations(secret, annotations):
        patch = {
            "metadata": {
                "resourceVersion": secret["resourceVersion"],
                "annotations": {slot.handled_annotation: annotations[slot.request_annotation]},
            },
            "data": {slot.data_key: base64.b64encode(new_key().encode()).decode()},
        }
        secret = store.remember(namespace, name, await api.patch("v1", "Secret", namespace, secret["name"], patch))
        regenerated.append(slot.which)
    return KeysResult(secret, created, regenerated)
