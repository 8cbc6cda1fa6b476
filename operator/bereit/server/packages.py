"""Extra Python packages an InferenceService asks for, installed once at start-up.

The set of requirements is named by a hash, so every replica (and every service) that asks for
the same set reuses one folder under the cache directory. A half-finished install never becomes
visible: pip writes into a private folder that is renamed into place only when it succeeded, so
replicas sharing a cache volume can race without harm.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from bereit.constants import ENV_EXTRA_PACKAGES, ENV_PACKAGE_CACHE_DIR, SCRATCH_DIR

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = f"{SCRATCH_DIR}/bereit-packages"
# Written last into a finished package folder; its absence means "install again".
COMPLETE_MARKER = ".bereit-complete"
PIP_TIMEOUT_S = 900
# Lines of pip's output kept in an error: enough for the resolver's complaint, not the whole log.
ERROR_TAIL_LINES = 25


class PackageInstallError(RuntimeError):
    """The extra packages could not be installed; the message says which and why."""


def parse_requirements(requirements: str | Iterable[str]) -> list[str]:
    """Checked, de-duplicated, sorted PEP 508 requirement strings.

    Only requirements are accepted, never pip options: `--index-url …` or `-r file` in a
    resource spec would let it change where code comes from.
    """
    items = requirements.split() if isinstance(requirements, str) else list(requirements)
    checked: set[str] = set()
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item.startswith("-"):
            raise PackageInstallError(
                f"{ENV_EXTRA_PACKAGES}: {item!r} is a pip option; only package requirements "
                "such as 'lightgbm==4.5.0' or 'pandas>=2' are allowed"
            )
        try:
            checked.add(str(Requirement(item)))
        except InvalidRequirement as exc:
            raise PackageInstallError(f"{ENV_EXTRA_PACKAGES}: {item!r} is not a valid requirement: {exc}") from exc
    return sorted(checked)


def package_set_id(requirements: list[str]) -> str:
    """Folder name for a requirement set. The interpreter is part of it: wheels are built for one."""
    interpreter = f"{sys.implementation.cache_tag}-{sys.platform}"
    digest = hashlib.sha256("\n".join([interpreter, *requirements]).encode()).hexdigest()
    return digest[:20]


def ensure_extra_packages(
    requirements: str | Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path | None:
    """Install the requirements once into the cache and make them importable in this process.

    Both arguments default to the environment (BEREIT_EXTRA_PACKAGES, space-separated, and
    BEREIT_PACKAGE_CACHE_DIR). Returns the folder put on `sys.path` (also prepended to
    PYTHONPATH for child processes), or None when there is nothing to install. Raises
    PackageInstallError with pip's own explanation when the install fails.
    """
    if requirements is None:
        requirements = os.environ.get(ENV_EXTRA_PACKAGES, "")
    wanted = parse_requirements(requirements)
    if not wanted:
        return None
    cache = Path(cache_dir or os.environ.get(ENV_PACKAGE_CACHE_DIR) or DEFAULT_CACHE_DIR)
    target = cache / package_set_id(wanted)
    if (target / COMPLETE_MARKER).is_file():
        log.info("extra packages already installed", extra={"packages": wanted, "path": str(target)})
    else:
        _install(wanted, cache, target)
    _activate(target)
    return target


def _install(requirements: list[str], cache: Path, target: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
    except OSError as exc:
        raise PackageInstallError(
            f"{ENV_PACKAGE_CACHE_DIR}: cannot write to {cache}: {exc.strerror}; "
            "mount a writable volume there"
        ) from exc
    log.info("installing extra packages", extra={"packages": requirements, "path": str(target)})
    command = [
        sys.executable, "-m", "pip", "install",
        "--target", str(staging),
        "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
        # The package-set folder is the cache; pip's own would land on a read-only HOME.
        "--no-cache-dir",
        *requirements,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackageInstallError(
            f"installing extra packages {' '.join(requirements)} took longer than {PIP_TIMEOUT_S} s"
        ) from exc
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-ERROR_TAIL_LINES:])
        raise PackageInstallError(
            f"pip could not install the extra packages {' '.join(requirements)} "
            f"(exit code {result.returncode}):\n{tail}"
        )
    (staging / COMPLETE_MARKER).write_text("\n".join(requirements) + "\n")
    try:
        staging.rename(target)
    except OSError:
        # Another replica finished the same set first; its copy is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / COMPLETE_MARKER).is_file():
            raise PackageInstallError(f"could not move the installed packages into {target}") from None


def _activate(target: Path) -> None:
    """Put the folder first on the import path, so a pinned version wins over the image's own."""
    folder = str(target)
    site.addsitedir(folder)  # also runs the folder's .pth files
    sys.path.remove(folder)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    existing = os.environ.get("PYTHONPATH")
    if folder not in (existing or "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, existing) if p)
