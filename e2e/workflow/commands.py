"""Running the tools the workflow needs (kubectl, helm, the cluster scripts), with their output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .progress import WorkflowError

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPTS = REPO / "e2e" / "cluster"


def cluster_bin_dir() -> Path | None:
    """Where e2e/cluster/install-deps.sh puts kubectl and helm (None when it cannot say)."""
    try:
        out = subprocess.run(["bash", str(CLUSTER_SCRIPTS / "bin-path.sh")], check=True,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip())


def find_tool(name: str) -> str:
    """The cluster's own build of a tool if it is there, else the one on PATH."""
    folder = cluster_bin_dir()
    if folder is not None and os.access(folder / name, os.X_OK):
        return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise WorkflowError(f"{name} is not installed: run e2e/cluster/install-deps.sh or put {name} on PATH")
    return found


def stream(
    command: Sequence[str],
    *,
    show: Callable[[str], None] | None,
    env: dict[str, str] | None = None,
    timeout: float = 3600,
    what: str | None = None,
) -> str:
    """Run a command, passing each output line to `show` as it comes; raise with the tail on failure."""
    tail: deque[str] = deque(maxlen=40)
    lines: list[str] = []

    def read(pipe) -> None:
        for line in pipe:
            line = line.rstrip("\n")
            tail.append(line)
            lines.append(line)
            if show is not None:
                show(line)

    with subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, bufsize=1) as proc:
        reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            raise WorkflowError(f"{what or command[0]} took longer than {timeout:.0f} s:\n" + "\n".join(tail)) from None
        reader.join()
    if code != 0:
        raise WorkflowError(f"{what or ' '.join(command)} failed (exit {code}):\n" + "\n".join(tail))
    return "\n".join(lines)


@dataclass
class Kubectl:
    """kubectl (and helm) against one cluster.

    kubeconfig None means kubectl's own choice: $KUBECONFIG or ~/.kube/config, current context.
    """

    kubeconfig: Path | None = None
    binary: str = ""
    helm_binary: str = ""

    def __post_init__(self) -> None:
        self.binary = self.binary or find_tool("kubectl")

    def _config_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60, check: bool = True) -> str:
        command = [self.binary, *self._config_args(), *args]
        try:
            proc = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise WorkflowError(f"kubectl {' '.join(args)} did not answer within {timeout:.0f} s") from None
        if check and proc.returncode != 0:
            raise WorkflowError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist."""
        args = ["get", kind, name, "-o", "json", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        out = self(*args)
        return json.loads(out) if out.strip() else None

    def items(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        args = ["get", kind, "-o", "json"]
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        if selector:
            args += ["-l", selector]
        return json.loads(self(*args))["items"]

    def apply(self, manifests: Sequence[dict], namespace: str | None = None) -> str:
        """Apply the objects (server-side, so a re-run converges instead of conflicting)."""
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)})
        args = ["apply", "--server-side", "--field-manager", "bereit-e2e", "--force-conflicts", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        return self(*args, input=document)

    def helm(self, *args: str, timeout: float = 600, show: Callable[[str], None] | None = None) -> str:
        self.helm_binary = self.helm_binary or find_tool("helm")
        command = [self.helm_binary, *(["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []), *args]
        return stream(command, show=show, timeout=timeout, what=f"helm {args[0]}")

    def current_context(self) -> str:
        return self("config", "current-context", check=False).strip()
