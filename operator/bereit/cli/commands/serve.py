"""bereit serve — Azure Machine Learning's local deployment (LocalWebservice, azmlinfsrv): bereit-server on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bereit.cli import output
from bereit.cli.azureml.config import (
    translate_deployment_config,
    translate_inference_config,
)
from bereit.cli.errors import BadInput

# Deployment-config settings that mean the same to the local server, as its flags.
SCORING_FLAGS = {
    "timeoutMs": "--scoring-timeout-ms",
    "maxConcurrentRequestsPerReplica": "--max-concurrent-requests",
    "maxQueueWaitMs": "--max-queue-wait-ms",
}


def serve(
    ctx: typer.Context,
    inference_config: Annotated[Optional[Path], typer.Option("--ic", "--inference-config-file", "-ic", help="Azure ML inference config: the entry script (and its source folder) to serve.")] = None,
    deployment_config: Annotated[Optional[Path], typer.Option("--dc", "--deploy-config-file", "-dc", help="Azure ML deployment config: scoring timeout, concurrency, queue wait.")] = None,
    model_dir: Annotated[Optional[Path], typer.Option("--model-dir", "-p", help="Folder AZUREML_MODEL_DIR points to (the registered model's files).")] = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (Azure Machine Learning's LocalWebservice uses 8890).")] = 8080,
    auth_mode: Annotated[str, typer.Option("--auth-mode", help="none (default here), key (with --keys-dir) or token.")] = "none",
) -> None:
    """Serve an entry script on this machine for debugging, as the service would in a replica.

    Takes the same Azure ML files as `bereit deploy`; any other flag goes to bereit-server
    unchanged, including azmlinfsrv's (--entry_script, --model_dir, --worker_count).
    """
    argv: list[str] = ["--port", str(port), "--auth-mode", auth_mode, "--log-format", "text"]
    if inference_config is not None:
        translation = translate_inference_config(inference_config)
        for warning in translation.warnings:
            output.warn(warning)
        code = translation.code
        script = code.folder / code.entry_script if code.folder is not None else code.script
        argv += ["--entry-script", str(script)]
        environment = translation.spec.get("inference", {}).get("environment", {})
        packages = environment.get("pythonPackages")
        if packages:
            output.warn(f"bereit serve uses this machine's Python: install the packages yourself (pip install {' '.join(packages)})")
        if environment.get("image"):
            output.warn(f"{inference_config}: the image {environment['image']} is not used: bereit serve runs on this machine")
    if deployment_config is not None:
        translation = translate_deployment_config(deployment_config)
        for warning in translation.warnings:
            output.warn(warning)
        for key, flag in SCORING_FLAGS.items():
            value = translation.spec.get("scoring", {}).get(key)
            if value is not None:
                argv += [flag, str(value)]
    if model_dir is not None:
        if not model_dir.exists():
            raise BadInput(f"--model-dir {model_dir} does not exist")
        argv += ["--model-dir", str(model_dir.resolve())]
    # Flags bereit-server knows itself come last, so they win over what the files say.
    argv += list(ctx.args)
    from bereit.server.main import main as server_main

    raise typer.Exit(server_main(argv))
