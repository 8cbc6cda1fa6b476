"""One request to /score, from its headers to its answer: the checks, the hand-over to a run
thread, and every outcome (run()'s answer, 4xx, 500, 503, 504) mapped to a response.

The same ``ScoreRequest`` serves both ways in: bereit's HTTP connection
(:mod:`bereit.server.connection`) and the ASGI app. Both call :meth:`ScoreRequest.begin` once
the headers are there, :meth:`~ScoreRequest.start` with the body, and get the response
through the ``respond`` callback, on the event loop. Nothing here awaits: a request in
flight is a few attributes, not a task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import orjson

from bereit import constants as c

from . import logs
from .auth import AuthError
from .compat.aml_request import AMLRequest
from .compat.aml_response import AMLResponse
from .entry import EntryScript
from .limits import Overloaded
from .pool import Job

if TYPE_CHECKING:
    from .app import ServerApp

JSON = b"application/json"
# Content types run(data) can take as text; anything else needs @rawhttp (415 otherwise).
_TEXT_TYPES = (b"application/json", b"text/", b"application/x-www-form-urlencoded")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# Python's own json module gives up near 1000 levels (RecursionError inside run()); refuse
# deeper documents up front with a 400.
MAX_JSON_DEPTH = 512
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BAD_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: tuple = ()  # more (name, value) pairs, lower-case bytes


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class _NotSerializable(Exception):
    pass


# Our own generator, seeded from the OS: a script calling random.seed() cannot make two
# replicas hand out the same ids.
_request_ids = random.Random()


def new_request_id() -> str:
    # Unique, not secret: os.urandom would be a syscall per request (~2 µs here). to_bytes and
    # hex take half the time of an f-string's format spec.
    return _request_ids.getrandbits(64).to_bytes(8).hex()


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 128 and all(33 <= b < 127 for b in value)


class ScoreRequest(Job):
    """A /score request that passed the checks on its headers. It holds an admission place
    (see :mod:`bereit.server.limits`) until it is answered, or its client has left and it no
    longer waits for a run thread. Once its body is in, it is the job a run thread runs."""

    __slots__ = ("app", "scope", "rid", "received", "ctype", "respond", "wait_until", "size_in", "answered", "collected")

    def __init__(self, app: ServerApp, scope: dict, rid: str, received: float, ctype: bytes | None, respond):
        super().__init__()  # arg and loop are set when the body is in (start)
        self.app, self.scope, self.rid, self.received, self.ctype = app, scope, rid, received, ctype
        self.respond: Callable[[Response], None] = respond
        self.wait_until = 0.0  # the end of its max wait for a run thread
        self.size_in = 0
        self.answered = False
        self.collected: bytes | None = None  # the body, kept only when inputs are collected

    @classmethod
    def begin(cls, app: ServerApp, scope: dict, respond: Callable[[Response], None]) -> ScoreRequest | None:
        """Check what the headers say. Returns the request that now waits for its body, or
        None when it has been answered already (405, 401, 413, 415, 503 …)."""
        received = time.perf_counter()
        authorization = ctype = length = request_id = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-type":
                ctype = value
            elif name == b"content-length":
                length = value
            elif name == b"x-request-id" or name == b"x-ms-client-request-id":
                request_id = value
        rid = request_id.decode() if request_id is not None and _valid_request_id(request_id) else new_request_id()
        request = cls(app, scope, rid, received, ctype, respond)
        try:
            request._check_headers(authorization, length)
        except HTTPError as err:
            request._answer_error(err)
            return None
        return request

    def _check_headers(self, authorization: bytes | None, length: bytes | None) -> None:
        app, script = self.app, self.app.entry
        if self.scope["method"] != "POST" and not (script is not None and script.mode == "raw"):
            raise HTTPError(405, "MethodNotAllowed", f"use POST on {c.SCORE_PATH}", ((b"allow", b"POST"),))
        if script is None:
            if app.init_error is not None:
                raise HTTPError(503, "InitFailed", f"init() failed: {app.init_error}", ((b"retry-after", b"10"),))
            raise HTTPError(503, "NotReady", "init() has not finished yet", ((b"retry-after", b"5"),))
        try:
            app.auth.check(authorization, self.scope.get("query_string", b""))
        except AuthError as exc:
            raise HTTPError(401, "Unauthorized", str(exc), ((b"www-authenticate", b"Bearer"),)) from None
        limit = app.config.max_request_bytes
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise HTTPError(400, "BadRequest", "Content-Length is not a number") from None
            if declared > limit:
                raise HTTPError(413, "PayloadTooLarge", f"body of {declared} bytes is over the limit of {limit} bytes")
        ctype = self.ctype
        if script.mode != "raw" and ctype is not None and not ctype.lower().startswith(_TEXT_TYPES):
            raise HTTPError(
                415,
                "UnsupportedMediaType",
                f"content type {ctype.decode('latin-1')!r}: run(data) takes JSON or text "
                "(application/json, text/*); decorate run() with @rawhttp to take other bodies",
            )
        try:
            app.admission.take_place()
        except Overloaded as exc:
            raise HTTPError(503, "Overloaded", str(exc), ((b"retry-after", b"1"),)) from None

    # --- the body is there ---------------------------------------------------------------

    def start(self, body: bytes, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the request to a run thread (or answer 400 for a body run() cannot take).
        ``loop`` is the running loop, which the caller knows: asyncio.get_running_loop() makes
        a getpid() syscall on every call."""
        app = self.app
        self.size_in = len(body)
        if app.collector.enabled:
            self.collected = body
        try:
            arg = _argument(app.entry, self.scope, body)
        except HTTPError as err:
            self.fail(err)
            return
        self.arg, self.loop = arg, loop
        self.wait_until = self.received + app.admission.max_wait_s
        app.admission.handed_over(self)
        app.pool.submit(self)
        app.watch_deadlines(loop)

    def fail(self, err: HTTPError) -> None:
        """The body could not be read or run() cannot take it: answer and give the place back."""
        self.app.admission.give_up_place()
        self._answer_error(err)

    def abandon(self) -> None:
        """The client has gone: no answer is written. A request still waiting for its body or
        for a run thread gives its place back at once and never runs."""
        if self.answered:
            return
        self.answered = True
        if self.loop is None:  # not handed to the run threads yet
            self.app.admission.give_up_place()
        elif self.take():
            self.app.admission.finished(self)

    # --- on a run thread -------------------------------------------------------------------

    def call(self, arg):
        """run() and the encoding of its answer."""
        script = self.app.entry
        result = script.run(**script.typed_arguments(arg)) if script.mode == "typed" else script.run(arg)
        if isinstance(result, AMLResponse):
            status, out, extra = result.status_code, result.body, result.headers
            out_type = extra.pop("Content-Type", "application/octet-stream").encode()
            extra = _header_pairs(extra.items())
        elif hasattr(result, "status_code") and hasattr(result, "get_data"):  # the real azureml's (Flask)
            status, out = result.status_code, result.get_data()
            out_type = (result.headers.get("Content-Type") or "application/octet-stream").encode()
            extra = _header_pairs((k, v) for k, v in result.headers.items() if k.lower() != "content-type")
        else:
            status, out_type, extra = 200, JSON, ()
            try:
                out = orjson.dumps(result, option=_NUMPY)
            except TypeError:
                try:  # the standard library also takes big integers, tuples as keys…
                    out = json.dumps(result, default=_tolist).encode()
                except (TypeError, ValueError) as exc:
                    raise _NotSerializable(
                        f"run() returned a {type(result).__name__}, which is not JSON-serialisable: {exc}"
                    ) from None
        collector = self.app.collector
        if collector.enabled and collector.sampled():
            collector.write(self.rid, self.collected, out, status)
        return Response(status, out, out_type, extra)

    # --- answers (on the loop) ----------------------------------------------------------

    def expire(self, now: float) -> None:
        """Called by the app's deadline watch for a request handed to the run threads."""
        if not self.started:
            if now >= self.wait_until and self.take():
                self.app.admission.finished(self)
                message = "waited longer than the max queue wait for a run slot"
                self._answer_error(HTTPError(503, "Overloaded", message, ((b"retry-after", b"1"),)))
        elif not self.answered and now - self.started >= self.app.timeout_s:
            # The place stays taken until run() returns: its thread is still busy.
            self._answer_error(
                HTTPError(
                    504,
                    "Timeout",
                    f"run() did not return within the scoring timeout of {self.app.config.scoring_timeout_ms} ms",
                )
            )

    def returned(self, ok: bool, result) -> None:
        """When run() has returned (maybe long after a 504); its place is free."""
        app = self.app
        app.metrics.run_latency.observe(self.ended - self.started)
        app.admission.finished(self)
        arg, self.arg = self.arg, None  # the body's text goes with the answer, not with this object
        if self.answered:
            return
        if ok:
            self._answer(result)
            return
        try:
            _run_failed(app.entry, result, self.rid, arg)
        except HTTPError as err:
            self._answer_error(err)

    def _answer_error(self, err: HTTPError) -> None:
        if err.status >= 500 or err.status == 429:
            self.app.metrics.rejected(err.code)
        self._answer(Response(err.status, error_body(err.code, err.message, self.rid), JSON, err.headers))

    def _answer(self, response: Response) -> None:
        if self.answered:
            return
        self.answered = True
        app = self.app
        rid = self.rid.encode()
        status, body, content_type, headers = response
        seconds = time.perf_counter() - self.received
        app.metrics.count(c.SCORE_PATH, status)
        app.metrics.latency.observe(seconds)
        if app.access.enabled:
            app.access.write(self.scope["method"], c.SCORE_PATH, status, seconds, self.rid, self.size_in, len(body))
        self.respond(Response(status, body, content_type, ((b"x-request-id", rid), (b"x-ms-request-id", rid), *headers)))


def _argument(script: EntryScript, scope: dict, body: bytes):
    """What run() is called with, or a 400 that says what is wrong with the body."""
    if script.mode == "raw":
        return AMLRequest(scope, body)
    if not body:
        raise HTTPError(400, "BadRequest", "the body is empty; send the JSON document run() expects")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise HTTPError(400, "BadRequest", f"the body is not valid UTF-8 (byte {exc.start})") from None
    if script.mode == "text":
        # run() parses the body itself; parsing it here too would cost up to half as much
        # again for large bodies. Its JSONDecodeError on this very text, or a RecursionError
        # on a body nested too deep, becomes a 400 (see _run_failed).
        return text
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(400, "BadRequest", f"the body is not valid JSON: {exc}") from None
    if _too_deep(body):
        raise HTTPError(400, "BadRequest", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(parsed, dict):
        raise HTTPError(
            400, "BadRequest", f"the body must be a JSON object with the fields {', '.join(script.input_params)}"
        )
    unknown = [k for k in parsed if k not in script.input_params]
    if unknown and not script.accepts_any_param:
        raise HTTPError(
            400,
            "BadRequest",
            f"unknown field(s) {', '.join(map(repr, unknown))}; run() takes {', '.join(script.input_params)}",
        )
    missing = [k for k in script.required_params if k not in parsed]
    if missing:
        raise HTTPError(400, "BadRequest", f"missing field(s) {', '.join(map(repr, missing))}")
    return parsed


def _run_failed(script: EntryScript, exc: BaseException, rid: str, arg) -> None:
    """Raises the HTTPError for a run() that raised ``exc``."""
    if isinstance(exc, _NotSerializable):
        logs.event(logging.ERROR, str(exc), request_id=rid)
        raise HTTPError(500, "NotSerializable", str(exc), ((b"x-ms-run-function-failed", b"True"),))
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"
    message = f"{type(exc).__name__}: {exc}"
    if script.raised_before_run(exc):
        raise HTTPError(400, "BadRequest", f"the input does not match run()'s schema: {message}")
    if isinstance(exc, json.JSONDecodeError) and exc.doc is arg:
        # run() tried to read the request body as JSON, and it is not JSON: the client's error.
        raise HTTPError(400, "BadRequest", f"the body is not valid JSON: {exc}")
    if isinstance(exc, RecursionError) and isinstance(arg, str) and _too_deep(arg.encode()):
        raise HTTPError(400, "BadRequest", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    logs.event(
        logging.ERROR,
        "run() raised",
        request_id=rid,
        error=message,
        traceback="".join(traceback.format_exception(exc)),
    )
    raise HTTPError(500, "RunFailed", f"run() raised {message}{where}", ((b"x-ms-run-function-failed", b"True"),))


def _header_pairs(items) -> tuple:
    """Headers run() set on its response, as bytes; a line break in one would split the response."""
    pairs = tuple((str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in items)
    for name, value in pairs:
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
            raise ValueError(f"response header {name.decode('latin-1')!r} has a control character in its name or value")
    return pairs


def _tolist(value):
    """numpy values inside what only the standard library can encode (e.g. with big integers)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _too_deep(body: bytes) -> bool:
    """Deeper than MAX_JSON_DEPTH (the body is valid JSON). Counting runs in C; the walk over
    the brackets only happens for bodies with more brackets than the limit."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for char in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if char == 91 or char == 123:  # [ {
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def error_body(code: str, message: str, rid: str) -> bytes:
    return orjson.dumps({"error": message, "code": code, "request_id": rid})
