"""Azure Machine Learning's digits tutorial as the workflow deploys it: training, manifests, status checks.

The manifests are the ones in examples/ (read from there, so the demo deploys what a user
reads), put into one namespace.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from .commands import REPO, Kubectl
from .progress import WorkflowError
from .waiting import wait_for

EXAMPLES = REPO / "examples"
DIGITS = EXAMPLES / "digits"
SERVICE = "digits"
MODEL_NAME = "digits"
CODE_CONFIG_MAP = "digits-code"
# The regularization each version is trained with (examples/digits/model-v*.yaml say the same).
REGULARIZATION = {1: 2.0, 2: 0.5}
SERVICE_LABEL = "bereit.dev/inference-service"
Show = Callable[[str], None]


@dataclass(frozen=True)
class HeldOut:
    data: list[list[float]]
    labels: list[int]


def train(version: int, output: Path, show: Show) -> Path:
    """examples/digits/train.py for one version; returns the folder of the model's files."""
    proc = subprocess.run(
        [sys.executable, str(DIGITS / "train.py"), "--version", str(version),
         "--regularization", str(REGULARIZATION[version]), "--output", str(output)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if proc.returncode != 0:
        raise WorkflowError(f"examples/digits/train.py --version {version} failed:\n{proc.stderr.strip()[-2000:]}")
    for line in proc.stdout.strip().splitlines():
        show(line)
    return output / f"model-v{version}"


def held_out(output: Path) -> HeldOut:
    test = json.loads((output / "test-data.json").read_text())
    return HeldOut(data=test["data"], labels=[int(label) for label in test["labels"]])


def model_image(version: int) -> str:
    """The image Model digits-<version> names (oci://...), as examples/digits/model-v*.yaml say."""
    uri = model(version)["spec"]["source"]["uri"]
    return uri.removeprefix("oci://")


# --- manifests ---------------------------------------------------------------------------

def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compute_target(name: str) -> dict:
    for document in _documents(EXAMPLES / "compute-targets.yaml"):
        if document["metadata"]["name"] == name:
            return document
    raise WorkflowError(f"examples/compute-targets.yaml has no ComputeTarget {name!r}")


def model(version: int) -> dict:
    return _documents(DIGITS / f"model-v{version}.yaml")[0]


def code_config_map() -> dict:
    """What kustomization.yaml makes of score.py (configMapGenerator, no name suffix)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CODE_CONFIG_MAP},
        "data": {"score.py": (DIGITS / "score.py").read_text()},
    }


def inference_service(version: int) -> dict:
    service = _documents(DIGITS / "inference-service.yaml")[0]
    service["spec"]["models"] = [{"name": MODEL_NAME, "version": version}]
    return service


# --- status ------------------------------------------------------------------------------

def condition(body: dict | None, type_: str) -> dict:
    for found in ((body or {}).get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return found
    return {}


def wait_target(kubectl: Kubectl, namespace: str, name: str, show: Show, *, ready: bool = True,
                timeout: float = 120) -> dict:
    """Until the ComputeTarget's Ready condition is True (or False, when ready=False)."""
    want = "True" if ready else "False"

    def check() -> tuple[bool, str]:
        body = kubectl.get("computetarget", name, namespace)
        found = condition(body, "Ready")
        current = found.get("observedGeneration") == (body or {}).get("metadata", {}).get("generation")
        return found.get("status") == want and current, \
            f"ComputeTarget {name}: Ready={found.get('status', '?')} {found.get('reason', '')}: {found.get('message', '')}"

    wait_for(f"ComputeTarget {name} Ready={want}", check, timeout=timeout, show=show)
    return kubectl.get("computetarget", name, namespace) or {}


def wait_model(kubectl: Kubectl, namespace: str, name: str, show: Show, timeout: float = 120) -> dict:
    def check() -> tuple[bool, str]:
        found = condition(kubectl.get("model", name, namespace), "Ready")
        return found.get("status") == "True", \
            f"Model {name}: Ready={found.get('status', '?')} {found.get('reason', '')}: {found.get('message', '')}"

    wait_for(f"Model {name} Ready", check, timeout=timeout, show=show)
    return kubectl.get("model", name, namespace) or {}


def service_summary(body: dict | None) -> str:
    if body is None:
        return "not there"
    status = body.get("status") or {}
    parts = [
        f"state {status.get('state', '-')}",
        f"models {status.get('modelVersions', '-')}",
        f"ready {status.get('readyReplicas', 0)}/{status.get('replicas', 0)}",
    ]
    if status.get("message"):
        parts.append(status["message"][:300])
    return ", ".join(parts)


def wait_healthy(kubectl: Kubectl, namespace: str, name: str, show: Show, *, models: str | None = None,
                 timeout: float = 600) -> dict:
    """Until the service is Healthy for its current generation, serving `models` (e.g. digits:2),
    and its Deployment has finished rolling (every replica runs the current pod template)."""

    def check() -> tuple[bool, str]:
        body = kubectl.get("inferenceservice", name, namespace)
        if body is None:
            return False, "not there"
        status = body.get("status") or {}
        done = (status.get("state") == "Healthy"
                and status.get("observedGeneration") == body["metadata"]["generation"]
                and (models is None or status.get("modelVersions") == models)
                and rolled_out(kubectl, namespace, name))
        return done, service_summary(body)

    wait_for(f"InferenceService {name} Healthy", check, timeout=timeout, show=show,
             diagnose=lambda: service_diagnosis(kubectl, namespace, name))
    return kubectl.get("inferenceservice", name, namespace) or {}


def rolled_out(kubectl: Kubectl, namespace: str, name: str) -> bool:
    deployment = kubectl.get("deployment", name, namespace)
    if deployment is None:
        return False
    status = deployment.get("status") or {}
    want = deployment["spec"].get("replicas", 1)
    return (status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == want
            and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want)


def keys(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    """primaryKey and secondaryKey from the Secret the service's status names."""
    body = kubectl.get("inferenceservice", name, namespace) or {}
    secret_name = (body.get("status") or {}).get("keysSecretName")
    if not secret_name:
        raise WorkflowError(f"InferenceService {name} names no keys Secret yet")
    secret = kubectl.get("secret", secret_name, namespace)
    if secret is None:
        raise WorkflowError(f"the keys Secret {secret_name} does not exist")
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _container_state(container: dict) -> str:
    """`server running`, or `model-0-oci waiting {"reason": "ErrImageNeverPull", ...}`."""
    state = container.get("state") or {}
    for phase, details in state.items():
        return f"{container['name']} {phase}" + ("" if phase == "running" else f" {json.dumps(details)}")
    return f"{container['name']} (no state yet)"


def service_diagnosis(kubectl: Kubectl, namespace: str, name: str) -> str:
    """What a person would look at: conditions, the replicas' states, recent events."""
    body = kubectl.get("inferenceservice", name, namespace) or {}
    lines = [f"InferenceService {namespace}/{name}: {service_summary(body)}"]
    for found in (body.get("status") or {}).get("conditions") or []:
        lines.append(f"  {found.get('type')}={found.get('status')} {found.get('reason')}: {found.get('message', '')[:400]}")
    for pod in kubectl.items("pod", namespace, f"{SERVICE_LABEL}={name}"):
        status = pod.get("status") or {}
        containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        states = "; ".join(_container_state(c) for c in containers)
        lines.append(f"  pod {pod['metadata']['name']} {status.get('phase')}: {states}")
    events = kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).strip().splitlines()
    lines += ["  events:"] + [f"    {line}" for line in events[-15:]]
    return "\n".join(lines)
