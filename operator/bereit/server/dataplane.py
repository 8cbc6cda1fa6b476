"""The data plane: what stands between the endpoints and the user's entry script.

One ``DataPlane`` per server owns admission (:mod:`~bereit.server.limits`), the run threads
(:mod:`~bereit.server.pool`), auth, the entry script and its init(), data collection, the
metrics and access log, readiness, and the deadlines of the requests handed to the run
threads. It knows nothing of HTTP: the endpoints (:mod:`bereit.server.app`,
:mod:`bereit.server.scoring`) turn what it says into responses, and a ``ScoreRequest`` reads
its parts directly, so a request pays no call to get at them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Callable

import orjson

from . import entry as entry_mod
from . import logs, swagger
from .auth import Authenticator
from .collect import Collector
from .config import ServerConfig
from .entry import EntryScript, EntryScriptError
from .limits import Admission
from .metrics import Metrics
from .packages import PackageInstallError, ensure_extra_packages
from .pool import RunPool

# A run() call this far past the scoring timeout holds its thread for good: only a restart
# (liveness failing) gets the slot back, since a Python thread cannot be stopped.
STUCK_FACTOR, STUCK_EXTRA_S = 2, 30.0
# How often queued and running requests are checked against their max wait and scoring
# timeout: a tenth of the shorter one, within these bounds (one timer for all requests).
DEADLINE_TICK_MIN_S, DEADLINE_TICK_MAX_S = 0.005, 0.1


class DataPlane:
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
        # The OpenAPI document by major version ("2", "3"), made once init() has finished.
        self.swagger: dict[str, bytes] = {}
        self.ready = False
        self.draining = False
        self.init_error: EntryScriptError | None = None
        # Called on the loop when init() fails (main.serve stops the server with exit code 1).
        self.on_init_failed: Callable[[EntryScriptError], None] | None = None
        self.on_init_finished: Callable[[], None] | None = None
        self.timeout_s = config.scoring_timeout_ms / 1000
        self._deadline_tick = min(
            max(min(self.admission.max_wait_s, self.timeout_s) / 10, DEADLINE_TICK_MIN_S), DEADLINE_TICK_MAX_S
        )
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Future | None = None

    # --- start-up and shut-down -------------------------------------------------------------

    def load_and_init(self) -> None:
        """Import the entry script and call init() (blocking; the server answers meanwhile)."""
        started = time.perf_counter()
        try:
            ensure_extra_packages()  # BEREIT_EXTRA_PACKAGES, installed before the script imports them
            entry_mod.set_model_dir(self.config.model_dir)
            script = entry_mod.load(self.config.entry_script, fast_json=self.config.fast_json)
            self.pool.call(script.init)
        except EntryScriptError as exc:
            self.init_error = exc
        except PackageInstallError as exc:
            self.init_error = EntryScriptError(str(exc))
        except BaseException as exc:  # noqa: BLE001 - reported like any init failure
            self.init_error = EntryScriptError(f"{type(exc).__name__}: {exc}", None, traceback.format_exc())
        else:
            self.entry = script
            title, auth = self.config.service_name or "bereit", self.config.auth_mode != "none"
            self.swagger = {
                "2": orjson.dumps(swagger.swagger2(script, title, auth)),
                "3": orjson.dumps(swagger.openapi3(script, title, auth)),
            }
            self.metrics.init_seconds.set(time.perf_counter() - started)
            logs.event(
                logging.INFO, "init() finished", seconds=round(time.perf_counter() - started, 3), mode=script.mode
            )
            self.ready = True

    def start(self) -> None:
        """On the running loop: init() on a thread of its own, and the access log's flusher."""
        loop = asyncio.get_running_loop()

        def init_then_report() -> None:
            self.load_and_init()
            if self.init_error is not None and self.on_init_failed is not None:
                loop.call_soon_threadsafe(self.on_init_failed, self.init_error)
            elif self.init_error is None and self.on_init_finished is not None:
                loop.call_soon_threadsafe(self.on_init_finished)

        threading.Thread(target=init_then_report, name="bereit-init", daemon=True).start()
        self._flusher = asyncio.ensure_future(self._flush_logs())

    def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self.access.flush()
        self.pool.close()

    async def _flush_logs(self) -> None:
        # Access lines wait in memory (see logs.AccessLog); this keeps them a second behind at most.
        while True:
            await asyncio.sleep(1.0)
            self.access.flush()

    # --- deadlines ------------------------------------------------------------------------

    def watch_deadlines(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure the deadline check runs while requests are with the run threads."""
        if self._deadline_timer is None:
            self._deadline_timer = loop.call_later(self._deadline_tick, self._check_deadlines, loop)

    def _check_deadlines(self, loop: asyncio.AbstractEventLoop) -> None:
        # A queued request past its max wait gets 503, a run() past the scoring timeout 504
        # (counted from the start of run()); at most one tick late. The jobs are the
        # endpoints' ScoreRequests, and each one answers for itself (expire).
        now = time.perf_counter()
        for request in list(self.admission.jobs):
            request.expire(now)
        self._deadline_timer = None
        if self.admission.jobs:
            self.watch_deadlines(loop)

    # --- health ---------------------------------------------------------------------------

    def unready_reason(self) -> str | None:
        """Why the server should take no traffic now, or None when it should."""
        if self.draining:
            return "Shutting down"
        if not self.ready:
            if self.init_error is not None:
                return f"init() failed: {self.init_error}"
            return "init() is running"
        now = time.perf_counter()
        overdue = sum(1 for t in self.admission.run_started_at() if now - t > self.timeout_s)
        if overdue >= self.config.max_concurrent_requests:
            return "every run slot is held by a run() call past the scoring timeout"
        return None

    def stuck_for(self) -> float:
        """Seconds the longest run() call has been running, once that means it never returns; else 0."""
        started = self.admission.run_started_at()
        if not started:
            return 0.0
        longest = time.perf_counter() - min(started)
        return longest if longest > STUCK_FACTOR * self.timeout_s + STUCK_EXTRA_S else 0.0
