"""helm as GitOps tools run it: `helm template` with no cluster, as Argo CD renders charts.

Without --kube-version helm assumes the Kubernetes version its build was stamped with. A
helm built without the ldflags of Helm's Makefile says v1.20 and the chart's kubeVersion
(>= 1.29) refuses it; e2e/cluster/install-deps.sh builds helm as Helm's release does.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from tests.unit.chart.helm import CHART, NAMESPACE, RELEASE, REPO, find

CLUSTER = REPO / "e2e" / "cluster"


def offline_env(tmp_path) -> dict[str, str]:
    """No kubeconfig, no helm configuration or cache from this machine."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KUBE", "HELM_"))}
    env.update(KUBECONFIG="/nonexistent", HOME=str(tmp_path), HELM_CONFIG_HOME=str(tmp_path / "config"),
               HELM_CACHE_HOME=str(tmp_path / "cache"), HELM_DATA_HOME=str(tmp_path / "data"))
    return env


def run(helm: str, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False, timeout=120, env=offline_env(tmp_path))


def pinned(name: str) -> str:
    text = (CLUSTER / "versions.env").read_text()
    return re.search(rf"^{name}=(\S+)$", text, re.MULTILINE).group(1)


def kubernetes_of_helm_build() -> str:
    """What Helm's Makefile stamps: client-go v0.X.Y -> Kubernetes v1.X.0."""
    gomod = (CLUSTER / "build" / "helm" / "go.mod").read_text()
    minor = re.search(r"^\s*k8s\.io/client-go v0\.(\d+)\.\d+", gomod, re.MULTILINE).group(1)
    return f"v1.{minor}.0"


@pytest.fixture(scope="module")
def built_helm() -> str:
    """The helm install-deps.sh builds (not one from PATH, whose version is its own)."""
    result = subprocess.run(["bash", str(CLUSTER / "bin-path.sh")], capture_output=True, text=True, check=True)
    path = os.path.join(result.stdout.strip(), "helm")
    if not os.access(path, os.X_OK):
        pytest.skip("helm is not built: e2e/cluster/install-deps.sh helm")
    return path


def test_helm_template_renders_the_chart_without_a_cluster_or_a_kube_version(helm, tmp_path):
    result = run(helm, tmp_path, "template", RELEASE, str(CHART), "--namespace", NAMESPACE)
    assert result.returncode == 0, (
        f"{result.stderr}\n(a helm built without Helm's release ldflags assumes Kubernetes v1.20: "
        "rebuild it with e2e/cluster/install-deps.sh helm)"
    )
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert find(docs, "Deployment", name="bereit")


def test_built_helm_reports_its_release_version_and_commit(built_helm, tmp_path):
    result = run(built_helm, tmp_path, "version", "--template", "{{.Version}} {{.GitCommit}} {{.GitTreeState}}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [pinned("HELM_VERSION"), pinned("HELM_GIT_COMMIT"), "clean"]


def test_built_helm_assumes_the_kubernetes_version_of_its_client_go_as_helms_release_does(built_helm, tmp_path):
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "version.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
        "data: {kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}}\n"
    )
    result = run(built_helm, tmp_path, "template", "probe", str(chart))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["data"]["kubeVersion"] == kubernetes_of_helm_build()


def test_built_helm_lints_the_chart_for_the_same_kubernetes_version(built_helm, tmp_path):
    """helm lint's deprecation check reads its own stamped version (pkg/lint/rules)."""
    result = run(built_helm, tmp_path, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
