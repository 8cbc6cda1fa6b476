"""Docker for the image tests: a reachable daemon and a base image that is already here.

Nothing is pulled: the base is $BEREIT_BASE_IMAGE, else the local Debian base that
e2e/cluster/base-image.sh makes, else python:3.11-slim if present. Otherwise the tests skip.
"""

from __future__ import annotations

import os

import docker
import docker.errors
import pytest
from bereit.cli.images import builder as images

LOCAL_BASE = "bereit/python-base:bookworm"


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        found = docker.from_env(timeout=600)
        found.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker daemon ({exc}); the image tests need one")
    return found


@pytest.fixture(scope="session")
def base_image(client: docker.DockerClient) -> str:
    candidates = [os.environ.get("BEREIT_BASE_IMAGE"), LOCAL_BASE, images.DEFAULT_BASE_IMAGE]
    for candidate in filter(None, candidates):
        try:
            client.images.get(candidate)
            return candidate
        except docker.errors.ImageNotFound:
            continue
    pytest.skip(f"no base image here ({', '.join(filter(None, candidates))}); run e2e/cluster/base-image.sh")


@pytest.fixture(scope="session")
def runtime_image(client, base_image) -> images.BuiltImage:
    return images.build_image("runtime", tag="bereit/runtime:test", base_image=base_image, client=client)


@pytest.fixture(scope="session")
def operator_image(client, base_image) -> images.BuiltImage:
    return images.build_image("operator", tag="bereit/operator:test", base_image=base_image, client=client)
