"""Printing like kubectl: tables for people, JSON or YAML for programs; messages on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


class _Dumper(yaml.SafeDumper):
    """Multi-line text (inline code) as literal blocks, so manifests in Git read like the files."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)


def dump_yaml(data: Any, many: bool = False) -> str:
    options = {"Dumper": _Dumper, "sort_keys": False, "allow_unicode": True, "width": 1_000_000}
    return yaml.dump_all(data, explicit_start=True, **options) if many else yaml.dump(data, **options)


def _console(stream) -> Console:
    # Piped output must not wrap or fold: scripts cut columns by whitespace.
    width = None if stream.isatty() else 100_000
    return Console(file=stream, width=width, highlight=False, soft_wrap=True)


def out() -> Console:
    return _console(sys.stdout)


def err() -> Console:
    return _console(sys.stderr)


def info(message: str) -> None:
    err().print(escape(message))


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/yellow] {escape(message)}")


def error(message: str) -> None:
    err().print(f"[red]error:[/red] {escape(message)}")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Columns as kubectl prints them: upper-case headers, three spaces apart, nothing wrapped."""
    cells = [[_cell(value) for value in row] for row in rows]
    if not cells:
        info("No resources found.")
        return
    lines = [[h.upper() for h in headers], *cells]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    text = "\n".join("   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-" if value is None else ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def document(data: Any, fmt: Format) -> None:
    """One JSON or YAML document on stdout, exactly as given (no markup interpretation)."""
    if fmt == Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(dump_yaml(data))
    sys.stdout.flush()


def documents(items: Sequence[dict[str, Any]], fmt: Format) -> None:
    """Several manifests: a YAML stream (ready for a GitOps repository) or a JSON List."""
    if fmt == Format.JSON:
        document(items[0] if len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": list(items)}, fmt)
        return
    sys.stdout.write(dump_yaml(items, many=True))
    sys.stdout.flush()


def objects(
    items: list[dict[str, Any]],
    fmt: Format,
    headers: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[Any]],
    single: bool = False,
) -> None:
    """Resources from the API: a table, their names, or the objects themselves."""
    if fmt == Format.TABLE:
        table(headers, (row(item) for item in items))
    elif fmt == Format.NAME:
        for item in items:
            sys.stdout.write(f"{item['kind'].lower()}/{item['metadata']['name']}\n")
    elif single and len(items) == 1:
        document(items[0], fmt)
    else:
        document({"apiVersion": "v1", "kind": "List", "items": items}, fmt)


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's AGE column: 45s, 12m, 3h, 5d."""
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return entry
    return {}
