"""The seed-style script's run() in a loop, no HTTP, with its ``json`` the standard library's and
then bereit-server's (``--fast-json``, the default), alternated window by window.

    taskset -c 0 python3 bench/script_json.py [--rows 100] [--pairs 15] [--seconds 1]

Prints, per side, the median (min–max) of calls per second and CPU µs per call, and how many
pairs the fast side won; see bench/README.md, "The script's own JSON".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import inprocess
import model as bench_model

from bereit.server import fastjson


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()

    model_dir = bench_model.build()
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    import score

    score.init()
    rows = json.loads((model_dir / "holdout.json").read_text())["rows"]
    body = json.dumps({"data": rows[: args.rows]})
    fastjson.scope(score)
    sides = {"stdlib": json, "fast": score.json}
    for module in sides.values():
        score.json = module
        inprocess.rate(lambda: score.run(body), 0.5)  # warm
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for pair in range(args.pairs):
        order = list(sides) if pair % 2 == 0 else list(reversed(sides))
        for name in order:
            score.json = sides[name]
            got[name].append(inprocess.rate(lambda: score.run(body), args.seconds))
    for name, results in got.items():
        rates, cpus = [r for r, _ in results], [c for _, c in results]
        print(
            f"{name}: {statistics.median(rates):.0f} calls/s ({min(rates):.0f}–{max(rates):.0f}), "
            f"{statistics.median(cpus):.0f} CPU µs/call ({min(cpus):.0f}–{max(cpus):.0f})"
        )
    wins = sum(f[1] < s[1] for f, s in zip(got["fast"], got["stdlib"]))
    print(f"fast used less CPU per call in {wins} of {args.pairs} pairs ({len(body)} bytes, {args.rows} rows)")


if __name__ == "__main__":
    main()
