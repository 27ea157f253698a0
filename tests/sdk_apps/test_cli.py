"""The device apps the way a user runs them: `edgeshelf query | speaker | glasses | hub | inspect`,
the minimal example app, and the lightness of `import edgeshelf.sdk`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeshelf.cli import main
from tests.conftest import REPO_ROOT
from tests.sdk_apps.conftest import VOICE, K


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_query_text_json_against_the_shard(capsys, speaker_bundle, apps_shard):
    data = run_json(
        capsys,
        [
            "query",
            "--bundle",
            str(speaker_bundle),
            "--shard",
            str(apps_shard),
            "--text",
            "red dress",
            "--json",
        ],
    )
    assert data["query"] == "red dress" and data["modalities"] == ["text"]
    assert data["source"] == "shard" and len(data["hits"]) == K
    assert {"embed", "search", "total"} <= set(data["timings_ms"])
    assert set(data["hits"][0]) == {"product_id", "score", "title", "price", "category"}


def test_query_image_with_filters_remote(capsys, hub_bundle, apps_server, sample_catalogue):
    product = sample_catalogue.products[0]
    data = run_json(
        capsys,
        [
            "query", "--bundle", str(hub_bundle), "--image", str(product.image), "--remote", apps_server.url,
            "--token", apps_server.token, "--category", product.category, "-k", "3", "--json",
        ],
    )  # fmt: skip
    assert data["source"] == "remote" and 1 <= len(data["hits"]) <= 3
    assert {h["category"] for h in data["hits"]} == {product.category}


def test_query_wav_and_video(capsys, hub_bundle, apps_shard, sample_catalogue, espeak_wav):
    wav = espeak_wav("leather sandals", voice=VOICE)
    data = run_json(
        capsys,
        ["query", "--bundle", str(hub_bundle), "--shard", str(apps_shard), "--wav", str(wav), "--json"],
    )
    assert data["transcript"]["text"] == "leather sandals" and data["modalities"] == ["text"]
    video = next(q.video for q in sample_catalogue.queries if q.kind == "video")
    data = run_json(
        capsys,
        ["query", "--bundle", str(hub_bundle), "--shard", str(apps_shard), "--video", str(video), "--json"],
    )
    assert data["modalities"] == ["video"] and len(data["hits"]) == K


def test_query_dead_server_falls_back_and_says_so(capsys, speaker_bundle, apps_shard):
    from tests.fixtures_catalogue_service import free_port

    argv = ["query", "--bundle", str(speaker_bundle), "--shard", str(apps_shard), "--text", "blue jeans"]
    argv += ["--remote", f"http://127.0.0.1:{free_port()}", "--token", "esk_x"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "source: shard (offline: lookup service unreachable" in out
    assert "latency: embed" in out


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["--text", "x"], "say where to search"),
        (["--shard", "S"], "give a query"),
        (["--remote", "http://127.0.0.1:9", "--text", "x"], "needs a device token"),
    ],
)
def test_query_argument_errors(capsys, speaker_bundle, monkeypatch, argv, phrase):
    monkeypatch.delenv("EDGESHELF_TOKEN", raising=False)
    assert main(["query", "--bundle", str(speaker_bundle), *argv]) == 2
    assert phrase in capsys.readouterr().err


def test_speaker_wav_prints_transcript_results_and_latency(capsys, speaker_bundle, apps_shard, espeak_wav):
    wav = espeak_wav("suede wallet", voice=VOICE)
    assert (
        main(
            [
                "speaker",
                "--bundle",
                str(speaker_bundle),
                "--shard",
                str(apps_shard),
                "--wav",
                str(wav),
                "--no-say",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith('heard: "suede wallet"')
    assert "  1. " in out and f" {K:>2}. " in out
    assert "latency: decode" in out and "| asr " in out and "| search " in out


def test_speaker_silence_is_an_error_line(capsys, tmp_path, speaker_bundle, apps_shard):
    import wave

    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 16000)
    assert (
        main(["speaker", "--bundle", str(speaker_bundle), "--shard", str(apps_shard), "--wav", str(silent)])
        == 2
    )
    assert "no speech recognised" in capsys.readouterr().err


def test_glasses_camera_file_with_refinement(capsys, hub_bundle, apps_shard, sample_catalogue):
    video = next(p.video for p in sample_catalogue.products if p.video is not None)
    data = run_json(
        capsys,
        [
            "glasses", "--bundle", str(hub_bundle), "--shard", str(apps_shard), "--camera", str(video),
            "--looks", "1", "--refine", "the same in black", "--json",
        ],
    )  # fmt: skip
    assert data["query"] == "black" and data["modalities"] == ["text", "image"]
    assert list(data["timings_ms"])[0] == "capture"


def test_hub_one_shot_fuses_text_and_image(capsys, hub_bundle, apps_shard, sample_catalogue):
    product = sample_catalogue.products[1]
    data = run_json(
        capsys,
        [
            "hub",
            "--bundle",
            str(hub_bundle),
            "--shard",
            str(apps_shard),
            "--image",
            str(product.image),
            "--text",
            "in red",
            "--json",
        ],
    )
    assert data["modalities"] == ["text", "image"] and data["query"] == "red"


def test_hub_interactive_lines(monkeypatch, capsys, hub_bundle, apps_shard, sample_catalogue):
    import io

    video = next(p.video for p in sample_catalogue.products if p.video is not None)
    monkeypatch.setattr(sys, "stdin", io.StringIO("red cotton dress\n:look\n:look in black\n"))
    argv = ["hub", "--bundle", str(hub_bundle), "--shard", str(apps_shard), "--camera", str(video)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("latency: ") == 3
    assert 'query: "red cotton dress"' in out and 'query: "black"' in out
    assert "query modalities: image" in out and "query modalities: text+image" in out


def test_inspect_shard_and_bundle(capsys, apps_shard, speaker_bundle):
    data = run_json(capsys, ["inspect", str(apps_shard), "--json"])
    assert data["kind"] == "shard" and data["count"] == 200 and data["dtype"] == "int8"
    data = run_json(capsys, ["inspect", str(speaker_bundle), "--json"])
    assert data["profile"]["name"] == "speaker" and data["problems"] == []
    assert data["space_id"] == json.loads(json.dumps(data))["space_id"]
    assert main(["inspect", str(speaker_bundle)]) == 0
    assert "space id" in capsys.readouterr().out
    assert main(["inspect", str(apps_shard)]) == 0
    assert "space_id:" in capsys.readouterr().out
    assert main(["inspect", "/no/such/thing"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_minimal_example_app_runs(speaker_bundle, apps_shard):
    script = REPO_ROOT / "examples" / "minimal_app.py"
    done = subprocess.run(
        [sys.executable, str(script), str(speaker_bundle), str(apps_shard), "red cotton dress", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(".")[0] for line in lines[:3]] == ["1", "2", "3"]
    assert lines[3].startswith("embed ") and "search" in lines[3]
    public = {n for n in dir(__import__("edgeshelf.sdk", fromlist=["x"])) if not n.startswith("_")}
    source = Path(script).read_text()
    assert "from edgeshelf.sdk import " in source
    imported = source.split("from edgeshelf.sdk import ")[1].split("\n")[0].replace(" ", "").split(",")
    assert set(imported) <= public


def test_import_sdk_is_light_and_names_resolve():
    code = (
        "import sys, edgeshelf.sdk as s\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'cv2', 'ai_edge_litert', 'vosk', 'pocketsphinx', 'httpx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "names = [getattr(s, n) for n in s.__all__]\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(len(names))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 30
    import edgeshelf.sdk as sdk

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sdk.Nope  # noqa: B018


def test_speaker_interactive_pick_and_learn(
    capsys, monkeypatch, tmp_path, speaker_bundle, apps_shard, espeak_wav, virtual_microphone
):
    """Enter speaks (the virtual microphone), a number picks that result, :learn trains."""
    import io

    import numpy as np
    from edgeshelf.sdk.feedback import FeedbackLog

    from tests.sdk_apps.conftest import pcm16

    pcm = pcm16(espeak_wav("suede wallet", voice=VOICE))
    rate = 16000
    mic = virtual_microphone(
        np.concatenate([np.zeros(rate // 2, np.int16), pcm, np.zeros(2 * rate, np.int16)])
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("\n3\n:learn\n"))
    picks, personal = tmp_path / "picks.npz", tmp_path / "personal.npz"
    argv = ["speaker", "--bundle", str(speaker_bundle), "--shard", str(apps_shard), "--mic", mic]
    assert main([*argv, "--no-say", "--picks", str(picks), "--personal", str(personal)]) == 0
    captured = capsys.readouterr()
    assert 'heard: "suede wallet"' in captured.out
    third = [line for line in captured.out.splitlines() if line.strip().startswith("3. ")][0].split()[1]
    assert f"picked {third}" in captured.err and "personal adapter trained on 1 picks" in captured.err
    with FeedbackLog.open(picks) as log:
        assert log.arrays()[1] == [third]
    assert personal.is_file()
