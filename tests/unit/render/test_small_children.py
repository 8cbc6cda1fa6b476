import base64

import pytest
from bereit.constants import PRIMARY_KEY, SECONDARY_KEY
from bereit.render import names
from bereit.render.autoscaler import render_autoscaler
from bereit.render.code import render_code_config_map
from bereit.render.disruption_budget import render_disruption_budget
from bereit.render.network_policy import render_network_policy
from bereit.render.secret import render_keys_secret
from bereit.render.service import render_service

from tests.unit.render.conftest import resolve
from tests.unit.specs import inference_service_body


def test_service_selects_the_pods_on_port_80(resolved):
    service = render_service(resolved)
    assert service["spec"]["selector"] == names.selector_labels(resolved)
    assert service["spec"]["ports"][0]["port"] == 80 and service["spec"]["ports"][0]["targetPort"] == "http"


def test_scoring_and_swagger_uris_use_the_service_dns_name(resolved):
    assert names.scoring_uri(resolved) == "http://digits.ml.svc.cluster.local/score"
    assert names.swagger_uri(resolved) == "http://digits.ml.svc.cluster.local/swagger.json"


def test_autoscaler_uses_seed_defaults(resolved):
    spec = render_autoscaler(resolved)["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 10)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert spec["behavior"]["scaleUp"]["policies"][0]["periodSeconds"] == 1
    assert spec["scaleTargetRef"]["name"] == "digits"


def test_autoscaler_follows_the_spec():
    resolved = resolve(inference_service_body(autoscale={"minReplicas": 2, "maxReplicas": 4, "targetUtilization": 50, "refreshSeconds": 15}))
    spec = render_autoscaler(resolved)["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 4)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    assert spec["behavior"]["scaleDown"]["policies"][0]["periodSeconds"] == 15


@pytest.mark.parametrize("spec", [{"replicas": 2}, {"replicas": 2, "autoscale": {"enabled": False}}])
def test_no_autoscaler_when_replicas_are_fixed(spec):
    assert render_autoscaler(resolve(inference_service_body(**spec))) is None


@pytest.mark.parametrize("spec, expected", [({"replicas": 1}, False), ({"replicas": 3}, True), ({}, True), ({"autoscale": {"maxReplicas": 1}}, False)])
def test_disruption_budget_only_when_there_can_be_more_than_one_replica(spec, expected):
    budget = render_disruption_budget(resolve(inference_service_body(**spec)))
    assert (budget is not None) == expected
    if budget:
        assert budget["spec"]["maxUnavailable"] == 1


def test_network_policy_admits_the_scoring_port_only(resolved):
    spec = render_network_policy(resolved)["spec"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]


def test_inline_code_becomes_an_owned_config_map(resolved):
    config_map = render_code_config_map(resolved)
    assert config_map["metadata"]["name"] == "digits-code"
    assert config_map["data"] == {"score.py": "def init():\n    pass\n"}


def test_keys_secret_holds_both_keys_under_the_seed_names(resolved):
    secret = render_keys_secret(resolved, "primary-value", "secondary-value")
    assert secret["metadata"]["name"] == "digits-keys"
    assert base64.b64decode(secret["data"][PRIMARY_KEY]).decode() == "primary-value"
    assert base64.b64decode(secret["data"][SECONDARY_KEY]).decode() == "secondary-value"


def test_keys_secret_refuses_an_empty_key(resolved):
    with pytest.raises(ValueError):
        render_keys_secret(resolved, "", "s")


def test_inline_code_in_folders_is_stored_flat_and_mounted_at_its_paths():
    from bereit.render.deployment import render_deployment

    files = {"x/y/score.py": "def init(): pass\n", "x/util.py": "", "score.py": ""}
    body = inference_service_body(inference={"entryScript": "x/y/score.py", "code": {"inline": files}})
    resolved = resolve(body)
    assert set(render_code_config_map(resolved)["data"]) == {"x__y__score.py", "x__util.py", "score.py"}
    pod = render_deployment(resolved)["spec"]["template"]["spec"]
    code = next(volume for volume in pod["volumes"] if volume["name"] == "code")
    assert {"key": "x__y__score.py", "path": "x/y/score.py"} in code["configMap"]["items"]
    env = {item["name"]: item["value"] for item in pod["containers"][0]["env"]}
    assert env["BEREIT_ENTRY_SCRIPT"] == "/var/azureml-app/code/x/y/score.py"
