"""Build bereit's container images with the Docker Engine API (the `docker` package).

    python -m bereit.cli.images build [--base-image IMAGE] [--tag TAG] [--only operator|runtime]
    python -m bereit.cli.images model FOLDER --tag IMAGE [--base-image IMAGE]

Builds need no network inside `docker build`: the Python wheels are fetched first by a
throw-away container of the base image (so they suit its Python and platform) into a cache
keyed by base image and requirements. A CA bundle for pip (PIP_CERT, or --pip-cert) is
bind-mounted read-only into that container only; it never lands in an image layer.

Longer than other modules on purpose: the three image kinds share the wheel cache, the
build-context packing and the error handling kept here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from bereit import __version__
from bereit.constants import RUNTIME_UID

log = logging.getLogger(__name__)

OPERATOR_IMAGE = "bereit/operator"
RUNTIME_IMAGE = "bereit/runtime"
# Users build on the public Python image; here a local Debian base is made by
# e2e/cluster/base-image.sh (bereit/python-base:bookworm) because nothing can be pulled.
DEFAULT_BASE_IMAGE = "python:3.11-slim"
FLAVORS = ("operator", "runtime")
# A Model's files as an image (Model.spec.source.uri oci://IMAGE): the files at /model and a
# shell with cp for the replica's init step (`cp -R /model/. DEST`). Kept here rather than in
# images/ so `bereit model register` works from an installed package, without a checkout.
MODEL_DOCKERFILE = f"""\
ARG BASE_IMAGE={DEFAULT_BASE_IMAGE}
FROM ${{BASE_IMAGE}}
COPY model/ /model/
USER {RUNTIME_UID}:{RUNTIME_UID}
CMD ["ls", "-lR", "/model"]
"""

REPO = Path(__file__).resolve().parents[4]
CACHE = Path(os.environ.get("BEREIT_CACHE", Path.home() / ".cache" / "bereit"))
CERT_IN_CONTAINER = "/run/secrets/pip-cert.pem"
# Build backend for the bereit wheel itself, fetched with the rest so the build is offline.
BUILD_REQUIREMENTS = ["setuptools>=68", "wheel"]
# pip settings worth passing on to the wheel-fetching container (mirrors, proxies, timeouts).
PASSED_ENV = (
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)
Progress = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A build step failed; the message carries the step's own output."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    id: str
    size_bytes: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.tag} ({self.size_bytes / 2**20:.0f} MiB, {self.id[7:19]}, {self.seconds:.1f} s)"


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    if client is not None:
        return client
    try:
        found = docker.from_env(timeout=600)
        found.ping()
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"cannot reach the Docker daemon ({exc}); is dockerd running?") from exc
    return found


def _ensure_base(client: docker.DockerClient, base_image: str, progress: Progress) -> str:
    """The base image's id, pulling it when it is not there (a public image, for users)."""
    try:
        return client.images.get(base_image).id
    except docker.errors.ImageNotFound:
        progress(f"pulling {base_image}")
        try:
            return client.images.pull(base_image).id
        except docker.errors.APIError as exc:
            raise ImageBuildError(
                f"base image {base_image} is not here and cannot be pulled: {exc.explanation}"
            ) from exc


def _cert_path(pip_cert: str | os.PathLike[str] | None) -> Path | None:
    chosen = pip_cert if pip_cert is not None else os.environ.get("PIP_CERT")
    if not chosen:
        return None
    path = Path(chosen)
    if not path.is_file():
        raise ImageBuildError(f"pip CA bundle {path} (PIP_CERT or --pip-cert) is not a file")
    return path


def requirements_for(flavor: str) -> list[str]:
    """What the flavor's image installs, by the same script its Dockerfile runs."""
    script = REPO / "images" / "requirements.py"
    if not (REPO / "pyproject.toml").is_file() or not script.is_file():
        raise ImageBuildError(f"building the {flavor} image needs a bereit source checkout; {REPO} is not one")
    spec = importlib.util.spec_from_file_location("bereit_image_requirements", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.requirements(REPO / "pyproject.toml", REPO / "images" / flavor)


def fetch_wheels(
    requirements: list[str],
    base_image: str,
    *,
    pip_cert: str | os.PathLike[str] | None = None,
    client: docker.DockerClient | None = None,
    progress: Progress = log.info,
) -> Path:
    """Wheels for the requirements, built by the base image's own pip; cached by base and list.

    The container gets the CA bundle as a read-only bind mount and writes wheels to a bind
    mounted folder: nothing of it ends up in an image.
    """
    client = _client(client)
    base_id = _ensure_base(client, base_image, progress)
    wanted = sorted(set(requirements)) + BUILD_REQUIREMENTS
    key = hashlib.sha256("\n".join([base_id, *wanted]).encode()).hexdigest()[:20]
    folder = CACHE / "wheelhouse" / key
    if (folder / ".complete").is_file():
        progress(f"wheels cached in {folder}")
        return folder
    progress(f"fetching {len(wanted)} requirements as wheels with {base_image}'s pip")
    staging = folder.with_name(f".{key}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "requirements.txt").write_text("\n".join(wanted) + "\n")
    pip_cache = CACHE / "pip-cache"
    pip_cache.mkdir(parents=True, exist_ok=True)
    volumes = {
        str(staging): {"bind": "/wheels", "mode": "rw"},
        str(pip_cache): {"bind": "/pip-cache", "mode": "rw"},
    }
    environment = {"HOME": "/tmp", "PIP_CACHE_DIR": "/pip-cache", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    environment |= {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    cert = _cert_path(pip_cert)
    if cert is not None:
        volumes[str(cert.resolve())] = {"bind": CERT_IN_CONTAINER, "mode": "ro"}
        environment["PIP_CERT"] = CERT_IN_CONTAINER
    command = ["python3", "-m", "pip", "wheel", "--wheel-dir", "/wheels", "-r", "/wheels/requirements.txt"]
    container = client.containers.run(
        base_image,
        command,
        volumes=volumes,
        environment=environment,
        # Files on the host belong to whoever runs the build, not to root.
        user=f"{os.getuid()}:{os.getgid()}",
        detach=True,
    )
    try:
        status = container.wait(timeout=3600)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    if status.get("StatusCode") != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise ImageBuildError(f"fetching wheels failed (exit {status.get('StatusCode')}):\n{tail}")
    (staging / "requirements.txt").unlink()
    (staging / ".complete").write_text("\n".join(wanted) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    progress(f"{sum(1 for _ in folder.glob('*.whl'))} wheels in {folder}")
    return folder


def _add(archive: tarfile.TarFile, source: Path, name: str) -> None:
    """Add a file or folder with fixed owner, times and modes: equal content, equal layer."""
    paths = [source] if source.is_file() else sorted(p for p in [source, *source.rglob("*")] if _wanted(p))
    for path in paths:
        arcname = name if path == source else f"{name}/{path.relative_to(source).as_posix()}"
        info = archive.gettarinfo(str(path), arcname)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644
        if path.is_file():
            with path.open("rb") as handle:
                archive.addfile(info, handle)
        else:
            archive.addfile(info)


def _wanted(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix != ".pyc" and not path.is_symlink()


def _context(entries: Iterable[tuple[Path, str]], extra: dict[str, bytes] | None = None) -> io.BytesIO:
    """A build context as a tar: files and folders (missing ones skipped), plus generated files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for source, name in entries:
            if source.exists():
                _add(archive, source, name)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _build(
    client: docker.DockerClient,
    context: io.BytesIO,
    dockerfile: str,
    tag: str,
    buildargs: dict[str, str],
    labels: dict[str, str],
    progress: Progress,
) -> BuiltImage:
    started = time.monotonic()
    image_id = None
    output: list[str] = []
    try:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            dockerfile=dockerfile,
            tag=tag,
            buildargs=buildargs,
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                tail = "".join(output[-20:])
                raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}\n{tail}")
            text = chunk.get("stream", "")
            if text:
                output.append(text)
                if text.startswith("Step "):
                    progress(f"{tag}: {text.strip()[:160]}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {tag} failed: {exc.explanation}") from exc
    if image_id is None:
        raise ImageBuildError(f"building {tag} returned no image id:\n{''.join(output[-20:])}")
    image = client.images.get(image_id)
    return BuiltImage(tag=tag, id=image.id, size_bytes=image.attrs["Size"], seconds=time.monotonic() - started)


def _labels(title: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": __version__,
        "org.opencontainers.image.licenses": "Apache-2.0",
    }


def build_image(
    flavor: str,
    *,
    tag: str | None = None,
    base_image: str = DEFAULT_BASE_IMAGE,
    pip_cert: str | os.PathLike[str] | None = None,
    client: docker.DockerClient | None = None,
    progress: Progress = log.info,
) -> BuiltImage:
    """Build the operator or the runtime image from this checkout."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
    client = _client(client)
    wheels = fetch_wheels(requirements_for(flavor), base_image, pip_cert=pip_cert, client=client, progress=progress)
    repository = OPERATOR_IMAGE if flavor == "operator" else RUNTIME_IMAGE
    context = _context(
        [
            (REPO / "pyproject.toml", "pyproject.toml"),
            (REPO / "README.md", "README.md"),
            (REPO / "operator" / "bereit", "operator/bereit"),
            (REPO / "images" / "requirements.py", "images/requirements.py"),
            (REPO / "images" / flavor, f"images/{flavor}"),
            (wheels, "wheelhouse"),
        ]
    )
    return _build(
        client,
        context,
        dockerfile=f"images/{flavor}/Dockerfile",
        tag=tag or f"{repository}:{__version__}",
        buildargs={"BASE_IMAGE": base_image},
        labels=_labels(f"bereit {flavor}"),
        progress=progress,
    )


def build_model_image(
    folder: str | os.PathLike[str],
    tag: str,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    labels: dict[str, str] | None = None,
    client: docker.DockerClient | None = None,
    progress: Progress = log.info,
) -> BuiltImage:
    """An image whose /model holds the folder's files (or the one file), readable by any user.

    Use the runtime's base image: the node then shares every layer but the model's own.
    """
    source = Path(folder)
    if not source.exists():
        raise ImageBuildError(f"model path {source} does not exist")
    if source.is_dir() and not any(p.is_file() for p in source.rglob("*")):
        raise ImageBuildError(f"model folder {source} has no files")
    client = _client(client)
    _ensure_base(client, base_image, progress)
    name = "model" if source.is_dir() else f"model/{source.name}"
    return _build(
        client,
        _context([(source, name)], extra={"Dockerfile": MODEL_DOCKERFILE.encode()}),
        dockerfile="Dockerfile",
        tag=tag,
        buildargs={"BASE_IMAGE": base_image},
        labels=_labels("bereit model") | (labels or {}),
        progress=progress,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bereit.cli.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the operator and runtime images")
    build.add_argument("--only", choices=FLAVORS, help="build one of the two")
    build.add_argument("--tag", default=__version__, help="image tag (default: the package version)")
    model = commands.add_parser("model", help="build a model image from a folder or file")
    model.add_argument("folder", type=Path)
    model.add_argument("--tag", required=True, help="image reference, e.g. bereit-models/digits:1")
    for sub in (build, model):
        sub.add_argument("--base-image", default=os.environ.get("BEREIT_BASE_IMAGE", DEFAULT_BASE_IMAGE),
                         help=f"image to build on (default: $BEREIT_BASE_IMAGE or {DEFAULT_BASE_IMAGE})")
    build.add_argument("--pip-cert", help="CA bundle for pip inside the build (default: $PIP_CERT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "model":
            print(build_model_image(args.folder, args.tag, base_image=args.base_image))
            return 0
        for flavor in [args.only] if args.only else FLAVORS:
            repository = OPERATOR_IMAGE if flavor == "operator" else RUNTIME_IMAGE
            built = build_image(flavor, tag=f"{repository}:{args.tag}", base_image=args.base_image,
                                pip_cert=args.pip_cert)
            print(built)
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


