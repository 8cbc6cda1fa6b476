"""Keys and tokens on /score: right, wrong, missing, in the query string, rotated, expired."""

from __future__ import annotations

import time

import pytest

from bereit.server import auth, tokens

from .conftest import client, started_app

pytestmark = pytest.mark.anyio
SCRIPT = "def init(): pass\ndef run(d): return 'ok'\n"


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "primaryKey").write_text("primary-secret-0123456789abcdefghij\n")
    (folder / "secondaryKey").write_text("secondary-secret-0123456789abcdefghij")
    return folder


@pytest.fixture(autouse=True)
def reread_keys_at_once(monkeypatch):
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.0)


@pytest.mark.parametrize(
    ("headers", "query", "status", "fragment"),
    [
        ({"authorization": "Bearer primary-secret-0123456789abcdefghij"}, "", 200, None),
        ({"authorization": "Bearer secondary-secret-0123456789abcdefghij"}, "", 200, None),
        ({"authorization": "bearer primary-secret-0123456789abcdefghij"}, "", 200, None),
        ({}, "", 401, "missing Authorization"),
        ({"authorization": "Bearer wrong"}, "", 401, "invalid key"),
        ({"authorization": "Basic cHJpbWFyeS1zZWNyZXQ="}, "", 401, "Bearer"),
        ({"authorization": "Bearer "}, "", 401, "Bearer"),
        ({}, "key=primary-secret-0123456789abcdefghij", 401, "query string"),
        ({"authorization": "Bearer primary-secret-0123456789abcdefghij"}, "api_key=primary-secret-0123456789abcdefghij", 401, "query string"),
    ],
    ids=["primary", "secondary", "lowercase-scheme", "missing", "wrong", "basic", "empty", "query", "header+query"],
)
async def test_key_auth(tmp_path, keys, headers, query, status, fragment):
    app = started_app(tmp_path, SCRIPT, auth_mode="key", keys_dir=keys)
    async with client(app) as http:
        response = await http.post(f"/score?{query}" if query else "/score", json={}, headers=headers)
    assert response.status_code == status
    if fragment:
        assert fragment in response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"
        assert "secret" not in response.text


async def test_rotated_key_works_without_restart_and_old_one_stops(tmp_path, keys):
    app = started_app(tmp_path, SCRIPT, auth_mode="key", keys_dir=keys)
    async with client(app) as http:
        assert (await http.post("/score", json={}, headers={"authorization": "Bearer primary-secret-0123456789abcdefghij"})).status_code == 200
        # Kubernetes replaces Secret files by swapping a symlink: a new inode with new content.
        new = keys / "primaryKey.new"
        new.write_text("rotated")
        new.replace(keys / "primaryKey")
        assert (await http.post("/score", json={}, headers={"authorization": "Bearer rotated"})).status_code == 200
        assert (await http.post("/score", json={}, headers={"authorization": "Bearer primary-secret-0123456789abcdefghij"})).status_code == 401


async def test_key_mode_without_key_files_refuses_with_a_hint(tmp_path):
    app = started_app(tmp_path, SCRIPT, auth_mode="key", keys_dir=tmp_path / "absent")
    async with client(app) as http:
        response = await http.post("/score", json={}, headers={"authorization": "Bearer x"})
    assert response.status_code == 401
    assert "no key files" in response.json()["error"] and "--auth-mode none" in response.json()["error"]


async def test_probes_swagger_and_metrics_need_no_key(tmp_path, keys):
    app = started_app(tmp_path, SCRIPT, auth_mode="key", keys_dir=keys)
    async with client(app) as http:
        for path in ("/", "/ready", "/swagger.json", "/metrics"):
            assert (await http.get(path)).status_code == 200, path


@pytest.mark.parametrize(
    ("make", "status", "fragment"),
    [
        (lambda: tokens.mint("primary-secret-0123456789abcdefghij", "svc"), 200, None),
        (lambda: tokens.mint("secondary-secret-0123456789abcdefghij", "svc"), 200, None),
        (lambda: tokens.mint("primary-secret-0123456789abcdefghij", "svc", ttl_seconds=1, now=time.time() - 10), 401, "expired"),
        (lambda: tokens.mint("someone-else-0123456789abcdefghijklmn", "svc"), 401, "not signed with a current key"),
        (lambda: tokens.mint("primary-secret-0123456789abcdefghij", "other-svc"), 401, "not for this service"),
        (lambda: "not-a-jwt", 401, "invalid token"),
        (lambda: "primary-secret-0123456789abcdefghij", 401, "invalid token"),
    ],
    ids=["primary", "secondary", "expired", "wrong-key", "other-service", "garbage", "a-key-is-not-a-token"],
)
async def test_token_auth(tmp_path, keys, make, status, fragment):
    app = started_app(tmp_path, SCRIPT, auth_mode="token", keys_dir=keys, service_name="svc")
    async with client(app) as http:
        response = await http.post("/score", json={}, headers={"authorization": f"Bearer {make()}"})
    assert response.status_code == status
    if fragment:
        assert fragment in response.json()["error"]


def test_token_without_expiry_is_refused(keys):
    import jwt

    token = jwt.encode({"aud": "svc"}, b"primary-secret-0123456789abcdefghij", algorithm="HS256")
    with pytest.raises(tokens.TokenError, match="exp"):
        tokens.verify(token, (b"primary-secret-0123456789abcdefghij",), "svc")


def test_token_signed_with_none_algorithm_is_refused():
    import jwt

    token = jwt.encode({"exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(tokens.TokenError):
        tokens.verify(token, (b"primary-secret-0123456789abcdefghij",), None)


def test_mint_refuses_bad_arguments():
    with pytest.raises(ValueError):
        tokens.mint("k", "svc", ttl_seconds=0)
    with pytest.raises(ValueError):
        tokens.mint("", "svc")


def test_key_comparison_checks_every_key():
    auth.check_key(b"b", (b"a", b"b"))
    with pytest.raises(auth.AuthError):
        auth.check_key(b"c", (b"a", b"b"))
