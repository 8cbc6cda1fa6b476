"""The keys Secret: primaryKey and secondaryKey, as Azure Machine Learning's get_keys() returns them.

The controller creates it once with random keys and never re-renders it on update, so keys
survive every change of the service. Regenerating a key replaces only that key.
"""

from __future__ import annotations

import base64

from bereit.constants import PRIMARY_KEY, SECONDARY_KEY
from bereit.render import names
from bereit.render.context import ResolvedService


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def render_keys_secret(resolved: ResolvedService, primary_key: str, secondary_key: str) -> dict:
    if not primary_key or not secondary_key:
        raise ValueError("both keys must be non-empty")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": names.object_meta(resolved, names.keys_secret_name(resolved)),
        "type": "Opaque",
        "data": {PRIMARY_KEY: _encode(primary_key), SECONDARY_KEY: _encode(secondary_key)},
    }
