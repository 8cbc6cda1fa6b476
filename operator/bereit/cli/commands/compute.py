"""bereit compute create | list | show | delete — Azure Machine Learning's AKS compute targets, as node pools."""

from __future__ import annotations

import time
from typing import Annotated, Any, Optional

import typer

from bereit.api import ComputeTarget, Purpose
from bereit.cli import output
from bereit.cli.errors import BadInput, CliError
from bereit.cli.manifests import parse_pairs, validate
from bereit.cli.options import Context, Kubeconfig, Namespace, Output, Timeout, connect
from bereit.cli.output import Format
from bereit.cli.progress import POLL_SECONDS, step, wait_until_gone
from bereit.constants import COMPUTE_TARGET_KIND, INFERENCE_SERVICE_KIND

app = typer.Typer(help="Create and inspect compute targets (pools of nodes services run on).", no_args_is_help=True)
HEADERS = ["name", "purpose", "nodes", "vcpus", "memory", "ready", "verdict", "age"]


def _row(target: dict[str, Any]) -> list[Any]:
    status = target.get("status") or {}
    ready = output.condition(target)
    return [
        target["metadata"]["name"],
        (target.get("spec") or {}).get("purpose", Purpose.FAST_PROD.value),
        status.get("nodes"),
        status.get("vcpus"),
        status.get("memory"),
        ready.get("status", "Unknown"),
        ready.get("message") or ready.get("reason") or "not checked yet",
        output.age(target["metadata"].get("creationTimestamp")),
    ]


def _toleration(text: str) -> dict[str, str]:
    """KEY[=VALUE][:EFFECT], as in `kubectl taint` (KEY alone tolerates every value)."""
    rest, colon, effect = text.rpartition(":") if ":" in text else (text, "", "")
    key, equals, value = rest.partition("=")
    if not key:
        raise BadInput(f"--toleration {text!r}: write KEY[=VALUE][:EFFECT], e.g. gpu=true:NoSchedule")
    toleration = {"key": key, "operator": "Equal" if equals else "Exists"}
    if equals:
        toleration["value"] = value
    if colon:
        toleration["effect"] = effect
    return toleration


@app.command("create")
def create(
    name: Annotated[str, typer.Option("-n", "--name", help="Compute target name.")],
    purpose: Annotated[Purpose, typer.Option("--purpose", "--cluster-purpose", help="DevTest (≥ 2 vCPUs) or FastProd (≥ 12 vCPUs).", case_sensitive=False)] = Purpose.FAST_PROD,
    node_selector: Annotated[Optional[list[str]], typer.Option("--node-selector", metavar="KEY=VALUE", help="Node label KEY=VALUE, repeatable.")] = None,
    toleration: Annotated[Optional[list[str]], typer.Option("--toleration", metavar="KEY[=VALUE][:EFFECT]", help="KEY[=VALUE][:EFFECT] of a node taint, repeatable.")] = None,
    default_cpu: Annotated[Optional[str], typer.Option("--default-cpu", help="CPU for services that set none, e.g. 0.5.")] = None,
    default_memory: Annotated[Optional[str], typer.Option("--default-memory", help="Memory for services that set none, e.g. 1Gi.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the operator's verdict on the nodes.")] = True,
    timeout: Timeout = 30,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Create a compute target and show whether its nodes are big enough for its purpose."""
    defaults = {k: v for k, v in {"cpu": default_cpu, "memory": default_memory}.items() if v is not None}
    body = {
        "metadata": {"name": name},
        "spec": {
            "purpose": purpose.value,
            "nodeSelector": parse_pairs(node_selector, "--node-selector"),
            "tolerations": [_toleration(t) for t in toleration or []],
            "defaults": defaults,
        },
    }
    body = validate(ComputeTarget, body).to_api()
    kube = connect(namespace, context, kubeconfig)
    created = kube.create(COMPUTE_TARGET_KIND, body)
    if wait:
        created = _wait_for_verdict(kube, name, timeout) or created
    output.objects([created], fmt, HEADERS, _row, single=True)


def _wait_for_verdict(kube, name: str, timeout: float) -> dict[str, Any] | None:
    """The target once the operator has judged its nodes; None when it has not in time."""
    deadline = time.monotonic() + timeout
    with step(f"Checking the nodes of compute target {name}"):
        while time.monotonic() < deadline:
            target = kube.get(COMPUTE_TARGET_KIND, name)
            status = target.get("status") or {}
            if output.condition(target) and (status.get("observedGeneration") or 0) >= target["metadata"].get("generation", 1):
                return target
            time.sleep(POLL_SECONDS)
    output.warn(f"the operator has not judged compute target {name} after {timeout:.0f} s: is it running?")
    return None


@app.command("list")
def list_targets(
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """List compute targets with their vCPU verdict."""
    kube = connect(namespace, context, kubeconfig)
    output.objects(kube.list(COMPUTE_TARGET_KIND), fmt, HEADERS, _row)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Compute target name.")],
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Show a compute target: its nodes, vCPUs, memory and the verdict for its purpose."""
    kube = connect(namespace, context, kubeconfig)
    target = kube.get(COMPUTE_TARGET_KIND, name)
    if fmt != Format.TABLE:
        output.objects([target], fmt, HEADERS, _row, single=True)
        return
    spec = target.get("spec") or {}
    status = target.get("status") or {}
    ready = output.condition(target)
    rows = [
        ("Name", name),
        ("Purpose", spec.get("purpose")),
        ("Node selector", ", ".join(f"{k}={v}" for k, v in (spec.get("nodeSelector") or {}).items()) or "all nodes"),
        ("Tolerations", ", ".join(_describe_toleration(t) for t in spec.get("tolerations") or []) or None),
        ("Nodes", status.get("nodes")),
        ("vCPUs", status.get("vcpus")),
        ("Memory", status.get("memory")),
        ("Requested vCPUs", status.get("requestedVcpus")),
        ("Ready", f"{ready.get('status', 'Unknown')} ({ready.get('reason', 'not checked yet')})"),
        ("Verdict", ready.get("message")),
    ]
    output.table(["field", "value"], rows)


def _describe_toleration(toleration: dict[str, Any]) -> str:
    text = toleration.get("key") or "*"
    if toleration.get("value"):
        text += f"={toleration['value']}"
    return text + (f":{toleration['effect']}" if toleration.get("effect") else "")


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Compute target name.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until it is gone.")] = True,
    timeout: Timeout = 60,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Delete a compute target (refused while services run on it)."""
    kube = connect(namespace, context, kubeconfig)
    kube.get(COMPUTE_TARGET_KIND, name)
    users = [
        s["metadata"]["name"]
        for s in kube.list(INFERENCE_SERVICE_KIND)
        if (s.get("spec") or {}).get("computeTarget") == name
    ]
    if users:
        raise CliError(f"compute target {name} runs service(s) {', '.join(users)}: delete or move them first")
    kube.delete(COMPUTE_TARGET_KIND, name)
    if wait:
        wait_until_gone(kube, COMPUTE_TARGET_KIND, name, timeout)
    output.info(f"Deleted compute target {name}")
