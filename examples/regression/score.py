#example: scikit-learn and Swagger
# Azure Machine Learning's entry script (how-to-deploy-and-where) with two changes so it runs outside Azure:
# joblib is imported directly (sklearn.externals.joblib is gone since scikit-learn 0.23), and the
# model path comes from AZUREML_MODEL_DIR instead of the azureml SDK's Model.get_model_path.
# The input sample holds floats: inference-schema converts every request to the sample's dtype,
# and Azure Machine Learning's integer sample would cut the diabetes features (about ±0.1) down to 0.
import json
import os
import numpy as np
import joblib
from sklearn.linear_model import Ridge

from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType

def init():
    global model
    # note here "sklearn_regression_model.pkl" is the name of the model registered under
    # this is a different behavior than before when the code is run locally, even though the code is the same.
    model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'sklearn_regression_model.pkl')
    # deserialize the model file back into a sklearn model
    model = joblib.load(model_path)

input_sample = np.array([[10.0,9.0,8.0,7.0,6.0,5.0,4.0,3.0,2.0,1.0]])
output_sample = np.array([3726.995])

@input_schema('data', NumpyParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    try:
        result = model.predict(data)
        # you can return any datatype as long as it is JSON-serializable
        return result.tolist()
    except Exception as e:
        error = str(e)
        return error
