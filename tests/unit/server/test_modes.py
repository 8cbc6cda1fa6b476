"""inference-schema scripts (typed arguments, swagger) and @rawhttp scripts (the whole request)."""

from __future__ import annotations

import pytest

from .conftest import client, started_app

pytestmark = pytest.mark.anyio

TYPED = """
import os, pickle
import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    global model
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl"), "rb") as f:
        model = pickle.load(f)

@input_schema("data", NumpyParameterType(np.zeros((1, 64))))
@input_schema("scale", StandardPythonParameterType(1.0), optional=True)
@output_schema(NumpyParameterType(np.array([0])))
def run(data, scale=1.0):
    assert isinstance(data, np.ndarray)
    if scale < 0:
        raise ValueError("negative scale")
    return model.predict(data * scale).tolist()
"""

RAW = """
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

@rawhttp
def run(request):
    if request.method == "GET":
        return AMLResponse("only POST here: " + request.args.get("q", ""), 400)
    if request.headers.get("x-want") == "bytes":
        return AMLResponse(request.get_data()[::-1], 201, {"Content-Type": "image/png", "X-Extra": "1"})
    if request.headers.get("x-want") == "split":
        return AMLResponse("x", 200, {"X-Note": "a\\r\\nSet-Cookie: stolen=1"})
    return {"len": len(request.get_data()), "type": request.mimetype, "path": request.full_path}
"""


async def test_typed_script_gets_numpy_and_predicts(tmp_path, digits_model):
    folder, rows, expected = digits_model
    app = started_app(tmp_path, TYPED, model_dir=folder)
    assert app.entry.mode == "typed"
    async with client(app) as http:
        response = await http.post("/score", json={"data": rows})
        scaled = await http.post("/score", json={"data": rows, "scale": 1.0})
    assert response.status_code == 200 and response.json() == expected
    assert scaled.json() == expected


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"data": [[1, 2, 3]]}, "schema"),
        ({"data": "text"}, "schema"),
        ({"rows": [[0] * 64]}, "unknown field(s) 'rows'"),
        ({}, "missing field(s) 'data'"),
        ([[0] * 64], "JSON object"),
    ],
    ids=["wrong-shape", "wrong-type", "unknown-field", "missing-field", "not-an-object"],
)
async def test_typed_script_refuses_bad_input_with_400(tmp_path, digits_model, body, fragment):
    folder, _, _ = digits_model
    app = started_app(tmp_path, TYPED, model_dir=folder)
    async with client(app) as http:
        response = await http.post("/score", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


async def test_typed_script_error_inside_run_is_still_500(tmp_path, digits_model):
    folder, rows, _ = digits_model
    app = started_app(tmp_path, TYPED, model_dir=folder)
    async with client(app) as http:
        response = await http.post("/score", json={"data": rows, "scale": -1.0})
    assert response.status_code == 500 and "negative scale" in response.json()["error"]


async def test_swagger_comes_from_the_decorators_in_both_versions(tmp_path, digits_model):
    folder, _, _ = digits_model
    app = started_app(tmp_path, TYPED, model_dir=folder, auth_mode="key", keys_dir=tmp_path)
    async with client(app) as http:
        v2 = (await http.get("/swagger.json")).json()
        v3 = (await http.get("/swagger.json?version=3")).json()
        missing = await http.get("/swagger.json?version=7")
    assert v2["swagger"] == "2.0"
    body2 = v2["paths"]["/score"]["post"]["parameters"][0]["schema"]
    assert body2["properties"]["data"]["type"] == "array"
    assert body2["properties"]["data"]["items"]["items"]["type"] == "number"
    assert v2["securityDefinitions"]["Bearer"]["in"] == "header"
    assert v3["openapi"].startswith("3.")
    body3 = v3["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "data" in body3["properties"] and "scale" in body3["properties"]
    assert v3["paths"]["/score"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert missing.status_code == 404


async def test_rawhttp_script_gets_the_request_and_shapes_the_response(tmp_path):
    app = started_app(tmp_path, RAW)
    assert app.entry.mode == "raw"
    async with client(app) as http:
        json_answer = await http.post("/score?x=1", content=b"\x00\x01\x02", headers={"content-type": "application/octet-stream"})
        raw_answer = await http.post("/score", content=b"abc", headers={"x-want": "bytes", "content-type": "image/png"})
        get_answer = await http.get("/score?q=hi")
    assert json_answer.status_code == 200
    assert json_answer.json() == {"len": 3, "type": "application/octet-stream", "path": "/score?x=1"}
    assert raw_answer.status_code == 201 and raw_answer.content == b"cba"
    assert raw_answer.headers["content-type"] == "image/png" and raw_answer.headers["x-extra"] == "1"
    assert get_answer.status_code == 400 and get_answer.text == "only POST here: hi"


async def test_a_response_header_with_a_line_break_is_a_500_not_a_split_response(tmp_path):
    app = started_app(tmp_path, RAW)
    async with client(app) as http:
        answer = await http.post("/score", content=b"abc", headers={"x-want": "split"})
    assert answer.status_code == 500 and "set-cookie" not in answer.headers
    assert "'x-note' has a control character" in answer.json()["error"]


async def test_rawhttp_and_input_schema_together_is_refused(tmp_path):
    from bereit.server.entry import EntryScriptError

    source = RAW.replace("@rawhttp", "@rawhttp\n@input_schema('d', StandardPythonParameterType(1))").replace(
        "def init", "from inference_schema.schema_decorators import input_schema\nfrom inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType\ndef init"
    )
    with pytest.raises(EntryScriptError, match="both @rawhttp and @input_schema"):
        started_app(tmp_path, source, script_name="score_both.py")
