"""Extra packages: installed once per requirement set, importable, clear errors.

pip runs for real, against a local folder of wheels made by the test (no network).
"""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

import pytest

from bereit.server import packages
from bereit.server.packages import COMPLETE_MARKER, PackageInstallError, ensure_extra_packages, parse_requirements


def make_wheel(folder: Path, name: str, version: str, body: str) -> Path:
    """A minimal pure-Python wheel: enough for pip to install it."""
    dist = f"{name}-{version}.dist-info"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", body)
        archive.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist}/RECORD", "")
    return wheel


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A local package index (a folder of wheels); pip is told not to look anywhere else."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


@pytest.fixture
def clean_imports(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    yield
    for name in [m for m in sys.modules if m.startswith("bereit_extra_")]:
        del sys.modules[name]


def test_packages_are_installed_once_and_importable(index, tmp_path, clean_imports, monkeypatch):
    make_wheel(index, "bereit_extra_one", "1.0", "ANSWER = 42\n")
    cache = tmp_path / "cache"

    folder = ensure_extra_packages("bereit_extra_one==1.0", cache)

    assert folder is not None and (folder / COMPLETE_MARKER).is_file()
    assert sys.path[0] == str(folder)
    assert str(folder) in (packages.os.environ["PYTHONPATH"])
    assert importlib.import_module("bereit_extra_one").ANSWER == 42

    # A second start finds the set in the cache: pip is not run again.
    monkeypatch.setattr(packages.subprocess, "run", lambda *a, **k: pytest.fail("pip ran again"))
    assert ensure_extra_packages("bereit_extra_one==1.0", cache) == folder


def test_same_set_in_another_order_shares_one_folder_and_another_set_does_not(index, tmp_path, clean_imports):
    make_wheel(index, "bereit_extra_a", "1.0", "")
    make_wheel(index, "bereit_extra_b", "1.0", "")
    cache = tmp_path / "cache"

    first = ensure_extra_packages(["bereit_extra_a", "bereit_extra_b"], cache)
    second = ensure_extra_packages("bereit_extra_b  bereit_extra_a bereit_extra_a", cache)
    third = ensure_extra_packages("bereit_extra_a", cache)

    assert first == second
    assert third != first
    assert sorted(p.name for p in cache.iterdir()) == sorted({first.name, third.name})


def test_settings_come_from_the_environment(index, tmp_path, clean_imports, monkeypatch):
    make_wheel(index, "bereit_extra_env", "2.0", "VERSION = '2.0'\n")
    monkeypatch.setenv("BEREIT_EXTRA_PACKAGES", "bereit_extra_env>=2")
    monkeypatch.setenv("BEREIT_PACKAGE_CACHE_DIR", str(tmp_path / "from-env"))

    folder = ensure_extra_packages()

    assert folder.parent == tmp_path / "from-env"
    assert importlib.import_module("bereit_extra_env").VERSION == "2.0"


def test_nothing_to_install_returns_none(monkeypatch):
    monkeypatch.delenv("BEREIT_EXTRA_PACKAGES", raising=False)
    assert ensure_extra_packages() is None
    assert ensure_extra_packages("   ") is None


def test_a_package_pip_cannot_find_fails_with_pips_reason_and_leaves_no_folder(index, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(PackageInstallError) as error:
        ensure_extra_packages("bereit-extra-missing==9.9", cache)
    message = str(error.value)
    assert "bereit-extra-missing==9.9" in message
    assert "No matching distribution" in message
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("requirement", "complaint"),
    [
        ("--index-url=https://example.invalid/simple", "is a pip option"),
        ("-rrequirements.txt", "is a pip option"),
        ("numpy>=<1", "is not a valid requirement"),
        ("not a/package", "is not a valid requirement"),
    ],
)
def test_bad_requirements_are_refused_naming_the_variable(requirement, complaint):
    with pytest.raises(PackageInstallError, match=complaint) as error:
        parse_requirements([requirement])
    assert "BEREIT_EXTRA_PACKAGES" in str(error.value)


def test_an_unwritable_cache_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PackageInstallError, match="BEREIT_PACKAGE_CACHE_DIR: cannot write to"):
        ensure_extra_packages("anything", blocker / "cache")
