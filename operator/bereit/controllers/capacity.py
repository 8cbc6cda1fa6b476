"""What a ComputeTarget has (its matching Nodes) and what its services reserve. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from bereit.api import MINIMUM_VCPUS, ComputeTarget, InferenceService, Purpose
from bereit.api.compute_target import Toleration
from bereit.api.conditions import CAPACITY_RESERVED, FALSE, READY, TRUE
from bereit.api.quantity import format_bytes, format_cores, parse_quantity
from bereit.controllers.conditions import Verdict, is_true
from bereit.controllers.resolution import without_status
from bereit.render.resources import effective_cpu

# Taints that keep pods off a node unless tolerated; PreferNoSchedule only discourages.
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
# Taints Kubernetes itself sets for a node's condition (not-ready, unschedulable, pressure):
# they say whether a pool member counts now, not whether the node belongs to the pool.
CONDITION_TAINT_PREFIX = "node.kubernetes.io/"


@dataclass(frozen=True)
class NodeFacts:
    """The parts of a Node that decide whether and how much it counts for a target."""

    name: str
    labels: tuple[tuple[str, str], ...]
    taints: tuple[tuple[str, str, str], ...]  # (key, value, effect)
    ready: bool
    unschedulable: bool
    cpu: Decimal
    memory: int


def node_facts(body: Mapping[str, Any]) -> NodeFacts:
    meta = body.get("metadata", {})
    spec = body.get("spec", {}) or {}
    status = body.get("status", {}) or {}
    allocatable = status.get("allocatable") or status.get("capacity") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    try:
        cpu = parse_quantity(allocatable.get("cpu", "0"))
        memory = int(parse_quantity(allocatable.get("memory", "0")))
    except ValueError:
        cpu, memory = Decimal(0), 0
    return NodeFacts(
        name=meta.get("name", ""),
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        taints=tuple(
            sorted((t.get("key", ""), t.get("value", "") or "", t.get("effect", "")) for t in spec.get("taints") or ())
        ),
        ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
        cpu=cpu,
        memory=memory,
    )


def tolerated(tolerations: Iterable[Toleration], taint: tuple[str, str, str]) -> bool:
    key, value, effect = taint
    return any(t.tolerates({"key": key, "value": value, "effect": effect}) for t in tolerations)


def _blocking(target: ComputeTarget, node: NodeFacts, conditions: bool) -> list[tuple[str, str, str]]:
    return [
        taint for taint in node.taints
        if taint[2] in BLOCKING_EFFECTS
        and taint[0].startswith(CONDITION_TAINT_PREFIX) == conditions
        and not tolerated(target.spec.tolerations, taint)
    ]


def matches(target: ComputeTarget, node: NodeFacts) -> bool:
    """The node carries the target's labels and its own blocking taints are all tolerated."""
    labels = dict(node.labels)
    if any(labels.get(key) != value for key, value in target.spec.node_selector.items()):
        return False
    return not _blocking(target, node, conditions=False)


def usable(target: ComputeTarget, node: NodeFacts) -> bool:
    """A matching node that takes pods now: Ready, not cordoned, no untolerated condition taint."""
    return node.ready and not node.unschedulable and not _blocking(target, node, conditions=True)


@dataclass(frozen=True)
class TargetCapacity:
    nodes: int
    vcpus: Decimal
    memory: int
    not_counted: int  # matching nodes left out because NotReady or cordoned


def measure(target: ComputeTarget, nodes: Iterable[NodeFacts]) -> TargetCapacity:
    count, vcpus, memory, not_counted = 0, Decimal(0), 0, 0
    for node in nodes:
        if not matches(target, node):
            continue
        if not usable(target, node):
            not_counted += 1
            continue
        count += 1
        vcpus += node.cpu
        memory += node.memory
    return TargetCapacity(count, vcpus, memory, not_counted)


def _nodes(count: int) -> str:
    return f"{count} matching node{'s' if count != 1 else ''}"


def target_verdict(target: ComputeTarget, capacity: TargetCapacity) -> Verdict:
    """The Ready condition: Azure Machine Learning's minimum vCPUs for the target's purpose."""
    purpose = Purpose(target.spec.purpose)
    minimum = MINIMUM_VCPUS[purpose]
    found = f"{_nodes(capacity.nodes)} {'has' if capacity.nodes == 1 else 'have'} {format_cores(float(capacity.vcpus))} vCPUs"
    if capacity.nodes:
        found += f" and {format_bytes(capacity.memory)} memory"
    if capacity.not_counted:
        found += f" ({capacity.not_counted} more NotReady or cordoned)"
    if capacity.nodes == 0 and capacity.not_counted == 0:
        selector = ", ".join(f"{k}={v}" for k, v in sorted(target.spec.node_selector.items())) or "any labels"
        return Verdict(
            READY, FALSE, "NoMatchingNodes",
            f"{purpose.value} needs at least {minimum} vCPUs; no Ready, schedulable node matches nodeSelector ({selector}) and tolerations",
        )
    if capacity.vcpus < minimum:
        return Verdict(READY, FALSE, "InsufficientVCPUs", f"{purpose.value} needs at least {minimum} vCPUs; {found}")
    return Verdict(READY, TRUE, "EnoughVCPUs", f"{found}; {purpose.value} needs at least {minimum}")


def cpu_need(service: InferenceService, target: ComputeTarget) -> Decimal:
    """What the service reserves on its target: minimum replicas × CPU per replica."""
    return service.spec.min_replicas * parse_quantity(effective_cpu(service, target))


def describe_need(service: InferenceService, target: ComputeTarget) -> str:
    replicas = service.spec.min_replicas
    cpu = effective_cpu(service, target)
    total = format_cores(float(cpu_need(service, target)))
    return f"{total} vCPUs ({replicas} replica{'s' if replicas != 1 else ''} × {cpu})"


class CapacityLedger:
    """vCPUs reserved per target by the services admitted to it, kept in memory.

    Decisions read and update it without awaiting in between, so two services cannot both
    take the last free vCPUs. After a restart it is seeded from the services'
    CapacityReserved conditions.
    """

    def __init__(self) -> None:
        self._reserved: dict[tuple[str, str], dict[str, Decimal]] = {}
        self._where: dict[tuple[str, str], str] = {}  # (namespace, service) → target
        self.seeded = False

    def reserved(self, namespace: str, target: str, excluding: str | None = None) -> Decimal:
        entries = self._reserved.get((namespace, target), {})
        return sum((cpu for name, cpu in entries.items() if name != excluding), Decimal(0))

    def holds(self, namespace: str, service: str) -> str | None:
        """The target the service has a reservation on, if any."""
        return self._where.get((namespace, service))

    def held(self, namespace: str, service: str) -> Decimal:
        target = self._where.get((namespace, service))
        return self._reserved.get((namespace, target), {}).get(service, Decimal(0)) if target else Decimal(0)

    def reserve(self, namespace: str, target: str, service: str, cpu: Decimal) -> None:
        self.release(namespace, service)
        self._reserved.setdefault((namespace, target), {})[service] = cpu
        self._where[(namespace, service)] = target

    def release(self, namespace: str, service: str) -> str | None:
        """Drop the service's reservation; returns the target it was on."""
        target = self._where.pop((namespace, service), None)
        if target is not None:
            entries = self._reserved.get((namespace, target), {})
            entries.pop(service, None)
            if not entries:
                self._reserved.pop((namespace, target), None)
        return target


def seed_ledger(
    ledger: CapacityLedger, services: Iterable[Mapping[str, Any]], target_body: Callable[[str, str], Mapping[str, Any] | None]
) -> None:
    """After a start, the reservations are those the services' statuses report (once)."""
    if ledger.seeded:
        return
    ledger.seeded = True
    for body in services:
        if not is_true((body.get("status") or {}).get("conditions"), CAPACITY_RESERVED):
            continue
        namespace = body["metadata"]["namespace"]
        try:
            service = InferenceService.model_validate(without_status(body))
            found = target_body(namespace, service.spec.compute_target)
            if found is None:
                continue
            target = ComputeTarget.model_validate(without_status(found))
        except ValidationError:
            continue
        ledger.reserve(namespace, service.spec.compute_target, service.metadata.name, cpu_need(service, target))
