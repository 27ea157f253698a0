"""Search over the real service: the same top-10 as the device's shard, filters, info, health, metrics."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from edgeshelf.catalogue.index import CatalogueIndex
from edgeshelf.catalogue.service import ServiceOptions
from edgeshelf.catalogue.tokens import TokenStore
from edgeshelf.sdk.lookup import LookupClient, LookupOptions
from edgeshelf.sdk.results import Embedding
from edgeshelf.sdk.shard import Shard

from tests.catalogue_service.helpers import post_search, search_body, unit
from tests.conftest import REPO_ROOT
from tests.fixtures_catalogue_service import build_service_index, free_port, start_lookup_server


@pytest.fixture(scope="module")
def device_shard(lookup_server, tmp_path_factory):
    """The device's copy of shard "all", downloaded from the service and opened."""
    path = tmp_path_factory.mktemp("device") / "all.shard"
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        client.fetch_shard("all", path, expected_space_id=lookup_server.space_id)
    with Shard.open(path, expected_space_id=lookup_server.space_id) as shard:
        yield shard


def _queries(service_index, n: int = 20) -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    out = []
    for i in range(n):
        # near a product (a realistic query) or anywhere (a hard one)
        base = (
            service_index.vectors[rng.integers(len(service_index.vectors))]
            if i % 2
            else np.zeros(64, np.float32)
        )
        q = base + rng.standard_normal(64).astype(np.float32) * (0.3 if i % 2 else 1.0)
        out.append((q / np.linalg.norm(q)).astype(np.float32))
    return out


@pytest.mark.parametrize("wire", ["float32", "float16"])
def test_remote_top10_equals_device_shard_top10(lookup_server, service_index, device_shard, wire):
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        for q in _queries(service_index):
            # the device searches its shard with the vector exactly as the wire carries it
            sent = q.astype(np.float16).astype(np.float32) if wire == "float16" else q
            remote = client.search(Embedding(q, lookup_server.space_id), k=10, dtype=wire)
            local = device_shard.search(Embedding(sent, lookup_server.space_id), k=10)
            assert remote.source == "remote" and local.source == "shard"
            assert remote.ids == local.ids
            np.testing.assert_allclose(remote.scores, local.scores, atol=1e-5)
            assert [h.title for h in remote] == [h.title for h in local]
            assert [h.category for h in remote] == [h.category for h in local]


def test_int8_wire_keeps_most_of_the_top10(lookup_server, service_index, device_shard):
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        overlaps = []
        for q in _queries(service_index):
            remote = client.search(Embedding(q, lookup_server.space_id), k=10, dtype="int8")
            local = device_shard.search(Embedding(q, lookup_server.space_id), k=10)
            overlaps.append(len(set(remote.ids) & set(local.ids)) / 10)
            assert remote.ids[0] == local.ids[0] or overlaps[-1] >= 0.7
    assert np.mean(overlaps) >= 0.9


def test_filters_are_applied_like_the_shard(lookup_server, device_shard):
    q = unit(lookup_server.dim, 3)
    filters = {"category": ["Shoes", "Hats"], "min_price": 20.0, "max_price": 120.0}
    with LookupClient.open(lookup_server.url, lookup_server.token, space_id=lookup_server.space_id) as client:
        remote = client.search(q, k=15, filters=filters, dtype="float32")
    local = device_shard.search(Embedding(q, lookup_server.space_id), k=15, filters=filters)
    assert remote.ids == local.ids
    assert len(remote) == 15
    for hit in remote:
        assert hit.category in ("Shoes", "Hats")
        assert hit.price is not None and 20.0 <= hit.price <= 120.0


@pytest.mark.parametrize("k", [1, 10, 1000])
def test_k_boundaries(lookup_server, k):
    response = post_search(lookup_server, search_body(lookup_server, k=k))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["k"] == k
    assert len(body["hits"]) == k
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["hits"][0]) == {"product_id", "score", "title", "price", "category"}


def test_info_health_and_metrics(lookup_server):
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        info = client.info()
        assert client.space_id == lookup_server.space_id
        health = client.health()
    assert info["space_id"] == lookup_server.space_id
    assert info["dim"] == lookup_server.dim and info["count"] == 2000
    assert info["dtypes"] == ["float32", "float16", "int8"]
    assert "all" in info["shards"]
    assert "only embeddings" in info["privacy"]
    assert health["status"] == "ok" and health["count"] == 2000

    post_search(lookup_server, search_body(lookup_server, k=0))  # one 422 to count
    text = httpx.get(f"{lookup_server.url}/metrics").text
    assert 'edgeshelf_requests_total{route="/v1/search",status="200"}' in text
    assert 'edgeshelf_request_latency_ms{route="/v1/search",quantile="0.99"}' in text
    assert 'edgeshelf_errors_total{code="k_out_of_range"}' in text
    data = httpx.get(f"{lookup_server.url}/metrics", params={"format": "json"}).json()
    search = data["routes"]["/v1/search"]
    assert search["by_status"]["200"] >= 1
    assert search["latency_ms"]["p50"] > 0
    assert data["errors_by_code"]["k_out_of_range"] >= 1
    assert data["index"]["count"] == 2000


def test_schema_says_only_embeddings(lookup_server):
    schema = httpx.get(f"{lookup_server.url}/openapi.json").json()
    request = schema["components"]["schemas"]["SearchRequest"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]) == {"space_id", "dtype", "vector", "scale", "k", "filters"}
    assert "only embeddings" in request["description"]
    assert "never audio, image or text" in request["properties"]["vector"]["description"]
    assert "only embeddings" in schema["paths"]["/v1/search"]["post"]["description"]
    # no endpoint takes an upload: nothing but JSON bodies, and only /v1/search has one
    bodies = [
        (path, method)
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
        if "requestBody" in op
    ]
    assert bodies == [("/v1/search", "post")]
    assert list(schema["paths"]["/v1/search"]["post"]["requestBody"]["content"]) == ["application/json"]


def test_refresh_picks_up_a_new_generation(tmp_path):
    index = build_service_index(tmp_path / "index", count=50, dim=8)
    with start_lookup_server(
        index.path, tmp_path / "w", options=ServiceOptions(rate_per_s=0, refresh_s=0.2)
    ) as srv:
        assert httpx.get(f"{srv.url}/healthz").json()["count"] == 50
        with CatalogueIndex.open(index.path) as writer:
            writer.upsert([{"id": "new", "title": "New"}], unit(8, 1)[None, :])
        options = LookupOptions(retries=0)
        with LookupClient.open(srv.url, srv.token, options) as client:
            for _ in range(100):
                if client.health()["count"] == 51:
                    break
                time.sleep(0.05)
            assert client.health()["count"] == 51
            result = client.search(Embedding(unit(8, 1), srv.space_id), k=1, dtype="float32")
        assert result.ids == ["new"]


def test_edgeshelf_serve_runs_a_real_server(service_index, tmp_path):
    """``edgeshelf serve`` in its own process: health, a search, and a clean stop on SIGTERM."""
    tokens = tmp_path / "tokens.json"
    token = TokenStore.open(tokens, create=True).create("cli-device").token
    port = free_port()
    code = (
        "import sys; from tests.catalogue_service.helpers import run_cli; sys.exit(run_cli(sys.argv[1:])[0])"
    )
    argv = ["serve", "--index", str(service_index.path), "--port", str(port), "--tokens", str(tokens)]
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "edgeshelf serve exited early"
            assert time.monotonic() < deadline, "edgeshelf serve did not come up in 60 s"
            time.sleep(0.1)
        with LookupClient.open(url, token) as client:
            result = client.search(Embedding(service_index.vectors[7], service_index.space_id), k=3)
        assert result.ids[0] == service_index.ids[7]
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the captured SIGTERM
        assert proc.wait(20) in (0, -15)
