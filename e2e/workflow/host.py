"""What the host needs besides bereit itself, and which cluster the workflow talks to."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .commands import CLUSTER_SCRIPTS, REPO, Kubectl, stream
from .progress import WorkflowError

Show = Callable[[str], None]
LOCAL_CLUSTER_DIR = Path(os.environ.get("BEREIT_CLUSTER_DIR", Path(os.environ.get(
    "BEREIT_CACHE", Path.home() / ".cache" / "bereit")) / "cluster"))


def ensure_python_packages(show: Show) -> None:
    """bereit (pip install -e .) must be importable; scikit-learn trains the digits model."""
    if importlib.util.find_spec("bereit") is None:
        raise WorkflowError(f"the bereit package is not installed: cd {REPO} && pip install -e '.[test]' (or make demo)")
    if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("joblib") is None:
        show("installing scikit-learn on this machine (examples/digits/train.py needs it)")
        stream([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "scikit-learn"],
               show=show, timeout=1200, what="pip install scikit-learn")


@dataclass
class Target:
    """The cluster the workflow runs on."""

    kubectl: Kubectl
    local: bool  # our own local cluster: the host reaches ClusterIPs, images load into its containerd
    description: str
    kind_cluster: str | None = None
    cluster_dir: Path = LOCAL_CLUSTER_DIR


def start_local_cluster(show: Show, *, build: bool = True) -> Target:
    """install-deps.sh (idempotent; builds Kubernetes the first time), then up.sh full."""
    if os.geteuid() != 0:
        raise WorkflowError("the local cluster runs a kubelet and changes the network: run as root, "
                            "or use --use-current-context with a cluster of your own")
    if build:
        stream(["bash", str(CLUSTER_SCRIPTS / "install-deps.sh")], show=show, timeout=4 * 3600, what="install-deps.sh")
    env = dict(os.environ, BEREIT_CLUSTER_DIR=str(LOCAL_CLUSTER_DIR))
    stream(["bash", str(CLUSTER_SCRIPTS / "up.sh"), "full"], show=show, env=env, timeout=900, what="up.sh full")
    kubectl = Kubectl(kubeconfig=LOCAL_CLUSTER_DIR / "kubeconfig")
    return Target(kubectl, local=True, description=f"the local cluster ({LOCAL_CLUSTER_DIR / 'kubeconfig'})")


def current_context(show: Show) -> Target:
    """The cluster kubectl points at. Our own local cluster and kind are recognised."""
    kubectl = Kubectl(kubeconfig=None)
    context = kubectl.current_context()
    if not context:
        raise WorkflowError("kubectl has no current context: set KUBECONFIG or run `kubectl config use-context`")
    server = server_of(kubectl)
    try:
        kubectl("get", "--raw", "/readyz", timeout=20)
    except WorkflowError as error:
        raise WorkflowError(f"the cluster of context {context} ({server}) does not answer: {error}") from None
    local = is_local_server(server)
    kind = context.removeprefix("kind-") if context.startswith("kind-") and not local else None
    show(f"context {context}, API server {server}" + (" (the local cluster)" if local else ""))
    return Target(kubectl, local=local, description=f"context {context} ({server})", kind_cluster=kind)


def server_of(kubectl: Kubectl) -> str:
    return kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").strip()


def is_local_server(server: str) -> bool:
    """Whether an API server address is the local cluster's (e2e/cluster)."""
    kubeconfig = LOCAL_CLUSTER_DIR / "kubeconfig"
    if not kubeconfig.is_file():
        return False
    local = subprocess.run(
        [Kubectl(kubeconfig=kubeconfig).binary, "--kubeconfig", str(kubeconfig), "config", "view", "--minify",
         "-o", "jsonpath={.clusters[0].cluster.server}"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    return bool(local) and local == server
