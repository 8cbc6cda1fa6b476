"""Turning what the user typed and wrote into resources, checked by the API types before anything is sent."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from bereit.api.common import MODEL_NAME_PATTERN
from bereit.cli.azureml.config import CodeSource, Translation
from bereit.cli.azureml.sources import check_size, read_code, read_single
from bereit.cli.errors import BadInput


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"


def parse_model_ref(text: str, option: str = "-m") -> ModelRef:
    """NAME or NAME:VERSION, as `az ml model deploy -m sentiment:1` takes them."""
    name, colon, version = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    if not re.fullmatch(MODEL_NAME_PATTERN, name or "") or len(name) > 63:
        raise BadInput(
            f"{option} {text!r}: a model is NAME or NAME:VERSION; NAME has letters, digits, '-', '_' "
            "and '.', starts and ends with a letter or digit, at most 63 characters"
        )
    if not colon:
        return ModelRef(name)
    if not version.isdigit() or int(version) < 1:
        raise BadInput(f"{option} {text!r}: the version after ':' must be a whole number from 1 up")
    return ModelRef(name, int(version))


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """--tag k=v --tag k2=v2 as a mapping (a value may hold '=' and ',')."""
    result: dict[str, str] = {}
    for item in values or []:
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise BadInput(f"{option} {item!r}: write KEY=VALUE")
        result[key.strip()] = text
    return result


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of spec fragments; `extra` wins for plain values."""
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def combine(*translations: Translation | None) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """One spec fragment from several files: later files win (the deployment config over the
    inference config for description and GPUs, as in Azure ML)."""
    spec: dict[str, Any] = {}
    origins: dict[str, str] = {}
    warnings: list[str] = []
    for translation in translations:
        if translation is None:
            continue
        spec = merge(spec, translation.spec)
        origins.update(translation.origins)
        warnings.extend(translation.warnings)
    return spec, origins, warnings


def inline_code(code: CodeSource, source: str) -> dict[str, str]:
    """The files the service mounts, read from this machine (at most what a ConfigMap holds)."""
    if code.folder is not None:
        files = read_code(code.folder, code.entry_script, source)
    else:
        assert code.script is not None
        files = read_single(code.script, source)
    for name, path in code.extra_files.items():
        try:
            files[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{source}: dependency {path} is not UTF-8 text; inline code holds text files only") from None
    check_size({name: len(name) + len(text.encode()) for name, text in files.items()}, f"{source}: the code")
    return files


def validate(model: type[BaseModel], body: dict[str, Any], origins: dict[str, str] | None = None) -> BaseModel:
    """The resource checked by the API types; BadInput naming each field (and the file key it came from)."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise BadInput(explain(error, origins or {})) from None


def explain(error: ValidationError, origins: dict[str, str]) -> str:
    problems = []
    for problem in error.errors():
        path = ""
        for part in problem["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = problem["msg"].removeprefix("Value error, ")
        origin = _origin(path, message, origins)
        where = f" (from {origin})" if origin else ""
        problems.append(f"{path}{where}: {message}" if path else f"{message}{where}")
    return "invalid resource: " + "; ".join(problems)


def _origin(path: str, message: str, origins: dict[str, str]) -> str | None:
    spec_path = path.removeprefix("spec").lstrip(".")
    # The field itself, or the closest enclosing one the user wrote.
    candidate = spec_path
    while candidate:
        if candidate in origins:
            return origins[candidate]
        candidate = candidate.rpartition(".")[0]
    # Checks across fields (min > max, replicas and autoscale) name the fields in the message.
    mentioned = [origins[p] for p in sorted(origins, key=len, reverse=True) if p and p in message]
    return ", ".join(dict.fromkeys(mentioned)) or None
