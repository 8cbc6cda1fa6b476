"""bereit service … — Azure Machine Learning's Webservice object: state, logs, run, keys, update, delete.

Longer than other modules on purpose: every `bereit service` subcommand is one typer group,
and its options are declared in the signatures (the other command groups follow the same form).
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from bereit.cli import deployment, model_versions, output, score_client
from bereit.cli.azureml.config import translate_inference_config
from bereit.cli.errors import BadInput, CliError, NotFound, TimedOut
from bereit.cli.manifests import inline_code, merge, parse_model_ref
from bereit.cli.options import (
    Context,
    Kubeconfig,
    Namespace,
    Output,
    Timeout,
    Wait,
    connect,
)
from bereit.cli.output import Format
from bereit.cli.progress import POLL_SECONDS, step, wait_for_service, wait_until_gone
from bereit.cli.score_client import Via
from bereit.constants import (
    INFERENCE_SERVICE_KIND,
    LABEL_SERVICE,
    PRIMARY_KEY,
    REGENERATE_PRIMARY_KEY_ANNOTATION,
    REGENERATE_SECONDARY_KEY_ANNOTATION,
    SECONDARY_KEY,
)

app = typer.Typer(help="Inspect, use, update and delete deployed services.", no_args_is_help=True)
HEADERS = ["name", "state", "models", "ready", "scoring uri", "age"]


def row(service: dict[str, Any]) -> list[Any]:
    status = service.get("status") or {}
    return [
        service["metadata"]["name"],
        status.get("state") or "Pending",
        status.get("modelVersions") or _wanted_models(service),
        f"{status.get('readyReplicas') or 0}/{status.get('replicas') or 0}",
        status.get("scoringUri"),
        output.age(service["metadata"].get("creationTimestamp")),
    ]


def _wanted_models(service: dict[str, Any]) -> str:
    return ",".join(
        f"{m['name']}:{m.get('version', 'latest')}" for m in (service.get("spec") or {}).get("models") or []
    )


def summary(service: dict[str, Any]) -> None:
    """What Azure Machine Learning prints after deploying: state, scoring URI, swagger URI, and why not Healthy."""
    status = service.get("status") or {}
    spec = service.get("spec") or {}
    auth = spec.get("auth") or {}
    mode = "token" if auth.get("tokenAuth") else ("none" if auth.get("keyAuth") is False else "key")
    ready = output.condition(service)
    rows = [
        ("Name", service["metadata"]["name"]),
        ("Namespace", service["metadata"].get("namespace")),
        ("State", status.get("state") or "Pending"),
        ("Message", status.get("message") or (ready.get("message") if ready.get("status") != "True" else None)),
        ("Models", status.get("modelVersions") or _wanted_models(service)),
        ("Compute target", spec.get("computeTarget")),
        ("Replicas", f"{status.get('readyReplicas') or 0} ready of {status.get('replicas') or 0}"),
        ("Auth", mode),
        ("Scoring URI", status.get("scoringUri")),
        ("Swagger URI", status.get("swaggerUri")),
        ("Keys Secret", status.get("keysSecretName")),
    ]
    output.table(["field", "value"], rows)


@app.command("list")
def list_services(
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """List services with their state, models and scoring URI."""
    kube = connect(namespace, context, kubeconfig)
    output.objects(kube.list(INFERENCE_SERVICE_KIND), fmt, HEADERS, row)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Service name.")],
    events: Annotated[bool, typer.Option("--events/--no-events", help="Also show the service's recent events.")] = True,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Show a service: state, scoring and swagger URIs, conditions, events."""
    kube = connect(namespace, context, kubeconfig)
    service = kube.get(INFERENCE_SERVICE_KIND, name)
    if fmt != Format.TABLE:
        output.objects([service], fmt, HEADERS, row, single=True)
        return
    summary(service)
    conditions = (service.get("status") or {}).get("conditions") or []
    if conditions:
        output.out().print()
        output.table(
            ["condition", "status", "reason", "message"],
            [(c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conditions],
        )
    if events:
        recent = kube.events_for(name, INFERENCE_SERVICE_KIND)[-10:]
        if recent:
            output.out().print()
            output.table(
                ["last seen", "type", "reason", "message"],
                [
                    (output.age(e.get("lastTimestamp") or e.get("eventTime")), e.get("type"), e.get("reason"), e.get("message"))
                    for e in recent
                ],
            )


@app.command("logs")
def logs(
    name: Annotated[str, typer.Argument(help="Service name.")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Stream new lines (one replica).")] = False,
    tail: Annotated[Optional[int], typer.Option("--tail", min=0, help="Lines per container from the end (default: all).")] = None,
    previous: Annotated[bool, typer.Option("-p", "--previous", help="Logs of the previous, crashed container.")] = False,
    replica: Annotated[Optional[str], typer.Option("--replica", help="Only this pod.")] = None,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Print the replicas' logs (Azure Machine Learning's service.get_logs()), init steps included."""
    kube = connect(namespace, context, kubeconfig)
    kube.get(INFERENCE_SERVICE_KIND, name)
    pods = kube.list_pods(f"{LABEL_SERVICE}={name}")
    if replica:
        pods = [p for p in pods if p["metadata"]["name"] == replica]
        if not pods:
            raise NotFound(f"service {name} has no replica {replica!r} (bereit service show {name})")
    if not pods:
        raise NotFound(f"service {name} has no replicas yet: `bereit service show {name}` tells why")
    if follow:
        pod = pods[0]
        container = _containers(pod)[-1][0]
        for chunk in kube.follow_pod_log(pod["metadata"]["name"], container, tail):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        return
    several = len(pods) > 1 or len(_containers(pods[0])) > 1
    for pod in pods:
        for container, started in _containers(pod):
            if not started and not previous:
                continue
            try:
                text = kube.pod_log(pod["metadata"]["name"], container, tail, previous)
            except (CliError, ValueError) as error:
                output.warn(f"{pod['metadata']['name']}/{container}: {error}")
                continue
            for line in (text or "").splitlines():
                prefix = f"[{pod['metadata']['name']}/{container}] " if several else ""
                sys.stdout.write(f"{prefix}{line}\n")
    sys.stdout.flush()


def _containers(pod: dict[str, Any]) -> list[tuple[str, bool]]:
    """Init containers then containers, with whether each has started (has logs)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    started = {
        s["name"]
        for s in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        if (s.get("state") or {}).get("running") or (s.get("state") or {}).get("terminated") or s.get("restartCount")
    }
    names = [c["name"] for c in spec.get("initContainers") or []] + [c["name"] for c in spec.get("containers") or []]
    return [(n, n in started) for n in names]


def read_keys(kube, service: dict[str, Any]) -> dict[str, str]:
    name = service["metadata"]["name"]
    try:
        secret = kube.read_secret(deployment.keys_secret_name(service))
    except NotFound:
        raise NotFound(
            f"service {name} has no keys yet: the operator creates them once the service can be "
            f"deployed (bereit service show {name})"
        ) from None
    data = secret.get("data") or {}
    return {key: base64.b64decode(data[key]).decode() for key in (PRIMARY_KEY, SECONDARY_KEY) if key in data}


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Service name.")],
    data: Annotated[Optional[str], typer.Option("-d", "--input-data", help="Request body: JSON text, @FILE, or - for stdin.")] = None,
    content_type: Annotated[str, typer.Option("--content-type", help="Content-Type of the body.")] = "application/json",
    via: Annotated[Via, typer.Option("--via", help="auto: the scoring URI if reachable from here, else a port-forward.", case_sensitive=False)] = Via.AUTO,
    timeout: Timeout = 120,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Score: POST the data to the service with its key (Azure Machine Learning's service.run(input_data))."""
    body = _body(data)
    if content_type == "application/json":
        try:
            json.loads(body)
        except ValueError as error:
            raise BadInput(f"-d is not valid JSON ({error}); pass --content-type for other data") from None
    kube = connect(namespace, context, kubeconfig)
    service = kube.get(INFERENCE_SERVICE_KIND, name)
    headers = {"Content-Type": content_type}
    auth = (service.get("spec") or {}).get("auth") or {}
    if auth.get("tokenAuth"):
        headers["Authorization"] = f"Bearer {_token(read_keys(kube, service), service)}"
    elif auth.get("keyAuth") is not False:
        keys = read_keys(kube, service)
        if PRIMARY_KEY not in keys:
            raise CliError(f"the keys Secret of service {name} has no {PRIMARY_KEY}")
        headers["Authorization"] = f"Bearer {keys[PRIMARY_KEY]}"
    response = score_client.score(kube, service, body, headers, via, timeout)
    text = response.body.decode("utf-8", errors="replace")
    if response.status >= 400:
        request_id = response.headers.get("x-request-id") or response.headers.get("x-ms-request-id")
        detail = f" (request id {request_id})" if request_id else ""
        raise CliError(f"service {name} answered {response.status} {response.reason}{detail}: {text.strip()[:2000]}")
    try:
        output.document(json.loads(text), Format.JSON)
    except ValueError:
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))


def _body(data: str | None) -> bytes:
    if data is None:
        raise BadInput("give the request body with -d JSON, -d @FILE or -d - (stdin)")
    if data == "-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        path = Path(data[1:])
        if not path.is_file():
            raise BadInput(f"-d {data}: file {path} does not exist")
        return path.read_bytes()
    return data.encode()


def _token(keys: dict[str, str], service: dict[str, Any]) -> str:
    try:
        from bereit.server import (
            tokens,  # the server's signer, so both sides agree on the format
        )
    except ImportError:
        raise CliError("this bereit has no token support (bereit.server.tokens is missing)") from None
    return tokens.mint(keys[PRIMARY_KEY], service["metadata"]["name"])


@app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="Service name.")],
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Print a short-lived access token for a service with token auth (Azure Machine Learning's get_token())."""
    kube = connect(namespace, context, kubeconfig)
    service = kube.get(INFERENCE_SERVICE_KIND, name)
    if not ((service.get("spec") or {}).get("auth") or {}).get("tokenAuth"):
        raise BadInput(f"service {name} does not use token auth; use its keys (bereit service keys {name})")
    value = _token(read_keys(kube, service), service)
    if fmt == Format.TABLE:
        sys.stdout.write(value + "\n")
    else:
        output.document({"accessToken": value}, fmt)


@app.command("keys")
def keys(
    name: Annotated[str, typer.Argument(help="Service name.")],
    set_primary: Annotated[Optional[str], typer.Option("--set-primary", help="Replace the primary key with this one.")] = None,
    set_secondary: Annotated[Optional[str], typer.Option("--set-secondary", help="Replace the secondary key with this one.")] = None,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Print the service's primary and secondary keys (Azure Machine Learning's get_keys())."""
    kube = connect(namespace, context, kubeconfig)
    service = kube.get(INFERENCE_SERVICE_KIND, name)
    new = {k: v for k, v in {PRIMARY_KEY: set_primary, SECONDARY_KEY: set_secondary}.items() if v is not None}
    for key, value in new.items():
        if len(value) < 16:
            raise BadInput(f"--set-{key.removesuffix('Key')}: a key must be at least 16 characters long")
    if new:
        deployment.set_keys(kube, service, new, timeout=0)
    _print_keys(read_keys(kube, service), fmt)


def _print_keys(values: dict[str, str], fmt: Format) -> None:
    if fmt == Format.TABLE:
        output.table(["key", "value"], [(k, v) for k, v in values.items()])
    else:
        output.document(values, fmt)


@app.command("regen-key")
def regen_key(
    name: Annotated[str, typer.Argument(help="Service name.")],
    which: Annotated[str, typer.Argument(help="primary or secondary.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the new key is in place and print it.")] = True,
    timeout: Timeout = 60,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Regenerate one key; the other keeps working (Azure Machine Learning's regen_key)."""
    choice = which.lower().removesuffix("key").removesuffix("-")
    if choice not in ("primary", "secondary"):
        raise BadInput(f"{which!r}: say primary or secondary")
    key = PRIMARY_KEY if choice == "primary" else SECONDARY_KEY
    annotation = REGENERATE_PRIMARY_KEY_ANNOTATION if choice == "primary" else REGENERATE_SECONDARY_KEY_ANNOTATION
    kube = connect(namespace, context, kubeconfig)
    service = kube.get(INFERENCE_SERVICE_KIND, name)
    before = read_keys(kube, service).get(key)
    # Any new value asks for a new key; time plus randomness never repeats.
    request = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"
    kube.merge_patch(INFERENCE_SERVICE_KIND, name, {"metadata": {"annotations": {annotation: request}}})
    if not wait:
        output.info(f"Asked for a new {choice} key of service {name}")
        return
    deadline = time.monotonic() + timeout
    with step(f"Regenerating the {choice} key of service {name}"):
        while True:
            current = read_keys(kube, service)
            if current.get(key) and current.get(key) != before:
                break
            if time.monotonic() >= deadline:
                raise TimedOut(f"the {choice} key of service {name} did not change within {timeout} s: is the operator running?")
            time.sleep(POLL_SECONDS)
    output.info(f"Regenerated the {choice} key of service {name}")
    _print_keys(current, fmt)


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="Service name.")],
    models: Annotated[Optional[list[str]], typer.Option("-m", "--model", metavar="NAME[:VERSION]", help="NAME:VERSION to serve instead (NAME alone: latest), repeatable.")] = None,
    inference_config: Annotated[Optional[Path], typer.Option("--ic", "--inference-config-file", "-ic", help="New Azure ML inference config (code, packages, image).")] = None,
    deployment_config: Annotated[Optional[Path], typer.Option("--dc", "--deploy-config-file", "-dc", help="New Azure ML deployment config settings.")] = None,
    wait: Wait = True,
    timeout: Timeout = 600,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Serve other model versions or settings; the URL and the keys stay (Azure Machine Learning's service.update)."""
    if not (models or inference_config or deployment_config):
        raise BadInput("say what to change: -m NAME:VERSION, --ic FILE and/or --dc FILE")
    refs = [parse_model_ref(m) for m in models or []]
    plan = deployment.Plan(name=name, spec={})
    if inference_config is not None:
        translation = translate_inference_config(inference_config)
        plan.spec = merge(translation.spec, {"inference": {"code": {"inline": inline_code(translation.code, str(inference_config))}}})
        plan.origins.update(translation.origins)
        plan.warnings.extend(translation.warnings)
    if deployment_config is not None:
        plan = deployment.with_deployment_config(plan, deployment_config)
    for warning in plan.warnings:
        output.warn(warning)
    kube = connect(namespace or plan.namespace, context, kubeconfig)
    current = kube.get(INFERENCE_SERVICE_KIND, name)
    if refs:
        plan.spec["models"] = [{"name": r.name, "version": r.version} for r in model_versions.pin(kube, refs)]
    if inference_config is not None:
        # New code replaces the old whole: a merge would keep a configMap next to inline.
        current["spec"]["inference"] = {}
    desired = deployment.Plan(
        name=name,
        spec=merge(current.get("spec") or {}, plan.spec),
        origins=plan.origins,
        metadata={k: v for k, v in current["metadata"].items() if k in ("labels", "annotations")},
    )
    body = desired.manifest(kube.namespace)
    if body["spec"] == (current.get("spec") or {}) and not plan.keys:
        output.info(f"service {name} already has these settings")
    else:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        current = kube.replace(INFERENCE_SERVICE_KIND, body)
        if plan.keys:
            deployment.set_keys(kube, current, plan.keys, timeout)
        output.info(f"Updated service {name}")
    if wait:
        current = wait_for_service(kube, name, timeout, generation=current["metadata"].get("generation"))
    if fmt == Format.TABLE:
        summary(current)
    else:
        output.objects([current], fmt, HEADERS, row, single=True)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Service name.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until it is gone.")] = True,
    timeout: Timeout = 120,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Delete a service and everything it owns (Azure Machine Learning's service.delete())."""
    kube = connect(namespace, context, kubeconfig)
    kube.delete(INFERENCE_SERVICE_KIND, name)
    if wait:
        wait_until_gone(kube, INFERENCE_SERVICE_KIND, name, timeout)
    output.info(f"Deleted service {name}")

