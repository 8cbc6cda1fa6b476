"""inferenceconfig.json → spec.inference: entry script, code folder, conda file, image, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bereit.cli.azureml.config import translate_inference_config
from bereit.cli.errors import BadInput
from bereit.cli.manifests import inline_code

from .conftest import SCORE_PY, write_json

SEED_CONDA = """name: inference_environment
dependencies:
- python=3.6.2
- tensorflow
- numpy
- scikit-learn
- pip:
    - azureml-defaults
    - keras
    - gensim
"""


def test_seed_000_inference_config(workdir: Path):
    """The seeds' own file: entryScript, runtime, condaFile."""
    (workdir / "myenv.yml").write_text(SEED_CONDA)
    ic = write_json(workdir / "inferenceConfig.json", {"entryScript": "score.py", "runtime": "python", "condaFile": "myenv.yml"})
    t = translate_inference_config(ic)
    assert t.spec == {
        "inference": {
            "entryScript": "score.py",
            "environment": {"pythonPackages": ["tensorflow", "numpy", "scikit-learn", "keras", "gensim"]},
        }
    }
    assert t.code.entry_script == "score.py" and t.code.folder is None
    assert inline_code(t.code, str(ic)) == {"score.py": SCORE_PY}
    assert any("azureml-defaults left out" in w for w in t.warnings)
    assert any("python=3.6.2" in w for w in t.warnings)


def test_source_directory_becomes_the_code(workdir: Path):
    """seed 001: source_directory with entry_script x/y/score.py inside it, conda_file env/myenv.yml."""
    source = workdir / "abc"
    (source / "x" / "y").mkdir(parents=True)
    (source / "x" / "y" / "score.py").write_text(SCORE_PY)
    (source / "x" / "y" / "helper.py").write_text("VALUE = 1\n")
    (source / "env").mkdir()
    (source / "env" / "myenv.yml").write_text("dependencies:\n- pip:\n  - scikit-learn==1.5.2\n")
    (source / "x" / "__pycache__").mkdir()
    (source / "x" / "__pycache__" / "junk.pyc").write_bytes(b"\x00\xff")
    ic = write_json(
        workdir / "ic.json",
        {"sourceDirectory": "abc", "runtime": "python", "entryScript": "x/y/score.py", "condaFile": "env/myenv.yml"},
    )
    t = translate_inference_config(ic)
    assert t.spec["inference"]["entryScript"] == "x/y/score.py"
    assert t.spec["inference"]["environment"]["pythonPackages"] == ["scikit-learn==1.5.2"]
    files = inline_code(t.code, str(ic))
    assert set(files) == {"x/y/score.py", "x/y/helper.py", "env/myenv.yml"}


def test_paths_resolve_from_the_config_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "score.py").write_text(SCORE_PY)
    ic = write_json(project / "ic.json", {"entryScript": "score.py"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    t = translate_inference_config(ic)
    assert t.code.script == project / "score.py"


def test_amlignore_is_honoured(workdir: Path):
    source = workdir / "src"
    source.mkdir()
    (source / "score.py").write_text(SCORE_PY)
    (source / "data").mkdir()
    (source / "data" / "big.bin").write_bytes(b"\x00" * 10)
    (source / ".amlignore").write_text("data/\n")
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "sourceDirectory": "src"})
    files = inline_code(translate_inference_config(ic).code, str(ic))
    assert set(files) == {"score.py", ".amlignore"}


def test_binary_file_in_code_fails_with_the_alternative(workdir: Path):
    source = workdir / "src"
    source.mkdir()
    (source / "score.py").write_text(SCORE_PY)
    (source / "weights.bin").write_bytes(b"\x89PNG\x00\xff\xfe")
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "sourceDirectory": "src"})
    t = translate_inference_config(ic)
    with pytest.raises(BadInput, match=r"weights.bin is not UTF-8 text.*\.amlignore.*bereit model register"):
        inline_code(t.code, str(ic))


def test_code_too_big_for_a_config_map_names_the_alternative(workdir: Path):
    source = workdir / "src"
    source.mkdir()
    (source / "score.py").write_text(SCORE_PY)
    (source / "vocabulary.txt").write_text("word\n" * 200_000)  # about 1 MB
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "sourceDirectory": "src"})
    t = translate_inference_config(ic)
    with pytest.raises(BadInput, match=r"more than the 900 KiB a ConfigMap can carry \(largest: vocabulary.txt.*bereit package"):
        inline_code(t.code, str(ic))


def test_environment_object(workdir: Path):
    """The Azure ML Environment definition that newer CLIs write into inferenceconfig.json."""
    ic = write_json(
        workdir / "ic.json",
        {
            "entryScript": "score.py",
            "environment": {
                "name": "my-deploy-env",
                "version": "1",
                "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE", "WORKERS": 2},
                "python": {
                    "userManagedDependencies": False,
                    "interpreterPath": "python",
                    "condaDependencies": {
                        "channels": ["conda-forge"],
                        "dependencies": ["python=3.8", {"pip": ["azureml-defaults", "lightgbm==4.5.0"]}],
                    },
                },
                "docker": {
                    "enabled": False,
                    "baseImage": "registry.example.com/team/serving:1.0",
                    "baseImageRegistry": {"address": "registry.example.com", "username": "u", "password": "p"},
                },
            },
        },
    )
    t = translate_inference_config(ic)
    environment = t.spec["inference"]["environment"]
    assert environment["env"] == [{"name": "EXAMPLE_ENV_VAR", "value": "EXAMPLE_VALUE"}, {"name": "WORKERS", "value": "2"}]
    assert environment["pythonPackages"] == ["lightgbm==4.5.0"]
    assert environment["image"] == "registry.example.com/team/serving:1.0"
    assert (t.registry.address, t.registry.username, t.registry.password) == ("registry.example.com", "u", "p")
    for key in ("environment.name", "environment.version", "environment.python.interpreterPath", "environment.docker.enabled"):
        assert any(f": {key} ignored:" in w for w in t.warnings), key
    assert any("must contain Python and the bereit package" in w for w in t.warnings)


def test_user_managed_dependencies_installs_nothing(workdir: Path):
    ic = write_json(
        workdir / "ic.json",
        {"entryScript": "score.py", "environment": {"python": {"userManagedDependencies": True, "condaDependencies": {"dependencies": ["numpy"]}}}},
    )
    t = translate_inference_config(ic)
    assert "environment" not in t.spec["inference"]
    assert any("userManagedDependencies is true" in w for w in t.warnings)


def test_base_image_and_registry_keys(workdir: Path):
    ic = write_json(
        workdir / "ic.json",
        {
            "entryScript": "score.py",
            "baseImage": "myregistry.azurecr.io/mycustomimage:1.0",
            "baseImageRegistry": {"address": "myregistry.azurecr.io", "username": "username", "password": "password"},
            "enableGpu": True,
            "description": "from the inference config",
            "schemaFile": "schema.json",
            "cudaVersion": "10.0",
            "extraDockerfileSteps": "steps.txt",
        },
    )
    t = translate_inference_config(ic)
    assert t.spec["inference"]["environment"]["image"] == "myregistry.azurecr.io/mycustomimage:1.0"
    assert t.registry.address == "myregistry.azurecr.io"
    assert t.spec["resources"] == {"gpu": 1}
    assert t.spec["description"] == "from the inference config"
    assert t.extra_dockerfile_steps == "steps.txt"
    assert any(": schemaFile ignored:" in w for w in t.warnings)
    assert any(": cudaVersion ignored:" in w for w in t.warnings)


def test_dependencies_are_added_to_the_code(workdir: Path):
    (workdir / "utils.py").write_text("X = 1\n")
    (workdir / "labels").mkdir()
    (workdir / "labels" / "names.txt").write_text("cat\ndog\n")
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "dependencies": ["utils.py", "labels"]})
    t = translate_inference_config(ic)
    assert set(inline_code(t.code, str(ic))) == {"score.py", "utils.py", "labels/names.txt"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"runtime": "python"}, "entryScript is missing"),
        ({"entryScript": "score.py", "runtime": "spark-py"}, "runtime 'spark-py' is not supported"),
        ({"entryScript": "nope.py"}, r"entryScript 'nope.py': no such file; looked for .*nope.py"),
        ({"entryScript": "score.py", "condaFile": "missing.yml"}, "condaFile 'missing.yml': no such file"),
        ({"entryScript": "score.py", "sourceDirectory": "nowhere"}, "sourceDirectory 'nowhere': no such folder"),
        ({"entryScript": "score.py", "sourceDirectory": "score.py"}, "is not a folder"),
        ({"entryScript": "score.py", "condaFile": "x.yml", "environment": {"name": "e"}}, "environment cannot be combined with condaFile"),
        ({"entryScript": "score.py", "baseImageRegistry": {"username": "u"}}, "needs both username and password"),
        ({"entryScript": "score.py", "baseImageRegistry": {"username": "u", "password": "p"}}, "address is missing"),
        ({"entryScript": "score.py", "environment": "myenv"}, "environment must be a mapping"),
        ({"entryScript": "score.py", "dependencies": "utils.py"}, "dependencies must be a list"),
        ({"entryScript": "README.md"}, None),
    ],
)
def test_bad_inference_configs(workdir: Path, config, message):
    (workdir / "README.md").write_text("# readme\n")
    ic = write_json(workdir / "ic.json", config)
    with pytest.raises(BadInput, match=message or "must be a Python file"):
        translate_inference_config(ic)


def test_bad_conda_file(workdir: Path):
    (workdir / "env.yml").write_text("dependencies: numpy\n")
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "condaFile": "env.yml"})
    with pytest.raises(BadInput, match="env.yml: dependencies must be a list"):
        translate_inference_config(ic)


def test_malformed_conda_file(workdir: Path):
    (workdir / "env.yml").write_text("dependencies:\n  - numpy\n - pandas\n")
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "condaFile": "env.yml"})
    with pytest.raises(BadInput, match=r"conda file .*env.yml is not valid YAML"):
        translate_inference_config(ic)


def test_invalid_pip_requirement(workdir: Path):
    (workdir / "env.yml").write_text("dependencies:\n- pip:\n  - 'numpy>>1'\n")
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "condaFile": "env.yml"})
    with pytest.raises(BadInput, match="pip requirement 'numpy>>1' is not valid"):
        translate_inference_config(ic)


def test_unknown_keys_are_named(workdir: Path):
    ic = write_json(workdir / "ic.json", {"entryScript": "score.py", "entryscript2": "x"})
    t = translate_inference_config(ic)
    assert any("entryscript2 ignored: not a setting bereit knows" in w for w in t.warnings)
