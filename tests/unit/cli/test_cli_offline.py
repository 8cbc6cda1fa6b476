"""The bereit command end to end where no cluster is needed: --dry-run output, bad input, an
unreachable cluster. Each failure is one line on stderr with its documented exit code."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from bereit.api import InferenceService
from bereit.cli.errors import ExitCode
from bereit.cli.main import run

from .conftest import write_json

SEED_DC = {
    "computeType": "AKS",
    "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1},
    "autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 3, "refreshPeriodInSeconds": 5, "targetUtilization": 70},
    "authEnabled": True,
    "scoringTimeoutMs": 5000,
    "maxConcurrentRequestsPerContainer": 2,
    "maxQueueWaitMs": 1000,
    "livenessProbeRequirements": {"periodSeconds": 5, "initialDelaySeconds": 10, "timeoutSeconds": 2, "successThreshold": 1, "failureThreshold": 3},
    "appInsightsEnabled": True,
    "collectModelData": True,
    "tags": {"data": "MNIST"},
    "description": "Predict MNIST with sklearn",
}


@pytest.fixture
def configs(workdir: Path) -> tuple[Path, Path]:
    (workdir / "myenv.yml").write_text("dependencies:\n- python=3.11\n- pip:\n  - azureml-defaults\n  - scikit-learn\n")
    ic = write_json(workdir / "inferenceconfig.json", {"entryScript": "score.py", "runtime": "python", "condaFile": "myenv.yml"})
    dc = write_json(workdir / "deploymentconfig.json", SEED_DC)
    return ic, dc


def errors(captured) -> list[str]:
    return [line for line in captured.err.splitlines() if line.startswith("error:")]


def test_dry_run_prints_a_valid_manifest(configs, capsys):
    ic, dc = configs
    code = run(["deploy", "-n", "mnist", "-m", "sklearn_mnist:1", "-ic", str(ic), "-dc", str(dc), "-ct", "dev", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    documents = list(yaml.safe_load_all(captured.out))
    assert len(documents) == 1
    service = InferenceService.model_validate(documents[0])
    spec = service.spec
    assert service.metadata.name == "mnist"
    assert spec.compute_target == "dev"
    assert [(m.name, m.version) for m in spec.models] == [("sklearn_mnist", 1)]
    assert spec.inference.entry_script == "score.py"
    assert "def run(raw_data)" in spec.inference.code.inline["score.py"]
    assert spec.inference.environment.python_packages == ["scikit-learn"]
    assert (spec.resources.cpu, spec.resources.memory) == ("0.5", "1Gi")
    assert (spec.autoscale.min_replicas, spec.autoscale.max_replicas, spec.autoscale.refresh_seconds) == (1, 3, 5)
    assert spec.auth.mode == "key"
    assert (spec.scoring.timeout_ms, spec.scoring.max_concurrent_requests_per_replica, spec.scoring.max_queue_wait_ms) == (5000, 2, 1000)
    assert spec.liveness_probe.initial_delay_seconds == 10
    assert spec.telemetry.enabled and spec.data_collection.enabled
    assert spec.tags == {"data": "MNIST"} and spec.description == "Predict MNIST with sklearn"
    assert "azureml-defaults left out" in captured.err


def test_dry_run_output_deploys_again_with_f(configs, capsys, tmp_path):
    ic, dc = configs
    assert run(["deploy", "-n", "mnist", "-m", "sklearn_mnist:1", "--ic", str(ic), "--dc", str(dc), "--ct", "dev", "--dry-run"]) == 0
    first = capsys.readouterr().out
    manifest = tmp_path / "mnist.yaml"
    manifest.write_text(first)
    assert run(["deploy", "-f", str(manifest), "--dry-run"]) == 0
    assert capsys.readouterr().out == first


def test_dry_run_json(configs, capsys):
    ic, _ = configs
    assert run(["deploy", "-n", "mnist", "-m", "digits", "--ic", str(ic), "--ct", "dev", "--dry-run", "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["kind"] == "InferenceService"
    assert document["spec"]["models"] == [{"name": "digits"}]  # no version: the latest Ready one


def test_dry_run_names_secrets_it_leaves_out(configs, capsys, workdir):
    ic = write_json(
        workdir / "ic2.json",
        {"entryScript": "score.py", "baseImage": "r.example.com/i:1", "baseImageRegistry": {"address": "r.example.com", "username": "u", "password": "p"}},
    )
    dc = write_json(workdir / "dc2.json", {"keys": {"primaryKey": "a" * 20, "secondaryKey": "b" * 20}})
    assert run(["deploy", "-n", "svc", "-m", "m:1", "--ic", str(ic), "--dc", str(dc), "--ct", "dev", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "kubectl create secret docker-registry svc-registry" in captured.err
    assert "keys from the deployment config are not written" in captured.err
    assert "password" not in captured.out and "a" * 20 not in captured.out
    assert yaml.safe_load(captured.out)["spec"]["inference"]["environment"]["imagePullSecrets"] == [{"name": "svc-registry"}]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"autoScaler": {"minReplicas": 5, "maxReplicas": 2}}, "autoScaler.minReplicas in"),
        ({"containerResourceRequirements": {"cpu": 0}}, "containerResourceRequirements.cpu in"),
        ({"containerResourceRequirements": {"memoryInGB": 0.001}}, "containerResourceRequirements.memoryInGB in"),
        ({"numReplicas": 2, "autoScaler": {"autoscaleEnabled": True}}, "numReplicas in"),
        ({"authEnabled": True, "tokenAuthEnabled": True}, "keyAuth and tokenAuth cannot both be on"),
        ({"scoringTimeoutMs": 0}, "scoringTimeoutMs in"),
        ({"livenessProbeRequirements": {"successThreshold": 2}}, "livenessProbeRequirements.successThreshold in"),
    ],
)
def test_settings_the_api_refuses_name_the_azure_key(configs, capsys, workdir, changes, expected):
    ic, _ = configs
    dc = write_json(workdir / "bad.json", changes)
    code = run(["deploy", "-n", "mnist", "-m", "m:1", "--ic", str(ic), "--dc", str(dc), "--ct", "dev", "--dry-run"])
    captured = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT
    assert captured.out == ""
    [line] = errors(captured)
    assert expected in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "mnist", "-m", "m:1", "--ic", "missing.json", "--ct", "dev", "--dry-run"], "missing.json does not exist"),
        (["-n", "mnist", "-m", "m:0", "--ic", "{ic}", "--ct", "dev", "--dry-run"], "version after ':' must be a whole number"),
        (["-n", "mnist", "-m", "m:latest", "--ic", "{ic}", "--ct", "dev", "--dry-run"], "version after ':' must be a whole number"),
        (["-n", "Mnist_Service", "-m", "m:1", "--ic", "{ic}", "--ct", "dev", "--dry-run"], "must be a DNS label"),
        (["-n", "mnist", "-m", "m:1", "--ic", "{ic}", "--dry-run"], "--ct TARGET is required with --dry-run"),
        (["-n", "mnist", "--ic", "{ic}", "--ct", "dev", "--dry-run"], "name the model(s) to serve"),
        (["-m", "m:1", "--ic", "{ic}", "--ct", "dev", "--dry-run"], "name the service with -n"),
        (["-n", "mnist", "-m", "m:1", "--ct", "dev", "--dry-run"], "--ic INFERENCE_CONFIG is required"),
        (["-n", "mnist", "-m", "m:1", "-f", "{ic}", "--ic", "{ic}", "--dry-run"], "either -f MANIFEST or --ic"),
        (["-n", "mnist", "-m", "m:1", "-f", "{ic}", "--dry-run"], "holds 0 InferenceService manifests"),
    ],
)
def test_bad_deploy_input(configs, capsys, args, expected):
    ic, _ = configs
    code = run(["deploy", *[a.replace("{ic}", str(ic)) for a in args]])
    captured = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT, captured.err
    [line] = errors(captured)
    assert expected in line


def test_malformed_deployment_config(configs, capsys, workdir):
    ic, _ = configs
    (workdir / "dc.json").write_text('{"computeType": "AKS"')
    code = run(["deploy", "-n", "mnist", "-m", "m:1", "--ic", str(ic), "--dc", "dc.json", "--ct", "dev", "--dry-run"])
    captured = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT
    assert errors(captured) == ["error: deployment config dc.json is not valid JSON: Expecting ',' delimiter at line 1, column 22"]


def test_unknown_option_is_a_usage_error(capsys):
    assert run(["service", "list", "--bogus"]) == ExitCode.BAD_INPUT
    assert "No such option" in capsys.readouterr().err


def test_unreachable_cluster(dead_kubeconfig, capsys):
    started = time.monotonic()
    code = run(["service", "list", "--kubeconfig", str(dead_kubeconfig)])
    captured = capsys.readouterr()
    assert code == ExitCode.CLUSTER
    [line] = errors(captured)
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:1 (Connection refused)" in line
    assert "context 'dead'" in line
    assert time.monotonic() - started < 10


def test_deploy_to_unreachable_cluster_checks_files_first(configs, dead_kubeconfig, capsys):
    ic, dc = configs
    code = run(["deploy", "-n", "mnist", "-m", "m:1", "--ic", str(ic), "--dc", str(dc), "--kubeconfig", str(dead_kubeconfig)])
    assert code == ExitCode.CLUSTER
    assert "cannot reach" in errors(capsys.readouterr())[0]


def test_unknown_context(dead_kubeconfig, capsys):
    code = run(["model", "list", "--kubeconfig", str(dead_kubeconfig), "--context", "prod"])
    captured = capsys.readouterr()
    assert code == ExitCode.CLUSTER
    assert errors(captured) == ["error: no context 'prod' in the kubeconfig; contexts there: dead"]


def test_missing_kubeconfig(tmp_path, capsys):
    code = run(["model", "list", "--kubeconfig", str(tmp_path / "none")])
    assert code == ExitCode.CLUSTER
    assert "no usable Kubernetes configuration" in errors(capsys.readouterr())[0]


def test_register_missing_path_fails_before_the_cluster(dead_kubeconfig, capsys, tmp_path):
    code = run(["model", "register", "-n", "digits", "-p", str(tmp_path / "nope.pkl"), "--kubeconfig", str(dead_kubeconfig)])
    assert code == ExitCode.BAD_INPUT
    assert "nope.pkl does not exist" in errors(capsys.readouterr())[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model", "register", "-n", "digits:3", "-p", "x"], "give the name only"),
        (["model", "register", "-n", "bad name", "-p", "x"], "a model is NAME or NAME:VERSION"),
        (["model", "register", "-n", "digits", "-p", "https://example.org/m.pkl", "--tag", "novalue"], "--tag 'novalue': write KEY=VALUE"),
        (["model", "register", "-n", "digits", "-p", "ftp://example.org/m.pkl"], "does not exist"),
        (["model", "register", "-n", "digits", "-p", "https://example.org/m.pkl", "--sha256", "abc"], "spec.source.sha256"),
        (["model", "delete", "digits"], "name the version to delete"),
        (["service", "regen-key", "svc", "tertiary"], "say primary or secondary"),
        (["service", "run", "svc", "-d", "{not json"], "-d is not valid JSON"),
        (["service", "run", "svc"], "give the request body"),
        (["service", "update", "svc"], "say what to change"),
        (["compute", "create", "-n", "pool", "--toleration", "=x"], "write KEY[=VALUE][:EFFECT]"),
        (["compute", "create", "-n", "Pool"], "must be a DNS label"),
    ],
)
def test_bad_input_before_any_request(dead_kubeconfig, capsys, args, expected, workdir):
    code = run([*args, "--kubeconfig", str(dead_kubeconfig)])
    captured = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT, captured.err
    [line] = errors(captured)
    assert expected in line
