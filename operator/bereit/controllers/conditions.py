"""Standard conditions (metav1.Condition) as the API server stores them, and the state they sum up.

Conditions are plain dicts in their wire form, so a freshly computed status compares equal to
the stored one when nothing changed, and the controller then writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bereit.api import State
from bereit.api.conditions import (
    CAPACITY_RESERVED,
    CHILDREN_APPLIED,
    COMPUTE_TARGET_READY,
    FALSE,
    MODELS_RESOLVED,
    READY,
    RECONCILING,
    SPEC_VALID,
    STALLED,
    TRUE,
    UNKNOWN,
)


def now_rfc3339() -> str:
    """Seconds precision, as metav1.Time serializes: a re-read condition compares equal."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Verdict:
    """One condition's content, before it gets its time and generation."""

    type: str
    status: str
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == TRUE


def find(conditions: Iterable[dict] | None, type_: str) -> dict | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: Iterable[dict] | None, type_: str) -> bool:
    condition = find(conditions, type_)
    return condition is not None and condition.get("status") == TRUE


def merge(
    previous: Iterable[dict] | None,
    verdicts: Iterable[Verdict],
    generation: int | None,
    now: str | None = None,
) -> list[dict]:
    """The new condition list: `lastTransitionTime` is kept unless the status flips.

    Conditions of types not in `verdicts` are dropped: the verdicts are the complete set.
    The order follows `verdicts`, so the list compares equal when nothing changed.
    """
    previous = list(previous or ())
    now = now or now_rfc3339()
    merged = []
    for verdict in verdicts:
        old = find(previous, verdict.type)
        changed = old is None or old.get("status") != verdict.status
        condition = {
            "type": verdict.type,
            "status": verdict.status,
            "reason": verdict.reason,
            "message": verdict.message,
            "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        merged.append(condition)
    return merged


def transitions(previous: Iterable[dict] | None, current: Iterable[dict]) -> list[dict]:
    """Conditions whose status or reason differ from before: what deserves an event."""
    previous = list(previous or ())
    changed = []
    for condition in current:
        old = find(previous, condition["type"])
        if old is None or old.get("status") != condition["status"] or old.get("reason") != condition["reason"]:
            changed.append(condition)
    return changed


# Conditions whose failure means the spec cannot be deployed as it stands (the user must act).
BLOCKING_TYPES = (SPEC_VALID, COMPUTE_TARGET_READY, MODELS_RESOLVED, CAPACITY_RESERVED, CHILDREN_APPLIED)
# Reasons of a False Available that mean replicas fail rather than are still starting.
FAILING_REASONS = frozenset(
    {
        "ModelDownloadFailed",
        "InitContainerFailed",
        "InitFailed",
        "ContainerFailed",
        "ImagePullFailed",
        "ContainerConfigError",
        "ProgressDeadlineExceeded",
        "ReplicaFailure",
        "ComputeTargetDegraded",
    }
)


def ready_verdict(verdicts: list[Verdict]) -> Verdict:
    """Ready is True when every other condition is; else it carries the first problem's reason."""
    for verdict in verdicts:
        if not verdict.ok:
            return Verdict(READY, FALSE if verdict.status == FALSE else UNKNOWN, verdict.reason, verdict.message)
    return Verdict(READY, TRUE, "Healthy", "the current generation is rolled out and every replica is ready")


# A service blocked for one of these reasons moves on by itself (a Model still being registered).
SETTLING_REASONS = frozenset({"ModelNotReady", "NotChecked"})


def progress_verdicts(ready: Verdict, stalled: bool) -> list[Verdict]:
    """Reconciling and Stalled beside Ready (kstatus conventions): Ready True → both False; else
    Stalled True with Ready's reason when the user must act, otherwise Reconciling True."""
    if ready.ok:
        return [Verdict(RECONCILING, FALSE, "Reconciled", ready.message), Verdict(STALLED, FALSE, "NotStalled", "")]
    if stalled:
        return [Verdict(RECONCILING, FALSE, "Stalled", "waiting for a change that fixes the problem"), Verdict(STALLED, TRUE, ready.reason, ready.message)]
    return [Verdict(RECONCILING, TRUE, ready.reason, ready.message), Verdict(STALLED, FALSE, "NotStalled", "")]


def service_stalled(state: State, ready: Verdict) -> bool:
    """A Failed or Unhealthy service needs the user, unless what blocks it settles by itself."""
    return state in (State.FAILED, State.UNHEALTHY) and ready.reason not in SETTLING_REASONS


def derive_state(verdicts: list[Verdict]) -> State:
    """The printer-column summary: Failed when the spec cannot be deployed, Unhealthy when
    replicas fail, Transitioning while rolling out, Healthy when Ready."""
    for verdict in verdicts:
        if verdict.type in BLOCKING_TYPES and not verdict.ok and verdict.reason not in FAILING_REASONS:
            return State.FAILED
    for verdict in verdicts:
        if not verdict.ok and verdict.reason in FAILING_REASONS:
            return State.UNHEALTHY
    if all(verdict.ok for verdict in verdicts):
        return State.HEALTHY
    return State.TRANSITIONING
