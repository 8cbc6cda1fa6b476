"""A conda environment file (Azure Machine Learning's myenv.yml) as pip requirements for environment.pythonPackages.

bereit's runtime installs extra packages with pip, so the pip section is taken as is and conda
packages are converted to the pip requirement of the same name, each conversion reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from bereit.cli.errors import BadInput

# Provided by the runtime image itself: asking pip for them would be wrong or pointless.
PROVIDED = {"python", "pip", "setuptools", "wheel"}
# bereit-server takes the place of the Azure ML serving stack.
REPLACED_BY_BEREIT = {"azureml-defaults", "azureml-inference-server-http"}
# Conda package names whose pip name differs.
PIP_NAMES = {
    "pytorch": "torch",
    "py-xgboost": "xgboost",
    "matplotlib-base": "matplotlib",
    "pytorch-cpu": "torch",
    "tensorflow-base": "tensorflow",
}
# Conda-only helpers with no pip counterpart.
CONDA_ONLY = {"mkl", "nomkl", "blas", "libblas", "cudatoolkit", "cudnn", "openblas", "mkl-service"}
NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$")


@dataclass
class Packages:
    requirements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def requirements_from_conda(environment: Any, source: str) -> Packages:
    """pip requirements from a parsed conda environment file; BadInput when it is not one."""
    if not isinstance(environment, dict):
        raise BadInput(f"{source}: a conda environment file holds a mapping with 'dependencies'")
    result = Packages()
    unknown = sorted(set(environment) - {"name", "channels", "dependencies", "prefix", "variables"})
    if unknown:
        result.notes.append(f"{source}: ignored keys {', '.join(unknown)} (not part of a conda environment file)")
    if environment.get("prefix"):
        result.notes.append(f"{source}: prefix ignored: the runtime image decides where packages go")
    channels = [str(c) for c in environment.get("channels") or [] if str(c) != "defaults"]
    if channels:
        result.notes.append(f"{source}: channels {', '.join(channels)} ignored: packages come from PyPI")
    variables = environment.get("variables")
    if variables:
        result.notes.append(
            f"{source}: variables {', '.join(map(str, variables))} ignored: set them as environment "
            "variables of the service instead"
        )
    dependencies = environment.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise BadInput(f"{source}: dependencies must be a list, not {type(dependencies).__name__}")
    provided: list[str] = []
    converted: list[str] = []
    for item in dependencies:
        if isinstance(item, dict):
            for key, value in item.items():
                if key != "pip":
                    result.notes.append(f"{source}: dependencies entry {key!r} ignored: only 'pip' lists are understood")
                    continue
                if not isinstance(value, list):
                    raise BadInput(f"{source}: dependencies.pip must be a list of requirements")
                for requirement in value:
                    _add_pip(str(requirement).strip(), source, result)
            continue
        text = str(item).strip()
        if not text:
            continue
        requirement, notes = _conda_to_pip(text, source)
        result.notes.extend(notes)
        if requirement is None:
            if not notes:
                provided.append(text)
            continue
        converted.append(requirement)
        _append(result, requirement)
    if provided:
        result.notes.append(f"{source}: {', '.join(provided)} ignored: the runtime image provides Python and pip")
    if converted:
        result.notes.append(
            f"{source}: conda packages installed with pip as {', '.join(converted)} "
            "(check that PyPI has them under these names)"
        )
    return result


def _add_pip(requirement: str, source: str, result: Packages) -> None:
    if not requirement:
        return
    if requirement.startswith("-"):
        result.notes.append(
            f"{source}: pip option {requirement!r} ignored: only requirements such as 'pandas>=2' are "
            "installed (build an image with `bereit package` for other sources)"
        )
        return
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as error:
        raise BadInput(f"{source}: pip requirement {requirement!r} is not valid: {error}") from None
    if parsed.name.lower() in REPLACED_BY_BEREIT:
        result.notes.append(
            f"{source}: {parsed.name} left out: bereit-server serves the entry script instead "
            "(add azureml-core yourself if score.py imports azureml.core)"
        )
        return
    _append(result, str(parsed))


def _append(result: Packages, requirement: str) -> None:
    if requirement not in result.requirements:
        result.requirements.append(requirement)


def _conda_to_pip(spec: str, source: str) -> tuple[str | None, list[str]]:
    """The pip requirement for a conda spec (name, name=1.2, name==1.2.3, name>=1,<2, name 1.2.*,
    name=1.2=build, channel::name), or None with the reason it is left out."""
    channel, _, rest_of_spec = spec.rpartition("::")
    match = NAME.match(rest_of_spec)
    if not match:
        raise BadInput(f"{source}: conda dependency {spec!r} is not of the form name, name=version or name>=version")
    name, rest = match.group("name").lower(), match.group("rest").strip()
    notes: list[str] = []
    if channel:
        notes.append(f"{source}: channel {channel!r} of {spec} ignored: packages come from PyPI")
    if name in PROVIDED:
        return None, []
    if name in CONDA_ONLY:
        return None, [f"{source}: {spec} ignored: conda-only package with no pip counterpart"]
    pip_name = PIP_NAMES.get(name, name)
    if not rest:
        requirement = pip_name
    elif rest[0] in "<>!~" or (rest.startswith("==") and "," in rest):
        requirement = pip_name + rest.replace(" ", "")
    else:
        exact = rest.startswith("==")
        version, _, build = re.sub(r"^=+", "", rest).replace(" ", "=").partition("=")
        build = build.strip("=")
        if build:
            notes.append(f"{source}: build string {build!r} of {spec} ignored")
        # conda's name=1.2 means any 1.2.x; a full version (or ==) means that version.
        if exact or "*" in version or version.count(".") >= 2:
            requirement = f"{pip_name}=={version}"
        else:
            requirement = f"{pip_name}=={version}.*"
    try:
        return str(Requirement(requirement)), notes
    except InvalidRequirement as error:
        raise BadInput(f"{source}: conda dependency {spec!r} has no pip equivalent ({error})") from None
