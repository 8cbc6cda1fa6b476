"""e2e tests run against a whole cluster where pods really run.

Which cluster:
- ``KUBECONFIG`` set: that cluster (kind, see e2e/kind/run.sh, or any other); nothing is
  started or stopped. Images are loaded with ``kind load docker-image`` when
  ``BEREIT_KIND_CLUSTER`` names a kind cluster.
- otherwise: the local cluster of e2e/cluster, ``up.sh full`` (a no-op when it runs already;
  then it is also left running at the end). A cluster this session started is stopped at the
  end unless another test session still uses it or ``BEREIT_E2E_KEEP=1``.

Fixtures (session scope unless noted):
- ``e2e_cluster`` -> ``localcluster.LocalCluster`` (``.kubeconfig``, ``.kubectl(...)``);
- ``e2e_local`` -> ``bool``: True on the local cluster (host reaches ClusterIPs, ctr works);
- ``load_images`` -> ``callable(*tags)``: makes local docker images available to the node;
- ``e2e_kube_api`` -> ``kubernetes.client.ApiClient``;
- ``e2e_namespace`` (function scope) -> ``str``: a fresh namespace, deleted afterwards.

Tests here are marked ``e2e`` automatically and skipped, with the reason, when no cluster
can be had (no KUBECONFIG, and the binaries are not built or this is not root).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.cluster import localcluster

_HERE = Path(__file__).resolve().parent




def e2e_skip_reason() -> str | None:
    if os.environ.get("KUBECONFIG"):
        return None
    if os.geteuid() != 0:
        return "the local cluster's node needs root (or set KUBECONFIG to a cluster)"
    missing = localcluster.missing_binaries(full=True)
    if missing:
        return (
            f"no KUBECONFIG and the local cluster is not built ({', '.join(missing)} missing): "
            "run e2e/cluster/install-deps.sh"
        )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason, checked = None, False
    for item in items:
        if _HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("controlplane_only"):
            continue
        if not checked:
            reason, checked = e2e_skip_reason(), True
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "controlplane_only: needs the built binaries, not a whole cluster")


@pytest.fixture(scope="session")
def e2e_local() -> bool:
    return not os.environ.get("KUBECONFIG")


@pytest.fixture(scope="session")
def e2e_cluster(e2e_local: bool) -> Iterator[localcluster.LocalCluster]:
    if not e2e_local:
        path = Path(os.environ["KUBECONFIG"]).resolve()
        yield localcluster.LocalCluster(state_dir=path.parent, kubeconfig_file=path, mode="full")
        return
    import fcntl

    state = Path(os.environ.get("BEREIT_CLUSTER_DIR", localcluster.INTEGRATION_STATE.parent / "cluster"))
    state.mkdir(parents=True, exist_ok=True)
    # Every session using the cluster holds a shared lock; the one that started it stops it
    # at the end only if it can then take the lock alone (no other session is mid-run).
    sessions = open(state / ".e2e-sessions", "w")
    fcntl.flock(sessions, fcntl.LOCK_SH)
    cluster = localcluster.LocalCluster(state_dir=state, mode="full")
    try:
        cluster.start(timeout=600)
    except localcluster.ClusterError as exc:
        sessions.close()
        pytest.fail(f"could not start the local cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        try:
            if cluster.started_here and not os.environ.get("BEREIT_E2E_KEEP"):
                fcntl.flock(sessions, fcntl.LOCK_EX | fcntl.LOCK_NB)
                cluster.stop()
        except OSError:
            pass  # another session still uses the cluster: leave it running
        finally:
            sessions.close()


@pytest.fixture(scope="session")
def load_images(e2e_cluster, e2e_local: bool) -> Callable[..., None]:
    def load(*images: str) -> None:
        if e2e_local:
            localcluster.run_script(e2e_cluster, "load-image.sh", *images)
            return
        kind = os.environ.get("BEREIT_KIND_CLUSTER")
        if not kind:
            pytest.skip("set BEREIT_KIND_CLUSTER (kind) or load these images into the cluster yourself: " + " ".join(images))
        subprocess.run(["kind", "load", "docker-image", "--name", kind, *images], check=True)

    return load


@pytest.fixture(scope="session")
def e2e_kube_api(e2e_cluster):
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=str(e2e_cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def e2e_namespace(e2e_cluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    e2e_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        e2e_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
