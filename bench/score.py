# A seed-style entry script (as in the Azure ML docs): the raw body in, JSON-serialisable out.
import json
import os
import pickle

import numpy as np


def init():
    global model
    # AZUREML_MODEL_DIR is the folder of the one deployed model (./azureml-models/digits/1).
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl"), "rb") as f:
        model = pickle.load(f)


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    return model.predict(data).tolist()
