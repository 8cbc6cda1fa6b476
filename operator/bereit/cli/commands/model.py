"""bereit model register | list | show | delete — Azure Machine Learning's `az ml model …`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from bereit.api import Model
from bereit.cli import model_versions, output
from bereit.cli.errors import AlreadyExists, BadInput, CliError
from bereit.cli.images import distribute
from bereit.cli.images import model as modelimage
from bereit.cli.images.distribute import Load
from bereit.cli.manifests import parse_model_ref, parse_pairs, validate
from bereit.cli.options import Context, Kubeconfig, Namespace, Output, Timeout, connect
from bereit.cli.output import Format
from bereit.cli.progress import step, wait_until_gone
from bereit.constants import MODEL_KIND

app = typer.Typer(help="Register and manage model versions.", no_args_is_help=True)

URI = re.compile(r"^(https|pvc|oci)://")
# Registrations racing for the same modelName each retry with the next free version.
REGISTER_ATTEMPTS = 8
HEADERS = ["name", "version", "object", "source", "ready", "used by", "age"]


def _row(model: dict[str, Any]) -> list[Any]:
    status = model.get("status") or {}
    return [
        model_versions.model_name_of(model),
        model_versions.version_of(model),
        model["metadata"]["name"],
        (model.get("spec") or {}).get("source", {}).get("uri"),
        model_versions.ready(model),
        ", ".join(status.get("usedBy") or []) or "",
        output.age(model["metadata"].get("creationTimestamp")),
    ]


@app.command("register")
def register(
    name: Annotated[str, typer.Option("-n", "--name", help="Model name; versions are numbered per name.")],
    path: Annotated[str, typer.Option("-p", "--path", "--asset-path", help="Model file or folder, or a URI: https://…, pvc://CLAIM/PATH, oci://IMAGE.")],
    tags: Annotated[Optional[list[str]], typer.Option("--tag", "--tags", metavar="KEY=VALUE", help="KEY=VALUE, repeatable.")] = None,
    properties: Annotated[Optional[list[str]], typer.Option("--property", "--properties", metavar="KEY=VALUE", help="KEY=VALUE, repeatable.")] = None,
    description: Annotated[Optional[str], typer.Option("-d", "--description")] = None,
    framework: Annotated[Optional[str], typer.Option("--model-framework", "--framework", help="e.g. ScikitLearn, Onnx.")] = None,
    framework_version: Annotated[Optional[str], typer.Option("--model-framework-version", "--framework-version")] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Expected SHA-256 of an https:// file.")] = None,
    load: Annotated[Load, typer.Option("--load", help="How the cluster gets a locally built model image (see bereit model register --help).", case_sensitive=False)] = Load.AUTO,
    image_registry: Annotated[Optional[str], typer.Option("--registry", envvar="BEREIT_REGISTRY", help="Push the model image to this registry (HOST[/PATH]).")] = None,
    base_image: Annotated[Optional[str], typer.Option("--base-image", help="Image the model image builds on (default: $BEREIT_BASE_IMAGE, else python:3.11-slim).")] = None,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Register a file or folder as the next version of a model.

    A local path becomes an image whose /model folder holds the files, made available to the
    cluster: pushed to --registry, or with --load kind|local loaded into a kind cluster or
    bereit's local cluster (auto: a registry if given, else kind or local from the context
    name). A URI is registered as it is. The version is the highest existing one plus 1.
    """
    ref = parse_model_ref(name, "-n")
    if ref.version is not None:
        raise BadInput(f"-n {name!r}: give the name only; versions are numbered automatically")
    tag_map = parse_pairs(tags, "--tag")
    property_map = parse_pairs(properties, "--property")
    local = None if URI.match(path) else Path(path).expanduser()
    if local is not None:
        modelimage.check_path(local)
    # Check everything that can be checked before the slow build: the fields, then the cluster.
    _model_body(ref.name, 1, "oci://placeholder", tag_map, property_map, description, framework, framework_version, sha256)
    kube = connect(namespace, context, kubeconfig)
    existing = model_versions.versions(kube, ref.name)

    if local is None:
        uri = path
    else:
        how = distribute.choose(load, image_registry, kube.context_name)
        slug = model_versions.object_name(ref.name, 1).removesuffix("-v1")
        with step(f"Building the image for {local}") as update:
            image = modelimage.image_name(slug, modelimage.digest(local))
            modelimage.build(local, image, base_image or modelimage.default_base_image(), update)
        with step(f"Making {image} available to the cluster ({how})"):
            uri = "oci://" + distribute.make_available(image, how, image_registry, kube.context_name)

    for _ in range(REGISTER_ATTEMPTS):
        version = max((model_versions.version_of(m) for m in existing), default=0) + 1
        body = _model_body(ref.name, version, uri, tag_map, property_map, description, framework, framework_version, sha256)
        try:
            created = kube.create(MODEL_KIND, body)
            break
        except AlreadyExists:
            existing = model_versions.versions(kube, ref.name)  # another registration took it
    else:
        raise CliError(f"could not find a free version of model {ref.name!r} after {REGISTER_ATTEMPTS} attempts; try again")
    if fmt == Format.TABLE:
        output.info(f"Registered model {ref.name} version {version} as {created['metadata']['name']}")
    output.objects([created], fmt, HEADERS, _row, single=True)


def _model_body(
    name: str,
    version: int,
    uri: str,
    tags: dict[str, str],
    properties: dict[str, str],
    description: str | None,
    framework: str | None,
    framework_version: str | None,
    sha256: str | None,
) -> dict[str, Any]:
    source: dict[str, Any] = {"uri": uri}
    if sha256:
        source["sha256"] = sha256.lower()
    spec = {
        "modelName": name,
        "version": version,
        "source": source,
        "framework": framework,
        "frameworkVersion": framework_version,
        "description": description,
        "tags": tags,
        "properties": properties,
    }
    body = {"metadata": {"name": model_versions.object_name(name, version)}, "spec": {k: v for k, v in spec.items() if v is not None}}
    return validate(Model, body).to_api()


@app.command("list")
def list_models(
    name: Annotated[Optional[str], typer.Option("-n", "--name", help="Only this model's versions.")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", metavar="KEY[=VALUE]", help="Only models with KEY=VALUE (or KEY), repeatable.")] = None,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """List registered models and their versions."""
    kube = connect(namespace, context, kubeconfig)
    models = kube.list(MODEL_KIND)
    if name:
        models = model_versions.versions(kube, name, models)
    for wanted in tag or []:
        key, equals, value = wanted.partition("=")
        models = [
            m for m in models
            if key in ((m.get("spec") or {}).get("tags") or {})
            and (not equals or m["spec"]["tags"][key] == value)
        ]
    models.sort(key=lambda m: (model_versions.model_name_of(m), model_versions.version_of(m)))
    output.objects(models, fmt, HEADERS, _row)


@app.command("show")
def show(
    model: Annotated[str, typer.Argument(help="NAME (latest version) or NAME:VERSION.")],
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Output = Format.TABLE,
) -> None:
    """Show one model version: source, tags, properties and the services that use it."""
    kube = connect(namespace, context, kubeconfig)
    found = model_versions.find(kube, parse_model_ref(model, "MODEL"))
    if fmt != Format.TABLE:
        output.objects([found], fmt, HEADERS, _row, single=True)
        return
    spec = found.get("spec") or {}
    status = found.get("status") or {}
    ready = output.condition(found)
    rows = [
        ("Name", model_versions.model_name_of(found)),
        ("Version", model_versions.version_of(found)),
        ("Object", found["metadata"]["name"]),
        ("Namespace", found["metadata"].get("namespace")),
        ("Source", spec.get("source", {}).get("uri")),
        ("Framework", " ".join(filter(None, [spec.get("framework"), spec.get("frameworkVersion")])) or None),
        ("Description", spec.get("description")),
        ("Tags", _pairs(spec.get("tags"))),
        ("Properties", _pairs(spec.get("properties"))),
        ("Used by", ", ".join(status.get("usedBy") or []) or "nobody"),
        ("Ready", f"{ready.get('status', 'Unknown')} {ready.get('reason', '')} {ready.get('message', '')}".strip()),
        ("Created", found["metadata"].get("creationTimestamp")),
    ]
    output.table(["field", "value"], rows)


def _pairs(mapping: dict[str, str] | None) -> str | None:
    return ", ".join(f"{k}={v}" for k, v in (mapping or {}).items()) or None


@app.command("delete")
def delete(
    model: Annotated[str, typer.Argument(help="NAME:VERSION to delete.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the object is gone.")] = True,
    timeout: Timeout = 120,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Delete one model version (refused while a service uses it)."""
    ref = parse_model_ref(model, "MODEL")
    if ref.version is None:
        raise BadInput(f"MODEL {model!r}: name the version to delete, e.g. {ref.name}:1 (bereit model list -n {ref.name})")
    kube = connect(namespace, context, kubeconfig)
    found = model_versions.find(kube, ref)
    users = (found.get("status") or {}).get("usedBy") or []
    if users:
        raise CliError(
            f"model {ref} is used by service(s) {', '.join(users)}: move them to another version "
            "(bereit service update NAME -m MODEL:VERSION) or delete them first"
        )
    kube.delete(MODEL_KIND, found["metadata"]["name"])
    if wait:
        wait_until_gone(kube, MODEL_KIND, found["metadata"]["name"], timeout)
    output.info(f"Deleted model {ref} ({found['metadata']['name']})")

