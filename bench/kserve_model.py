"""KServe's Python model server with the benchmark model, the way KServe documents custom models.

POST /v1/models/digits:predict  {"instances": [[64 numbers], ...]}  ->  {"predictions": [...]}
"""

import argparse
import os
import pickle

import kserve
import numpy as np


class Digits(kserve.Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.load()

    def load(self) -> bool:
        with open(os.path.join(self.model_dir, "model.pkl"), "rb") as f:
            self.model = pickle.load(f)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        return {"predictions": self.model.predict(np.array(payload["instances"])).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    kserve.ModelServer(http_port=args.http_port, workers=args.workers, enable_grpc=False).start(
        [Digits("digits", args.model_dir)]
    )
