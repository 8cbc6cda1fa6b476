"""Admission: at most N run() calls at once, a bounded queue behind them, a bounded wait.

Counting happens on the event loop thread, so plain counters need no lock. A request takes a
*place* before its body is read and keeps it until run() has returned (or it was refused), so
at most ``max_concurrent + max_queue`` bodies are held in memory at any time. The run threads
themselves enforce ``max_concurrent`` (there are that many); the loop expires jobs that wait
in their queue longer than ``max_wait_s``.
"""

from __future__ import annotations

from .pool import Job


class Overloaded(Exception):
    """No place, or no run slot within the max wait: the client should retry later (503)."""


class Admission:
    def __init__(self, max_concurrent: int, max_queue: int, max_wait_s: float):
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.places = 0  # admitted and not finished: reading the body, queued or running
        self.jobs: set[Job] = set()  # handed to the run threads and not returned yet

    @property
    def running(self) -> int:
        """run() calls in progress (a timed-out call counts until it returns)."""
        return len(self.run_started_at())

    @property
    def queued(self) -> int:
        return self.places - self.running

    def run_started_at(self) -> list[float]:
        return [job.started for job in list(self.jobs) if job.started]

    def take_place(self) -> None:
        if self.places >= self.max_concurrent + self.max_queue:
            running = self.running
            raise Overloaded(
                f"queue full: {running} running, {self.places - running} waiting "
                f"(max concurrent {self.max_concurrent}, queue {self.max_queue})"
            )
        self.places += 1

    def give_up_place(self) -> None:
        self.places -= 1

    def handed_over(self, job: Job) -> None:
        self.jobs.add(job)

    def finished(self, job: Job) -> None:
        """The job returned from run(), or was taken back before it started."""
        self.jobs.discard(job)
        self.places -= 1
