"""``AMLRequest`` and ``@rawhttp``: run() receives the whole HTTP request instead of the body.

The attribute names follow the Flask request that Azure ML passes (``method``, ``headers``,
``args``, ``get_data()``, ``get_json()``, ``full_path`` …), so a script written for Azure
Machine Learning (v1) that reads those works unchanged. Form and file uploads (``form``,
``files``) are not parsed: read the raw body with ``get_data()``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import Headers, QueryParams

RAWHTTP_ATTR = "__bereit_rawhttp__"


def rawhttp(func):
    """Ask for the raw request: ``run(request)`` gets an :class:`AMLRequest`."""
    setattr(func, RAWHTTP_ATTR, True)
    return func


class AMLRequest:
    """The request as run() sees it in raw mode: read-only, body already read."""

    def __init__(self, scope: dict, body: bytes):
        self._scope = scope
        self._body = body
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers = Headers(raw=scope["headers"])
        self.args = QueryParams(self.query_string)
        client = scope.get("client")
        self.remote_addr: str | None = client[0] if client else None

    @property
    def full_path(self) -> str:
        return f"{self.path}?{unquote(self.query_string.decode('latin-1'))}"

    @property
    def url(self) -> str:
        host = self.headers.get("host", "localhost")
        query = f"?{self.query_string.decode('latin-1')}" if self.query_string else ""
        return f"{self._scope.get('scheme', 'http')}://{host}{self.path}{query}"

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self) -> int:
        return len(self._body)

    @property
    def data(self) -> bytes:
        return self._body

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        return self._body.decode("utf-8", "replace") if as_text else self._body

    @property
    def is_json(self) -> bool:
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            return None
        try:
            return json.loads(self._body)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()
