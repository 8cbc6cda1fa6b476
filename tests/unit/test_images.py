"""bereit.cli.images.builder without Docker: what each image installs, how contexts are packed, the Dockerfiles' rules."""

from __future__ import annotations

import io
import re
import tarfile

import pytest
from bereit.cli.images import builder as images
from bereit.constants import RUNTIME_UID

DOCKERFILES = {flavor: images.REPO / "images" / flavor / "Dockerfile" for flavor in images.FLAVORS}


def names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower() for line in requirements}


def test_runtime_installs_the_score_py_libraries_and_not_the_operators():
    runtime = names(images.requirements_for("runtime"))
    assert {"numpy", "scikit-learn", "joblib", "pandas", "inference-schema", "pydantic", "packaging"} <= runtime
    assert not {"kopf", "kubernetes", "docker"} & runtime


def test_operator_installs_kopf_and_no_model_libraries():
    operator = names(images.requirements_for("operator"))
    assert {"kopf", "kubernetes", "pydantic", "pydantic-settings"} <= operator
    assert not {"numpy", "scikit-learn", "pandas", "docker"} & operator


def test_context_is_reproducible_and_leaves_out_bytecode(tmp_path):
    source = tmp_path / "pkg"
    (source / "__pycache__").mkdir(parents=True)
    (source / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (source / "mod.py").write_text("x = 1\n")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o700)
    (source / "secret-mode.txt").write_text("x")
    (source / "secret-mode.txt").chmod(0o600)

    first = images._context([(source, "pkg")], extra={"Dockerfile": b"FROM scratch\n"}).getvalue()
    (source / "mod.py").touch()  # a new mtime changes nothing
    second = images._context([(source, "pkg")], extra={"Dockerfile": b"FROM scratch\n"}).getvalue()
    assert first == second

    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        members = {member.name: member for member in archive.getmembers()}
    assert set(members) == {"pkg", "pkg/mod.py", "pkg/run.sh", "pkg/secret-mode.txt", "Dockerfile"}
    # Readable by the non-root user the containers run as.
    assert members["pkg/secret-mode.txt"].mode == 0o644
    assert members["pkg/run.sh"].mode == 0o755
    assert all(member.uid == 0 and member.mtime == 0 for member in members.values() if member.name != "Dockerfile")


@pytest.mark.parametrize("flavor", images.FLAVORS)
def test_dockerfiles_run_as_the_runtime_uid_and_take_the_base_as_an_argument(flavor):
    text = DOCKERFILES[flavor].read_text()
    assert f"USER {RUNTIME_UID}:{RUNTIME_UID}" in text
    assert f"'bereit:x:{RUNTIME_UID}:{RUNTIME_UID}:" in text
    assert f"ARG BASE_IMAGE={images.DEFAULT_BASE_IMAGE}" in text
    assert text.count("FROM ${BASE_IMAGE}") == 2  # the deps stage and the final image


@pytest.mark.parametrize("flavor", images.FLAVORS)
def test_final_image_takes_only_the_installed_folders_from_the_build_stages(flavor):
    final_stage = DOCKERFILES[flavor].read_text().rsplit("\nFROM ", 1)[1]
    copies = [line for line in final_stage.splitlines() if line.startswith(("COPY", "ADD"))]
    assert copies == [
        "COPY --from=deps /opt/bereit /opt/bereit",
        "COPY --from=app /opt/bereit-app /opt/bereit-app",
    ]


def test_model_dockerfile_keeps_files_at_model_and_runs_as_the_runtime_uid():
    assert "COPY model/ /model/" in images.MODEL_DOCKERFILE
    assert f"USER {RUNTIME_UID}:{RUNTIME_UID}" in images.MODEL_DOCKERFILE


def test_a_missing_pip_cert_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CERT", str(tmp_path / "nowhere.pem"))
    with pytest.raises(images.ImageBuildError, match="nowhere.pem .* is not a file"):
        images._cert_path(None)
    assert images._cert_path("") is None


def test_unknown_flavor_is_refused():
    with pytest.raises(ValueError, match="operator, runtime"):
        images.build_image("gpu")
