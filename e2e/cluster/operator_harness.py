"""The operator against a control plane, for integration tests and benchmarks: the operator as a process, fake Nodes, manifests.

The operator runs as `python -m bereit.controllers` (as in production), watching only the
test's namespace. Nodes are created through the API (no kubelet): a thread renews their Leases
so the node lifecycle controller keeps them Ready for as long as a test wants.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from bereit.constants import API_VERSION, GROUP, PLURALS, VERSION

REPO = Path(__file__).resolve().parents[2]
TEST_MANAGER = "integration-test"
# kopf's liveness endpoint re-collects probe results when they are older than 10 s.
PROBE_CACHE_SECONDS = 10.5


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except kubernetes.client.ApiException as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorProcess:
    """`python -m bereit.controllers` against the test cluster, for one namespace."""

    def __init__(self, kubeconfig: str, namespace: str, log_path: Path, **env: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.port = free_port()
        self.extra_env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._last_health = 0.0

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "BEREIT_WATCH_NAMESPACES": self.namespace,
            "BEREIT_LIVENESS_PORT": str(self.port),
            "BEREIT_LOG_FORMAT": "json",
            "BEREIT_RUNTIME_IMAGE": "bereit/runtime:test",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bereit.controllers"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        log.close()
        wait_for(self._healthy, timeout=30, what="the operator's /healthz")
        return self

    def _healthy(self) -> dict | None:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"the operator exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            return self.health()
        except OSError:
            return None

    def health(self, fresh: bool = False) -> dict:
        """The probes of /healthz. kopf collects them at most every 10 s; `fresh` waits that out."""
        if fresh:
            time.sleep(max(0.0, PROBE_CACHE_SECONDS - (time.monotonic() - self._last_health)))
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=30) as answer:
            self._last_health = time.monotonic()
            return json.loads(answer.read())

    def writes(self) -> int:
        """API writes the operator made up to now (waits for kopf's probe cache to expire)."""
        return self.health(fresh=True)["apiWrites"]

    def passes(self, kind: str) -> int:
        """Reconcile passes of ``kind`` (InferenceService, Model, ComputeTarget) made so far."""
        return self.health(fresh=True)["reconciles"][kind]["passes"]

    def wait_pass(self, kind: str, after: int) -> None:
        """Until a pass of ``kind`` beyond the first ``after`` has started (it is counted as it
        starts; ``Cluster.wait_quiet`` after this lets it finish): the operator has looked at
        what the test just did, so a check that nothing changed is not made too early."""
        wait_for(lambda: self.passes(kind) > after, timeout=45, what=f"an {kind} pass after {after}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """As a crash would: no cleanup, no chance to finish anything."""
        self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class Cluster:
    """Short calls for the tests, on the kubernetes client (the tests' own, not the operator's)."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.core = kubernetes.client.CoreV1Api(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.coordination = kubernetes.client.CoordinationV1Api(api)
        self.dynamic = kubernetes.dynamic.DynamicClient(api)

    # bereit resources
    def apply(self, manifest: dict) -> dict:
        """Server-side apply as a user would (kubectl apply --server-side)."""
        manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": self.namespace}}
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[manifest["kind"]], manifest["metadata"]["name"], manifest,
            field_manager=TEST_MANAGER, force=True, _content_type="application/apply-patch+yaml",
        )

    def get(self, kind: str, name: str) -> dict | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURALS[kind], name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURALS[kind], name)

    def patch(self, kind: str, name: str, patch: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], name, patch, _content_type="application/merge-patch+json"
        )

    def status(self, kind: str, name: str) -> dict:
        return (self.get(kind, name) or {}).get("status") or {}

    def condition(self, kind: str, name: str, type_: str) -> dict:
        for condition in self.status(kind, name).get("conditions") or ():
            if condition["type"] == type_:
                return condition
        return {}

    def wait_condition(self, kind: str, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 30,
                       message: str | None = None) -> dict:
        """Wait for the condition; with `message`, also for that text in its message (a verdict can pass
        through states on the way, e.g. a new node is briefly tainted not-ready by the node controller)."""
        def check() -> dict | None:
            found = self.condition(kind, name, type_)
            if (found.get("status") == status and (reason is None or found.get("reason") == reason)
                    and (message is None or message in found.get("message", ""))):
                return found
            return None

        try:
            return wait_for(check, timeout, what=f"{kind} {name}: {type_}={status} {reason or ''} {message or ''}")
        except pytest.fail.Exception:
            pytest.fail(f"{kind} {name} never got {type_}={status} {reason or ''}; status: {json.dumps(self.status(kind, name), indent=1)}")

    def wait_state(self, name: str, state: str, timeout: float = 30) -> dict:
        def check() -> dict | None:
            found = self.status("InferenceService", name)
            return found if found.get("state") == state and found.get("observedGeneration") == self.get("InferenceService", name)["metadata"]["generation"] else None

        try:
            return wait_for(check, timeout, what=f"InferenceService {name} state {state}")
        except pytest.fail.Exception:
            pytest.fail(f"InferenceService {name} never got state {state}; status: {json.dumps(self.status('InferenceService', name), indent=1)}")

    def events(self, name: str) -> list[dict]:
        found = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        return [{"type": e.type, "reason": e.reason, "message": e.message, "kind": e.involved_object.kind} for e in found.items]

    def wait_event(self, name: str, reason: str, timeout: float = 20) -> dict:
        return wait_for(
            lambda: next((e for e in self.events(name) if e["reason"] == reason), None), timeout,
            what=f"event {reason} on {name}",
        )

    # children
    def children(self) -> dict[str, dict]:
        """Every object of the kinds a service owns in the namespace: 'Kind/name' → object (dict)."""
        found: dict[str, dict] = {}
        for api_version, kind in (
            ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "Secret"), ("apps/v1", "Deployment"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
            ("networking.k8s.io/v1", "NetworkPolicy"), ("apps/v1", "ReplicaSet"),
        ):
            resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
            for item in resource.get(namespace=self.namespace).items:
                if item.metadata.name == "kube-root-ca.crt":
                    continue
                found[f"{kind}/{item.metadata.name}"] = item.to_dict()
        return found

    def resource_versions(self) -> dict[str, str]:
        """Every object in the namespace the operator could write, with its resourceVersion."""
        versions = {key: obj["metadata"]["resourceVersion"] for key, obj in self.children().items()}
        for kind, plural in PLURALS.items():
            for item in self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)["items"]:
                versions[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
        for event in self.core.list_namespaced_event(self.namespace).items:
            versions[f"Event/{event.metadata.name}"] = event.metadata.resource_version
        return versions

    def wait_quiet(self, window: float = 3, timeout: float = 45) -> dict[str, str]:
        """Wait until nothing in the namespace changes for `window` seconds (the controller-manager
        and the operator have settled); return the resourceVersions then."""
        previous: dict[str, str] = {}

        def settled() -> dict[str, str] | None:
            nonlocal previous
            current = self.resource_versions()
            quiet = current == previous
            previous = current
            return current if quiet else None

        return wait_for(settled, timeout=timeout, interval=window, what="the namespace to stop changing")

    def pods(self, service: str) -> list:
        return self.core.list_namespaced_pod(self.namespace, label_selector=f"bereit.dev/inference-service={service}").items

    def wait_pods(self, service: str) -> list:
        """The service's pods, once the ReplicaSet controller has created at least one."""
        return wait_for(lambda: self.pods(service), what=f"a pod of {service}")

    def make_pods_ready(self, service: str, restarted_after: dict | None = None) -> int:
        """Act as the kubelet: every current pod of the service runs and is ready (with
        ``restarted_after``, a ``terminated`` state: its containers crashed once before).
        Returns how many pods it patched (call ``wait_pods`` first where there must be one)."""
        count = 0
        for pod in self.pods(service):
            if pod.metadata.deletion_timestamp:
                continue
            containers = [c.name for c in pod.spec.containers]
            status = {
                "phase": "Running",
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now()}
                    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                "containerStatuses": [
                    {"name": c, "ready": True, "restartCount": 1 if restarted_after else 0, "image": "x", "imageID": "",
                     "started": True, "state": {"running": {"startedAt": now()}},
                     "lastState": {"terminated": restarted_after} if restarted_after else {}}
                    for c in containers
                ],
            }
            self.core.patch_namespaced_pod_status(pod.metadata.name, self.namespace, {"status": status})
            count += 1
        return count


# --- nodes ----------------------------------------------------------------------------------

class Nodes:
    """Fake Nodes (no kubelet) whose Leases a thread renews, so they stay Ready."""

    def __init__(self, api: kubernetes.client.ApiClient, pool: str) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.leases = kubernetes.client.CoordinationV1Api(api)
        self.pool = pool
        self.names: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()

    def add(self, name: str, cpu: str, memory: str = "16Gi", ready: bool = True, labels: dict | None = None,
            taints: list[dict] | None = None) -> str:
        name = f"{self.pool}-{name}"
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"bereit.dev/test-pool": self.pool, **(labels or {})}},
            "spec": {"taints": taints or []},
        }
        self.core.create_node(body)
        self.names.append(name)
        self.leases.create_namespaced_lease("kube-node-lease", {
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": self._micro_now()},
        })
        self.set_status(name, cpu, memory, ready)
        return name

    def wait_untainted(self, name: str) -> None:
        """Until the node controller has lifted the not-ready taint the API server puts on a
        new Node (the operator does not count a node under it)."""
        wait_for(
            lambda: not any(t.key.startswith("node.kubernetes.io/") for t in self.core.read_node(name).spec.taints or ()),
            what=f"node {name} without node.kubernetes.io/ taints",
        )

    def set_status(self, name: str, cpu: str, memory: str = "16Gi", ready: bool = True) -> None:
        status = {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{
                "type": "Ready", "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady", "message": "fake node",
                "lastHeartbeatTime": now(), "lastTransitionTime": now(),
            }],
        }
        self.core.patch_node_status(name, {"status": status})

    def cordon(self, name: str, cordoned: bool = True) -> None:
        self.core.patch_node(name, {"spec": {"unschedulable": cordoned}})

    def delete(self, name: str) -> None:
        self.core.delete_node(name)
        self.names.remove(name)

    @staticmethod
    def _micro_now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _renew(self) -> None:
        while not self._stop.wait(5):
            for name in list(self.names):
                try:
                    self.leases.patch_namespaced_lease(name, "kube-node-lease", {"spec": {"renewTime": self._micro_now()}})
                except kubernetes.client.ApiException:
                    pass

    def close(self) -> None:
        self._stop.set()
        for name in list(self.names):
            for call in (lambda: self.core.delete_node(name), lambda: self.leases.delete_namespaced_lease(name, "kube-node-lease")):
                try:
                    call()
                except kubernetes.client.ApiException:
                    pass
        self.names.clear()


# --- manifests --------------------------------------------------------------------------------

def target(name: str, pool: str, purpose: str = "DevTest", **spec: Any) -> dict:
    return {
        "apiVersion": API_VERSION, "kind": "ComputeTarget", "metadata": {"name": name},
        "spec": {"purpose": purpose, "nodeSelector": {"bereit.dev/test-pool": pool}, **spec},
    }


def model(name: str, model_name: str, version: int, uri: str = "https://models.example/iris.pkl") -> dict:
    return {
        "apiVersion": API_VERSION, "kind": "Model", "metadata": {"name": name},
        "spec": {"modelName": model_name, "version": version, "source": {"uri": uri}},
    }


SCORE_PY = "def init():\n    pass\n\n\ndef run(data):\n    return data\n"


def service(name: str, target_name: str = "dev", models: list[dict] | None = None, cpu: str = "0.5", **spec: Any) -> dict:
    body = {
        "computeTarget": target_name,
        "models": models or [{"name": "iris"}],
        "resources": {"cpu": cpu, "memory": "256Mi"},
        "inference": {"entryScript": "score.py", "code": {"inline": {"score.py": SCORE_PY}}},
    }
    if "autoscale" not in spec:
        body["replicas"] = 1
    body.update(spec)
    return {"apiVersion": API_VERSION, "kind": "InferenceService", "metadata": {"name": name}, "spec": body}


def ready_target(cluster: Cluster, nodes: Nodes, cpu: str = "4", name: str = "dev") -> None:
    """A DevTest target on one Ready node of `cpu` vCPUs, and a Ready model iris:1."""
    nodes.add("a", cpu)
    cluster.apply(target(name, nodes.pool))
    cluster.wait_condition("ComputeTarget", name, "Ready", "True")
