"""The validation gate: a broken quantization is refused; --force writes it with the failure."""

from __future__ import annotations

import json

import pytest
from edgeshelf.converters.convert import GateFailedError, convert
from edgeshelf.converters.profiles import Profile
from edgeshelf.converters.validate import CosineStats, GateThresholds, RetrievalFigures, judge
from edgeshelf.sdk.errors import InvalidInputError

TEXT_ONLY = Profile(name="text-only", modalities=("text",), source="test")


def test_zero_calibration_is_rejected_and_nothing_written(converters_towers, converters_catalogue, tmp_path):
    out = tmp_path / "broken"
    with pytest.raises(GateFailedError) as err:
        convert(
            converters_towers, TEXT_ONLY, converters_catalogue, out, quant="int8",
            calibration_count=16, heldout_count=16, calibration_data="zeros",
        )  # fmt: skip
    assert "failed the validation gate" in str(err.value) and "--force" in str(err.value)
    assert not out.exists()
    report = err.value.report
    assert not report.written and not report.passed
    assert any(f.startswith("text model") for f in report.validation.failures), report.validation.failures
    assert "FAIL" in report.summary() and "NOT written" in report.summary()

    forced = convert(
        converters_towers, TEXT_ONLY, converters_catalogue, out, quant="int8", force=True,
        calibration_count=16, heldout_count=16, calibration_data="zeros",
    )  # fmt: skip
    assert forced.written and forced.forced and not forced.passed
    validation = json.loads((out / "manifest.json").read_text())["validation"]
    assert validation["passed"] is False and validation["forced"] is True
    assert validation["failures"] == list(forced.validation.failures)
    assert "gate: FAILED" in validation["table"]


def test_sound_calibration_passes_a_lenient_gate(converters_towers, converters_catalogue, tmp_path):
    lenient = GateThresholds(min_model_cosine_mean=0.9, min_model_cosine_p5=0.8, min_query_cosine_mean=0.9,
                             min_query_cosine_p5=0.8, min_top10_overlap=0.5, max_recall_drop=0.1, max_ndcg_drop=0.1)  # fmt: skip
    report = convert(
        converters_towers, TEXT_ONLY, converters_catalogue, tmp_path / "ok", quant="int8",
        calibration_count=16, heldout_count=16, thresholds=lenient,
    )  # fmt: skip
    assert report.passed and report.written and not report.forced
    assert report.validation.models["text"].mean > 0.95


def _figures(**kw):
    base = {
        "quantization": "int8",
        "models": {"text": CosineStats(0.99, 0.97, 0.9, 10)},
        "query": CosineStats(0.99, 0.97, 0.9, 10),
        "retrieval": RetrievalFigures(10, 20, 20, "labelled queries", 0.9, 0.5, 0.49, 0.4, 0.39),
        "float_ops": {"text": ()},
        "size_bytes": 1_000_000,
        "size_budget_mb": 3.0,
        "thresholds": GateThresholds(),
    }
    base.update(kw)
    return judge(**base)


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({}, None),
        ({"models": {"text": CosineStats(0.97, 0.97, 0.9, 10)}}, "text model cosine mean 0.9700 < 0.98"),
        ({"query": CosineStats(0.99, 0.90, 0.9, 10)}, "query embedding cosine p5 0.9000 < 0.95"),
        (
            {"retrieval": RetrievalFigures(10, 20, 20, "q", 0.7, 0.5, 0.5, 0.4, 0.4)},
            "top-10 overlap 0.7000 < 0.8",
        ),
        (
            {"retrieval": RetrievalFigures(10, 20, 20, "q", 0.9, 0.5, 0.46, 0.4, 0.4)},
            "recall@10 drop 0.0400 > 0.03",
        ),
        ({"float_ops": {"fusion": ("L2_NORMALIZATION#12",)}}, "1 float ops left in the int8 models"),
        ({"size_bytes": 3_500_000}, "bundle size 3.500 MB > the profile's budget 3.0 MB"),
    ],
)
def test_judge_table(change, phrase):
    report = _figures(**change)
    if phrase is None:
        assert report.passed and "gate: PASSED" in report.table()
    else:
        assert not report.passed
        assert any(phrase in f for f in report.failures), report.failures
        assert "FAIL" in report.table()


def test_float_ops_only_count_for_int8():
    assert _figures(quantization="dynamic", float_ops={"text": ("FULLY_CONNECTED#3",)}).passed


def test_thresholds_overrides():
    assert GateThresholds().updated({"min_top10_overlap": 0.5}).min_top10_overlap == 0.5
    with pytest.raises(InvalidInputError, match="unknown gate thresholds"):
        GateThresholds().updated({"min_overlap": 0.5})
