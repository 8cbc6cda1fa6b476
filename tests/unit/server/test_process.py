"""A real bereit-server process on 127.0.0.1: exit codes, termination message, SIGTERM drain,
huge bodies over a socket, and azmlinfsrv's flags."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import httpx
import pytest

from .conftest import SEED_SCRIPT, write_script


def _exit_of(server, timeout=60) -> tuple[int, str]:
    code = server.proc.wait(timeout)
    return code, server.proc.stderr.read()


def test_init_that_raises_exits_1_naming_file_and_line_in_the_termination_log(tmp_path, server_process):
    script = write_script(tmp_path, "def init():\n    x = 1\n    raise RuntimeError('model file is corrupt')\n\ndef run(d):\n    return d\n")
    log = tmp_path / "termination-log"
    log.write_text("")
    server = server_process(["--entry-script", str(script)], env={"BEREIT_TERMINATION_LOG": str(log)})
    code, stderr = _exit_of(server)
    assert code == 1
    assert f"{script}:3" in stderr and "RuntimeError: model file is corrupt" in stderr
    assert log.read_text() == f"init failed: {script}:3: init() raised RuntimeError: model file is corrupt"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: write_script(p, "def init():\n    pass\ndef run(d)\n    return d\n"), "syntax error"),
        (lambda p: p / "nope.py", "not found"),
        (lambda p: write_script(p, "import no_such_module_xyz\ndef init(): pass\ndef run(d): return d\n"), "ModuleNotFoundError"),
        (lambda p: write_script(p, "def run(d): return d\n"), "defines no init()"),
        (lambda p: write_script(p, "def init(): pass\ndef run(): return 1\n"), "must take one argument"),
    ],
    ids=["syntax-error", "missing-script", "import-error", "no-init", "run-without-argument"],
)
def test_unusable_entry_script_exits_1_with_a_clear_reason(tmp_path, server_process, make, fragment):
    script = make(tmp_path)
    server = server_process(["--entry-script", str(script)])
    code, stderr = _exit_of(server)
    assert code == 1
    assert fragment in stderr
    assert str(script) in stderr


def test_syntax_error_names_the_line(tmp_path, server_process):
    script = write_script(tmp_path, "def init():\n    pass\ndef run(d)\n    return d\n")
    code, stderr = _exit_of(server_process(["--entry-script", str(script)]))
    assert code == 1 and f"{script}:3: syntax error" in stderr


def test_missing_model_folder_exits_1(tmp_path, server_process):
    script = write_script(tmp_path, SEED_SCRIPT)
    code, stderr = _exit_of(server_process(["--entry-script", str(script), "--model-dir", str(tmp_path / "gone")]))
    assert code == 1 and "model folder" in stderr and "gone" in stderr


def test_bad_setting_exits_2_naming_the_flag(tmp_path, server_process):
    script = write_script(tmp_path, SEED_SCRIPT)
    server = server_process(["--entry-script", str(script)], env={"BEREIT_MAX_QUEUE_LENGTH": "ten"})
    code, stderr = _exit_of(server)
    assert code == 2 and "--max-queue-length / BEREIT_MAX_QUEUE_LENGTH" in stderr


def test_azmlinfsrv_flags_serve_the_seed_script(tmp_path, server_process, digits_model):
    folder, rows, expected = digits_model
    script = write_script(tmp_path, SEED_SCRIPT)
    server = server_process(["--entry_script", str(script), "--model_dir", str(folder), "--worker_count", "2"])
    server.wait_ready()
    response = httpx.post(server.url + "/score", json={"data": rows})
    assert response.status_code == 200 and response.json() == expected
    assert httpx.get(server.url + "/").text == "Healthy"


def test_access_lines_reach_stdout_within_about_a_second(tmp_path, server_process):
    script = write_script(tmp_path, "def init(): pass\ndef run(d): return d\n")
    server = server_process(["--entry-script", str(script)], env={"PYTHONUNBUFFERED": "1"})
    server.wait_ready()
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(server.proc.stdout.readline, "")), daemon=True)
    reader.start()
    rid = httpx.post(server.url + "/score", content=b"{}").headers["x-request-id"]
    deadline = time.monotonic() + 10  # flushed every second; the rest is room for a busy machine
    while time.monotonic() < deadline and not any(rid in line for line in lines):
        time.sleep(0.05)
    assert any(rid in line and "bereit.access" in line for line in lines)


def test_event_loop_thread_is_sched_batch_and_run_threads_are_not(tmp_path, server_process):
    # The loop must not preempt run() on a shared core, and run() must keep normal priority.
    script = write_script(tmp_path, "def init(): pass\ndef run(d): return d\n")
    server = server_process(["--entry-script", str(script), "--max-concurrent-requests", "2"])
    server.wait_ready()
    pid = server.proc.pid
    policies = [os.sched_getscheduler(int(t)) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    assert os.sched_getscheduler(pid) == os.SCHED_BATCH
    assert policies.count(os.SCHED_OTHER) >= 2  # the two run() threads


def test_sigterm_drains_the_request_in_flight_then_exits_0(tmp_path, server_process):
    script = write_script(tmp_path, "import time\ndef init(): pass\ndef run(d):\n    time.sleep(3)\n    return 'finished'\n")
    server = server_process(["--entry-script", str(script)])
    server.wait_ready()
    result = {}

    def call():
        result["response"] = httpx.post(server.url + "/score", json={}, timeout=30)

    caller = threading.Thread(target=call)
    caller.start()
    server.wait_for_metric("bereit_in_flight 1.0")
    server.proc.send_signal(signal.SIGTERM)  # the request is inside run() now
    caller.join(30)
    assert result["response"].status_code == 200 and result["response"].json() == "finished"
    assert server.proc.wait(30) == 0
    # Once drained, nothing listens any more.
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/", timeout=2)


def test_200_mb_body_is_413_and_memory_stays_bounded(tmp_path, server_process):
    script = write_script(tmp_path, "def init(): pass\ndef run(d): return len(d)\n")
    server = server_process(["--entry-script", str(script)])
    server.wait_ready()
    before = server.rss_bytes()
    size = 200 * 1024 * 1024

    # Declared size: refused from the headers alone.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
            + b"[" * 65536
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")

    # Streamed without a length: refused once the limit (10 MiB by default) is passed.
    def chunks():
        block = b"1," * (512 * 1024)
        for _ in range(size // len(block)):
            yield block

    try:
        response = httpx.post(server.url + "/score", content=chunks(), headers={"content-type": "text/plain"}, timeout=60)
        assert response.status_code == 413
    except httpx.TransportError:
        pass  # the server may close the socket while the client is still sending: also refused
    assert server.rss_bytes() - before < 64 * 1024 * 1024
    assert httpx.post(server.url + "/score", content=b"ok", headers={"content-type": "text/plain"}).json() == 2
