"""`edgeshelf benchmark --help` and its sub-commands: every command documents itself."""

from __future__ import annotations

import pytest

from edgeshelf.cli import main


def test_benchmark_lists_its_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["benchmark", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("latency", "search", "quality"):
        assert name in out


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("latency", ("--bundle", "--shard", "--wav", "--image", "--threads", "--runs", "--warmup", "--json", "--plot", "--vs", "--towers", "--vs-bundle")),
        ("search", ("--sizes", "--vectors", "--query-vectors", "--approx", "--approx-max", "--dtype", "--json", "--plot")),
        ("quality", ("--towers", "--catalogue", "--protocol", "--bundle", "--peer", "--voice", "--json", "--plot")),
    ],
)  # fmt: skip
def test_sub_command_help(capsys, command, options):
    with pytest.raises(SystemExit) as info:
        main(["benchmark", command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out, option


def test_a_benchmark_must_be_named(capsys):
    with pytest.raises(SystemExit) as info:
        main(["benchmark"])
    assert info.value.code == 2
    assert "latency" in capsys.readouterr().err
