"""The CLI's one way to the Kubernetes API: the official client, with errors turned into one line.

The operator has its own module for API calls (bereit.controllers.api_client); the CLI's needs differ (the user's
kubeconfig and context, short timeouts, messages for people), so it keeps this small wrapper.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from bereit.cli.errors import AlreadyExists, BadInput, CliError, ClusterError, NotFound
from bereit.constants import COMPUTE_TARGET_KIND, GROUP, INFERENCE_SERVICE_KIND, MODEL_KIND, PLURALS, VERSION

# What users call each kind in messages.
NOUNS = {MODEL_KIND: "model", COMPUTE_TARGET_KIND: "compute target", INFERENCE_SERVICE_KIND: "service"}

# (connect, read) seconds: an unreachable cluster is reported in seconds, not minutes.
REQUEST_TIMEOUT = (5, 60)
CRDS_HINT = "install them with `helm install bereit charts/bereit` or `kubectl apply -f crds/`"

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where commands go: kubeconfig file, context and namespace as the user chose them."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None


class Cluster:
    """Typed-enough access to bereit's resources and the few core objects the CLI reads."""

    def __init__(self, target: Target):
        self.target = target
        configuration = client.Configuration()
        try:
            if _in_pod_without_kubeconfig(target):
                config.load_incluster_config(client_configuration=configuration)
                self.context_name, context_namespace = "in-cluster", _incluster_namespace()
            else:
                config.load_kube_config(
                    config_file=target.kubeconfig, context=target.context, client_configuration=configuration
                )
                self.context_name, context_namespace = _context_facts(target.kubeconfig, target.context)
        except (ConfigException, OSError, ValueError, TypeError) as error:
            raise ClusterError(_config_message(target, error)) from None
        # One retry: a refused connection still fails within seconds.
        configuration.retries = 1
        self.host = configuration.host
        self.namespace = target.namespace or context_namespace or "default"
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    # --- bereit resources -------------------------------------------------------------------

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.call(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURALS[kind], name, _request_timeout=REQUEST_TIMEOUT
            ),
            kind=kind,
            name=name,
        )

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (other errors still raise)."""
        try:
            return self.get(kind, name)
        except NotFound:
            return None

    def list(self, kind: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        result = self.call(
            lambda: self.custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURALS[kind],
                label_selector=label_selector,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            kind=kind,
        )
        return sorted(result.get("items", []), key=lambda item: item["metadata"]["name"])

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURALS[kind], body, _request_timeout=REQUEST_TIMEOUT
            ),
            kind=kind,
            name=body["metadata"]["name"],
        )

    def replace(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            lambda: self.custom.replace_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURALS[kind],
                body["metadata"]["name"],
                body,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            kind=kind,
            name=body["metadata"]["name"],
        )

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURALS[kind],
                name,
                patch,
                _content_type="application/merge-patch+json",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            kind=kind,
            name=name,
        )

    def delete(self, kind: str, name: str) -> None:
        self.call(
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURALS[kind], name, _request_timeout=REQUEST_TIMEOUT
            ),
            kind=kind,
            name=name,
        )

    # --- core objects -----------------------------------------------------------------------

    def read_secret(self, name: str) -> dict[str, Any]:
        secret = self.call(
            lambda: self.core.read_namespaced_secret(name, self.namespace, _request_timeout=REQUEST_TIMEOUT),
            kind="Secret",
            name=name,
        )
        return self.api_client.sanitize_for_serialization(secret)

    def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        secret = self.call(
            lambda: self.core.create_namespaced_secret(self.namespace, body, _request_timeout=REQUEST_TIMEOUT),
            kind="Secret",
            name=body["metadata"]["name"],
        )
        return self.api_client.sanitize_for_serialization(secret)

    def patch_secret(self, name: str, patch: dict[str, Any]) -> None:
        self.call(
            lambda: self.core.patch_namespaced_secret(
                name, self.namespace, patch, _request_timeout=REQUEST_TIMEOUT
            ),
            kind="Secret",
            name=name,
        )

    def delete_secret(self, name: str) -> None:
        self.call(
            lambda: self.core.delete_namespaced_secret(name, self.namespace, _request_timeout=REQUEST_TIMEOUT),
            kind="Secret",
            name=name,
        )

    def list_pods(self, label_selector: str) -> list[dict[str, Any]]:
        pods = self.call(
            lambda: self.core.list_namespaced_pod(
                self.namespace, label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT
            ),
            kind="Pod",
        )
        items = self.api_client.sanitize_for_serialization(pods).get("items", [])
        return sorted(items, key=lambda pod: pod["metadata"]["name"])

    def pod_log(
        self, pod: str, container: str, tail: int | None = None, previous: bool = False
    ) -> str:
        return self.call(
            lambda: self.core.read_namespaced_pod_log(
                pod,
                self.namespace,
                container=container,
                tail_lines=tail,
                previous=previous,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            kind="Pod",
            name=pod,
        )

    def follow_pod_log(self, pod: str, container: str, tail: int | None = None) -> Iterator[bytes]:
        response = self.call(
            lambda: self.core.read_namespaced_pod_log(
                pod,
                self.namespace,
                container=container,
                tail_lines=tail,
                follow=True,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT[0], None),
            ),
            kind="Pod",
            name=pod,
        )
        try:
            yield from response.stream(4096)
        finally:
            response.release_conn()

    def events_for(self, name: str, kind: str) -> list[dict[str, Any]]:
        """Events about one object, oldest first: what `kubectl describe` shows."""
        events = self.call(
            lambda: self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={name},involvedObject.kind={kind}",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            kind="Event",
        )
        items = self.api_client.sanitize_for_serialization(events).get("items", [])
        return sorted(items, key=lambda event: event.get("lastTimestamp") or event.get("eventTime") or "")

    # --- errors -----------------------------------------------------------------------------

    def call(self, request: Callable[[], T], kind: str, name: str | None = None) -> T:
        """Run one request; every failure becomes a CliError that says what to do."""
        try:
            return request()
        except ApiException as error:
            raise self._api_error(error, kind, name) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ClusterError(
                f"cannot reach the Kubernetes API server at {self.host} ({_short_reason(error)}): "
                f"check that the cluster runs and that the context {self.context_name!r} names it "
                "(kubectl cluster-info), or pass --context / --kubeconfig"
            ) from None

    def _api_error(self, error: ApiException, kind: str, name: str | None) -> CliError:
        status = _status_body(error)
        message = status.get("message") or error.reason or "no message"
        details = status.get("details") or {}
        noun = NOUNS.get(kind, kind)
        where = f"in namespace {self.namespace!r}"
        if error.status == 404:
            if details.get("kind") == "namespaces":
                return NotFound(
                    f"namespace {self.namespace!r} does not exist: create it "
                    f"(kubectl create namespace {self.namespace}) or pass --namespace"
                )
            if kind in PLURALS and not details.get("name"):
                return ClusterError(
                    f"the cluster at {self.host} has no bereit.dev custom resources: {CRDS_HINT}"
                )
            return NotFound(f"{noun} {name!r} not found {where}" if name else f"{noun} not found {where}")
        if error.status == 409 and status.get("reason") == "AlreadyExists":
            return AlreadyExists(f"{noun} {name!r} already exists {where}")
        if error.status == 409:
            return CliError(f"{noun} {name!r} was changed by someone else meanwhile; run the command again")
        if error.status in (400, 422):
            return BadInput(f"the API server refused {noun} {name!r}: {message}")
        if error.status in (401, 403):
            return ClusterError(
                f"the cluster refused the request ({error.status}): {message}. Check your "
                "credentials and RBAC permissions (kubectl auth can-i)"
            )
        if error.status == 0:
            return ClusterError(f"cannot talk to the Kubernetes API server at {self.host}: {error.reason}")
        return ClusterError(f"the Kubernetes API server answered {error.status}: {message}")


def _status_body(error: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(error.body) if error.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _short_reason(error: BaseException) -> str:
    text = str(getattr(error, "reason", None) or error)
    match = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)", text)
    if match:
        return match.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text[:200]


def _in_pod_without_kubeconfig(target: Target) -> bool:
    """Inside a pod with no kubeconfig around, use the pod's service account (as kubectl does)."""
    if target.kubeconfig or target.context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return False
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return not any(os.path.exists(p) for p in paths or [os.path.expanduser("~/.kube/config")])


def _context_facts(kubeconfig: str | None, context: str | None) -> tuple[str, str | None]:
    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = active
    if context:
        chosen = next((c for c in contexts if c["name"] == context), None) or {}
    return chosen.get("name", context or "?"), (chosen.get("context") or {}).get("namespace")


def _incluster_namespace() -> str | None:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _config_message(target: Target, error: BaseException) -> str:
    text = str(error).strip().rstrip(".")
    if target.context and "context" in text.lower():
        try:
            names = [c["name"] for c in config.list_kube_config_contexts(config_file=target.kubeconfig)[0]]
        except (ConfigException, OSError, ValueError, TypeError):
            names = []
        available = f"; contexts there: {', '.join(names)}" if names else ""
        return f"no context {target.context!r} in the kubeconfig{available}"
    source = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return (
        f"no usable Kubernetes configuration in {source} ({text}): set KUBECONFIG or pass "
        "--kubeconfig and --context"
    )
