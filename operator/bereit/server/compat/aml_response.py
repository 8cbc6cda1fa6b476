"""``AMLResponse``: run() chooses the status, headers and body of the answer itself."""

from __future__ import annotations

import json
from collections.abc import Mapping


class AMLResponse:
    """A response that run() returns as-is (same arguments as Azure ML's)."""

    def __init__(
        self,
        message,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ):
        headers = dict(response_headers or {})
        if message is None:
            body, content_type = b"{}", "application/json"
        elif json_str:
            body, content_type = json.dumps(message).encode(), "application/json"
        elif isinstance(message, (bytes, bytearray, memoryview)):
            body, content_type = bytes(message), "application/octet-stream"
        else:
            body, content_type = str(message).encode(), "text/plain; charset=utf-8"
        # A Content-Type given by run() wins over the guessed one.
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = content_type
        headers["x-ms-run-function-failed"] = str(bool(run_function_failed))
        self.status_code = int(status_code)
        self.body = body
        self.headers = headers
