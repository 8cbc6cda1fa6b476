"""Train Azure Machine Learning's image classifier (the MNIST tutorial with scikit-learn), offline.

The tutorial trains a LogisticRegression on MNIST (28×28 images) downloaded from Azure Open
Datasets. Here the same kind of model learns scikit-learn's bundled digits (8×8 images, the
same ten classes), so nothing is downloaded. As in the tutorial, intensities are scaled to 0..1
and the model is saved with joblib as sklearn_mnist_model.pkl, the file score.py loads.

    python examples/digits/train.py --version 1 --regularization 2     # accuracy 0.956
    python examples/digits/train.py --version 2 --regularization 0.5   # accuracy 0.964

writes (default --output examples/digits/build)
    model-v<N>/sklearn_mnist_model.pkl   the files of Model digits version N
    test-data.json                       held-out digits: {"data": [[64 numbers], ...], "labels": [...]}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

MODEL_FILE = "sklearn_mnist_model.pkl"
# The held-out split is the same for every version, so versions can be compared on it.
SPLIT_SEED = 42
TEST_SHARE = 0.2
# The digits' intensities run from 0 to 16 (MNIST's from 0 to 255).
MAX_INTENSITY = 16.0


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    images = digits.data / MAX_INTENSITY
    return train_test_split(images, digits.target, test_size=TEST_SHARE, random_state=SPLIT_SEED, stratify=digits.target)


def train(regularization: float) -> tuple[LogisticRegression, float, np.ndarray, np.ndarray]:
    x_train, x_test, y_train, y_test = load_split()
    # The tutorial's model: C is the inverse of the regularization rate.
    model = LogisticRegression(C=1.0 / regularization, max_iter=1000, random_state=SPLIT_SEED)
    model.fit(x_train, y_train)
    accuracy = float(np.average(model.predict(x_test) == y_test))
    return model, accuracy, x_test, y_test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", type=int, default=1, help="model version the files are for")
    parser.add_argument("--regularization", type=float, default=0.5, help="regularization rate (the tutorial's --regularization)")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "build")
    args = parser.parse_args(argv)

    model, accuracy, x_test, y_test = train(args.regularization)
    model_dir = args.output / f"model-v{args.version}"
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    test_data = {"data": x_test.tolist(), "labels": y_test.tolist()}
    (args.output / "test-data.json").write_text(json.dumps(test_data))
    print(f"model v{args.version}: {model_dir / MODEL_FILE}")
    print(f"held-out digits: {len(y_test)} in {args.output / 'test-data.json'}")
    print(f"accuracy on them: {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
