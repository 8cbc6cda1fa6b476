"""The cluster itself works: what bereit's e2e tests and the demo rely on.

Control plane: starts warm in < 20 s, takes the CRDs, answers kubectl. Full cluster: a
Deployment of a locally built image gets Ready; its Service answers from the host through
the ClusterIP and from another pod by DNS name; a killed pod comes back; `kubectl top`
shows metrics; a CPU HorizontalPodAutoscaler scales up under load and back down.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from e2e.cluster import localcluster

TESTAPP = Path(__file__).resolve().parent / "cluster" / "testapp"
TESTAPP_IMAGE = "bereit/e2e-smoke:1"


def wait_until(what: str, timeout: float, check, interval: float = 1.0):
    """Poll check() until it returns something truthy; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except localcluster.ClusterError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:.0f} s (last: {last!r})")


# --- control plane ------------------------------------------------------------------------


@pytest.mark.controlplane_only
def test_control_plane_starts_warm_within_20_seconds_and_serves_crds():
    missing = localcluster.missing_binaries()
    if missing:
        pytest.skip(f"binaries not built ({', '.join(missing)}): run e2e/cluster/install-deps.sh")
    state = localcluster.INTEGRATION_STATE.parent / "smoke-controlplane"
    ports = localcluster.Ports(apiserver=26443, etcd=22379, controller_manager=30257, scheduler=30259)
    cluster = localcluster.LocalCluster(state_dir=state, ports=ports)
    try:
        cluster.start()  # makes the certificates the first time: not the warm start
        cluster.stop(force=True)
        cluster.start()
        assert cluster.start_seconds < 20, f"warm control-plane start took {cluster.start_seconds:.1f} s"
        installed = localcluster.install_crds(cluster)
        crds = cluster.kubectl("get", "crds", "-o", "name").split()
        for path in installed:
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            assert f"customresourcedefinition.apiextensions.k8s.io/{name}" in crds
        assert "namespace/kube-system" in cluster.kubectl("get", "namespaces", "-o", "name").split()
    finally:
        cluster.stop(force=True)
    assert not (state / "run" / "kube-apiserver.pid").exists(), "down.sh left a pid file behind"


# --- full cluster -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_app(e2e_cluster, e2e_local, load_images):
    """Build the test app's image on the local Python base image and deploy it."""
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    if e2e_local:
        localcluster.run_script(e2e_cluster, "base-image.sh", timeout=900)
    build = ["docker", "build", "-q", "-t", TESTAPP_IMAGE]
    if os.environ.get("BEREIT_BASE_IMAGE"):  # kind users may build on a pulled Python image
        build += ["--build-arg", f"BASE_IMAGE={os.environ['BEREIT_BASE_IMAGE']}"]
    subprocess.run([*build, str(TESTAPP)], check=True, env=env, capture_output=True)
    load_images(TESTAPP_IMAGE)
    namespace = f"smoke-{os.getpid()}"
    e2e_cluster.kubectl("create", "namespace", namespace)
    e2e_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_app_manifests("echo", replicas=1))
    try:
        e2e_cluster.kubectl("rollout", "status", "-n", namespace, "deployment/echo", "--timeout=120s", timeout=130)
        yield namespace
    finally:
        e2e_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _app_manifests(name: str, replicas: int, cpu_limit: str = "500m") -> str:
    labels = {"app": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "app",
                            "image": TESTAPP_IMAGE,
                            "imagePullPolicy": "Never",
                            "ports": [{"containerPort": 8080}],
                            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": cpu_limit, "memory": "128Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [deployment, service]})


def _client_pod(e2e_cluster, namespace: str, name: str, script: str, cpu: str = "100m") -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": TESTAPP_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", script],
                    "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": cpu, "memory": "64Mi"}},
                }
            ],
        },
    }
    e2e_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))


def _ready_pods(e2e_cluster, namespace: str, app: str) -> list[dict]:
    pods = json.loads(e2e_cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json"))["items"]
    return [
        p for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def test_a_deployment_of_a_locally_built_image_becomes_ready(e2e_cluster, smoke_app):
    pods = _ready_pods(e2e_cluster, smoke_app, "echo")
    assert len(pods) == 1
    assert pods[0]["spec"]["containers"][0]["image"] == TESTAPP_IMAGE


def test_the_service_answers_from_the_host_through_its_cluster_ip(e2e_cluster, e2e_local, smoke_app):
    if not e2e_local:
        pytest.skip("ClusterIPs are reachable from the host only on the local cluster")
    ip = e2e_cluster.kubectl("get", "service", "echo", "-n", smoke_app, "-o", "jsonpath={.spec.clusterIP}")

    def answer() -> str | None:
        # kube-proxy programs a new Service within a second or two.
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=5) as response:
                return response.read().decode()
        except OSError:
            return None

    assert wait_until(f"the Service's ClusterIP {ip} to answer", 30, answer).startswith("echo-")


def test_the_service_answers_another_pod_by_dns_name(e2e_cluster, smoke_app):
    script = (
        "import time, urllib.request\n"
        f"for url in ('http://echo/', 'http://echo.{smoke_app}.svc.cluster.local/'):\n"
        "    for attempt in range(20):\n"
        "        try:\n"
        "            print(url, urllib.request.urlopen(url, timeout=5).read().decode().strip()); break\n"
        "        except OSError as exc:\n"
        "            print(url, 'failed:', exc); time.sleep(1)\n"
    )
    _client_pod(e2e_cluster, smoke_app, "dns-client", script)

    def finished() -> str | None:
        phase = e2e_cluster.kubectl("get", "pod", "dns-client", "-n", smoke_app, "-o", "jsonpath={.status.phase}")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_until("the DNS client pod to finish", 90, finished)
    logs = e2e_cluster.kubectl("logs", "dns-client", "-n", smoke_app)
    assert phase == "Succeeded", logs
    assert logs.count(" echo-") == 2, logs


def test_a_killed_pod_is_restarted(e2e_cluster, e2e_local, smoke_app):
    (pod,) = _ready_pods(e2e_cluster, smoke_app, "echo")
    name = pod["metadata"]["name"]
    if e2e_local:
        # The container's process dies (SIGKILL from the runtime): the kubelet restarts it.
        container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        before = pod["status"]["containerStatuses"][0]["restartCount"]
        localcluster.node_ctr(e2e_cluster, "tasks", "kill", "-s", "SIGKILL", container_id)
        wait_until(
            "the killed container to be restarted and Ready", 90,
            lambda: [p for p in _ready_pods(e2e_cluster, smoke_app, "echo")
                     if p["metadata"]["name"] == name and p["status"]["containerStatuses"][0]["restartCount"] > before],
        )
    # The pod is deleted: its ReplicaSet makes a new one.
    e2e_cluster.kubectl("delete", "pod", name, "-n", smoke_app, "--wait=false")
    wait_until(
        "a replacement pod to be Ready", 90,
        lambda: [p for p in _ready_pods(e2e_cluster, smoke_app, "echo") if p["metadata"]["name"] != name],
    )


def test_kubectl_top_pods_shows_metrics(e2e_cluster, smoke_app):
    def top():
        out = e2e_cluster.kubectl("top", "pods", "-n", smoke_app, "--no-headers")
        return [line for line in out.splitlines() if line.startswith("echo-") and "m " in line + " "]

    lines = wait_until("kubectl top pods to show the echo pod", 120, top, interval=3)
    cpu, memory = lines[0].split()[1:3]
    assert cpu.endswith("m") and memory.endswith("Mi"), lines


def test_a_cpu_autoscaler_scales_up_under_load_and_back_down(e2e_cluster, smoke_app):
    ns = smoke_app
    e2e_cluster.kubectl("apply", "-n", ns, "-f", "-", input=_app_manifests("burn", replicas=1, cpu_limit="300m"))
    e2e_cluster.kubectl("rollout", "status", "-n", ns, "deployment/burn", "--timeout=90s", timeout=100)
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burn"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
            "minReplicas": 1,
            "maxReplicas": 3,
            # Upstream waits 5 min before scaling down; the test cannot (any cluster).
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}},
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
        },
    }
    e2e_cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(hpa))

    def replicas() -> int:
        return int(e2e_cluster.kubectl("get", "deployment", "burn", "-n", ns, "-o", "jsonpath={.spec.replicas}") or 0)

    # Bounded load from inside the cluster: two threads, at most 240 s and 4000 requests.
    load = (
        "import threading, time, urllib.request\n"
        "end = time.monotonic() + 240\n"
        "def hit():\n"
        "    for _ in range(2000):\n"
        "        if time.monotonic() > end: return\n"
        "        try: urllib.request.urlopen('http://burn/burn?ms=200', timeout=10).read()\n"
        "        except Exception: time.sleep(0.2)\n"
        "threads = [threading.Thread(target=hit) for _ in range(2)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
    )
    _client_pod(e2e_cluster, ns, "load", load, cpu="200m")
    try:
        wait_until("the HPA to scale burn above 1 replica", 180, lambda: replicas() > 1, interval=2)
    finally:
        e2e_cluster.kubectl("delete", "pod", "load", "-n", ns, "--grace-period=0", "--force", check=False)
    wait_until("the HPA to scale burn back to 1 replica", 240, lambda: replicas() == 1, interval=3)
