"""The /score endpoint: one request from its headers to its answer — the checks, the
hand-over to a run thread, and every outcome (run()'s answer, 4xx, 500, 503, 504) mapped to a
response.

The same ``ScoreRequest`` serves both ways in: bereit's HTTP connection
(:mod:`bereit.server.connection`) and the ASGI app. Both call :meth:`ScoreRequest.begin` once
the headers are there, :meth:`~ScoreRequest.start` with the body, and get the response
through the ``respond`` callback, on the event loop. Nothing here awaits: a request in
flight is a few attributes, not a task. What it uses — admission, auth, the run threads, the
entry script — belongs to the :class:`~bereit.server.dataplane.DataPlane` it is given.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable

import orjson

from bereit import constants as c

from .auth import AuthError
from .compat.aml_response import AMLResponse
from .dataplane import DataPlane
from .limits import Overloaded
from .payloads import TEXT_TYPES, NotSerializable, argument, header_pairs, run_failed, tolist
from .pool import Job
from .responses import JSON, HTTPError, Response, error_body

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


# Our own generator, seeded from the OS: a script calling random.seed() cannot make two
# replicas hand out the same ids.
_request_ids = random.Random()


def new_request_id() -> str:
    # Unique, not secret: os.urandom would be a syscall per request. to_bytes and hex cost
    # less than an f-string's format spec (bench/README.md).
    return _request_ids.getrandbits(64).to_bytes(8).hex()


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 128 and all(33 <= b < 127 for b in value)


class ScoreRequest(Job):
    """A /score request that passed the checks on its headers. It holds an admission place
    (see :mod:`bereit.server.limits`) until it is answered, or its client has left and it no
    longer waits for a run thread. Once its body is in, it is the job a run thread runs."""

    __slots__ = ("plane", "scope", "rid", "received", "ctype", "respond", "wait_until", "size_in", "answered", "collected")

    def __init__(self, plane: DataPlane, scope: dict, rid: str, received: float, ctype: bytes | None, respond):
        super().__init__()  # arg and loop are set when the body is in (start)
        self.plane, self.scope, self.rid, self.received, self.ctype = plane, scope, rid, received, ctype
        self.respond: Callable[[Response], None] = respond
        self.wait_until = 0.0  # the end of its max wait for a run thread
        self.size_in = 0
        self.answered = False
        self.collected: bytes | None = None  # the body, kept only when inputs are collected

    @classmethod
    def begin(cls, plane: DataPlane, scope: dict, respond: Callable[[Response], None]) -> ScoreRequest | None:
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
        request = cls(plane, scope, rid, received, ctype, respond)
        try:
            request._check_headers(authorization, length)
        except HTTPError as err:
            request._answer_error(err)
            return None
        return request

    def _check_headers(self, authorization: bytes | None, length: bytes | None) -> None:
        plane, script = self.plane, self.plane.entry
        if self.scope["method"] != "POST" and not (script is not None and script.mode == "raw"):
            raise HTTPError(405, "MethodNotAllowed", f"use POST on {c.SCORE_PATH}", ((b"allow", b"POST"),))
        if script is None:
            if plane.init_error is not None:
                raise HTTPError(503, "InitFailed", f"init() failed: {plane.init_error}", ((b"retry-after", b"10"),))
            raise HTTPError(503, "NotReady", "init() has not finished yet", ((b"retry-after", b"5"),))
        try:
            plane.auth.check(authorization, self.scope.get("query_string", b""))
        except AuthError as exc:
            raise HTTPError(401, "Unauthorized", str(exc), ((b"www-authenticate", b"Bearer"),)) from None
        limit = plane.config.max_request_bytes
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise HTTPError(400, "BadRequest", "Content-Length is not a number") from None
            if declared > limit:
                raise HTTPError(413, "PayloadTooLarge", f"body of {declared} bytes is over the limit of {limit} bytes")
        ctype = self.ctype
        if script.mode != "raw" and ctype is not None and not ctype.lower().startswith(TEXT_TYPES):
            raise HTTPError(
                415,
                "UnsupportedMediaType",
                f"content type {ctype.decode('latin-1')!r}: run(data) takes JSON or text "
                "(application/json, text/*); decorate run() with @rawhttp to take other bodies",
            )
        try:
            plane.admission.take_place()
        except Overloaded as exc:
            raise HTTPError(503, "Overloaded", str(exc), ((b"retry-after", b"1"),)) from None

    # --- the body is there ---------------------------------------------------------------

    def start(self, body: bytes, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the request to a run thread (or answer 400 for a body run() cannot take).
        ``loop`` is the running loop, which the caller knows: asyncio.get_running_loop() makes
        a getpid() syscall on every call."""
        plane = self.plane
        self.size_in = len(body)
        if plane.collector.enabled:
            self.collected = body
        try:
            arg = argument(plane.entry, self.scope, body)
        except HTTPError as err:
            self.fail(err)
            return
        self.arg, self.loop = arg, loop
        self.wait_until = self.received + plane.admission.max_wait_s
        plane.admission.handed_over(self)
        plane.pool.submit(self)
        plane.watch_deadlines(loop)

    def fail(self, err: HTTPError) -> None:
        """The body could not be read or run() cannot take it: answer and give the place back."""
        self.plane.admission.give_up_place()
        self._answer_error(err)

    def abandon(self) -> None:
        """The client has gone: no answer is written. A request still waiting for its body or
        for a run thread gives its place back at once and never runs."""
        if self.answered:
            return
        self.answered = True
        if self.loop is None:  # not handed to the run threads yet
            self.plane.admission.give_up_place()
        elif self.take():
            self.plane.admission.finished(self)

    # --- on a run thread -------------------------------------------------------------------

    def call(self, arg):
        """run() and the encoding of its answer."""
        script = self.plane.entry
        result = script.run(**script.typed_arguments(arg)) if script.mode == "typed" else script.run(arg)
        if isinstance(result, AMLResponse):
            status, out, extra = result.status_code, result.body, result.headers
            out_type = extra.pop("Content-Type", "application/octet-stream").encode()
            extra = header_pairs(extra.items())
        elif hasattr(result, "status_code") and hasattr(result, "get_data"):  # the real azureml's (Flask)
            status, out = result.status_code, result.get_data()
            out_type = (result.headers.get("Content-Type") or "application/octet-stream").encode()
            extra = header_pairs((k, v) for k, v in result.headers.items() if k.lower() != "content-type")
        else:
            status, out_type, extra = 200, JSON, ()
            try:
                out = orjson.dumps(result, option=_NUMPY)
            except TypeError:
                try:  # the standard library also takes big integers, tuples as keys…
                    out = json.dumps(result, default=tolist).encode()
                except (TypeError, ValueError) as exc:
                    raise NotSerializable(
                        f"run() returned a {type(result).__name__}, which is not JSON-serialisable: {exc}"
                    ) from None
        collector = self.plane.collector
        if collector.enabled and collector.sampled():
            collector.write(self.rid, self.collected, out, status)
        return Response(status, out, out_type, extra)

    # --- answers (on the loop) ----------------------------------------------------------

    def expire(self, now: float) -> None:
        """Called by the data plane's deadline watch for a request handed to the run threads."""
        if not self.started:
            if now >= self.wait_until and self.take():
                self.plane.admission.finished(self)
                message = "waited longer than the max queue wait for a run slot"
                self._answer_error(HTTPError(503, "Overloaded", message, ((b"retry-after", b"1"),)))
        elif not self.answered and now - self.started >= self.plane.timeout_s:
            # The place stays taken until run() returns: its thread is still busy.
            self._answer_error(
                HTTPError(
                    504,
                    "Timeout",
                    f"run() did not return within the scoring timeout of {self.plane.config.scoring_timeout_ms} ms",
                )
            )

    def returned(self, ok: bool, result) -> None:
        """When run() has returned (maybe long after a 504); its place is free."""
        plane = self.plane
        plane.metrics.run_latency.observe(self.ended - self.started)
        plane.admission.finished(self)
        arg, self.arg = self.arg, None  # the body's text goes with the answer, not with this object
        if self.answered:
            return
        if ok:
            self._answer(result)
            return
        try:
            run_failed(plane.entry, result, self.rid, arg)
        except HTTPError as err:
            self._answer_error(err)

    def _answer_error(self, err: HTTPError) -> None:
        if err.status >= 500 or err.status == 429:
            self.plane.metrics.rejected(err.code)
        self._answer(Response(err.status, error_body(err.code, err.message, self.rid), JSON, err.headers))

    def _answer(self, response: Response) -> None:
        if self.answered:
            return
        self.answered = True
        plane = self.plane
        rid = self.rid.encode()
        status, body, content_type, headers = response
        seconds = time.perf_counter() - self.received
        plane.metrics.count(c.SCORE_PATH, status)
        plane.metrics.latency.observe(seconds)
        if plane.access.enabled:
            plane.access.write(self.scope["method"], c.SCORE_PATH, status, seconds, self.rid, self.size_in, len(body))
        self.respond(Response(status, body, content_type, ((b"x-request-id", rid), (b"x-ms-request-id", rid), *headers)))
