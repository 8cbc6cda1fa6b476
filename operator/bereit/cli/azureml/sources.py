"""Azure Machine Learning's sourceDirectory as the service's inline code (stored by the operator in a ConfigMap)."""

from __future__ import annotations

import os
from pathlib import Path

import pathspec

from bereit.api.inference_service import MAX_INLINE_CODE_BYTES
from bereit.cli.errors import BadInput

# Never part of the code: caches and version control, as Azure ML's snapshot leaves them out too.
ALWAYS_IGNORED = ["__pycache__/", "*.py[cod]", ".git/", ".ipynb_checkpoints/", ".DS_Store", ".venv/", ".mypy_cache/", ".pytest_cache/"]
# Azure ML honours .amlignore, else .gitignore; so does bereit.
IGNORE_FILES = (".amlignore", ".gitignore")
ALTERNATIVE = (
    "put large files into the model (bereit model register), or build an image that holds the "
    "code (bereit package ... -t IMAGE) and deploy it with environment.image and code.imagePath"
)


def read_code(folder: Path, entry_script: str, source: str) -> dict[str, str]:
    """Relative POSIX path → text of every file under `folder`, checked to fit a ConfigMap."""
    if not folder.is_dir():
        raise BadInput(f"{source}: sourceDirectory {folder} is not a folder")
    ignored = _ignore_spec(folder)
    files: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for root, directories, names in os.walk(folder):
        relative_root = Path(root).relative_to(folder)
        directories[:] = sorted(
            d for d in directories if not ignored.match_file(_posix(relative_root / d) + "/")
        )
        for name in sorted(names):
            relative = _posix(relative_root / name)
            if ignored.match_file(relative):
                continue
            path = Path(root) / name
            if not path.is_file():
                continue
            data = path.read_bytes()
            try:
                files[relative] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(
                    f"{source}: {path} is not UTF-8 text; inline code holds text files only: "
                    f"list it in {folder / '.amlignore'}, or {ALTERNATIVE}"
                ) from None
            sizes[relative] = len(relative) + len(data)
    if entry_script not in files:
        raise BadInput(
            f"{source}: entryScript {entry_script!r} is not in sourceDirectory {folder}"
            + (" (it is ignored by .amlignore/.gitignore)" if (folder / entry_script).is_file() else "")
        )
    check_size(sizes, f"{source}: sourceDirectory {folder}")
    return files


def read_single(script: Path, source: str) -> dict[str, str]:
    """Without a sourceDirectory Azure Machine Learning deploys the entry script alone."""
    try:
        text = script.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{source}: entryScript {script} is not UTF-8 text") from None
    check_size({script.name: len(script.name) + len(text.encode())}, f"{source}: entryScript {script}")
    return {script.name: text}


def check_size(sizes: dict[str, int], what: str) -> None:
    total = sum(sizes.values())
    if total <= MAX_INLINE_CODE_BYTES:
        return
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
    listing = ", ".join(f"{name} ({size // 1024} KiB)" for name, size in largest)
    raise BadInput(
        f"{what} holds {total // 1024} KiB of files, more than the {MAX_INLINE_CODE_BYTES // 1024} KiB "
        f"a ConfigMap can carry (largest: {listing}): {ALTERNATIVE}"
    )


def _ignore_spec(folder: Path) -> pathspec.GitIgnoreSpec:
    lines = list(ALWAYS_IGNORED)
    for name in IGNORE_FILES:
        path = folder / name
        if path.is_file():
            lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
            break
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _posix(path: Path) -> str:
    return path.as_posix().removeprefix("./")
