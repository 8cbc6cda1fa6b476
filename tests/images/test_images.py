"""The images, built for real and run the way a restricted pod runs them.

Each container runs as a non-root user with a read-only root filesystem, no capabilities and
a tmpfs at /tmp, like the pods the chart and the renderers make.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import docker.errors
import pytest
from bereit.cli.images import builder as images
from bereit.constants import (
    CODE_DIR,
    ENV_AUTH_MODE,
    ENV_AZUREML_MODEL_DIR,
    ENV_ENTRY_SCRIPT,
    ENV_KEYS_DIR,
    KEYS_DIR,
    MODELS_DIR,
    PRIMARY_KEY,
    READINESS_PATH,
    RUNTIME_UID,
    SCORE_PATH,
    SECONDARY_KEY,
    SERVER_PORT,
)

RESTRICTED = {
    "read_only": True,
    "tmpfs": {"/tmp": "rw,size=256m"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "network_disabled": True,
}


def run(client, image: str, command: list[str], user: str | None = None, **options) -> str:
    """Run to completion in the restricted setting; the output, or a failure that shows it."""
    container = client.containers.run(image, command, user=user, detach=True, **(RESTRICTED | options))
    try:
        status = container.wait(timeout=300)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, output
    return output


def image_config(client, tag: str) -> dict:
    return client.images.get(tag).attrs


@pytest.mark.parametrize("flavor", images.FLAVORS)
def test_image_runs_as_a_numeric_non_root_user(client, flavor, runtime_image, operator_image):
    built = runtime_image if flavor == "runtime" else operator_image
    config = image_config(client, built.tag)["Config"]
    assert config["User"] == f"{RUNTIME_UID}:{RUNTIME_UID}"
    assert run(client, built.tag, ["id", "-u"]).strip() == str(RUNTIME_UID)


@pytest.mark.parametrize("flavor", images.FLAVORS)
def test_no_certificate_wheel_or_pip_setting_is_left_in_the_image(client, flavor, runtime_image, operator_image):
    built = runtime_image if flavor == "runtime" else operator_image
    env = image_config(client, built.tag)["Config"]["Env"]
    assert not [item for item in env if item.startswith(("PIP_CERT", "PIP_INDEX", "PIP_FIND_LINKS"))]
    # As root and without the tmpfs, to see every file the image itself holds.
    leftovers = run(
        client, built.tag,
        ["sh", "-c", "find / -xdev -name 'pip-cert*'; find /opt/bereit /opt/bereit-app /tmp -name '*.whl'; ls -A /tmp"],
        user="0", tmpfs={}, cap_drop=[],
    )
    assert leftovers.strip() == ""


def test_runtime_has_what_a_seed_score_py_imports(client, runtime_image):
    output = run(
        client, runtime_image.tag,
        ["python", "-c", "import numpy, sklearn, joblib, pandas, inference_schema, bereit, bereit.server.packages; "
                         "print(bereit.__version__, sklearn.__version__)"],
    )
    assert output.split()[0] == images.__version__
    assert run(client, runtime_image.tag, ["sh", "-c", "command -v bereit-server"]).strip() == (
        "/opt/bereit-app/bin/bereit-server"
    )


def test_runtime_trains_and_scores_the_digits_example(client, runtime_image):
    """The tutorial's score.py, run by the image's own libraries (test suites pruned or not)."""
    examples = images.REPO / "examples" / "digits"
    script = (
        "import json, os, runpy; "
        "runpy.run_path('/examples/train.py')['main'](['--output', '/tmp/out']); "
        "os.environ['AZUREML_MODEL_DIR'] = '/tmp/out/model-v1'; "
        "score = runpy.run_path('/examples/score.py'); score['init'](); "
        "test = json.load(open('/tmp/out/test-data.json')); "
        "y_hat = score['run'](json.dumps({'data': test['data']})); "
        "print('served accuracy', sum(p == t for p, t in zip(y_hat, test['labels'])) / len(y_hat))"
    )
    output = run(
        client, runtime_image.tag, ["python", "-c", script],
        volumes={str(examples): {"bind": "/examples", "mode": "ro"}},
    )
    assert float(output.split("served accuracy")[-1]) >= 0.9


def http(url: str, body: bytes | None = None, key: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_runtime_serves_the_digits_example_like_a_restricted_pod(client, runtime_image, tmp_path):
    """bereit-server in the image, with the pod's layout: code, model and keys mounted read-only."""
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)  # the container's user writes the trained model here
    examples = images.REPO / "examples" / "digits"
    mounts = {str(examples): {"bind": "/examples", "mode": "ro"}, str(work): {"bind": "/work", "mode": "rw"}}
    run(client, runtime_image.tag, ["python", "/examples/train.py", "--output", "/work"], volumes=mounts)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / PRIMARY_KEY).write_text("primary-test-key")
    (keys / SECONDARY_KEY).write_text("secondary-test-key")
    model_dir = f"{MODELS_DIR}/digits/1"
    server = client.containers.run(
        runtime_image.tag,
        user=f"{RUNTIME_UID}:{RUNTIME_UID}",
        detach=True,
        environment={
            ENV_ENTRY_SCRIPT: f"{CODE_DIR}/score.py",
            ENV_AZUREML_MODEL_DIR: model_dir,
            ENV_AUTH_MODE: "key",
            ENV_KEYS_DIR: KEYS_DIR,
        },
        volumes={
            str(examples): {"bind": CODE_DIR, "mode": "ro"},
            str(work / "model-v1"): {"bind": model_dir, "mode": "ro"},
            str(keys): {"bind": KEYS_DIR, "mode": "ro"},
        },
        ports={f"{SERVER_PORT}/tcp": ("127.0.0.1", None)},
        **(RESTRICTED | {"network_disabled": False}),
    )
    try:
        server.reload()
        port = server.ports[f"{SERVER_PORT}/tcp"][0]["HostPort"]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if http(base + READINESS_PATH)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            server.reload()
            assert server.status == "running", server.logs().decode(errors="replace")
            assert time.monotonic() < deadline, "not ready in 90 s:\n" + server.logs().decode(errors="replace")
            time.sleep(0.5)
        test = json.loads((work / "test-data.json").read_text())
        request = json.dumps({"data": test["data"]}).encode()
        status, body = http(base + SCORE_PATH, request, key="secondary-test-key")
        assert status == 200, body
        y_hat = json.loads(body)
        assert sum(p == t for p, t in zip(y_hat, test["labels"])) / len(y_hat) >= 0.9
        assert http(base + SCORE_PATH, request)[0] == 401
        assert http(base + SCORE_PATH, request, key="wrong")[0] == 401
    finally:
        server.remove(force=True)


def test_runtime_leaves_out_the_operators_libraries(client, runtime_image):
    output = run(client, runtime_image.tag, ["python", "-c", "import importlib.util as u; "
                                             "print([m for m in ('kopf', 'kubernetes', 'docker') if u.find_spec(m)])"])
    assert output.strip() == "[]"


def test_operator_image_loads_the_controllers(client, operator_image):
    output = run(client, operator_image.tag, ["python", "-c", "import bereit.controllers.main, kopf; print('ok')"])
    assert output.strip().endswith("ok")
    assert "kopf" in image_config(client, operator_image.tag)["Config"]["Cmd"]


def test_runtime_layers_are_base_then_passwd_libraries_and_a_small_bereit_layer(client, base_image, runtime_image):
    layers = image_config(client, runtime_image.tag)["RootFS"]["Layers"]
    base_layers = image_config(client, base_image)["RootFS"]["Layers"]
    assert layers[: len(base_layers)] == base_layers and len(layers) == len(base_layers) + 3
    passwd, libraries, bereit = [entry["Size"] for entry in client.api.history(runtime_image.tag) if entry["Size"]][:3][::-1]
    assert passwd < 10_000 and bereit < 2 * 2**20 and libraries > 50 * 2**20


def test_a_code_change_rebuilds_only_the_bereit_layer(client, base_image, tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("images", "operator/bereit"):
        shutil.copytree(images.REPO / part, checkout / part, ignore=ignore)
    shutil.copy(images.REPO / "pyproject.toml", checkout / "pyproject.toml")
    monkeypatch.setattr(images, "REPO", checkout)
    tag = "bereit/runtime:test-change"
    try:
        first = images.build_image("runtime", tag=tag, base_image=base_image, client=client)
        again = images.build_image("runtime", tag=tag, base_image=base_image, client=client)
        assert again.id == first.id  # nothing changed: every step cached
        with (checkout / "operator" / "bereit" / "__init__.py").open("a") as handle:
            handle.write("# a change\n")
        changed = images.build_image("runtime", tag=tag, base_image=base_image, client=client)
        before = image_config(client, first.id)["RootFS"]["Layers"]
        after = image_config(client, changed.id)["RootFS"]["Layers"]
        assert before[:-1] == after[:-1] and before[-1] != after[-1]
    finally:
        client.images.remove(tag, force=True)


def make_wheel(folder: Path, name: str) -> None:
    dist = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}/__init__.py", "VALUE = 'from the extra package'\n")
        archive.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        archive.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist}/RECORD", "")


def test_extra_packages_install_at_start_on_a_read_only_root_as_any_user(client, runtime_image, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "bereit_extra_demo")
    script = (
        "from bereit.server.packages import ensure_extra_packages; "
        "path = ensure_extra_packages(); "
        "import bereit_extra_demo; print(path, bereit_extra_demo.VALUE)"
    )
    output = run(
        client, runtime_image.tag, ["python", "-c", script],
        # An arbitrary uid, as OpenShift-style platforms assign: nothing may depend on 10001.
        user="123456:0",
        environment={
            "BEREIT_EXTRA_PACKAGES": "bereit_extra_demo==1.0",
            "BEREIT_PACKAGE_CACHE_DIR": "/tmp/packages",
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": "/wheels",
        },
        volumes={str(wheels): {"bind": "/wheels", "mode": "ro"}},
    )
    assert output.strip().startswith("/tmp/packages/") and output.strip().endswith("from the extra package")


def test_model_image_holds_the_files_and_lets_any_user_copy_them_out(client, base_image, tmp_path):
    model = tmp_path / "model"
    (model / "nested").mkdir(parents=True)
    (model / "model.pkl").write_bytes(b"\x80\x04weights")
    (model / "nested" / "vocab.txt").write_text("a\nb\n")
    (model / "model.pkl").chmod(0o600)  # private on the laptop, still readable in the image
    built = images.build_model_image(model, "bereit-models/test:1", base_image=base_image, client=client)

    # What the replica's init step does, as the user the pod runs as.
    copied = run(
        client, built.tag,
        ["sh", "-c", 'mkdir -p "$0" && cp -R /model/. "$0" && cd "$0" && find . -type f | sort && cat nested/vocab.txt',
         "/tmp/models/test/1"],
        user="123456:0",
    )
    assert copied.split() == ["./model.pkl", "./nested/vocab.txt", "a", "b"]
    # Only the model's own layer is new: the rest is the base the runtime uses too.
    layers = image_config(client, built.tag)["RootFS"]["Layers"]
    assert layers[:-1] == image_config(client, base_image)["RootFS"]["Layers"]


def test_a_single_file_model_lands_in_model(client, base_image, tmp_path):
    weights = tmp_path / "weights.onnx"
    weights.write_bytes(b"onnx")
    built = images.build_model_image(weights, "bereit-models/test-file:1", base_image=base_image, client=client)
    assert run(client, built.tag, ["ls", "/model"]).split() == ["weights.onnx"]


def test_an_empty_model_folder_is_refused(client, base_image, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(images.ImageBuildError, match="has no files"):
        images.build_model_image(tmp_path / "empty", "bereit-models/empty:1", base_image=base_image, client=client)


def test_a_failing_build_reports_dockers_error(client, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "f").write_text("x")
    with pytest.raises(images.ImageBuildError, match="not-a-base-image-here"):
        images.build_model_image(tmp_path / "m", "bereit-models/x:1", base_image="not-a-base-image-here:0", client=client)


@pytest.fixture(scope="module", autouse=True)
def remove_test_tags(client):
    yield
    for tag in ("bereit-models/test:1", "bereit-models/test-file:1"):
        try:
            client.images.remove(tag, noprune=False)
        except docker.errors.APIError:
            pass
