"""Stand-ins for the few Azure ML modules a ``score.py`` written for Azure Machine Learning
(v1) imports for raw HTTP access.

``from azureml.contrib.services.aml_request import AMLRequest, rawhttp`` and
``from azureml.contrib.services.aml_response import AMLResponse`` work unchanged: when the real
modules are not installed, :func:`install` registers these under the same names. When they are
installed, the real ones are used and bereit still recognises their ``@rawhttp``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

from . import aml_request, aml_response

_PARENTS = ("azureml", "azureml.contrib", "azureml.contrib.services")


def _real_modules_available() -> bool:
    try:
        return importlib.util.find_spec("azureml.contrib.services.aml_request") is not None
    except (ImportError, ValueError):
        return False


def install() -> None:
    """Make the Azure ML import paths resolve, unless the real package provides them."""
    if _real_modules_available():
        return
    for name in _PARENTS:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            package = types.ModuleType(name)
            package.__path__ = []  # a package, so submodules can be registered under it
            sys.modules[name] = package
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, package)
    services = sys.modules["azureml.contrib.services"]
    for short, module in (("aml_request", aml_request), ("aml_response", aml_response)):
        sys.modules[f"azureml.contrib.services.{short}"] = module
        setattr(services, short, module)
