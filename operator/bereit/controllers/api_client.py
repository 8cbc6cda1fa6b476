"""The one module that talks to the Kubernetes API server (besides kopf's own watches).

Objects go in and come out as plain dicts in their wire form. Writes are server-side applies
with one field manager, merge or JSON patches, and creates; every request is retried with
backoff on 429, 5xx and connection errors (and on 409 Conflict where that is safe). Request
bodies are never logged: a Secret's keys pass through here.

Longer than the other modules on purpose: every request the operator makes (besides kopf's
watches) goes through this one module, so retries, errors and counting live in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from bereit.constants import API_VERSION, FIELD_MANAGER, PLURALS
from bereit.render.kinds import APPLIED_KINDS, KEYS_SECRET

log = logging.getLogger(__name__)

# (apiVersion, kind) → (plural, namespaced): every kind the operator reads or writes.
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    **{(child.api_version, child.kind): (child.plural, True) for child in (*APPLIED_KINDS, KEYS_SECRET)},
    ("v1", "Pod"): ("pods", True),
    ("v1", "Event"): ("events", True),
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    **{(API_VERSION, kind): (plural, True) for kind, plural in PLURALS.items()},
}

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"


# Each TLS connection holds a 256 KiB read buffer; requests beyond this wait for a free one.
MAX_CONNECTIONS = 16


class ApiError(Exception):
    """An API request failed; `status` is the HTTP status (0 when no answer came)."""

    def __init__(self, status: int, reason: str, message: str, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.message = message


class TransientError(ApiError):
    """Worth retrying later: the server was busy, unreachable, or the object changed meanwhile."""


class Conflict(TransientError):
    """409 Conflict: the object changed since it was read; read it again and retry."""


class ObjectNotFound(ApiError):
    pass


class ObjectExists(ApiError):
    pass


class Invalid(ApiError):
    """422 (or 400): the server refused the object; retrying the same request cannot help."""


def resource_version(value: Any) -> int:
    """etcd's revision; compared only to tell which of two copies of one object is newer."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _error_class(status: int, reason: str) -> type[ApiError]:
    if status == 404:
        return ObjectNotFound
    if status == 409:
        return ObjectExists if reason == "AlreadyExists" else Conflict
    if status in (400, 422):
        return Invalid
    if status == 429 or status >= 500 or status == 0:
        return TransientError
    return ApiError


def resource_path(
    api_version: str,
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    plural, namespaced = RESOURCES[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = base
    if namespaced and namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    if subresource:
        path += f"/{subresource}"
    return path


def path_of(obj: Mapping[str, Any], subresource: str | None = None) -> str:
    meta = obj["metadata"]
    return resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource)


@dataclass(frozen=True)
class Connection:
    server: str
    ssl: ssl.SSLContext | bool
    authorization: Any  # a callable returning the Authorization header, or None
    server_hostname: str | None = None


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """In a pod: the service account; elsewhere: KUBECONFIG or ~/.kube/config."""
    from kubernetes import (  # only for reading credentials, never for requests
        client,
        config,
    )

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    context_ssl: ssl.SSLContext | bool
    if configuration.host.startswith("https"):
        if configuration.verify_ssl:
            context_ssl = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        else:
            context_ssl = ssl.create_default_context()
            context_ssl.check_hostname = False
            context_ssl.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context_ssl.load_cert_chain(configuration.cert_file, configuration.key_file)
    else:
        context_ssl = False

    def authorization() -> str | None:
        # auth_settings() calls the refresh hook, so rotated service-account tokens are picked up.
        for setting in configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("key", "").lower() == "authorization" and setting.get("value"):
                return setting["value"]
        return None

    return Connection(
        server=configuration.host.rstrip("/"),
        ssl=context_ssl,
        authorization=authorization,
        server_hostname=getattr(configuration, "tls_server_name", None) or None,
    )


class ApiClient:
    """An async client of the API server, shared by all handlers of one operator run."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0, retries: int = 6, max_connections: int = MAX_CONNECTIONS) -> None:
        self._connection = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # Requests by "METHOD kind" that change something: what the tests and the benchmark count.
        self.writes: Counter[str] = Counter()
        self.requests = 0

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._connection.ssl)
            self._session = aiohttp.ClientSession(
                base_url=None, connector=connector, timeout=self._timeout, json_serialize=json.dumps
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def write_count(self) -> int:
        return sum(self.writes.values())

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry_conflicts: bool = False,
        text: bool = False,
        count_as: str = "",
    ) -> Any:
        """One request with retries; returns the decoded JSON (or text), raises ApiError."""
        session = self._ensure_session()
        headers = {"Accept": "application/json", "User-Agent": FIELD_MANAGER}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":"))
        url = self._connection.server + path
        attempt = 0
        while True:
            authorization = self._connection.authorization()
            if authorization:
                headers["Authorization"] = authorization
            started = time.monotonic()
            self.requests += 1
            if method in WRITE_METHODS:
                self.writes[f"{method} {count_as or path.split('/')[-1]}"] += 1
            retry_after: float | None = None
            try:
                async with session.request(
                    method, url, params=params, data=data, headers=headers,
                    server_hostname=self._connection.server_hostname,
                ) as response:
                    if response.status < 300:
                        result = await (response.text() if text else response.json(content_type=None))
                        log.debug("%s %s → %s in %.0f ms", method, path, response.status, (time.monotonic() - started) * 1000)
                        return result
                    status = response.status
                    reason, message = await _read_status(response)
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                status, reason, message = 0, type(exc).__name__, str(exc) or "no answer"
            error_class = _error_class(status, reason)
            retryable = error_class is TransientError or (error_class is Conflict and retry_conflicts)
            if not retryable or attempt >= self._retries:
                log.debug("%s %s → %s %s", method, path, status, reason)
                raise error_class(status, reason, message, method, path)
            delay = retry_after if retry_after is not None else min(0.2 * 2**attempt, 5.0) * (0.5 + random.random())
            log.info("API request failed, retrying", extra={"method": method, "path": path, "status": status, "reason": reason, "retry_in_s": round(delay, 2)})
            attempt += 1
            await asyncio.sleep(delay)  # backoff between attempts of one request, not a poll

    # --- reads -------------------------------------------------------------------------

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        try:
            return await self.request("GET", resource_path(api_version, kind, namespace, name))
        except ObjectNotFound:
            return None

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource_path(api_version, kind, namespace), params=params)
        items = result.get("items", [])
        for item in items:  # list items come without apiVersion and kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    async def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool = False) -> str:
        params = {"container": container, "tailLines": str(tail_lines)}
        if previous:
            params["previous"] = "true"
        return await self.request(
            "GET", resource_path("v1", "Pod", namespace, pod, "log"), params=params, text=True
        )

    # --- writes ------------------------------------------------------------------------

    async def apply(self, manifest: Mapping[str, Any], subresource: str | None = None) -> dict:
        """Server-side apply with the operator's field manager, taking over conflicting fields."""
        return await self.request(
            "PATCH",
            path_of(manifest, subresource),
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=manifest,
            content_type=APPLY_PATCH,
            count_as=f"apply {manifest['kind']}",
        )

    async def create(self, manifest: Mapping[str, Any]) -> dict:
        meta = manifest["metadata"]
        return await self.request(
            "POST",
            resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace")),
            params={"fieldManager": FIELD_MANAGER},
            body=manifest,
            count_as=f"create {manifest['kind']}",
        )

    async def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
    ) -> dict:
        """A JSON merge patch (RFC 7386): keys set to None are removed."""
        return await self.request(
            "PATCH",
            resource_path(api_version, kind, namespace, name, subresource),
            params={"fieldManager": FIELD_MANAGER},
            body=body,
            content_type=MERGE_PATCH,
            count_as=f"patch {kind}{'/' + subresource if subresource else ''}",
        )

    async def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict) -> dict:
        """Merge-patch the status subresource; keys set to None are removed."""
        return await self.patch(api_version, kind, namespace, name, {"status": status}, subresource="status")

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request(
                "DELETE", resource_path(api_version, kind, namespace, name), body=body, count_as=f"delete {kind}"
            )
        except ObjectNotFound:
            pass

    async def post_event(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event, as `kubectl describe` shows it. Failing to post one never fails a reconcile."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or "default"},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.request("POST", resource_path("v1", "Event", event["metadata"]["namespace"]), body=event, count_as="create Event")
        except ApiError as exc:
            log.warning("could not post an event", extra={"reason": reason, "error": str(exc)})


async def _read_status(response: aiohttp.ClientResponse) -> tuple[str, str]:
    """The reason and message of a metav1.Status answer, else the raw text."""
    raw = await response.text()
    try:
        status = json.loads(raw)
        return status.get("reason") or response.reason or "", status.get("message") or ""
    except ValueError:
        return response.reason or "", raw[:500]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(float(value), 30.0)
    except ValueError:
        return None
