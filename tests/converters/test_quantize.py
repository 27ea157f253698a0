"""The float-tensor report and the quantization paths (converter and ai-edge-quantizer)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.converters.quantize import (
    ConversionError,
    convert_model,
    float32_bytes,
    float_tensors_report,
    synthetic_audio,
)
from edgeshelf.sdk.bundle import read_manifest
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.litert import ModelRunner


def test_int8_model_report_lists_the_float_tensors_left(hub_bundle):
    manifest = read_manifest(hub_bundle)
    report = float_tensors_report((hub_bundle / "text.tflite").read_bytes())
    assert report.float_ops == ()  # nothing computes in float
    # the padding mask is cast from bool to float, then quantized: one float tensor, reported
    assert [(t.producer.split("#")[0], [c.split("#")[0] for c in t.consumers]) for t in report.tensors] == [
        ("CAST", ["QUANTIZE"])
    ]
    assert manifest.models["text"].float_tensors == report.names
    for role in ("image", "video", "audio", "fusion"):
        assert float_tensors_report((hub_bundle / f"{role}.tflite").read_bytes()).float_ops == (), role


def test_float_model_report_shows_float_compute(converters_towers):
    report = float_tensors_report(float32_bytes("fusion", converters_towers.fusion))
    names = {op.split("#")[0] for op in report.float_ops}
    assert {"FULLY_CONNECTED", "L2_NORMALIZATION"} <= names
    assert any(t.producer == "input" for t in report.tensors)
    assert "float ops" in repr(report)


def _fusion_feeds(towers, n=24, seed=0):
    rng = np.random.default_rng(seed)
    m = towers.config.modality_dim
    return [
        {**{k: rng.standard_normal((1, m)).astype(np.float32) for k in ("text", "image", "video", "audio")},
         "mask": (rng.random((1, 4)) < 0.5).astype(np.float32)}
        for _ in range(n)
    ]  # fmt: skip


def test_ai_edge_quantizer_leaves_float_ops_that_the_report_catches(converters_towers):
    feeds = _fusion_feeds(converters_towers)
    aeq = convert_model("fusion", converters_towers.fusion, "int8", lambda: iter(feeds), engine="aeq")
    assert aeq.engine == "ai-edge-quantizer:static_wi8_ai8"
    assert "L2_NORMALIZATION" in {op.split("#")[0] for op in aeq.float_report.float_ops}
    converter = convert_model("fusion", converters_towers.fusion, "int8", lambda: iter(feeds))
    assert converter.engine == "tflite-converter" and converter.float_report.float_ops == ()
    assert converter.outputs[0].dtype == "int8"


def test_int4_weights_through_ai_edge_quantizer(converters_towers, tmp_path):
    int4 = convert_model("fusion", converters_towers.fusion, "int4")
    assert int4.engine == "ai-edge-quantizer:dynamic_wi4_afp32"
    assert len(int4.data) < len(float32_bytes("fusion", converters_towers.fusion)) / 3
    path = tmp_path / "fusion.tflite"
    path.write_bytes(int4.data)
    feed = _fusion_feeds(converters_towers, n=1)[0]
    expected = np.asarray(
        converters_towers.fusion([feed[k] for k in ("text", "image", "video", "audio", "mask")])
    )
    with ModelRunner.open(path) as runner:
        got = runner.run(feed)[runner.outputs[0].name]
    assert float(np.sum(got * expected)) > 0.95  # both L2-normalised


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"mode": "int3"}, InvalidInputError, "unknown quantization 'int3'"),
        ({"mode": "int8"}, InvalidInputError, "needs representative data"),
        ({"mode": "float16", "engine": "aeq"}, InvalidInputError, "no recipe for 'float16'"),
        ({"mode": "float32", "engine": "tvm"}, InvalidInputError, "unknown engine"),
    ],
)
def test_bad_conversion_requests(converters_towers, kwargs, error, phrase):
    with pytest.raises(error, match=phrase):
        convert_model("fusion", converters_towers.fusion, **kwargs)


def test_conversion_errors_name_the_model(converters_towers):
    def wrong_feeds():
        yield {"nope": np.zeros((1, 3), np.float32)}

    with pytest.raises(ConversionError, match="fusion model to TFLite \\(int8\\) failed"):
        convert_model("fusion", converters_towers.fusion, "int8", wrong_feeds)


def test_synthetic_audio_is_seeded_and_bounded():
    a = synthetic_audio(4, 0.5, np.random.default_rng(3))
    b = synthetic_audio(4, 0.5, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(x.dtype == np.float32 and x.shape == (8000,) and np.abs(x).max() <= 1 for x in a)
