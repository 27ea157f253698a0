"""Device tokens (stored hashed, revocable), their CLI, 401/403 answers and the rate limit."""

from __future__ import annotations

import json
import stat

import httpx
import pytest
from edgeshelf.catalogue.service import ServiceOptions
from edgeshelf.catalogue.tokens import TokenError, TokenStore
from edgeshelf.sdk.errors import CorruptArtifactError, InvalidInputError
from edgeshelf.sdk.lookup import LookupAuthError, LookupClient, LookupOptions, RateLimitedError
from edgeshelf.sdk.results import Embedding

from tests.catalogue_service.helpers import post_search, run_cli, unit
from tests.fixtures_catalogue_service import build_service_index, start_lookup_server

# ---- the store


def test_store_keeps_only_salted_hashes(tmp_path):
    path = tmp_path / "tokens.json"
    store = TokenStore.open(path, create=True)
    a = store.create("kitchen-speaker")
    b = store.create("hall.glasses_2")
    text = path.read_text()
    for issued in (a, b):
        secret = issued.token.split("_", 2)[2]
        assert secret not in text and issued.token not in text
        assert issued.token not in repr(issued)
    data = json.loads(text)
    assert data["kdf"]["name"] == "scrypt"
    salts = [r["salt"] for r in data["tokens"]]
    assert len(set(salts)) == 2 and all(len(s) == 32 for s in salts)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.verify(a.token).device == "kitchen-speaker"
    assert TokenStore.open(path).verify(b.token).device == "hall.glasses_2"


@pytest.mark.parametrize(
    "token,problem,phrase",
    [
        (None, "missing", "missing device token"),
        ("", "missing", "missing device token"),
        ("hunter2", "malformed", "malformed device token"),
        ("esk_0000000_" + "a" * 43, "malformed", "malformed"),
        ("esk_deadbeef_" + "a" * 43, "unknown", "unknown device token"),
    ],
)
def test_store_rejects(tmp_path, token, problem, phrase):
    store = TokenStore.open(tmp_path / "t.json", create=True)
    store.create("dev")
    with pytest.raises(TokenError, match=phrase) as info:
        store.verify(token)
    assert info.value.problem == problem


def test_wrong_secret_for_a_known_id_is_unknown(tmp_path):
    store = TokenStore.open(tmp_path / "t.json", create=True)
    token = store.create("dev").token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenError, match="unknown device token"):
        store.verify(forged)


def test_revoke_and_recreate(tmp_path):
    path = tmp_path / "t.json"
    store = TokenStore.open(path, create=True)
    old = store.create("dev")
    with pytest.raises(InvalidInputError, match="already has an active token"):
        store.create("dev")
    other = TokenStore.open(path)  # a second process: sees the change through the file
    assert other.verify(old.token).device == "dev"
    assert [r.token_id for r in store.revoke("dev")] == [old.record.token_id]
    with pytest.raises(TokenError, match="was revoked") as info:
        other.verify(old.token)
    assert info.value.problem == "revoked"
    new = store.create("dev")
    assert other.verify(new.token).token_id == new.record.token_id
    with pytest.raises(InvalidInputError, match="no active token for device or token id 'ghost'"):
        store.revoke("ghost")
    assert [(r.device, r.active) for r in store.list()] == [("dev", False), ("dev", True)]


@pytest.mark.parametrize("name", ["", "-lead", "a b", "x" * 65, "dev/../x", "дом"])
def test_bad_device_names(tmp_path, name):
    with pytest.raises(InvalidInputError, match="device name"):
        TokenStore.open(tmp_path / "t.json", create=True).create(name)


def test_missing_and_corrupt_token_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="edgeshelf tokens create"):
        TokenStore.open(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CorruptArtifactError, match="bad.json"):
        TokenStore.open(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CorruptArtifactError, match="not an edgeshelf token file"):
        TokenStore.open(bad)


# ---- the CLI


def test_tokens_cli_create_list_revoke(tmp_path):
    path = str(tmp_path / "tokens.json")
    code, out, err = run_cli(["tokens", "create", "--device", "speaker-1", "--tokens", path, "--json"])
    assert code == 0, err
    created = json.loads(out)
    assert created["device"] == "speaker-1" and created["token"].startswith("esk_")
    assert TokenStore.open(path).verify(created["token"]).device == "speaker-1"

    code, out, err = run_cli(["tokens", "create", "--device", "speaker-2", "--tokens", path])
    assert code == 0 and "only time the token is shown" in err
    assert out.splitlines()[1].startswith("esk_")

    code, out, _ = run_cli(["tokens", "list", "--tokens", path, "--json"])
    listed = json.loads(out)["tokens"]
    assert [t["device"] for t in listed] == ["speaker-1", "speaker-2"]
    assert "esk_" not in out

    code, out, _ = run_cli(["tokens", "revoke", "speaker-1", "--tokens", path])
    assert code == 0 and "revoked token" in out
    code, out, err = run_cli(["tokens", "revoke", "speaker-1", "--tokens", path])
    assert code == 2 and "no active token" in err
    code, out, err = run_cli(["tokens", "create", "--device", "bad name", "--tokens", path])
    assert code == 2 and "device name 'bad name' is invalid" in err


# ---- the service


@pytest.mark.parametrize(
    "headers,status,code,phrase",
    [
        ({}, 401, "token_missing", "missing device token"),
        ({"authorization": "Bearer"}, 401, "token_missing", "missing device token"),
        (
            {"authorization": "Basic dXNlcjpwYXNz"},
            401,
            "malformed_authorization",
            "expected 'Bearer <device token>'",
        ),
        ({"authorization": "Bearer nope"}, 401, "token_malformed", "malformed device token"),
        ({"authorization": "Bearer esk_deadbeef_" + "x" * 43}, 401, "token_unknown", "unknown device token"),
    ],
)
def test_service_refuses_without_a_valid_token(lookup_server, headers, status, code, phrase):
    for method, path in (("POST", "/v1/search"), ("GET", "/v1/info"), ("GET", "/v1/shards/all")):
        response = httpx.request(method, f"{lookup_server.url}{path}", headers=headers, json={})
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and phrase in error["message"]
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{lookup_server.url}/healthz").status_code == 200  # health needs no token


def test_revoked_token_is_403_on_the_running_service(lookup_server):
    token = TokenStore.open(lookup_server.tokens_path).create("soon-revoked").token
    assert post_search(lookup_server, token=token).status_code == 200
    code, _, err = run_cli(["tokens", "revoke", "soon-revoked", "--tokens", str(lookup_server.tokens_path)])
    assert code == 0, err
    response = post_search(lookup_server, token=token)
    assert response.status_code == 403
    assert (
        "soon-revoked" in response.json()["error"]["message"]
        and "revoked" in response.json()["error"]["message"]
    )
    with (
        LookupClient.open(lookup_server.url, token) as client,
        pytest.raises(LookupAuthError, match="edgeshelf tokens create") as info,
    ):
        client.search(Embedding(unit(lookup_server.dim, 0), lookup_server.space_id))
    assert "HTTP 403" in str(info.value)
    assert post_search(lookup_server).status_code == 200  # other devices are unaffected


def test_rate_limit_is_429_per_token(tmp_path):
    index = build_service_index(tmp_path / "index", count=20, dim=8)
    options = ServiceOptions(rate_per_s=0.2, burst=3, refresh_s=0)
    with start_lookup_server(index.path, tmp_path / "w", options=options) as srv:
        statuses = [post_search(srv).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        response = post_search(srv)
        error = response.json()["error"]
        assert error["code"] == "rate_limited" and "0.2 requests/s (burst 3)" in error["message"]
        assert int(response.headers["retry-after"]) >= 1
        other = TokenStore.open(srv.tokens_path).create("other-device").token
        assert post_search(srv, token=other).status_code == 200  # buckets are per token
        no_retry = LookupOptions(retries=0)
        with (
            LookupClient.open(srv.url, srv.token, no_retry) as client,
            pytest.raises(RateLimitedError, match="rate-limited"),
        ):
            client.search(Embedding(unit(8, 0), srv.space_id))


def test_no_auth_mode_serves_without_tokens(tmp_path):
    from edgeshelf.catalogue.service import create_app

    from tests.fixtures_catalogue_service import serve_app

    index = build_service_index(tmp_path / "index", count=20, dim=8)
    app = create_app(index.path, None, None, ServiceOptions(auth=False, rate_per_s=0, refresh_s=0))
    with serve_app(app) as url, LookupClient.open(url, None) as client:
        result = client.search(Embedding(unit(8, 0), index.space_id), k=3)
        assert len(result) == 3
    with pytest.raises(InvalidInputError, match="needs a token file"):
        create_app(index.path, None, None, ServiceOptions())
    with pytest.raises(FileNotFoundError, match="edgeshelf tokens create"):
        create_app(index.path, tmp_path / "absent.json", None, ServiceOptions())
