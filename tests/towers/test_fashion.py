"""The fashion protocol's evaluation on a small subset of the real catalogue (no full training)."""

from __future__ import annotations

import pytest
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.towers.fashion import build_protocol, check_split, evaluate_fashion, training_queries

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def protocol(fashion_catalogue):
    return build_protocol(fashion_catalogue, seed=0, max_queries_per_kind=4)


def test_fashion_evaluation_runs_every_kind_beside_bm25_and_the_peer(
    tiny_towers, fashion_catalogue, protocol, shared_data
):
    peer = shared_data / "models" / "mobilenet_v3_small_075_224_embedder.tflite"
    reports = evaluate_fashion(tiny_towers.towers, fashion_catalogue, protocol, peer_model=peer)
    towers, bm25, mediapipe = reports
    assert towers.kinds == ("clean", "noisy", "image", "text_to_image")
    assert all(row.queries == 4 for row in towers.rows)
    assert bm25.kinds == ("clean", "noisy") and any("text_to_image" in n for n in bm25.notes)
    assert mediapipe.system == "mediapipe-embedder" and mediapipe.kinds == ("image",)
    # the raw MediaPipe features find same-articleType products well (0.747 on the full set)
    assert mediapipe.kind("image").p_at_5 >= 0.4
    assert bm25.kind("clean").recall_at_10 > 0.3


def test_training_queries_use_train_products_only(fashion_catalogue, protocol):
    queries = training_queries(fashion_catalogue, protocol)
    test_ids = set(protocol.test_ids)
    assert queries and all(not (set(q.relevant) & test_ids) for q in queries)
    assert {q.kind for q in queries} == {"clean", "noisy", "text_to_image"}


def test_evaluating_on_another_split_is_refused(fashion_catalogue, protocol):
    meta = {"training": {"protocol": {"name": "fashion", "seed": 7, "test_fraction": 0.3}}}
    with pytest.raises(InvalidInputError, match="--seed 7"):
        check_split(meta, protocol, "x")
    assert check_split({"training": {"catalogue_fingerprint": "abc"}}, protocol, "abc")[0].startswith(
        "towers were trained on the whole catalogue"
    )
