"""Every bad input gets a 4xx whose message names the problem (never a 5xx)."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from tests.catalogue_service.helpers import b64, post_search, search_body, unit

DIM = 64


def _vec(values) -> str:
    return b64(np.asarray(values, "<f4"))


def _nan_vector() -> str:
    v = unit(DIM, 1)
    v[5] = np.nan
    return _vec(v)


def _inf_vector() -> str:
    v = unit(DIM, 1)
    v[0] = np.inf
    v[1] = -np.inf
    return _vec(v)


# (name, overrides of a valid body, status, error code, phrases the message must contain)
BAD_BODIES = [
    (
        "dimension too small",
        {"vector": _vec(unit(DIM - 1, 1))},
        422,
        "wrong_dimension",
        ["expected dimension 64", "got 63"],
    ),
    (
        "dimension too large",
        {"vector": _vec(unit(DIM + 1, 1))},
        422,
        "wrong_dimension",
        ["expected dimension 64", "got 65"],
    ),
    (
        "float16 dimension",
        {"dtype": "float16", "vector": b64(unit(32, 1).astype("<f2"))},
        422,
        "wrong_dimension",
        ["got 32 float16"],
    ),
    (
        "float32 bytes as int8",
        {"dtype": "int8", "scale": 0.01},
        422,
        "wrong_dimension",
        ["expected dimension 64", "got 256 int8"],
    ),
    (
        "ragged bytes",
        {"vector": base64.b64encode(b"\0" * 255).decode()},
        422,
        "wrong_dimension",
        ["255 bytes", "float32"],
    ),
    ("empty vector", {"vector": ""}, 422, "wrong_dimension", ["got 0 float32"]),
    ("NaN value", {"vector": _nan_vector()}, 422, "non_finite", ["NaN or infinite", "1 NaN"]),
    ("infinite values", {"vector": _inf_vector()}, 422, "non_finite", ["2 NaN or infinite"]),
    (
        "float16 overflow to inf",
        {"dtype": "float16", "vector": b64(np.full(DIM, np.inf, "<f2"))},
        422,
        "non_finite",
        ["64 NaN or infinite"],
    ),
    (
        "unknown dtype",
        {"dtype": "float64"},
        422,
        "unknown_dtype",
        ["dtype", "'float32', 'float16' or 'int8'", '"float64"'],
    ),
    ("dtype wrong type", {"dtype": 8}, 422, "unknown_dtype", ["dtype", "8"]),
    (
        "other space",
        {"space_id": "0000aaaa0000bbbb"},
        409,
        "space_mismatch",
        ["0000aaaa0000bbbb", "5e71ce0000c0ffee"],
    ),
    ("space id too long", {"space_id": "x" * 65}, 422, "invalid_field", ["space_id", "at most 64"]),
    (
        "space id wrong type",
        {"space_id": 12},
        422,
        "wrong_type",
        ["space_id", "expected a string", "12 (int)"],
    ),
    ("k zero", {"k": 0}, 422, "k_out_of_range", ["k: expected an integer in 1..1000", "got 0"]),
    ("k negative", {"k": -3}, 422, "k_out_of_range", ["got -3"]),
    ("k too large", {"k": 1001}, 422, "k_out_of_range", ["1..1000", "got 1001"]),
    ("k as string", {"k": "10"}, 422, "wrong_type", ["k: expected an integer", '"10" (str)']),
    ("k as float", {"k": 2.5}, 422, "wrong_type", ["k: expected an integer", "2.5"]),
    ("k as bool", {"k": True}, 422, "wrong_type", ["k: expected an integer", "true (bool)"]),
    ("malformed base64", {"vector": "not base64!!"}, 422, "bad_base64", ["vector", "malformed base64"]),
    ("base64 bad padding", {"vector": "AAA"}, 422, "bad_base64", ["malformed base64"]),
    ("vector as list", {"vector": [0.1] * DIM}, 422, "wrong_type", ["vector: expected a string", "list"]),
    (
        "int8 without scale",
        {"dtype": "int8", "vector": b64(np.ones(DIM, np.int8))},
        422,
        "missing_scale",
        ["scale", "int8"],
    ),
    (
        "int8 zero scale",
        {"dtype": "int8", "vector": b64(np.ones(DIM, np.int8)), "scale": 0.0},
        422,
        "bad_scale",
        ["scale", "> 0", "got 0.0"],
    ),
    ("scale with float32", {"scale": 0.5}, 422, "unexpected_scale", ["only for dtype int8"]),
    ("audio field", {"audio": "UklGRg=="}, 422, "unknown_field", ["audio", "only embeddings"]),
    ("image field", {"image": "iVBORw0K"}, 422, "unknown_field", ["image", "only embeddings"]),
    ("query text field", {"text": "red running shoes"}, 422, "unknown_field", ["text", "only embeddings"]),
    (
        "unknown filter",
        {"filters": {"brand": "x"}},
        422,
        "unknown_field",
        ["filters.brand", "category, min_price, max_price"],
    ),
    (
        "filter price as string",
        {"filters": {"max_price": "cheap"}},
        422,
        "wrong_type",
        ["filters.max_price", "a number"],
    ),
    (
        "filter category as number",
        {"filters": {"category": 3}},
        422,
        "wrong_type",
        ["filters.category: expected a string or a list", "got 3 (int)"],
    ),
    ("filters not an object", {"filters": "Shoes"}, 422, "wrong_type", ["filters", "a JSON object"]),
]


@pytest.mark.parametrize(
    "overrides,status,code,phrases", [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES]
)
def test_bad_body_is_a_named_4xx(lookup_server, overrides, status, code, phrases):
    response = post_search(lookup_server, search_body(lookup_server, **overrides))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    for phrase in phrases:
        assert phrase in error["message"], (phrase, error["message"])


def test_space_mismatch_names_both_ids_in_fields(lookup_server):
    response = post_search(lookup_server, search_body(lookup_server, space_id="0000aaaa0000bbbb"))
    error = response.json()["error"]
    assert (error["expected"], error["actual"], error["field"]) == (
        lookup_server.space_id,
        "0000aaaa0000bbbb",
        "space_id",
    )


@pytest.mark.parametrize("missing", ["space_id", "dtype", "vector"])
def test_missing_field(lookup_server, missing):
    body = search_body(lookup_server)
    del body[missing]
    response = post_search(lookup_server, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "missing_field" and error["field"] == missing
    assert f"{missing}: required field is missing" in error["message"]


# (name, raw body, content type, status, code, phrase)
BAD_RAW = [
    ("malformed JSON", b'{"space_id": ', "application/json", 400, "malformed_json", "malformed JSON"),
    ("not JSON at all", b"hello", "application/json", 400, "malformed_json", "malformed JSON"),
    ("trailing garbage", b'{"k": 1} x', "application/json", 400, "malformed_json", "malformed JSON"),
    ("empty body", b"", "application/json", 400, "empty_body", "expected a JSON object"),
    ("JSON list", b"[1, 2, 3]", "application/json", 422, "wrong_type", "expected a JSON object"),
    ("JSON string", b'"vector"', "application/json", 422, "wrong_type", "expected a JSON object"),
    (
        "NaN literal",
        None,
        "application/json",
        422,
        "wrong_type",
        "filters.min_price: expected a finite number",
    ),
    (
        "form upload",
        b"audio=RIFF....WAVE",
        "application/x-www-form-urlencoded",
        415,
        "not_json",
        "application/json",
    ),
    (
        "multipart upload",
        b"--x\r\ncontent-disposition: form-data; name=image\r\n\r\n\x89PNG\r\n--x--\r\n",
        "multipart/form-data; boundary=x",
        415,
        "not_json",
        "Content-Type",
    ),
    (
        "invalid UTF-8",
        b'{"space_id": "\xff\xfe"}',
        "application/json",
        400,
        "malformed_json",
        "malformed JSON",
    ),
]


@pytest.mark.parametrize(
    "raw,ctype,status,code,phrase", [c[1:] for c in BAD_RAW], ids=[c[0] for c in BAD_RAW]
)
def test_bad_raw_body_is_a_named_4xx(lookup_server, raw, ctype, status, code, phrase):
    if raw is None:  # Python's json module reads NaN; the model must still refuse it
        body = search_body(lookup_server, filters={"min_price": float("nan")})
        raw = json.dumps(body).encode()
        assert b"NaN" in raw
    response = post_search(lookup_server, raw=raw, headers={"content-type": ctype})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert phrase in error["message"]


def test_body_too_large_is_413(lookup_server):
    big = search_body(lookup_server, vector="A" * (70 * 1024))
    response = post_search(lookup_server, big)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "body_too_large"
    assert "at most 65536 bytes" in error["message"]


def test_streamed_body_too_large_is_413(lookup_server):
    def chunks():
        yield b'{"vector": "'
        for _ in range(100):
            yield b"A" * 1024
        yield b'"}'

    response = httpx.post(
        f"{lookup_server.url}/v1/search",
        content=chunks(),
        headers={"authorization": f"Bearer {lookup_server.token}", "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "more than 65536" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "method,path,status,code,phrase",
    [
        ("GET", "/v1/shards/bad%20name", 422, "bad_shard_name", "shard name"),
        ("GET", "/v1/shards/..%2F..%2Fetc%2Fpasswd", 404, "not_found", "no endpoint"),
        ("GET", "/v1/shards/all.shard", 422, "bad_shard_name", "without the .shard suffix"),
        ("GET", "/v1/shards/nope", 404, "unknown_shard", "available: all"),
        ("GET", "/v1/shards/all/delta?from_version=-1", 422, "invalid_field", "from_version"),
        ("GET", "/v1/shards/all/delta?from_version=abc", 422, "invalid_field", "from_version"),
        ("GET", "/v1/shards/all/delta", 422, "missing_field", "from_version: required"),
        ("GET", "/v1/search", 405, "method_not_allowed", "Method Not Allowed"),
        ("GET", "/v1/upload", 404, "not_found", "no endpoint /v1/upload"),
        ("POST", "/v1/upload", 404, "not_found", "no endpoint"),
        ("GET", "/metrics?format=xml", 422, "bad_value", "format"),
    ],
)
def test_bad_paths_and_queries(lookup_server, method, path, status, code, phrase):
    response = httpx.request(
        method, f"{lookup_server.url}{path}", headers={"authorization": f"Bearer {lookup_server.token}"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert phrase in error["message"]


def test_no_bad_input_ever_became_a_5xx(lookup_server):
    post_search(lookup_server, raw=b"\x00\x01", headers={"content-type": "application/json"})
    data = httpx.get(f"{lookup_server.url}/metrics", params={"format": "json"}).json()
    statuses = {status for route in data["routes"].values() for status in route["by_status"]}
    assert not [s for s in statuses if s.startswith("5")], data["routes"]
