"""The limit no server can beat: the entry script's run() called in a loop, no HTTP.

Prints one JSON object: calls per second (median of rounds) for the seed-style script with its
raw string, and for the inference-schema script with the parsed body (run(**json.loads(body))).

With ``--windows`` it stays up and measures on demand: each line ``KIND ROWS SECONDS`` on
stdin (e.g. ``seed 100 2``) is answered with one JSON line (bench/paired.py uses this to
alternate with a server, window by window).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def rate(fn, seconds: float) -> tuple[float, float]:
    """(calls per wall-clock second, CPU microseconds per call)."""
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / elapsed, 1e6 * (time.process_time() - cpu) / n


def calls(model_dir: str) -> dict:
    """(kind, rows) -> the call to time: the seed script with the raw body, the schema script
    with the parsed one."""
    os.environ["AZUREML_MODEL_DIR"] = model_dir
    import score
    import score_schema

    score.init()
    score_schema.init()
    rows = json.loads((Path(model_dir) / "holdout.json").read_text())["rows"]
    out = {}
    for n in (1, 100):
        body = json.dumps({"data": rows[:n]})
        out["seed", n] = lambda body=body: score.run(body)
        out["schema", n] = lambda body=body: score_schema.run(**json.loads(body))
    return out


def windows(model_dir: str) -> None:
    fns = calls(model_dir)
    for fn in fns.values():
        rate(fn, 0.5)  # warm
    for line in sys.stdin:
        kind, rows, seconds = line.split()
        calls_per_s, cpu_us = rate(fns[kind, int(rows)], float(seconds))
        print(json.dumps({"rate": calls_per_s, "cpu_us": cpu_us}), flush=True)


def main() -> None:
    if sys.argv[1] == "--windows":
        windows(sys.argv[2])
        return
    model_dir, rounds, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    out = {}
    for (name, n), fn in calls(model_dir).items():
        fn()
        measured = [rate(fn, seconds) for _ in range(rounds)]
        out[f"{name}_{n}"] = statistics.median(r for r, _ in measured)
        out[f"{name}_{n}_cpu_us"] = statistics.median(c for _, c in measured)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
