"""A bounded load client: requests at a steady rate (or back to back) for at most a set time.

Every request is a new connection, as independent clients make them, so a replica that goes
away cannot hide behind a kept-alive connection. A request fails when it gets no answer, an
answer other than 200, or a body the `valid` check refuses. Nothing is retried.
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from .scoring import request

MAX_ERRORS_KEPT = 20


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    def __str__(self) -> str:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items(), key=str))
        return (f"{self.sent} requests in {self.seconds:.1f} s ({self.rate:.1f}/s), {self.failed} failed "
                f"[{statuses}], latency p50 {self.percentile(0.5) * 1000:.0f} ms, "
                f"p99 {self.percentile(0.99) * 1000:.0f} ms")


class LoadClient:
    """Start with start() (or `with`), end with stop(); it also ends by itself at max_seconds.

    rate: requests per second, spread evenly; None sends back to back from every worker.
    key: read before each request, so set_key() switches keys mid-run.
    """

    def __init__(
        self,
        url: str,
        body: bytes,
        key: str | None,
        *,
        rate: float | None,
        max_seconds: float,
        max_requests: int = 100_000,
        workers: int = 8,
        timeout: float = 10.0,
        valid: Callable[[bytes], bool] | None = None,
    ) -> None:
        if max_seconds <= 0 or max_requests <= 0:
            raise ValueError("a load client needs a time limit and a request limit")
        self.url, self.body, self._key = url, body, key
        self.rate, self.max_seconds, self.max_requests = rate, max_seconds, max_requests
        self.workers, self.timeout, self.valid = workers, timeout, valid
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tickets: queue.Queue[int] = queue.Queue(maxsize=workers * 2)
        self._threads: list[threading.Thread] = []
        self._began = 0.0

    def set_key(self, key: str | None) -> None:
        with self._lock:
            self._key = key

    def start(self) -> LoadClient:
        self._began = time.monotonic()
        if self.rate is not None:
            self._threads.append(threading.Thread(target=self._dispatch, daemon=True))
        self._threads += [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def _over(self) -> bool:
        return self._stop.is_set() or time.monotonic() - self._began > self.max_seconds

    def _claim(self) -> bool:
        with self._lock:
            if self.result.sent >= self.max_requests:
                return False
            self.result.sent += 1
            return True

    def _dispatch(self) -> None:
        number = 0
        while not self._over():
            due = self._began + number / self.rate
            pause = due - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)
                continue
            try:
                self._tickets.put(number, timeout=0.5)  # blocks when every worker is busy
                number += 1
            except queue.Full:
                continue

    def _next(self) -> bool:
        if self.rate is None:
            return not self._over()
        while not self._over():
            try:
                self._tickets.get(timeout=0.2)
                return True
            except queue.Empty:
                continue
        return False

    def _work(self) -> None:
        while self._next():
            if not self._claim():
                return
            with self._lock:
                key = self._key
            began = time.monotonic()
            outcome: str | int
            try:
                reply = request(self.url, self.body, key, self.timeout)
                outcome = reply.status
                good = reply.status == 200 and (self.valid is None or self.valid(reply.body))
                problem = None if good else f"{reply.status}: {reply.body[:200].decode(errors='replace')}"
            except (OSError, http.client.HTTPException) as error:
                outcome, good, problem = type(error).__name__, False, f"{type(error).__name__}: {error}"
            with self._lock:
                self.result.statuses[outcome] += 1
                self.result.latencies.append(time.monotonic() - began)
                if good:
                    self.result.ok += 1
                elif len(self.result.errors) < MAX_ERRORS_KEPT:
                    self.result.errors.append(f"t+{began - self._began:.1f}s {problem}")

    def snapshot(self) -> LoadResult:
        with self._lock:
            copy = LoadResult(self.result.sent, self.result.ok, Counter(self.result.statuses),
                              list(self.result.errors), time.monotonic() - self._began)
        return copy

    def stop(self) -> LoadResult:
        """Ends the run; requests in flight finish and count."""
        self._stop.set()
        self.result.seconds = min(time.monotonic() - self._began, self.max_seconds)
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.result

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
