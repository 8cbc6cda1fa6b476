"""The endpoints — every route but /score here, /score in :mod:`bereit.server.scoring` — and
the ASGI interface. ``create_app`` is the factory.

The layers are those of MLServer and KServe: a protocol (bereit's own HTTP connection,
:mod:`bereit.server.connection`, or ASGI) → the endpoints → the
:class:`~bereit.server.dataplane.DataPlane` → the user's entry script. bereit's connection calls
the endpoints without ASGI in between, since every microsecond outside run() is overhead the
user pays on each request; the ASGI interface stays for tests and for running the app under
any ASGI server.
"""

from __future__ import annotations

import asyncio
import time

from bereit import constants as c

from .config import ServerConfig
from .dataplane import DataPlane
from .entry import EntryScript, EntryScriptError
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .responses import JSON, HTTPError, Response, error_body
from .scoring import ScoreRequest


class ServerApp:
    """The endpoints over one data plane. ``entry``, ``init_error``, ``load_and_init`` and the
    parts bound here are the data plane's, under the names the app has always had for them."""

    def __init__(self, plane: DataPlane):
        self.plane = plane
        # Bound once: the routes write metrics and access lines; tests look at admission too.
        self.admission, self.metrics, self.access = plane.admission, plane.metrics, plane.access

    @property
    def entry(self) -> EntryScript | None:
        return self.plane.entry

    @property
    def init_error(self) -> EntryScriptError | None:
        return self.plane.init_error

    def load_and_init(self) -> None:
        """Import the entry script and call init() (blocking), as the ASGI lifespan does on a thread."""
        self.plane.load_and_init()

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == c.SCORE_PATH:
                await self._score_asgi(scope, receive, send)
            else:
                response = self.other(scope["method"], scope["path"], scope.get("query_string", b""))
                await _send(send, response, scope["method"] == "HEAD")
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.plane.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.plane.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _score_asgi(self, scope, receive, send) -> None:
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        request = ScoreRequest.begin(self.plane, scope, answer.set_result)
        if request is not None:
            try:
                body = await _read_body(receive, self.plane.config.max_request_bytes)
            except HTTPError as err:
                request.fail(err)
            except asyncio.CancelledError:
                request.abandon()
                raise
            else:
                request.start(body, asyncio.get_running_loop())
        try:
            response = await answer
        except asyncio.CancelledError:
            if request is not None:
                request.abandon()
            raise
        await _send(send, response)

    # --- every route but /score -------------------------------------------------------------

    def other(self, method: str, path: str, query: bytes) -> Response:
        """Every route but /score (all synchronous), recorded in the metrics and access log."""
        started = time.perf_counter()
        status, body, ctype, extra = 200, b"", JSON, ()
        if method not in ("GET", "HEAD"):
            status, body, extra = 405, error_body("MethodNotAllowed", f"{method} is not allowed on {path}", ""), (
                (b"allow", b"GET, HEAD"),
            )
        elif path == c.LIVENESS_PATH:
            stuck = self.plane.stuck_for()
            if stuck:
                status, body = 500, error_body("Stuck", f"a run() call has been running for {stuck:.0f} s", "")
            else:
                body, ctype = b"Healthy", b"text/plain; charset=utf-8"
        elif path == c.READINESS_PATH:
            unready, ctype = self.plane.unready_reason(), b"text/plain"
            status, body = (200, b"Ready") if unready is None else (503, unready.encode())
        elif path == c.SWAGGER_PATH:
            version = _query_value(query, b"version") or b"2"
            docs = self.plane.swagger
            doc = docs.get(version.decode("latin-1").split(".")[0])
            if not docs:
                status, body = 503, error_body("NotReady", "the swagger document exists once init() has finished", "")
            elif doc is None:
                status, body = 404, error_body("NotFound", "swagger versions: 2, 3 (?version=3)", "")
            else:
                body = doc
        elif path == c.METRICS_PATH:
            body, ctype = self.metrics.render(), METRICS_CONTENT_TYPE.encode()
        else:
            status, body = 404, error_body("NotFound", f"no route {path}", "")
        self.metrics.count(path if status != 404 else "other", status)
        if self.access.enabled and path not in (c.LIVENESS_PATH, c.READINESS_PATH, c.METRICS_PATH):
            self.access.write(method, path, status, time.perf_counter() - started, "", 0, len(body))
        return Response(status, body, ctype, extra)


async def _read_body(receive, limit: int) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise HTTPError(413, "PayloadTooLarge", f"body is over the limit of {limit} bytes")
        return body
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "ClientDisconnected", "the client went away before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "PayloadTooLarge", f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _query_value(query: bytes, name: bytes) -> bytes | None:
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == name:
            return value
    return None


async def _send(send, response: Response, head: bool = False) -> None:
    body = response.body
    headers = [(b"content-type", response.content_type), (b"content-length", str(len(body)).encode()), *response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def create_app(config: ServerConfig, access_stream=None) -> ServerApp:
    """The ASGI app for ``config``. init() runs when the ASGI lifespan starts (or call
    ``load_and_init()`` yourself); /ready answers 200 once it has finished."""
    return ServerApp(DataPlane(config, access_stream))
