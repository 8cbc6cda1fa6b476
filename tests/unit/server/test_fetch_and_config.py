"""`bereit-server fetch` against a local HTTP server, and settings from flags and environment."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from bereit.server import config, main
from bereit.server.fetch import FetchError, fetch


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "model.pkl").write_bytes(b"weights" * 1000)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"inside"
        info = tarfile.TarInfo("sub/model.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (root / "model.tar.gz").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (root / "evil.tar.gz").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/b.txt", "zipped")
    (root / "model.zip").write_bytes(buf.getvalue())

    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_with_checksum(tmp_path, files):
    root, url = files
    digest = hashlib.sha256((root / "model.pkl").read_bytes()).hexdigest()
    got = fetch(f"{url}/model.pkl", tmp_path / "dest", sha256=digest.upper())
    assert got == tmp_path / "dest" / "model.pkl"
    assert got.read_bytes() == (root / "model.pkl").read_bytes()
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["model.pkl"]


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, files):
    _, url = files
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch(f"{url}/model.pkl", tmp_path / "dest", sha256="0" * 64)
    assert list((tmp_path / "dest").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [("model.tar.gz", ("sub/model.bin", b"inside")), ("model.zip", ("a/b.txt", b"zipped"))],
)
def test_unpack_archives(tmp_path, files, name, expected):
    _, url = files
    dest = fetch(f"{url}/{name}", tmp_path / "dest", unpack=True)
    assert (dest / expected[0]).read_bytes() == expected[1]
    assert not (dest / name).exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"url": "{url}/missing.bin"}, "HTTP 404"),
        ({"url": "{url}/evil.tar.gz", "unpack": True}, "cannot unpack"),
        ({"url": "{url}/model.pkl", "unpack": True}, "not one of"),
        ({"url": "{url}/model.pkl", "sha256": "xyz"}, "64 hexadecimal"),
        ({"url": "ftp://example/model.pkl"}, "only https://"),
        ({"url": "{url}/"}, "--filename"),
    ],
    ids=["404", "path-traversal", "not-an-archive", "bad-sha", "scheme", "no-name"],
)
def test_fetch_errors_say_what_went_wrong(tmp_path, files, args, fragment):
    _, url = files
    args = {**args, "url": args["url"].format(url=url)}
    with pytest.raises(FetchError, match=fragment):
        fetch(dest=tmp_path / "dest", **args)
    assert not (tmp_path / "escape.txt").exists()


def test_fetch_subcommand_exit_codes(tmp_path, files, capsys):
    _, url = files
    assert main.main(["fetch", "--url", f"{url}/model.pkl", "--dest", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "model.pkl").exists()
    log = tmp_path / "termination-log"
    log.write_text("")
    code = main.main(["fetch", "--url", f"{url}/nope", "--dest", str(tmp_path / "d")])
    assert code == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_termination_log_is_written_only_where_it_exists(tmp_path):
    log = tmp_path / "termination-log"
    main.write_termination_log("nothing", str(log))
    assert not log.exists()
    log.write_text("")
    main.write_termination_log("x" * 10_000, str(log))
    assert len(log.read_text()) == main.TERMINATION_LOG_LIMIT


def test_flags_win_over_environment_and_azureml_names_work(tmp_path):
    env = {
        "AZUREML_ENTRY_SCRIPT": "/app/score.py",
        "AZUREML_MODEL_DIR": "/models/m/1",
        "BEREIT_MAX_QUEUE_WAIT_MS": "250",
        "BEREIT_AUTH_MODE": "token",
    }
    cfg = config.parse(["--port", "9000", "--worker_count", "3", "--appinsights_instrumentation_key", "x"], env)
    assert cfg.entry_script == Path("/app/score.py")
    assert cfg.model_dir == Path("/models/m/1")
    assert cfg.port == 9000 and cfg.max_concurrent_requests == 3
    assert cfg.max_queue_wait_ms == 250 and cfg.auth_mode == "token"
    cfg = config.parse(["--entry-script", "/x.py"], {"BEREIT_ENTRY_SCRIPT": "/y.py", "AZUREML_ENTRY_SCRIPT": "/z.py"})
    assert cfg.entry_script == Path("/x.py")
    assert config.parse([], {"BEREIT_ENTRY_SCRIPT": "/y.py", "AZUREML_ENTRY_SCRIPT": "/z.py"}).entry_script == Path("/y.py")


def test_seed_defaults():
    cfg = config.parse(["--entry-script", "s.py"], {})
    assert (cfg.scoring_timeout_ms, cfg.max_concurrent_requests, cfg.max_queue_wait_ms, cfg.max_queue_length) == (
        60000,
        1,
        500,
        10,
    )
    assert cfg.port == 8080 and cfg.auth_mode == "key"


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        ([], {}, "no entry script"),
        (["--entry-script", "s.py", "--auth-mode", "open"], {}, "--auth-mode / BEREIT_AUTH_MODE"),
        (["--entry-script", "s.py"], {"BEREIT_PORT": "99999"}, "--port / BEREIT_PORT"),
        (["--entry-script", "s.py"], {"BEREIT_SCORING_TIMEOUT_MS": "0"}, "--scoring-timeout-ms"),
        (["--entry-script", "s.py"], {"BEREIT_DATA_COLLECTION_SAMPLE_RATE": "2"}, "sample-rate"),
        (["--entry-script", "s.py"], {"BEREIT_MAX_CONCURRENT_REQUESTS": "1.5"}, "not a valid int"),
    ],
)
def test_bad_settings_name_flag_and_variable(argv, env, fragment):
    with pytest.raises(config.ConfigError, match=fragment.replace("(", r"\(")):
        config.parse(argv, env)
