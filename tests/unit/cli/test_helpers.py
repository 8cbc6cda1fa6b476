"""Pure parts of the CLI: names, references, how images reach the cluster, package Dockerfiles,
tables, and how --wait reads a service's status over time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bereit.api.common import is_dns_label
from bereit.cli import output, progress
from bereit.cli.errors import BadInput, CliError, NotFound, TimedOut
from bereit.cli.images.distribute import Load, choose, reference
from bereit.cli.images.package import PackageSpec, dockerfile
from bereit.cli.manifests import ModelRef, parse_model_ref, parse_pairs
from bereit.cli.model_versions import object_name
from bereit.cli.score_client import in_cluster


@pytest.mark.parametrize("name", ["sentiment", "sklearn_mnist", "Sklearn.MNIST", "a", "x" * 63, "digits-2"])
def test_object_names_are_dns_names_and_distinct(name: str):
    first, second = object_name(name, 1), object_name(name, 12)
    assert is_dns_label(first, 253) and is_dns_label(second, 253)
    assert first != second
    assert object_name("sklearn_mnist", 1) != object_name("sklearn-mnist", 1)
    assert object_name("sentiment", 3) == "sentiment-v3"


@pytest.mark.parametrize(
    ("text", "ref"),
    [("sentiment:1", ModelRef("sentiment", 1)), ("sentiment", ModelRef("sentiment")), ("a.b_c-d:12", ModelRef("a.b_c-d", 12))],
)
def test_model_references(text: str, ref: ModelRef):
    assert parse_model_ref(text) == ref


def test_pairs_keep_equals_signs_in_values():
    assert parse_pairs(["a=1", "expr=x=y", "empty="], "--tag") == {"a": "1", "expr": "x=y", "empty": ""}


@pytest.mark.parametrize(
    ("how", "registry", "context", "chosen"),
    [
        (Load.AUTO, "registry.example.com/team", "prod", Load.REGISTRY),
        (Load.AUTO, None, "kind-bereit", Load.KIND),
        (Load.NONE, None, "prod", Load.NONE),
        (Load.LOCAL, "r.example.com", "prod", Load.LOCAL),
    ],
)
def test_how_images_reach_the_cluster(how, registry, context, chosen, monkeypatch):
    monkeypatch.delenv("CONTAINERD_ADDRESS", raising=False)
    assert choose(how, registry, context) == chosen


def test_auto_load_follows_the_registry_the_kind_context_or_a_local_containerd(monkeypatch):
    monkeypatch.delenv("CONTAINERD_ADDRESS", raising=False)
    assert choose(Load.AUTO, "r.example.com", "kind-x") == Load.REGISTRY
    assert choose(Load.AUTO, None, "kind-x") == Load.KIND
    monkeypatch.setenv("CONTAINERD_ADDRESS", "/run/k3s/containerd/containerd.sock")
    assert choose(Load.AUTO, None, "default") == Load.LOCAL


def test_unknown_cluster_without_registry_asks_for_one(monkeypatch):
    monkeypatch.delenv("CONTAINERD_ADDRESS", raising=False)
    with pytest.raises(BadInput, match="pass --registry HOST"):
        choose(Load.AUTO, None, "aks-prod")
    with pytest.raises(BadInput, match="--load registry needs --registry"):
        choose(Load.REGISTRY, None, "aks-prod")
    assert reference("bereit-models/x:1", Load.REGISTRY, "r.example.com/team/") == "r.example.com/team/bereit-models/x:1"
    assert reference("bereit-models/x:1", Load.KIND, None) == "bereit-models/x:1"


@pytest.mark.parametrize(
    ("uri", "inside"),
    [
        ("http://svc.ns.svc.cluster.local/score", True),
        ("http://svc.ns.svc/score", True),
        ("http://svc/score", True),
        ("https://ml.example.com/svc/score", False),
    ],
)
def test_in_cluster_uris(uri, inside):
    assert in_cluster(uri) is inside


def test_package_dockerfile():
    spec = PackageSpec(
        runtime_image="bereit/runtime:0.1.0",
        entry_script="x/score.py",
        code_files={},
        model_name="digits",
        model_version=3,
        model_image="bereit-models/digits:abc",
        requirements=["lightgbm==4.5.0"],
        env={"BEREIT_SCORING_TIMEOUT_MS": "5000"},
        extra_steps="RUN echo hi",
    )
    text = dockerfile(spec)
    assert text.startswith("FROM bereit-models/digits:abc AS model\nFROM bereit/runtime:0.1.0 AS packages\n")
    assert '--find-links /tmp/wheels --target /opt/bereit-packages "lightgbm==4.5.0"' in text
    assert "COPY --from=model /model/ /var/azureml-app/azureml-models/digits/3/" in text
    assert "USER 0\nRUN echo hi\nUSER 10001:10001" in text
    assert 'BEREIT_ENTRY_SCRIPT="/var/azureml-app/code/x/score.py"' in text
    assert 'AZUREML_MODEL_DIR="/var/azureml-app/azureml-models/digits/3"' in text
    assert 'BEREIT_AUTH_MODE="none"' in text and 'BEREIT_SCORING_TIMEOUT_MS="5000"' in text
    assert text.rstrip().endswith('CMD ["bereit-server"]')
    local = dockerfile(PackageSpec("rt", "score.py", {}, "m", 1, model_path=Path("/tmp/model.pkl")))
    assert "AS packages" not in local and "COPY model/ /var/azureml-app/azureml-models/m/1/" in local


def test_table_columns_line_up(capsys):
    output.table(["name", "state"], [("a", "Healthy"), ("longer-name", None)])
    assert capsys.readouterr().out.splitlines() == ["NAME          STATE", "a             Healthy", "longer-name   -"]


def test_age():
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    stamp = lambda delta: (now - delta).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert output.age(stamp(timedelta(seconds=45)), now) == "45s"
    assert output.age(stamp(timedelta(minutes=5)), now) == "5m"
    assert output.age(stamp(timedelta(hours=3)), now) == "3h"
    assert output.age(stamp(timedelta(days=4)), now) == "4d"
    assert output.age(None, now) == "-"


class Timeline:
    """What --wait sees: a service whose status changes as a fake clock advances."""

    def __init__(self, states: list[tuple[float, dict]]):
        self.states = states
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def get(self, kind: str, name: str) -> dict:
        status = [s for at, s in self.states if at <= self.now][-1]
        return {"metadata": {"name": name, "generation": 2}, "status": status}


def _status(state: str, generation: int = 2, message: str = "") -> dict:
    return {"state": state, "observedGeneration": generation, "message": message, "replicas": 1, "readyReplicas": 0}


def test_wait_ignores_a_status_of_the_previous_generation():
    timeline = Timeline([(0, _status("Healthy", generation=1)), (5, _status("Transitioning")), (9, _status("Healthy"))])
    service = progress.wait_for_service(timeline, "svc", timeout=60, clock=timeline.clock, sleep=timeline.sleep)
    assert service["status"]["state"] == "Healthy" and timeline.now >= 9


def test_a_momentary_failure_is_waited_out():
    timeline = Timeline([(0, _status("Failed", message="model not Ready")), (3, _status("Healthy"))])
    progress.wait_for_service(timeline, "svc", timeout=60, clock=timeline.clock, sleep=timeline.sleep)


def test_a_lasting_failure_ends_the_wait_with_its_message():
    timeline = Timeline([(0, _status("Transitioning")), (2, _status("Failed", message="needs 8 vCPUs; 2 are free"))])
    with pytest.raises(CliError, match="service svc is Failed: needs 8 vCPUs; 2 are free") as caught:
        progress.wait_for_service(timeline, "svc", timeout=600, clock=timeline.clock, sleep=timeline.sleep)
    assert caught.value.exit_code == 1
    assert 12 <= timeline.now < 20


def test_unhealthy_for_a_minute_points_to_the_logs():
    timeline = Timeline([(0, _status("Unhealthy", message="init() failed: score.py line 3"))])
    with pytest.raises(CliError, match=r"is Unhealthy: init\(\) failed.*bereit service logs svc"):
        progress.wait_for_service(timeline, "svc", timeout=600, clock=timeline.clock, sleep=timeline.sleep)


def test_timeout():
    timeline = Timeline([(0, _status("Transitioning", message="0/1 ready"))])
    with pytest.raises(TimedOut, match="still Transitioning after 30 s: 0/1 ready") as caught:
        progress.wait_for_service(timeline, "svc", timeout=30, clock=timeline.clock, sleep=timeline.sleep)
    assert caught.value.exit_code == 5


def test_a_silent_operator_is_named_in_the_timeout():
    timeline = Timeline([(0, {})])
    with pytest.raises(TimedOut, match="no status from the operator yet: is it running"):
        progress.wait_for_service(timeline, "svc", timeout=30, clock=timeline.clock, sleep=timeline.sleep)


def test_wait_until_gone():
    class Deleting:
        calls = 0

        def get(self, kind, name):
            self.calls += 1
            if self.calls > 3:
                raise NotFound("gone")
            return {"metadata": {"finalizers": ["bereit.dev/model-in-use"]}}

    progress.wait_until_gone(Deleting(), "Model", "m-v1", timeout=60, clock=lambda: 0.0, sleep=lambda s: None)
    ticks = iter(range(100))
    with pytest.raises(TimedOut, match="finalizers: bereit.dev/model-in-use"):
        stuck = Deleting()
        stuck.calls = -1000
        progress.wait_until_gone(stuck, "Model", "m-v1", timeout=5, clock=lambda: float(next(ticks)), sleep=lambda s: None)
