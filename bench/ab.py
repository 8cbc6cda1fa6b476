"""A/B: bereit-server from two source trees, alternated, on the same cells as run.py.

This machine's speed drifts by 2-3x over minutes, so a change to the request path is only
judged against the code before it measured in the same minutes: the two trees take turns,
round after round, and the medians are compared.

    git worktree add /tmp/bereit-before HEAD
    python3 bench/ab.py /tmp/bereit-before . [--rounds 5] [--seconds 3] [--script score.py]

One tree with a setting off and on: ``python3 bench/ab.py . . --before-env BEREIT_FAST_JSON=off``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import model as bench_model  # noqa: E402
import run as bench_run  # noqa: E402


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="source tree of the baseline (its operator/ is put first on PYTHONPATH)")
    parser.add_argument("after", type=Path, help="source tree of the change")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--script", default="score.py", help="score.py (seed style) or score_schema.py")
    for side in ("before", "after"):
        parser.add_argument(
            f"--{side}-env", action="append", default=[], metavar="NAME=VALUE", help=f"an environment variable for {side}"
        )
    args = parser.parse_args()
    envs = {side: dict(item.split("=", 1) for item in getattr(args, f"{side}_env")) for side in ("before", "after")}

    bench_run.RAW.mkdir(parents=True, exist_ok=True)
    model_dir = bench_model.build()
    holdout = json.loads((model_dir / "holdout.json").read_text())
    port = 18931
    name = "bereit" if args.script == "score.py" else "bereit inference-schema"
    template = next(s for s in bench_run.servers(model_dir, port) if s.name == name)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    cells: dict[tuple[str, int, int], list[dict]] = {}
    for round_ in range(args.rounds):
        for label, tree in trees.items():
            server = dataclasses.replace(template, env={"PYTHONPATH": str(tree / "operator"), **envs[label]})
            for result in bench_run.measure(server, port, holdout, args.seconds):
                cells.setdefault((label, result["rows"], result["connections"]), []).append(result)
        print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr)

    print(f"| rows | conns | before req/s | after req/s | before CPU µs/req | after CPU µs/req |  ({args.rounds} rounds, medians)")
    print("|---|---|---|---|---|---|")
    for rows in (1, 100):
        for conns in (1, 32):
            before, after = cells[("before", rows, conns)], cells[("after", rows, conns)]
            print(
                f"| {rows} | {conns} | {median(before, 'rps'):.0f} | {median(after, 'rps'):.0f} "
                f"| {median(before, 'cpu_us_per_request'):.0f} | {median(after, 'cpu_us_per_request'):.0f} |"
            )
            print(
                f"  rounds: before {[round(r['rps']) for r in before]}, after {[round(r['rps']) for r in after]}; "
                f"CPU µs/req before {[round(r['cpu_us_per_request']) for r in before]}, "
                f"after {[round(r['cpu_us_per_request']) for r in after]}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
