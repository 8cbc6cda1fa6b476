"""Reaching a service and scoring with it, as a client outside the cluster does.

On the local cluster the host routes Service addresses onto the node's bridge, so requests go
straight to the ClusterIP (through kube-proxy, to every replica). Elsewhere they go through
`kubectl port-forward` to one replica.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlsplit

from .commands import Kubectl
from .progress import WorkflowError
from .waiting import wait_for

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


def request(url: str, body: bytes | None = None, key: str | None = None, timeout: float = 30,
            method: str | None = None) -> Reply:
    """One HTTP request on a new connection (as curl makes it); POST when there is a body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method or ("POST" if body is not None else "GET"), target, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
    finally:
        connection.close()


def score(url: str, key: str | None, rows: Sequence[Sequence[float]], timeout: float = 60) -> list:
    """POST rows as Azure Machine Learning's tutorial does ({"data": rows}); the predictions, or an error."""
    reply = request(url, json.dumps({"data": [list(r) for r in rows]}).encode(), key, timeout)
    if reply.status != 200:
        raise WorkflowError(f"POST {url} answered {reply.status}: {reply.body[:500].decode(errors='replace')}")
    return reply.json()


def score_once_served(url: str, key: str | None, rows: Sequence[Sequence[float]], timeout: float = 60,
                      show=None) -> list:
    """``score``, asked until it is answered: right after a replica (re)starts, the Service's
    endpoints and kube-proxy's rules catch up within seconds, and until then the address
    refuses or resets connections (a non-200 answer is a WorkflowError, which waits too)."""
    predictions: list = []

    def answered() -> tuple[bool, str]:
        try:
            predictions[:] = [score(url, key, rows)]
        except OSError as exc:
            return False, f"POST {url}: {exc}"
        return True, f"POST {url}: HTTP 200"

    wait_for(f"an answer from {url}", answered, timeout=timeout, interval=0.5, show=show)
    return predictions[0]


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    if len(predictions) != len(labels):
        raise WorkflowError(f"{len(predictions)} predictions for {len(labels)} digits")
    return sum(int(p) == int(t) for p, t in zip(predictions, labels)) / len(labels)


class Endpoint:
    """The base URL (http://host:port) of a Service as this machine reaches it."""

    def __init__(self, kubectl: Kubectl, namespace: str, service: str, *, cluster_ip: bool, timeout: float = 60) -> None:
        self.kubectl, self.namespace, self.service = kubectl, namespace, service
        self._forward: subprocess.Popen | None = None
        if cluster_ip:
            found = kubectl.get("service", service, namespace)
            if not found or not found["spec"].get("clusterIP"):
                raise WorkflowError(f"Service {namespace}/{service} has no ClusterIP")
            port = found["spec"]["ports"][0]["port"]
            self.base = f"http://{found['spec']['clusterIP']}:{port}"
            self.via = "the Service's ClusterIP"
        else:
            self.base = self._port_forward(timeout)
            self.via = "kubectl port-forward (to one replica)"

    def _port_forward(self, timeout: float) -> str:
        command = [self.kubectl.binary, *self.kubectl._config_args(), "port-forward", "-n", self.namespace,
                   f"service/{self.service}", ":80", "--address", "127.0.0.1"]
        self._forward = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self._forward.stdout is not None
        seen = []
        while time.monotonic() < deadline:
            line = self._forward.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            match = FORWARDING.search(line)
            if match:
                # kubectl logs every connection: keep reading so it never blocks on a full pipe.
                threading.Thread(target=self._forward.stdout.read, daemon=True).start()
                return f"http://127.0.0.1:{match.group(1)}"
        self.close()
        raise WorkflowError(f"kubectl port-forward to service/{self.service} did not start: {' '.join(seen)}")

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        if self._forward is not None:
            self._forward.terminate()
            try:
                self._forward.wait(10)
            except subprocess.TimeoutExpired:
                self._forward.kill()
            self._forward = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_) -> None:
        self.close()
