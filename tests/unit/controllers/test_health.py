"""Replica health from Deployment and Pod summaries; messages never carry keys."""

from bereit.constants import FIELD_MANAGER, POD_SPEC_HASH_ANNOTATION
from bereit.controllers.health import (
    assess,
    deployment_summary,
    fields_digest,
    pod_summary,
    redact,
)


def deployment(spec_hash="h1", desired=2, ready=2, updated=2, replicas=2, observed=3, conditions=()):
    return deployment_summary({
        "metadata": {"name": "iris", "generation": 3},
        "spec": {"replicas": desired, "template": {"metadata": {"annotations": {POD_SPEC_HASH_ANNOTATION: spec_hash}}}},
        "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
                   "readyReplicas": ready, "availableReplicas": ready, "conditions": list(conditions)},
    })


def pod(name="iris-1", spec_hash="h1", init=(), containers=(), ready=False):
    return pod_summary({
        "metadata": {"name": name, "annotations": {POD_SPEC_HASH_ANNOTATION: spec_hash}},
        "status": {"phase": "Pending", "initContainerStatuses": list(init), "containerStatuses": list(containers),
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    })


def test_available_only_when_the_current_template_is_rolled_out_and_ready():
    assert assess(deployment(), [pod(ready=True)], "h1").verdict.reason == "RolledOut"
    assert assess(deployment(ready=1), [], "h1").verdict.reason == "RollingOut"
    assert assess(deployment(observed=2), [], "h1").verdict.reason == "RollingOut"
    assert assess(deployment(spec_hash="old"), [], "h1").verdict.reason == "RollingOut"
    assert assess(deployment(replicas=3), [], "h1").verdict.reason == "RollingOut"  # an old replica remains
    assert assess(None, [], "h1").verdict.reason == "DeploymentMissing"


def test_a_failed_model_download_is_reported_with_its_termination_message():
    failed = pod(init=[{
        "name": "model-0-https", "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "message": "sha256 mismatch"}},
    }])
    health = assess(deployment(ready=0), [failed], "h1")
    assert health.verdict.reason == "ModelDownloadFailed"
    assert "model-0-https" in health.verdict.message and "sha256 mismatch" in health.verdict.message
    assert health.wants_log is None


def test_init_failure_without_a_message_asks_for_the_log_and_old_pods_are_ignored():
    crashed = pod(containers=[{"name": "server", "restartCount": 1, "ready": False,
                               "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                               "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}])
    health = assess(deployment(ready=0), [crashed], "h1")
    assert health.verdict.reason == "InitFailed" and health.wants_log == ("iris-1", "server", True)
    old = pod(spec_hash="h0", containers=[{"name": "server", "state": {"terminated": {"exitCode": 1, "message": "x"}}}])
    assert assess(deployment(ready=0), [old], "h1").verdict.reason == "RollingOut"


def test_a_replica_ready_again_after_a_crash_is_healthy_and_one_still_starting_is_not():
    killed = {"exitCode": 137, "reason": "Error", "message": "init() finished"}  # e.g. its node restarted
    running_again = {"name": "server", "restartCount": 5, "ready": True, "state": {"running": {}}, "lastState": {"terminated": killed}}
    health = assess(deployment(desired=1, ready=1, updated=1, replicas=1), [pod(containers=[running_again], ready=True)], "h1")
    assert (health.verdict.status, health.verdict.reason) == ("True", "RolledOut")
    starting = {**running_again, "ready": False}
    health = assess(deployment(desired=1, ready=0, updated=1, replicas=1), [pod(containers=[starting])], "h1")
    assert health.verdict.reason == "InitFailed"
    assert "(restarted 5 times): exited with code 137 (Error): init() finished" in health.verdict.message


def test_image_pull_errors_are_named():
    pulling = pod(containers=[{"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}])
    assert assess(deployment(ready=0), [pulling], "h1").verdict.reason == "ImagePullFailed"


def test_keys_and_bearer_tokens_are_redacted():
    message = "failed: Authorization: Bearer abcdefghijklmnop and key SECRETKEYVALUE"
    cleaned = redact(message, ["SECRETKEYVALUE"])
    assert "SECRETKEYVALUE" not in cleaned and "abcdefghijklmnop" not in cleaned


def test_the_fields_digest_follows_only_our_apply_entry():
    ours = {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    theirs = {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}
    status = {"manager": FIELD_MANAGER, "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {}}}
    digest = fields_digest({"metadata": {"managedFields": [ours, status]}})
    assert digest and digest == fields_digest({"metadata": {"managedFields": [theirs, ours]}})
    changed = {**ours, "fieldsV1": {"f:spec": {}}}
    assert fields_digest({"metadata": {"managedFields": [changed]}}) != digest
    assert fields_digest({"metadata": {}}) == ""
