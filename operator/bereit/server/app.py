"""The ASGI application: routes, the /score data path, and errors mapped to HTTP in one place.

Written against bare ASGI (no framework): /score is the hot path and every microsecond spent
outside run() is overhead the user pays on each request. ``create_app`` is the factory tests
use in-process; ``main.serve`` runs it under uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial

import orjson

from bereit import constants as c
from bereit.packages import PackageInstallError, ensure_extra_packages

from . import entry as entry_mod
from . import logs, swagger
from .auth import AuthError, Authenticator
from .collect import Collector
from .compat.aml_request import AMLRequest
from .compat.aml_response import AMLResponse
from .config import ServerConfig
from .entry import EntryScript, EntryScriptError
from .limits import Admission, Overloaded
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .pool import Job, RunPool

JSON = b"application/json"
# Content types run(data) can take as text; anything else needs @rawhttp (415 otherwise).
_TEXT_TYPES = (b"application/json", b"text/", b"application/x-www-form-urlencoded")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# Python's own json module gives up near 1000 levels (RecursionError inside run()); refuse
# deeper documents up front with a 400.
MAX_JSON_DEPTH = 512
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A run() call this far past the scoring timeout holds its thread for good: only a restart
# (liveness failing) gets the slot back, since a Python thread cannot be stopped.
STUCK_FACTOR, STUCK_EXTRA_S = 2, 30.0


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class _NotSerializable(Exception):
    pass


def _timeout(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


# Our own generator, seeded from the OS: a script calling random.seed() cannot make two
# replicas hand out the same ids.
_request_ids = random.Random()


def _new_request_id() -> str:
    # Unique, not secret: os.urandom would be a syscall per request (~2 µs here).
    return f"{_request_ids.getrandbits(64):016x}"


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 128 and all(33 <= b < 127 for b in value)


class ServerApp:
    def __init__(self, config: ServerConfig, access_stream=None):
        self.config = config
        self.admission = Admission(
            config.max_concurrent_requests, config.max_queue_length, config.max_queue_wait_ms / 1000
        )
        self.auth = Authenticator(config.auth_mode, config.keys_dir, config.service_name)
        self.metrics = Metrics(lambda: self.admission, lambda: self.ready)
        self.collector = Collector(config.data_collection, config.data_collection_sample_rate, config.service_name)
        self.access = logs.AccessLog(config.access_log, config.log_format, access_stream)
        self.pool = RunPool(config.max_concurrent_requests)
        self.entry: EntryScript | None = None
        self.ready = False
        self.draining = False
        self.init_error: EntryScriptError | None = None
        self.init_done = threading.Event()
        # Called on the loop when init() fails (main.serve stops the server with exit code 1).
        self.on_init_failed: Callable[[EntryScriptError], None] | None = None
        self.on_init_finished: Callable[[], None] | None = None
        self._timeout_s = config.scoring_timeout_ms / 1000
        self._swagger: dict[str, bytes] = {}
        self._title = config.service_name or "bereit"

    # --- start-up ------------------------------------------------------------------------

    def load_and_init(self) -> None:
        """Import the entry script and call init() (blocking; the server answers meanwhile)."""
        started = time.perf_counter()
        try:
            ensure_extra_packages()  # BEREIT_EXTRA_PACKAGES, installed before the script imports them
            entry_mod.set_model_dir(self.config.model_dir)
            script = entry_mod.load(self.config.entry_script)
            self.pool.call(script.init)
        except EntryScriptError as exc:
            self.init_error = exc
        except PackageInstallError as exc:
            self.init_error = EntryScriptError(str(exc))
        except BaseException as exc:  # noqa: BLE001 - reported like any init failure
            self.init_error = EntryScriptError(f"{type(exc).__name__}: {exc}", None, traceback.format_exc())
        else:
            self.entry = script
            auth = self.config.auth_mode != "none"
            self._swagger = {
                "2": orjson.dumps(swagger.swagger2(script, self._title, auth)),
                "3": orjson.dumps(swagger.openapi3(script, self._title, auth)),
            }
            self.metrics.init_seconds.set(time.perf_counter() - started)
            logs.event(
                logging.INFO, "init() finished", seconds=round(time.perf_counter() - started, 3), mode=script.mode
            )
            self.ready = True
        finally:
            self.init_done.set()

    async def _startup(self) -> None:
        loop = asyncio.get_running_loop()

        def init_then_report() -> None:
            self.load_and_init()
            if self.init_error is not None and self.on_init_failed is not None:
                loop.call_soon_threadsafe(self.on_init_failed, self.init_error)
            elif self.init_error is None and self.on_init_finished is not None:
                loop.call_soon_threadsafe(self.on_init_finished)

        threading.Thread(target=init_then_report, name="bereit-init", daemon=True).start()
        self._flusher = asyncio.ensure_future(self._flush_logs())

    async def _flush_logs(self) -> None:
        # Access lines wait in memory (see logs.AccessLog); this keeps them a second behind at most.
        while True:
            await asyncio.sleep(1.0)
            self.access.flush()

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == c.SCORE_PATH:
                await self._score(scope, receive, send)
            else:
                await self._other(path, scope, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self._startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self._flusher.cancel()
                    self.access.flush()
                    self.pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _other(self, path: str, scope, send) -> None:
        started = time.perf_counter()
        method = scope["method"]
        status, body, ctype, extra = 200, b"", JSON, ()
        if method not in ("GET", "HEAD"):
            status, body, extra = 405, _error_body("MethodNotAllowed", f"{method} is not allowed on {path}", ""), (
                (b"allow", b"GET, HEAD"),
            )
        elif path == c.LIVENESS_PATH:
            stuck = self._stuck_for()
            if stuck:
                status, body = 500, _error_body("Stuck", f"a run() call has been running for {stuck:.0f} s", "")
            else:
                body, ctype = b"Healthy", b"text/plain; charset=utf-8"
        elif path == c.READINESS_PATH:
            status, body, ctype = self._readiness()
        elif path == c.SWAGGER_PATH:
            version = _query_value(scope.get("query_string", b""), b"version") or b"2"
            doc = self._swagger.get(version.decode("latin-1").split(".")[0])
            if not self._swagger:
                status, body = 503, _error_body("NotReady", "the swagger document exists once init() has finished", "")
            elif doc is None:
                status, body = 404, _error_body("NotFound", "swagger versions: 2, 3 (?version=3)", "")
            else:
                body = doc
        elif path == c.METRICS_PATH:
            body, ctype = self.metrics.render(), METRICS_CONTENT_TYPE.encode()
        else:
            status, body = 404, _error_body("NotFound", f"no route {path}", "")
        route = path if status != 404 else "other"
        await _send(send, status, b"" if method == "HEAD" else body, ctype, extra)
        self.metrics.count(route, status)
        if self.access.enabled and path not in (c.LIVENESS_PATH, c.READINESS_PATH, c.METRICS_PATH):
            self.access.write(method, path, status, started, "", 0, len(body))

    def _readiness(self) -> tuple[int, bytes, bytes]:
        if self.draining:
            return 503, b"Shutting down", b"text/plain"
        if not self.ready:
            if self.init_error is not None:
                return 503, f"init() failed: {self.init_error}".encode(), b"text/plain"
            return 503, b"init() is running", b"text/plain"
        now = time.perf_counter()
        overdue = sum(1 for t in self.admission.run_started_at() if now - t > self._timeout_s)
        if overdue >= self.config.max_concurrent_requests:
            return 503, b"every run slot is held by a run() call past the scoring timeout", b"text/plain"
        return 200, b"Ready", b"text/plain"

    def _stuck_for(self) -> float:
        started = self.admission.run_started_at()
        if not started:
            return 0.0
        longest = time.perf_counter() - min(started)
        return longest if longest > STUCK_FACTOR * self._timeout_s + STUCK_EXTRA_S else 0.0

    # --- /score ----------------------------------------------------------------------------

    async def _score(self, scope, receive, send) -> None:
        started = time.perf_counter()
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
        rid = request_id.decode() if request_id is not None and _valid_request_id(request_id) else _new_request_id()
        size_in = 0
        try:
            status, out, out_type, extra, size_in = await self._score_checked(
                scope, receive, authorization, ctype, length, rid, started
            )
        except HTTPError as err:
            status, out_type, extra = err.status, JSON, err.headers
            out = _error_body(err.code, err.message, rid)
            if status >= 500 or status == 429:
                self.metrics.rejected.labels(err.code).inc()
        rid_b = rid.encode()
        await _send(send, status, out, out_type, ((b"x-request-id", rid_b), (b"x-ms-request-id", rid_b), *extra))
        self.metrics.count(c.SCORE_PATH, status)
        self.metrics.latency.observe(time.perf_counter() - started)
        if self.access.enabled:
            self.access.write(scope["method"], c.SCORE_PATH, status, started, rid, size_in, len(out))

    async def _score_checked(self, scope, receive, authorization, ctype, length, rid, started):
        """Every check in order; raises HTTPError for anything that is not run()'s own answer."""
        script = self.entry
        method = scope["method"]
        if method != "POST" and not (script is not None and script.mode == "raw"):
            raise HTTPError(405, "MethodNotAllowed", f"use POST on {c.SCORE_PATH}", ((b"allow", b"POST"),))
        if script is None:
            if self.init_error is not None:
                raise HTTPError(503, "InitFailed", f"init() failed: {self.init_error}", ((b"retry-after", b"10"),))
            raise HTTPError(503, "NotReady", "init() has not finished yet", ((b"retry-after", b"5"),))
        try:
            self.auth.check(authorization, scope.get("query_string", b""))
        except AuthError as exc:
            raise HTTPError(401, "Unauthorized", str(exc), ((b"www-authenticate", b"Bearer"),)) from None
        limit = self.config.max_request_bytes
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise HTTPError(400, "BadRequest", "Content-Length is not a number") from None
            if declared > limit:
                raise HTTPError(413, "PayloadTooLarge", f"body of {declared} bytes is over the limit of {limit} bytes")
        if script.mode != "raw" and ctype is not None and not ctype.lower().startswith(_TEXT_TYPES):
            raise HTTPError(
                415,
                "UnsupportedMediaType",
                f"content type {ctype.decode('latin-1')!r}: run(data) takes JSON or text "
                "(application/json, text/*); decorate run() with @rawhttp to take other bodies",
            )
        admission = self.admission
        try:
            admission.take_place()
        except Overloaded as exc:
            raise HTTPError(503, "Overloaded", str(exc), ((b"retry-after", b"1"),)) from None
        try:
            body = await _read_body(receive, limit)
            arg = self._argument(script, scope, body, ctype)
        except BaseException:
            admission.give_up_place()
            raise
        status, out, out_type, extra = await self._call_run(script, arg, body, rid, started)
        return status, out, out_type, extra, len(body)

    def _argument(self, script: EntryScript, scope, body: bytes, ctype: bytes | None):
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

    async def _call_run(self, script: EntryScript, arg, body: bytes, rid: str, started: float):
        loop = asyncio.get_running_loop()
        job = Job(partial(self._invoke, script, body, rid), arg, loop, self._returned)
        job.future = loop.create_future()
        self.admission.handed_over(job)
        self.pool.submit(job)
        job.wait_until = started + self.admission.max_wait_s
        job.timer = loop.call_later(min(self.admission.max_wait_s, self._timeout_s), self._check_deadlines, job)
        try:
            outcome = await job.future
        except Overloaded as exc:
            raise HTTPError(503, "Overloaded", str(exc), ((b"retry-after", b"1"),)) from None
        except asyncio.CancelledError:
            if job.take():  # never started: no thread will report it
                job.timer.cancel()
                self.admission.finished(job)
            raise
        if outcome is None:
            raise HTTPError(
                504,
                "Timeout",
                f"run() did not return within the scoring timeout of {self.config.scoring_timeout_ms} ms",
            )
        ok, result = outcome
        if ok:
            return result
        return self._run_failed(script, result, rid, arg)

    def _check_deadlines(self, job: Job) -> None:
        """On the loop: a queued job past the max wait is refused (503); a running one gets its
        scoring timeout (504), counted from the start of run(). The loop cannot see when a
        thread takes a job, so while it is queued this looks again after at most a timeout."""
        now = time.perf_counter()
        if not job.started and now >= job.wait_until and job.take():
            self.admission.finished(job)
            if not job.future.done():
                job.future.set_exception(Overloaded("waited longer than the max queue wait for a run slot"))
        elif not job.started:  # still queued, within its max wait
            next_check = min(job.wait_until, now + self._timeout_s)
            job.timer = job.loop.call_later(next_check - now, self._check_deadlines, job)
        else:
            job.timer = job.loop.call_later(job.started + self._timeout_s - now, _timeout, job.future)

    def _returned(self, job: Job, ok: bool, result) -> None:
        """On the loop, when run() has returned (maybe long after a 504)."""
        self.metrics.run_latency.observe(time.perf_counter() - job.started)
        job.timer.cancel()
        self.admission.finished(job)
        if not job.future.done():
            job.future.set_result((ok, result))

    def _invoke(self, script: EntryScript, body: bytes, rid: str, arg):
        """On a pool thread: run() and the encoding of its answer."""
        result = script.run(**script.typed_arguments(arg)) if script.mode == "typed" else script.run(arg)
        if isinstance(result, AMLResponse):
            status, out, extra = result.status_code, result.body, result.headers
            out_type = extra.pop("Content-Type", "application/octet-stream").encode()
            extra = tuple((k.lower().encode(), str(v).encode()) for k, v in extra.items())
        elif hasattr(result, "status_code") and hasattr(result, "get_data"):  # the real azureml's (Flask)
            status, out = result.status_code, result.get_data()
            out_type = (result.headers.get("Content-Type") or "application/octet-stream").encode()
            extra = tuple(
                (k.lower().encode(), str(v).encode()) for k, v in result.headers.items() if k.lower() != "content-type"
            )
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
        if self.collector.enabled and self.collector.sampled():
            self.collector.write(rid, body, out, status)
        return status, out, out_type, extra

    def _run_failed(self, script: EntryScript, exc: BaseException, rid: str, arg):
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


def _query_value(query: bytes, name: bytes) -> bytes | None:
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == name:
            return value
    return None


def _error_body(code: str, message: str, rid: str) -> bytes:
    return orjson.dumps({"error": message, "code": code, "request_id": rid})


async def _send(send, status: int, body: bytes, ctype: bytes, extra=()) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(config: ServerConfig, access_stream=None) -> ServerApp:
    """The ASGI app for ``config``. init() runs when the ASGI lifespan starts (or call
    ``load_and_init()`` yourself); /ready answers 200 once it has finished."""
    return ServerApp(config, access_stream)
