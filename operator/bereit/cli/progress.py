"""Following a long step: a spinner on a terminal, one line per change otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from bereit.cli import output
from bereit.cli.errors import CliError, NotFound, TimedOut
from bereit.constants import INFERENCE_SERVICE_KIND

if TYPE_CHECKING:  # the kubernetes client takes a second to import; commands load it when they connect
    from bereit.cli.cluster import Cluster

POLL_SECONDS = 1.0
# How long a bad state must last before the wait ends with it. Failed can be momentary (a
# model registered a moment ago is not Ready yet); Unhealthy too (a replica restarting while
# it rolls); a crashing init() or a refused capacity stays.
GRACE_SECONDS = {"Failed": 10, "Unhealthy": 60}
SILENT_OPERATOR_SECONDS = 20


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
    kube: Cluster,
    name: str,
    timeout: float,
    generation: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the service (at `generation` or later) is Healthy; CliError when it fails.

    Failed or Unhealthy for longer than its GRACE_SECONDS ends the wait with the service's
    message (exit 1); TimedOut when `timeout` passes first.
    """
    started = clock()
    deadline = started + timeout
    last_line = None
    bad_state: tuple[str, float] | None = None
    console = output.err()
    with step(f"Waiting for service {name}") as update:
        while True:
            service = kube.get(INFERENCE_SERVICE_KIND, name)
            status = service.get("status") or {}
            wanted = generation or service["metadata"].get("generation") or 0
            current = (status.get("observedGeneration") or 0) >= wanted
            state = status.get("state") if current else "Transitioning"
            message = status.get("message") or _ready_message(status) or ""
            if not status and clock() - started > SILENT_OPERATOR_SECONDS:
                message = "no status from the operator yet: is it running (kubectl get pods -A -l app.kubernetes.io/name=bereit)?"
            replicas = f"{status.get('readyReplicas') or 0}/{status.get('replicas') or 0} replicas ready"
            line = f"{state or 'Pending'} — {replicas}" + (f" — {message}" if message else "")
            if line != last_line:
                update(line)
                if not console.is_terminal:
                    output.info(f"service {name}: {line}")
                last_line = line
            if state == "Healthy":
                return service
            if state in GRACE_SECONDS:
                if bad_state is None or bad_state[0] != state:
                    bad_state = (state, clock())
                if clock() - bad_state[1] >= GRACE_SECONDS[state]:
                    hint = f"bereit service logs {name}" if state == "Unhealthy" else f"bereit service show {name}"
                    raise CliError(f"service {name} is {state}: {message or 'no reason given'} ({hint})")
            else:
                bad_state = None
            if clock() >= deadline:
                raise TimedOut(
                    f"service {name} is still {state or 'Pending'} after {timeout:.0f} s"
                    + (f": {message}" if message else "")
                    + f"; `bereit service show {name}` follows up"
                )
            sleep(POLL_SECONDS)


def wait_until_gone(
    kube: Cluster,
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
