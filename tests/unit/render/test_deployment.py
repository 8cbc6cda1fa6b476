import pytest
from bereit import constants as c
from bereit.render.deployment import render_deployment

from tests.unit.render.conftest import resolve
from tests.unit.specs import compute_target_body, inference_service_body, model_body


def _pod(resolved):
    return render_deployment(resolved)["spec"]["template"]["spec"]


def _server(resolved):
    (container,) = _pod(resolved)["containers"]
    return container


def _env(resolved):
    return {item["name"]: item["value"] for item in _server(resolved)["env"]}


def test_pod_meets_the_restricted_pod_security_standard(resolved):
    pod = _pod(resolved)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"] for mount in _server(resolved)["volumeMounts"]}
    assert c.SCRATCH_DIR in mounts, "a read-only root needs a writable scratch folder"


def test_one_model_is_placed_at_name_and_version():
    resolved = resolve()
    env = _env(resolved)
    assert env["AZUREML_MODEL_DIR"] == f"{c.MODELS_DIR}/digits/1" == env[c.ENV_MODEL_DIR]
    (init,) = _pod(resolved)["initContainers"]
    assert init["image"] == "bereit-models/digits:1"
    assert init["command"][-1] == f"{c.MODELS_DIR}/digits/1"


def test_several_models_point_to_the_folder_holding_them():
    resolved = resolve(
        inference_service_body(models=[{"name": "a", "version": 1}, {"name": "b", "version": 3}]),
        models=[model_body("a-1", modelName="a"), model_body("b-3", modelName="b", version=3)],
    )
    assert _env(resolved)["AZUREML_MODEL_DIR"] == c.MODELS_DIR
    destinations = [init["command"][-1] for init in _pod(resolved)["initContainers"]]
    assert destinations == [f"{c.MODELS_DIR}/a/1", f"{c.MODELS_DIR}/b/3"]


def test_https_model_is_fetched_with_checksum_and_credentials_from_a_secret():
    resolved = resolve(
        models=[model_body(source={"uri": "https://h/m.tgz", "sha256": "b" * 64, "unpack": True, "secretRef": {"name": "dl"}})]
    )
    (init,) = _pod(resolved)["initContainers"]
    assert init["command"] == ["bereit-server"]
    assert init["args"][:5] == ["fetch", "--url", "https://h/m.tgz", "--dest", f"{c.MODELS_DIR}/digits/1"]
    assert ["--sha256", "b" * 64] == init["args"][5:7] and "--unpack" in init["args"]
    (variable,) = init["env"]
    assert variable["valueFrom"]["secretKeyRef"] == {"name": "dl", "key": "authorization"}


def test_pvc_model_is_mounted_read_only_without_copying():
    resolved = resolve(models=[model_body(source={"uri": "pvc://store/models/digits/1"})])
    assert _pod(resolved)["initContainers"] == []
    mount = next(m for m in _server(resolved)["volumeMounts"] if m["name"] == "model-0-pvc")
    assert mount == {"name": "model-0-pvc", "mountPath": f"{c.MODELS_DIR}/digits/1", "readOnly": True, "subPath": "models/digits/1"}
    volume = next(v for v in _pod(resolved)["volumes"] if v["name"] == "model-0-pvc")
    assert volume["persistentVolumeClaim"] == {"claimName": "store", "readOnly": True}


def test_keys_are_files_from_the_secret_not_environment_variables(resolved):
    server = _server(resolved)
    assert not any("KEY" in item["name"] and "valueFrom" in item for item in server["env"])
    keys = next(v for v in _pod(resolved)["volumes"] if v["name"] == "keys")
    assert keys["secret"]["secretName"] == "digits-keys"
    assert {"name": "keys", "mountPath": c.KEYS_DIR, "readOnly": True} in server["volumeMounts"]


def test_a_public_service_mounts_no_keys():
    resolved = resolve(inference_service_body(auth={"keyAuth": False}))
    assert _env(resolved)[c.ENV_AUTH_MODE] == "none"
    assert all(v["name"] != "keys" for v in _pod(resolved)["volumes"])


def test_code_is_mounted_where_the_entry_script_is_found(resolved):
    assert _env(resolved)[c.ENV_ENTRY_SCRIPT] == f"{c.CODE_DIR}/score.py"
    code = next(v for v in _pod(resolved)["volumes"] if v["name"] == "code")
    assert code["configMap"]["name"] == "digits-code"


def test_code_in_the_image_is_used_in_place():
    body = inference_service_body(inference={"entryScript": "score.py", "code": {"imagePath": "/opt/app"}})
    resolved = resolve(body)
    assert _env(resolved)[c.ENV_ENTRY_SCRIPT] == "/opt/app/score.py"
    assert all(v["name"] != "code" for v in _pod(resolved)["volumes"])


def test_scoring_settings_reach_the_server_as_environment():
    body = inference_service_body(
        scoring={"timeoutMs": 1500, "maxConcurrentRequestsPerReplica": 4, "maxQueueWaitMs": 50, "maxQueueLength": 3, "maxRequestBytes": 1024}
    )
    env = _env(resolve(body))
    assert env[c.ENV_SCORING_TIMEOUT_MS] == "1500"
    assert env[c.ENV_MAX_CONCURRENT_REQUESTS] == "4"
    assert env[c.ENV_MAX_QUEUE_WAIT_MS] == "50"
    assert env[c.ENV_MAX_QUEUE_LENGTH] == "3"
    assert env[c.ENV_MAX_REQUEST_BYTES] == "1024"


def test_resources_come_from_the_service_then_the_target_then_the_seeds():
    assert _server(resolve())["resources"]["requests"] == {"cpu": "0.1", "memory": "0.5Gi"}
    target = compute_target_body(defaults={"cpu": "250m", "memory": "1Gi"})
    assert _server(resolve(target=target))["resources"]["requests"] == {"cpu": "250m", "memory": "1Gi"}
    own = resolve(inference_service_body(resources={"cpu": "2"}), target=target)
    assert _server(own)["resources"]["requests"] == {"cpu": "2", "memory": "1Gi"}
    assert _server(own)["resources"]["limits"] == {"memory": "1Gi"}


def test_probes_follow_the_spec_and_readiness_waits_for_init():
    body = inference_service_body(livenessProbe={"periodSeconds": 7, "initialDelaySeconds": 20, "timeoutSeconds": 3, "failureThreshold": 5})
    server = _server(resolve(body))
    liveness = server["livenessProbe"]
    assert liveness["httpGet"]["path"] == c.LIVENESS_PATH
    assert (liveness["periodSeconds"], liveness["initialDelaySeconds"], liveness["timeoutSeconds"], liveness["failureThreshold"]) == (7, 20, 3, 5)
    assert server["readinessProbe"]["httpGet"]["path"] == c.READINESS_PATH


def test_node_selector_and_tolerations_come_from_the_compute_target():
    target = compute_target_body(nodeSelector={"pool": "ml"}, tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    pod = _pod(resolve(target=target))
    assert pod["nodeSelector"] == {"pool": "ml"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_rolling_update_never_takes_a_replica_away_before_a_new_one_is_ready(resolved):
    strategy = render_deployment(resolved)["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert _server(resolved)["lifecycle"]["preStop"]["sleep"]["seconds"] > 0


def test_replicas_are_left_to_the_autoscaler_unless_fixed():
    assert "replicas" not in render_deployment(resolve())["spec"]
    assert render_deployment(resolve(inference_service_body(replicas=4)))["spec"]["replicas"] == 4


def _hash(resolved):
    return render_deployment(resolved)["spec"]["template"]["metadata"]["annotations"][c.POD_SPEC_HASH_ANNOTATION]


def test_spec_hash_changes_with_code_and_model_but_not_with_keys_or_scaling():
    base = _hash(resolve())
    changed_code = inference_service_body(inference={"entryScript": "score.py", "code": {"inline": {"score.py": "def run(d): return d\n"}}})
    assert _hash(resolve(changed_code)) != base
    other_model = resolve(inference_service_body(models=[{"name": "digits", "version": 2}]), models=[model_body("digits-2", version=2)])
    assert _hash(other_model) != base
    assert _hash(resolve(inference_service_body(autoscale={"maxReplicas": 3}))) == base


def test_a_changed_user_config_map_rolls_the_pods():
    body = inference_service_body(inference={"entryScript": "score.py", "code": {"configMap": {"name": "mine"}}})
    assert _hash(resolve(body, code_digest="one")) != _hash(resolve(body, code_digest="two"))


@pytest.mark.parametrize("telemetry, expected", [(True, "true"), (False, None)])
def test_telemetry_adds_prometheus_scrape_annotations(telemetry, expected):
    resolved = resolve(inference_service_body(telemetry={"enabled": telemetry}))
    annotations = render_deployment(resolved)["spec"]["template"]["metadata"]["annotations"]
    assert annotations.get("prometheus.io/scrape") == expected


def test_pods_do_not_get_api_credentials_or_service_links(resolved):
    pod = _pod(resolved)
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False


def test_grace_period_covers_the_scoring_timeout():
    resolved = resolve(inference_service_body(scoring={"timeoutMs": 120000}))
    assert _pod(resolved)["terminationGracePeriodSeconds"] >= 120
