"""Start, stop and use the local cluster of e2e/cluster from Python (the pytest fixtures).

The shell scripts beside this file do the work; this module only runs them with the right
environment and reads what they print, so there is one way to start a cluster.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

CLUSTER_DIR = Path(__file__).resolve().parent
REPO_ROOT = CLUSTER_DIR.parent.parent
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
NODE_BINARIES = ("kubelet", "kube-proxy")


class ClusterError(RuntimeError):
    """A cluster script failed; the message holds the end of its output."""


def bin_dir() -> Path:
    """The folder install-deps.sh builds into (it depends only on the pinned versions)."""
    out = subprocess.run(
        ["bash", str(CLUSTER_DIR / "bin-path.sh")], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def missing_binaries(full: bool = False) -> list[str]:
    """Names of the binaries up.sh needs that install-deps.sh has not built yet."""
    names = CONTROL_PLANE_BINARIES + (NODE_BINARIES if full else ())
    where = bin_dir()
    return [name for name in names if not os.access(where / name, os.X_OK)]


@dataclasses.dataclass(frozen=True)
class Ports:
    """Ports of one cluster; two clusters with different ports and state folders coexist."""

    apiserver: int = 6443
    etcd: int = 2379  # and etcd + 1 for its peer port
    controller_manager: int = 10257
    scheduler: int = 10259

    def env(self) -> dict[str, str]:
        return {
            "BEREIT_APISERVER_PORT": str(self.apiserver),
            "BEREIT_ETCD_PORT": str(self.etcd),
            "BEREIT_CONTROLLER_MANAGER_PORT": str(self.controller_manager),
            "BEREIT_SCHEDULER_PORT": str(self.scheduler),
        }


# The integration tests' own control plane: its own folder and ports, so it runs beside a
# full cluster that a developer keeps up on the default ports.
INTEGRATION_STATE = Path(os.environ.get("BEREIT_CACHE", Path.home() / ".cache/bereit")) / "integration-cluster"
INTEGRATION_PORTS = Ports(apiserver=16443, etcd=12379, controller_manager=20257, scheduler=20259)
INTEGRATION_SLOTS = 8


def integration_slot() -> tuple[Path, Ports, object]:
    """A control-plane slot that no other test session on this machine uses right now.

    Slot 0 is ``INTEGRATION_STATE`` on ``INTEGRATION_PORTS``; slot n its sibling ``-n`` on
    ports shifted by n. The returned open file holds the slot's lock until it is closed (or
    the process ends), so concurrent sessions never stop each other's cluster.
    """
    import fcntl

    for n in range(INTEGRATION_SLOTS):
        state = INTEGRATION_STATE if n == 0 else INTEGRATION_STATE.with_name(f"{INTEGRATION_STATE.name}-{n}")
        state.mkdir(parents=True, exist_ok=True)
        lock = open(state / ".session-lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        base = INTEGRATION_PORTS
        ports = Ports(
            apiserver=base.apiserver + n,
            etcd=base.etcd + 2 * n,
            controller_manager=base.controller_manager + 10 + n if n else base.controller_manager,
            scheduler=base.scheduler + 20 + n if n else base.scheduler,
        )
        return state, ports, lock
    raise ClusterError(f"all {INTEGRATION_SLOTS} integration control-plane slots are in use by other sessions")


@dataclasses.dataclass
class LocalCluster:
    """One cluster started by up.sh: where its state is and how to reach it."""

    state_dir: Path
    ports: Ports = dataclasses.field(default_factory=Ports)
    mode: str = "controlplane"  # or "full"
    started_here: bool = False  # False when it was running already (then stop() leaves it)
    start_seconds: float = 0.0
    kubeconfig_file: Path | None = None  # a cluster not started by up.sh (kind, any other)

    @property
    def kubeconfig(self) -> Path:
        return self.kubeconfig_file or self.state_dir / "kubeconfig"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.ports.env())
        env["BEREIT_CLUSTER_DIR"] = str(self.state_dir)
        return env

    def _run(self, *args: str, timeout: float) -> str:
        proc = subprocess.run(
            ["bash", *args], env=self._env(), capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise ClusterError(f"{' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def is_running(self) -> bool:
        pid_file = self.state_dir / "run" / "kube-apiserver.pid"
        mode_file = self.state_dir / "run" / "mode"
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
            # A full cluster includes the control plane.
            return mode_file.read_text().strip() in (self.mode, "full")
        except (OSError, ValueError):
            return False

    def start(self, fresh: bool = False, timeout: float = 300) -> LocalCluster:
        """up.sh MODE; a no-op (and stop() will leave it) when it is running already."""
        self.started_here = not self.is_running()
        began = time.monotonic()
        args = [str(CLUSTER_DIR / "up.sh"), self.mode] + (["--fresh"] if fresh and self.started_here else [])
        self._run(*args, timeout=timeout)
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self, force: bool = False, timeout: float = 120) -> None:
        """down.sh, if this object started the cluster (or force)."""
        if self.started_here or force:
            self._run(str(CLUSTER_DIR / "down.sh"), timeout=timeout)

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60, check: bool = True) -> str:
        """Run kubectl against this cluster; returns stdout, raises ClusterError on failure."""
        kubectl = str(bin_dir() / "kubectl") if (bin_dir() / "kubectl").exists() else shutil.which("kubectl")
        proc = subprocess.run(
            [kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input, capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


def crd_files(root: Path = REPO_ROOT) -> list[Path]:
    return sorted((root / "crds").glob("*.yaml"))


def install_crds(cluster: LocalCluster, files: list[Path] | None = None, timeout: float = 60) -> list[Path]:
    """Apply crds/*.yaml (server-side) and wait until each is Established."""
    files = crd_files() if files is None else files
    if not files:
        return []
    args = ["apply", "--server-side", "--force-conflicts"]
    for f in files:
        args += ["-f", str(f)]
    cluster.kubectl(*args, timeout=timeout)
    names = cluster.kubectl("get", *[a for f in files for a in ("-f", str(f))], "-o", "name").split()
    cluster.kubectl("wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *names, timeout=timeout + 10)
    return files


def run_script(cluster: LocalCluster, script: str, *args: str, timeout: float = 300) -> str:
    """Run one of the cluster scripts (load-image.sh, base-image.sh, ...) for this cluster."""
    return cluster._run(str(CLUSTER_DIR / script), *args, timeout=timeout)


def node_ctr(cluster: LocalCluster, *args: str, timeout: float = 60) -> str:
    """ctr against the node's own containerd (namespace k8s.io)."""
    return cluster._run("-c", '. "$0"/lib.sh && node_ctr "$@"', str(CLUSTER_DIR), *args, timeout=timeout)
