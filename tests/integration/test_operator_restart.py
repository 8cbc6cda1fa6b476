"""The operator killed in the middle of a burst picks up where it was, with no duplicates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from e2e.cluster.operator_harness import model, service, target, wait_for

BURST = 50


def _converged(cluster, names: list[str]) -> bool:
    services = {
        item["metadata"]["name"]: item
        for item in cluster.custom.list_namespaced_custom_object("bereit.dev", "v1alpha1", cluster.namespace, "inferenceservices")["items"]
    }
    for name in names:
        item = services.get(name)
        status = (item or {}).get("status") or {}
        applied = next((c for c in status.get("conditions") or () if c["type"] == "ChildrenApplied"), {})
        if status.get("observedGeneration") != item["metadata"]["generation"] or applied.get("status") != "True":
            return False
    return True


def _replica_sets(children: dict, deployment: str) -> list[str]:
    return [
        key
        for key, obj in children.items()
        if key.startswith("ReplicaSet/") and obj["metadata"]["ownerReferences"][0]["name"] == deployment
    ]


def test_restart_during_a_burst_of_50_creations_ends_converged_without_duplicates(cluster, nodes, operator):
    nodes.add("a", "64")
    cluster.apply(target("dev", nodes.pool))
    cluster.wait_condition("ComputeTarget", "dev", "Ready", "True")
    cluster.apply(model("iris-1", "iris", 1))
    cluster.wait_condition("Model", "iris-1", "Ready", "True")
    names = [f"burst-{i:02d}" for i in range(BURST)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(cluster.apply, service(name, cpu="0.1")) for name in names]
        wait_for(lambda: sum(f.done() for f in futures) >= BURST // 3, what="a third of the burst applied")
        wait_for(lambda: any(key.startswith("Secret/") for key in cluster.children()), interval=0.05, what="a first Secret")
        operator.kill()  # mid-work: some services have children, some keys, some nothing
        for future in futures:
            future.result()
    keys_before = {
        key: (obj["metadata"]["uid"], obj["data"]) for key, obj in cluster.children().items() if key.startswith("Secret/")
    }
    assert 0 < len(keys_before) < BURST, f"the kill came too late or too early: {len(keys_before)} Secrets"

    operator.start()
    wait_for(lambda: _converged(cluster, names), timeout=120, interval=1, what="every service converged")
    # The controller-manager creates ReplicaSets on its own schedule; wait for one per service.
    wait_for(lambda: all(_replica_sets(cluster.children(), name) for name in names), timeout=60, interval=1, what="a ReplicaSet per service")

    children = cluster.children()
    for kind, suffix in (("Deployment", ""), ("Service", ""), ("Secret", "-keys"), ("ConfigMap", "-code"), ("NetworkPolicy", "")):
        found = sorted(key.split("/", 1)[1] for key in children if key.startswith(kind + "/"))
        assert found == sorted(name + suffix for name in names), kind
    for name in names:
        replica_sets = _replica_sets(children, name)
        assert len(replica_sets) == 1, (name, replica_sets)
        assert children[f"Deployment/{name}"]["metadata"]["generation"] == 1, name
    for key, (uid, data) in keys_before.items():
        assert (children[key]["metadata"]["uid"], children[key]["data"]) == (uid, data), f"{key} was rewritten"
    # The target's sum is written in its own pass, which may follow the services'.
    wait_for(lambda: cluster.status("ComputeTarget", "dev").get("requestedVcpus") == "5", what="requestedVcpus 5")
