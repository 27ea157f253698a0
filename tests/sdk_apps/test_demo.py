"""`edgeshelf demo`: the README's main command, end to end on a small catalogue, then cached."""

from __future__ import annotations

import json

import pytest

from edgeshelf.cli import main


@pytest.mark.slow
def test_demo_builds_everything_then_answers_from_the_cache(tmp_path, capsys):
    work = tmp_path / "demo"
    argv = [
        "demo",
        "--workdir",
        str(work),
        "--products",
        "200",
        "--epochs",
        "2",
        "--text-warmup-epochs",
        "0",
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # the steps' own output went to stderr
    built = report["build_seconds"]
    assert list(built) == [
        "sample catalogue",
        "train towers",
        "convert speaker bundle (int8)",
        "build catalogue index",
        "cut device shard",
    ]
    assert all(seconds > 0 for seconds in built.values())
    for name in ("catalogue", "towers", "speaker.bundle", "catalogue.index", "catalogue.shard", "query.wav"):
        assert (work / name).exists(), name
    query, answer = report["query"], report["answer"]
    assert query["spoken"] is True
    assert answer["transcript"]["text"] == query["words"]
    assert len(answer["hits"]) == 10 and answer["source"] == "shard"
    assert [s for s in answer["timings_ms"] if "." not in s] == ["decode", "asr", "embed", "search", "total"]
    assert "[5/5] cut device shard: done" in captured.err
    assert set(report["bundle_gate"]) == {"passed", "forced", "failures"}

    # second run: everything cached, same answer, readable output
    assert (
        main(
            [
                "demo",
                "--workdir",
                str(work),
                "--products",
                "200",
                "--epochs",
                "2",
                "--text-warmup-epochs",
                "0",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "[2/5] train towers: cached" in captured.err
    assert f'heard:   "{query["words"]}"' in captured.out
    assert "latency: decode" in captured.out and "| asr " in captured.out
    assert "built:" not in captured.out  # nothing was rebuilt

    # an interrupted last step (output there, not recorded as done) is redone, alone
    from edgeshelf.demo import STAMP, DemoConfig, build

    stamp = json.loads((work / STAMP).read_text())
    assert (
        stamp["config"] == DemoConfig(products=200, epochs=2, text_warmup_epochs=0).to_dict()
        and len(stamp["done"]) == 5
    )
    stamp["done"].remove("cut device shard")
    (work / STAMP).write_text(json.dumps(stamp))
    logs: list[str] = []
    seconds = build(work, DemoConfig(products=200, epochs=2, text_warmup_epochs=0), log=logs.append)
    assert [name for name, s in seconds.items() if s > 0] == ["cut device shard"]
    assert "[4/5] build catalogue index: cached" in " ".join(logs)


def test_demo_checks_its_arguments(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--products", "10"]) == 2
    assert "--products must be >= 50" in capsys.readouterr().err
    assert main(["demo", "--workdir", str(tmp_path), "--epochs", "0"]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
