"""The session's control plane is real: CRDs are served, controllers and GC run."""

from __future__ import annotations

import time

import kubernetes
import pytest
import yaml

from bereit import constants


def _crds(kube_cluster) -> list[dict]:
    from e2e.cluster import localcluster

    return [yaml.safe_load(path.read_text()) for path in localcluster.crd_files()]


def test_every_crd_in_the_repo_is_established_and_served(kube_cluster, kube_api):
    crds = _crds(kube_cluster)
    if not crds:
        pytest.skip("crds/ holds no CRD yet")
    ext = kubernetes.client.ApiextensionsV1Api(kube_api)
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    for crd in crds:
        live = ext.read_custom_resource_definition(crd["metadata"]["name"])
        established = {c.type: c.status for c in live.status.conditions}.get("Established")
        assert established == "True", crd["metadata"]["name"]
        served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
        for version in served:
            listed = custom.list_cluster_custom_object(crd["spec"]["group"], version, crd["spec"]["names"]["plural"])
            assert isinstance(listed.get("items"), list), (crd["metadata"]["name"], version)


def test_the_bereit_api_group_is_discoverable(kube_cluster):
    if not _crds(kube_cluster):
        pytest.skip("crds/ holds no CRD yet")
    resources = kube_cluster.kubectl("api-resources", "--api-group", constants.GROUP, "-o", "name").split()
    assert resources, f"no resources in {constants.GROUP}"
    assert all(r.endswith("." + constants.GROUP) for r in resources)


def test_kubectl_get_works(kube_cluster):
    namespaces = kube_cluster.kubectl("get", "namespaces", "-o", "name").split()
    assert "namespace/default" in namespaces
    assert "namespace/kube-system" in namespaces


def test_controller_manager_creates_replicasets_and_garbage_collects_them(kube_api, namespace):
    apps = kubernetes.client.AppsV1Api(kube_api)
    labels = {"app": "gc-probe"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "gc-probe"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "bereit/none:1"}]},
                },
            },
        },
    )
    deadline = time.monotonic() + 30
    while not apps.list_namespaced_replica_set(namespace).items:
        assert time.monotonic() < deadline, "no ReplicaSet: the controller-manager does not run"
        time.sleep(0.2)
    apps.delete_namespaced_deployment("gc-probe", namespace, propagation_policy="Background")
    deadline = time.monotonic() + 30
    while apps.list_namespaced_replica_set(namespace).items:
        assert time.monotonic() < deadline, "ReplicaSet not garbage-collected after its Deployment went"
        time.sleep(0.2)


def test_a_fresh_control_plane_started_within_a_minute(kube_cluster):
    # A guard against a start that hangs on something; the < 20 s warm-start target is
    # e2e/test_cluster_smoke.py's, its times are in e2e/README.md.
    if not kube_cluster.started_here:
        pytest.skip("the control plane was running already (BEREIT_IT_KEEP or BEREIT_IT_KUBECONFIG)")
    assert kube_cluster.start_seconds < 60, f"took {kube_cluster.start_seconds:.1f} s"
