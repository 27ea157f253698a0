"""`edgeshelf convert` the way a user runs it."""

from __future__ import annotations

import json

import pytest
from edgeshelf.sdk.bundle import Bundle

from edgeshelf.cli import main


@pytest.fixture(scope="module")
def towers_dir(converters_towers, tmp_path_factory):
    return converters_towers.save(tmp_path_factory.mktemp("towers") / "towers")


def _args(towers_dir, catalogue, out, *extra):
    return [
        "convert", "--towers", str(towers_dir), "--profile", "speaker", "--calibration", str(catalogue.source),
        "--out", str(out), "--calibration-count", "8", "--heldout-count", "8", *extra,
    ]  # fmt: skip


def test_convert_json(towers_dir, converters_catalogue, tmp_path, capsys):
    out = tmp_path / "speaker"
    rc = main(
        _args(towers_dir, converters_catalogue, out, "--quant", "float32", "--archive", "zip", "--json")
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] is True and report["passed"] is True
    assert report["profile"] == "speaker" and report["quantization"] == "float32"
    assert report["archive"] == str(tmp_path / "speaker.zip")
    assert set(report["models"]) == {"text", "audio", "fusion"}
    assert report["validation"]["query"]["mean"] > 0.999
    with Bundle.open(tmp_path / "speaker.zip") as bundle:
        assert bundle.manifest.space_id == report["space_id"]


def test_gate_failure_exits_2_and_writes_nothing(towers_dir, converters_catalogue, tmp_path, capsys):
    profile = tmp_path / "tiny.json"
    profile.write_text(json.dumps({"name": "tiny", "modalities": ["text"], "size_budget_mb": 0.001}))
    out = tmp_path / "tiny"
    args = _args(towers_dir, converters_catalogue, out, "--quant", "float32", "--json")
    args[args.index("speaker")] = str(profile)
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 2 and not out.exists()
    report = json.loads(captured.out)
    assert report["written"] is False and "budget" in report["error"]
    assert "failed the validation gate" in captured.err
    rc = main([*args, "--force"])
    assert rc == 0 and (out / "manifest.json").is_file()
    assert "forced past the gate" not in capsys.readouterr().out  # --json prints JSON only


def test_unknown_profile_is_one_line(towers_dir, converters_catalogue, tmp_path, capsys):
    args = _args(towers_dir, converters_catalogue, tmp_path / "x")
    args[args.index("speaker")] = "watch"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "expected one of glasses, hub, speaker" in err and "Traceback" not in err
