"""The server's application: start-up, the small routes, and the ASGI adapter.

/score itself lives in :mod:`bereit.server.scoring`; bereit-server's own HTTP connection
(:mod:`bereit.server.connection`) calls it without ASGI in between, since every microsecond
outside run() is overhead the user pays on each request. The ASGI interface stays for tests
and for running the app under any ASGI server. ``create_app`` is the factory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Callable

import orjson

from bereit import constants as c

from . import entry as entry_mod
from . import logs, swagger
from .auth import Authenticator
from .collect import Collector
from .config import ServerConfig
from .entry import EntryScript, EntryScriptError
from .limits import Admission
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .packages import PackageInstallError, ensure_extra_packages
from .pool import RunPool
from .scoring import JSON, HTTPError, Response, ScoreRequest, error_body

# A run() call this far past the scoring timeout holds its thread for good: only a restart
# (liveness failing) gets the slot back, since a Python thread cannot be stopped.
STUCK_FACTOR, STUCK_EXTRA_S = 2, 30.0
# How often queued and running requests are checked against their max wait and scoring
# timeout: a tenth of the shorter one, within these bounds (one timer for all requests).
DEADLINE_TICK_MIN_S, DEADLINE_TICK_MAX_S = 0.005, 0.1


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
        self.timeout_s = config.scoring_timeout_ms / 1000
        self._deadline_tick = min(
            max(min(self.admission.max_wait_s, self.timeout_s) / 10, DEADLINE_TICK_MIN_S), DEADLINE_TICK_MAX_S
        )
        self._deadline_timer: asyncio.TimerHandle | None = None
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
            if scope["path"] == c.SCORE_PATH:
                await self._score_asgi(scope, receive, send)
            else:
                response = self.other(scope["method"], scope["path"], scope.get("query_string", b""))
                await _send(send, response, scope["method"] == "HEAD")
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

    async def _score_asgi(self, scope, receive, send) -> None:
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        request = ScoreRequest.begin(self, scope, answer.set_result)
        if request is not None:
            try:
                body = await _read_body(receive, self.config.max_request_bytes)
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

    # --- requests -------------------------------------------------------------------------

    def other(self, method: str, path: str, query: bytes) -> Response:
        """Every route but /score (all synchronous), recorded in the metrics and access log."""
        started = time.perf_counter()
        status, body, ctype, extra = 200, b"", JSON, ()
        if method not in ("GET", "HEAD"):
            status, body, extra = 405, error_body("MethodNotAllowed", f"{method} is not allowed on {path}", ""), (
                (b"allow", b"GET, HEAD"),
            )
        elif path == c.LIVENESS_PATH:
            stuck = self._stuck_for()
            if stuck:
                status, body = 500, error_body("Stuck", f"a run() call has been running for {stuck:.0f} s", "")
            else:
                body, ctype = b"Healthy", b"text/plain; charset=utf-8"
        elif path == c.READINESS_PATH:
            status, body, ctype = self._readiness()
        elif path == c.SWAGGER_PATH:
            version = _query_value(query, b"version") or b"2"
            doc = self._swagger.get(version.decode("latin-1").split(".")[0])
            if not self._swagger:
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

    def watch_deadlines(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure the deadline check runs while requests are with the run threads."""
        if self._deadline_timer is None:
            self._deadline_timer = loop.call_later(self._deadline_tick, self._check_deadlines, loop)

    def _check_deadlines(self, loop: asyncio.AbstractEventLoop) -> None:
        # A queued request past its max wait gets 503, a run() past the scoring timeout 504
        # (counted from the start of run()); at most one tick late.
        now = time.perf_counter()
        for request in list(self.admission.jobs):  # ScoreRequests, handed to the run threads
            request.expire(now)
        self._deadline_timer = None
        if self.admission.jobs:
            self.watch_deadlines(loop)

    def _readiness(self) -> tuple[int, bytes, bytes]:
        if self.draining:
            return 503, b"Shutting down", b"text/plain"
        if not self.ready:
            if self.init_error is not None:
                return 503, f"init() failed: {self.init_error}".encode(), b"text/plain"
            return 503, b"init() is running", b"text/plain"
        now = time.perf_counter()
        overdue = sum(1 for t in self.admission.run_started_at() if now - t > self.timeout_s)
        if overdue >= self.config.max_concurrent_requests:
            return 503, b"every run slot is held by a run() call past the scoring timeout", b"text/plain"
        return 200, b"Ready", b"text/plain"

    def _stuck_for(self) -> float:
        started = self.admission.run_started_at()
        if not started:
            return 0.0
        longest = time.perf_counter() - min(started)
        return longest if longest > STUCK_FACTOR * self.timeout_s + STUCK_EXTRA_S else 0.0


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
    return ServerApp(config, access_stream)
