"""The limit no server can beat: the entry script's run() called in a loop, no HTTP.

Prints one JSON object: calls per second (median of rounds) for the seed-style script with its
raw string, and for the inference-schema script with the parsed body (run(**json.loads(body))).
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


def main() -> None:
    model_dir, rounds, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    os.environ["AZUREML_MODEL_DIR"] = model_dir
    import score
    import score_schema

    score.init()
    score_schema.init()
    rows = json.loads((Path(model_dir) / "holdout.json").read_text())["rows"]
    out = {}
    for n in (1, 100):
        body = json.dumps({"data": rows[:n]})
        for name, fn in (
            ("seed", lambda: score.run(body)),
            ("schema", lambda: score_schema.run(**json.loads(body))),
        ):
            fn()
            measured = [rate(fn, seconds) for _ in range(rounds)]
            out[f"{name}_{n}"] = statistics.median(r for r, _ in measured)
            out[f"{name}_{n}_cpu_us"] = statistics.median(c for _, c in measured)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
