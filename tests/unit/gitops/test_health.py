"""Argo CD's and Flux's view of bereit's kinds, on recorded status objects.

Each kind's testdata/<Kind>/health_test.yaml lists recorded objects with what Argo CD says
(the chart's health.lua, run by gopher-lua as Argo CD runs it) and what kstatus says (the
library Flux waits on). The same cases: healthy, rolling out, not yet observed, no status,
and every way the user must act (Stalled).
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from bereit.api import ComputeTarget, InferenceService, Model
from e2e.cluster.gitops_tools import HEALTH_LUA, TESTDATA, verdicts

KINDS = {"InferenceService": InferenceService, "Model": Model, "ComputeTarget": ComputeTarget}
# Argo CD's health for each kstatus verdict: the two tools must agree on every case but one.
SAME_VERDICT = {"Current": "Healthy", "InProgress": "Progressing", "Failed": "Degraded"}


def cases() -> list:
    found = []
    for kind in KINDS:
        for case in yaml.safe_load((TESTDATA / kind / "health_test.yaml").read_text())["tests"]:
            found.append(pytest.param(kind, case, id=f"{kind}/{case['inputPath'].removesuffix('.yaml')}"))
    return found


CASES = cases()


def stalled(kind: str, case: dict) -> dict | None:
    body = yaml.safe_load((TESTDATA / kind / case["inputPath"]).read_text())
    for condition in (body.get("status") or {}).get("conditions") or ():
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return condition
    return None


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_argocd_health_check_gives_the_recorded_health(argocd_health, kind, case):
    (got,) = verdicts([argocd_health, str(HEALTH_LUA)], [TESTDATA / kind / case["inputPath"]])
    assert got == case["healthStatus"]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_kstatus_gives_the_recorded_verdict(kstatus, kind, case):
    (got,) = verdicts([kstatus], [TESTDATA / kind / case["inputPath"]])
    assert (got["kind"], got["status"], got["message"]) == (kind, case["kstatus"]["status"], case["kstatus"]["message"])


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_argocd_and_flux_agree_except_before_the_operator_wrote_any_status(kind, case):
    expected = SAME_VERDICT[case["kstatus"]["status"]]
    if case["inputPath"] == "no-status.yaml":
        # kstatus calls an object without status or conditions Current; Argo CD waits for the operator.
        assert (case["kstatus"]["status"], case["healthStatus"]["status"]) == ("Current", "Progressing")
    else:
        assert case["healthStatus"]["status"] == expected


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_a_stalled_object_is_degraded_with_the_stalled_reason_and_message(kind, case):
    condition = stalled(kind, case)
    if condition is None:
        assert case["healthStatus"]["status"] != "Degraded"
        return
    assert case["healthStatus"] == {"status": "Degraded", "message": f"{condition['reason']}: {condition['message']}"}
    assert case["kstatus"] == {"status": "Failed", "message": condition["message"]}


def test_every_case_the_issue_names_is_recorded():
    recorded = {(param.values[0], param.values[1]["inputPath"].removesuffix(".yaml")) for param in CASES}
    common = {"healthy", "generation-not-observed", "no-status"}
    wanted = {
        "InferenceService": common | {"rolling-out", "model-not-found", "init-crash-loop", "capacity-refused", "image-pull-failed"},
        "Model": common | {"duplicate-version"},
        "ComputeTarget": common | {"insufficient-vcpus"},
    }
    assert {(kind, name) for kind, names in wanted.items() for name in names} <= recorded


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_objects_are_valid_bereit_objects(kind):
    """The fixtures have the status shape the operator's API models define."""
    files = sorted(path for path in (TESTDATA / kind).glob("*.yaml") if path.name != "health_test.yaml")
    assert files
    for path in files:
        body = yaml.safe_load(path.read_text())
        assert body["kind"] == kind
        KINDS[kind].model_validate(body)


def test_the_health_check_runs_without_the_string_library(argocd_health, tmp_path):
    """Argo CD opens only the base and table libraries for argocd-cm scripts; the runner does the same."""
    script = tmp_path / "uses-string.lua"
    script.write_text('return {status = string.upper("healthy")}\n')
    body = TESTDATA / "Model" / "healthy.yaml"
    result = subprocess.run([argocd_health, str(script), str(body)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "string" in result.stderr
