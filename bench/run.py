"""Benchmark bereit-server against azureml-inference-server-http, MLServer and KServe.

Every server is pinned to CPU 0 (taskset), wrk to CPU 1. Same model (scikit-learn digits
LogisticRegression), same machine, one run. For each server: one worker and its recommended
multi-worker setting; 1-row and 100-row bodies; 1 and 32 connections; requests/s, p50, p99,
errors and resident memory (all processes of the server). Answers are checked against the
model's own predictions before any timing. The competitors live in their own virtualenvs
(bench/setup-venvs.sh); bereit-server runs from this checkout.

    python3 bench/run.py [--rounds 3] [--seconds 5] [--only bereit,azureml]

Raw results go to bench/results/raw/ (not committed), the table to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import model as bench_model  # noqa: E402

VENVS = Path(os.environ.get("BEREIT_BENCH_VENVS", Path.home() / ".cache/bereit/bench-venvs"))
RAW = HERE / "results" / "raw"
SERVER_CPU, LOAD_CPU = "0", "1"
# One thread per library pool: the server has one core; BLAS threads would only fight it.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclasses.dataclass
class Server:
    name: str
    workers: str  # "1" or what the multi-worker setting is
    cmd: list[str]
    path: str
    body: callable  # rows -> JSON body
    answer: callable  # response JSON -> list of labels
    env: dict = dataclasses.field(default_factory=dict)
    cwd: Path | None = None


def _v1(rows):
    return {"data": rows}


def servers(model_dir: Path, port: int) -> list[Server]:
    py = sys.executable
    bereit = [py, "-m", "bereit.server.main", "--host", "127.0.0.1", "--port", str(port), "--auth-mode", "none"]
    # A queue deep enough for 32 connections: the seed default (10) would answer most with 503.
    queue = ["--max-queue-length", "64", "--max-queue-wait-ms", "60000"]
    seed = ["--entry-script", str(HERE / "score.py"), "--model-dir", str(model_dir)]
    typed = ["--entry-script", str(HERE / "score_schema.py"), "--model-dir", str(model_dir)]
    azml = [str(VENVS / "azureml/bin/azmlinfsrv"), "--entry_script", str(HERE / "score.py"), "--model_dir", str(model_dir), "--port", str(port)]
    mls_root = _mlserver_folder(model_dir)
    mls = [str(VENVS / "mlserver/bin/mlserver"), "start", str(mls_root)]
    mls_env = {"MLSERVER_HTTP_PORT": str(port), "MLSERVER_GRPC_PORT": str(port + 1000), "MLSERVER_METRICS_PORT": str(port + 2000), "MLSERVER_HOST": "127.0.0.1"}
    ks = [str(VENVS / "kserve/bin/python"), str(HERE / "kserve_model.py"), "--model_dir", str(model_dir), "--http_port", str(port)]

    def v2(rows):
        flat = [x for row in rows for x in row]
        return {"inputs": [{"name": "predict", "shape": [len(rows), 64], "datatype": "FP64", "data": flat}]}

    return [
        # One process per replica is also bereit's multi-core setting: more cores, more replicas.
        Server("bereit", "1", bereit + seed + queue, "/score", _v1, lambda r: r),
        Server("bereit inference-schema", "1", bereit + typed + queue, "/score", _v1, lambda r: r),
        Server("azureml-inference-server-http", "1", azml + ["--worker_count", "1"], "/score", _v1, lambda r: r),
        Server("azureml-inference-server-http", "2", azml + ["--worker_count", "2"], "/score", _v1, lambda r: r),
        Server(
            "MLServer (sklearn runtime)",
            "1",
            mls,
            "/v2/models/digits/infer",
            v2,
            lambda r: r["outputs"][0]["data"],
            {**mls_env, "MLSERVER_PARALLEL_WORKERS": "0"},
        ),
        Server(
            "MLServer (sklearn runtime)",
            "2",
            mls,
            "/v2/models/digits/infer",
            v2,
            lambda r: r["outputs"][0]["data"],
            {**mls_env, "MLSERVER_PARALLEL_WORKERS": "2"},
        ),
        Server("KServe ModelServer", "1", ks + ["--workers", "1"], "/v1/models/digits:predict", lambda rows: {"instances": rows}, lambda r: r["predictions"]),
        Server("KServe ModelServer", "2", ks + ["--workers", "2"], "/v1/models/digits:predict", lambda rows: {"instances": rows}, lambda r: r["predictions"]),
    ]


def _mlserver_folder(model_dir: Path) -> Path:
    folder = RAW / "mlserver-models"
    (folder / "digits").mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps({"debug": False, "metrics_endpoint": None}))
    (folder / "digits" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "digits",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(model_dir / "model.pkl")},
            }
        )
    )
    return folder


def _post(url: str, body: bytes, timeout: float = 5.0):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _group_cpu(pgid: int) -> float:
    """CPU seconds used so far by every process of the group (user + system). Per request, this
    is the server's cost on its core, and it holds up better than req/s on a busy machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def _group_rss(pgid: int) -> int:
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of /proc/pid/stat: the process group
                status = (stat.parent / "status").read_text()
                total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024
        except (OSError, AttributeError, IndexError):
            continue
    return total


_WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _wrk(url: str, lua: Path, connections: int, seconds: float) -> dict:
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    scale = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
    lat = {p: float(v) * scale[u] for p, v, u in _WRK_LATENCY.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "errors": errors,
        "raw": out,
    }


def write_lua(path: Path, body: bytes) -> Path:
    """A wrk script that POSTs ``body`` as JSON."""
    path.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(body.decode())}\n')
    return path


def wait_for_answer(proc: subprocess.Popen, url: str, body: bytes, what: str, timeout_s: float):
    """The server's first answer to ``body``, once it is up; RuntimeError if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _post(url, body)
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL if it is not gone in 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def measure(server: Server, port: int, holdout: dict, seconds: int) -> list[dict]:
    """One round for one server: start it, check its answers, one timed run per cell, stop it."""
    base = f"http://127.0.0.1:{port}"
    log = open(RAW / f"{re.sub(r'[^a-z0-9]+', '-', (server.name + '-' + server.workers).lower())}.log", "a")
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *server.cmd],
        env={**os.environ, **ONE_THREAD, **server.env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=server.cwd,
    )
    results = []
    try:
        bodies = {n: json.dumps(server.body(holdout["rows"][:n])).encode() for n in (1, 100)}
        wait_for_answer(proc, base + server.path, bodies[1], f"{server.name} (see {log.name})", 180)
        for n, body in bodies.items():
            got = server.answer(_post(base + server.path, body))
            if [int(x) for x in got] != holdout["predictions"][:n]:
                raise RuntimeError(f"{server.name}: wrong predictions for {n} rows: {got[:5]}…")
            lua = write_lua(RAW / f"body-{port}-{n}.lua", body)
            _wrk(base + server.path, lua, 32, 1)  # warm-up
            for connections in (1, 32):
                cpu_before = _group_cpu(proc.pid)
                run = _wrk(base + server.path, lua, connections, seconds)
                cpu = _group_cpu(proc.pid) - cpu_before
                results.append(
                    {
                        "server": server.name,
                        "workers": server.workers,
                        "rows": n,
                        "connections": connections,
                        "rps": run["rps"],
                        "p50_ms": run["p50_ms"],
                        "p99_ms": run["p99_ms"],
                        "errors": run["errors"],
                        "cpu_us_per_request": round(1e6 * cpu / (run["rps"] * seconds), 1),
                        "rss_mb": round(_group_rss(proc.pid) / 2**20, 1),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    finally:
        stop(proc)
        log.close()
    return results


def combine(rounds: list[dict]) -> list[dict]:
    """Per cell: the median round by req/s (its latencies with it), errors summed, the median
    CPU per request, the largest resident memory."""
    cells: dict[tuple, list[dict]] = {}
    for r in rounds:
        cells.setdefault((r["server"], r["workers"], r["rows"], r["connections"]), []).append(r)
    out = []
    for runs in cells.values():
        med = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
        out.append(
            {
                **med,
                "rps_rounds": [r["rps"] for r in runs],
                "errors": sum(r["errors"] for r in runs),
                "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in runs),
                "rss_mb": max(r["rss_mb"] for r in runs),
            }
        )
    return out


def table(results: list[dict], inproc: dict, load: str) -> str:
    lines = [
        f"Load average (1, 5, 15 min) before -> after the run: {load}",
        "",
        "In-process limit (run() in a loop on CPU 0): "
        + ", ".join(
            f"{k.replace('_', ' ')} rows {inproc[k]:.0f} calls/s ({inproc[k + '_cpu_us']:.0f} CPU µs/call)"
            for k in ("seed_1", "seed_100", "schema_1", "schema_100")
        ),
        "",
        "| server | workers | rows | conns | req/s | % of in-process | p50 ms | p99 ms | errors | RSS MB "
        "| CPU µs/req | req/s per core (CPU) | % of in-process (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        kind = "schema" if "inference-schema" in r["server"] else "seed"
        limit = inproc[f"{kind}_{r['rows']}"]
        limit_cpu = inproc[f"{kind}_{r['rows']}_cpu_us"]
        cpu = r["cpu_us_per_request"]
        lines.append(
            f"| {r['server']} | {r['workers']} | {r['rows']} | {r['connections']} | {r['rps']:.0f} | "
            f"{100 * r['rps'] / limit:.0f} % | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['errors']} | {r['rss_mb']} | {cpu:.0f} | {1e6 / cpu:.0f} | {100 * limit_cpu / cpu:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--only", help="comma-separated name prefixes, e.g. bereit,KServe")
    args = parser.parse_args()
    RAW.mkdir(parents=True, exist_ok=True)
    model_dir = bench_model.build()
    holdout = json.loads((model_dir / "holdout.json").read_text())
    load = Path("/proc/loadavg").read_text().split()[:3]
    inprocess_rounds, rounds, failures = [], [], []
    # Rounds go round-robin over the servers (not all rounds of one, then the next), so
    # background load that comes and goes falls on every server alike.
    for round_no in range(args.rounds):
        inprocess_rounds.append(
            json.loads(
                subprocess.run(
                    ["taskset", "-c", SERVER_CPU, sys.executable, str(HERE / "inprocess.py"), str(model_dir), "1", "3"],
                    env={**os.environ, **ONE_THREAD},
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
        )
        print(json.dumps({"round": round_no + 1, "inprocess": inprocess_rounds[-1]}), flush=True)
        for index in range(len(servers(model_dir, 0))):
            port = 9301 + index  # a port per server: no TIME_WAIT sockets of the one before
            server = servers(model_dir, port)[index]
            if args.only and not any(server.name.startswith(p) for p in args.only.split(",")):
                continue
            try:
                rounds += measure(server, port, holdout, args.seconds)
            except RuntimeError as exc:  # one server failing to start must not lose the run
                failures.append(f"round {round_no + 1}: {exc}")
                print(json.dumps({"failure": failures[-1]}), flush=True)
    inproc = {k: statistics.median(r[k] for r in inprocess_rounds) for k in inprocess_rounds[0]}
    results = combine(rounds)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    load = load + ["->"] + load_after
    (RAW / "results.json").write_text(json.dumps({"inprocess": inproc, "load": load, "results": results}, indent=1))
    text = table(results, inproc, " ".join(load))
    if failures:
        text += "\nNot measured: " + "; ".join(failures) + "\n"
    (HERE / "results" / "latest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
