"""The bereit command against a real API server and the operator (a process, as in production).

No kubelet runs here: Nodes are API objects and the test marks pods Ready itself, which is
enough for the operator to report Healthy, a scoring URI and keys. Scoring itself needs
running pods and is proven in e2e/test_cli_workflow.py.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import kubernetes
import pytest
import yaml

from bereit.cli.errors import ExitCode
from bereit.cli.main import run
from e2e.cluster.operator_harness import Cluster, Nodes, wait_for

SCORE_PY = "import json\n\n\ndef init():\n    pass\n\n\ndef run(raw_data):\n    return json.loads(raw_data)\n"
URI = "https://models.example/iris.pkl"


@pytest.fixture
def cli(kubeconfig: str, namespace: str, capsys):
    """run(args) in this test's namespace → (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        code = run([*args, "--kubeconfig", kubeconfig, "--namespace", namespace])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "score.py").write_text(SCORE_PY)
    (tmp_path / "myenv.yml").write_text("dependencies:\n- python=3.11\n- pip:\n  - azureml-defaults\n")
    ic = tmp_path / "inferenceconfig.json"
    ic.write_text(json.dumps({"entryScript": "score.py", "runtime": "python", "condaFile": "myenv.yml"}))
    dc = tmp_path / "deploymentconfig.json"
    dc.write_text(json.dumps({
        "computeType": "AKS",
        "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 0.5},
        "numReplicas": 1,
        "authEnabled": True,
        "scoringTimeoutMs": 5000,
        "tags": {"seed": "001"},
    }))
    return {"ic": ic, "dc": dc, "dir": tmp_path}


def register(cli, name: str = "iris", uri: str = URI) -> dict:
    code, out, err = cli("model", "register", "-n", name, "-p", uri, "-o", "json")
    assert code == 0, err
    return json.loads(out)


def test_register_numbers_versions_and_shows_them(cli):
    versions = [register(cli, "iris")["spec"]["version"] for _ in range(3)]
    assert versions == [1, 2, 3]
    assert register(cli, "sklearn_mnist")["metadata"]["name"].startswith("sklearn-mnist-")

    code, out, _ = cli("model", "list", "-n", "iris", "-o", "json")
    assert code == 0
    assert [m["spec"]["version"] for m in json.loads(out)["items"]] == [1, 2, 3]
    code, out, _ = cli("model", "show", "iris", "-o", "yaml")
    assert yaml.safe_load(out)["spec"]["version"] == 3
    code, out, _ = cli("model", "show", "iris:2")
    assert code == 0 and "iris-v2" in out and URI in out
    code, out, _ = cli("model", "list")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["NAME", "VERSION"]


def test_concurrent_registrations_get_distinct_versions(kubeconfig: str, namespace: str):
    """Five terminals register the same model at once: the API server's name check decides."""
    command = [sys.executable, "-m", "bereit.cli.main", "model", "register", "-n", "race", "-p", URI,
               "-o", "json", "--kubeconfig", kubeconfig, "--namespace", namespace]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
    results = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in results]
    assert sorted(json.loads(out)["spec"]["version"] for out, _ in results) == [1, 2, 3, 4, 5]


def test_unknown_model_service_and_version(cli, files):
    register(cli, "iris")
    for args, expected in (
        (("model", "show", "nope"), "no model named 'nope'"),
        (("model", "show", "iris:9"), "model 'iris' has no version 9"),
        (("model", "delete", "iris:9"), "has no version 9"),
        (("service", "show", "ghost"), "service 'ghost' not found"),
        (("service", "keys", "ghost"), "service 'ghost' not found"),
        (("service", "delete", "ghost"), "service 'ghost' not found"),
        (("compute", "show", "ghost"), "compute target 'ghost' not found"),
    ):
        code, out, err = cli(*args)
        assert code == ExitCode.NOT_FOUND, (args, err)
        assert expected in err and out == ""


def test_deploy_refuses_missing_models_and_targets_without_creating_anything(cli, files, cluster: Cluster):
    register(cli, "iris")
    code, _, err = cli("deploy", "-n", "svc", "-m", "iris:4", "--ic", str(files["ic"]), "--ct", "dev")
    assert code == ExitCode.NOT_FOUND and "has no version 4 in namespace" in err
    code, _, err = cli("deploy", "-n", "svc", "-m", "iris:1", "--ic", str(files["ic"]), "--ct", "dev")
    assert code == ExitCode.NOT_FOUND and "compute target 'dev' not found" in err and "bereit compute create -n dev" in err
    code, _, err = cli("deploy", "-n", "svc", "-m", "iris:1", "--ic", str(files["ic"]))
    assert code == ExitCode.NOT_FOUND and "no compute target in namespace" in err
    assert cluster.get("InferenceService", "svc") is None


def test_compute_targets_show_the_vcpu_verdict(cli, operator, nodes: Nodes):
    nodes.wait_untainted(nodes.add("a", "4", labels={"pool": "small"}))
    code, out, err = cli("compute", "create", "-n", "dev", "--purpose", "DevTest", "--node-selector", "pool=small", "-o", "json")
    assert code == 0, err
    ready = {c["type"]: c for c in json.loads(out)["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True"
    code, out, err = cli("compute", "create", "-n", "prod", "--purpose", "FastProd", "--node-selector", "pool=small")
    assert code == 0, err
    assert "needs at least 12 vCPUs; 1 matching node has 4 vCPUs" in out, out
    code, out, _ = cli("compute", "list")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "True" in lines["dev"] and "False" in lines["prod"]
    code, _, err = cli("compute", "create", "-n", "dev")
    assert code == ExitCode.EXISTS and "already exists" in err


def _ready_soon(cluster: Cluster, name: str, stop: threading.Event) -> threading.Thread:
    """Act as the kubelet while a command waits: the service's pods become Ready."""

    def loop() -> None:
        while not stop.wait(0.5):
            try:
                cluster.make_pods_ready(name)
            except kubernetes.client.ApiException:
                pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_seed_workflow(cli, files, operator, nodes: Nodes, cluster: Cluster):
    """register → deploy from Azure ML files (waiting until Healthy) → keys → regen-key →
    update to v2 (same URL, same keys) → delete."""
    nodes.wait_untainted(nodes.add("a", "4"))
    assert cli("compute", "create", "-n", "dev", "--purpose", "DevTest")[0] == 0
    register(cli, "iris")
    register(cli, "iris")

    stop = threading.Event()
    _ready_soon(cluster, "mnist", stop)
    try:
        code, out, err = cli("deploy", "-n", "mnist", "-m", "iris:1", "-ic", str(files["ic"]), "-dc", str(files["dc"]), "--timeout", "90")
        assert code == 0, err
        assert "Healthy" in out and "http://mnist." in out
        assert "azureml-defaults left out" in err

        code, out, err = cli("service", "show", "mnist", "-o", "json")
        service = json.loads(out)
        uri = service["status"]["scoringUri"]
        assert service["spec"]["inference"]["code"]["inline"] == {"score.py": SCORE_PY}
        assert service["spec"]["tags"] == {"seed": "001"} and service["spec"]["replicas"] == 1

        code, out, _ = cli("service", "keys", "mnist", "-o", "json")
        keys = json.loads(out)
        assert set(keys) == {"primaryKey", "secondaryKey"} and all(len(v) >= 16 for v in keys.values())

        code, out, err = cli("service", "regen-key", "mnist", "primary", "-o", "json")
        assert code == 0, err
        renewed = json.loads(out)
        assert renewed["primaryKey"] != keys["primaryKey"] and renewed["secondaryKey"] == keys["secondaryKey"]

        code, out, err = cli("service", "update", "mnist", "-m", "iris:3", "--no-wait")
        assert code == ExitCode.NOT_FOUND and "no version 3" in err
        assert cluster.get("InferenceService", "mnist")["spec"]["models"] == [{"name": "iris", "version": 1}]

        code, out, err = cli("service", "update", "mnist", "-m", "iris:2", "--timeout", "90")
        assert code == 0, err
        code, out, _ = cli("service", "show", "mnist", "-o", "json")
        after = json.loads(out)
        assert after["status"]["scoringUri"] == uri
        assert after["status"]["modelVersions"] == "iris:2"
        assert json.loads(cli("service", "keys", "mnist", "-o", "json")[1]) == renewed

        code, out, _ = cli("service", "list")
        assert out.splitlines()[1].split()[:3] == ["mnist", "Healthy", "iris:2"]
        code, _, err = cli("deploy", "-n", "mnist", "-m", "iris:1", "--ic", str(files["ic"]))
        assert code == ExitCode.EXISTS and "bereit service update mnist" in err
    finally:
        stop.set()

    code, _, err = cli("service", "delete", "mnist", "--timeout", "60")
    assert code == 0, err
    assert cluster.get("InferenceService", "mnist") is None
    code, _, err = cli("model", "delete", "iris:1", "--timeout", "60")
    assert code == 0, err


def test_deploy_reports_failure_with_the_reason(cli, files, operator, nodes: Nodes):
    """More CPU than the target has: the operator refuses, the command says why and exits 1."""
    nodes.wait_untainted(nodes.add("a", "2"))
    assert cli("compute", "create", "-n", "dev", "--purpose", "DevTest")[0] == 0
    register(cli, "iris")
    dc = files["dir"] / "big.json"
    dc.write_text(json.dumps({"containerResourceRequirements": {"cpu": 8, "memoryInGB": 1}, "numReplicas": 1}))
    started = time.monotonic()
    code, _, err = cli("deploy", "-n", "big", "-m", "iris", "--ic", str(files["ic"]), "--dc", str(dc), "--timeout", "60")
    assert code == ExitCode.FAILED, err
    [line] = [l for l in err.splitlines() if l.startswith("error:")]
    assert "service big is Failed: needs 8 vCPUs (1 replica × 8)" in line, line
    assert time.monotonic() - started < 45


def test_keys_from_the_deployment_config(cli, files, operator, nodes: Nodes, cluster: Cluster):
    nodes.wait_untainted(nodes.add("a", "4"))
    assert cli("compute", "create", "-n", "dev", "--purpose", "DevTest")[0] == 0
    register(cli, "iris")
    dc = files["dir"] / "keys.json"
    dc.write_text(json.dumps({"numReplicas": 1, "keys": {"primaryKey": "p" * 24, "secondaryKey": "s" * 24}}))
    code, _, err = cli("deploy", "-n", "keyed", "-m", "iris:1", "--ic", str(files["ic"]), "--dc", str(dc), "--no-wait")
    assert code == 0, err
    code, out, _ = cli("service", "keys", "keyed", "-o", "json")
    assert json.loads(out) == {"primaryKey": "p" * 24, "secondaryKey": "s" * 24}


def test_token_auth_hands_out_tokens_signed_with_the_key(cli, files, operator, nodes: Nodes):
    from bereit.server import tokens

    nodes.wait_untainted(nodes.add("a", "4"))
    assert cli("compute", "create", "-n", "dev", "--purpose", "DevTest")[0] == 0
    register(cli, "iris")
    dc = files["dir"] / "token.json"
    dc.write_text(json.dumps({"numReplicas": 1, "tokenAuthEnabled": True}))
    code, _, err = cli("deploy", "-n", "tokened", "-m", "iris:1", "--ic", str(files["ic"]), "--dc", str(dc), "--no-wait")
    assert code == 0, err
    keys = wait_for(lambda: (lambda r: json.loads(r[1]) if r[0] == 0 else None)(cli("service", "keys", "tokened", "-o", "json")), what="keys")
    code, out, err = cli("service", "token", "tokened", "-o", "json")
    assert code == 0, err
    claims = tokens.verify(json.loads(out)["accessToken"], (keys["primaryKey"].encode(),), "tokened")
    assert claims["exp"] > time.time()
    code, _, err = cli("service", "token", "ghost")
    assert code == ExitCode.NOT_FOUND


def test_a_failed_step_leaves_nothing_behind(cli, files, cluster: Cluster, namespace: str, kube_api):
    """Without an operator the keys Secret never comes: the service and its registry Secret go again."""
    core = kubernetes.client.CoreV1Api(kube_api)
    cluster.apply({"apiVersion": "bereit.dev/v1alpha1", "kind": "ComputeTarget", "metadata": {"name": "dev"}, "spec": {"purpose": "DevTest"}})
    register(cli, "iris")
    ic = files["dir"] / "private.json"
    ic.write_text(json.dumps({
        "entryScript": "score.py",
        "baseImage": "registry.example.com/serving:1",
        "baseImageRegistry": {"address": "registry.example.com", "username": "u", "password": "secret-password"},
    }))
    dc = files["dir"] / "keys.json"
    dc.write_text(json.dumps({"keys": {"primaryKey": "p" * 24}}))
    code, _, err = cli("deploy", "-n", "half", "-m", "iris:1", "--ic", str(ic), "--dc", str(dc), "--timeout", "3")
    assert code == ExitCode.TIMEOUT, err
    assert "is the operator running?" in err
    assert cluster.get("InferenceService", "half") is None
    names = [s.metadata.name for s in core.list_namespaced_secret(namespace).items]
    assert "half-registry" not in names


def test_registry_credentials_become_an_owned_pull_secret(cli, files, cluster: Cluster, namespace: str, kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    cluster.apply({"apiVersion": "bereit.dev/v1alpha1", "kind": "ComputeTarget", "metadata": {"name": "dev"}, "spec": {"purpose": "DevTest"}})
    register(cli, "iris")
    ic = files["dir"] / "private.json"
    ic.write_text(json.dumps({
        "entryScript": "score.py",
        "baseImage": "registry.example.com/serving:1",
        "baseImageRegistry": {"address": "registry.example.com", "username": "u", "password": "secret-password"},
    }))
    code, _, err = cli("deploy", "-n", "private", "-m", "iris:1", "--ic", str(ic), "--no-wait")
    assert code == 0, err
    service = cluster.get("InferenceService", "private")
    assert service["spec"]["inference"]["environment"]["imagePullSecrets"] == [{"name": "private-registry"}]
    secret = core.read_namespaced_secret("private-registry", namespace)
    assert secret.type == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
    assert auths["registry.example.com"]["password"] == "secret-password"
    assert secret.metadata.owner_references[0].uid == service["metadata"]["uid"]


def test_dry_run_manifests_are_accepted_by_the_api_server(cli, files, kube_api, namespace: str):
    """What --dry-run prints for a GitOps repository passes the CRD schema and its CEL rules."""
    code, out, err = cli("deploy", "-n", "gitops", "-m", "iris:1", "--ic", str(files["ic"]), "--dc", str(files["dc"]), "--ct", "dev", "--dry-run")
    assert code == 0, err
    manifest = yaml.safe_load(out)
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    created = custom.create_namespaced_custom_object(
        "bereit.dev", "v1alpha1", namespace, "inferenceservices", manifest, dry_run="All"
    )
    assert created["spec"]["inference"]["code"]["inline"] == {"score.py": SCORE_PY}
    assert created["spec"]["scoring"]["timeoutMs"] == 5000


def test_crds_missing_is_explained(kubeconfig: str, capsys, namespace: str):
    """A cluster without bereit's CRDs: asking for a kind the server does not know."""
    from bereit.cli import cluster as cli_kube

    kube = cli_kube.Cluster(cli_kube.Target(namespace=namespace, kubeconfig=kubeconfig))
    error = None
    try:
        kube.call(
            lambda: kube.custom.list_namespaced_custom_object("nothing.example", "v1", namespace, "models"),
            kind="Model",
        )
    except cli_kube.ClusterError as caught:
        error = caught
    assert error is not None and "has no bereit.dev custom resources" in str(error)
