"""Every quantization mode round-trips: convert -> bundle -> QueryEncoder ~ the Keras towers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from edgeshelf.converters.convert import convert
from edgeshelf.sdk.bundle import Bundle
from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder

from tests.converters.helpers import cosine, keras_embedding, raw_queries

# mode -> minimum cosine between the bundle's and the Keras towers' query embeddings
MIN_COSINE = {"float32": 0.999, "float16": 0.999, "dynamic": 0.99, "int8": 0.9}


@pytest.fixture(scope="module")
def hub_bundles(hub_bundle, converters_towers, converters_catalogue, tmp_path_factory):
    out = {"int8": hub_bundle}
    for mode in ("float32", "float16", "dynamic"):
        report = convert(
            converters_towers,
            "hub",
            converters_catalogue,
            tmp_path_factory.mktemp("modes") / f"hub-{mode}",
            quant=mode,
            force=True,
            calibration_count=16,
            heldout_count=16,
        )
        out[mode] = report.out
    return out


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
def test_every_mode_round_trips(mode, hub_bundles, converters_towers, converters_catalogue):
    folder = hub_bundles[mode]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["quantization"] == mode
    assert manifest["space_id"] == converters_towers.space_id
    assert set(manifest["models"]) == {"text", "image", "video", "audio", "fusion"}
    with QueryEncoder.open(folder, EncoderOptions(num_threads=1)) as encoder:
        assert set(encoder.interpreter_names.values()) == {"ai_edge_litert"}
        for query in raw_queries(converters_catalogue):
            emb = encoder.embed(**query)
            assert emb.vector.dtype == np.float32 and emb.vector.shape == (converters_towers.config.dim,)
            assert abs(float(np.linalg.norm(emb.vector)) - 1.0) < 1e-4
            assert emb.space_id == converters_towers.space_id
            sim = cosine(emb.vector, keras_embedding(converters_towers, query))
            assert sim >= MIN_COSINE[mode], f"{mode} {sorted(query)}: cosine {sim:.4f}"


def test_int8_bundle_is_full_integer(hub_bundle):
    with Bundle.open(hub_bundle) as bundle:
        models = bundle.manifest.models
        image_in = models["image"].inputs[0]
        assert (image_in.dtype, image_in.zero_point) == ("uint8", 0)
        assert image_in.scale == pytest.approx(1 / 255, rel=1e-6)
        assert models["text"].inputs[0].dtype == "int32"
        for role in ("image", "video", "audio", "fusion"):
            assert models[role].outputs[0].dtype == "int8", role
        assert bundle.manifest.validation["float_ops"] == {r: [] for r in models}


def test_manifest_records_figures_and_versions(speaker_bundle):
    manifest = json.loads((speaker_bundle / "manifest.json").read_text())
    assert manifest["format"] == "edgeshelf-bundle" and manifest["format_version"] == 1
    assert manifest["profile"]["name"] == "speaker"
    assert manifest["modalities"] == ["text", "audio"]
    assert manifest["embedding"]["metric"] == "ip"
    assert {"edgeshelf", "tensorflow", "ai-edge-litert", "numpy"} <= set(manifest["versions"])
    validation = manifest["validation"]
    for key in ("models", "query", "retrieval", "thresholds", "table", "passed", "forced"):
        assert key in validation
    assert set(validation["models"]) == {"text", "audio", "fusion"}
    assert validation["retrieval"]["top10_overlap"] >= 0.5
    assert manifest["calibration"]["calibration_items"] == 16
    for spec in manifest["models"].values():
        for tensor in spec["inputs"] + spec["outputs"]:
            assert {"name", "shape", "dtype", "scale", "zero_point"} <= set(tensor)
