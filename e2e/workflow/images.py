"""The images the workflow runs: base image, bereit's operator and runtime, the model images.

bereit's images get a second tag made from their image id (`0.1.0-1a2b3c4d5e6f`), and the chart
is installed with that tag: a rebuilt image changes the operator's Deployment and the
services' pods, an unchanged one changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .commands import CLUSTER_SCRIPTS, stream
from .progress import WorkflowError

LOCAL_BASE_IMAGE = "bereit/python-base:bookworm"
# Where a machine with a registry at hand builds from (e2e/kind/run.sh sets the same default).
PUBLIC_BASE_IMAGE = "python:3.11-slim-bookworm"
CACHE = Path(os.environ.get("BEREIT_CACHE", Path.home() / ".cache" / "bereit"))
Show = Callable[[str], None]
CONTENT_TAG = re.compile(r".+-[0-9a-f]{12}")


@dataclass(frozen=True)
class BereitImages:
    operator: str  # repository:tag, the content tag
    runtime: str

    @staticmethod
    def split(reference: str) -> tuple[str, str]:
        repository, _, tag = reference.rpartition(":")
        return repository, tag


def local_base_image(show: Show) -> str:
    """bereit/python-base:bookworm, made by e2e/cluster/base-image.sh (cached after the first time)."""
    stream(["bash", str(CLUSTER_SCRIPTS / "base-image.sh")], show=show, timeout=1800, what="base-image.sh")
    return LOCAL_BASE_IMAGE


def build_bereit_images(base_image: str, show: Show) -> BereitImages:
    from bereit import __version__
    from bereit.cli.images.builder import (
        OPERATOR_IMAGE,
        RUNTIME_IMAGE,
        ImageBuildError,
        build_image,
    )

    tagged = {}
    try:
        for flavor, repository in (("operator", OPERATOR_IMAGE), ("runtime", RUNTIME_IMAGE)):
            built = build_image(flavor, tag=f"{repository}:{__version__}", base_image=base_image, progress=show)
            content_tag = f"{__version__}-{built.id.removeprefix('sha256:')[:12]}"
            _docker_tag(built.id, repository, content_tag)
            tagged[flavor] = f"{repository}:{content_tag}"
            show(f"{built} -> {tagged[flavor]}")
    except ImageBuildError as error:
        raise WorkflowError(str(error)) from None
    built = BereitImages(operator=tagged["operator"], runtime=tagged["runtime"])
    forget_older_builds(built, show)
    return built


def forget_older_builds(current: BereitImages, show: Show) -> None:
    """Untag this machine's earlier content tags of the two images, so `docker images` does not
    fill up with one line per build; other tags are left alone."""
    import docker

    client = docker.from_env()
    for reference in (current.operator, current.runtime):
        repository, tag = BereitImages.split(reference)
        version = tag.rsplit("-", 1)[0]
        for image in client.images.list(name=repository):
            for old in image.tags:
                old_repository, old_tag = BereitImages.split(old)
                if old_repository == repository and old != reference and CONTENT_TAG.fullmatch(old_tag) \
                        and old_tag.startswith(version + "-"):
                    try:
                        client.images.remove(old, noprune=False)
                        show(f"removed the earlier build {old}")
                    except docker.errors.APIError as error:  # still used by a container: keep it
                        show(f"kept {old}: {error.explanation}")


def build_model_image(folder: Path, tag: str, base_image: str, show: Show) -> str:
    from bereit.cli.images.builder import ImageBuildError
    from bereit.cli.images.builder import build_model_image as build

    try:
        built = build(folder, tag, base_image=base_image, progress=show)
    except ImageBuildError as error:
        raise WorkflowError(str(error)) from None
    show(str(built))
    return tag


def _docker_tag(image_id: str, repository: str, tag: str) -> None:
    import docker

    docker.from_env().images.get(image_id).tag(repository, tag)


def image_id(reference: str) -> str:
    import docker

    return docker.from_env().images.get(reference).id


# --- getting images onto the nodes --------------------------------------------------------

LOADED_STAMP = CACHE / "e2e-loaded-images.json"


def load_into_local_node(references: Sequence[str], cluster_dir: Path, show: Show) -> None:
    """docker save | ctr import (e2e/cluster/load-image.sh), skipping images the node has already.

    A stamp remembers which image id each tag had when it was loaded; the node's own image list
    confirms it is still there (a purged cluster has none).
    """
    stamps = _read_stamps()
    on_node = _node_images(cluster_dir)
    wanted = [r for r in references if stamps.get(_stamp_key(cluster_dir, r)) != image_id(r)
              or _containerd_name(r) not in on_node]
    for reference in references:
        if reference not in wanted:
            show(f"{reference}: on the node already")
    if not wanted:
        return
    env = dict(os.environ, BEREIT_CLUSTER_DIR=str(cluster_dir))
    stream(["bash", str(CLUSTER_SCRIPTS / "load-image.sh"), *wanted], show=show, env=env, timeout=1800,
           what="load-image.sh")
    for reference in wanted:
        stamps[_stamp_key(cluster_dir, reference)] = image_id(reference)
    LOADED_STAMP.parent.mkdir(parents=True, exist_ok=True)
    LOADED_STAMP.write_text(json.dumps(stamps, indent=1, sort_keys=True))


def load_into_kind(references: Sequence[str], cluster: str, show: Show) -> None:
    stream(["kind", "load", "docker-image", "--name", cluster, *references], show=show, timeout=1800,
           what="kind load docker-image")


def _read_stamps() -> dict[str, str]:
    try:
        return json.loads(LOADED_STAMP.read_text())
    except (OSError, ValueError):
        return {}


def _stamp_key(cluster_dir: Path, reference: str) -> str:
    return f"{cluster_dir.resolve()}|{reference}"


def _containerd_name(reference: str) -> str:
    """How containerd names a docker reference: docker.io/ in front of a bare name."""
    first = reference.split("/", 1)[0]
    if "/" in reference and ("." in first or ":" in first or first == "localhost"):
        return reference
    return f"docker.io/{reference if '/' in reference else 'library/' + reference}"


def _node_images(cluster_dir: Path) -> set[str]:
    env = dict(os.environ, BEREIT_CLUSTER_DIR=str(cluster_dir))
    proc = subprocess.run(
        ["bash", "-c", '. "$0"/lib.sh && node_ctr images ls -q', str(CLUSTER_SCRIPTS)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    if proc.returncode != 0:
        raise WorkflowError(f"cannot list the node's images: {proc.stderr.strip()[-500:]}")
    return set(proc.stdout.split())
