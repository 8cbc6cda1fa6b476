"""Conditions keep their transition time unless their status flips; state sums them up."""

from bereit.controllers.conditions import (
    FALSE,
    TRUE,
    Verdict,
    derive_state,
    merge,
    ready_verdict,
    transitions,
)


def test_last_transition_time_changes_only_when_the_status_flips():
    first = merge(None, [Verdict("Available", FALSE, "RollingOut", "0 of 1")], generation=1, now="2026-01-01T00:00:00Z")
    same_status = merge(first, [Verdict("Available", FALSE, "RollingOut", "1 of 1")], generation=2, now="2026-01-01T00:01:00Z")
    flipped = merge(same_status, [Verdict("Available", TRUE, "RolledOut", "1 ready")], generation=2, now="2026-01-01T00:02:00Z")
    assert same_status[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same_status[0]["observedGeneration"] == 2 and same_status[0]["message"] == "1 of 1"
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:02:00Z"


def test_merging_the_same_verdicts_twice_gives_an_equal_list():
    verdicts = [Verdict("A", TRUE, "Ok"), Verdict("B", FALSE, "No", "why")]
    once = merge(None, verdicts, generation=3, now="2026-01-01T00:00:00Z")
    assert merge(once, verdicts, generation=3, now="2026-02-02T00:00:00Z") == once


def test_transitions_are_status_or_reason_changes():
    old = merge(None, [Verdict("A", TRUE, "Ok"), Verdict("B", FALSE, "X")], 1, "t")
    new = merge(old, [Verdict("A", TRUE, "Ok", "new text"), Verdict("B", FALSE, "Y")], 1, "t")
    assert [c["type"] for c in transitions(old, new)] == ["B"]


def test_state_is_failed_when_blocked_unhealthy_when_replicas_fail_and_healthy_when_all_true():
    blocked = [Verdict("ModelsResolved", FALSE, "ModelNotFound"), Verdict("Available", FALSE, "RollingOut")]
    failing = [Verdict("ModelsResolved", TRUE, "Resolved"), Verdict("Available", FALSE, "InitFailed")]
    rolling = [Verdict("ModelsResolved", TRUE, "Resolved"), Verdict("Available", FALSE, "RollingOut")]
    healthy = [Verdict("ModelsResolved", TRUE, "Resolved"), Verdict("Available", TRUE, "RolledOut")]
    degraded = [Verdict("ComputeTargetReady", FALSE, "ComputeTargetDegraded"), Verdict("Available", TRUE, "RolledOut")]
    assert [derive_state(v).value for v in (blocked, failing, rolling, healthy, degraded)] == [
        "Failed", "Unhealthy", "Transitioning", "Healthy", "Unhealthy",
    ]
    assert ready_verdict(blocked).reason == "ModelNotFound"
    assert ready_verdict(healthy).status == TRUE
