"""The server converts plain numeric numpy arguments itself, exactly as inference-schema would."""

from __future__ import annotations

import numpy as np
import pytest
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema

from bereit.server.typed_inputs import numpy_arguments


def _decorated(**types):
    def run(**kwargs):
        return kwargs

    for name, param_type in types.items():
        run = input_schema(name, param_type)(run)
    return run


def test_only_plain_numeric_numpy_parameters_are_taken_over():
    structured = np.zeros(2, dtype=[("a", "f8"), ("b", "i4")])
    run = _decorated(
        floats=NumpyParameterType(np.zeros((1, 3))),
        ints=NumpyParameterType(np.zeros((2,), dtype=np.int32), enforce_shape=False),
        rows=NumpyParameterType(structured),
        dates=NumpyParameterType(np.array(["2026-01-01"], dtype="datetime64[D]")),
        loose=NumpyParameterType(np.zeros((1, 3)), enforce_column_type=False),
        scale=StandardPythonParameterType(1.0),
    )
    found = numpy_arguments(run)
    assert sorted(found) == ["floats", "ints"]
    assert found["floats"].shape == (1, 3) and found["ints"].shape is None


def test_a_plain_function_has_none():
    assert numpy_arguments(lambda data: data) == {}


@pytest.mark.parametrize(
    "value",
    [[[1, 2, 3]], [[1.5, 2, 3], [4, 5, 6]], [[True, 0, 1]], [], [[1, 2]], [1, 2, 3], [[[1, 2, 3]]], [["a", 1, 2]]],
)
def test_the_same_array_or_the_same_error_as_the_decorator(value):
    param_type = NumpyParameterType(np.zeros((1, 3)))
    ours = numpy_arguments(_decorated(data=param_type))["data"]
    try:
        expected = param_type.deserialize_input(list(value))
    except ValueError as exc:
        with pytest.raises(ValueError) as ours_error:
            ours.convert(value)
        assert str(ours_error.value) == str(exc)
        return
    got = ours.convert(value)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_anything_but_a_list_is_left_to_the_decorator():
    ours = numpy_arguments(_decorated(data=NumpyParameterType(np.zeros((1, 3)))))["data"]
    assert ours.convert({"a": 1}) == {"a": 1} and ours.convert(None) is None
