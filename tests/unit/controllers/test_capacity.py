"""ComputeTarget capacity: which nodes count, the seeds' minimums, and reservations."""

from decimal import Decimal

from bereit.api import ComputeTarget, InferenceService
from bereit.controllers.capacity import (
    CapacityLedger,
    cpu_need,
    describe_need,
    measure,
    node_facts,
    target_verdict,
)
from tests.unit.specs import compute_target_body, inference_service_body


def node(name, cpu="4", labels=None, ready=True, unschedulable=False, taints=()):
    return node_facts({
        "metadata": {"name": name, "labels": labels or {"pool": "a"}},
        "spec": {"unschedulable": unschedulable, "taints": list(taints)},
        "status": {"allocatable": {"cpu": cpu, "memory": "8Gi"},
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    })


def test_only_ready_schedulable_selected_and_tolerated_nodes_count():
    target = ComputeTarget.model_validate(compute_target_body(nodeSelector={"pool": "a"}, purpose="FastProd"))
    nodes = [
        node("ok", "8"),
        node("ok-millicores", "3500m"),
        node("other-pool", "64", labels={"pool": "b"}),
        node("not-ready", "8", ready=False),
        node("cordoned", "8", unschedulable=True),
        node("tainted", "8", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]),
        node("prefer", "1", taints=[{"key": "spot", "effect": "PreferNoSchedule"}]),
        node("unreachable", "8", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
    ]
    measured = measure(target, nodes)
    assert (measured.nodes, measured.vcpus, measured.not_counted) == (3, Decimal("12.5"), 3)
    assert target_verdict(target, measured).status == "True"


def test_the_verdict_says_what_was_found():
    target = ComputeTarget.model_validate(compute_target_body(purpose="FastProd"))
    verdict = target_verdict(target, measure(target, [node("a", "4"), node("b", "4")]))
    assert (verdict.status, verdict.reason) == ("False", "InsufficientVCPUs")
    assert verdict.message.startswith("FastProd needs at least 12 vCPUs; 2 matching nodes have 8 vCPUs")
    empty = target_verdict(target, measure(target, []))
    assert empty.reason == "NoMatchingNodes"


def test_need_is_minimum_replicas_times_cpu_with_the_targets_default():
    target = ComputeTarget.model_validate(compute_target_body(defaults={"cpu": "250m"}))
    fixed = InferenceService.model_validate(inference_service_body(replicas=3, resources={}))
    autoscaled = InferenceService.model_validate(inference_service_body(autoscale={"enabled": True, "minReplicas": 2}, resources={"cpu": "1"}))
    assert cpu_need(fixed, target) == Decimal("0.75")
    assert cpu_need(autoscaled, target) == Decimal(2)
    assert describe_need(fixed, target) == "0.75 vCPUs (3 replicas × 250m)"


def test_the_ledger_moves_and_releases_reservations():
    ledger = CapacityLedger()
    ledger.reserve("ns", "a", "one", Decimal(1))
    ledger.reserve("ns", "a", "two", Decimal(2))
    assert ledger.reserved("ns", "a") == 3 and ledger.reserved("ns", "a", excluding="two") == 1
    ledger.reserve("ns", "b", "two", Decimal(2))
    assert (ledger.reserved("ns", "a"), ledger.holds("ns", "two"), ledger.held("ns", "two")) == (1, "b", 2)
    assert ledger.release("ns", "two") == "b" and ledger.reserved("ns", "b") == 0
