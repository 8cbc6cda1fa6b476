"""The ConfigMap holding inline code (spec.inference.code.inline)."""

from __future__ import annotations

from bereit.render import names
from bereit.render.context import ResolvedService


def config_map_key(path: str) -> str:
    """ConfigMap keys cannot hold '/': x/y/score.py is stored as x__y__score.py."""
    return path.replace("/", "__")


def inline_code_items(resolved: ResolvedService) -> list[dict]:
    """The volume items that put each stored key back at its path."""
    inline = resolved.service.spec.inference.code.inline or {}
    return [{"key": config_map_key(path), "path": path} for path in sorted(inline)]


def render_code_config_map(resolved: ResolvedService) -> dict | None:
    """None unless the code is inline: a user's ConfigMap or image is used as it is."""
    inline = resolved.service.spec.inference.code.inline
    if inline is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.object_meta(resolved, names.code_config_map_name(resolved)),
        "data": {config_map_key(path): inline[path] for path in sorted(inline)},
    }
