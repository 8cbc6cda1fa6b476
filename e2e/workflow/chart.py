"""Installing bereit's chart and waiting for its operator."""

from __future__ import annotations

import json
from collections.abc import Callable

from .commands import REPO, Kubectl
from .images import BereitImages
from .progress import WorkflowError
from .waiting import wait_for

CHART = REPO / "charts" / "bereit"
RELEASE = "bereit"
RELEASE_NAMESPACE = "bereit-system"
CRDS = ("models.bereit.dev", "computetargets.bereit.dev", "inferenceservices.bereit.dev")
OPERATOR_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
Show = Callable[[str], None]


def release_exists(kubectl: Kubectl) -> bool:
    out = kubectl.helm("list", "-n", RELEASE_NAMESPACE, "-o", "json", "--filter", f"^{RELEASE}$")
    return any(item.get("name") == RELEASE for item in json.loads(out or "[]"))


def adopt_crds(kubectl: Kubectl, show: Show) -> None:
    """CRDs applied by hand (kubectl apply -f crds/) become the release's, as Helm documents it.

    Without this, `helm install` refuses to take over objects it did not create.
    """
    for name in CRDS:
        crd = kubectl.get("crd", name)
        if crd is None:
            continue
        annotations = crd["metadata"].get("annotations") or {}
        if annotations.get("meta.helm.sh/release-name") == RELEASE:
            continue
        show(f"CRD {name} exists without the chart: handing it to release {RELEASE}")
        kubectl("annotate", "--overwrite", "crd", name, f"meta.helm.sh/release-name={RELEASE}",
                f"meta.helm.sh/release-namespace={RELEASE_NAMESPACE}")
        kubectl("label", "--overwrite", "crd", name, "app.kubernetes.io/managed-by=Helm")


def install(kubectl: Kubectl, images: BereitImages, show: Show, *, log_format: str = "text") -> None:
    """helm upgrade --install with the images just built; then the operator must be running."""
    adopt_crds(kubectl, show)
    operator_repository, operator_tag = images.split(images.operator)
    runtime_repository, runtime_tag = images.split(images.runtime)
    kubectl.helm(
        "upgrade", "--install", RELEASE, str(CHART),
        "--namespace", RELEASE_NAMESPACE, "--create-namespace",
        "--set", f"image.repository={operator_repository}", "--set", f"image.tag={operator_tag}",
        "--set", f"runtimeImage.repository={runtime_repository}", "--set", f"runtimeImage.tag={runtime_tag}",
        # The images were put on the nodes; nothing can be pulled.
        "--set", "image.pullPolicy=IfNotPresent", "--set", "runtimeImage.pullPolicy=IfNotPresent",
        "--set", f"logFormat={log_format}",
        show=show,
    )
    for name in CRDS:
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s", timeout=70)
    wait_for_operator(kubectl, show)


def wait_for_operator(kubectl: Kubectl, show: Show, timeout: float = 300) -> None:
    def check() -> tuple[bool, str]:
        deployments = kubectl.items("deployment", RELEASE_NAMESPACE, OPERATOR_SELECTOR)
        if not deployments:
            return False, "no operator Deployment yet"
        status = deployments[0].get("status") or {}
        want = deployments[0]["spec"].get("replicas", 1)
        generation_seen = status.get("observedGeneration", 0) >= deployments[0]["metadata"]["generation"]
        updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
        done = generation_seen and updated == want and ready >= want and status.get("replicas", 0) == want
        return done, f"operator: {ready}/{want} ready, {updated} updated"

    wait_for("the operator's Deployment", check, timeout=timeout, show=show,
             diagnose=lambda: operator_diagnosis(kubectl))


def operator_diagnosis(kubectl: Kubectl, lines: int = 30) -> str:
    pods = kubectl.items("pod", RELEASE_NAMESPACE, OPERATOR_SELECTOR)
    parts = []
    for pod in pods:
        name = pod["metadata"]["name"]
        states = [f"{c['name']}: {json.dumps(c.get('state'))}" for c in (pod.get("status") or {}).get("containerStatuses") or []]
        parts.append(f"pod {name} {pod['status'].get('phase')} {'; '.join(states)}")
        parts.append(kubectl("logs", "-n", RELEASE_NAMESPACE, name, f"--tail={lines}", check=False))
    return "\n".join(parts) or "no operator pods"


def operator_logs(kubectl: Kubectl, lines: int = 40) -> str:
    return kubectl("logs", "-n", RELEASE_NAMESPACE, "-l", OPERATOR_SELECTOR, f"--tail={lines}", check=False)


def uninstall(kubectl: Kubectl, show: Show) -> None:
    if not release_exists(kubectl):
        raise WorkflowError(f"no release {RELEASE} in {RELEASE_NAMESPACE}")
    kubectl.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", show=show)
