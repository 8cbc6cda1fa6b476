"""InferenceService: children, keys, capacity, models, health, convergence — against a real API server."""

from __future__ import annotations

import base64

import pytest

from bereit.constants import (
    FIELD_MANAGER,
    LABEL_SERVICE,
    REGENERATE_PRIMARY_KEY_ANNOTATION,
    REGENERATE_SECONDARY_KEY_ANNOTATION,
)
from e2e.cluster.operator_harness import model, now, ready_target, service, target, wait_for


def _keys(cluster, name: str) -> tuple[str, str]:
    secret = cluster.core.read_namespaced_secret(f"{name}-keys", cluster.namespace)
    return tuple(base64.b64decode(secret.data[k]).decode() for k in ("primaryKey", "secondaryKey"))


def _deploy(cluster, nodes, name: str = "iris", cpu: str = "4", **spec) -> dict:
    ready_target(cluster, nodes, cpu=cpu)
    cluster.apply(model("iris-1", "iris", 1))
    cluster.apply(service(name, **spec))
    cluster.wait_condition("InferenceService", name, "ChildrenApplied", "True")
    return cluster.status("InferenceService", name)


def test_service_gets_owned_children_status_and_two_keys(cluster, nodes, operator):
    status = _deploy(cluster, nodes, autoscale={"enabled": True, "minReplicas": 2, "maxReplicas": 4})
    svc = cluster.get("InferenceService", "iris")
    children = cluster.children()
    for expected in ("Deployment/iris", "Service/iris", "Secret/iris-keys", "ConfigMap/iris-code",
                     "HorizontalPodAutoscaler/iris", "PodDisruptionBudget/iris", "NetworkPolicy/iris"):
        assert expected in children, sorted(children)
        owners = children[expected]["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [("InferenceService", svc["metadata"]["uid"], True)]
        assert children[expected]["metadata"]["labels"][LABEL_SERVICE] == "iris"
    assert status["scoringUri"] == f"http://iris.{cluster.namespace}.svc.cluster.local/score"
    assert status["swaggerUri"].endswith("/swagger.json")
    assert status["keysSecretName"] == "iris-keys"
    assert status["models"] == [{"name": "iris", "version": 1, "model": "iris-1"}]
    assert status["modelVersions"] == "iris:1"
    assert status["state"] == "Transitioning"
    assert status["observedGeneration"] == svc["metadata"]["generation"]
    for condition in status["conditions"]:
        assert condition["observedGeneration"] == svc["metadata"]["generation"], condition
    primary, secondary = _keys(cluster, "iris")
    assert len(primary) >= 32 and len(secondary) >= 32 and primary != secondary
    deployed = cluster.wait_event("iris", "Deployed")
    assert deployed["type"] == "Normal" and "created Secret iris-keys" in deployed["message"]
    assert primary not in operator.log_text() and secondary not in operator.log_text()


def test_capacity_is_refused_then_accepted_when_a_node_is_added(cluster, nodes, operator):
    ready_target(cluster, nodes, cpu="2")
    cluster.apply(model("iris-1", "iris", 1))
    cluster.apply(service("small", cpu="1"))
    cluster.wait_condition("InferenceService", "small", "CapacityReserved", "True")
    cluster.apply(service("big", cpu="1", replicas=2))
    refused = cluster.wait_condition("InferenceService", "big", "CapacityReserved", "False", "InsufficientCapacity")
    assert "needs 2 vCPUs (2 replicas × 1)" in refused["message"]
    assert "has 1 of 2 vCPUs left" in refused["message"], refused["message"]
    assert cluster.wait_state("big", "Failed")["message"] == refused["message"]
    assert "Deployment/big" not in cluster.children()
    cluster.wait_event("big", "InsufficientCapacity")

    nodes.add("b", "2")
    cluster.wait_condition("InferenceService", "big", "CapacityReserved", "True")
    wait_for(lambda: "Deployment/big" in cluster.children(), what="Deployment big")
    wait_for(lambda: cluster.status("ComputeTarget", "dev").get("requestedVcpus") == "3", what="requestedVcpus 3")


def test_deleting_a_service_frees_capacity_for_a_refused_one(cluster, nodes, operator):
    ready_target(cluster, nodes, cpu="2")
    cluster.apply(model("iris-1", "iris", 1))
    cluster.apply(service("first", cpu="2"))
    cluster.wait_condition("InferenceService", "first", "CapacityReserved", "True")
    cluster.apply(service("second", cpu="2"))
    cluster.wait_condition("InferenceService", "second", "CapacityReserved", "False", "InsufficientCapacity")
    cluster.delete("InferenceService", "first")
    cluster.wait_condition("InferenceService", "second", "CapacityReserved", "True")


def test_missing_model_is_reported_and_rechecked_when_it_appears(cluster, nodes, operator):
    ready_target(cluster, nodes)
    cluster.apply(service("iris", models=[{"name": "iris", "version": 2}]))
    missing = cluster.wait_condition("InferenceService", "iris", "ModelsResolved", "False", "ModelNotFound")
    assert "Model 'iris' version 2 not found" in missing["message"]
    assert cluster.wait_state("iris", "Failed")["message"].startswith("Model 'iris' version 2 not found")
    assert "Deployment/iris" not in cluster.children()

    cluster.apply(model("iris-2", "iris", 2))
    cluster.wait_condition("InferenceService", "iris", "ModelsResolved", "True")
    wait_for(lambda: "Deployment/iris" in cluster.children(), what="Deployment iris")
    assert cluster.status("InferenceService", "iris")["modelVersions"] == "iris:2"


def test_latest_version_is_served_when_none_is_pinned(cluster, nodes, operator):
    ready_target(cluster, nodes)
    cluster.apply(model("iris-1", "iris", 1))
    cluster.apply(model("iris-3", "iris", 3))
    cluster.apply(service("iris"))
    wait_for(lambda: cluster.status("InferenceService", "iris").get("modelVersions") == "iris:3", what="iris:3")


def test_update_to_a_new_model_version_rolls_pods_but_keeps_service_and_secret_byte_identical(cluster, nodes, operator):
    _deploy(cluster, nodes, models=[{"name": "iris", "version": 1}])
    cluster.apply(model("iris-2", "iris", 2))
    before = cluster.children()
    template_before = before["Deployment/iris"]["spec"]["template"]

    cluster.apply(service("iris", models=[{"name": "iris", "version": 2}]))
    wait_for(lambda: cluster.status("InferenceService", "iris").get("modelVersions") == "iris:2", what="iris:2")
    after = cluster.children()
    assert after["Service/iris"] == before["Service/iris"]
    assert after["Secret/iris-keys"] == before["Secret/iris-keys"]
    assert after["Deployment/iris"]["spec"]["template"] != template_before
    wait_for(lambda: len([k for k in cluster.children() if k.startswith("ReplicaSet/iris-")]) == 2, what="a second ReplicaSet")
    assert cluster.status("InferenceService", "iris")["scoringUri"].endswith("/score")


def test_applying_the_same_resource_twice_makes_zero_writes(cluster, nodes, operator):
    _deploy(cluster, nodes)
    cluster.wait_pods("iris")
    assert cluster.make_pods_ready("iris") == 1
    cluster.wait_state("iris", "Healthy")
    versions = cluster.wait_quiet()  # the controller-manager finishes its own status updates
    probes = operator.health(fresh=True)  # one read: each fresh one waits out kopf's 10 s cache
    writes, passes = probes["apiWrites"], probes["reconciles"]["InferenceService"]["passes"]

    cluster.apply(service("iris"))
    cluster.apply(model("iris-1", "iris", 1))
    # An unchanged apply is no event at all; a pod's (the kubelet's next status) makes the
    # operator go over everything again, which must still write nothing.
    assert cluster.make_pods_ready("iris") == 1
    operator.wait_pass("InferenceService", passes)
    assert cluster.wait_quiet() == versions
    assert operator.writes() == writes


def test_a_child_edited_or_deleted_by_hand_is_restored(cluster, nodes, operator):
    _deploy(cluster, nodes)
    original = cluster.children()
    cluster.core.delete_namespaced_service("iris", cluster.namespace)
    wait_for(lambda: "Service/iris" in cluster.children() and cluster.children()["Service/iris"]["metadata"]["uid"] != original["Service/iris"]["metadata"]["uid"], what="the Service back")

    image = original["Deployment/iris"]["spec"]["template"]["spec"]["containers"][0]["image"]
    cluster.apps.patch_namespaced_deployment(
        "iris", cluster.namespace,
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:latest"}],
    )
    wait_for(lambda: cluster.apps.read_namespaced_deployment("iris", cluster.namespace).spec.template.spec.containers[0].image == image, what="the image restored")
    cluster.apps.patch_namespaced_deployment("iris", cluster.namespace, {"spec": {"replicas": 5}})
    wait_for(lambda: cluster.apps.read_namespaced_deployment("iris", cluster.namespace).spec.replicas == 1, what="replicas restored")
    cluster.wait_event("iris", "ChildRestored")


def test_regenerating_one_key_leaves_the_other_and_is_not_repeated(cluster, nodes, operator):
    _deploy(cluster, nodes)
    primary, secondary = _keys(cluster, "iris")
    cluster.patch("InferenceService", "iris", {"metadata": {"annotations": {REGENERATE_PRIMARY_KEY_ANNOTATION: "1"}}})
    wait_for(lambda: _keys(cluster, "iris")[0] != primary, what="a new primary key")
    new_primary, same_secondary = _keys(cluster, "iris")
    assert same_secondary == secondary
    cluster.wait_event("iris", "KeyRegenerated")

    # A GitOps tool keeps re-applying the annotation: nothing happens again.
    rv = cluster.core.read_namespaced_secret("iris-keys", cluster.namespace).metadata.resource_version
    passes = operator.passes("InferenceService")
    cluster.patch("InferenceService", "iris", {"metadata": {"labels": {"touched": "yes"}}})
    operator.wait_pass("InferenceService", passes)
    cluster.wait_quiet()
    assert _keys(cluster, "iris") == (new_primary, secondary)
    assert cluster.core.read_namespaced_secret("iris-keys", cluster.namespace).metadata.resource_version == rv

    cluster.patch("InferenceService", "iris", {"metadata": {"annotations": {REGENERATE_SECONDARY_KEY_ANNOTATION: "a"}}})
    wait_for(lambda: _keys(cluster, "iris")[1] != secondary, what="a new secondary key")
    assert _keys(cluster, "iris")[0] == new_primary
    log = operator.log_text()
    for key in (primary, secondary, new_primary, *_keys(cluster, "iris")):
        assert key not in log


def test_healthy_only_when_the_current_generation_is_rolled_out_and_ready(cluster, nodes, operator):
    _deploy(cluster, nodes)
    assert cluster.status("InferenceService", "iris")["state"] == "Transitioning"
    cluster.wait_pods("iris")
    assert cluster.make_pods_ready("iris") == 1
    status = cluster.wait_state("iris", "Healthy")
    assert status["readyReplicas"] == 1
    ready = cluster.condition("InferenceService", "iris", "Ready")
    assert ready["status"] == "True"
    cluster.wait_event("iris", "Healthy")

    cluster.apply(service("iris", scoring={"timeoutMs": 1000}))
    cluster.wait_state("iris", "Transitioning")


def test_unhealthy_with_the_termination_message_and_never_a_key(cluster, nodes, operator):
    _deploy(cluster, nodes)
    primary, _ = _keys(cluster, "iris")
    pod = cluster.wait_pods("iris")[0]
    init = pod.spec.init_containers[0].name
    message = f"sha256 mismatch for https://models.example/iris.pkl (sent Authorization: Bearer {primary})"
    cluster.core.patch_namespaced_pod_status(pod.metadata.name, cluster.namespace, {"status": {
        "phase": "Pending",
        "initContainerStatuses": [{
            "name": init, "ready": False, "restartCount": 3, "image": "x", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}},
        }],
    }})
    status = cluster.wait_state("iris", "Unhealthy")
    available = cluster.condition("InferenceService", "iris", "Available")
    assert available["reason"] == "ModelDownloadFailed"
    assert "sha256 mismatch" in status["message"] and init in status["message"]
    assert primary not in status["message"] and primary not in available["message"]
    event = cluster.wait_event("iris", "ModelDownloadFailed")
    assert primary not in event["message"]
    assert primary not in operator.log_text()


def test_a_replica_that_crashed_is_unhealthy_until_it_is_ready_again(cluster, nodes, operator):
    _deploy(cluster, nodes)
    pod = cluster.wait_pods("iris")[0]
    killed = {"exitCode": 137, "reason": "Error", "message": "init() finished", "startedAt": now(), "finishedAt": now()}
    cluster.core.patch_namespaced_pod_status(pod.metadata.name, cluster.namespace, {"status": {
        "phase": "Running",
        "containerStatuses": [{
            "name": c.name, "ready": False, "restartCount": 1, "image": "x", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "lastState": {"terminated": killed},
        } for c in pod.spec.containers],
    }})
    cluster.wait_state("iris", "Unhealthy")
    # Restarted and ready again (as after its node restarted): the old crash is history.
    cluster.make_pods_ready("iris", restarted_after=killed)
    cluster.wait_state("iris", "Healthy")
    assert cluster.condition("InferenceService", "iris", "Available")["reason"] == "RolledOut"


def test_switching_autoscaling_off_removes_the_autoscaler(cluster, nodes, operator):
    _deploy(cluster, nodes, autoscale={"enabled": True, "minReplicas": 1, "maxReplicas": 3})
    assert "HorizontalPodAutoscaler/iris" in cluster.children()
    cluster.apply(service("iris", replicas=1))
    wait_for(lambda: "HorizontalPodAutoscaler/iris" not in cluster.children(), what="the HPA removed")


def test_children_are_applied_with_the_operators_field_manager(cluster, nodes, operator):
    _deploy(cluster, nodes)
    deployment = cluster.apps.read_namespaced_deployment("iris", cluster.namespace)
    managers = {(m.manager, m.operation) for m in deployment.metadata.managed_fields}
    assert (FIELD_MANAGER, "Apply") in managers


@pytest.mark.parametrize("missing", ["target", "code"])
def test_a_missing_target_or_code_config_map_is_a_clear_condition(cluster, nodes, operator, missing):
    ready_target(cluster, nodes)
    cluster.apply(model("iris-1", "iris", 1))
    if missing == "target":
        cluster.apply(service("iris", target_name="nowhere"))
        found = cluster.wait_condition("InferenceService", "iris", "ComputeTargetReady", "False", "ComputeTargetNotFound")
        assert "spec.computeTarget: ComputeTarget 'nowhere' not found" in found["message"]
        cluster.apply(target("nowhere", nodes.pool))
        cluster.wait_condition("InferenceService", "iris", "ComputeTargetReady", "True")
    else:
        spec = service("iris")
        spec["spec"]["inference"]["code"] = {"configMap": {"name": "my-code"}}
        cluster.apply(spec)
        found = cluster.wait_condition("InferenceService", "iris", "CodeAvailable", "False", "CodeConfigMapNotFound")
        assert "ConfigMap 'my-code' not found" in found["message"]
        cluster.core.create_namespaced_config_map(cluster.namespace, {"metadata": {"name": "my-code"}, "data": {"score.py": "x"}})
        cluster.wait_condition("InferenceService", "iris", "ChildrenApplied", "True")
        first = cluster.apps.read_namespaced_deployment("iris", cluster.namespace).spec.template.metadata.annotations
        cluster.core.patch_namespaced_config_map("my-code", cluster.namespace, {"data": {"score.py": "y"}})
        wait_for(
            lambda: cluster.apps.read_namespaced_deployment("iris", cluster.namespace).spec.template.metadata.annotations != first,
            what="pods rolled for the new code",
        )
