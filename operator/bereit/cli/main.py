"""The `bereit` command: Azure Machine Learning's model workflow (register, deploy, run, keys, update, delete)
on any Kubernetes cluster, producing the same resources `kubectl apply` and GitOps use."""

from __future__ import annotations

import sys

import typer

from bereit import __version__
from bereit.cli import output
from bereit.cli.commands import compute, deploy, model, package, serve, service
from bereit.cli.errors import CliError

EPILOG = (
    "Exit codes: 0 done; 1 the operation failed (service Failed, scoring error); 2 bad input "
    "(flags, files, settings); 3 not found (model, version, service, compute target); 4 cluster "
    "unreachable, refused, or without the bereit CRDs; 5 timed out waiting; 6 already exists."
)

app = typer.Typer(
    name="bereit",
    help=__doc__,
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: wraps docstring paragraphs to the terminal
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(model.app, name="model")
app.add_typer(compute.app, name="compute")
app.add_typer(service.app, name="service")
app.command("deploy", epilog=EPILOG)(deploy.deploy)
app.command("package")(package.package)
app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(serve.serve)


@app.command("version")
def version() -> None:
    """Print bereit's version."""
    sys.stdout.write(f"bereit {__version__}\n")


def run(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and a documented exit code."""
    try:
        result = app(args=argv, prog_name="bereit", standalone_mode=False)
    except CliError as error:
        output.error(error.message)
        return int(error.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        output.error("interrupted")
        return 130
    except Exception as error:
        # Usage errors: click's own, or the copy of click that newer typer releases carry.
        if hasattr(error, "show") and isinstance(getattr(error, "exit_code", None), int):
            error.show()
            return error.exit_code
        raise
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
