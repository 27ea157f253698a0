"""Device profiles are data: built-ins, user files, validation."""

from __future__ import annotations

import json

import pytest
from edgeshelf.converters.convert import convert
from edgeshelf.converters.profiles import builtin_profiles, load_profile
from edgeshelf.sdk.bundle import Bundle
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError
from edgeshelf.sdk.preprocess import PreprocessConfig


@pytest.mark.parametrize(
    ("name", "models", "quant", "threads", "budget"),
    [
        ("speaker", ("text", "audio", "fusion"), "int8", 1, 3.0),
        ("glasses", ("text", "image", "fusion"), "int8", 2, 8.0),
        ("hub", ("text", "image", "video", "audio", "fusion"), "int8", 4, 24.0),
    ],
)
def test_builtin_profiles(name, models, quant, threads, budget):
    profile = load_profile(name)
    assert (profile.models, profile.quantization, profile.threads, profile.size_budget_mb) == (
        models,
        quant,
        threads,
        budget,
    )
    assert profile.source == "built-in"


def test_glasses_run_low_resolution_images():
    pre = load_profile("glasses").preprocess_for(PreprocessConfig())
    assert pre.image.size == 64 and pre.text == PreprocessConfig().text


def test_unknown_profile_lists_valid_names():
    assert builtin_profiles() == ("glasses", "hub", "speaker")
    with pytest.raises(
        InvalidInputError, match="unknown profile 'watch': expected one of glasses, hub, speaker"
    ):
        load_profile("watch")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_profile("/nowhere/watch.json")


def test_video_brings_the_image_encoder(tmp_path):
    path = tmp_path / "doorbell.json"
    path.write_text(json.dumps({"name": "doorbell", "towers": ["video"], "threads": 2}))
    assert load_profile(path).models == ("image", "video", "fusion")


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        ({"name": "x", "modalities": ["smell"]}, "modalities must be a non-empty subset"),
        ({"name": "x", "modalities": []}, "modalities must be a non-empty subset"),
        ({"name": "x", "modalities": ["text"], "quantization": "int3"}, "quantization must be one of"),
        ({"name": "x", "modalities": ["text"], "threads": 0}, "threads must be an integer >= 1"),
        ({"name": "x", "modalities": ["text"], "inputs": {"image_size": 4}}, "image_size must be in"),
        ({"name": "x", "modalities": ["text"], "inputs": {"resolution": 64}}, "unknown inputs"),
        ({"name": "x", "modalities": ["text"], "colour": "red"}, "unknown keys"),
        ({"name": "x", "modalities": ["text"], "gate": {"overlap": 1}}, "unknown gate keys"),
        ({"modalities": ["text"]}, "'name' is required"),
        ({"name": "x"}, "'modalities' is required"),
    ],
)
def test_bad_profile_files(tmp_path, data, phrase):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match=phrase):
        load_profile(path)


def test_profile_from_a_user_file_drives_the_bundle(converters_towers, converters_catalogue, tmp_path):
    path = tmp_path / "kiosk.json"
    path.write_text(
        json.dumps(
            {
                "name": "kiosk",
                "description": "a shop kiosk with a keyboard",
                "modalities": ["text"],
                "quantization": "float32",
                "threads": 3,
                "size_budget_mb": 8.0,
                "inputs": {"max_tokens": 8},
                "gate": {"min_top10_overlap": 0.5},
            }
        )
    )
    report = convert(
        converters_towers,
        path,
        converters_catalogue,
        tmp_path / "kiosk",
        calibration_count=8,
        heldout_count=8,
    )
    assert report.quantization == "float32" and report.profile == "kiosk"
    assert report.validation.thresholds.min_top10_overlap == 0.5
    with Bundle.open(report.out) as bundle:
        m = bundle.manifest
        assert m.profile["name"] == "kiosk" and m.profile["source"] == str(path)
        assert m.runtime["num_threads"] == 3
        assert m.preprocess["text"]["max_tokens"] == 8
        assert m.models["text"].inputs[0].shape == (1, 8)
        assert set(m.models) == {"text", "fusion"}
