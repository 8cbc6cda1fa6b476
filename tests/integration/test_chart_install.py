"""`helm install` of the chart into a real API server, and what its RBAC lets the operator do.

The control plane has no node, so the operator's pod stays Pending: this proves that every
object is accepted by the API server and that the ServiceAccount may do exactly what the
operator does (asked with `kubectl auth can-i --as`), not that the operator runs (e2e does).
The session's CRDs are already installed, so the chart's copy is turned off here.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.unit.chart.helm import CHART, find_helm

pytestmark = pytest.mark.skipif(find_helm() is None, reason="helm not found (build it with e2e/cluster/install-deps.sh)")


def helm(kubeconfig: str, *args: str) -> str:
    result = subprocess.run(
        [find_helm(), "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def install(kubeconfig, namespace):
    """helm install with the given values into the test's namespace; uninstalled afterwards."""
    releases = []

    def installer(**values) -> str:
        # A release name holding "bereit" is also the full name of its objects.
        release = f"bereit-it-{uuid.uuid4().hex[:6]}"
        sets = [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
        helm(kubeconfig, "install", release, str(CHART), "--namespace", namespace, "--set", "crds.enabled=false", *sets)
        releases.append(release)
        return release

    yield installer
    for release in releases:
        helm(kubeconfig, "uninstall", release, "--namespace", namespace, "--wait")


def can(kube_cluster, namespace: str, account: str, verb: str, resource: str, where: str | None) -> bool:
    scope = ["--namespace", where] if where else []
    resource, _, subresource = resource.partition("/")
    if subresource:
        scope.append(f"--subresource={subresource}")
    answer = kube_cluster.kubectl(
        "auth", "can-i", verb, resource, f"--as=system:serviceaccount:{namespace}:{account}", *scope, check=False
    )
    return answer.strip() == "yes"


# (verb, resource, namespace or None for cluster scope): what the operator does.
ALLOWED = [
    ("watch", "inferenceservices.bereit.dev", "default"),
    ("patch", "models.bereit.dev", "default"),
    ("patch", "inferenceservices.bereit.dev/status", "default"),
    ("update", "models.bereit.dev/finalizers", "default"),
    ("create", "deployments.apps", "default"),
    ("patch", "services", "default"),
    ("delete", "horizontalpodautoscalers.autoscaling", "default"),
    ("create", "secrets", "default"),
    ("get", "pods/log", "default"),
    ("create", "events", "default"),
    ("list", "nodes", None),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None),
]
# What it never does.
REFUSED = [
    ("delete", "inferenceservices.bereit.dev", "default"),
    ("create", "pods", "default"),
    ("delete", "pods", "default"),
    ("update", "deployments.apps", "default"),
    ("patch", "nodes", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("create", "serviceaccounts", "default"),
    ("create", "pods/exec", "default"),
    ("update", "inferenceservices.bereit.dev/scale", "default"),
]


def test_cluster_wide_ha_install_is_accepted_and_grants_what_the_operator_uses(kube_cluster, namespace, install):
    release = install(replicas=2)
    deployment = json.loads(kube_cluster.kubectl("get", "deployment", release, "-n", namespace, "-o", "json"))
    assert deployment["spec"]["replicas"] == 2
    peering = json.loads(kube_cluster.kubectl("get", "clusterkopfpeering", "bereit", "-o", "json"))
    assert peering["metadata"]["name"] == "bereit"
    for verb, resource, where in ALLOWED + [("patch", "clusterkopfpeerings.kopf.dev", None)]:
        assert can(kube_cluster, namespace, release, verb, resource, where), f"cannot {verb} {resource}"
    for verb, resource, where in REFUSED:
        assert not can(kube_cluster, namespace, release, verb, resource, where), f"can {verb} {resource}"


def test_namespaced_install_grants_only_the_watched_namespace(kube_cluster, namespace, install):
    release = install(watchNamespaces=[namespace])
    assert can(kube_cluster, namespace, release, "patch", "inferenceservices.bereit.dev", namespace)
    assert can(kube_cluster, namespace, release, "create", "deployments.apps", namespace)
    assert can(kube_cluster, namespace, release, "list", "nodes", None)
    for elsewhere in ("default", "kube-system"):
        assert not can(kube_cluster, namespace, release, "list", "inferenceservices.bereit.dev", elsewhere)
        assert not can(kube_cluster, namespace, release, "get", "secrets", elsewhere)
    assert not can(kube_cluster, namespace, release, "patch", "clusterkopfpeerings.kopf.dev", None)
