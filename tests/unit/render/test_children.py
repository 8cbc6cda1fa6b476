"""What every child has in common, and that each passes the Kubernetes schema."""

import kubernetes_validate
import pytest
from bereit.constants import LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF
from bereit.render import render_children, render_keys_secret

from tests.unit.render.conftest import resolve
from tests.unit.specs import inference_service_body, model_body

# The Kubernetes version the local cluster runs (e2e/cluster/versions.env).
KUBERNETES_VERSION = "1.35.0"

VARIANTS = {
    "defaults": lambda: resolve(),
    "fixed-replicas": lambda: resolve(inference_service_body(replicas=3)),
    "one-replica": lambda: resolve(inference_service_body(replicas=1)),
    "token-auth-gpu-packages": lambda: resolve(
        inference_service_body(
            auth={"tokenAuth": True},
            resources={"cpu": "2", "memory": "4Gi", "gpu": 1},
            inference={
                "entryScript": "src/score.py",
                "code": {"configMap": {"name": "digits-code-v2"}},
                "environment": {
                    "image": "registry.example/ml/custom:1",
                    "imagePullSecrets": [{"name": "regcred"}],
                    "pythonPackages": ["scikit-learn==1.5.2"],
                    "env": [{"name": "MODE", "value": "fast"}],
                },
            },
        )
    ),
    "no-auth-telemetry-collection": lambda: resolve(
        inference_service_body(auth={"keyAuth": False}, telemetry={"enabled": True}, dataCollection={"enabled": True})
    ),
    "https-and-pvc-models": lambda: resolve(
        inference_service_body(models=[{"name": "a"}, {"name": "b", "version": 2}]),
        models=[
            model_body("a-1", modelName="a", source={"uri": "https://models.example/a.tgz", "sha256": "a" * 64, "unpack": True, "secretRef": {"name": "dl"}}),
            model_body("b-2", modelName="b", version=2, source={"uri": "pvc://model-store/b/2"}),
        ],
    ),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_children_pass_the_kubernetes_openapi_schema(variant):
    resolved = VARIANTS[variant]()
    for child in [*render_children(resolved), render_keys_secret(resolved, "p" * 32, "s" * 32)]:
        kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_every_child_is_owned_by_the_service_and_labelled(variant):
    resolved = VARIANTS[variant]()
    for child in [*render_children(resolved), render_keys_secret(resolved, "p", "s")]:
        metadata = child["metadata"]
        assert metadata["namespace"] == "ml"
        (owner,) = metadata["ownerReferences"]
        assert owner["kind"] == "InferenceService" and owner["controller"] is True
        assert owner["uid"] == resolved.service.metadata.uid
        assert metadata["labels"][LABEL_NAME] == "bereit-inference"
        assert metadata["labels"][LABEL_PART_OF] == "bereit"
        assert metadata["labels"][LABEL_MANAGED_BY] == "bereit-operator"


def test_rendering_is_deterministic():
    assert render_children(resolve()) == render_children(resolve())


def test_rendering_without_a_uid_is_refused():
    body = inference_service_body()
    body["metadata"]["uid"] = ""
    with pytest.raises(ValueError, match="uid"):
        render_children(resolve(body))


def test_children_by_kind_follow_the_scaling_mode():
    kinds = lambda resolved: [child["kind"] for child in render_children(resolved)]  # noqa: E731
    assert kinds(resolve()) == [
        "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"
    ]
    assert kinds(VARIANTS["one-replica"]()) == ["ConfigMap", "Service", "Deployment", "NetworkPolicy"]
    assert "ConfigMap" not in kinds(VARIANTS["token-auth-gpu-packages"]())
