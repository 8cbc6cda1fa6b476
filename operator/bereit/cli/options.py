"""Options many commands share, declared once (typer reads them from the signatures)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from bereit.cli.output import Format

CLUSTER = "Cluster"

Namespace = Annotated[
    Optional[str],
    typer.Option(
        "--namespace",
        envvar="BEREIT_NAMESPACE",
        help="Namespace to work in (default: the context's namespace, else 'default').",
        rich_help_panel=CLUSTER,
        show_default=False,
    ),
]
Context = Annotated[
    Optional[str],
    typer.Option("--context", help="kubeconfig context to use (default: the current one).", rich_help_panel=CLUSTER),
]
Kubeconfig = Annotated[
    Optional[str],
    typer.Option("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).", rich_help_panel=CLUSTER),
]
Output = Annotated[
    Format,
    typer.Option("-o", "--output", help="table for people; json or yaml for programs; name for names only.", case_sensitive=False),
]
Wait = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Follow progress until the service is Healthy or Failed."),
]
Timeout = Annotated[
    int,
    typer.Option("--timeout", min=1, help="Seconds to wait at most (with --wait).", show_default=True),
]


def connect(namespace: str | None, context: str | None, kubeconfig: str | None):
    """The cluster client (imported here: --help, --dry-run and bad input never pay for it)."""
    from bereit.cli.cluster import Cluster, Target

    return Cluster(Target(namespace=namespace, context=context, kubeconfig=kubeconfig))
