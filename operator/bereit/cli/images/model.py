"""A local model file or folder as an OCI image whose /model folder holds it (source oci://…).

The layout follows Azure Machine Learning: a registered file lands at AZUREML_MODEL_DIR/<file>, a folder
at AZUREML_MODEL_DIR/<folder>/… (Azure's Keras tutorial loads `$AZUREML_MODEL_DIR/models/model.h5`).
The tag is a digest of the content, so registering the same files twice builds nothing new
and a retried registration (a version taken meanwhile) reuses the image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bereit.cli.errors import BadInput, CliError

REPOSITORY_PREFIX = "bereit-models"


def digest(path: Path) -> str:
    """SHA-256 over the relative names and contents of the files, in a fixed order."""
    hasher = hashlib.sha256()
    for relative, file in _files(path):
        hasher.update(relative.encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(chunk)
        hasher.update(b"\0")
    return hasher.hexdigest()


def image_name(slug: str, content_digest: str) -> str:
    return f"{REPOSITORY_PREFIX}/{slug}:{content_digest[:16]}"


def check_path(path: Path) -> None:
    if not path.exists():
        raise BadInput(f"model path {path} does not exist")
    if path.is_dir() and not any(True for _ in _files(path)):
        raise BadInput(f"model folder {path} holds no files")


def build(path: Path, image: str, base_image: str, progress: Callable[[str], None]) -> None:
    """Build the model image with bereit.cli.images.builder (nothing to do when docker has that tag already)."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    from bereit.cli.images import builder as images

    try:
        engine = docker.from_env()
        engine.images.get(image)
        return
    except ImageNotFound:
        pass
    except DockerException as error:
        raise CliError(
            f"cannot reach docker to build the model image ({error}): start docker, or register "
            "a URI (https:// or pvc://) instead of a local path"
        ) from None
    with staged(path) as folder:
        try:
            images.build_model_image(folder, image, base_image=base_image, client=engine, progress=progress)
        except images.ImageBuildError as error:
            raise CliError(f"could not build model image {image}: {error}") from None


def default_base_image() -> str:
    """The runtime's base image, so nodes share every layer but the model's own."""
    from bereit.cli.images import builder as images

    return os.environ.get("BEREIT_BASE_IMAGE") or images.DEFAULT_BASE_IMAGE


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """A folder holding `path` under its own name (hard links where possible, else copies)."""
    with tempfile.TemporaryDirectory(prefix="bereit-model-") as temporary:
        root = Path(temporary)
        target = root / path.name
        if path.is_file():
            _link_or_copy(path, target)
        else:
            for relative, file in _files(path):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(file, destination)
        yield root


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _files(path: Path) -> Iterator[tuple[str, Path]]:
    if path.is_file():
        yield path.name, path
        return
    for root, directories, names in os.walk(path):
        directories.sort()
        for name in sorted(names):
            file = Path(root) / name
            if file.is_file():
                yield file.relative_to(path).as_posix(), file
