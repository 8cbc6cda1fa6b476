"""Which Model an InferenceService serves."""

from bereit.api import InferenceService
from bereit.controllers.resolution import first_registered, resolve
from tests.unit.specs import inference_service_body, model_body


def model(name, version, ready=True, created="2026-01-01T00:00:00Z", deleting=False):
    body = model_body(name, version=version)
    body["metadata"].update({"creationTimestamp": created, "uid": name, "generation": 1})
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    body["status"] = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return body


def service(*references):
    return InferenceService.model_validate(inference_service_body(models=list(references)))


def test_latest_ready_version_unless_pinned():
    models = {"digits": [model("d1", 1), model("d3", 3), model("d4", 4, ready=False)]}
    latest = resolve(service({"name": "digits"}), models, set())
    assert [m.metadata.name for m in latest.models] == ["d3"] and latest.verdict.status == "True"
    pinned = resolve(service({"name": "digits", "version": 1}), models, set())
    assert [m.metadata.name for m in pinned.models] == ["d1"]


def test_missing_and_not_ready_versions_are_named():
    models = {"digits": [model("d1", 1), model("d2", 2, ready=False)]}
    missing = resolve(service({"name": "digits", "version": 7}), models, set())
    assert missing.verdict.reason == "ModelNotFound"
    assert "Model 'digits' version 7 not found (Ready versions: 1)" in missing.verdict.message
    assert resolve(service({"name": "digits", "version": 2}), models, set()).verdict.reason == "ModelNotReady"
    assert resolve(service({"name": "other"}), models, set()).verdict.reason == "ModelNotFound"


def test_a_model_being_deleted_is_kept_by_its_users_but_never_newly_chosen():
    models = {"digits": [model("d1", 1), model("d2", 2, deleting=True)]}
    assert [m.metadata.name for m in resolve(service({"name": "digits"}), models, set()).models] == ["d1"]
    assert [m.metadata.name for m in resolve(service({"name": "digits"}), models, {"d2"}).models] == ["d2"]


def test_the_ready_model_keeps_its_version_even_against_an_earlier_name():
    owner = model("z-first", 1, ready=True, created="2026-01-01T00:00:05Z")
    newcomer = model("a-later", 1, ready=False, created="2026-01-01T00:00:05Z")
    assert first_registered([newcomer, owner], 1)["metadata"]["name"] == "z-first"
    both_new = [model("b", 1, ready=False), model("a", 1, ready=False)]
    assert first_registered(both_new, 1)["metadata"]["name"] == "a"
