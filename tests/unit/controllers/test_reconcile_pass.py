"""The InferenceService reconcile pass on hand-built inputs: verdicts, writes, status, events."""

import asyncio

from bereit.controllers.inference_service import reconcile
from tests.unit.controllers.world import NAMESPACE, operator_for, standard_world
from tests.unit.specs import model_body


def run_pass(world, op):
    world.sync()
    asyncio.run(reconcile(op, (NAMESPACE, "digits")))


def conditions_of(world) -> dict:
    status = world.get("InferenceService", "digits")["status"]
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_resolvable_service_gets_its_keys_and_children_and_waits_for_replicas():
    world = standard_world()
    op, api = operator_for(world)
    run_pass(world, op)
    written = {ref for verb, ref in api.writes if verb in ("apply", "create")}
    assert written == {
        "Secret/digits-keys", "ConfigMap/digits-code", "Service/digits", "Deployment/digits",
        "HorizontalPodAutoscaler/digits", "PodDisruptionBudget/digits", "NetworkPolicy/digits",
    }
    assert api.writes.index(("create", "Secret/digits-keys")) < api.writes.index(("apply", "Deployment/digits"))
    assert api.writes.index(("apply", "ConfigMap/digits-code")) < api.writes.index(("apply", "Deployment/digits"))
    status = world.get("InferenceService", "digits")["status"]
    assert status["state"] == "Transitioning"
    assert status["keysSecretName"] == "digits-keys"
    assert status["modelVersions"] == "digits:1"
    assert status["observedGeneration"] == 1
    found = conditions_of(world)
    for type_ in ("SpecValid", "ComputeTargetReady", "ModelsResolved", "CodeAvailable", "CapacityReserved", "ChildrenApplied"):
        assert found.get(type_, ("True",))[0] == "True", (type_, found)
    assert found["Ready"][0] == "False"
    assert [reason for _, reason, _ in api.events] == ["Deployed"]


def test_a_pass_over_unchanged_inputs_writes_nothing():
    world = standard_world()
    op, api = operator_for(world)
    run_pass(world, op)
    run_pass(world, op)  # the watch has brought the Deployment: its status is assessed
    before = len(api.writes)
    run_pass(world, op)
    assert api.writes[before:] == []


def test_a_child_changed_by_someone_else_is_restored_with_a_warning():
    world = standard_world()
    op, api = operator_for(world)
    run_pass(world, op)
    deployment = world.get("Deployment", "digits")
    deployment["metadata"]["managedFields"][0]["fieldsV1"] = {"f:spec": {"f:replicas": {}}}  # kubectl took a field
    run_pass(world, op)
    assert ("apply", "Deployment/digits") in api.writes[-2:]
    assert any(reason == "ChildRestored" for _, reason, _ in api.events)


def test_a_missing_model_fails_the_service_and_applies_nothing():
    world = standard_world(models=[{"name": "digits", "version": 7}])
    op, api = operator_for(world)
    run_pass(world, op)
    assert [w for w in api.writes if w[0] != "patch/status"] == []
    found = conditions_of(world)
    assert found["ModelsResolved"] == ("False", "ModelNotFound")
    assert found["ChildrenApplied"] == ("False", "Blocked")
    status = world.get("InferenceService", "digits")["status"]
    assert status["state"] == "Failed"
    assert "version 7 not found" in status["message"]


def test_a_service_that_does_not_fit_on_its_target_is_refused_capacity():
    world = standard_world(cpu="2", replicas=3, resources={"cpu": "1"})
    op, api = operator_for(world)
    run_pass(world, op)
    assert conditions_of(world)["CapacityReserved"] == ("False", "InsufficientCapacity")
    assert not any(ref.startswith("Deployment/") for _, ref in api.writes)


def test_a_newer_model_version_updates_the_children_and_keeps_the_keys():
    world = standard_world(models=[{"name": "digits"}])
    op, api = operator_for(world)
    run_pass(world, op)
    world.add({**model_body("digits-2", version=2), "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Registered"}]}})
    before = len(api.writes)
    run_pass(world, op)
    changed = {ref for verb, ref in api.writes[before:] if verb == "apply"}
    assert "Deployment/digits" in changed
    assert ("create", "Secret/digits-keys") not in api.writes[before:]
    assert world.get("InferenceService", "digits")["status"]["modelVersions"] == "digits:2"


def test_a_key_regeneration_request_replaces_only_that_key_once():
    world = standard_world()
    op, api = operator_for(world)
    run_pass(world, op)
    old = dict(world.get("Secret", "digits-keys")["data"])
    world.get("InferenceService", "digits")["metadata"]["annotations"] = {"bereit.dev/regenerate-primary-key": "1"}
    run_pass(world, op)
    new = world.get("Secret", "digits-keys")["data"]
    assert new["primaryKey"] != old["primaryKey"] and new["secondaryKey"] == old["secondaryKey"]
    before = len(api.writes)
    run_pass(world, op)
    assert ("patch", "Secret/digits-keys") not in api.writes[before:]


def test_a_refused_child_is_a_condition_not_a_crash():
    world = standard_world()
    op, api = operator_for(world)
    api.refuse.add("NetworkPolicy")
    run_pass(world, op)
    assert conditions_of(world)["ChildrenApplied"] == ("False", "ApplyRefused")


def test_a_deleted_service_is_forgotten_in_one_call():
    world = standard_world()
    op, api = operator_for(world)
    run_pass(world, op)
    assert op.applied.of(NAMESPACE, "digits") and op.keys.freshest(NAMESPACE, "digits")
    op.forget_service("InferenceService", NAMESPACE, "digits")
    assert op.applied.of(NAMESPACE, "digits") == {}
    assert op.keys.freshest(NAMESPACE, "digits") is None  # only the index (not synced here) would still know it
