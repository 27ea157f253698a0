"""`edgeshelf train` and `edgeshelf evaluate` as a user calls them."""

from __future__ import annotations

import json

import pytest

from edgeshelf.cli import main


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_train_then_evaluate_json(sample_catalogue_dir, tmp_path, capsys):
    out = tmp_path / "towers"
    args = ["train", "--catalogue", str(sample_catalogue_dir), "--out", str(out), "--epochs", "1"]
    args += [
        "--batch-size",
        "100",
        "--dim",
        "32",
        "--image-size",
        "32",
        "--seed",
        "3",
        "--no-progress",
        "--json",
    ]
    assert main(args) == 0
    summary = _json(capsys)
    assert summary["completed"] is True and summary["epochs_done"] == 1
    meta = json.loads((out / "towers.json").read_text())
    assert meta["space_id"] == summary["space_id"]
    assert meta["config"]["dim"] == 32 and meta["config"]["preprocess"]["image"]["size"] == 32
    assert meta["training"]["catalogue"]["products"] == 200
    assert meta["training"]["options"]["seed"] == 3

    assert main(["evaluate", "--towers", str(out), "--catalogue", str(sample_catalogue_dir), "--json",
                 "--max-queries", "5", "--no-progress"]) == 0  # fmt: skip
    figures = _json(capsys)
    assert figures["space_id"] == summary["space_id"]
    towers = figures["reports"]["towers"]["kinds"]
    assert {"clean", "noisy", "image", "text_to_image"} <= set(towers)
    assert towers["clean"]["queries"] == 5
    assert set(towers["clean"]) >= {"recall_at_1", "recall_at_10", "mrr", "ndcg_at_10", "p_at_5"}
    assert "clean" in figures["reports"]["bm25"]["kinds"]
    assert "text_to_image" not in figures["reports"]["bm25"]["kinds"]


def test_evaluate_prints_a_table(tiny_towers, sample_catalogue_dir, capsys):
    args = ["evaluate", "--towers", str(tiny_towers.path), "--catalogue", str(sample_catalogue_dir)]
    assert main([*args, "--max-queries", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (
        "| kind | system | queries |" in out
        and "| clean | towers | 3 |" in out
        and "| clean | bm25 | 3 |" in out
    )


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["train", "--catalogue", "{tmp}/missing.csv", "--out", "{tmp}/t"], "does not exist"),
        (["train", "--catalogue", "{tmp}/empty.csv", "--out", "{tmp}/t"], "has no products"),
        (
            ["train", "--catalogue", "{tmp}/empty.csv", "--out", "{tmp}/nothing", "--resume"],
            "train without --resume",
        ),
        (["evaluate", "--towers", "{tmp}/none", "--catalogue", "{tmp}/empty.csv"], "is not a towers folder"),
        (
            ["evaluate", "--towers", "{tmp}/none", "--catalogue", "{tmp}/empty.csv", "--max-queries", "0"],
            "--max-queries must be >= 1",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors(argv, phrase, tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("id,title\n")
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert phrase in err and err.count("\n") == 1


def test_evaluate_without_queries_says_what_to_do(tiny_towers, tmp_path, capsys):
    (tmp_path / "p.csv").write_text("id,title\n1,red shirt\n")
    code = main(["evaluate", "--towers", str(tiny_towers.path), "--catalogue", str(tmp_path / "p.csv")])
    assert code == 2
    assert "no labelled queries" in capsys.readouterr().err
