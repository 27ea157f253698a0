"""`edgeshelf benchmark latency` the way a user runs it (few runs; timings are never asserted)."""

from __future__ import annotations

import json
import sys

import pytest

from edgeshelf.cli import main
from tests.benchmarks.conftest import check_doc as validate

RUNS = ["--runs", "3", "--warmup", "1", "--quiet"]


def _run(tmp_path, *args):
    out = tmp_path / "latency.json"
    assert main(["benchmark", "latency", *args, *RUNS, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    validate(doc)
    return doc


def test_speaker_bundle_with_shard_and_voice(tmp_path, speaker_bundle, bench_shard, bench_wav, capsys):
    doc = _run(
        tmp_path,
        "--bundle", str(speaker_bundle), "--shard", str(bench_shard), "--wav", str(bench_wav),
        "--asr-runs", "1", "--plot", str(tmp_path / "latency.png"),
    )  # fmt: skip
    stages = doc["stages"]
    for stage in (
        "tokenize",
        "encoder.text",
        "fusion",
        "query.text",
        "encoder.audio",
        "query.audio",
        "search",
        "asr",
    ):
        assert stages[stage]["count"] >= 1, stage
    assert stages["query.text"]["count"] == 3 and len(stages["query.text"]["samples_ms"]) == 3
    assert len(doc["warmup_ms"]["query.text"]) == 1
    assert doc["bundle"]["profile"] == "speaker" and doc["bundle"]["quantization"] == "int8"
    assert doc["bundle"]["interpreter"] == "ai_edge_litert" and doc["bundle"]["threads"] == 1
    assert doc["bundle"]["total_bytes"] == sum(doc["bundle"]["model_bytes"].values()) > 0
    assert doc["shard"]["count"] == 200 and doc["shard"]["bytes"] == bench_shard.stat().st_size
    assert doc["asr"]["engine"] == "pocketsphinx" and doc["asr"]["grammar_phrases"] > 0
    assert doc["asr"]["real_time_factor"]["count"] == 1
    probe = doc["memory"]["speaker_runtime"]
    assert probe["peak_rss_bytes"] >= probe["baseline_rss_bytes"] > 0 and probe["queries"] > 0
    assert "no speech model" in probe["includes"]
    assert {g["id"] for g in doc["goals"]} >= {"open_to_first_embedding", "speaker_peak_rss", "asr_rtf"}
    assert all(g["met"] is None for g in doc["goals"] if g["id"].startswith(("text_vs", "image_vs")))
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "query.text" in printed and "goals" in printed


def test_hub_bundle_image_video_without_shard(tmp_path, hub_bundle, sample_catalogue):
    product = next(p for p in sample_catalogue.products if p.video is not None)
    doc = _run(
        tmp_path, "--bundle", str(hub_bundle), "--image", str(product.image), "--video", str(product.video),
        "--text", "red shoes", "--text", "blue shirt", "--no-memory-probe",
    )  # fmt: skip
    for stage in ("image.preprocess", "encoder.image", "query.image", "encoder.video", "query.video"):
        assert doc["stages"][stage]["count"] == 3, stage
    assert "search" not in doc["stages"] and doc["shard"] is None and doc["asr"] is None
    assert doc["inputs"]["texts"] == ["red shoes", "blue shirt"]
    assert doc["memory"]["speaker_runtime"] is None
    goal = next(g for g in doc["goals"] if g["id"] == "image_under_10ms")
    assert goal["met"] is None and "not glasses" in goal["reason"]


def test_vs_compares_pair_by_pair(tmp_path, speaker_bundle, tiny_towers, sample_catalogue_dir):
    doc = _run(
        tmp_path, "--bundle", str(speaker_bundle), "--vs", "--towers", str(tiny_towers.path),
        "--calibration", str(sample_catalogue_dir), "--workdir", str(tmp_path / "vs"), "--no-memory-probe",
    )  # fmt: skip
    cmp = doc["comparison"]
    assert cmp["order"] == ["bundle", "float32_bundle", "keras", "onnx"] and cmp["order_rotates"] is True
    assert (tmp_path / "vs" / "speaker-float32.bundle" / "manifest.json").is_file()
    for query in ("query.text", "query.audio"):
        q = cmp["queries"][query]
        assert set(q["systems"]) == {"bundle", "float32_bundle", "keras", "onnx"}
        assert all(len(s) == 3 for s in q["samples_ms"].values())
        assert set(q["ratios_vs_bundle"]) == {"float32_bundle", "keras", "onnx"}
        # the float peers compute the same function as the Keras towers; int8 is close to it
        assert q["cosine_vs_reference"]["onnx"] > 0.9999
        assert q["cosine_vs_reference"]["float32_bundle"] > 0.9999
        assert q["cosine_vs_reference"]["bundle"] > 0.9
    goals = {g["id"]: g for g in doc["goals"]}
    assert goals["text_vs_keras"]["met"] in (True, False) and goals["text_vs_keras"]["value"] > 0


def _fails(capsys, args, phrase):
    """The CLI reports a library error as one line on stderr with exit status 2."""
    rc = main(["benchmark", "latency", *args])
    err = capsys.readouterr().err
    assert rc == 2 and phrase in err and len(err.strip().splitlines()) == 1, err


def test_vs_needs_towers(speaker_bundle, capsys):
    _fails(capsys, ["--bundle", str(speaker_bundle), "--vs", *RUNS], "--vs needs --towers")


def test_towers_without_vs(speaker_bundle, tiny_towers, capsys):
    _fails(capsys, ["--bundle", str(speaker_bundle), "--towers", str(tiny_towers.path), *RUNS], "add --vs")


def test_vs_without_float32_bundle_or_calibration(speaker_bundle, tiny_towers, capsys):
    args = ["--bundle", str(speaker_bundle), "--vs", "--towers", str(tiny_towers.path)]
    _fails(capsys, [*args, "--vs-systems", "float32_bundle", "--no-memory-probe", *RUNS], "--vs-bundle PATH")


def test_vs_names_the_missing_extra(speaker_bundle, tiny_towers, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as on a device: no TensorFlow
    args = ["--bundle", str(speaker_bundle), "--vs", "--towers", str(tiny_towers.path), "--no-memory-probe"]
    _fails(capsys, [*args, *RUNS], "pip install 'edgeshelf[host]'")


def test_vs_refuses_towers_of_another_space(speaker_bundle, untrained_towers, tmp_path, capsys):
    other = untrained_towers.save(tmp_path / "other-towers")
    args = ["--bundle", str(speaker_bundle), "--vs", "--towers", str(other), "--vs-systems", "keras"]
    _fails(capsys, [*args, "--no-memory-probe", *RUNS], untrained_towers.space_id)


def test_plot_without_matplotlib_fails_before_the_run(speaker_bundle, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _fails(capsys, ["--bundle", str(speaker_bundle), "--plot", str(tmp_path / "x.png"), *RUNS], "matplotlib")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--runs", "0"], "runs must be an integer >= 1"),
        (["--threads", "0"], "threads must be an integer >= 1"),
    ],
)
def test_bad_settings(speaker_bundle, args, phrase, capsys):
    _fails(capsys, ["--bundle", str(speaker_bundle), "--quiet", *args], phrase)


def test_missing_bundle_is_one_line(tmp_path, capsys):
    rc = main(["benchmark", "latency", "--bundle", str(tmp_path / "nope"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1


def test_json_to_stdout(speaker_bundle, capsys):
    rc = main(
        ["benchmark", "latency", "--bundle", str(speaker_bundle), "--no-memory-probe", "--json", "-", *RUNS]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "latency" and doc["settings"]["runs"] == 3
