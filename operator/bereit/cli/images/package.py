"""`bereit package`: one image with the model, the scoring code and its packages (Azure Machine Learning's
Model.package), built on the serving runtime. `docker run -p 8080:8080 IMAGE` serves it; as an
InferenceService image (environment.image, code.imagePath) the operator's settings override
the defaults baked in here.

Packages are fetched as wheels on this machine first (bereit.cli.images.builder.fetch_wheels), so the build
itself needs no network and no credentials end up in a layer.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bereit import constants as c
from bereit.cli.errors import CliError

PACKAGES_DIR = "/opt/bereit-packages"


@dataclass
class PackageSpec:
    runtime_image: str
    entry_script: str  # relative to the code folder
    code_files: dict[str, Path]  # name in the code folder → file on this machine
    model_name: str
    model_version: int
    model_image: str | None = None  # oci source: its /model folder is copied
    model_path: Path | None = None  # a local file or folder instead
    requirements: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    extra_steps: str | None = None

    @property
    def model_dir(self) -> str:
        return f"{c.MODELS_DIR}/{self.model_name}/{self.model_version}"


def dockerfile(spec: PackageSpec) -> str:
    """The Dockerfile for a package; pure, so it is tested without docker."""
    lines: list[str] = []
    if spec.model_image:
        lines += [f"FROM {spec.model_image} AS model"]
    if spec.requirements:
        requirements = " ".join(f'"{r}"' for r in spec.requirements)
        lines += [
            f"FROM {spec.runtime_image} AS packages",
            "USER 0",
            "COPY wheels/ /tmp/wheels/",
            f"RUN python3 -m pip install --no-cache-dir --disable-pip-version-check --no-index "
            f"--find-links /tmp/wheels --target {PACKAGES_DIR} {requirements}",
        ]
    lines += [f"FROM {spec.runtime_image}"]
    if spec.requirements:
        lines += [f"COPY --from=packages {PACKAGES_DIR} {PACKAGES_DIR}", f"ENV PYTHONPATH={PACKAGES_DIR}"]
    lines += [f"COPY code/ {c.CODE_DIR}/"]
    if spec.model_image:
        lines += [f"COPY --from=model /model/ {spec.model_dir}/"]
    else:
        lines += [f"COPY model/ {spec.model_dir}/"]
    if spec.extra_steps:
        # Azure ML runs extraDockerfileSteps as root; the server still runs as the runtime's user.
        lines += ["USER 0", spec.extra_steps.strip(), f"USER {c.RUNTIME_UID}:{c.RUNTIME_UID}"]
    env = {
        c.ENV_ENTRY_SCRIPT: f"{c.CODE_DIR}/{spec.entry_script}",
        c.ENV_AZUREML_MODEL_DIR: spec.model_dir,
        c.ENV_MODEL_DIR: spec.model_dir,
        # `docker run` on a laptop has no keys; a deployed service sets its own auth mode.
        c.ENV_AUTH_MODE: "none",
        **spec.env,
    }
    lines += ["ENV " + " \\\n    ".join(f"{k}={_quote(v)}" for k, v in env.items())]
    lines += [f"EXPOSE {c.SERVER_PORT}", 'CMD ["bereit-server"]']
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def context(spec: PackageSpec, wheels: Path | None) -> io.BytesIO:
    """The build context: Dockerfile, code/, model/ (local models), wheels/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _add_bytes(archive, "Dockerfile", dockerfile(spec).encode())
        for name, path in sorted(spec.code_files.items()):
            archive.add(str(path), f"code/{name}", filter=_normalize)
        if spec.model_path is not None:
            archive.add(str(spec.model_path), f"model/{spec.model_path.name}", filter=_normalize)
        if wheels is not None:
            for wheel in sorted(wheels.glob("*.whl")):
                archive.add(str(wheel), f"wheels/{wheel.name}", filter=_normalize)
    buffer.seek(0)
    return buffer


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if "__pycache__" in info.name or info.name.endswith(".pyc"):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def build(spec: PackageSpec, tag: str, progress: Callable[[str], None]) -> str:
    """Build the package image; returns its id."""
    import docker
    from docker.errors import APIError, DockerException

    from bereit.cli.images import builder as images

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as error:
        raise CliError(f"cannot reach docker to build the package ({error}): is dockerd running?") from None
    for image in filter(None, [spec.runtime_image, spec.model_image]):
        try:
            client.images.get(image)
        except DockerException:
            raise CliError(
                f"image {image} is not on this machine: build it (python -m bereit.cli.images build) or pull it"
            ) from None
    wheels = None
    if spec.requirements:
        try:
            wheels = images.fetch_wheels(spec.requirements, spec.runtime_image, client=client, progress=progress)
        except images.ImageBuildError as error:
            raise CliError(f"could not fetch the packages {' '.join(spec.requirements)}: {error}") from None
    image_id = None
    tail: list[str] = []
    try:
        for chunk in client.api.build(
            fileobj=context(spec, wheels), custom_context=True, tag=tag, rm=True, forcerm=True, pull=False, decode=True
        ):
            if "error" in chunk:
                raise CliError(f"building {tag} failed: {chunk['error'].strip()}\n" + "".join(tail[-15:]))
            text = chunk.get("stream", "")
            if text:
                tail.append(text)
                if text.startswith("Step "):
                    progress(text.strip()[:120])
            if "ID" in (chunk.get("aux") or {}):
                image_id = chunk["aux"]["ID"]
    except APIError as error:
        raise CliError(f"building {tag} failed: {error.explanation}") from None
    if image_id is None:
        raise CliError(f"building {tag} returned no image:\n" + "".join(tail[-15:]))
    return image_id


def code_files(folder: Path | None, script: Path | None, extra: dict[str, Path]) -> dict[str, Path]:
    """Every file of the source folder (any size, binary too: an image has no ConfigMap limit)."""
    files: dict[str, Path] = {}
    if folder is not None:
        for root, directories, names in os.walk(folder):
            directories[:] = [d for d in directories if d not in ("__pycache__", ".git")]
            for name in names:
                path = Path(root) / name
                if path.is_file():
                    files[path.relative_to(folder).as_posix()] = path
    elif script is not None:
        files[script.name] = script
    files.update(extra)
    return files
