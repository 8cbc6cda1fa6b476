"""The examples stay valid: against the API models, the generated CRD schemas, each other, the seeds.

And they work: each train.py trains, each score.py scores the held-out data it wrote, locally
(the way the seeds' local deployment runs a score.py), with no cluster.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from bereit.api import ComputeTarget, InferenceService, Model, describe_validation_error
from bereit.constants import GROUP
from pydantic import ValidationError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SEEDS = REPO.parent / "shared" / "seeds"
MODELS = {"Model": Model, "InferenceService": InferenceService, "ComputeTarget": ComputeTarget}


def example_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "build" in path.relative_to(EXAMPLES).parts:
            continue
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document:
                documents.append((f"{path.relative_to(EXAMPLES)}#{index}", document))
    return documents


DOCUMENTS = example_documents()


def of_kind(kind: str) -> list[dict]:
    return [document for _, document in DOCUMENTS if document["kind"] == kind]


def test_the_examples_cover_every_kind_and_both_purposes():
    assert {document["kind"] for _, document in DOCUMENTS} == set(MODELS)
    assert {target["spec"]["purpose"] for target in of_kind("ComputeTarget")} == {"DevTest", "FastProd"}


@pytest.mark.parametrize(("where", "document"), DOCUMENTS, ids=[where for where, _ in DOCUMENTS])
def test_example_is_valid_for_the_api_models(where, document):
    try:
        MODELS[document["kind"]].model_validate(document)
    except ValidationError as error:
        pytest.fail(f"{where}: {describe_validation_error(error)}")


def crd_schema(kind: str) -> dict:
    for path in (REPO / "crds").glob(f"{GROUP}_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = crd["spec"]["versions"]
            return version["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD for {kind} in crds/")


@pytest.mark.parametrize(("where", "document"), DOCUMENTS, ids=[where for where, _ in DOCUMENTS])
def test_example_is_valid_for_the_generated_crd_schema(where, document):
    # What the API server checks (CEL rules aside, which the models above mirror).
    errors = sorted(jsonschema.Draft7Validator(crd_schema(document["kind"])).iter_errors(document), key=str)
    assert not errors, f"{where}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def kustomizations() -> dict[Path, dict]:
    return {path.parent: yaml.safe_load(path.read_text()) for path in EXAMPLES.rglob("kustomization.yaml")}


def test_each_service_finds_its_compute_target_models_and_code():
    targets = {target["metadata"]["name"] for target in of_kind("ComputeTarget")}
    versions = {(m["spec"]["modelName"], m["spec"]["version"]) for m in of_kind("Model")}
    generated = {
        generator["name"]: folder / generator["files"][0]
        for folder, kustomization in kustomizations().items()
        for generator in kustomization.get("configMapGenerator", [])
    }
    for service in of_kind("InferenceService"):
        spec = service["spec"]
        assert spec["computeTarget"] in targets
        for reference in spec["models"]:
            assert (reference["name"], reference["version"]) in versions
        code = generated[spec["inference"]["code"]["configMap"]["name"]]
        assert code.name == spec["inference"]["entryScript"] and code.is_file()


def test_every_kustomization_lists_files_that_exist():
    for folder, kustomization in kustomizations().items():
        for resource in kustomization["resources"]:
            assert (folder / resource).is_file(), folder / resource
        assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True


def test_the_update_example_has_two_versions_of_one_model_and_serves_the_first():
    digits = sorted((m for m in of_kind("Model") if m["spec"]["modelName"] == "digits"), key=lambda m: m["spec"]["version"])
    assert [m["spec"]["version"] for m in digits] == [1, 2]
    assert digits[0]["spec"]["source"]["uri"] != digits[1]["spec"]["source"]["uri"]
    (service,) = [s for s in of_kind("InferenceService") if s["metadata"]["name"] == "digits"]
    assert service["spec"]["models"] == [{"name": "digits", "version": 1}]


def seed_code_block(seed_glob: str, marker: str) -> str:
    """The first ```python block of a seed that contains the marker."""
    (seed,) = SEEDS.glob(seed_glob)
    for block in re.findall(r"```python\n(.*?)```", seed.read_text(), flags=re.S):
        if marker in block:
            return block
    raise AssertionError(f"no block with {marker!r} in {seed.name}")


def code_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line.startswith("%%")]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seeds (../shared/seeds) are not beside this checkout")
def test_digits_score_py_is_the_seeds_tutorial_script_unchanged():
    seed = seed_code_block("002_*.txt", "%%writefile score.py")
    assert code_lines((EXAMPLES / "digits" / "score.py").read_text()) == code_lines(seed)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seeds (../shared/seeds) are not beside this checkout")
def test_regression_score_py_keeps_the_seeds_decorated_run():
    seed = seed_code_block("001_*.txt", "@input_schema('data', NumpyParameterType(input_sample))")
    ours = (EXAMPLES / "regression" / "score.py").read_text()
    decorated = seed[seed.index("@input_schema") :]
    assert code_lines(decorated) == code_lines(ours[ours.index("@input_schema") :])


def load_score(path: Path, model_dir: Path, monkeypatch):
    """Import a score.py the way bereit-server does: AZUREML_MODEL_DIR set, init() once."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    spec = importlib.util.spec_from_file_location(f"score_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


def train(script: Path, output: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(script), "--output", str(output), *args],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_digits_trains_two_versions_and_scores_held_out_digits_above_90_percent(tmp_path, monkeypatch):
    train(EXAMPLES / "digits" / "train.py", tmp_path, "--version", "1", "--regularization", "2")
    train(EXAMPLES / "digits" / "train.py", tmp_path, "--version", "2", "--regularization", "0.5")
    test_data = json.loads((tmp_path / "test-data.json").read_text())
    labels = test_data["labels"]
    assert len(labels) >= 300 and len(test_data["data"][0]) == 64
    request = json.dumps({"data": test_data["data"]})
    predictions = {}
    for version in (1, 2):
        score = load_score(EXAMPLES / "digits" / "score.py", tmp_path / f"model-v{version}", monkeypatch)
        predictions[version] = score.run(request)
        accuracy = sum(p == t for p, t in zip(predictions[version], labels)) / len(labels)
        assert accuracy >= 0.9, f"version {version}: accuracy {accuracy:.3f}"
    assert predictions[1] != predictions[2], "the two versions should be distinguishable"


def test_regression_scores_rows_and_refuses_a_wrong_shape(tmp_path, monkeypatch):
    train(EXAMPLES / "regression" / "train.py", tmp_path)
    test_data = json.loads((tmp_path / "test-data.json").read_text())
    score = load_score(EXAMPLES / "regression" / "score.py", tmp_path / "model", monkeypatch)
    rows = test_data["data"][:20]
    predictions = score.run(rows)
    assert len(predictions) == 20 and len(set(predictions)) == 20
    mean_target = sum(test_data["targets"]) / len(test_data["targets"])
    assert 0.5 * mean_target < sum(predictions) / 20 < 1.5 * mean_target
    with pytest.raises(ValueError, match="expected value is 10"):
        score.run([[1.0, 2.0, 3.0]])
