"""`edgeshelf benchmark quality` on the sample catalogue (few queries; scores are not judged here)."""

from __future__ import annotations

import json

import pytest
from edgeshelf.benchmarks.quality import QualityOptions
from edgeshelf.sdk.errors import InvalidInputError

from edgeshelf.cli import main
from tests.benchmarks.conftest import check_doc as validate


def test_float_bundles_bm25_voice(
    tmp_path, tiny_towers, sample_catalogue_dir, speaker_bundle, hub_bundle, espeak_wav
):
    out = tmp_path / "quality.json"
    rc = main(
        ["benchmark", "quality", "--towers", str(tiny_towers.path), "--catalogue", str(sample_catalogue_dir),
         "--bundle", str(speaker_bundle), "--bundle", str(hub_bundle), "--max-queries", "4", "--voice", "2",
         "--json", str(out), "--plot", str(tmp_path / "q.png"), "--quiet"]
    )  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    validate(doc)
    systems = doc["systems"]
    assert set(systems) == {"float", "speaker-int8", "hub-int8", "bm25"}
    assert systems["float"]["type"] == "towers" and systems["bm25"]["type"] == "bm25"
    kinds = set(doc["kinds"])
    assert {"clean", "noisy", "image", "text_to_image", "voice"} <= kinds
    assert set(systems["float"]["kinds"]) == kinds
    assert "image" not in systems["speaker-int8"]["kinds"]  # text + audio only
    assert any("not applicable to image" in n for n in systems["speaker-int8"]["notes"])
    assert "image" in systems["hub-int8"]["kinds"] and "video" in systems["hub-int8"]["kinds"]
    assert "text_to_image" not in systems["bm25"]["kinds"]
    for name in ("speaker-int8", "hub-int8"):
        cos = doc["quantization"][name]["kinds"]["clean"]
        assert cos["count"] == doc["kinds"]["clean"]["queries"] and 0.5 < cos["mean"] <= 1.0 + 1e-6
    assert doc["voice"]["spoken"] == 2 and doc["voice"]["grammar_phrases"] > 0
    for row in systems["float"]["kinds"].values():
        assert 0.0 <= row["ndcg_at_10"] <= 1.0 and 0.0 <= row["recall_at_10"] <= 1.0
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


def test_fashion_protocol_with_peer(tmp_path, shared_data, tiny_towers):
    """The real-data path: the fashion protocol's kinds and the MediaPipe peer (tiny towers, so
    the figures are meaningless here; the point is that the path runs on the real files)."""
    peer = shared_data / "models" / "mobilenet_v3_small_075_224_embedder.tflite"
    rc = main(
        ["benchmark", "quality", "--towers", str(tiny_towers.path), "--catalogue",
         str(shared_data / "catalogue" / "fashion" / "products.csv"), "--columns", "fashion", "--protocol", "fashion",
         "--peer", str(peer), "--max-queries", "3", "--voice", "0", "--json", str(tmp_path / "f.json"), "--quiet"]
    )  # fmt: skip
    assert rc == 0
    doc = json.loads((tmp_path / "f.json").read_text())
    validate(doc)
    assert set(doc["kinds"]) == {"clean", "noisy", "image", "text_to_image"}
    assert doc["kinds"]["text_to_image"]["titles_hidden"] is True
    assert doc["catalogue"]["protocol"]["protocol"] == "fashion"
    assert set(doc["systems"]["mediapipe-embedder"]["kinds"]) == {"image"}
    assert any("not trained with this protocol" in n for n in doc["notes"])


def test_bundle_of_another_space(tmp_path, untrained_towers, sample_catalogue_dir, speaker_bundle, capsys):
    other = untrained_towers.save(tmp_path / "other")
    rc = main(
        ["benchmark", "quality", "--towers", str(other), "--catalogue", str(sample_catalogue_dir),
         "--bundle", str(speaker_bundle), "--voice", "0", "--max-queries", "1", "--no-bm25", "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and untrained_towers.space_id in err


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"protocol": "esci"}, "protocol must be 'fashion' or None"),
        ({"max_queries_per_kind": 0}, "max_queries_per_kind must be >= 1"),
        ({"voice_queries": -1}, "voice_queries must be >= 0"),
        ({"threads": 0}, "threads must be >= 1"),
    ],
)
def test_bad_options(changes, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        QualityOptions(**changes)
