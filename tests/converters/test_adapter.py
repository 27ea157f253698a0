"""The federated query adapter rolled out into a bundle: `edgeshelf convert --adapter`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from edgeshelf.sdk.bundle import Bundle
from edgeshelf.sdk.encoder import QueryEncoder
from edgeshelf.sdk.errors import CorruptArtifactError, SpaceMismatchError
from edgeshelf.towers.federated import apply_adapter, load_adapter, save_adapter

from edgeshelf.cli import main

TEXTS = ["red leather wallet", "blue cotton shirt", "black running shoes", "green wool scarf"]


@pytest.fixture(scope="module")
def towers_dir(converters_towers, tmp_path_factory):
    return converters_towers.save(tmp_path_factory.mktemp("towers") / "towers")


@pytest.fixture(scope="module")
def adapter_file(converters_towers, tmp_path_factory):
    """A clearly non-identity adapter (a seeded rotation-like perturbation)."""
    dim = converters_towers.config.dim
    rng = np.random.default_rng(7)
    kernel = (rng.normal(size=(dim, dim)) * 1.5 / np.sqrt(dim)).astype(np.float32)
    bias = (rng.normal(size=dim) * 0.05).astype(np.float32)
    path = tmp_path_factory.mktemp("adapter") / "adapter.npz"
    save_adapter(path, [kernel, bias], converters_towers.space_id, rounds=3, eta=1.0)
    return path


def _convert(towers_dir, catalogue, out, *extra):
    return main([
        "convert", "--towers", str(towers_dir), "--profile", "speaker", "--calibration", str(catalogue.source),
        "--out", str(out), "--calibration-count", "16", "--heldout-count", "16", "--force", "--json", *extra,
    ])  # fmt: skip


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(a * b, axis=1)))


def test_adapter_file_roundtrip(adapter_file, converters_towers):
    adapter = load_adapter(adapter_file, space_id=converters_towers.space_id)
    assert adapter.kernel.shape == (converters_towers.config.dim,) * 2
    assert adapter.meta == {"rounds": 3, "eta": 1.0}


def test_bundle_with_adapter_runs_it_after_fusion(
    towers_dir, converters_towers, converters_catalogue, adapter_file, tmp_path, capsys
):
    out = tmp_path / "speaker-adapted"
    assert _convert(towers_dir, converters_catalogue, out, "--adapter", str(adapter_file)) == 0
    report = json.loads(capsys.readouterr().out)
    assert "adapter" in report["models"] and report["validation"]["models"]["adapter"]["mean"] > 0.95
    retrieval = report["validation"]["retrieval"]
    assert retrieval["adapter_recall_drop"] == pytest.approx(
        retrieval["recall_at_10_towers"] - retrieval["recall_at_10_host"], abs=1e-5
    )
    with Bundle.open(out) as bundle:
        manifest = bundle.manifest
        assert manifest.space_id == converters_towers.space_id  # products keep their vectors
        assert manifest.models["adapter"].quantization == "int8"
        assert manifest.runtime["query_adapter"]["parameters"] == manifest.dim * (manifest.dim + 1)

    host = converters_towers.embed(texts=TEXTS)
    adapted = apply_adapter(load_adapter(adapter_file).weights, host)
    assert _cos(host, adapted) < 0.9  # the adapter really moves the queries
    with QueryEncoder.open(out) as encoder:
        device = np.stack([encoder.embed(text=t).vector for t in TEXTS])
    assert _cos(device, adapted) > 0.95
    assert _cos(device, adapted) > _cos(device, host) + 0.05


def test_adapter_of_another_space_is_refused(
    towers_dir, converters_towers, converters_catalogue, tmp_path, capsys
):
    dim = converters_towers.config.dim
    other = tmp_path / "other.npz"
    save_adapter(other, [np.zeros((dim, dim), np.float32), np.zeros(dim, np.float32)], "0123456789abcdef")
    out = tmp_path / "speaker"
    assert _convert(towers_dir, converters_catalogue, out, "--adapter", str(other)) == 2
    assert "space 0123456789abcdef != expected space" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SpaceMismatchError):
        load_adapter(other, space_id=converters_towers.space_id)


def test_corrupt_adapter_file_is_refused(towers_dir, converters_catalogue, tmp_path, capsys):
    bad = tmp_path / "adapter.npz"
    bad.write_bytes(b"not a numpy archive")
    out = tmp_path / "speaker"
    assert _convert(towers_dir, converters_catalogue, out, "--adapter", str(bad)) == 2
    assert "is not an edgeshelf adapter file" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(CorruptArtifactError):
        load_adapter(bad)


def test_an_adapter_that_costs_general_recall_fails_the_gate(
    towers_dir, converters_towers, converters_catalogue, tmp_path, capsys
):
    """Kernel = -I + noise: q + qW is noise, so the adapted queries point anywhere."""
    dim = converters_towers.config.dim
    rng = np.random.default_rng(3)
    kernel = (-np.eye(dim) + rng.normal(size=(dim, dim)) * 0.3 / np.sqrt(dim)).astype(np.float32)
    harmful = tmp_path / "harmful.npz"
    save_adapter(harmful, [kernel, np.zeros(dim, np.float32)], converters_towers.space_id)
    out = tmp_path / "speaker"
    args = [
        "convert", "--towers", str(towers_dir), "--profile", "speaker", "--calibration",
        str(converters_catalogue.source), "--out", str(out), "--calibration-count", "16",
        "--heldout-count", "16", "--quant", "float32", "--adapter", str(harmful), "--json",
    ]  # fmt: skip
    assert main(args) == 2
    captured = capsys.readouterr()
    retrieval = json.loads(captured.out)["validation"]["retrieval"]
    assert retrieval["recall_at_10_towers"] > retrieval["recall_at_10_host"] + 0.03
    assert "the query adapter costs the host towers" in captured.err
    assert not out.exists()
