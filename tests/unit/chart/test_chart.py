"""The Helm chart: lint, render with several value sets, check what it renders.

Every rendered object is validated against the Kubernetes OpenAPI schema of the version the
local cluster runs (kubernetes-validate, offline); custom resources against their CRDs' kinds.
"""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from bereit import __version__
from bereit.api import ComputeTarget, InferenceService, Model
from bereit.constants import (
    COMPUTE_TARGET_KIND,
    GROUP,
    INFERENCE_SERVICE_KIND,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    MANAGED_BY,
    METRICS_PATH,
    MODEL_KIND,
    PART_OF,
)
from bereit.render.context import ResolvedService, RuntimeSettings
from bereit.render.service import render_service
from tests.unit.chart.helm import CHART, KUBE_VERSION, NAMESPACE, find, only, yaml
from tests.unit.specs import compute_target_body, inference_service_body, model_body

FULLNAME = "bereit"  # release "bereit" of chart "bereit"

VALUE_SETS = {
    "defaults": {},
    "ha": {"replicas": 3},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "namespaced-ha": {"watchNamespaces": ["team-a"], "replicas": 2},
    "service-monitor": {"serviceMonitor.enabled": True, "serviceMonitor.labels": {"release": "prometheus"}},
    "crds-off": {"crds.enabled": False},
    "argocd-health": {"argocd.healthChecks.enabled": True},
    "everything-set": {
        "image.repository": "registry.example.com/ml/bereit-operator",
        "image.tag": "1.2.3",
        "image.pullPolicy": "Always",
        "runtimeImage.repository": "registry.example.com/ml/bereit-runtime",
        "runtimeImage.tag": "1.2.3",
        "runtimeImage.pullPolicy": "Never",
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "logFormat": "text",
        "logLevel": "debug",
        "crds.keep": False,
        "serviceAccount.annotations": {"example.com/role": "operator"},
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": 1, "memory": "512Mi"}},
        "podAnnotations": {"example.com/scrape": "false"},
        "podLabels": {"team": "ml"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        "priorityClassName": "system-cluster-critical",
    },
}

# Custom kinds have no place in the Kubernetes schema; their CRDs are checked elsewhere.
CUSTOM_KINDS = {"ServiceMonitor", "ClusterKopfPeering", "KopfPeering"}


def rendered(chart, name: str) -> list[dict]:
    return chart.render(VALUE_SETS[name])


def operator_container(docs: list[dict]) -> dict:
    deployment = only(docs, "Deployment", name=FULLNAME)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_passes(chart, name):
    result = chart.lint(VALUE_SETS[name])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_object_is_valid_for_the_pinned_kubernetes_version(chart, name):
    docs = rendered(chart, name)
    checked = 0
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {list(error.path)}")
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("name", VALUE_SETS)
def test_operator_pod_meets_the_restricted_pod_security_standard(chart, name):
    docs = rendered(chart, name)
    pod = only(docs, "Deployment", name=FULLNAME)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    container = operator_container(docs)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in security
    # The only writable place is an emptyDir at /tmp.
    tmp_mount = only_item(container["volumeMounts"], mountPath="/tmp")
    assert only_item(pod["volumes"], name=tmp_mount["name"])["emptyDir"] is not None
    assert all(volume.keys() <= {"name", "emptyDir"} for volume in pod["volumes"])


def only_item(items: list[dict], **match) -> dict:
    found = [item for item in items if all(item.get(key) == value for key, value in match.items())]
    assert len(found) == 1, f"expected one item with {match}, found {found}"
    return found[0]


def all_rules(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(doc["kind"], rule) for doc in docs if doc["kind"] in ("ClusterRole", "Role") for rule in doc["rules"]]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rbac_grants_no_wildcards_and_no_escalation_paths(chart, name):
    rules = all_rules(rendered(chart, name))
    assert rules
    for _, rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
        assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings"} & set(rule["resources"])


def granted(rules: list[tuple[str, dict]], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for _, rule in rules:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_rbac_grants_exactly_what_the_operator_uses(chart):
    rules = all_rules(rendered(chart, "defaults"))
    children = {"get", "list", "watch", "create", "patch", "delete"}
    expected = {
        ("bereit.dev", "models"): {"get", "list", "watch", "patch"},
        ("bereit.dev", "inferenceservices/status"): {"get", "patch", "update"},
        ("bereit.dev", "computetargets/finalizers"): {"update"},
        ("apps", "deployments"): children,
        ("", "services"): children,
        ("", "secrets"): children,
        ("", "configmaps"): children,
        ("autoscaling", "horizontalpodautoscalers"): children,
        ("policy", "poddisruptionbudgets"): children,
        ("networking.k8s.io", "networkpolicies"): children,
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get"},
        ("", "nodes"): {"get", "list", "watch"},
        ("", "events"): {"create", "patch"},
        ("events.k8s.io", "events"): {"create", "patch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
        # Things it never touches.
        ("", "namespaces"): set(),
        ("", "serviceaccounts"): set(),
        ("kopf.dev", "clusterkopfpeerings"): set(),
        ("batch", "jobs"): set(),
    }
    for (group, resource), verbs in expected.items():
        assert granted(rules, group, resource) == verbs, f"{group or 'core'}/{resource}"


def test_a_single_replica_runs_standalone_and_never_twice(chart):
    docs = rendered(chart, "defaults")
    deployment = only(docs, "Deployment", name=FULLNAME)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    args = operator_container(docs)["args"]
    assert "--standalone" in args and not any(arg.startswith("--peering") for arg in args)
    assert not find(docs, "PodDisruptionBudget") and not find(docs, "ClusterKopfPeering")


def test_ha_replicas_share_a_peering_object_each_with_its_own_priority(chart):
    docs = rendered(chart, "ha")
    deployment = only(docs, "Deployment", name=FULLNAME)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = operator_container(docs)
    assert "--peering=bereit" in container["args"] and "--standalone" not in container["args"]
    # `sh -c SCRIPT NAME ARGS…`: the script draws a random priority and passes the args on.
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert '--priority="$(shuf' in container["command"][2] and '"$@"' in container["command"][2]
    peering = only(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "bereit" and "namespace" not in peering["metadata"]
    assert only(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == (
        "kubernetes.io/hostname"
    )
    rules = all_rules(docs)
    assert granted(rules, "kopf.dev", "clusterkopfpeerings") == {"get", "list", "watch", "patch"}


def test_peering_crds_ship_in_the_crds_folder_so_helm_installs_them_first(chart):
    docs = rendered(chart, "ha")
    names = {doc["metadata"]["name"] for doc in find(docs, "CustomResourceDefinition")}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= names
    # Objects of a CRD in the same templates/ folder would fail on a first install.
    assert (CHART / "crds" / "kopf-peering.yaml").is_file()


def test_cluster_wide_operator_watches_all_namespaces_with_one_cluster_role(chart):
    docs = rendered(chart, "defaults")
    assert "--all-namespaces" in operator_container(docs)["args"]
    assert not find(docs, "Role") and not find(docs, "RoleBinding")
    binding = only(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]


def test_namespaced_operator_gets_a_role_per_namespace_and_only_cluster_reads(chart):
    docs = rendered(chart, "namespaced")
    args = operator_container(docs)["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args
    for namespace in ("team-a", "team-b"):
        role = only(docs, "Role", namespace=namespace)
        assert granted([("Role", rule) for rule in role["rules"]], "", "secrets")
        binding = only(docs, "RoleBinding", namespace=namespace)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    cluster_rules = [("ClusterRole", rule) for rule in only(docs, "ClusterRole")["rules"]]
    for _, rule in cluster_rules:
        assert rule["verbs"] and set(rule["verbs"]) <= {"get", "list", "watch"}
    cluster_resources = {resource for _, rule in cluster_rules for resource in rule["resources"]}
    assert cluster_resources == {"nodes", "customresourcedefinitions", "namespaces"}


def test_namespaced_ha_puts_a_kopf_peering_in_each_watched_namespace(chart):
    docs = rendered(chart, "namespaced-ha")
    peering = only(docs, "KopfPeering")
    assert peering["metadata"] == {**peering["metadata"], "name": "bereit", "namespace": "team-a"}
    assert not find(docs, "ClusterKopfPeering")
    role_rules = [("Role", rule) for rule in only(docs, "Role", namespace="team-a")["rules"]]
    assert granted(role_rules, "kopf.dev", "kopfpeerings") == {"get", "list", "watch", "patch"}


def test_service_monitor_scrapes_the_inference_services_metrics_port(chart):
    assert not find(rendered(chart, "defaults"), "ServiceMonitor")
    monitor = only(rendered(chart, "service-monitor"), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector == {LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: MANAGED_BY}
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == METRICS_PATH
    service = rendered_inference_service()
    assert selector.items() <= service["metadata"]["labels"].items()
    assert endpoint["port"] in [port["name"] for port in service["spec"]["ports"]]


def rendered_inference_service() -> dict:
    """The Service the renderer makes for an InferenceService (what the monitor must select)."""
    body = {"metadata": {"name": "digits", "namespace": "default", "uid": "0"}}
    resolved = ResolvedService(
        service=InferenceService.model_validate(inference_service_body() | body),
        models=(Model.model_validate(model_body()),),
        compute_target=ComputeTarget.model_validate(compute_target_body()),
        runtime=RuntimeSettings(runtime_image="bereit/runtime:test"),
    )
    return render_service(resolved)


def test_service_monitor_follows_the_watched_namespaces(chart):
    docs = chart.render({"serviceMonitor.enabled": True, "watchNamespaces": ["team-a"]})
    assert only(docs, "ServiceMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["team-a"]}


def test_crds_are_rendered_with_a_keep_policy_and_can_be_turned_off(chart):
    bereit_crds = lambda docs: [  # noqa: E731
        doc for doc in find(docs, "CustomResourceDefinition") if doc["spec"]["group"] == "bereit.dev"
    ]
    crds = bereit_crds(rendered(chart, "defaults"))
    assert {doc["spec"]["names"]["kind"] for doc in crds} == {"Model", "InferenceService", "ComputeTarget"}
    assert all(doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for doc in crds)
    assert bereit_crds(rendered(chart, "crds-off")) == []
    unkept = bereit_crds(rendered(chart, "everything-set"))
    assert unkept and all("helm.sh/resource-policy" not in (doc["metadata"].get("annotations") or {}) for doc in unkept)


def test_images_default_to_the_chart_app_version_which_is_the_package_version(chart):
    chart_meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart_meta["appVersion"] == __version__
    container = operator_container(rendered(chart, "defaults"))
    assert container["image"] == f"bereit/operator:{__version__}"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["BEREIT_RUNTIME_IMAGE"] == f"bereit/runtime:{__version__}"


def test_values_reach_the_operator_pod(chart):
    docs = rendered(chart, "everything-set")
    deployment = only(docs, "Deployment", name=FULLNAME)
    pod = deployment["spec"]["template"]
    container = operator_container(docs)
    assert container["image"] == "registry.example.com/ml/bereit-operator:1.2.3"
    assert container["imagePullPolicy"] == "Always"
    assert {"--log-format=plain", "--verbose"} <= set(container["args"])
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["BEREIT_RUNTIME_IMAGE"] == "registry.example.com/ml/bereit-runtime:1.2.3"
    assert env["BEREIT_LOG_FORMAT"] == "text"
    assert env["BEREIT_LOG_LEVEL"] == "DEBUG"
    assert env["BEREIT_IMAGE_PULL_POLICY"] == "Never"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"][0]["key"] == "dedicated"
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert pod["metadata"]["annotations"] == {"example.com/scrape": "false"}
    assert container["resources"]["limits"] == {"cpu": 1, "memory": "512Mi"}
    account = only(docs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"example.com/role": "operator"}


def test_an_existing_service_account_can_be_used(chart):
    docs = chart.render({"serviceAccount.create": False, "serviceAccount.name": "platform-operators"})
    assert not find(docs, "ServiceAccount")
    pod = only(docs, "Deployment", name=FULLNAME)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-operators"
    assert only(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "platform-operators"

    missing = chart.template({"serviceAccount.create": False})
    assert missing.returncode != 0
    assert "serviceAccount.name is required" in missing.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replica": 2}, "replica"),
        ({"replicas": 0}, "replicas"),
        ({"replicas": "2"}, "replicas"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"logLevel": "loud"}, "logLevel"),
        ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
        ({"watchNamespaces": ["a", "a"]}, "watchNamespaces"),
        ({"image.pullPolicy": "Sometimes"}, "pullPolicy"),
        ({"image.tag": "bad tag"}, "tag"),
        ({"crds.enabled": "yes"}, "enabled"),
        ({"serviceMonitor.interval": "soon"}, "interval"),
        ({"resources.requests": {"cpu": "lots"}}, "cpu"),
        ({"rbac.create": True, "rbac.extra": 1}, "extra"),
        ({"argocd.healthChecks.enabled": "yes"}, "enabled"),
    ],
)
def test_bad_values_are_refused_naming_the_field(chart, values, complaint):
    result = chart.template(values)
    assert result.returncode != 0, f"accepted {json.dumps(values)}"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_setting_the_chart_passes_is_one_the_operator_reads(chart, name):
    from bereit.controllers.settings import Settings

    env = {item["name"]: item.get("value") for item in operator_container(rendered(chart, name))["env"]}
    passed = {key: value for key, value in env.items() if key.startswith("BEREIT_")}
    known = {f"BEREIT_{field.upper()}" for field in Settings.model_fields}
    assert passed.keys() <= known, passed.keys() - known
    # And the operator accepts the values as given.
    Settings(**{key.removeprefix("BEREIT_").lower(): value for key, value in passed.items()})


def test_argocd_health_checks_are_off_unless_asked_for(chart):
    assert not find(rendered(chart, "defaults"), "ConfigMap", name=f"{FULLNAME}-argocd-health")


def test_argocd_health_checks_ship_the_tested_script_under_argocd_cm_keys_for_every_kind(chart):
    """The keys Argo CD reads (resource.customizations.health.<group>_<kind>), one per CRD kind,
    each holding charts/bereit/argocd/health.lua as tests/unit/gitops runs it."""
    config_map = only(rendered(chart, "argocd-health"), "ConfigMap", name=f"{FULLNAME}-argocd-health", namespace=NAMESPACE)
    script = (CHART / "argocd" / "health.lua").read_text()
    kinds = {crd["spec"]["names"]["kind"] for crd in find(rendered(chart, "defaults"), "CustomResourceDefinition")
             if crd["spec"]["group"] == GROUP}
    assert kinds == {MODEL_KIND, INFERENCE_SERVICE_KIND, COMPUTE_TARGET_KIND}
    assert config_map["data"] == {f"resource.customizations.health.{GROUP}_{kind}": script for kind in kinds}
