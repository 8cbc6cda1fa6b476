"""Waiting for a condition, saying what is seen while it is not there yet."""

from __future__ import annotations

import time
from collections.abc import Callable

from .progress import WorkflowError, format_seconds

# check() answers (done, what it sees now); `what it sees` is shown whenever it changes.
Check = Callable[[], tuple[bool, str]]


def wait_for(
    what: str,
    check: Check,
    *,
    timeout: float,
    interval: float = 2.0,
    show: Callable[[str], None] | None = None,
    diagnose: Callable[[], str] | None = None,
) -> str:
    """Poll until check() says done; returns its last words. Raises WorkflowError on timeout."""
    began = time.monotonic()
    last = None
    while True:
        try:
            done, seen = check()
        except WorkflowError as error:  # a flaky kubectl call: say so and keep waiting
            done, seen = False, f"({error})"
        if seen != last and show is not None:
            show(f"[{format_seconds(time.monotonic() - began):>8}] {seen}")
        last = seen
        if done:
            return seen
        if time.monotonic() - began > timeout:
            message = f"{what}: not within {format_seconds(timeout)}; last seen: {seen}"
            if diagnose is not None:
                try:
                    message += "\n" + diagnose()
                except WorkflowError as error:
                    message += f"\n(could not gather details: {error})"
            raise WorkflowError(message)
        time.sleep(interval)
