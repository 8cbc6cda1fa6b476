"""One reconcile per object at a time; triggers that arrive meanwhile fold into one more pass.

A resource's own kopf handlers call `run()` and let kopf retry on failure. Watches on related
objects (a Node for a ComputeTarget, a Deployment for its InferenceService) call `trigger()`:
many triggers for one object while a pass runs cost one extra pass, not one each, and a failed
triggered pass is tried again later with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

from bereit.controllers.api_client import ApiError, TransientError

log = logging.getLogger(__name__)

Key = Hashable
BACKOFF_SECONDS = (1, 2, 5, 10, 20, 40, 60)
# A triggered pass starts this much later, so a flurry of events about one object (a new
# Deployment's status updates, its pods appearing) costs one pass instead of one each.
TRIGGER_DELAY_SECONDS = 0.3


class Runner:
    def __init__(self, name: str, reconcile: Callable[[Key], Awaitable[None]], parallel: asyncio.Semaphore) -> None:
        self.name = name
        self._reconcile = reconcile
        self._parallel = parallel
        self._busy: dict[Key, asyncio.Event] = {}
        self._queued: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._retry_timers: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self.passes = 0
        self.pass_seconds = 0.0  # time spent in passes, summed: with `passes`, the mean cost
        self.waited_seconds = 0.0  # time spent waiting for the key or a parallel slot

    async def run(self, key: Key) -> None:
        """Reconcile now and wait; exceptions reach the caller (kopf retries them)."""
        await self._exclusive(key)

    def trigger(self, key: Key) -> None:
        """Reconcile soon. A trigger while one is already queued (not started) is absorbed."""
        if key in self._queued:
            return
        self._queued.add(key)
        asyncio.get_running_loop().call_later(TRIGGER_DELAY_SECONDS, self._start, key)

    def _start(self, key: Key) -> None:
        task = asyncio.get_running_loop().create_task(self._triggered(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, key: Key) -> None:
        """The object is gone: drop its retry timer and failure count."""
        timer = self._retry_timers.pop(key, None)
        if timer:
            timer.cancel()
        self._failures.pop(key, None)

    async def _exclusive(self, key: Key) -> None:
        """One pass for the key, when no other pass for it runs and a parallel slot is free.

        Waiting for the key comes before taking a slot, so passes queued behind a busy key
        never hold slots that other keys could use.
        """
        began = time.monotonic()
        while True:
            while key in self._busy:
                await self._busy[key].wait()
            await self._parallel.acquire()
            if key not in self._busy:
                break
            self._parallel.release()  # another pass for the key started meanwhile
        done = self._busy[key] = asyncio.Event()
        # From here on, a new trigger means "something changed after this pass read its inputs".
        self._queued.discard(key)
        started = time.monotonic()
        self.waited_seconds += started - began
        try:
            self.passes += 1
            await self._reconcile(key)
            self._failures.pop(key, None)
        finally:
            self.pass_seconds += time.monotonic() - started
            del self._busy[key]
            self._parallel.release()
            done.set()

    async def _triggered(self, key: Key) -> None:
        try:
            await self._exclusive(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a triggered pass is retried later
            if _stopping():
                return  # the operator is shutting down mid-request: nothing to report or retry
            self._queued.discard(key)
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1]
            level = logging.INFO if isinstance(exc, TransientError) else logging.WARNING
            log.log(
                level,
                "%s reconcile failed, retrying in %ss: %s",
                self.name, delay, exc if isinstance(exc, ApiError) else repr(exc),
                exc_info=not isinstance(exc, ApiError),
                extra={"object": str(key)},
            )
            old = self._retry_timers.pop(key, None)
            if old:
                old.cancel()
            self._retry_timers[key] = asyncio.get_running_loop().call_later(delay, self._retry, key)

    def _retry(self, key: Key) -> None:
        self._retry_timers.pop(key, None)
        self.trigger(key)

    async def drain(self) -> None:
        """Wait for triggered passes (for a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()
        for task in list(self._tasks):
            task.cancel()


def _stopping() -> bool:
    try:
        return asyncio.get_running_loop().is_closed()
    except RuntimeError:
        return True  # finalised after the event loop stopped
