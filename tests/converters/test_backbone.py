"""Towers over a pretrained TFLite backbone: the bundle carries it as given, the runtime chains it."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from edgeshelf.converters.convert import convert
from edgeshelf.converters.profiles import Profile
from edgeshelf.sdk.bundle import Bundle
from edgeshelf.sdk.encoder import QueryEncoder
from edgeshelf.sdk.preprocess import load_image
from edgeshelf.towers.model import Towers

from tests.converters.helpers import cosine
from tests.fixtures_towers import tiny_config

CAMERA = Profile(name="camera", modalities=("text", "image"), image_size=48, source="test")


def _backbone(path, dtype: str) -> None:
    """A tiny conv feature extractor as .tflite: float [0, 1] input, or uint8 in / uint8 out."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(12)(x))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if dtype == "uint8":
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.random((1, 24, 24, 3), dtype=np.float32)] for _ in range(8)
        )
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    path.write_bytes(converter.convert())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("dtype", "quant", "min_cosine"), [("float32", "int8", 0.9), ("uint8", "float32", 0.999)]
)
def test_backbone_bundle_chains_backbone_and_head(dtype, quant, min_cosine, converters_catalogue, tmp_path):
    backbone = tmp_path / "backbone.tflite"
    _backbone(backbone, dtype)
    towers = Towers.create(replace(tiny_config(), image_backbone=str(backbone)), seed=0)
    assert towers.config.backbone_dim == 12
    report = convert(towers, CAMERA, converters_catalogue, tmp_path / "camera", quant=quant, force=True,
                     calibration_count=8, heldout_count=8)  # fmt: skip
    assert any("image_size 48 ignored" in note for note in report.notes)
    with Bundle.open(report.out) as bundle:
        spec = bundle.manifest.models["image_backbone"]
        assert spec.quantization == "as-given"
        assert spec.sha256 == hashlib.sha256(backbone.read_bytes()).hexdigest()
        assert spec.inputs[0].dtype == dtype and spec.inputs[0].shape == (1, 24, 24, 3)
        assert bundle.manifest.models["image"].inputs[0].shape == (1, 12)
    image = load_image(next(iter(converters_catalogue.products)).image)
    with QueryEncoder.open(report.out) as encoder:
        assert encoder.image_size == 24
        emb = encoder.embed(image=image)
    expected = towers.embed(images=[image])[0]
    assert cosine(emb.vector, expected) > min_cosine


def test_backbone_stays_out_of_bundles_without_images(converters_catalogue, tmp_path):
    backbone = tmp_path / "backbone.tflite"
    _backbone(backbone, "float32")
    towers = Towers.create(replace(tiny_config(), image_backbone=str(backbone)), seed=0)
    report = convert(towers, "speaker", converters_catalogue, tmp_path / "speaker", quant="float32",
                     force=True, calibration_count=8, heldout_count=8)  # fmt: skip
    with Bundle.open(report.out) as bundle:
        assert set(bundle.manifest.models) == {"text", "audio", "fusion"}
    assert "image_backbone" not in report.models
