"""`bereit service run`: one scoring request, as Azure Machine Learning's service.run(input_data) sends it.

The scoring URI in the status names the Service inside the cluster, which a laptop usually
cannot reach; then the request goes through a port-forward to a ready replica, over the
Kubernetes API with the user's own credentials. A URI reachable from outside (an Ingress)
is used directly.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bereit.cli.errors import CliError
from bereit.constants import LABEL_SERVICE, SCORE_PATH, SERVER_PORT

if TYPE_CHECKING:  # the kubernetes client takes a second to import; commands load it when they connect
    from bereit.cli.cluster import Cluster

IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


class Via(StrEnum):
    AUTO = "auto"
    DIRECT = "direct"
    PORT_FORWARD = "port-forward"


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def in_cluster(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    return host.endswith(IN_CLUSTER_SUFFIXES) or "." not in host


def score(
    kube: Cluster,
    service: dict[str, Any],
    body: bytes,
    headers: dict[str, str],
    via: Via,
    timeout: float,
) -> Response:
    uri = (service.get("status") or {}).get("scoringUri")
    if via == Via.DIRECT or (via == Via.AUTO and uri and not in_cluster(uri)):
        if not uri:
            raise CliError(f"service {service['metadata']['name']} has no scoring URI yet (bereit service show)")
        return _direct(uri, body, headers, timeout)
    return _through_port_forward(kube, service, body, headers, timeout)


def _direct(uri: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    parts = urlsplit(uri)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or SCORE_PATH
    try:
        return _exchange(connection, path + (f"?{parts.query}" if parts.query else ""), body, headers)
    except (OSError, http.client.HTTPException) as error:
        raise CliError(f"cannot reach {uri}: {error} (try --via port-forward)") from None
    finally:
        connection.close()


def _through_port_forward(kube: Cluster, service: dict[str, Any], body: bytes, headers: dict[str, str], timeout: float) -> Response:
    name = service["metadata"]["name"]
    pods = [p for p in kube.list_pods(f"{LABEL_SERVICE}={name}") if _ready(p)]
    if not pods:
        state = (service.get("status") or {}).get("state") or "not ready"
        raise CliError(f"service {name} has no ready replica to score with (it is {state}): bereit service show {name}")
    pod = pods[0]["metadata"]["name"]
    from kubernetes.stream import portforward

    forward = kube.call(
        lambda: portforward(
            kube.core.connect_get_namespaced_pod_portforward, pod, kube.namespace, ports=str(SERVER_PORT)
        ),
        kind="Pod",
        name=pod,
    )
    try:
        connection = http.client.HTTPConnection("localhost", SERVER_PORT, timeout=timeout)
        sock = forward.socket(SERVER_PORT)
        sock.settimeout(timeout)
        connection.sock = sock
        try:
            return _exchange(connection, SCORE_PATH, body, headers)
        except (OSError, http.client.HTTPException) as error:
            problem = forward.error(SERVER_PORT) or error
            raise CliError(f"the port-forward to {pod} failed: {problem}") from None
    finally:
        forward.close()


def _exchange(connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> Response:
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return Response(response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, data)


def _ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False

