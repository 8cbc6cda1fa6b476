"""What the operator itself writes, read by Flux's kstatus and the chart's Argo CD check.

The reconcile passes run on hand-built inputs (tests/unit/controllers/world.py); the statuses
they write go through both checkers, so the conditions and the checks cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bereit.controllers import compute_target, model
from bereit.controllers.inference_service import reconcile
from e2e.cluster.gitops_tools import HEALTH_LUA, verdicts
from tests.unit.controllers.world import NAMESPACE, operator_for, standard_world
from tests.unit.specs import model_body


def checked(tmp_path, body, kstatus, argocd_health) -> tuple[str, str, str]:
    path = tmp_path / "object.json"
    path.write_text(json.dumps(body))
    (flux,) = verdicts([kstatus], [path])
    (argo,) = verdicts([argocd_health, str(HEALTH_LUA)], [path])
    return flux["status"], argo["status"], argo["message"]


def service_after_passes(world, passes: int = 2) -> dict:
    op, _ = operator_for(world)
    for _ in range(passes):
        world.sync()
        asyncio.run(reconcile(op, (NAMESPACE, "digits")))
    return world.get("InferenceService", "digits")


def with_pods(world, *, ready: bool, waiting: str | None = None) -> None:
    deployment = world.get("Deployment", "digits")
    template_hash = deployment["spec"]["template"]["metadata"]["annotations"]["bereit.dev/spec-hash"]
    deployment["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": int(ready), "availableReplicas": int(ready)}
    state = {"running": {}} if waiting is None else {"waiting": {"reason": waiting, "message": "init() raised ValueError"}}
    world.add({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "digits-1", "labels": {**deployment["spec"]["selector"]["matchLabels"]}, "annotations": {"bereit.dev/spec-hash": template_hash}},
        "spec": {},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{
                "name": "server", "ready": ready, "restartCount": 0 if waiting is None else 5, "state": state,
                **({"lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "init() raised ValueError"}}} if waiting else {}),
            }],
        },
    })


def test_a_service_rolling_out_is_in_progress(tmp_path, kstatus, argocd_health):
    body = service_after_passes(standard_world())
    assert checked(tmp_path, body, kstatus, argocd_health)[:2] == ("InProgress", "Progressing")


def test_a_healthy_service_is_current(tmp_path, kstatus, argocd_health):
    world = standard_world()
    service_after_passes(world)
    with_pods(world, ready=True)
    body = service_after_passes(world, passes=1)
    assert body["status"]["state"] == "Healthy"
    assert checked(tmp_path, body, kstatus, argocd_health)[:2] == ("Current", "Healthy")


def test_a_service_whose_model_does_not_exist_fails_at_once(tmp_path, kstatus, argocd_health):
    body = service_after_passes(standard_world(models=[{"name": "digits", "version": 9}]))
    flux, argo, message = checked(tmp_path, body, kstatus, argocd_health)
    assert (flux, argo) == ("Failed", "Degraded")
    assert message.startswith("ModelNotFound: ")


def test_a_service_whose_init_crashes_fails(tmp_path, kstatus, argocd_health):
    world = standard_world()
    service_after_passes(world)
    with_pods(world, ready=False, waiting="CrashLoopBackOff")
    body = service_after_passes(world, passes=1)
    assert body["status"]["state"] == "Unhealthy", body["status"]
    assert checked(tmp_path, body, kstatus, argocd_health)[:2] == ("Failed", "Degraded")


def test_a_service_waiting_for_its_models_registration_is_in_progress(tmp_path, kstatus, argocd_health):
    world = standard_world()
    world.get("Model", "digits-1")["status"] = {"conditions": []}
    body = service_after_passes(world)
    assert checked(tmp_path, body, kstatus, argocd_health)[:2] == ("InProgress", "Progressing")


@pytest.mark.parametrize(("cpu", "expected"), [("4", ("Current", "Healthy")), ("1", ("Failed", "Degraded"))])
def test_compute_targets_are_current_or_failed_on_their_vcpus(tmp_path, kstatus, argocd_health, cpu, expected):
    world = standard_world(cpu=cpu)
    op, _ = operator_for(world)
    asyncio.run(compute_target.reconcile(op, (NAMESPACE, "dev")))
    assert checked(tmp_path, world.get("ComputeTarget", "dev"), kstatus, argocd_health)[:2] == expected


def test_a_duplicate_model_version_fails_and_the_first_is_current(tmp_path, kstatus, argocd_health):
    world = standard_world()
    world.get("Model", "digits-1")["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    world.add({**model_body("digits-again"), "metadata": {"name": "digits-again", "creationTimestamp": "2026-02-01T00:00:00Z"}})
    world.sync()
    op, _ = operator_for(world)
    for name in ("digits-1", "digits-again"):
        asyncio.run(model.reconcile(op, (NAMESPACE, name)))
    assert checked(tmp_path, world.get("Model", "digits-1"), kstatus, argocd_health)[:2] == ("Current", "Healthy")
    assert checked(tmp_path, world.get("Model", "digits-again"), kstatus, argocd_health)[:2] == ("Failed", "Degraded")
