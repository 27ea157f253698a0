"""`edgeshelf benchmark search` on small sizes (timings are never asserted).

The runs are separate ``edgeshelf`` processes: importing usearch before the first int8 TFLite
conversion of a process breaks TensorFlow's converter ("Failed VHLO to version"), and the
session's bundle fixtures may not be built yet.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from edgeshelf.benchmarks.search import SearchOptions, catalogue_vectors, load_vectors, read_query_texts
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError

from edgeshelf.cli import main
from tests.benchmarks.conftest import check_doc as validate


def _run(tmp_path, *args):
    out = tmp_path / "search.json"
    argv = ["benchmark", "search", "--queries", "12", "--batch", "4", "--quiet", "--json", str(out), *args]
    done = subprocess.run(
        [sys.executable, "-m", "edgeshelf.cli", *argv], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text())
    validate(doc)
    return doc, done.stdout


def test_real_shard_vectors_then_synthetic(tmp_path, bench_shard, speaker_bundle):
    from edgeshelf.sdk.bundle import read_manifest

    dim = read_manifest(speaker_bundle).dim
    args = ["--sizes", "150", "600", "--vectors", str(bench_shard), "--plot", str(tmp_path / "s.png")]
    doc, printed = _run(tmp_path, *args)
    small, large = doc["rows"]
    assert small["source"] == {"real": 150, "synthetic": 0} and large["source"] == {
        "real": 200,
        "synthetic": 400,
    }
    assert small["dim"] == dim and doc["vectors"]["real_count"] == 200
    for row in doc["rows"]:
        systems = row["systems"]
        assert set(systems) == {"shard", "faiss_flat", "shard_kernel", "usearch_hnsw"}
        assert systems["faiss_flat"]["recall_at_k"] == 1.0  # the exact reference
        assert systems["shard"]["recall_at_k"] >= 0.9  # int8 codes, re-scored in float32
        assert systems["shard"]["file_bytes"] < systems["faiss_flat"]["file_bytes"]
        assert systems["shard"]["rss_bytes"] is not None and systems["shard"]["single"]["count"] == 12
        assert set(row["ratios_vs_shard"]) == {"faiss_flat", "shard_kernel", "usearch_hnsw"}
    assert doc["goals"][0]["met"] is None and "no 100000 row" in doc["goals"][0]["reason"]
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert "faiss_flat" in printed


def test_npy_vectors_faiss_hnsw_and_approx_max(tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "v.npy", rng.standard_normal((300, 16)).astype(np.float32))
    np.save(tmp_path / "v2.npy", rng.standard_normal((200, 16)).astype(np.float32))
    np.save(tmp_path / "q.npy", rng.standard_normal((7, 16)).astype(np.float32))
    doc, _ = _run(
        tmp_path, "--sizes", "200", "500", "--vectors", str(tmp_path / "v.npy"),
        str(tmp_path / "v2.npy"), "--query-vectors",
        str(tmp_path / "q.npy"), "--approx", "faiss-hnsw", "--approx-max", "300", "--no-memory", "--dtype", "float16",
    )  # fmt: skip
    small, large = doc["rows"]
    assert "faiss_hnsw" in small["systems"] and "faiss_hnsw" not in large["systems"]
    assert "above --approx-max 300" in large["skipped"][0]
    assert small["systems"]["shard"]["rss_bytes"] is None
    assert doc["vectors"]["real_count"] == 500 and large["source"] == {"real": 500, "synthetic": 0}
    assert doc["vectors"]["queries_source"].startswith("real: 7 query embeddings")
    assert small["systems"]["shard"]["engine"].startswith("edgeshelf shard float16")


def test_query_texts_embedded_with_a_bundle(tmp_path, speaker_bundle, bench_shard):
    texts = tmp_path / "queries.txt"
    texts.write_text("red shoes\nblue shirt\n\nleather bag\n")
    doc, _ = _run(
        tmp_path, "--sizes", "200", "--vectors", str(bench_shard), "--bundle", str(speaker_bundle),
        "--query-texts", str(texts), "--approx", "none", "--no-memory",
    )  # fmt: skip
    assert set(doc["rows"][0]["systems"]) == {"shard", "faiss_flat", "shard_kernel"}
    assert "3 query texts" in doc["vectors"]["queries_source"]


def test_query_texts_formats(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"id": "a", "text": "red shoes"}\n{"id": "b", "image": "x.png"}\n')
    (tmp_path / "q.json").write_text('{"querySetQueries": [{"queryText": "tan heels"}, {"queryText": " "}]}')
    assert read_query_texts(tmp_path / "q.jsonl") == ["red shoes"]
    assert read_query_texts(tmp_path / "q.json") == ["tan heels"]
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(InvalidInputError, match="holds no query texts"):
        read_query_texts(tmp_path / "empty.txt")


def test_catalogue_vectors_mix_is_seeded():
    real = np.eye(4, dtype=np.float32)
    a, counts = catalogue_vectors(real, 10, 4, seed=1)
    b, _ = catalogue_vectors(real, 10, 4, seed=1)
    assert counts == {"real": 4, "synthetic": 6} and np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    sub, counts = catalogue_vectors(real, 2, 4, seed=0)
    assert counts == {"real": 2, "synthetic": 0} and sub.shape == (2, 4)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"sizes": ()}, "sizes must be positive"),
        ({"sizes": (0,)}, "sizes must be positive"),
        ({"dtype": "int4"}, "dtype must be 'int8' or 'float16'"),
        ({"approx": "annoy"}, "approx must be one of"),
        ({"k": 0}, "k must be an integer >= 1"),
    ],
)
def test_bad_options(changes, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        SearchOptions(**changes)


def test_missing_vectors_source(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_vectors(tmp_path / "nothing.npy")


def test_query_texts_need_a_bundle(tmp_path, capsys):
    (tmp_path / "q.txt").write_text("red shoes\n")
    rc = main(["benchmark", "search", "--sizes", "100", "--query-texts", str(tmp_path / "q.txt"), "--quiet"])
    assert rc == 2 and "--query-texts needs --bundle" in capsys.readouterr().err
