"""The threads that call the user's run(): exactly as many as the concurrency limit.

run() is synchronous user code; it must never block the event loop. A plain
``SimpleQueue`` feeds long-lived threads (cheaper than an executor's futures), and the result
goes back to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any


class RunPool:
    def __init__(self, size: int, name: str = "bereit-run"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for t in self._threads:
            t.start()

    def submit(self, loop: asyncio.AbstractEventLoop, fn: Callable[[Any], Any], arg: Any, done: Callable) -> None:
        """Call ``fn(arg)`` on a pool thread, then ``done(ok, result_or_exception)`` on ``loop``."""
        self._jobs.put((loop, fn, arg, done))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on a pool thread and wait for it (used for init(), so that with one
        thread init() and run() share it, for libraries that keep per-thread state)."""
        box: list = []
        ready = threading.Event()

        def job(_):
            try:
                box.append((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box.append((False, exc))
            finally:
                ready.set()

        self._jobs.put((None, job, None, None))
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
            loop, fn, arg, done = job
            try:
                result, ok = fn(arg), True
            except BaseException as exc:  # noqa: BLE001 - reported to the request, thread lives on
                result, ok = exc, False
            if done is not None:
                try:
                    loop.call_soon_threadsafe(done, ok, result)
                except RuntimeError:
                    pass  # the loop has closed: the server is gone, nobody waits for this answer

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
