"""Helpers for bereit-server tests: entry scripts written to a temporary folder, the app
in-process (init() done), and a real server process on 127.0.0.1 where a socket matters."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from bereit.server.app import create_app
from bereit.server.config import ServerConfig

SEED_SCRIPT = """
import json, os, pickle
import numpy as np

def init():
    global model
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl"), "rb") as f:
        model = pickle.load(f)

def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    return model.predict(data).tolist()
"""


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory) -> tuple[Path, list, list]:
    """A digits LogisticRegression in <dir>/model.pkl, plus rows and what it predicts for them."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("models") / "digits" / "1"
    folder.mkdir(parents=True)
    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=2000).fit(x[:1500], y[:1500])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    rows = x[1500:1510].tolist()
    return folder, rows, model.predict(x[1500:1510]).tolist()


@pytest.fixture
def anyio_backend():
    # The server runs on asyncio (uvloop); trio is not a target.
    return "asyncio"


def write_script(folder: Path, source: str, name: str = "score.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def started_app(tmp_path: Path, source: str, access_stream=None, **settings):
    """The ASGI app with init() finished (raises if it failed); access lines go to
    ``access_stream`` (default: nowhere)."""
    settings.setdefault("auth_mode", "none")
    script = write_script(tmp_path, source, settings.pop("script_name", "score.py"))
    app = create_app(ServerConfig(entry_script=script, **settings), access_stream=access_stream or open(os.devnull, "w"))
    app.load_and_init()
    if app.init_error is not None:
        raise app.init_error
    return app


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def eventually(check, timeout: float = 20) -> None:
    """Until ``check()`` is true, on the test's event loop."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"not true after {timeout} s"
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``bereit-server`` in a child process on 127.0.0.1."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "BEREIT_AUTH_MODE": "none", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bereit.server.main", "--host", "127.0.0.1", "--port", str(self.port), *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("server not ready in time")

    def wait_for_metric(self, line: str, timeout: float = 20) -> None:
        """Until /metrics has ``line`` (e.g. "bereit_in_flight 1.0"): what the server is doing."""
        deadline = time.monotonic() + timeout
        while line not in httpx.get(self.url + "/metrics").text.splitlines():
            assert time.monotonic() < deadline, f"no {line!r} in /metrics after {timeout} s"
            time.sleep(0.02)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server_process():
    started: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(args, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        for stream in (server.proc.stdout, server.proc.stderr):
            stream.close()
