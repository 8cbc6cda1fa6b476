"""What an answer is, whichever way the request came in: a status, a body, a content type and
extra headers; and an error as the HTTP status, code and message the client gets.

The protocol layer (:mod:`bereit.server.connection`, the ASGI interface of
:mod:`bereit.server.app`) writes these; the endpoints make them.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

JSON = b"application/json"


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: tuple = ()  # more (name, value) pairs, lower-case bytes


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str, rid: str) -> bytes:
    return orjson.dumps({"error": message, "code": code, "request_id": rid})
