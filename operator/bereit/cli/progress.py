"""Following a long step: a spinner on a terminal, one line per change otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.markup import escape

from bereit.cli import output
from bereit.cli.errors import CliError, NotFound, TimedOut
from bereit.cli.kube import Kube
from bereit.constants import INFERENCE_SERVICE_KIND

POLL_SECONDS = 1.0
# A service that stays Unhealthy this long is reported (a crashing init() never recovers alone).
UNHEALTHY_GRACE_SECONDS = 120


@contextmanager
def step(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner while the block runs; yields a function that changes its text."""
    console = output.err()
    if not console.is_terminal:
        output.info(f"{text} …")
        yield lambda update: None
        return
    with console.status(escape(text)) as status:
        yield lambda update: status.update(escape(f"{text}: {update}"))


def wait_for_service(
    kube: Kube,
    name: str,
    timeout: float,
    generation: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the service (at `generation` or later) is Healthy; CliError when it fails.

    Failed ends the wait at once with the service's message; Unhealthy for longer than
    UNHEALTHY_GRACE_SECONDS too; TimedOut when `timeout` passes first.
    """
    deadline = clock() + timeout
    last_line = None
    unhealthy_since: float | None = None
    console = output.err()
    with step(f"Waiting for service {name}") as update:
        while True:
            service = kube.get(INFERENCE_SERVICE_KIND, name)
            status = service.get("status") or {}
            wanted = generation or service["metadata"].get("generation") or 0
            current = (status.get("observedGeneration") or 0) >= wanted
            state = status.get("state") if current else "Transitioning"
            message = status.get("message") or _ready_message(status) or ""
            replicas = f"{status.get('readyReplicas') or 0}/{status.get('replicas') or 0} replicas ready"
            line = f"{state or 'Pending'} — {replicas}" + (f" — {message}" if message else "")
            if line != last_line:
                update(line)
                if not console.is_terminal:
                    output.info(f"service {name}: {line}")
                last_line = line
            if state == "Healthy":
                return service
            if state == "Failed":
                raise CliError(f"service {name} failed: {message or 'no reason given'} (bereit service logs {name})")
            if state == "Unhealthy":
                unhealthy_since = unhealthy_since if unhealthy_since is not None else clock()
                if clock() - unhealthy_since > UNHEALTHY_GRACE_SECONDS:
                    raise CliError(
                        f"service {name} has been Unhealthy for {UNHEALTHY_GRACE_SECONDS} s: "
                        f"{message or 'no reason given'} (bereit service logs {name})"
                    )
            else:
                unhealthy_since = None
            if clock() >= deadline:
                raise TimedOut(
                    f"service {name} is still {state or 'Pending'} after {timeout:.0f} s"
                    + (f": {message}" if message else "")
                    + f"; `bereit service show {name}` follows up"
                )
            sleep(POLL_SECONDS)


def wait_until_gone(
    kube: Kube,
    kind: str,
    name: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    deadline = clock() + timeout
    noun = {INFERENCE_SERVICE_KIND: "service"}.get(kind, kind.lower())
    with step(f"Deleting {noun} {name}"):
        while True:
            try:
                obj = kube.get(kind, name)
            except NotFound:
                return
            if clock() >= deadline:
                finalizers = ", ".join(obj["metadata"].get("finalizers") or []) or "none"
                raise TimedOut(f"{noun} {name} still exists after {timeout:.0f} s (finalizers: {finalizers})")
            sleep(POLL_SECONDS)


def _ready_message(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") != "True":
            return condition.get("message")
    return None
