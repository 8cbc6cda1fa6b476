"""Integration tests run against a real control plane that this session starts once.

Fixtures (all session-scoped unless noted):

- ``kube_cluster`` -> ``localcluster.LocalCluster``: the running control plane (etcd,
  kube-apiserver, kube-controller-manager, kube-scheduler; no node, so Pods stay Pending).
  ``.kubeconfig`` (Path), ``.kubectl(*args, input=None) -> stdout``, ``.state_dir``,
  ``.start_seconds``. Started with ``e2e/cluster/up.sh controlplane --fresh`` in its own
  folder (~/.cache/bereit/integration-cluster) on its own ports (API server 16443, etcd
  12379), so it runs beside a developer's full cluster; stopped with ``down.sh`` at the end.
  A second test session on the same machine at the same time gets its own slot
  (integration-cluster-N, ports + N), so sessions never stop each other's cluster.
  The CRDs in ``crds/*.yaml`` are installed and Established before any test runs.
- ``kubeconfig`` -> ``str``: path of an admin kubeconfig (system:masters) for that cluster.
- ``kube_api`` -> ``kubernetes.client.ApiClient`` built from that kubeconfig.
- ``namespace`` (function scope) -> ``str``: a new namespace for one test, deleted after it.

Tests in tests/integration/ are marked ``integration`` automatically. They are skipped, with
the reason, when the Kubernetes binaries are not built (run ``e2e/cluster/install-deps.sh``).

Environment:
- ``BEREIT_IT_KUBECONFIG=PATH``: use that cluster instead of starting one (nothing is
  started or stopped; the CRDs are still applied).
- ``BEREIT_IT_KEEP=1``: leave the control plane running after the session (the next session
  then reuses it, with the data the last one left).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from e2e.cluster import localcluster
from e2e.cluster.operator_harness import Cluster, Nodes, OperatorProcess

if TYPE_CHECKING:
    import kubernetes

_REPO = Path(__file__).resolve().parents[2]


_HERE = Path(__file__).resolve().parent


def _skip_reason() -> str | None:
    if os.environ.get("BEREIT_IT_KUBECONFIG"):
        return None
    try:
        missing = localcluster.missing_binaries()
    except Exception as exc:  # bash or the scripts are missing: say so instead of erroring
        return f"cannot locate the Kubernetes binaries: {exc}"
    if missing:
        return (
            f"Kubernetes binaries not built ({', '.join(missing)} missing in "
            f"{localcluster.bin_dir()}): run e2e/cluster/install-deps.sh"
        )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    checked = False
    for item in items:
        if _HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.integration)
        if not checked:
            reason, checked = _skip_reason(), True
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[localcluster.LocalCluster]:
    external = os.environ.get("BEREIT_IT_KUBECONFIG")
    if external:
        path = Path(external).resolve()
        cluster = localcluster.LocalCluster(state_dir=path.parent, kubeconfig_file=path)
    else:
        try:
            state, ports, slot_lock = localcluster.integration_slot()
        except localcluster.ClusterError as exc:
            pytest.fail(str(exc), pytrace=False)
        cluster = localcluster.LocalCluster(state_dir=state, ports=ports)
        try:
            cluster.start(fresh=True)
        except localcluster.ClusterError as exc:
            cluster.stop(force=True)
            slot_lock.close()
            pytest.fail(f"could not start the control plane: {exc}", pytrace=False)
    try:
        localcluster.install_crds(cluster)
        yield cluster
    finally:
        if not external:
            if not os.environ.get("BEREIT_IT_KEEP"):
                cluster.stop()
            slot_lock.close()


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: localcluster.LocalCluster) -> str:
    return str(kube_cluster.kubeconfig)


@pytest.fixture(scope="session")
def kube_api(kubeconfig: str) -> Iterator[kubernetes.client.ApiClient]:
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(kube_api) -> Iterator[str]:
    import kubernetes

    core = kubernetes.client.CoreV1Api(kube_api)
    name = f"it-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"bereit.dev/test": "integration"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


# --- the operator, the tests' client and fake Nodes (e2e/cluster/operator_harness.py) ---
@pytest.fixture
def operator(kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log").start()
    try:
        yield process
    finally:
        process.stop()
        # Retries of a busy API server are expected; an exception with a traceback is a bug.
        crashes = [line for line in process.log_text().splitlines() if "Traceback" in line]
        assert not crashes, "the operator crashed in a handler:\n" + process.log_tail(60)

@pytest.fixture
def cluster(kube_api, namespace: str) -> Cluster:
    return Cluster(kube_api, namespace)

@pytest.fixture
def nodes(kube_api, namespace: str) -> Iterator[Nodes]:
    pool = Nodes(kube_api, namespace)
    try:
        yield pool
    finally:
        pool.close()
