"""Conda environment files as pip requirements."""

from __future__ import annotations

import pytest

from bereit.cli.azureml.conda import requirements_from_conda
from bereit.cli.errors import BadInput


@pytest.mark.parametrize(
    ("conda", "pip"),
    [
        ("numpy", "numpy"),
        ("numpy=1.26", "numpy==1.26.*"),
        ("numpy=1.26.4", "numpy==1.26.4"),
        ("numpy==1.26", "numpy==1.26"),
        ("numpy>=1.20", "numpy>=1.20"),
        ("numpy>=1.20,<2", "numpy<2,>=1.20"),
        ("numpy 1.26.*", "numpy==1.26.*"),
        ("numpy=1.26.4=py311_0", "numpy==1.26.4"),
        ("conda-forge::lightgbm", "lightgbm"),
        ("pytorch=2.1", "torch==2.1.*"),
        ("py-xgboost", "xgboost"),
    ],
)
def test_conda_specs_become_pip_requirements(conda: str, pip: str):
    assert requirements_from_conda({"dependencies": [conda]}, "env.yml").requirements == [pip]


def test_seed_001_dependencies():
    packages = requirements_from_conda(
        {
            "name": "project_environment",
            "dependencies": ["python=3.6.2", {"pip": ["azureml-defaults", "scikit-learn==0.20.0", "inference-schema[numpy-support]"]}],
        },
        "myenv.yml",
    )
    assert packages.requirements == ["scikit-learn==0.20.0", "inference-schema[numpy-support]"]


def test_everything_left_out_is_reported():
    packages = requirements_from_conda(
        {
            "channels": ["conda-forge", "defaults"],
            "prefix": "/opt/env",
            "variables": {"A": "1"},
            "dependencies": ["python", "pip", "mkl", "numpy=1.26=build1", {"conda": ["x"]}, {"pip": ["--index-url https://example.org", "azureml-inference-server-http"]}],
            "extra": 1,
        },
        "env.yml",
    )
    notes = "\n".join(packages.notes)
    for expected in (
        "channels conda-forge ignored",
        "prefix ignored",
        "variables A ignored",
        "python, pip ignored",
        "mkl ignored: conda-only",
        "build string 'build1'",
        "dependencies entry 'conda' ignored",
        "pip option '--index-url https://example.org' ignored",
        "azureml-inference-server-http left out",
        "ignored keys extra",
    ):
        assert expected in notes, expected
    assert packages.requirements == ["numpy==1.26.*"]


def test_duplicates_are_kept_once():
    packages = requirements_from_conda({"dependencies": ["numpy", {"pip": ["numpy"]}]}, "env.yml")
    assert packages.requirements == ["numpy"]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ("just text", "a conda environment file holds a mapping"),
        ({"dependencies": {"numpy": 1}}, "dependencies must be a list"),
        ({"dependencies": [{"pip": "numpy"}]}, "dependencies.pip must be a list"),
        ({"dependencies": ["num py!"]}, "has no pip equivalent|is not of the form"),
    ],
)
def test_bad_conda_files(environment, message):
    with pytest.raises(BadInput, match=message):
        requirements_from_conda(environment, "env.yml")
