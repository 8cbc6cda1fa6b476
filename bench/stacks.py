"""Which HTTP stack to build bereit-server on: the same tiny scoring app on each candidate.

Every variant does what bereit-server's hot path must do: read the body, hand it to the seed
score.py's run() on a dedicated thread (run() is blocking user code), return the JSON. Server
on CPU 0, wrk on CPU 1, 32 connections, 1-row body. Reports req/s and the server's CPU time
per request (the per-core overhead, steadier than req/s on a shared machine).

    python3 bench/stacks.py [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import model as bench_model  # noqa: E402
from run import ONE_THREAD, RAW, _group_cpu, _wrk, stop, write_lua  # noqa: E402

APP = textwrap.dedent(
    """
    import asyncio, os, queue, sys, threading
    import orjson
    sys.path.insert(0, {bench!r})
    import score
    score.init()
    jobs = queue.SimpleQueue()

    def worker():
        while True:
            fut, loop, body = jobs.get()
            try:
                loop.call_soon_threadsafe(fut.set_result, score.run(body))
            except Exception as exc:
                loop.call_soon_threadsafe(fut.set_exception, exc)

    threading.Thread(target=worker, daemon=True).start()

    async def call_run(text):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        jobs.put((fut, loop, text))
        return await fut

    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        out = orjson.dumps(await call_run(body.decode()))
        await send({{"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]}})
        await send({{"type": "http.response.body", "body": out}})

    class RSGI:
        async def __rsgi__(self, scope, proto):
            body = await proto()
            out = orjson.dumps(await call_run(body.decode()))
            proto.response_bytes(200, [("content-type", "application/json")], out)

    rsgi = RSGI()

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def score_route(request: Request):
        out = orjson.dumps(await call_run((await request.body()).decode()))
        return Response(out, media_type="application/json")

    starlette_app = Starlette(routes=[Route("/score", score_route, methods=["POST"])])

    import httptools, uvloop

    class Connection(asyncio.Protocol):
        # No ASGI: httptools callbacks straight to run(), as bereit.server.connection does.
        def connection_made(self, transport):
            self.transport, self.parser, self.chunks = transport, httptools.HttpRequestParser(self), []
            self.loop = asyncio.get_running_loop()

        def data_received(self, data):
            self.parser.feed_data(data)

        def on_body(self, chunk):
            self.chunks.append(chunk)

        def on_message_complete(self):
            text, self.chunks = b"".join(self.chunks).decode(), []
            jobs.put((self, self.loop, text))

        def set_result(self, result):
            out = orjson.dumps(result)
            self.transport.write(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n%s" % (len(out), out))

        def set_exception(self, exc):
            self.transport.close()

    def serve_protocol(port):
        if os.environ.get("STACK_LOOP_BATCH") == "1":  # bereit-server's scheduling (bench/paired.py)
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        async def main():
            server = await asyncio.get_running_loop().create_server(Connection, "127.0.0.1", port, backlog=2048)
            await server.serve_forever()
        uvloop.run(main())
    """
)


def variants(port: int) -> dict[str, list[str]]:
    py = sys.executable
    uv = [py, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    gr = [py, "-m", "granian", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning"]
    return {
        "uvicorn + httptools + uvloop, bare ASGI": uv + ["--http", "httptools", "--loop", "uvloop", "stackapp:asgi"],
        "uvicorn + h11 + asyncio, bare ASGI": uv + ["--http", "h11", "--loop", "asyncio", "stackapp:asgi"],
        "uvicorn + httptools + uvloop, Starlette routing": uv
        + ["--http", "httptools", "--loop", "uvloop", "stackapp:starlette_app"],
        "granian (ASGI, uvloop)": gr + ["--interface", "asgi", "--loop", "uvloop", "stackapp:asgi"],
        "granian (RSGI, uvloop)": gr + ["--interface", "rsgi", "--loop", "uvloop", "stackapp:rsgi"],
        "httptools + uvloop, an asyncio protocol, no ASGI": [py, "-c", f"import stackapp; stackapp.serve_protocol({port})"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1, help="rows per request body (1 or 100)")
    args = parser.parse_args()
    RAW.mkdir(parents=True, exist_ok=True)
    model_dir = bench_model.build()
    (RAW / "stackapp.py").write_text(APP.format(bench=str(HERE)))
    rows = json.loads((model_dir / "holdout.json").read_text())["rows"][: args.rows]
    body = json.dumps({"data": rows})
    lua = write_lua(RAW / "stack-body.lua", body.encode())
    lines = ["| stack | req/s (median) | server CPU µs/request | p99 ms |", "|---|---|---|---|"]
    for index, (name, cmd) in enumerate(variants(9400).items()):
        port = 9400 + index
        cmd = [part.replace("9400", str(port)) for part in cmd]
        proc = subprocess.Popen(
            ["taskset", "-c", "0", *cmd],
            cwd=RAW,
            env={**os.environ, **ONE_THREAD, "AZUREML_MODEL_DIR": str(model_dir), "PYTHONPATH": str(RAW)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/score"
            for _ in range(240):
                try:
                    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
                    urllib.request.urlopen(request, timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.25)
            _wrk(url, lua, 32, 1)
            before = _group_cpu(proc.pid)
            runs = [_wrk(url, lua, 32, args.seconds) for _ in range(args.rounds)]
            cpu = _group_cpu(proc.pid) - before
            requests = sum(r["rps"] for r in runs) * args.seconds
            med = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
            lines.append(f"| {name} | {med['rps']:.0f} | {1e6 * cpu / requests:.0f} | {med['p99_ms']:.2f} |")
            print(lines[-1], flush=True)
        finally:
            stop(proc)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = f"{args.rows} row(s) per request. Load average after the run: {load}\n\n" + "\n".join(lines) + "\n"
    (HERE / "results" / f"stacks-{args.rows}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
