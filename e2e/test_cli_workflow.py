"""Azure Machine Learning's whole workflow through the bereit command, on a cluster where pods really run:

compute create → model register (v1, v2: local files become images the node has) → deploy
from Azure ML's inferenceconfig.json / deploymentconfig.json → service run → keys →
regen-key → update to v2 (same URL, same keys) → logs → delete.

The operator runs as a process on this machine, watching only the test's namespace, with the
runtime image (BEREIT_E2E_RUNTIME_IMAGE, default bereit/runtime:<version>) loaded into the node;
an operator the chart installed in the cluster is scaled to 0 meanwhile. Set
BEREIT_E2E_OPERATOR=external to test the operator already running in the cluster instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bereit import __version__
from bereit.cli.images.builder import build_image
from e2e.cluster import localcluster
from e2e.workflow import images

RUNTIME_IMAGE = os.environ.get("BEREIT_E2E_RUNTIME_IMAGE", f"bereit/runtime:{__version__}")
# Model images build on the runtime's base, which must already be on this machine.
BASE_IMAGE = os.environ.get("BEREIT_BASE_IMAGE", "bereit/python-base:bookworm")
REPO = Path(__file__).resolve().parents[1]

# A seed-style entry script that needs nothing but the standard library: the "model" is a
# factor in model.json, so v1 and v2 answer differently and an update is visible.
SCORE_PY = """import json
import os


def init():
    global factor
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.json")) as f:
        factor = json.load(f)["factor"]


def run(raw_data):
    data = json.loads(raw_data)["data"]
    return [x * factor for x in data]
"""
INFERENCE_CONFIG = {"entryScript": "score.py", "runtime": "python", "sourceDirectory": "src"}
DEPLOYMENT_CONFIG = {
    "computeType": "AKS",
    "containerResourceRequirements": {"cpu": 0.2, "memoryInGB": 0.25},
    "numReplicas": 1,
    "authEnabled": True,
    "scoringTimeoutMs": 10000,
    "maxConcurrentRequestsPerContainer": 2,
    "livenessProbeRequirements": {"periodSeconds": 10, "initialDelaySeconds": 10, "timeoutSeconds": 2, "successThreshold": 1, "failureThreshold": 3},
    "tags": {"seed": "workflow"},
    "description": "factor model, Azure Machine Learning workflow through the CLI",
}


def _docker_has(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def images_ready(load_images, e2e_local: bool) -> None:
    if e2e_local and not _docker_has(RUNTIME_IMAGE) and "BEREIT_E2E_RUNTIME_IMAGE" not in os.environ:
        # A fresh machine: test_workflow.py builds the runtime too, but runs after this test.
        base = images.local_base_image(print)
        build_image("runtime", tag=RUNTIME_IMAGE, base_image=base, progress=print)
    for image in (RUNTIME_IMAGE, BASE_IMAGE):
        if not _docker_has(image):
            pytest.skip(
                f"docker image {image} is missing: build it (python -m bereit.cli.images build --only runtime "
                "--base-image bereit/python-base:bookworm; e2e/cluster/base-image.sh)"
            )
    # Another cluster named by KUBECONFIG pulls BEREIT_E2E_RUNTIME_IMAGE itself, unless it is kind.
    if e2e_local or os.environ.get("BEREIT_KIND_CLUSTER"):
        load_images(RUNTIME_IMAGE)


# The chart's operator Deployment (see charts/bereit/templates/_helpers.tpl).
IN_CLUSTER_OPERATOR = "app.kubernetes.io/name=bereit,app.kubernetes.io/component=operator"


@contextlib.contextmanager
def in_cluster_operators_paused(cluster) -> Iterator[None]:
    """An operator installed in the cluster (by `make demo`, or an earlier run's chart test on
    this cluster's kept state) watches every namespace: it would reconcile this test's
    service too, from its own image, and two writers of one Deployment never settle. It is
    scaled to 0 while this test's operator runs, and back afterwards."""
    found = json.loads(cluster.kubectl("get", "deployments", "-A", "-l", IN_CLUSTER_OPERATOR, "-o", "json"))["items"]
    paused = [(d["metadata"]["namespace"], d["metadata"]["name"], d["spec"].get("replicas", 1)) for d in found]
    for namespace, name, _ in paused:
        cluster.kubectl("scale", "deployment", name, "-n", namespace, "--replicas=0")
    for namespace, _, _ in paused:
        # Fails only when no pod is left to wait for.
        cluster.kubectl("wait", "--for=delete", "pod", "-l", IN_CLUSTER_OPERATOR, "-n", namespace, "--timeout=90s", timeout=120, check=False)
    try:
        yield
    finally:
        for namespace, name, replicas in paused:
            cluster.kubectl("scale", "deployment", name, "-n", namespace, f"--replicas={replicas}", check=False)


@pytest.fixture
def operator_process(e2e_cluster, e2e_namespace: str, images_ready, tmp_path: Path) -> Iterator[None]:
    if os.environ.get("BEREIT_E2E_OPERATOR") == "external":
        yield
        return
    # As the CLI's own error says to (`kubectl apply -f crds/`): a fresh cluster has none yet,
    # and the chart that test_workflow.py installs later adopts them.
    localcluster.install_crds(e2e_cluster)
    with in_cluster_operators_paused(e2e_cluster):
        yield from _operator_process(e2e_cluster, e2e_namespace, tmp_path)


def _operator_process(e2e_cluster, e2e_namespace: str, tmp_path: Path) -> Iterator[None]:
    port = _free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(e2e_cluster.kubeconfig),
        "BEREIT_WATCH_NAMESPACES": e2e_namespace,
        "BEREIT_LIVENESS_PORT": str(port),
        "BEREIT_RUNTIME_IMAGE": RUNTIME_IMAGE,
        "BEREIT_IMAGE_PULL_POLICY": "IfNotPresent",
        "BEREIT_LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "operator.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bereit.controllers"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the operator did not start:\n{(tmp_path / 'operator.log').read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def bereit(e2e_cluster, e2e_namespace: str, tmp_path: Path):
    """The real command (a new process each time) in the test's namespace and folder."""
    env = {**os.environ, "KUBECONFIG": str(e2e_cluster.kubeconfig), "BEREIT_NAMESPACE": e2e_namespace, "BEREIT_BASE_IMAGE": BASE_IMAGE}
    node_containerd = e2e_cluster.state_dir / "containerd" / "containerd.sock"
    if node_containerd.exists():  # the local cluster's node runs on this machine: images go into its containerd
        env["CONTAINERD_ADDRESS"] = str(node_containerd)

    def call(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "bereit.cli.main", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            pytest.fail(f"bereit {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}")
        return result

    return call


class Steps:
    """Seconds per step, printed at the end (pytest -s shows them; the e2e README records them)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.times: list[tuple[str, float]] = []

    def done(self, what: str) -> None:
        now = time.monotonic()
        self.times.append((what, now - self.last))
        self.last = now

    def report(self) -> None:
        print("\n".join(f"{seconds:6.1f} s  {what}" for what, seconds in self.times))


def _score(bereit, service: str, data: list[int], timeout: float = 120) -> list[int]:
    """service run, retried while a new key or replica settles (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        result = bereit("service", "run", service, "-d", json.dumps({"data": data}), check=False)
        if result.returncode == 0:
            return json.loads(result.stdout)
        if time.monotonic() > deadline:
            pytest.fail(f"service run kept failing:\n{result.stderr[-2000:]}")
        time.sleep(3)


def test_seed_workflow_through_the_cli(bereit, operator_process, tmp_path: Path, e2e_cluster, e2e_namespace: str):
    # Files as Azure Machine Learning lays them out: a source folder, the two Azure ML config files, models.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE_PY)
    (tmp_path / "inferenceconfig.json").write_text(json.dumps(INFERENCE_CONFIG))
    (tmp_path / "deploymentconfig.json").write_text(json.dumps(DEPLOYMENT_CONFIG))
    for version, factor in ((1, 2), (2, 3)):
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({"factor": factor, "nonce": e2e_namespace}))

    steps = Steps()
    target = json.loads(bereit("compute", "create", "-n", "dev", "--purpose", "DevTest", "-o", "json").stdout)
    ready = {c["type"]: c for c in target["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True", ready
    steps.done("compute create (DevTest verdict)")

    # A registered file lands at $AZUREML_MODEL_DIR/model.json, as in Azure Machine Learning.
    first = json.loads(bereit("model", "register", "-n", "factor", "-p", "v1/model.json", "--tag", "factor=2", "-o", "json").stdout)
    second = json.loads(bereit("model", "register", "-n", "factor", "-p", "v2/model.json", "-o", "json").stdout)
    assert (first["spec"]["version"], second["spec"]["version"]) == (1, 2)
    assert first["spec"]["source"]["uri"].startswith("oci://bereit-models/factor:")
    steps.done("model register v1 and v2 (image build + load into the node)")

    deployed = bereit("deploy", "-n", "factor", "-m", "factor:1", "-ic", "inferenceconfig.json", "-dc", "deploymentconfig.json", "--timeout", "480")
    assert "Healthy" in deployed.stdout, deployed.stdout + deployed.stderr
    service = json.loads(bereit("service", "show", "factor", "-o", "json").stdout)
    scoring_uri = service["status"]["scoringUri"]
    assert scoring_uri.endswith("/score")
    steps.done("deploy from Azure ML files until Healthy")

    assert _score(bereit, "factor", [1, 2, 3]) == [2, 4, 6]
    steps.done("service run")

    keys = json.loads(bereit("service", "keys", "factor", "-o", "json").stdout)
    renewed = json.loads(bereit("service", "regen-key", "factor", "primary", "-o", "json").stdout)
    assert renewed["primaryKey"] != keys["primaryKey"] and renewed["secondaryKey"] == keys["secondaryKey"]
    # The replica reads the new key from its mounted Secret once the kubelet refreshes it
    # (its sync period plus jitter: up to ~90 s, more on a loaded node).
    assert _score(bereit, "factor", [5], timeout=240) == [10]
    steps.done("keys, regen-key primary, run with the new key")

    updated = bereit("service", "update", "factor", "-m", "factor:2", "--timeout", "480")
    assert "Healthy" in updated.stdout
    after = json.loads(bereit("service", "show", "factor", "-o", "json").stdout)
    assert after["status"]["scoringUri"] == scoring_uri
    assert after["status"]["modelVersions"] == "factor:2"
    assert json.loads(bereit("service", "keys", "factor", "-o", "json").stdout) == renewed
    assert _score(bereit, "factor", [1, 2, 3]) == [3, 6, 9]
    steps.done("update to v2 until Healthy, run")

    logs = bereit("service", "logs", "factor", "--tail", "50").stdout
    assert logs.strip(), "the replica wrote no log lines"

    missing = bereit("service", "run", "nothing-here", "-d", "{}", check=False)
    assert missing.returncode == 3 and "service 'nothing-here' not found" in missing.stderr
    in_use = bereit("model", "delete", "factor:2", check=False)
    assert in_use.returncode == 1 and "used by service(s) factor" in in_use.stderr

    bereit("service", "delete", "factor", "--timeout", "120")
    assert bereit("service", "show", "factor", check=False).returncode == 3
    bereit("model", "delete", "factor:1", "--timeout", "120")
    bereit("model", "delete", "factor:2", "--timeout", "120")
    assert json.loads(bereit("model", "list", "-o", "json").stdout)["items"] == []
    steps.done("logs, errors, delete service and models")
    steps.report()
