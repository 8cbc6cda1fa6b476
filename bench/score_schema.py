# The same model with inference-schema decorators: the server parses the body and
# run() receives a numpy array.
import os
import pickle

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    global model
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl"), "rb") as f:
        model = pickle.load(f)


@input_schema("data", NumpyParameterType(np.zeros((1, 64), dtype=np.float64)))
@output_schema(NumpyParameterType(np.array([0])))
def run(data):
    return model.predict(data).tolist()
