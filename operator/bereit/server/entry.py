"""Load an entry script written for Azure Machine Learning (v1) — ``init()`` and ``run(data)`` —
and find out how its run() wants to be called.

Three modes, chosen from the script alone:

- ``text`` (the default, as in azmlinfsrv): ``run(body_as_str)``.
- ``typed``: run() carries ``inference-schema`` decorators; the server parses the JSON object
  and calls ``run(**fields)``, and the decorators turn each field into its type (numpy, pandas…).
- ``raw``: run() carries ``@rawhttp``; it receives an ``AMLRequest``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import itertools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import CodeType, ModuleType, TracebackType
from typing import Any

from bereit import constants as c

from . import compat, fastjson
from .compat.aml_request import RAWHTTP_ATTR
from .typed_inputs import NumpyArgument, numpy_arguments


class EntryScriptError(Exception):
    """The entry script cannot be used. ``where`` is ``file:line`` when known."""

    def __init__(self, message: str, where: str | None = None, details: str = ""):
        super().__init__(message)
        self.message = message
        self.where = where
        self.details = details  # a traceback, for the logs

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def _where(tb: TracebackType | None, script: Path) -> str | None:
    """``file:line`` of the deepest frame inside the entry script, else the deepest frame."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return None
    inside = [f for f in frames if Path(f.filename).resolve() == script]
    frame = (inside or frames)[-1]
    return f"{frame.filename}:{frame.lineno}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclasses.dataclass
class EntryScript:
    path: Path
    module: ModuleType
    run: Callable[..., Any]
    mode: str  # text | typed | raw
    input_params: tuple[str, ...] = ()
    required_params: tuple[str, ...] = ()
    accepts_any_param: bool = False
    input_schema: dict | None = None
    output_schema: dict | None = None
    numpy_arguments: dict[str, NumpyArgument] = dataclasses.field(default_factory=dict)
    _user_code: CodeType | None = None

    def init(self) -> None:
        """Call the script's init(); failures become an EntryScriptError with file and line."""
        try:
            self.module.init()
        except BaseException as exc:  # noqa: BLE001 - anything init() raises stops the server
            raise EntryScriptError(
                f"init() raised {_describe(exc)}", _where(exc.__traceback__, self.path), traceback.format_exc()
            ) from exc

    def typed_arguments(self, parsed: dict) -> dict:
        """run()'s keyword arguments from the parsed body (typed mode), numpy ones converted."""
        for name, argument in self.numpy_arguments.items():
            if name in parsed:
                parsed[name] = argument.convert(parsed[name])
        return parsed

    def raised_before_run(self, exc: BaseException) -> bool:
        """True when ``exc`` came from turning the request into run()'s arguments, not from run().

        In typed mode the decorators convert the input before run()'s own code starts; an error
        there is the client's (400), an error inside run() is the script's (500).
        """
        if self.mode != "typed" or self._user_code is None:
            return False
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is self._user_code:
                return False
            tb = tb.tb_next
        return True


def set_model_dir(model_dir: Path | None, environ: dict[str, str] | os._Environ = os.environ) -> Path | None:
    """Export the model folder as AZUREML_MODEL_DIR and BEREIT_MODEL_DIR and check it exists.

    Without ``model_dir`` the variables already in the environment (set by the operator) are
    kept; either way a folder that is named but missing is an error, before init() runs.
    """
    if model_dir is not None:
        environ[c.ENV_AZUREML_MODEL_DIR] = str(model_dir)
        environ[c.ENV_MODEL_DIR] = str(model_dir)
    named = environ.get(c.ENV_AZUREML_MODEL_DIR) or environ.get(c.ENV_MODEL_DIR)
    if not named:
        return None
    if not Path(named).is_dir():
        raise EntryScriptError(
            f"model folder {named} does not exist (--model-dir / {c.ENV_AZUREML_MODEL_DIR})"
        )
    environ.setdefault(c.ENV_AZUREML_MODEL_DIR, named)
    environ.setdefault(c.ENV_MODEL_DIR, named)
    return Path(named)


_serial = itertools.count(1)


def _import(path: Path) -> ModuleType:
    # Under its own name (as Azure ML does) unless taken; inference-schema keys its schemas by
    # module and function name, so a second script in one process needs a name of its own.
    name = path.stem
    if not name.isidentifier() or name in sys.modules:
        name = f"bereit_entry_{next(_serial)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntryScriptError(f"entry script {path} cannot be imported (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, so pickles of classes defined in the script can be loaded.
    sys.modules[name] = module
    # The script's folder is importable, as in Azure ML (helpers next to score.py).
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise EntryScriptError(
            f"syntax error: {exc.msg}", f"{exc.filename}:{exc.lineno}", traceback.format_exc()
        ) from exc
    except BaseException as exc:  # noqa: BLE001 - any import-time failure is the script's
        sys.modules.pop(name, None)
        raise EntryScriptError(
            f"importing the entry script raised {_describe(exc)}",
            _where(exc.__traceback__, path),
            traceback.format_exc(),
        ) from exc
    return module


def _is_rawhttp(run: Callable) -> bool:
    if getattr(run, RAWHTTP_ATTR, False):
        return True
    # The real azureml package marks a module-wide flag instead of the function.
    real = sys.modules.get("azureml.contrib.services.aml_request")
    return bool(real is not None and getattr(real, "_rawHttpRequested", False))


def _schemas(run: Callable) -> tuple[dict | None, dict | None]:
    """(input schema, output schema) from inference-schema, when the script used it."""
    if "inference_schema.schema_util" not in sys.modules:
        return None, None
    from inference_schema import schema_util

    if not schema_util.is_schema_decorated(run):
        return None, None
    recorded = schema_util.get_schemas_dict().get(schema_util._get_function_full_qual_name(run), {})
    return recorded.get("input_schema"), recorded.get("output_schema")


def load(path: Path, fast_json: bool = True) -> EntryScript:
    """Import the entry script and inspect run(); init() is not called here.

    With ``fast_json`` the script's own ``json.loads``/``json.load`` run on orjson wherever the
    result is the standard library's (``fastjson``).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise EntryScriptError(
            f"entry script {path} not found (--entry-script / {c.ENV_ENTRY_SCRIPT})"
        )
    compat.install()
    module = _import(path)
    if fast_json:
        fastjson.scope(module)
    for fn in ("init", "run"):
        if not callable(getattr(module, fn, None)):
            raise EntryScriptError(f"the entry script defines no {fn}() function", str(path))
    run = module.run
    user_fn = inspect.unwrap(run)
    user_code = getattr(user_fn, "__code__", None)
    raw = _is_rawhttp(run)
    input_schema, output_schema = _schemas(run)
    where = f"{path}:{user_code.co_firstlineno}" if user_code else str(path)
    params = inspect.signature(user_fn).parameters.values()

    if raw and input_schema:
        raise EntryScriptError("run() cannot be decorated with both @rawhttp and @input_schema", where)
    if input_schema:
        names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        required = tuple(
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
        )
        return EntryScript(
            path,
            module,
            run,
            "typed",
            input_params=names,
            required_params=required,
            accepts_any_param=any(p.kind is p.VAR_KEYWORD for p in params),
            input_schema=input_schema,
            output_schema=output_schema,
            numpy_arguments=numpy_arguments(run),
            _user_code=user_code,
        )
    try:
        inspect.signature(user_fn).bind(None)
    except TypeError:
        raise EntryScriptError(
            "run() must take one argument (the request body, or the request with @rawhttp)", where
        ) from None
    return EntryScript(path, module, run, "raw" if raw else "text", output_schema=output_schema, _user_code=user_code)
