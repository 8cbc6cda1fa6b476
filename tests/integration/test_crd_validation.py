"""The generated CRDs, installed in a real API server, refuse what the schema and CEL can decide."""

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bereit.constants import GROUP, VERSION
from tests.unit.api.bad_specs import BAD_SPECS
from tests.unit.specs import (
    compute_target_body,
    inference_service_body,
    model_body,
    with_change,
)

PLURALS = {"Model": "models", "ComputeTarget": "computetargets", "InferenceService": "inferenceservices"}


def _create(kube_api, namespace: str, body: dict) -> dict:
    return client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body
    )


@pytest.mark.parametrize("body", [model_body(), compute_target_body(), inference_service_body()], ids=lambda b: b["kind"])
def test_valid_examples_are_stored_with_seed_defaults(kube_api, namespace, body):
    stored = _create(kube_api, namespace, body)
    if body["kind"] == "InferenceService":
        spec = stored["spec"]
        assert spec["scoring"] == {
            "timeoutMs": 60000,
            "maxConcurrentRequestsPerReplica": 1,
            "maxQueueLength": 10,
            "maxQueueWaitMs": 500,
            "maxRequestBytes": 10485760,
        }
        assert spec["livenessProbe"]["initialDelaySeconds"] == 310


@pytest.mark.parametrize("bad", [bad for bad in BAD_SPECS if bad.server], ids=lambda bad: bad.id)
def test_api_server_refuses_bad_spec_naming_the_field(kube_api, namespace, bad):
    with pytest.raises(ApiException) as error:
        _create(kube_api, namespace, bad.body)
    assert error.value.status == 422, error.value.body
    assert bad.field in error.value.body, error.value.body


def test_model_spec_cannot_change_after_creation(kube_api, namespace):
    api = client.CustomObjectsApi(kube_api)
    stored = _create(kube_api, namespace, model_body())
    changed = with_change(stored, "spec.source", {"uri": "oci://bereit-models/digits:other"})
    with pytest.raises(ApiException) as error:
        api.replace_namespaced_custom_object(GROUP, VERSION, namespace, "models", "digits-1", changed)
    assert error.value.status == 422 and "immutable" in error.value.body


def test_scale_subresource_sets_fixed_replicas(kube_api, namespace):
    api = client.CustomObjectsApi(kube_api)
    _create(kube_api, namespace, inference_service_body())
    api.patch_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, "inferenceservices", "digits", {"spec": {"replicas": 3}}
    )
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "inferenceservices", "digits")
    assert stored["spec"]["replicas"] == 3
