"""Operator benchmark on a local control plane (see README.md beside this file).

    python bench/operator/run.py                       # start a control plane, measure, stop it
    python bench/operator/run.py --kubeconfig PATH     # use a running cluster instead
    python bench/operator/run.py --idle-seconds 30     # a shorter idle check while developing

Measures: apply → Deployment created latency over 100 services created one by one; a burst of
500 InferenceServices → time until all their children exist; API writes in the idle minutes
after; the operator's resident memory with all services present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import kubernetes

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))  # run as a script: e2e.* from the repository root

from e2e.cluster import localcluster  # noqa: E402
from e2e.cluster.operator_harness import Cluster, Nodes, OperatorProcess, model, service, target  # noqa: E402

BENCH_STATE = Path(os.environ.get("BEREIT_CACHE", Path.home() / ".cache/bereit")) / "bench-cluster"
BENCH_PORTS = localcluster.Ports(apiserver=18443, etcd=14379, controller_manager=22257, scheduler=22259)
CHILD_KINDS = {
    "Deployment": ("apps/v1", ""),
    "Service": ("v1", ""),
    "Secret": ("v1", "-keys"),
    "ConfigMap": ("v1", "-code"),
    "NetworkPolicy": ("networking.k8s.io/v1", ""),
}


class Seen:
    """Watches the namespace's children and records when each first appeared."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.first: dict[str, dict[str, float]] = {kind: {} for kind in CHILD_KINDS}
        self.lock = threading.Condition()
        self._stop = threading.Event()
        dynamic = kubernetes.dynamic.DynamicClient(api)
        for kind, (api_version, _) in CHILD_KINDS.items():
            resource = dynamic.resources.get(api_version=api_version, kind=kind)
            threading.Thread(target=self._watch, args=(dynamic, resource, namespace, kind), daemon=True).start()

    def _watch(self, dynamic, resource, namespace: str, kind: str) -> None:
        while not self._stop.is_set():
            try:
                for event in dynamic.watch(resource, namespace=namespace, timeout=60):
                    name = event["object"].metadata.name
                    with self.lock:
                        self.first[kind].setdefault(name, time.monotonic())
                        self.lock.notify_all()
                    if self._stop.is_set():
                        return
            except Exception:  # noqa: BLE001 - a dropped watch is simply reopened
                time.sleep(0.2)

    def wait(self, predicate, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(predicate, timeout)

    def stop(self) -> None:
        self._stop.set()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def cpu_seconds(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def baseline(kubeconfig: str, namespace: str, count: int = 100, parallel: int = 32) -> dict[str, float]:
    """Objects per second the control plane itself takes (server-side applies, no operator):
    Services are slow to create (each allocates a ClusterIP), which bounds the burst."""
    import asyncio

    from bereit.controllers.api_client import ApiClient, load_connection

    def config_map(i: int) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"base-{i}", "namespace": namespace}, "data": {"a": "b"}}

    def service_(i: int) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"base-{i}", "namespace": namespace},
                "spec": {"selector": {"app": f"base-{i}"}, "ports": [{"name": "http", "port": 80}]}}

    async def measure() -> dict[str, float]:
        rates = {}
        async with ApiClient(load_connection(kubeconfig)) as kube:
            gate = asyncio.Semaphore(parallel)

            async def apply(manifest: dict) -> None:
                async with gate:
                    await kube.apply(manifest)

            for kind, make in (("ConfigMap", config_map), ("Service", service_)):
                began = time.monotonic()
                await asyncio.gather(*(apply(make(i)) for i in range(count)))
                rates[f"{kind}_per_s"] = round(count / (time.monotonic() - began), 1)
        return rates

    return asyncio.run(measure())


def run(kubeconfig: str, args: argparse.Namespace) -> dict:
    api = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    cluster = Cluster(api, namespace)
    nodes = Nodes(api, namespace)
    log_path = HERE / "operator.log"
    log_path.unlink(missing_ok=True)
    operator = OperatorProcess(kubeconfig, namespace, log_path, BEREIT_LOG_LEVEL="WARNING", **args.operator_env)
    results: dict = {"services_latency": args.latency_services, "services_burst": args.burst, "settings": args.operator_env}
    seen = Seen(api, namespace)
    scratch = f"{namespace}-baseline"
    core.create_namespace({"metadata": {"name": scratch}})
    try:
        results["control_plane_alone"] = baseline(kubeconfig, scratch)
        core.delete_namespace(scratch, propagation_policy="Background")
        print("control plane alone", results["control_plane_alone"], flush=True)
        node = nodes.add("pool", "1000", memory="4000Gi")
        core.patch_node_status(node, {"status": {"capacity": {"pods": "5000"}, "allocatable": {"pods": "5000"}}})
        operator.start()
        cluster.apply(target("dev", namespace))
        cluster.wait_condition("ComputeTarget", "dev", "Ready", "True")
        cluster.apply(model("iris-1", "iris", 1))
        cluster.wait_condition("Model", "iris-1", "Ready", "True")

        # 1. apply → Deployment created, one service at a time
        latencies = []
        for i in range(args.latency_services):
            name = f"lat-{i:03d}"
            started = time.monotonic()
            cluster.apply(service(name, cpu="0.1"))
            if not seen.wait(lambda n=name: n in seen.first["Deployment"], timeout=30):
                raise RuntimeError(f"no Deployment for {name} within 30 s")
            latencies.append(seen.first["Deployment"][name] - started)
        results["deployment_latency_ms"] = {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
            "mean": round(statistics.mean(latencies) * 1000, 1),
        }
        print("latency", results["deployment_latency_ms"], flush=True)

        # 2. a burst: time until every child of every service exists
        names = [f"burst-{i:03d}" for i in range(args.burst)]
        cpu_before = cpu_seconds(operator.process.pid)
        writes_before = operator.writes()
        started, started_wall = time.monotonic(), time.time()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda n: cluster.apply(service(n, cpu="0.1")), names))
        applied = time.monotonic() - started

        def all_children() -> bool:
            return all(
                all(n + suffix in seen.first[kind] for n in names) for kind, (_, suffix) in CHILD_KINDS.items()
            )

        if not seen.wait(all_children, timeout=args.burst_timeout):
            missing = {k: sum(n + s not in seen.first[k] for n in names) for k, (_, s) in CHILD_KINDS.items()}
            raise RuntimeError(f"children missing after {args.burst_timeout} s: {missing}")
        last = max(seen.first[kind][n + suffix] for kind, (_, suffix) in CHILD_KINDS.items() for n in names)
        # The API server's own clock (seconds): not inflated by this script's watch threads.
        newest = max(
            obj["metadata"]["creationTimestamp"] for key, obj in cluster.children().items()
            if key.split("/")[0] in CHILD_KINDS and key.split("/")[1].startswith("burst-")
        )
        results["burst"] = {
            "applied_in_s": round(applied, 1),
            "all_children_in_s": round(last - started, 1),
            "all_children_by_creation_timestamps_s": round(
                datetime.strptime(newest, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() - started_wall, 1
            ),
            "half_of_each_kind_in_s": {
                kind: round(percentile([seen.first[kind][n + suffix] - started for n in names], 50), 1)
                for kind, (_, suffix) in CHILD_KINDS.items()
            },
            "operator_cpu_s": round(cpu_seconds(operator.process.pid) - cpu_before, 1),
            "api_writes": operator.writes() - writes_before,
        }
        print("burst", results["burst"], flush=True)

        # 3. every replica ready (this script plays the kubelet), every service Healthy; then
        # idle. Without ready pods, Deployments would pass their progress deadline (10 min) during
        # the idle minutes: a real transition, reported as such, not what this measures.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(cluster.make_pods_ready, [f"lat-{i:03d}" for i in range(args.latency_services)] + names))

        def healthy() -> int:
            items = cluster.custom.list_namespaced_custom_object("bereit.dev", "v1alpha1", namespace, "inferenceservices")["items"]
            return sum(
                (i.get("status") or {}).get("state") == "Healthy"
                and i["status"].get("observedGeneration") == i["metadata"]["generation"]
                for i in items
            )

        total = args.latency_services + args.burst
        deadline = time.monotonic() + args.burst_timeout
        while (count := healthy()) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {count} of {total} services Healthy after {args.burst_timeout} s")
            time.sleep(5)
            # Pods the ReplicaSet controller created since the last round become ready too.
            not_ready = [
                i["metadata"]["name"]
                for i in cluster.custom.list_namespaced_custom_object("bereit.dev", "v1alpha1", namespace, "inferenceservices")["items"]
                if (i.get("status") or {}).get("state") != "Healthy"
            ]
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(cluster.make_pods_ready, not_ready))
        results["all_healthy_after_burst_s"] = round(time.monotonic() - started, 1)
        time.sleep(10)  # the controller-manager and the last status writes settle
        results["memory_mb_with_all_services"] = rss_mb(operator.process.pid)
        print("memory", results["memory_mb_with_all_services"], flush=True)
        before, versions = operator.health(fresh=True), cluster.resource_versions()
        cpu_idle = cpu_seconds(operator.process.pid)
        time.sleep(args.idle_seconds)
        after = operator.health(fresh=True)
        changed = sorted(k for k, v in cluster.resource_versions().items() if versions.get(k) != v)
        results["idle"] = {
            "seconds": args.idle_seconds,
            "api_writes": after["apiWrites"] - before["apiWrites"],
            "api_writes_by_kind": {
                k: v - before["apiWritesByKind"].get(k, 0) for k, v in after["apiWritesByKind"].items()
                if v != before["apiWritesByKind"].get(k, 0)
            },
            "objects_changed": len(changed),
            "objects_changed_examples": changed[:10],
            "operator_cpu_s": round(cpu_seconds(operator.process.pid) - cpu_idle, 2),
        }
        print("idle", results["idle"], flush=True)
        results["memory_mb_after_idle"] = rss_mb(operator.process.pid)
        results["health"] = operator.health(fresh=True)

        # 4. a restart with every service present: how long until resumed, and the memory of
        # an operator that holds them all without having gone through the burst.
        results["memory_mb_settled_after_burst"] = results.pop("memory_mb_after_idle")
        results["restart"] = _restart(operator, cluster, total, args.burst_timeout)
        print("restart", results["restart"], flush=True)
        for setting in args.restart_set:  # the same restart with one setting changed, to compare
            key, value = setting.split("=", 1)
            operator.extra_env[key] = value
            results[f"restart_with_{key}={value}"] = found = _restart(operator, cluster, total, args.burst_timeout)
            print("restart with", setting, found, flush=True)
            operator.extra_env.pop(key)
    finally:
        seen.stop()
        operator.stop()
        nodes.close()
        core.delete_namespace(namespace, propagation_policy="Background")
        api.close()
    return results


def _restart(operator: OperatorProcess, cluster: Cluster, total: int, timeout: float) -> dict:
    operator.stop()
    writes_before_restart = cluster.resource_versions()
    began = time.monotonic()
    operator.start()
    deadline = time.monotonic() + timeout
    while (passes := operator.health(fresh=True)["reconciles"]["InferenceService"]["passes"]) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {passes} passes {timeout} s after the restart")
    changed = sum(1 for k, v in cluster.resource_versions().items() if writes_before_restart.get(k) != v)
    restart = {
        "resumed_in_s": round(time.monotonic() - began, 1),
        "objects_changed": changed,
        "memory_mb": rss_mb(operator.process.pid),
        "operator_cpu_s": round(cpu_seconds(operator.process.pid), 1),
    }
    time.sleep(40)  # the operator gives memory back 30 s after work
    restart["memory_mb_settled"] = rss_mb(operator.process.pid)
    return restart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", help="a running cluster (default: start a local control plane)")
    parser.add_argument("--latency-services", type=int, default=100)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--burst-timeout", type=float, default=300)
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument(
        "--restart-set", action="append", default=[], metavar="BEREIT_X=V",
        help="one more restart with this operator setting, to compare (repeatable)",
    )
    parser.add_argument("--output", default=str(HERE / "results.json"))
    parser.add_argument("--set", action="append", default=[], metavar="BEREIT_X=V", help="an operator setting (env var)")
    args = parser.parse_args()
    args.operator_env = dict(item.split("=", 1) for item in args.set)
    cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        cluster = localcluster.LocalCluster(state_dir=BENCH_STATE, ports=BENCH_PORTS)
        cluster.start(fresh=True)
        localcluster.install_crds(cluster)
        kubeconfig = str(cluster.kubeconfig)
    try:
        results = run(kubeconfig, args)
        results["machine"] = {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
