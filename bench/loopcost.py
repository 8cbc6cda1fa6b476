"""bereit-server's own work on the event loop per /score request, with no network and no run().

The connection is fed the same request again and again, as wrk sends it (keep-alive, the
seed body of ROWS rows); the run threads are left out: a job is answered at once, on the
loop, with a fixed result. What remains is exactly the loop's part of a request — parsing,
the checks, admission, the hand-over, metrics, the access line and the response — which
under load runs about three times slower than here (cold caches; bench/README.md, run 15).

    python3 bench/loopcost.py [--rows 100] [--requests 20000] [--repeat 7] [--profile | --instructions]

``--instructions`` counts the bytecode instructions per request instead of timing them: a
figure no other work on the machine can move, for comparing two trees on a busy machine.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from uvicorn.server import ServerState

from bereit.server import connection
from bereit.server.app import create_app
from bereit.server.config import ServerConfig
from bereit.server.responses import Response

RESULT = Response(200, json.dumps(list(range(100))).encode())


class _Transport:
    def __init__(self):
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the harness's connection was closed: a request was refused")

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 40000) if name == "peername" else None

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _answer_at_once(job) -> None:
    """The pool's hand-over replaced: the job runs and returns on the spot."""
    job.take()
    job.started = job.ended = time.perf_counter()
    job.returned(True, RESULT)


def request_bytes(rows: int) -> bytes:
    body = json.dumps({"data": [[float(i % 17) for i in range(64)]] * rows}).encode()
    head = (
        b"POST /score HTTP/1.1\r\nHost: 127.0.0.1:9400\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def harness(rows: int):
    """(one_request, transport, app): a connection ready to be fed one request at a time."""
    folder = Path(tempfile.mkdtemp(prefix="bereit-loopcost-"))
    (folder / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    config = ServerConfig(
        entry_script=folder / "score.py", auth_mode="none", max_queue_length=64, max_queue_wait_ms=60000
    )  # as bench/run.py starts it: JSON logs, the access log on
    app = create_app(config, access_stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    app.load_and_init()
    app.plane.pool.close()
    app.plane.pool.submit = _answer_at_once
    loop = uvloop.new_event_loop()
    state = ServerState()
    state.default_headers = [(b"date", b"Tue, 01 Dec 2026 21:00:00 GMT")]  # what uvicorn sets each second
    conn = connection.HttpConnection(app, connection.IdleWatch(5.0), None, state, _loop=loop)
    transport = _Transport()
    conn.connection_made(transport)
    data = request_bytes(rows)
    buffer, n = connection._READ_BUFFER, len(data)

    def one_request() -> None:
        buffer[:n] = data
        conn.buffer_updated(n)

    return one_request, transport, app


def count_instructions(one_request, requests: int) -> int:
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        for _ in range(requests):
            one_request()
    finally:
        sys.settrace(None)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions instead")
    parser.add_argument("--instructions", action="store_true", help="count bytecode instructions per request instead")
    args = parser.parse_args()
    one_request, transport, app = harness(args.rows)
    for _ in range(2000):
        one_request()
    if transport.written == 0 or app.metrics.requests.get(("/score", 200), 0) != 2000:
        sys.exit(f"the harness's requests were not answered with 200: {app.metrics.requests}")
    if args.instructions:
        requests = min(args.requests, 500)  # tracing every instruction is slow
        print(f"{args.rows} rows: {count_instructions(one_request, requests) / requests:.1f} "
              "bytecode instructions per request")
        return
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [one_request() for _ in range(args.requests)])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for _ in range(args.requests):
            one_request()
        times.append((time.perf_counter() - start) / args.requests * 1e6)
        app.access.flush()
    print(f"{args.rows} rows: {statistics.median(times):.2f} µs per request (median of {args.repeat}; "
          f"min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
