"""Admission: at most N run() calls at once, a bounded queue behind them, a bounded wait.

Everything here runs on the event loop thread, so plain counters need no lock. A request
takes a *place* (running or queued) before its body is read, so at most
``max_concurrent + max_queue`` bodies are held in memory at any time.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Overloaded(Exception):
    """No place, or no run slot within the max wait: the client should retry later (503)."""


class Admission:
    def __init__(self, max_concurrent: int, max_queue: int, max_wait_s: float):
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.running = 0  # run slots in use (a timed-out run() keeps its slot until it returns)
        self.places = 0  # requests admitted and not yet running
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def queued(self) -> int:
        return self.places

    def take_place(self) -> None:
        if self.running + self.places >= self.max_concurrent + self.max_queue:
            raise Overloaded(
                f"queue full: {self.running} running, {self.places} waiting "
                f"(max concurrent {self.max_concurrent}, queue {self.max_queue})"
            )
        self.places += 1

    def give_up_place(self) -> None:
        self.places -= 1

    async def start(self, waited_s: float = 0.0) -> None:
        """Turn the place into a run slot, waiting at most what is left of the max wait."""
        if self.running < self.max_concurrent and not self._waiters:
            self.places -= 1
            self.running += 1
            return
        budget = self.max_wait_s - waited_s
        if budget <= 0:
            self.places -= 1
            raise Overloaded("no run slot free and no time left to wait")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(budget, _expire, fut)
        try:
            await fut  # finish() hands the slot over: running already counts us
        except Overloaded:
            self.places -= 1
            raise
        except asyncio.CancelledError:
            self._cancelled(fut)
            raise
        finally:
            timer.cancel()
        self.places -= 1

    def _cancelled(self, fut: asyncio.Future) -> None:
        # The client went away while waiting: a slot handed over meanwhile goes to the next.
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            self.finish()
        else:
            try:
                self._waiters.remove(fut)
            except ValueError:
                pass
        self.places -= 1

    def finish(self) -> None:
        """A run() call returned: its slot goes to the longest waiter, or is freed."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.running -= 1


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(Overloaded("waited longer than the max queue wait for a run slot"))
