"""bereit-server against the in-process limit, in alternating windows.

This machine's speed drifts (2x between minutes is common), so a server measured in one
minute and the in-process loop in another can differ by ±15 % for no reason of their own.
Here the server (CPU 0, wrk with 32 connections on CPU 1) and ``run()`` in a loop (CPU 0)
take turns, a few seconds each, the order flipping every pair; each pair gives one ratio,
and the median of the ratios is the figure. The same is done for the barest server that
can host run() on this stack (bench/stacks.py's httptools + uvloop protocol with a run
thread, its loop in SCHED_BATCH as bereit-server's, none of bereit's checks, limits,
metrics or logs): the floor of what HTTP costs here.

    python3 bench/paired.py [--pairs 12] [--seconds 2] [--rows 1,100]

The table goes to bench/results/paired.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import model as bench_model  # noqa: E402
import run as bench_run  # noqa: E402
import stacks  # noqa: E402

FLOOR = "httptools + uvloop, an asyncio protocol, no ASGI"


class InProcess:
    """run() in a loop on the server's core, one window at a time (bench/inprocess.py)."""

    def __init__(self, model_dir: Path):
        self.proc = subprocess.Popen(
            ["taskset", "-c", bench_run.SERVER_CPU, sys.executable, str(HERE / "inprocess.py"), "--windows", str(model_dir)],
            env={**os.environ, **bench_run.ONE_THREAD},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def window(self, rows: int, seconds: int) -> dict:
        self.proc.stdin.write(f"seed {rows} {seconds}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def start(name: str, model_dir: Path, port: int) -> subprocess.Popen:
    if name == "bereit":
        server = next(s for s in bench_run.servers(model_dir, port) if s.name == "bereit")
        cmd, cwd, env = server.cmd, None, {}
    else:  # the floor
        (bench_run.RAW / "stackapp.py").write_text(stacks.APP.format(bench=str(HERE)))
        cmd = [part.replace("9400", str(port)) for part in stacks.variants(9400)[FLOOR]]
        cwd = bench_run.RAW
        env = {"AZUREML_MODEL_DIR": str(model_dir), "PYTHONPATH": str(bench_run.RAW), "STACK_LOOP_BATCH": "1"}
    return subprocess.Popen(
        ["taskset", "-c", bench_run.SERVER_CPU, *cmd],
        cwd=cwd,
        env={**os.environ, **bench_run.ONE_THREAD, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def measure(name: str, rows: int, model_dir: Path, holdout: dict, inproc: InProcess, pairs: int, seconds: int, port: int) -> dict:
    url = f"http://127.0.0.1:{port}/score"
    body = json.dumps({"data": holdout["rows"][:rows]}).encode()
    proc = start(name, model_dir, port)
    try:
        got = bench_run.wait_for_answer(proc, url, body, name, 120)
        if [int(x) for x in got] != holdout["predictions"][:rows]:
            raise RuntimeError(f"{name}: wrong predictions for {rows} rows")
        lua = bench_run.write_lua(bench_run.RAW / f"paired-{rows}.lua", body)
        bench_run._wrk(url, lua, 32, 5)  # warm: the heap grows to its working size in the first seconds

        def server_window() -> tuple[dict, float]:
            cpu_before = bench_run._group_cpu(proc.pid)
            run = bench_run._wrk(url, lua, 32, seconds)
            if run["errors"]:
                raise RuntimeError(f"{name}: {run['errors']} errors")
            return run, 1e6 * (bench_run._group_cpu(proc.pid) - cpu_before) / (run["rps"] * seconds)

        ratios, cpu_ratios, server_rps, inproc_rate = [], [], [], []
        for i in range(pairs):
            if i % 2 == 0:  # the order flips every pair, so a drift falls on both sides alike
                (run, cpu_us), limit = server_window(), inproc.window(rows, seconds)
            else:
                limit = inproc.window(rows, seconds)
                run, cpu_us = server_window()
            ratios.append(run["rps"] / limit["rate"])
            cpu_ratios.append(limit["cpu_us"] / cpu_us)
            server_rps.append(run["rps"])
            inproc_rate.append(limit["rate"])
            print(json.dumps({"server": name, "rows": rows, "pair": i + 1, "rps": run["rps"], "inproc": round(limit["rate"], 1), "ratio": round(ratios[-1], 3)}), flush=True)
    finally:
        bench_run.stop(proc)
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "server": name,
        "rows": rows,
        "pairs": pairs,
        "ratio": statistics.median(ratios),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "cpu_ratio": statistics.median(cpu_ratios),
        "rps": statistics.median(server_rps),
        "inproc": statistics.median(inproc_rate),
        "ratios": [round(r, 3) for r in ratios],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--rows", default="1,100")
    args = parser.parse_args()
    bench_run.RAW.mkdir(parents=True, exist_ok=True)
    model_dir = bench_model.build()
    holdout = json.loads((model_dir / "holdout.json").read_text())
    load = Path("/proc/loadavg").read_text().split()[:3]
    inproc = InProcess(model_dir)
    results = []
    try:
        for rows in (int(n) for n in args.rows.split(",")):
            for index, name in enumerate(("bereit", "floor")):
                port = 9500 + 10 * index + rows % 10
                results.append(measure(name, rows, model_dir, holdout, inproc, args.pairs, args.seconds, port))
    finally:
        inproc.close()
    lines = [
        f"Load average before -> after: {' '.join(load)} -> {' '.join(Path('/proc/loadavg').read_text().split()[:3])}. "
        f"{args.pairs} pairs of {args.seconds}-second windows per line; seed-style score.py, 32 connections.",
        "",
        "| server | rows | req/s (median) | in-process calls/s (median) | % of in-process, median of pairs "
        "| quartiles | % of in-process by CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        label = "bereit-server" if r["server"] == "bereit" else f"floor: {FLOOR}, run() on a thread, SCHED_BATCH loop"
        lines.append(
            f"| {label} | {r['rows']} | {r['rps']:.0f} | {r['inproc']:.0f} | {100 * r['ratio']:.1f} % | "
            f"{100 * r['q1']:.1f}–{100 * r['q3']:.1f} % | {100 * r['cpu_ratio']:.1f} % |"
        )
    text = "\n".join(lines) + "\n\nPer-pair ratios:\n\n" + "\n".join(
        f"- {r['server']}, {r['rows']} rows: {r['ratios']}" for r in results
    ) + "\n"
    (HERE / "results" / "paired.md").write_text(text)
    (bench_run.RAW / "paired.json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
