"""/score in-process: the seed script unchanged, the three call modes, and every bad body."""

from __future__ import annotations

import io
import json
import re

import pytest

from .conftest import SEED_SCRIPT, client, started_app

pytestmark = pytest.mark.anyio

ECHO = """
def init():
    pass

def run(data):
    return {"got": data}
"""


# Parses the body as seed scripts do: json.loads in run().
PARSING = """
import json

def init():
    pass

def run(data):
    return {"got": json.loads(data)}
"""


async def test_seed_script_runs_unchanged_and_predicts(tmp_path, digits_model):
    folder, rows, expected = digits_model
    app = started_app(tmp_path, SEED_SCRIPT, model_dir=folder)
    async with client(app) as http:
        response = await http.post("/score", json={"data": rows})
    assert response.status_code == 200
    assert response.json() == expected
    assert response.headers["x-request-id"]


async def test_run_gets_the_raw_body_as_a_string(tmp_path):
    app = started_app(tmp_path, ECHO)
    async with client(app) as http:
        response = await http.post("/score", content=b'{"a": [1, 2]}', headers={"content-type": "application/json"})
    assert response.json() == {"got": '{"a": [1, 2]}'}


async def test_text_bodies_reach_run_without_json_check(tmp_path):
    app = started_app(tmp_path, ECHO)
    async with client(app) as http:
        response = await http.post("/score", content=b"hello, not json", headers={"content-type": "text/plain"})
    assert response.status_code == 200
    assert response.json() == {"got": "hello, not json"}


async def test_model_dir_is_visible_to_the_script(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    app = started_app(tmp_path, "import os\ndef init(): pass\ndef run(d): return [os.environ['AZUREML_MODEL_DIR'], os.environ['BEREIT_MODEL_DIR']]\n", model_dir=models)
    async with client(app) as http:
        response = await http.post("/score", json={})
    assert response.json() == [str(models), str(models)]


async def test_request_id_from_the_client_is_kept(tmp_path):
    app = started_app(tmp_path, ECHO)
    async with client(app) as http:
        response = await http.post("/score", json={}, headers={"x-request-id": "abc-123"})
        bad = await http.post("/score", json={}, headers={"x-request-id": "has space"})
    assert response.headers["x-request-id"] == "abc-123"
    assert bad.headers["x-request-id"] != "has space"


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b"", {"content-type": "application/json"}, 400, "empty"),
        (b'{"data": "\xff\xfe"}', {"content-type": "application/json"}, 400, "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, {"content-type": "application/json"}, 400, "nested deeper"),
        (b"\x89PNG....", {"content-type": "image/png"}, 415, "image/png"),
        (b"--x\r\n", {"content-type": "multipart/form-data; boundary=x"}, 415, "@rawhttp"),
        (b"{}", {"content-type": "application/json", "content-length": "abc"}, 400, "Content-Length"),
    ],
    ids=["invalid-json", "empty", "invalid-utf8", "deeply-nested", "image", "multipart", "bad-length"],
)
async def test_bad_bodies_get_a_4xx_that_says_why_and_the_server_keeps_serving(
    tmp_path, body, headers, status, fragment
):
    app = started_app(tmp_path, PARSING)
    async with client(app) as http:
        response = await http.post("/score", content=body, headers=headers)
        again = await http.post("/score", json={"ok": 1})
    assert response.status_code == status, response.text[:300]
    assert fragment in response.json()["error"]
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert again.status_code == 200
    assert app.admission.running == 0 and app.admission.places == 0


async def test_json_error_of_run_is_400_only_for_the_request_body(tmp_path):
    own_file = tmp_path / "settings.json"
    own_file.write_text("{broken")
    app = started_app(
        tmp_path,
        f"import json\ndef init(): pass\ndef run(d):\n    json.loads(d)\n    return json.load(open({str(own_file)!r}))\n",
    )
    async with client(app) as http:
        bad_body = await http.post("/score", content=b"{nope", headers={"content-type": "application/json"})
        bad_file = await http.post("/score", json={})
    assert bad_body.status_code == 400 and "not valid JSON" in bad_body.json()["error"]
    assert bad_file.status_code == 500 and "JSONDecodeError" in bad_file.json()["error"]


async def test_body_over_the_limit_is_413(tmp_path):
    app = started_app(tmp_path, ECHO, max_request_bytes=1000)
    async with client(app) as http:
        response = await http.post("/score", content=b"x" * 1001, headers={"content-type": "text/plain"})
        fits = await http.post("/score", content=b"x" * 1000, headers={"content-type": "text/plain"})
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]
    assert fits.status_code == 200


async def test_run_that_raises_is_500_with_error_and_request_id_then_serving_goes_on(tmp_path):
    app = started_app(tmp_path, "def init(): pass\ndef run(d):\n    if d == '\"boom\"':\n        raise ValueError('bad value')\n    return 1\n")
    async with client(app) as http:
        response = await http.post("/score", json="boom")
        after = await http.post("/score", json="fine")
    assert response.status_code == 500
    body = response.json()
    assert "ValueError: bad value" in body["error"] and "score.py:4" in body["error"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-ms-run-function-failed"] == "True"
    assert after.status_code == 200 and after.json() == 1


async def test_run_returning_something_not_json_is_500_naming_the_type(tmp_path):
    app = started_app(tmp_path, "def init(): pass\ndef run(d): return object()\n")
    async with client(app) as http:
        response = await http.post("/score", json={})
    assert response.status_code == 500
    assert "not JSON-serialisable" in response.json()["error"] and "object" in response.json()["error"]


async def test_numpy_results_and_big_integers_are_serialised(tmp_path):
    app = started_app(tmp_path, "import numpy as np\ndef init(): pass\ndef run(d): return {'a': np.arange(3), 'big': 2**70}\n")
    async with client(app) as http:
        response = await http.post("/score", json={})
    assert response.status_code == 200
    assert response.json() == {"a": [0, 1, 2], "big": 2**70}


async def test_run_past_the_scoring_timeout_is_504_and_liveness_stays_up(tmp_path):
    app = started_app(
        tmp_path,
        "import time\ndef init(): pass\ndef run(d):\n    time.sleep(float(d))\n    return 'done'\n",
        scoring_timeout_ms=200,
        max_queue_wait_ms=5000,
    )
    async with client(app) as http:
        slow = await http.post("/score", content=b"1.0", headers={"content-type": "text/plain"})
        alive = await http.get("/")
        # The hung call still holds the only slot: the next one waits for it, then runs.
        quick = await http.post("/score", content=b"0", headers={"content-type": "text/plain"})
    assert slow.status_code == 504
    assert "200 ms" in slow.json()["error"]
    assert alive.status_code == 200
    assert quick.status_code == 200 and quick.json() == "done"


async def test_method_and_route_errors(tmp_path):
    app = started_app(tmp_path, ECHO)
    async with client(app) as http:
        get_score = await http.get("/score")
        missing = await http.get("/nope")
        post_ready = await http.post("/ready")
    assert get_score.status_code == 405 and get_score.headers["allow"] == "POST"
    assert missing.status_code == 404
    assert post_ready.status_code == 405


async def test_liveness_readiness_and_metrics(tmp_path):
    app = started_app(tmp_path, ECHO)
    async with client(app) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/ready")).status_code == 200
        await http.post("/score", json={})
        await http.post("/score", content=b"", headers={"content-type": "application/json"})
        metrics = (await http.get("/metrics")).text
    assert 'bereit_requests_total{code="200",route="/score"} 1.0' in metrics
    assert 'bereit_requests_total{code="400",route="/score"} 1.0' in metrics
    assert "bereit_score_duration_seconds_bucket" in metrics
    assert "bereit_run_duration_seconds_count 1.0" in metrics
    assert "bereit_in_flight 0.0" in metrics and "bereit_queued 0.0" in metrics
    assert "bereit_init_duration_seconds" in metrics and "bereit_ready 1.0" in metrics


async def test_not_ready_before_init(tmp_path):
    from bereit.server.app import create_app
    from bereit.server.config import ServerConfig

    script = tmp_path / "score.py"
    script.write_text(ECHO)
    app = create_app(ServerConfig(entry_script=script, auth_mode="none"))
    async with client(app) as http:
        ready = await http.get("/ready")
        score = await http.post("/score", json={})
    assert ready.status_code == 503
    assert score.status_code == 503 and score.headers["retry-after"]


async def test_data_collection_writes_inputs_and_outputs_but_never_headers(tmp_path):
    out = tmp_path / "collected"
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "primaryKey").write_text("k1")
    app = started_app(tmp_path, ECHO, data_collection=str(out), auth_mode="key", keys_dir=keys)
    async with client(app) as http:
        response = await http.post("/score", json={"x": 1}, headers={"authorization": "Bearer k1"})
    assert response.status_code == 200
    (file,) = out.iterdir()
    record = json.loads(file.read_text().strip())
    assert record["input"] == {"x": 1}
    assert record["output"] == {"got": '{"x":1}'}
    assert record["request_id"] == response.headers["x-request-id"]
    assert "k1" not in file.read_text()


async def test_data_collection_sample_rate_zero_writes_nothing(tmp_path):
    out = tmp_path / "collected"
    app = started_app(tmp_path, ECHO, data_collection=str(out), data_collection_sample_rate=0.0)
    async with client(app) as http:
        await http.post("/score", json={"x": 1})
    assert not out.exists() or not any(out.iterdir())


async def test_access_log_is_one_json_line_with_request_id_and_no_query_or_headers(tmp_path):
    stream = io.StringIO()
    app = started_app(tmp_path, ECHO, access_stream=stream)
    async with client(app) as http:
        response = await http.post("/score?secret=querykey", json={}, headers={"authorization": "Bearer topsecret"})
    assert stream.getvalue() == ""  # written in batches: by the server's flusher, or when many wait
    app.access.flush()
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["request_id"] == response.headers["x-request-id"]
    assert record["path"] == "/score" and record["status"] == 200 and record["method"] == "POST"
    assert record["duration_ms"] >= 0 and record["bytes_out"] == len(response.content)
    assert "querykey" not in line and "topsecret" not in line  # neither is hex, unlike request ids


async def test_access_log_as_text_is_one_line_with_method_path_status_time_id_and_sizes(tmp_path):
    stream = io.StringIO()
    app = started_app(tmp_path, ECHO, access_stream=stream, log_format="text")
    body = json.dumps({"data": [1, 2, 3]}).encode()
    async with client(app) as http:
        response = await http.post("/score", content=body, headers={"content-type": "application/json"})
    app.access.flush()
    (line,) = stream.getvalue().splitlines()
    rid = response.headers["x-request-id"]
    assert re.fullmatch(rf"POST /score 200 \d+\.\d{{3}}ms id={rid} in={len(body)} out={len(response.content)}", line), line


async def test_hung_run_makes_readiness_then_liveness_fail(tmp_path, monkeypatch):
    import asyncio

    from bereit.server import dataplane

    monkeypatch.setattr(dataplane, "STUCK_EXTRA_S", 1.0)  # stuck: running over 2 × 0.3 + 1 s
    app = started_app(
        tmp_path,
        "import threading\nGATE = threading.Event()\ndef init(): pass\ndef run(d):\n    GATE.wait(30)\n    return 'done'\n",
        scoring_timeout_ms=300,
    )

    async def until(path: str, status: int):
        deadline = asyncio.get_running_loop().time() + 20
        while (response := await http.get(path)).status_code != status:
            assert asyncio.get_running_loop().time() < deadline, f"{path}: {response.status_code} {response.text}"
            await asyncio.sleep(0.05)
        return response

    async with client(app) as http:
        timed_out = await http.post("/score", content=b"{}", headers={"content-type": "text/plain"})
        # Past the timeout the only slot is held: take no traffic, but stay alive for now.
        ready, live = await http.get("/ready"), await http.get("/")
        stuck = await until("/", 500)  # past twice the timeout and more: a restart is the only cure
        app.entry.module.GATE.set()  # run() returns: all is well again
        recovered_ready, recovered_live = await until("/ready", 200), await until("/", 200)
    assert timed_out.status_code == 504
    assert ready.status_code == 503 and "past the scoring timeout" in ready.text
    assert live.status_code == 200
    assert "has been running" in stuck.json()["error"]
    assert recovered_ready.status_code == 200 and recovered_live.status_code == 200


def test_access_log_writes_when_many_lines_wait():
    from bereit.server.logs import AccessLog

    stream = io.StringIO()
    log = AccessLog(True, "text", stream)
    for _ in range(AccessLog.MAX_PENDING - 1):
        log.write("POST", "/score", 200, 0.0, "r", 1, 1)
    assert stream.getvalue() == ""
    log.write("POST", "/score", 200, 0.0, "r", 1, 1)
    assert len(stream.getvalue().splitlines()) == AccessLog.MAX_PENDING
    log.flush()  # nothing left: nothing written
    assert len(stream.getvalue().splitlines()) == AccessLog.MAX_PENDING


async def test_request_ids_stay_unique_when_the_script_seeds_random(tmp_path):
    app = started_app(tmp_path, "import random\ndef init():\n    random.seed(42)\ndef run(d):\n    random.seed(42)\n    return 1\n")
    async with client(app) as http:
        ids = {(await http.post("/score", content=b"{}")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 16 for i in ids)
