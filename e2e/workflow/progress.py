"""Progress for people: numbered steps with their durations, and notes while a step runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


class WorkflowError(RuntimeError):
    """A step failed; the message says which, why, and what was seen last."""


@dataclass
class Progress:
    """Prints `==> [n/total] title`, notes indented under it, and `done in X s`.

    quiet=True (the tests) keeps notes to one line per change and no step banners.
    """

    out: TextIO = field(default_factory=lambda: sys.stdout)
    total: int | None = None
    quiet: bool = False
    timings: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _number: int = 0

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._number += 1
        counter = f"{self._number}/{self.total}" if self.total else str(self._number)
        if not self.quiet:
            self._print(f"\n==> [{counter}] {title}")
        began = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - began
            self.timings.append((title, seconds))
            if not self.quiet:
                self._print(f"    done in {format_seconds(seconds)}")

    def note(self, text: str) -> None:
        for line in str(text).splitlines() or [""]:
            self._print(f"    {line}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        width = max((len(title) for title, _ in self.timings), default=0)
        lines = [f"  {title:<{width}}  {format_seconds(seconds):>8}" for title, seconds in self.timings]
        lines.append(f"  {'total':<{width}}  {format_seconds(self.elapsed()):>8}")
        return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
