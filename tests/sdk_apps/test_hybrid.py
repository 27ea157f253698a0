"""HybridSearcher policies over a real shard and the real lookup service (and a dead one)."""

from __future__ import annotations

import pytest
from edgeshelf.sdk import (
    EncoderOptions,
    HybridSearcher,
    InvalidInputError,
    LookupClient,
    LookupOptions,
    QueryEncoder,
    SearchPolicy,
    ServiceError,
    Shard,
    SpaceMismatchError,
)
from edgeshelf.sdk.hybrid import merge_results
from edgeshelf.sdk.results import Hit, SearchResult

from tests.fixtures_catalogue_service import free_port

FAST_FAIL = LookupOptions(retries=0, timeout_s=1.0, connect_timeout_s=0.5)


@pytest.fixture(scope="module")
def embedding(speaker_bundle):
    with QueryEncoder.open(speaker_bundle, EncoderOptions(num_threads=1)) as encoder:
        return encoder.embed(text="black leather boots")


@pytest.fixture
def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("prefer-remote", SearchPolicy.PREFER_REMOTE),
        ("local-only", SearchPolicy.LOCAL_ONLY),
        ("remote-only", SearchPolicy.REMOTE_ONLY),
        ("merge", SearchPolicy.MERGE),
        (SearchPolicy.MERGE, SearchPolicy.MERGE),
    ],
)
def test_policy_names_parse(name, policy):
    assert SearchPolicy.parse(name) is policy


def test_unknown_policy_lists_the_choices():
    with pytest.raises(InvalidInputError, match="unknown search policy 'fastest'.*'prefer-remote'"):
        SearchPolicy.parse("fastest")


@pytest.mark.parametrize(
    ("sides", "policy", "phrase"),
    [
        ((), "prefer-remote", "needs a shard, a lookup client or both"),
        (("client",), "local-only", "'local-only' needs a shard"),
        (("shard",), "remote-only", "'remote-only' needs a lookup client"),
    ],
)
def test_policy_needs_its_sides(apps_shard, apps_server, sides, policy, phrase):
    with Shard.open(apps_shard) as shard, LookupClient.open(apps_server.url, apps_server.token) as client:
        kwargs = {
            "shard": shard if "shard" in sides else None,
            "client": client if "client" in sides else None,
        }
        with pytest.raises(InvalidInputError, match=phrase):
            HybridSearcher(policy=policy, **kwargs)


def test_prefer_remote_answers_from_the_service(apps_shard, apps_server, embedding):
    with HybridSearcher.open(apps_shard, apps_server.url, apps_server.token) as searcher:
        result = searcher.search(embedding, k=5)
        assert result.source == "remote" and len(result) == 5
        assert "offline" not in result.note
        assert searcher.space_id == embedding.space_id


def test_dead_server_falls_back_to_the_shard_and_says_so(apps_shard, dead_url, embedding):
    with HybridSearcher.open(apps_shard, dead_url, "esk_token", lookup_options=FAST_FAIL) as searcher:
        result = searcher.search(embedding, k=5)
    assert result.source == "shard" and len(result) == 5
    assert result.note.startswith("offline: lookup service unreachable")
    assert dead_url in result.note and "answered from the cached shard" in result.note


def test_an_offline_device_stops_asking_the_dead_server_for_a_while(apps_shard, dead_url, embedding):
    sent = []
    options = LookupOptions(retries=0, timeout_s=1.0, connect_timeout_s=0.5, on_request=sent.append)
    with HybridSearcher.open(apps_shard, dead_url, "esk_token", lookup_options=options) as searcher:
        first = searcher.search(embedding, k=5)
        asked = len(sent)
        second = searcher.search(embedding, k=5)
    assert asked >= 1 and len(sent) == asked  # the second query did not go to the network
    assert first.ids == second.ids and second.source == "shard"
    assert "asking the service again in" in second.note
    with HybridSearcher.open(
        apps_shard, dead_url, "esk_token", lookup_options=options, offline_retry_s=0
    ) as searcher:
        sent.clear()
        searcher.search(embedding, k=5)
        searcher.search(embedding, k=5)
    assert len(sent) == 2  # no hold-off: every query tries the service


def test_refused_token_falls_back_to_the_shard_and_says_why(apps_shard, apps_server, embedding):
    with HybridSearcher.open(
        apps_shard, apps_server.url, "esk_00000000_wrong", lookup_options=FAST_FAIL
    ) as searcher:
        result = searcher.search(embedding, k=5)
    assert result.source == "shard"
    assert result.note.startswith("offline: lookup service refused the query (LookupAuthError)")


def test_dead_server_without_a_shard_raises(dead_url, embedding):
    with (
        HybridSearcher.open(url=dead_url, token="esk_token", lookup_options=FAST_FAIL) as searcher,
        pytest.raises(ServiceError, match="unreachable"),
    ):
        searcher.search(embedding)


def test_remote_only_never_falls_back(apps_shard, dead_url, embedding):
    with (
        HybridSearcher.open(apps_shard, dead_url, "t", "remote-only", lookup_options=FAST_FAIL) as searcher,
        pytest.raises(ServiceError),
    ):
        searcher.search(embedding)


def test_local_only_sends_nothing(apps_shard, apps_server, embedding):
    sent = []
    options = LookupOptions(on_request=sent.append)
    with HybridSearcher.open(
        apps_shard, apps_server.url, apps_server.token, "local-only", lookup_options=options
    ) as s:
        result = s.search(embedding, k=3)
    assert result.source == "shard" and sent == []


def test_merge_unions_by_id_with_remote_scores(apps_shard, apps_server, embedding):
    with HybridSearcher.open(apps_shard, apps_server.url, apps_server.token, "merge") as searcher:
        merged = searcher.search(embedding, k=10)
        remote = searcher.client.search(embedding, 10)
    assert len(merged) == 10 and len(set(merged.ids)) == 10
    assert list(merged.scores) == sorted(merged.scores, reverse=True)
    for hit in merged.hits:
        if hit.product_id in remote.ids:
            assert hit.score == pytest.approx(remote.hits[remote.ids.index(hit.product_id)].score)
    assert merged.note.startswith("merged: ")


def test_merge_results_table():
    def result(source, pairs):
        hits = tuple(Hit(pid, score) for pid, score in pairs)
        return SearchResult(hits=hits, source=source, space_id="abcd")

    merged = merge_results(
        result("remote", [("a", 0.9), ("b", 0.5)]), result("shard", [("b", 0.6), ("c", 0.7)]), 3
    )
    assert merged.ids == ["a", "c", "b"]  # b keeps its remote score 0.5
    assert merged.scores.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert merged.source == "remote" and merged.note == "merged: 2 from remote, 1 from shard"
    only_local = merge_results(result("remote", []), result("shard", [("c", 0.7)]), 3)
    assert only_local.source == "shard" and only_local.ids == ["c"]
    with pytest.raises(SpaceMismatchError, match="merging"):
        merge_results(result("remote", []), SearchResult((), "shard", "ffff"), 3)


def test_shard_and_service_of_different_spaces_are_refused(synthetic_shard, apps_server):
    with Shard.open(synthetic_shard) as shard:
        client = LookupClient.open(apps_server.url, apps_server.token, space_id=apps_server.space_id)
        with client, pytest.raises(SpaceMismatchError) as info:
            HybridSearcher(shard, client)
    assert shard.space_id in str(info.value) and apps_server.space_id in str(info.value)


def test_searcher_checks_its_arguments_and_closes_once(apps_shard, embedding):
    searcher = HybridSearcher.open(apps_shard)
    with pytest.raises(InvalidInputError, match="needs an Embedding"):
        searcher.search(embedding.vector)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        searcher.search(embedding, k=0)
    searcher.close()
    searcher.close()
    with pytest.raises(InvalidInputError, match="closed"):
        searcher.search(embedding)
