"""Making a locally built image available to the cluster's nodes.

How, chosen with `--load` (default `auto`):
- `registry`: tag it under `--registry` (or $BEREIT_REGISTRY) and `docker push` it; for every
  real cluster. `auto` picks it whenever a registry is given.
- `kind`: `kind load docker-image` into the kind cluster of the current context (kind-NAME).
- `local`: import it into the containerd of a node on this machine (a single-node cluster
  such as k3s or kubeadm on this host): `docker save | ctr images import`, at the socket
  `$CONTAINERD_ADDRESS` names (the variable ctr itself reads).
- `none`: the cluster can already pull the image as it is named.
`auto` without a registry picks kind for a `kind-*` context, local when `$CONTAINERD_ADDRESS`
is set, and otherwise refuses, saying which flag to add: pushing somewhere by guess would be worse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from enum import StrEnum
from pathlib import Path

from bereit.cli.errors import BadInput, CliError

CONTAINERD_ADDRESS = "CONTAINERD_ADDRESS"
KIND_PREFIX = "kind-"


class Load(StrEnum):
    AUTO = "auto"
    REGISTRY = "registry"
    KIND = "kind"
    LOCAL = "local"
    NONE = "none"


def choose(how: Load, registry: str | None, context: str) -> Load:
    if how != Load.AUTO:
        if how == Load.REGISTRY and not registry:
            raise BadInput("--load registry needs --registry HOST[/PATH] (or $BEREIT_REGISTRY)")
        return how
    if registry:
        return Load.REGISTRY
    if context.startswith(KIND_PREFIX):
        return Load.KIND
    if os.environ.get(CONTAINERD_ADDRESS):
        return Load.LOCAL
    raise BadInput(
        f"cannot tell how the nodes of context {context!r} get the model image: pass --registry "
        f"HOST[/PATH] to push it there, or --load kind|none, or set ${CONTAINERD_ADDRESS} to the "
        "containerd socket of a node on this machine"
    )


def reference(image: str, how: Load, registry: str | None) -> str:
    """The name pods use for the image."""
    if how == Load.REGISTRY and registry:
        return f"{registry.rstrip('/')}/{image}"
    return image


def make_available(image: str, how: Load, registry: str | None, context: str) -> str:
    """Publish `image` (a local docker image) the chosen way; returns the name pods pull."""
    target = reference(image, how, registry)
    if how == Load.REGISTRY:
        _run(["docker", "tag", image, target], "tag the image")
        _run(["docker", "push", target], f"push {target}", hint="check `docker login` for that registry")
    elif how == Load.KIND:
        cluster = context.removeprefix(KIND_PREFIX) if context.startswith(KIND_PREFIX) else "kind"
        _require("kind", "install kind, or pass --registry")
        _run(["kind", "load", "docker-image", "--name", cluster, image], f"load {image} into kind cluster {cluster}")
    elif how == Load.LOCAL:
        _load_into_local_node(image)
    return target


def _load_into_local_node(image: str) -> None:
    address = os.environ.get(CONTAINERD_ADDRESS)
    if not address:
        raise CliError(f"--load local needs ${CONTAINERD_ADDRESS}: the containerd socket of the node on this machine")
    socket = Path(address)
    if not socket.exists():
        raise CliError(f"no containerd listens at {socket} (${CONTAINERD_ADDRESS}): is the node running? Otherwise pass --registry")
    _require("ctr", "install containerd's ctr (e2e/cluster/install-deps.sh)")
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    load = subprocess.run(
        ["ctr", "--address", str(socket), "--namespace", "k8s.io", "images", "import", "-"],
        stdin=save.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    save.stdout.close()
    save_error = save.stderr.read().decode(errors="replace")
    if save.wait() != 0:
        raise CliError(f"could not save image {image} from docker: {_last_line(save_error)}")
    if load.returncode != 0:
        raise CliError(
            f"could not import image {image} into the node's containerd at {socket}: {_last_line(load.stderr)}; "
            "pass --registry or --load none otherwise"
        )


def _require(program: str, hint: str) -> None:
    if shutil.which(program) is None:
        raise CliError(f"{program} is not installed: {hint}")


def _run(command: list[str], what: str, hint: str = "") -> None:
    _require(command[0], "install it, or choose another --load")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CliError(f"could not {what}: {_last_line(result.stderr or result.stdout)}" + (f"; {hint}" if hint else ""))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
