"""The ConfigMap holding inline code (spec.inference.code.inline)."""

from __future__ import annotations

from bereit.render import names
from bereit.render.context import ResolvedService


def render_code_config_map(resolved: ResolvedService) -> dict | None:
    """None unless the code is inline: a user's ConfigMap or image is used as it is."""
    inline = resolved.service.spec.inference.code.inline
    if inline is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.object_meta(resolved, names.code_config_map_name(resolved)),
        "data": dict(sorted(inline.items())),
    }
