"""bereit package — Azure Machine Learning's Model.package: model, code and packages in one Docker image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bereit import __version__
from bereit.cli import model_versions, output
from bereit.cli.azureml.config import (
    translate_deployment_config,
    translate_inference_config,
)
from bereit.cli.errors import BadInput, CliError
from bereit.cli.files import read_text, resolve
from bereit.cli.images import builder as images
from bereit.cli.images.model import check_path
from bereit.cli.images.package import PackageSpec, build, code_files
from bereit.cli.manifests import parse_model_ref
from bereit.cli.options import Context, Kubeconfig, Namespace, connect
from bereit.cli.progress import step
from bereit.constants import (
    ENV_MAX_CONCURRENT_REQUESTS,
    ENV_MAX_QUEUE_WAIT_MS,
    ENV_SCORING_TIMEOUT_MS,
    SERVER_PORT,
)

SCORING_ENV = {
    "timeoutMs": ENV_SCORING_TIMEOUT_MS,
    "maxConcurrentRequestsPerReplica": ENV_MAX_CONCURRENT_REQUESTS,
    "maxQueueWaitMs": ENV_MAX_QUEUE_WAIT_MS,
}


def package(
    model: Annotated[str, typer.Option("-m", "--model", help="NAME:VERSION of a registered model (NAME alone: latest).")],
    inference_config: Annotated[Path, typer.Option("--ic", "--inference-config-file", "-ic", help="Azure ML inference config: entry script, source folder, conda file, extraDockerfileSteps.")],
    tag: Annotated[str, typer.Option("-t", "--tag", help="Name of the image to build, e.g. registry.example.com/mnist:1.")],
    model_path: Annotated[Optional[Path], typer.Option("--model-path", "-p", help="Use these local files as the model instead of the registered source (no cluster needed).")] = None,
    deployment_config: Annotated[Optional[Path], typer.Option("--dc", "--deploy-config-file", "-dc", help="Azure ML deployment config: scoring timeout, concurrency and queue wait become defaults.")] = None,
    runtime_image: Annotated[Optional[str], typer.Option("--runtime-image", help=f"Image with bereit-server to build on (default: bereit/runtime:{__version__}, or the config's baseImage).")] = None,
    push: Annotated[bool, typer.Option("--push", help="docker push the image afterwards.")] = False,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Build a Docker image holding the model, the scoring code and its packages.

    `docker run -p 8080:8080 IMAGE` serves it without auth; deployed as an InferenceService
    image (environment.image IMAGE, code.imagePath /var/azureml-app/code) the service's own
    settings apply.
    """
    ref = parse_model_ref(model)
    translation = translate_inference_config(inference_config)
    for warning in translation.warnings:
        output.warn(warning)
    environment = translation.spec.get("inference", {}).get("environment", {})
    base = runtime_image or environment.get("image") or f"{images.RUNTIME_IMAGE}:{__version__}"
    env = {v["name"]: v["value"] for v in environment.get("env", [])}
    if deployment_config is not None:
        deployment = translate_deployment_config(deployment_config)
        for warning in deployment.warnings:
            output.warn(warning)
        for key, variable in SCORING_ENV.items():
            value = deployment.spec.get("scoring", {}).get(key)
            if value is not None:
                env[variable] = str(value)
    extra_steps = None
    if translation.extra_dockerfile_steps:
        steps = resolve(translation.extra_dockerfile_steps, [inference_config.resolve().parent, Path.cwd()], "file", "extraDockerfileSteps", inference_config)
        extra_steps = read_text(steps, "extraDockerfileSteps file")

    code = translation.code
    spec = PackageSpec(
        runtime_image=base,
        entry_script=code.entry_script,
        code_files=code_files(code.folder, code.script, code.extra_files),
        model_name=ref.name,
        model_version=ref.version or 1,
        requirements=environment.get("pythonPackages", []),
        env=env,
        extra_steps=extra_steps,
    )
    if model_path is not None:
        check_path(model_path)
        spec.model_path = model_path
    else:
        kube = connect(namespace, context, kubeconfig)
        found = model_versions.find(kube, ref)
        spec.model_version = model_versions.version_of(found)
        uri = found["spec"]["source"]["uri"]
        if not uri.startswith("oci://"):
            raise BadInput(
                f"model {ref.name}:{spec.model_version} comes from {uri}; bereit package copies models from "
                "images (oci://): pass its files with --model-path"
            )
        spec.model_image = uri.removeprefix("oci://")

    with step(f"Building {tag}") as update:
        image_id = build(spec, tag, update)
    output.info(f"Built {tag} ({image_id[7:19]}): model {ref.name}:{spec.model_version}, entry script {spec.entry_script}")
    if push:
        import subprocess

        with step(f"Pushing {tag}"):
            result = subprocess.run(["docker", "push", tag], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CliError(f"could not push {tag}: {(result.stderr or result.stdout).strip().splitlines()[-1]}")
    output.info(f"Run it: docker run --rm -p {SERVER_PORT}:{SERVER_PORT} {tag}")
