"""The threads that call the user's run(): exactly as many as the concurrency limit.

run() is synchronous user code; it must never block the event loop. Admitted requests go
straight into one ``SimpleQueue`` and a free thread takes the next one itself, so a busy
server hands work over without waking the loop between calls (bench/README.md, "Choosing
the stack"). The answer goes back with ``call_soon_threadsafe``.

A job still in the queue when its max wait is over is *claimed* by the loop (answered 503)
and skipped by the threads: whoever draws the first number from the job's ``claim`` counter
decides. ``next()`` on an ``itertools.count`` is one C call, atomic under the GIL, and much
cheaper than allocating and acquiring a lock per job.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class Job:
    """One call on a run thread, as the threads see it. Subclasses say what is called
    (``call``) and where the outcome goes (``returned``, on ``loop``). A /score request is one
    itself (:class:`~bereit.server.scoring.ScoreRequest`): one object per request, not two
    pointing at each other."""

    __slots__ = ("arg", "loop", "claim", "started", "ended")

    def __init__(self, arg: Any = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.arg, self.loop = arg, loop
        self.claim = itertools.count()
        self.started = 0.0  # perf_counter() when a thread began the call; 0 while queued
        self.ended = 0.0  # perf_counter() when it returned

    def call(self, arg: Any) -> Any:
        raise NotImplementedError

    def returned(self, ok: bool, result: Any) -> None:
        raise NotImplementedError

    def take(self) -> bool:
        """True for the first caller only: the thread about to run it, or the loop expiring it."""
        return next(self.claim) == 0

    def report(self, ok: bool, result: Any) -> None:
        """On the run thread: hand the outcome to the loop (or, without one, return it here)."""
        if self.loop is None:
            self.returned(ok, result)
            return
        try:
            self.loop.call_soon_threadsafe(self.returned, ok, result)
        except RuntimeError:
            pass  # the loop has closed: the server is gone, nobody waits for this answer


class FunctionJob(Job):
    """``fn(arg)`` on a run thread, then ``done(job, ok, result)``: init(), and tests."""

    __slots__ = ("fn", "done")

    def __init__(self, fn: Callable[[Any], Any], arg: Any, loop: asyncio.AbstractEventLoop | None, done: Callable) -> None:
        super().__init__(arg, loop)
        self.fn, self.done = fn, done

    def call(self, arg: Any) -> Any:
        return self.fn(arg)

    def returned(self, ok: bool, result: Any) -> None:
        self.done(self, ok, result)


class RunPool:
    def __init__(self, size: int, name: str = "bereit-run"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for t in self._threads:
            t.start()

    def submit(self, job: Job) -> None:
        """Queue ``job``; a thread calls ``job.call(job.arg)``, then ``job.returned(ok, result)``
        runs on ``job.loop``, unless the loop has taken the job back first."""
        self._jobs.put(job)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on a pool thread and wait for it (used for init(), so that with one
        thread init() and run() share it, for libraries that keep per-thread state)."""
        box: list = []
        ready = threading.Event()

        def finished(_job: Job, ok: bool, value: Any) -> None:
            box.append((ok, value))
            ready.set()

        self._jobs.put(FunctionJob(lambda _: fn(), None, None, finished))
        ready.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            # Set before the claim, so the loop never sees a claimed job without a start time.
            job.started = time.perf_counter()
            if not job.take():
                continue  # its max wait ran out in the queue; the loop has answered it
            try:
                result, ok = job.call(job.arg), True
            except BaseException as exc:  # noqa: BLE001 - reported to the request, thread lives on
                result, ok = exc, False
            job.ended = time.perf_counter()
            job.report(ok, result)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
