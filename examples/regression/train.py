"""Train Azure Machine Learning's regression model (Ridge, sklearn_regression_model.pkl), offline.

Azure Machine Learning's swagger example serves a scikit-learn Ridge regression that takes rows of ten
numbers. scikit-learn's bundled diabetes data has ten features per patient, so the model
learns from it here: nothing is downloaded.

    python examples/regression/train.py

writes (default --output examples/regression/build)
    model/sklearn_regression_model.pkl   the files of Model diabetes version 1
    test-data.json                       held-out rows: {"data": [[10 numbers], ...], "targets": [...]}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

MODEL_FILE = "sklearn_regression_model.pkl"
SPLIT_SEED = 42


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, default=0.1, help="Ridge regularization strength")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "build")
    args = parser.parse_args(argv)

    features, targets = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(features, targets, test_size=0.2, random_state=SPLIT_SEED)
    model = Ridge(alpha=args.alpha).fit(x_train, y_train)
    model_dir = args.output / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    (args.output / "test-data.json").write_text(json.dumps({"data": x_test.tolist(), "targets": y_test.tolist()}))
    print(f"model: {model_dir / MODEL_FILE}")
    print(f"R² on {len(y_test)} held-out rows: {r2_score(y_test, model.predict(x_test)):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
