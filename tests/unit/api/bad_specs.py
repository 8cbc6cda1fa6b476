"""Invalid resources, each with the field its error must name.

Shared by the unit test (pydantic models) and the integration test (the real API server, for the
cases marked `server`: those the CRD schema and its CEL rules can decide).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.unit.specs import (
    compute_target_body,
    inference_service_body,
    model_body,
    with_change,
)


@dataclass(frozen=True)
class BadSpec:
    id: str
    body: dict
    field: str  # text the error message must contain
    server: bool = True  # the API server refuses it too


_isvc = inference_service_body()
_model = model_body()
_target = compute_target_body()

BAD_SPECS = [
    # InferenceService
    BadSpec("zero-cpu", with_change(_isvc, "spec.resources", {"cpu": "0"}), "cpu"),
    BadSpec("negative-cpu", with_change(_isvc, "spec.resources", {"cpu": "-1"}), "cpu"),
    BadSpec("cpu-not-a-quantity", with_change(_isvc, "spec.resources", {"cpu": "two"}), "cpu"),
    BadSpec("memory-without-unit", with_change(_isvc, "spec.resources", {"memory": "512"}), "memory"),
    BadSpec("memory-tiny", with_change(_isvc, "spec.resources", {"memory": "1Ki"}), "memory", server=False),
    BadSpec("negative-gpu", with_change(_isvc, "spec.resources", {"gpu": -1}), "gpu"),
    BadSpec(
        "min-above-max",
        with_change(_isvc, "spec.autoscale", {"minReplicas": 5, "maxReplicas": 2}),
        "minReplicas",
    ),
    BadSpec(
        "autoscale-with-fixed-replicas",
        with_change(with_change(_isvc, "spec.replicas", 3), "spec.autoscale", {"enabled": True}),
        "replicas",
    ),
    BadSpec("negative-replicas", with_change(_isvc, "spec.replicas", -1), "replicas"),
    BadSpec("utilization-over-100", with_change(_isvc, "spec.autoscale", {"targetUtilization": 150}), "targetUtilization"),
    BadSpec("both-auth-modes", with_change(_isvc, "spec.auth", {"keyAuth": True, "tokenAuth": True}), "auth"),
    BadSpec("zero-timeout", with_change(_isvc, "spec.scoring", {"timeoutMs": 0}), "timeoutMs"),
    BadSpec(
        "zero-concurrency",
        with_change(_isvc, "spec.scoring", {"maxConcurrentRequestsPerReplica": 0}),
        "maxConcurrentRequestsPerReplica",
    ),
    BadSpec("negative-queue-wait", with_change(_isvc, "spec.scoring", {"maxQueueWaitMs": -5}), "maxQueueWaitMs"),
    BadSpec("liveness-success-2", with_change(_isvc, "spec.livenessProbe", {"successThreshold": 2}), "successThreshold"),
    BadSpec("liveness-period-0", with_change(_isvc, "spec.livenessProbe", {"periodSeconds": 0}), "periodSeconds"),
    BadSpec("sample-rate-0", with_change(_isvc, "spec.dataCollection", {"enabled": True, "sampleRate": 0}), "sampleRate"),
    BadSpec("missing-entry-script", with_change(_isvc, "spec.inference", {"code": {"inline": {"a.py": ""}}}), "entryScript"),
    BadSpec("entry-script-absolute", with_change(_isvc, "spec.inference.entryScript", "/etc/score.py"), "entryScript"),
    BadSpec("entry-script-escapes", with_change(_isvc, "spec.inference.entryScript", "../score.py"), "entryScript", server=False),
    BadSpec("entry-script-not-python", with_change(_isvc, "spec.inference.entryScript", "score.sh"), "entryScript"),
    BadSpec("entry-script-not-in-inline-code", with_change(_isvc, "spec.inference.entryScript", "other.py"), "entryScript", server=False),
    BadSpec(
        "two-code-sources",
        with_change(_isvc, "spec.inference.code", {"inline": {"score.py": ""}, "configMap": {"name": "c"}}),
        "code",
    ),
    BadSpec("no-code-source", with_change(_isvc, "spec.inference.code", {}), "code"),
    BadSpec(
        "duplicate-model-references",
        with_change(_isvc, "spec.models", [{"name": "digits", "version": 1}, {"name": "digits", "version": 2}]),
        "models",
    ),
    BadSpec("no-models", with_change(_isvc, "spec.models", []), "models"),
    BadSpec("model-version-0", with_change(_isvc, "spec.models", [{"name": "digits", "version": 0}]), "version"),
    BadSpec("target-not-a-dns-label", with_change(_isvc, "spec.computeTarget", "Dev_Cluster"), "computeTarget"),
    BadSpec("service-name-uppercase", with_change(_isvc, "metadata.name", "Digits"), "metadata.name"),
    BadSpec("service-name-too-long", with_change(_isvc, "metadata.name", "s" * 51), "metadata.name"),
    BadSpec("reserved-env", with_change(_isvc, "spec.inference.environment", {"env": [{"name": "AZUREML_MODEL_DIR", "value": "x"}]}), "env", server=False),
    BadSpec(
        "inline-path-escapes",
        with_change(_isvc, "spec.inference.code", {"inline": {"score.py": "", "../secrets.py": ""}}),
        "code.inline",
        server=False,
    ),
    BadSpec("unknown-field", with_change(_isvc, "spec.cpuCores", 1), "cpuCores", server=False),
    # Model
    BadSpec("version-0", with_change(_model, "spec.version", 0), "version"),
    BadSpec("version-negative", with_change(_model, "spec.version", -3), "version"),
    BadSpec("malformed-source-uri", with_change(_model, "spec.source", {"uri": "ftp://host/model.pkl"}), "uri"),
    BadSpec("http-not-https", with_change(_model, "spec.source", {"uri": "http://host/model.pkl"}), "uri"),
    BadSpec(
        "bad-sha256",
        with_change(_model, "spec.source", {"uri": "https://host/model.pkl", "sha256": "xyz"}),
        "sha256",
    ),
    BadSpec(
        "sha256-on-image",
        with_change(_model, "spec.source", {"uri": "oci://models/digits:1", "sha256": "a" * 64}),
        "sha256",
    ),
    BadSpec("model-name-with-space", with_change(_model, "spec.modelName", "my model"), "modelName"),
    BadSpec("model-without-source", {**_model, "spec": {"version": 1}}, "source"),
    BadSpec("model-object-name-not-dns", with_change(_model, "metadata.name", "Digits_1"), "metadata.name"),
    # ComputeTarget
    BadSpec("unknown-purpose", with_change(_target, "spec.purpose", "Production"), "purpose"),
    BadSpec("toleration-bad-operator", with_change(_target, "spec.tolerations", [{"key": "a", "operator": "In"}]), "operator"),
    BadSpec(
        "toleration-exists-with-value",
        with_change(_target, "spec.tolerations", [{"key": "a", "operator": "Exists", "value": "b"}]),
        "value",
    ),
    BadSpec("default-cpu-zero", with_change(_target, "spec.defaults", {"cpu": "0"}), "cpu", server=False),
    BadSpec("default-memory-no-unit", with_change(_target, "spec.defaults", {"memory": "100"}), "memory"),
    BadSpec("target-name-not-dns", with_change(_target, "metadata.name", "dev.cluster"), "metadata.name"),
]
