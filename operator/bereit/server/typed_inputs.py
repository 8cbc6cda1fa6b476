"""Numpy arguments of an inference-schema run(), converted by the server in one step.

``NumpyParameterType.deserialize_input`` walks a JSON list item by item in Python before it
calls ``np.array``; for plain numeric dtypes that walk changes nothing and costs more than the
model (bench/README.md). The decorator passes an ndarray through
untouched, so for those parameters the server builds the array itself with the same dtype and
the same shape checks and messages; every other parameter type is left to the decorator.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class NumpyArgument:
    def __init__(self, dtype, shape: tuple[int, ...] | None):
        self.dtype = dtype
        self.shape = shape  # None when the decorator does not enforce it

    def convert(self, value: Any) -> Any:
        import numpy as np

        if not isinstance(value, list):
            return value  # the decorator gives its own answer to anything else
        array = np.array(value, dtype=self.dtype)
        expected = self.shape
        if expected is not None:
            if array.ndim != len(expected):
                raise ValueError(
                    f"Invalid input array: an array with {len(expected)} dimensions is expected; "
                    f"input has {array.ndim} [shape {array.shape}]"
                )
            for dim in range(1, len(expected)):
                if array.shape[dim] != expected[dim]:
                    raise ValueError(
                        f"Invalid input array: array has size {array.shape[dim]} on dimension #{dim}, "
                        f"while expected value is {expected[dim]}"
                    )
        return array


def numpy_arguments(run: Callable) -> dict[str, NumpyArgument]:
    """The parameters of a decorated run() that the server may convert itself, by name."""
    try:
        from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    except ImportError:
        return {}
    found: dict[str, NumpyArgument] = {}
    layer = run
    while layer is not None:
        wrapper = getattr(layer, "_self_wrapper", None)  # a wrapt FunctionWrapper's decorator
        if wrapper is not None:
            try:
                settings = inspect.getclosurevars(wrapper).nonlocals
            except (TypeError, ValueError):
                settings = {}
            param_type, name = settings.get("param_type"), settings.get("param_name")
            if (
                type(param_type) is NumpyParameterType
                and isinstance(name, str)
                and settings.get("convert_to_provided_type") is True
                and param_type.enforce_column_type
                and _plain_numeric(param_type.sample_input.dtype)
            ):
                shape = tuple(param_type.sample_input.shape) if param_type.enforce_shape else None
                found.setdefault(name, NumpyArgument(param_type.sample_input.dtype, shape))
        layer = getattr(layer, "__wrapped__", None)
    return found


def _plain_numeric(dtype) -> bool:
    # Structured, datetime and timedelta dtypes get per-item conversion in the decorator.
    return dtype.names is None and dtype.kind in "biuf"
