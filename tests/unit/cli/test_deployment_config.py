"""deploymentconfig.json → InferenceService spec: every seed key, unknown keys, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bereit.cli.azureml.config import translate_deployment_config
from bereit.cli.errors import BadInput

from .conftest import write_json

# The seeds' AKS deployment configuration with every key they name.
FULL = {
    "computeType": "AKS",
    "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.5, "gpu": 1},
    "autoScaler": {
        "autoscaleEnabled": True,
        "minReplicas": 2,
        "maxReplicas": 6,
        "refreshPeriodInSeconds": 15,
        "targetUtilization": 60,
    },
    "authEnabled": True,
    "tokenAuthEnabled": False,
    "scoringTimeoutMs": 5000,
    "maxConcurrentRequestsPerContainer": 4,
    "maxQueueWaitMs": 750,
    "livenessProbeRequirements": {
        "periodSeconds": 7,
        "initialDelaySeconds": 20,
        "timeoutSeconds": 3,
        "successThreshold": 1,
        "failureThreshold": 5,
    },
    "appInsightsEnabled": True,
    "collectModelData": True,
    "keys": {"primaryKey": "p" * 32, "secondaryKey": "s" * 32},
    "tags": {"data": "MNIST", "method": "sklearn"},
    "properties": {"accuracy": 0.92},
    "description": "Predict MNIST with sklearn",
    "computeTargetName": "myaks",
    "namespace": "ml",
}


def test_every_seed_key_lands_in_the_spec(tmp_path: Path):
    t = translate_deployment_config(write_json(tmp_path / "dc.json", FULL))
    assert t.spec == {
        "resources": {"cpu": "0.5", "memory": "1.5Gi", "gpu": 1},
        "autoscale": {"enabled": True, "minReplicas": 2, "maxReplicas": 6, "refreshSeconds": 15, "targetUtilization": 60},
        "auth": {"keyAuth": True, "tokenAuth": False},
        "scoring": {"timeoutMs": 5000, "maxConcurrentRequestsPerReplica": 4, "maxQueueWaitMs": 750},
        "livenessProbe": {
            "periodSeconds": 7,
            "initialDelaySeconds": 20,
            "timeoutSeconds": 3,
            "successThreshold": 1,
            "failureThreshold": 5,
        },
        "telemetry": {"enabled": True},
        "dataCollection": {"enabled": True},
        "tags": {"data": "MNIST", "method": "sklearn"},
        "properties": {"accuracy": "0.92"},
        "description": "Predict MNIST with sklearn",
    }
    assert t.keys == {"primaryKey": "p" * 32, "secondaryKey": "s" * 32}
    assert t.compute_target == "myaks"
    assert t.namespace == "ml"
    assert t.warnings == []


def test_origins_name_the_azure_key(tmp_path: Path):
    t = translate_deployment_config(write_json(tmp_path / "dc.json", FULL))
    assert t.origins["resources.memory"] == f"containerResourceRequirements.memoryInGB in {tmp_path / 'dc.json'}"
    assert t.origins["autoscale.refreshSeconds"].startswith("autoScaler.refreshPeriodInSeconds in ")
    assert t.origins["scoring.maxConcurrentRequestsPerReplica"].startswith("maxConcurrentRequestsPerContainer in ")


@pytest.mark.parametrize(
    ("config", "path", "value"),
    [
        ({"numReplicas": 3}, "replicas", 3),
        ({"gpuCores": 2}, "resources", {"gpu": 2}),
        ({"containerResourceRequirements": {"cpu": 1, "memoryInGB": 0.5}}, "resources", {"cpu": "1", "memory": "0.5Gi"}),
        ({"containerResourceRequirements": {"cpu": "2.50"}}, "resources", {"cpu": "2.5"}),
        ({"authEnabled": False}, "auth", {"keyAuth": False}),
        ({"tokenAuthEnabled": True}, "auth", {"tokenAuth": True}),
        ({"authEnabled": "false"}, "auth", {"keyAuth": False}),
        ({"dataCollection": {"storageEnabled": True}}, "dataCollection", {"enabled": True}),
        ({"autoScaler": {"autoscaleEnabled": False}}, "autoscale", {"enabled": False}),
    ],
)
def test_single_keys(tmp_path: Path, config, path, value):
    t = translate_deployment_config(write_json(tmp_path / "dc.json", config))
    assert t.spec[path] == value


def test_yaml_deployment_config(tmp_path: Path):
    path = tmp_path / "deploymentconfig.yml"
    path.write_text("computeType: ACI\ncontainerResourceRequirements:\n  cpu: 1\n  memoryInGB: 1\n")
    t = translate_deployment_config(path)
    assert t.spec == {"resources": {"cpu": "1", "memory": "1Gi"}}


def test_local_compute_type_is_named(tmp_path: Path):
    t = translate_deployment_config(write_json(tmp_path / "dc.json", {"computeType": "LOCAL", "port": 8890}))
    assert any("computeType LOCAL" in w and "bereit serve" in w for w in t.warnings)
    assert any("port ignored" in w for w in t.warnings)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"sslEnabled": True, "sslCertificate": "c", "sslKey": "k"}, ["sslEnabled", "sslCertificate", "sslKey"]),
        ({"location": "westeurope", "dnsNameLabel": "x"}, ["location", "dnsNameLabel"]),
        ({"containerResourceRequirements": {"cpu": 1, "cpuLimit": 2, "memoryInGBLimit": 4}}, ["containerResourceRequirements.cpuLimit", "containerResourceRequirements.memoryInGBLimit"]),
        ({"autoScaler": {"minReplicas": 1, "scaleDownDelay": 5}}, ["autoScaler.scaleDownDelay"]),
        ({"dataCollection": {"eventHubEnabled": True}}, ["dataCollection.eventHubEnabled"]),
        ({"trafficPercentile": 50, "isDefault": True}, ["trafficPercentile", "isDefault"]),
        ({"sclaeTimeoutMs": 1}, ["sclaeTimeoutMs"]),
    ],
)
def test_unsupported_keys_are_named_never_dropped(tmp_path: Path, config, named):
    t = translate_deployment_config(write_json(tmp_path / "dc.json", config))
    for key in named:
        assert any(f": {key} ignored:" in w for w in t.warnings), (key, t.warnings)


def test_typo_is_called_unknown(tmp_path: Path):
    t = translate_deployment_config(write_json(tmp_path / "dc.json", {"authEnabeld": True}))
    assert t.warnings == [f"{tmp_path / 'dc.json'}: authEnabeld ignored: not a setting bereit knows (check the spelling)"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"containerResourceRequirements": {"memoryInGB": "lots"}}, "containerResourceRequirements.memoryInGB must be a number"),
        ({"containerResourceRequirements": {"cpu": True}}, "containerResourceRequirements.cpu must be a number"),
        ({"containerResourceRequirements": "big"}, "containerResourceRequirements must be a mapping"),
        ({"numReplicas": 1.5}, "numReplicas must be a whole number"),
        ({"numReplicas": "three"}, "numReplicas must be a whole number"),
        ({"authEnabled": "maybe"}, "authEnabled must be true or false"),
        ({"autoScaler": [1, 2]}, "autoScaler must be a mapping"),
        ({"tags": ["a", "b"]}, "tags must be a mapping"),
        ({"tags": {"nested": {"a": 1}}}, "tags.nested must be a single value"),
        ({"keys": {"primaryKey": "short"}}, "keys.primaryKey must be at least 16 characters"),
        ({"livenessProbeRequirements": {"periodSeconds": "often"}}, "livenessProbeRequirements.periodSeconds must be a whole number"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, config, message):
    with pytest.raises(BadInput, match=message):
        translate_deployment_config(write_json(tmp_path / "dc.json", config))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("dc.json", '{"computeType": "AKS",}', r"is not valid JSON: .* at line 1, column 23"),
        ("dc.json", "", "is empty"),
        ("dc.json", "[1, 2]", "holds a list, not a mapping"),
        ("dc.yml", "computeType: [AKS", "is not valid YAML or JSON"),
        ("dc.yml", "just text", "holds a str, not a mapping"),
    ],
)
def test_malformed_files(tmp_path: Path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInput, match=message):
        translate_deployment_config(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(BadInput, match=r"deployment config .*nope.json does not exist"):
        translate_deployment_config(tmp_path / "nope.json")


def test_folder_instead_of_file(tmp_path: Path):
    with pytest.raises(BadInput, match="is a folder"):
        translate_deployment_config(tmp_path)


def test_json_with_tabs_is_read_as_json(tmp_path: Path):
    path = tmp_path / "dc.json"
    path.write_text('{\n\t"numReplicas": 2\n}\n')
    assert translate_deployment_config(path).spec == {"replicas": 2}
