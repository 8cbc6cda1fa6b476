"""bereit deploy — Azure Machine Learning's `az ml model deploy`, from Azure ML's files or bereit's own manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bereit.cli import deployment, model_versions, output
from bereit.cli.commands.service import HEADERS, row, summary
from bereit.cli.errors import AlreadyExists, BadInput
from bereit.cli.manifests import parse_model_ref
from bereit.cli.options import Context, Kubeconfig, Namespace, Timeout, Wait, connect
from bereit.cli.output import Format
from bereit.cli.progress import wait_for_service
from bereit.constants import INFERENCE_SERVICE_KIND


def deploy(
    name: Annotated[Optional[str], typer.Option("-n", "--name", help="Service name (a DNS label, at most 50 characters).")] = None,
    models: Annotated[Optional[list[str]], typer.Option("-m", "--model", metavar="NAME[:VERSION]", help="NAME:VERSION to serve (NAME alone: its latest version), repeatable.")] = None,
    inference_config: Annotated[Optional[Path], typer.Option("--ic", "--inference-config-file", "-ic", help="Azure ML inferenceconfig.json/.yml: entry script, source folder, conda file, image.")] = None,
    deployment_config: Annotated[Optional[Path], typer.Option("--dc", "--deploy-config-file", "-dc", help="Azure ML deploymentconfig.json/.yml: resources, scaling, auth, limits, probes.")] = None,
    manifest: Annotated[Optional[Path], typer.Option("-f", "--filename", help="bereit's own format: an InferenceService manifest (as --dry-run -o yaml writes it).")] = None,
    compute_target: Annotated[Optional[str], typer.Option("--ct", "--compute-target", "-ct", help="ComputeTarget to run on (default: the namespace's only one).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the service if it exists (URL and keys stay).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resources instead of creating them (for a GitOps repository). Needs no cluster.")] = False,
    wait: Wait = True,
    timeout: Timeout = 600,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    fmt: Annotated[Optional[Format], typer.Option("-o", "--output", help="table, json, yaml or name (--dry-run: yaml by default).", case_sensitive=False)] = None,
) -> None:
    """Deploy models as a scoring web service.

    Reads Azure ML's inference and deployment configuration files as Azure Machine Learning writes them
    (or -f with bereit's own manifest); every key either takes effect or is named in a
    warning. With --wait (the default) it follows the service until it is Healthy and
    prints the scoring URI; a failure prints the reason and exits 1.
    """
    if manifest is not None and inference_config is not None:
        raise BadInput("give either -f MANIFEST or --ic/--dc files, not both")
    if manifest is not None:
        plan = deployment.from_manifest(manifest, name)
        if deployment_config is not None:
            plan = deployment.with_deployment_config(plan, deployment_config)
    else:
        if not name:
            raise BadInput("name the service with -n NAME")
        plan = deployment.from_azure(name, inference_config, deployment_config)
    refs = [parse_model_ref(m) for m in models or []]
    deployment.set_models(plan, refs)
    for warning in plan.warnings:
        output.warn(warning)

    if dry_run:
        plan.spec["computeTarget"] = deployment.choose_compute_target(None, compute_target, plan)
        documents = [plan.manifest(namespace or plan.namespace)]
        if plan.registry is not None:
            output.warn(
                f"registry credentials are not written into manifests: create the Secret yourself with "
                f"`kubectl create secret docker-registry {deployment.registry_secret_name(plan.name)} "
                f"--docker-server {plan.registry.address} --docker-username USER --docker-password PASSWORD`"
            )
        if plan.keys:
            output.warn(
                "keys from the deployment config are not written into manifests: set them after applying "
                f"with `bereit service keys {plan.name} --set-primary KEY --set-secondary KEY`"
            )
        output.documents(documents, fmt or Format.YAML)
        return

    kube = connect(namespace or plan.namespace, context, kubeconfig)
    existing = kube.find(INFERENCE_SERVICE_KIND, plan.name)
    if existing is not None and not overwrite:
        raise AlreadyExists(
            f"service {plan.name!r} already exists in namespace {kube.namespace!r}: change it with "
            f"`bereit service update {plan.name} …`, or deploy with --overwrite"
        )
    if refs:
        deployment.set_models(plan, model_versions.pin(kube, refs))
    plan.spec["computeTarget"] = deployment.choose_compute_target(kube, compute_target, plan)
    body = plan.manifest(kube.namespace)
    service = deployment.create(kube, plan, body, existing, key_timeout=timeout)
    output.info(f"{'Replaced' if existing else 'Created'} service {plan.name} in namespace {kube.namespace}")
    if wait:
        service = wait_for_service(kube, plan.name, timeout, generation=service["metadata"].get("generation"))
    format_ = fmt or Format.TABLE
    if format_ == Format.TABLE:
        summary(service)
    else:
        output.objects([service], format_, HEADERS, row, single=True)
