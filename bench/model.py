"""Train the benchmark model: scikit-learn's bundled digits data, LogisticRegression.

No downloads: `load_digits` ships with scikit-learn. The model is written where
AZUREML_MODEL_DIR will point (``<models>/digits/1/model.pkl``), with the held-out rows and
their expected labels beside it, so every server's answers can be checked before timing.
"""

import argparse
import json
import os
import pickle
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

DEFAULT_ROOT = Path(os.environ.get("BEREIT_BENCH_DIR", Path.home() / ".cache/bereit/bench"))


def build(root: Path = DEFAULT_ROOT) -> Path:
    """Train once and return the model folder (``root/models/digits/1``)."""
    folder = root / "models" / "digits" / "1"
    if (folder / "model.pkl").exists() and (folder / "holdout.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=200, random_state=0)
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    with open(folder / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    holdout = {
        "rows": x_test.tolist(),
        "labels": y_test.tolist(),
        # What the model itself predicts is the reference; a server must return exactly this.
        "predictions": model.predict(x_test).tolist(),
    }
    (folder / "holdout.json").write_text(json.dumps(holdout))
    return folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    print(build(parser.parse_args().root))
