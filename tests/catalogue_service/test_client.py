"""The device's lookup client: typed errors, retries against a dead port, and privacy."""

from __future__ import annotations

import base64
import json
import re
import socket
from urllib.parse import parse_qsl

import numpy as np
import pytest
from edgeshelf.sdk.errors import InvalidInputError, ServiceError, SpaceMismatchError
from edgeshelf.sdk.lookup import (
    FILTER_KEYS,
    SEARCH_KEYS,
    LookupAuthError,
    LookupClient,
    LookupOptions,
    encode_query,
)
from edgeshelf.sdk.results import Embedding

from tests.catalogue_service.helpers import unit
from tests.fixtures_catalogue_service import free_port


def test_dead_server_is_a_service_error_after_retries():
    url = f"http://127.0.0.1:{free_port()}"
    sent = []
    options = LookupOptions(
        retries=2, backoff_s=0.01, timeout_s=0.5, connect_timeout_s=0.5, on_request=sent.append
    )
    with LookupClient.open(url, "esk_00000000_" + "a" * 43, options) as client:
        with pytest.raises(ServiceError) as info:
            client.search(Embedding(unit(8, 0), "5e71ce0000c0ffee"))
        message = str(info.value)
        assert url in message
        assert "after 3 attempt(s)" in message
        assert "fall back to its cached shard" in message
        assert len(sent) == 3
        with pytest.raises(ServiceError, match="unreachable"):
            client.info()


def test_silent_server_times_out_then_service_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel accepts connections; nobody ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        sent = []
        options = LookupOptions(retries=1, backoff_s=0.01, timeout_s=0.2, on_request=sent.append)
        with LookupClient.open(url, None, options) as client, pytest.raises(ServiceError) as info:
            client.search(np.ones(4, np.float32), space_id="s")
    assert "ReadTimeout" in str(info.value) and "after 2 attempt(s)" in str(info.value)
    assert len(sent) == 2


def test_bad_token_is_an_auth_error_naming_the_fix(lookup_server):
    with (
        LookupClient.open(lookup_server.url, "not-a-token") as client,
        pytest.raises(LookupAuthError) as info,
    ):
        client.search(Embedding(unit(lookup_server.dim, 0), lookup_server.space_id))
    assert "edgeshelf tokens create --device NAME" in str(info.value)
    assert "HTTP 401" in str(info.value)
    assert isinstance(info.value, ServiceError)  # a device may fall back to its shard


def test_other_space_is_a_space_mismatch_naming_both(lookup_server):
    with (
        LookupClient.open(lookup_server.url, lookup_server.token) as client,
        pytest.raises(SpaceMismatchError) as info,
    ):
        client.search(Embedding(unit(lookup_server.dim, 0), "0123456789abcdef"))
    assert info.value.expected == lookup_server.space_id
    assert info.value.actual == "0123456789abcdef"
    assert lookup_server.url in str(info.value)


def test_server_rejection_is_invalid_input(lookup_server):
    with (
        LookupClient.open(lookup_server.url, lookup_server.token) as client,
        pytest.raises(InvalidInputError) as info,
    ):
        client.search(Embedding(unit(lookup_server.dim - 1, 0), lookup_server.space_id))
    assert "expected dimension 64" in str(info.value) and "HTTP 422" in str(info.value)


@pytest.mark.parametrize(
    "embedding,kwargs,phrase",
    [
        (np.full(8, np.nan, np.float32), {"space_id": "s"}, "NaN or infinite"),
        (np.zeros((2, 8), np.float32), {"space_id": "s"}, "float32 [dim]"),
        (np.arange(8), {"space_id": "s"}, "floating point"),
        (np.ones(8, np.float32), {}, "space id"),
        (np.ones(8, np.float32), {"space_id": "s", "k": 0}, "k must be an integer >= 1"),
        (np.ones(8, np.float32), {"space_id": "s", "dtype": "float64"}, "dtype 'float64'"),
        (np.ones(8, np.float32), {"space_id": "s", "filters": {"brand": "x"}}, "unknown filter"),
    ],
)
def test_local_validation_sends_nothing(embedding, kwargs, phrase):
    sent = []
    options = LookupOptions(on_request=sent.append)
    with (
        LookupClient.open("http://127.0.0.1:9", None, options) as client,
        pytest.raises(InvalidInputError, match=re.escape(phrase)),
    ):
        client.search(embedding, **kwargs)
    assert sent == []


def test_options_and_url_are_checked():
    with pytest.raises(InvalidInputError, match="http:// or https://"):
        LookupClient.open("127.0.0.1:8080", None)
    with pytest.raises(InvalidInputError, match="printable ASCII"):
        LookupClient.open("http://127.0.0.1:8080", "esk_x y")
    with (
        LookupClient.open("http://127.0.0.1:9", None) as client,
        pytest.raises(InvalidInputError, match="shard name"),
    ):
        client.update_shard("../etc/passwd", "/tmp/x.shard", "s")
    with pytest.raises(InvalidInputError, match="retries"):
        LookupOptions(retries=-1)
    with pytest.raises(InvalidInputError, match="timeout_s"):
        LookupOptions(timeout_s=0)
    client = LookupClient.open("http://127.0.0.1:9", None)
    client.close()
    client.close()
    with pytest.raises(InvalidInputError, match="closed"):
        client.search(np.ones(4, np.float32), space_id="s")


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_encode_query_round_trips(dtype):
    v = unit(64, 5)
    data, scale = encode_query(v, dtype)
    raw = base64.b64decode(data)
    wire = {"float32": "<f4", "float16": "<f2", "int8": "i1"}[dtype]
    back = np.frombuffer(raw, wire).astype(np.float32) * (scale if scale is not None else 1.0)
    assert back.shape == (64,)
    np.testing.assert_allclose(back, v, atol={"float32": 0, "float16": 1e-3, "int8": 1e-2}[dtype])
    assert (scale is None) == (dtype != "int8")


def test_privacy_no_request_carries_audio_image_or_text(lookup_server, tmp_path):
    """Everything the SDK sends: only an embedding, a space id, k and metadata filters."""
    sent = []
    query_text = "red leather running shoes under fifty"
    embedding = Embedding(unit(lookup_server.dim, 9), lookup_server.space_id, modalities=("text", "audio"))
    options = LookupOptions(on_request=sent.append)
    with LookupClient.open(lookup_server.url, lookup_server.token, options) as client:
        for dtype in ("float32", "float16", "int8"):
            client.search(embedding, k=5, dtype=dtype)
        client.search(embedding, k=3, filters={"category": "Shoes", "max_price": 50})
        client.search(embedding.vector, k=3, space_id=lookup_server.space_id)
        client.info()
        client.update_shard("all", tmp_path / "all.shard", lookup_server.space_id)
        client.update_shard("all", tmp_path / "all.shard", lookup_server.space_id)
    assert len(sent) >= 8
    allowed_headers = {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "authorization",
        "content-length",
        "content-type",
        "if-none-match",
    }
    for request in sent:
        assert set(request.headers.keys()) <= allowed_headers, request.headers
        assert dict(parse_qsl(request.url.query.decode())).keys() <= {"from_version"}
        raw = request.content
        assert query_text.encode() not in raw and b"RIFF" not in raw and b"\x89PNG" not in raw
        if request.method != "POST":
            assert raw == b""
            continue
        assert request.url.path == "/v1/search"
        body = json.loads(raw)
        assert set(body) <= set(SEARCH_KEYS), body.keys()
        assert {"space_id", "dtype", "vector", "k"} <= set(body)
        assert set(body.get("filters", {})) <= set(FILTER_KEYS)
        assert body["space_id"] == lookup_server.space_id
        wire = {"float32": "<f4", "float16": "<f2", "int8": "i1"}[body["dtype"]]
        values = np.frombuffer(base64.b64decode(body["vector"]), wire).astype(np.float32) * body.get(
            "scale", 1.0
        )
        assert values.shape == (lookup_server.dim,)  # the vector is the embedding and nothing else
        np.testing.assert_allclose(values, embedding.vector, atol=1e-2)
        assert all(isinstance(body[key], (str, int, float, dict)) for key in body)
