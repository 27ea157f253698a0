"""``edgeshelf catalogue build | update | shard | delta | stats`` as a user runs them."""

from __future__ import annotations

import json
import shutil

import pytest
from edgeshelf.sdk.shard import Shard, apply_delta, read_shard_info

from edgeshelf.cli import main

CSV = """id,title,category,price,popularity,colour
a1,red leather shoe,Shoes,59.5,10,red
a2,blue canvas shoe,Shoes,35,50,blue
a3,black travel bag,Bags,120,30,black
a4,small desk lamp,Lamps,,5,white
a5,green linen shirt,Shirts,25,70,green
"""


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def towers_dir(tmp_path_factory):
    from edgeshelf.towers.model import Towers, TowersConfig

    path = tmp_path_factory.mktemp("towers") / "towers"
    Towers.create(TowersConfig(), seed=0).save(path)
    return path


def test_build_update_shard_with_real_towers(tmp_path, capsys, towers_dir):
    catalogue = tmp_path / "products.csv"
    catalogue.write_text(CSV)
    index = tmp_path / "shop.index"
    args = [
        "catalogue",
        "build",
        "--catalogue",
        str(catalogue),
        "--towers",
        str(towers_dir),
        "--out",
        str(index),
    ]
    assert main([*args, "--batch-size", "2", "--no-progress", "--json"]) == 0
    report = _json(capsys)
    from edgeshelf.towers.model import Towers

    space = Towers.load(towers_dir).space_id
    assert (report["count"], report["embedded"], report["space_id"]) == (5, 5, space)
    assert report["products_per_s"] > 0
    # run again: nothing to embed
    assert main([*args, "--no-progress", "--json"]) == 0
    assert _json(capsys)["embedded"] == 0

    catalogue.write_text(CSV.replace("59.5", "49.5").replace("black travel bag", "black weekend bag"))
    update = [
        "catalogue",
        "update",
        "--index",
        str(index),
        "--catalogue",
        str(catalogue),
        "--towers",
        str(towers_dir),
    ]
    assert main([*update, "--remove", "a5", "--no-progress", "--json"]) == 0
    report = _json(capsys)
    assert (report["changed"], report["metadata_only"], report["removed_ids"], report["count"]) == (
        1,
        1,
        ["a5"],
        4,
    )

    shard = tmp_path / "top.shard"
    assert (
        main(["catalogue", "shard", "--index", str(index), "--out", str(shard), "--top", "3", "--json"]) == 0
    )
    header = _json(capsys)
    assert (header["count"], header["space_id"], header["dtype"]) == (3, space, "int8")
    with Shard.open(shard, expected_space_id=space) as opened:
        assert set(opened.ids) == {"a2", "a3", "a1"}  # the three most popular left
        assert "weekend" in opened.vocabulary()
        query = Towers.load(towers_dir).embed(texts=["blue canvas shoe"])[0]
        assert opened.search(query, k=1).ids == ["a2"]


def test_shard_delta_stats_commands(tmp_path, capsys, synthetic_index):
    index = tmp_path / "ix"
    shutil.copytree(synthetic_index, index)
    old = tmp_path / "old.shard"
    assert main(["catalogue", "shard", "--index", str(index), "--out", str(old), "--top", "100"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (
        main(["catalogue", "update", "--index", str(index), "--remove", "sku00001", "sku00002", "--json"])
        == 0
    )
    assert _json(capsys)["count"] == 598
    new = tmp_path / "new.shard"
    delta = tmp_path / "d.delta"
    cmd = [
        "catalogue",
        "delta",
        "--index",
        str(index),
        "--base",
        str(old),
        "--out",
        str(delta),
        "--shard-out",
        str(new),
    ]
    assert main([*cmd, "--json"]) == 0
    info = _json(capsys)
    assert (
        info["base_version"] == read_shard_info(old).version
        and info["target_version"] == read_shard_info(new).version
    )
    apply_delta(old, delta.read_bytes(), tmp_path / "patched.shard")
    assert (tmp_path / "patched.shard").read_bytes() == new.read_bytes()
    assert main(["catalogue", "stats", "--index", str(index), "--json"]) == 0
    stats = _json(capsys)
    assert stats["count"] == 598 and stats["backend"] == "embedded" and stats["bytes_on_disk"] > 0
    assert main(["catalogue", "stats", "--index", str(index)]) == 0
    assert "space_id: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["catalogue", "shard", "--out", "x.shard", "--by", "price"], "expected popularity or category="),
        (["catalogue", "shard", "--out", "x.shard", "--top", "0"], "--top must be >= 1"),
        (["catalogue", "update"], "nothing to do"),
    ],
)
def test_errors_are_one_line_with_exit_2(tmp_path, capsys, synthetic_index, argv, phrase):
    argv = [*argv[:2], "--index", str(synthetic_index), *argv[2:]]
    argv = [a if a != "x.shard" else str(tmp_path / "x.shard") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert phrase in err and err.count("\n") == 1


def test_missing_index_is_a_clear_error(tmp_path, capsys):
    assert main(["catalogue", "stats", "--index", str(tmp_path / "none")]) == 2
    assert "not a catalogue index" in capsys.readouterr().err


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as done:
        main(["catalogue", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in ("build", "update", "shard", "delta", "stats"):
        assert name in out
