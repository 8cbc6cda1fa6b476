import pytest
from bereit.api import ComputeTarget, InferenceService, Model, describe_validation_error
from pydantic import ValidationError

from tests.unit.api.bad_specs import BAD_SPECS
from tests.unit.specs import compute_target_body, inference_service_body, model_body

KINDS = {"Model": Model, "ComputeTarget": ComputeTarget, "InferenceService": InferenceService}


def test_there_are_at_least_25_bad_specs_across_the_three_kinds():
    kinds = {bad.body["kind"] for bad in BAD_SPECS}
    assert len(BAD_SPECS) >= 25 and kinds == set(KINDS)


@pytest.mark.parametrize("bad", BAD_SPECS, ids=lambda bad: bad.id)
def test_bad_spec_is_refused_with_a_message_naming_the_field(bad):
    with pytest.raises(ValidationError) as error:
        KINDS[bad.body["kind"]].model_validate(bad.body)
    message = describe_validation_error(error.value)
    assert bad.field in message, message


@pytest.mark.parametrize("body", [model_body(), compute_target_body(), inference_service_body()], ids=lambda b: b["kind"])
def test_valid_examples_are_accepted(body):
    KINDS[body["kind"]].model_validate(body)


def test_seed_defaults_apply_to_a_minimal_service():
    spec = InferenceService.model_validate(inference_service_body()).spec
    assert spec.autoscaling and spec.effective_autoscale.min_replicas == 1
    assert spec.effective_autoscale.max_replicas == 10
    assert spec.effective_autoscale.target_utilization == 70
    assert spec.effective_autoscale.refresh_seconds == 1
    assert spec.auth.mode == "key"
    assert (spec.scoring.timeout_ms, spec.scoring.max_concurrent_requests_per_replica, spec.scoring.max_queue_wait_ms) == (
        60000,
        1,
        500,
    )
    assert spec.scoring.max_queue_length == 10
    probe = spec.liveness_probe
    assert (probe.period_seconds, probe.initial_delay_seconds, probe.timeout_seconds) == (10, 310, 2)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)
    assert not spec.data_collection.enabled and not spec.telemetry.enabled


def test_fixed_replicas_turn_autoscaling_off():
    spec = InferenceService.model_validate(inference_service_body(replicas=3)).spec
    assert not spec.autoscaling and spec.min_replicas == 3


def test_token_auth_alone_is_token_mode_and_key_auth_off_is_public():
    assert InferenceService.model_validate(inference_service_body(auth={"tokenAuth": True})).spec.auth.mode == "token"
    assert InferenceService.model_validate(inference_service_body(auth={"keyAuth": False})).spec.auth.mode == "none"


def test_model_name_defaults_to_the_object_name():
    body = model_body(name="sentiment")
    del body["spec"]["modelName"]
    assert Model.model_validate(body).model_name == "sentiment"
