"""Reading the user's files: config files (JSON or YAML) and paths named inside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from bereit.cli.errors import BadInput


def load_mapping(path: Path, what: str) -> dict[str, Any]:
    """A JSON or YAML file whose top level is a mapping; BadInput naming the file otherwise."""
    text = read_text(path, what)
    data = parse(text, path, what)
    if data is None:
        raise BadInput(f"{what} {path} is empty: it should hold a JSON or YAML mapping")
    if not isinstance(data, dict):
        raise BadInput(
            f"{what} {path} holds a {type(data).__name__}, not a mapping of keys to values"
        )
    return data


def read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise BadInput(f"{what} {path} does not exist: check the path (relative paths start at {Path.cwd()})")
    if path.is_dir():
        raise BadInput(f"{what} {path} is a folder: name the file itself")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{what} {path} is not UTF-8 text") from None
    except OSError as error:
        raise BadInput(f"{what} {path} cannot be read: {error.strerror}") from None


def parse(text: str, path: Path, what: str) -> Any:
    """JSON for .json files (tabs allowed, as JSON allows), YAML for everything else."""
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as error:
            raise BadInput(
                f"{what} {path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise BadInput(f"{what} {path} is not valid YAML or JSON: {problem}{where}") from None


def load_documents(path: Path, what: str) -> list[dict[str, Any]]:
    """Every document of a YAML stream (or one JSON document, or a kind: List)."""
    text = read_text(path, what)
    if path.suffix.lower() == ".json":
        documents = [parse(text, path, what)]
    else:
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise BadInput(f"{what} {path} is not valid YAML: {getattr(error, 'problem', error)}{where}") from None
    result: list[dict[str, Any]] = []
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise BadInput(f"{what} {path} holds a {type(document).__name__} where a manifest should be")
        if document.get("kind") == "List":
            result.extend(item for item in document.get("items") or [] if isinstance(item, dict))
        else:
            result.append(document)
    if not result:
        raise BadInput(f"{what} {path} holds no manifests")
    return result


def resolve(reference: str, bases: list[Path], what: str, key: str, config: Path) -> Path:
    """A path written in a config file: tried against each base folder in turn.

    Azure ML resolves such paths against the working directory, or the source directory;
    bereit also tries the config file's own folder, so the command works from anywhere.
    """
    candidate = Path(reference).expanduser()
    if candidate.is_absolute():
        if candidate.exists():
            return candidate
        raise BadInput(f"{config}: {key} {reference!r}: {candidate} does not exist")
    tried: list[str] = []
    for base in bases:
        path = (base / candidate).resolve()
        if path.exists():
            return path
        if str(path) not in tried:
            tried.append(str(path))
    raise BadInput(f"{config}: {key} {reference!r}: no such {what}; looked for {', '.join(tried)}")
