"""Model (uniqueness, users, delete protection) and ComputeTarget (follows Nodes) against a real API server."""

from __future__ import annotations

import time

from bereit.constants import FINALIZER_MODEL_IN_USE
from e2e.cluster.operator_harness import model, ready_target, service, target, wait_for

# --- Model ----------------------------------------------------------------------------------


def test_a_duplicate_version_is_refused_naming_the_earlier_model(cluster, operator):
    cluster.apply(model("iris-v1", "iris", 1))
    cluster.wait_condition("Model", "iris-v1", "Ready", "True")
    cluster.apply(model("iris-again", "iris", 1))
    refused = cluster.wait_condition("Model", "iris-again", "Ready", "False", "DuplicateVersion")
    assert "already registered as Model 'iris-v1'" in refused["message"]
    assert "register version 2 instead" in refused["message"]
    assert cluster.status("Model", "iris-v1")["conditions"][0]["status"] == "True"
    cluster.wait_event("iris-again", "DuplicateVersion")

    # The earlier one goes: the later one now owns the version.
    cluster.delete("Model", "iris-v1")
    cluster.wait_condition("Model", "iris-again", "Ready", "True")


def test_a_model_in_use_cannot_be_deleted_until_its_service_is_gone(cluster, nodes, operator):
    ready_target(cluster, nodes)
    cluster.apply(model("iris-1", "iris", 1))
    cluster.apply(service("scorer", models=[{"name": "iris", "version": 1}]))
    wait_for(lambda: cluster.status("Model", "iris-1").get("usedBy") == ["scorer"], what="usedBy [scorer]")
    assert FINALIZER_MODEL_IN_USE in cluster.get("Model", "iris-1")["metadata"]["finalizers"]
    # usedBy comes from the service's spec; the service must also have resolved the version
    # before it is deleted (a Model being deleted is never newly chosen).
    wait_for(lambda: cluster.status("InferenceService", "scorer").get("modelVersions") == "iris:1", what="scorer on iris:1")

    cluster.delete("Model", "iris-1")
    blocked = cluster.wait_condition("Model", "iris-1", "InUse", "True", "DeletionBlocked")
    assert "scorer" in blocked["message"]
    assert "scorer" in cluster.wait_event("iris-1", "DeletionBlocked")["message"]
    time.sleep(2)
    assert cluster.get("Model", "iris-1") is not None
    # The service keeps serving the version being deleted.
    assert cluster.status("InferenceService", "scorer")["modelVersions"] == "iris:1"

    cluster.delete("InferenceService", "scorer")
    wait_for(lambda: cluster.get("Model", "iris-1") is None, timeout=20, what="the Model deleted")


def test_the_finalizer_is_released_as_soon_as_no_service_uses_the_model(cluster, nodes, operator):
    ready_target(cluster, nodes)
    cluster.apply(model("iris-1", "iris", 1))
    cluster.apply(model("iris-2", "iris", 2))
    cluster.apply(service("scorer", models=[{"name": "iris", "version": 1}]))
    wait_for(lambda: FINALIZER_MODEL_IN_USE in (cluster.get("Model", "iris-1")["metadata"].get("finalizers") or []), what="finalizer on iris-1")
    assert FINALIZER_MODEL_IN_USE not in (cluster.get("Model", "iris-2")["metadata"].get("finalizers") or [])

    cluster.apply(service("scorer", models=[{"name": "iris", "version": 2}]))
    wait_for(lambda: not cluster.get("Model", "iris-1")["metadata"].get("finalizers"), what="iris-1 released")
    wait_for(lambda: cluster.status("Model", "iris-2").get("usedBy") == ["scorer"], what="iris-2 used")
    # The finalizer goes first, the status follows in its own write.
    wait_for(lambda: cluster.status("Model", "iris-1").get("usedBy") == [], what="iris-1 usedBy []")
    wait_for(lambda: cluster.condition("Model", "iris-1", "InUse").get("status") == "False", what="iris-1 InUse False")
    cluster.delete("Model", "iris-1")
    wait_for(lambda: cluster.get("Model", "iris-1") is None, what="an unused Model deleted at once")


# --- ComputeTarget ----------------------------------------------------------------------------


def test_fastprod_readiness_follows_nodes_added_cordoned_notready_and_removed(cluster, nodes, operator):
    first = nodes.add("a", "8")
    cluster.apply(target("prod", nodes.pool, purpose="FastProd"))
    refused = cluster.wait_condition(
        "ComputeTarget", "prod", "Ready", "False", "InsufficientVCPUs", message="1 matching node has 8 vCPUs"
    )
    assert refused["message"].startswith("FastProd needs at least 12 vCPUs; 1 matching node has 8 vCPUs")
    second = nodes.add("b", "8")
    ready = cluster.wait_condition("ComputeTarget", "prod", "Ready", "True", message="2 matching nodes have 16 vCPUs")
    assert "2 matching nodes have 16 vCPUs" in ready["message"]
    status = cluster.status("ComputeTarget", "prod")
    assert (status["nodes"], status["vcpus"], status["memory"]) == (2, "16", "32Gi")

    nodes.cordon(second)
    cordoned = cluster.wait_condition("ComputeTarget", "prod", "Ready", "False")
    assert "(1 more NotReady or cordoned)" in cordoned["message"]
    nodes.cordon(second, False)
    cluster.wait_condition("ComputeTarget", "prod", "Ready", "True")

    nodes.set_status(first, "8", ready=False)
    cluster.wait_condition("ComputeTarget", "prod", "Ready", "False")
    nodes.set_status(first, "8", ready=True)
    cluster.wait_condition("ComputeTarget", "prod", "Ready", "True")

    nodes.delete(first)
    gone = cluster.wait_condition("ComputeTarget", "prod", "Ready", "False", message="1 matching node has 8 vCPUs")
    assert "1 matching node has 8 vCPUs" in gone["message"]
    cluster.wait_event("prod", "InsufficientVCPUs")


def test_nodes_that_are_not_selected_or_not_tolerated_do_not_count(cluster, nodes, operator):
    nodes.add("plain", "2")
    nodes.add("gpu", "4", labels={"accelerator": "gpu"}, taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
    nodes.add("soft", "1", taints=[{"key": "spot", "effect": "PreferNoSchedule"}])
    cluster.apply(target("dev", nodes.pool))
    wait_for(lambda: cluster.status("ComputeTarget", "dev").get("vcpus") == "3", what="3 vCPUs (tainted node left out)")

    tolerant = target("gpu", nodes.pool, tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    tolerant["spec"]["nodeSelector"]["accelerator"] = "gpu"
    cluster.apply(tolerant)
    wait_for(lambda: cluster.status("ComputeTarget", "gpu").get("vcpus") == "4", what="4 vCPUs on the tolerated node")
    assert cluster.condition("ComputeTarget", "gpu", "Ready")["status"] == "True"


def test_a_node_heartbeat_changes_nothing(cluster, nodes, operator):
    node = nodes.add("a", "4")
    cluster.apply(target("dev", nodes.pool))
    cluster.wait_condition("ComputeTarget", "dev", "Ready", "True")
    cluster.wait_quiet()  # kopf's own annotation and the Ready event are written
    rv = cluster.get("ComputeTarget", "dev")["metadata"]["resourceVersion"]
    writes = operator.writes()
    for _ in range(3):
        nodes.set_status(node, "4")  # a kubelet's status update: new heartbeat time, same facts
        time.sleep(1)
    assert cluster.get("ComputeTarget", "dev")["metadata"]["resourceVersion"] == rv
    assert operator.writes() == writes
