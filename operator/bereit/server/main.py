"""``bereit-server``: serve an entry script, or fetch model files for the init container.

    bereit-server [--entry-script score.py] [--model-dir DIR] [--port 8080] [...]
    bereit-server fetch --url URL [--sha256 HEX] --dest DIR [--unpack] [--filename NAME]

Serving: every flag also has a ``BEREIT_*`` environment variable (``bereit.constants``); the
flags of Azure ML's ``azmlinfsrv`` (``--entry_script``, ``--model_dir``, ``--port``,
``--worker_count``) work too. Routes: ``GET /`` (alive), ``GET /ready`` (init() has finished),
``POST /score``, ``GET /swagger.json`` (``?version=3`` for OpenAPI 3), ``GET /metrics``.
When init() fails, the file, line and error go to stderr and to ``/dev/termination-log`` (the
pod's termination message) and the process exits with status 1. SIGTERM stops taking new
connections, lets the requests in flight and in the queue finish, then exits 0.

Fetching (see :mod:`bereit.server.fetch`): downloads URL into DIR, checks the SHA-256 when
given, unpacks ``.tar.gz``/``.tgz``/``.tar``/``.zip`` with ``--unpack``. Exit status 1 with a
one-line reason on failure (also written to the termination log).

``bereit serve`` calls :func:`serve` with a :class:`~bereit.server.config.ServerConfig`, or
:func:`main` with an argument list.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from bereit import constants as c

from . import config as config_mod
from . import logs
from .app import create_app
from .connection import HttpConnection
from .dataplane import DataPlane
from .entry import EntryScriptError
from .fetch import FetchError, fetch

# A pod may name another terminationMessagePath; tests point it at a temporary file.
ENV_TERMINATION_LOG = "BEREIT_TERMINATION_LOG"
# Termination messages longer than this are cut by Kubernetes anyway.
TERMINATION_LOG_LIMIT = 4000
# The event loop thread and the run() threads share one GIL: a shorter switch interval than
# the default 5 ms lets the loop answer while run() computes (measured: see bench/README.md).
SWITCH_INTERVAL_S = 0.001
# Idle keep-alive connections close after this long (uvicorn's default).
KEEP_ALIVE_S = 5


def write_termination_log(message: str, path: str | None = None) -> None:
    """Write the reason for the pod status when the file is there (Kubernetes creates it in
    every container); outside a container nothing is created."""
    path = path or os.environ.get(ENV_TERMINATION_LOG) or c.TERMINATION_LOG
    if not os.path.isfile(path):
        return
    try:
        with open(path, "w") as f:
            f.write(message[:TERMINATION_LOG_LIMIT])
    except OSError:
        pass


def _loop_thread_waits_its_turn() -> None:
    """Put the calling thread (the event loop's) in Linux's SCHED_BATCH class: when a request
    arrives while run() computes on the same core, the loop no longer preempts run() at once;
    it runs at the end of run()'s time slice (a few ms at most) and then handles everything
    that arrived together. Same fair share of the CPU, no privilege needed; far fewer context
    switches and less loop CPU per request, and run() back at its in-process cost
    (bench/README.md, "Choosing the stack")."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass  # not Linux, or a sandbox that refuses it: only slower


def _report_init_failure(error: EntryScriptError) -> None:
    if error.details:
        sys.stderr.write(error.details)
    line = f"init failed: {error}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    logs.event(logging.ERROR, "init failed", error=error.message, where=error.where)
    write_termination_log(line)


class _Server(uvicorn.Server):
    """uvicorn, plus: readiness turns false as soon as SIGTERM arrives."""

    def __init__(self, config: uvicorn.Config, plane: DataPlane):
        super().__init__(config)
        self.plane = plane

    def handle_exit(self, sig, frame) -> None:
        self.plane.draining = True
        super().handle_exit(sig, frame)


def serve(config: config_mod.ServerConfig) -> int:
    """Run the server until SIGTERM/SIGINT (exit status 0) or a failed init() (status 1)."""
    logs.configure(config.log_format)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = create_app(config)  # starts the run() threads, which keep the normal policy
    _loop_thread_waits_its_turn()
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="auto",  # uvloop where installed (everywhere but Windows)
        # uvicorn runs the server (sockets, signals, lifespan, drain); each connection is
        # bereit's own, on httptools, with no ASGI cycle per request (see connection.py).
        # Its access log is ours: with the request id, never the query string.
        http=HttpConnection.factory(app, KEEP_ALIVE_S),
        timeout_keep_alive=KEEP_ALIVE_S,
        lifespan="on",
        log_config=None,
        server_header=False,  # the Date header only
        # Room for queued requests and a full run() after SIGTERM.
        timeout_graceful_shutdown=(config.scoring_timeout_ms + config.max_queue_wait_ms) / 1000 + 5,
        backlog=2048,
    )
    server = _Server(uv_config, app.plane)

    def init_failed(error: EntryScriptError) -> None:
        _report_init_failure(error)
        server.should_exit = True

    def init_finished() -> None:
        # Everything init() loaded lives as long as the process: keep the GC from rescanning it.
        gc.freeze()

    app.plane.on_init_failed = init_failed
    app.plane.on_init_finished = init_finished
    logs.event(
        logging.INFO,
        "bereit-server starting",
        entry_script=str(config.entry_script),
        port=config.port,
        auth=config.auth_mode,
        max_concurrent_requests=config.max_concurrent_requests,
        max_queue_length=config.max_queue_length,
    )
    # uvicorn re-raises the signal it caught once it has drained; with these no-op handlers in
    # place that ends here, and a drained shutdown exits 0 rather than "killed by SIGTERM".
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    return 1 if app.init_error is not None else 0


def _fetch_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bereit-server fetch", description="Fetch model files into a folder.")
    parser.add_argument("--url", required=True, help="https:// address of the file")
    parser.add_argument("--dest", required=True, type=Path, help="folder to put the file in")
    parser.add_argument("--sha256", help="expected SHA-256 of the file (hex)")
    parser.add_argument("--unpack", action="store_true", help="extract a .tar.gz/.tgz/.tar/.zip into the folder")
    parser.add_argument("--filename", help="name to save as (default: the URL's last path segment)")
    args = parser.parse_args(argv)
    try:
        where = fetch(args.url, args.dest, args.sha256, args.unpack, args.filename)
    except FetchError as exc:
        message = f"fetch failed: {exc}"
        sys.stderr.write(message + "\n")
        write_termination_log(message)
        return 1
    sys.stdout.write(f"fetched {args.url} -> {where}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fetch":
        return _fetch_main(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    try:
        config = config_mod.parse(argv)
    except config_mod.ConfigError as exc:
        sys.stderr.write(f"bereit-server: {exc}\n")
        write_termination_log(f"bereit-server: {exc}")
        return 2
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
