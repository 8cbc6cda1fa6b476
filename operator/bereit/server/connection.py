"""bereit-server's HTTP/1.1 connection: httptools (Node's llhttp) parses, uvloop moves the
bytes, and each request goes straight to the app, without an ASGI cycle in between.

uvicorn still runs the server (sockets, signals, lifespan, graceful shutdown); this is the
protocol it is given: a request through uvicorn's httptools protocol and an ASGI app costs
several times the CPU of one through this connection, and on one core that difference is
run() time (bench/README.md, "Choosing the stack").

A connection answers one request at a time, in order. Pipelined requests wait parsed (reading
pauses while ``MAX_WAITING`` wait, or while the client does not read its answers). Keep-alive
as HTTP/1.1 says, closed after ``timeout_keep_alive`` idle seconds. ``Expect: 100-continue``
is answered once /score has accepted the headers. A request answered before its body is in
(401, 503 …) has the rest of its body read and dropped; one whose body is over the limit
(413), a malformed one (400) and a header section over ``MAX_HEADER_BYTES`` (431) close the
connection after the answer.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from functools import partial
from http import HTTPStatus
from urllib.parse import unquote

import httptools

from bereit import constants as c

from . import logs
from .app import ServerApp
from .responses import HTTPError, Response, error_body
from .scoring import ScoreRequest

MAX_HEADER_BYTES = 64 * 1024
MAX_WAITING = 8
IDLE_TICK_S = 1.0
# uvloop reads into this; the parser copies out what it keeps before the next read, so all
# connections of the loop share it (one copy of each body fewer than with data_received).
_READ_BUFFER = memoryview(bytearray(256 * 1024))
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# What makes a request target more than a plain path: a query, escapes, a fragment.
_URL_SPECIALS = re.compile(rb"[?%#]")


class _HeadersTooLarge(Exception):
    pass


class _Request:
    """What the parser has seen of one request."""

    __slots__ = (
        "url", "headers", "header_bytes", "method", "path", "query", "keep_alive", "expect_continue",
        "chunks", "size", "complete", "answered", "too_large", "score",
    )  # fmt: skip

    def __init__(self):
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.method, self.path, self.query, self.keep_alive = "", "", b"", False
        self.expect_continue = self.complete = self.answered = self.too_large = False
        self.chunks: list[bytes] = []
        self.size = 0
        self.score: ScoreRequest | None = None

    def body(self) -> bytes:
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


class IdleWatch:
    """Closes keep-alive connections that have been idle too long: one timer for all of them."""

    def __init__(self, timeout_s: float):
        self.ticks = max(1, round(timeout_s / IDLE_TICK_S))
        self.connections: set[HttpConnection] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: HttpConnection) -> None:
        self.connections.add(connection)
        if self._timer is None:
            self._timer = connection.loop.call_later(IDLE_TICK_S, self._tick, connection.loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        for connection in list(self.connections):
            if connection.current is None and connection.parsing is None:
                connection.idle_ticks += 1
                if connection.idle_ticks >= self.ticks:
                    connection.transport.close()
        self._timer = loop.call_later(IDLE_TICK_S, self._tick, loop) if self.connections else None


class HttpConnection(asyncio.BufferedProtocol):
    @classmethod
    def factory(cls, app: ServerApp, timeout_keep_alive: float):
        """What uvicorn.Config takes as ``http``: it calls this with its own arguments."""
        return partial(cls, app, IdleWatch(timeout_keep_alive))

    def __init__(self, app: ServerApp, idle: IdleWatch, config, server_state, app_state=None, _loop=None):
        # What each request needs, bound once: the data plane /score is given, the other routes.
        self.plane, self.other_routes = app.plane, app.other
        self.idle = idle
        self.server_state = server_state  # uvicorn's: open connections, the Date header
        self.loop = _loop or asyncio.get_event_loop()
        self.limit = app.plane.config.max_request_bytes
        self.parser = httptools.HttpRequestParser(self)
        # Answer the first of pipelined requests even when it asked to close.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple | None = None
        self.parsing: _Request | None = None  # the request the parser is in
        self.current: _Request | None = None  # the request being answered
        self.waiting: deque[_Request] = deque()  # parsed, to be answered after the current one
        self.closing = False  # close once the current answer is out
        self.write_paused = self.read_paused = False
        self.idle_ticks = 0
        self._defaults: list | None = None  # the last default_headers of uvicorn's seen
        self._default_lines = b""

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.client = transport.get_extra_info("peername")
        self.server_state.connections.add(self)
        self.idle.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.idle.connections.discard(self)
        current = self.current
        if current is not None and current.score is not None:
            current.score.abandon()
        self.current = None
        self.waiting.clear()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.idle_ticks = 0
        try:
            self.parser.feed_data(_READ_BUFFER[:nbytes])
        except httptools.HttpParserUpgrade:
            # No protocol switch here: the request has its answer; the connection ends after it.
            self._close_after_current()
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._refuse(431, "HeadersTooLarge", f"the request's header section is over {MAX_HEADER_BYTES} bytes")
            else:  # a bug of ours: say so, and keep the other connections going
                logs.get().error("request handling failed", exc_info=exc.__context__)
                self._refuse(500, "InternalError", f"the server failed on this request: {exc.__context__!r}")
        except httptools.HttpParserError as exc:
            self._refuse(400, "BadRequest", f"invalid HTTP request: {exc}")

    def eof_received(self) -> bool:
        return False  # close our side too, once the client has closed its side

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: finish the answer in progress, then close."""
        self._close_after_current()

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.parsing = _Request()

    def on_url(self, url: bytes) -> None:
        request = self.parsing
        request.url += url
        request.header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.parsing
        request.header_bytes += len(name) + len(value)
        if request.header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            request.expect_continue = True
        request.headers.append((name, value))

    def on_headers_complete(self) -> None:
        request, parser = self.parsing, self.parser
        request.method = parser.get_method().decode("ascii")
        request.keep_alive = parser.should_keep_alive()
        raw = request.url
        if raw[:1] == b"/" and not _URL_SPECIALS.search(raw):  # a plain path, as clients send /score
            request.path = raw.decode("latin-1")
        else:
            url = httptools.parse_url(raw)
            path = url.path.decode("latin-1")
            request.path = unquote(path) if "%" in path else path
            request.query = url.query or b""
        if self.current is None:
            self._begin(request)
        else:
            self.waiting.append(request)
            self._update_reading()

    def on_body(self, chunk: bytes) -> None:
        request = self.parsing
        request.size += len(chunk)
        if request.answered or request.too_large:
            if request.size > self.limit:  # dropping it is no reason to read forever
                self.transport.close()
            return
        if request.size > self.limit:
            request.too_large, request.chunks = True, []
            if request is self.current:
                self._body_too_large(request)
            return
        request.chunks.append(chunk)

    def on_message_complete(self) -> None:
        request = self.parsing
        self.parsing = None
        request.complete = True
        if request is not self.current:
            return  # pipelined: taken up in its turn
        if request.answered:
            self._next()
        else:
            self._dispatch(request)

    # --- requests ------------------------------------------------------------------------

    def _begin(self, request: _Request) -> None:
        """``request`` is now the one being answered; its headers are complete."""
        self.current = request
        if request.path == c.SCORE_PATH:
            request.score = ScoreRequest.begin(self.plane, self._scope(request), self._respond)
            if request.score is None:
                return  # answered from its headers alone
        if request.too_large:
            self._body_too_large(request)
        elif request.complete:
            self._dispatch(request)
        elif request.expect_continue and request.score is not None:
            self.transport.write(_CONTINUE)

    def _dispatch(self, request: _Request) -> None:
        """The whole request is in."""
        if request.score is not None:
            body, request.chunks = request.body(), []  # run() gets text: the bytes can go now
            request.score.start(body, self.loop)
        else:
            self._respond(self.other_routes(request.method, request.path, request.query))

    def _body_too_large(self, request: _Request) -> None:
        self._fail(request, HTTPError(413, "PayloadTooLarge", f"body is over the limit of {self.limit} bytes"))

    def _fail(self, request: _Request, err: HTTPError) -> None:
        """Answer the current ``request`` with an error before its body was used."""
        if request.score is not None:
            request.score.fail(err)  # gives its admission place back too
        else:
            self._respond(Response(err.status, error_body(err.code, err.message, "")))

    def _scope(self, request: _Request) -> dict:
        # The ASGI-shaped view /score and raw-mode scripts read.
        return {
            "type": "http",
            "method": request.method,
            "path": request.path,
            "query_string": request.query,
            "headers": request.headers,
            "client": self.client,
            "scheme": "http",
        }

    def _respond(self, response: Response) -> None:
        """Write the answer to the current request (called by the app, on the loop)."""
        request = self.current
        if request is None or self.transport.is_closing():
            return
        request.answered = True
        # A body over the limit (413) is not read to its end: the connection cannot go on.
        keep_alive = request.keep_alive and not self.closing and response.status != 413
        body = response.body
        head = b"%scontent-type: %s\r\ncontent-length: %d\r\n%s" % (
            _STATUS_LINES.get(response.status) or b"HTTP/1.1 %d \r\n" % response.status,
            response.content_type,
            len(body),
            self._default_headers(),
        )
        for name, value in response.headers:
            head += b"%s: %s\r\n" % (name, value)
        if not keep_alive:
            head += b"connection: close\r\n"
        self.transport.write(b"%s\r\n%s" % (head, body) if request.method != "HEAD" else head + b"\r\n")
        if not keep_alive:
            self.transport.close()
        elif request.complete:
            self._next()
        # else: the rest of its body is read and dropped, then the next request comes

    def _default_headers(self) -> bytes:
        """uvicorn's headers for every response (the Date), as lines: uvicorn replaces its
        list once a second, so the lines are made again only then."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            self._defaults = defaults
            self._default_lines = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
        return self._default_lines

    def _next(self) -> None:
        self.current = None
        self.server_state.total_requests += 1
        if self.waiting:
            request = self.waiting.popleft()
            self._update_reading()
            self._begin(request)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """The byte stream cannot be trusted any more: answer, then close."""
        self.closing = True
        current = self.current
        if current is not None and current.answered:
            self.transport.close()  # its answer is out; the rest of its body is what broke
        elif current is None or not current.complete:
            self.current = current or _Request()
            self._fail(self.current, HTTPError(status, code, message))
        # else: a complete request is being answered; the connection closes after that

    def _close_after_current(self) -> None:
        if self.current is None:
            self.transport.close()
        else:
            self.closing = True

    def _update_reading(self) -> None:
        pause = self.write_paused or len(self.waiting) >= MAX_WAITING
        if pause != self.read_paused and not self.transport.is_closing():
            self.read_paused = pause
            (self.transport.pause_reading if pause else self.transport.resume_reading)()

