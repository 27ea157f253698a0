"""The shard format and local search (DESIGN.md contract 3), through the public SDK API."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    FormatVersionError,
    InvalidInputError,
    SpaceMismatchError,
)
from edgeshelf.sdk.results import Embedding, SearchResult
from edgeshelf.sdk.shard import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    Shard,
    ShardInfo,
    VectorSearcher,
    decode_header,
    decode_shard,
    encode_shard,
    quantize,
    read_shard_info,
    write_shard,
)

from tests.fixtures_catalogue_index import unit_vectors

SPACE = "0123456789abcdef"
OTHER = "fedcba9876543210"


def _shard_bytes(n=300, dim=24, seed=0, dtype="int8", scales="dimension", version=7, created=1700000000.0):
    vectors = unit_vectors(n, dim, seed)
    ids = [f"p{i:04d}" for i in range(n)]
    data = encode_shard(
        space_id=SPACE,
        ids=ids,
        vectors=vectors,
        titles=[f"Title {i} Ünïcode" for i in range(n)],
        prices=[None if i % 7 == 0 else float(i) for i in range(n)],
        categories=["Shoes" if i % 2 else "Bags" for i in range(n)],
        dtype=dtype,
        scales=scales,
        version=version,
        created=created,
        meta={"selection": {"by": "popularity", "top": None}},
    )
    return data, ids, vectors


def _write(tmp_path, data, name="s.shard"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---- header: known values


def test_header_fields_known_values():
    data, _, _ = _shard_bytes(n=10, dim=8)
    assert data[:8] == MAGIC == b"ESHARD\r\n"
    info = decode_header(data)
    assert isinstance(info, ShardInfo)
    assert (info.format_version, info.space_id, info.dim, info.count) == (FORMAT_VERSION, SPACE, 8, 10)
    assert (info.dtype, info.scale_mode, info.version, info.created) == ("int8", "dimension", 7, 1700000000.0)
    assert info.size == len(data)
    assert info.checksum == zlib.crc32(data[HEADER_SIZE:])
    # every section starts on a 64-byte boundary, in order, inside the file
    offsets = [offset for offset, _ in info.sections.values()]
    assert offsets == sorted(offsets) and all(o % 64 == 0 for o in offsets)
    assert info.sections["vectors"][1] == 10 * 8 and info.sections["scales"][1] == 4 * 8
    assert struct.unpack_from("<H", data, 8)[0] == FORMAT_VERSION


@pytest.mark.parametrize(
    ("dtype", "scales", "vector_bytes", "scale_bytes", "mode"),
    [
        ("int8", "dimension", 1, 4 * 16, "dimension"),
        ("int8", "vector", 1, 4 * 50, "vector"),
        ("float16", "dimension", 2, 0, "none"),
    ],
)
def test_section_sizes_per_dtype(dtype, scales, vector_bytes, scale_bytes, mode):
    data, _, _ = _shard_bytes(n=50, dim=16, dtype=dtype, scales=scales)
    info = decode_header(data)
    assert info.scale_mode == mode
    assert info.sections["vectors"][1] == 50 * 16 * vector_bytes
    assert info.sections["scales"][1] == scale_bytes


def test_encoding_is_deterministic_and_sorted_by_id():
    vectors = unit_vectors(5, 4)
    ids = ["e", "b", "d", "a", "c"]
    one = encode_shard(space_id=SPACE, ids=ids, vectors=vectors, created=1.0)
    order = np.argsort(ids)
    two = encode_shard(space_id=SPACE, ids=[ids[i] for i in order], vectors=vectors[order], created=1.0)
    assert one == two
    assert decode_shard(one).ids == ("a", "b", "c", "d", "e")


def test_read_shard_info_reads_only_the_header(tmp_path):
    data, _, _ = _shard_bytes()
    path = _write(tmp_path, data)
    info = read_shard_info(path)
    assert info == decode_header(data)
    assert info.to_dict()["checksum"] == f"crc32:{info.checksum:08x}"


# ---- round trips


@pytest.mark.parametrize(
    ("dtype", "scales"), [("int8", "dimension"), ("int8", "vector"), ("float16", "dimension")]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_and_top10_overlap_with_exact_float(tmp_path, dtype, scales, seed):
    data, ids, vectors = _shard_bytes(n=2000, dim=64, seed=seed, dtype=dtype, scales=scales)
    content = decode_shard(data)
    assert content.ids == tuple(ids)
    assert content.titles[3] == "Title 3 Ünïcode"
    assert np.isnan(content.prices[0]) and content.prices[1] == 1.0
    np.testing.assert_allclose(content.dequantized(), vectors, atol=0.01 if dtype == "int8" else 1e-3)
    rng = np.random.default_rng(seed + 10)
    queries = vectors[:50] + 0.7 * unit_vectors(50, 64, seed + 20)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    path = _write(tmp_path, data)
    with Shard.open(path, expected_space_id=SPACE) as shard:
        results = shard.search(queries, k=10)
        assert isinstance(results, list) and len(results) == 50
        overlap = np.mean([len(set(r.ids) & {ids[j] for j in exact[i]}) / 10 for i, r in enumerate(results)])
        assert overlap >= (0.9 if dtype == "int8" else 0.98)
        # scores are inner products with the stored (dequantized) vectors, best first
        first = results[0]
        stored = content.dequantized()[[ids.index(pid) for pid in first.ids]] @ queries[0]
        np.testing.assert_allclose(first.scores, stored, atol=1e-4)
        assert np.all(np.diff(first.scores) <= 1e-7)
    del rng


FILTERS = (None, {"category": "Shoes"}, {"max_price": 50.0}, {"min_price": 10.0, "category": "Bags"})


@pytest.mark.parametrize(
    ("dtype", "scales", "kernels"),
    [
        ("int8", "dimension", ("simsimd", "usearch", "numpy")),
        ("int8", "vector", ("simsimd", "numpy")),
        ("float16", "dimension", ("usearch", "numpy")),
    ],
)
def test_kernels_agree(tmp_path, dtype, scales, kernels):
    # 70k rows: more than one 64k block of the simsimd kernel
    data, _, _ = _shard_bytes(n=70_000, dim=16, seed=3, dtype=dtype, scales=scales)
    path = _write(tmp_path, data)
    queries = unit_vectors(8, 16, seed=4)
    import edgeshelf.sdk.shard as shard_module

    for kernel in kernels:
        if kernel != "numpy" and not shard_module._available(kernel):
            pytest.skip(f"the {kernel} kernel is not usable in this process")
    opened = [Shard.open(path, kernel=kernel, verify=False) for kernel in kernels]
    try:
        assert [s.kernel for s in opened] == list(kernels)
        for flt in FILTERS:
            reference = opened[-1].search(queries, k=10, filters=flt)
            for shard in opened[:-1]:
                for x, y in zip(shard.search(queries, k=10, filters=flt), reference):
                    assert x.ids == y.ids, (shard.kernel, flt)
                    np.testing.assert_allclose(x.scores, y.scores, atol=1e-5)
    finally:
        for shard in opened:
            shard.close()


def test_kernel_choice_is_checked(tmp_path):
    per_vector, _, _ = _shard_bytes(scales="vector")
    with pytest.raises(InvalidInputError, match="per-dimension scales"):
        Shard.open(_write(tmp_path, per_vector), kernel="usearch")
    half, _, _ = _shard_bytes(dtype="float16")
    with pytest.raises(InvalidInputError, match="simsimd kernel searches int8"):
        Shard.open(_write(tmp_path, half, "h.shard"), kernel="simsimd")
    with pytest.raises(InvalidInputError, match="kernel 'gpu' is not one of"):
        Shard.open(_write(tmp_path, half, "h.shard"), kernel="gpu")


def test_quantize_reuses_given_scales_and_clips():
    vectors = np.asarray([[0.5, -0.25], [1.0, 0.1]], np.float32)
    codes, scales, mode = quantize(vectors, "int8", np.asarray([0.5 / 127, 0.25 / 127], np.float32))
    assert mode == "dimension"
    assert codes.tolist() == [[127, -127], [127, 51]]  # 1.0 clips to the old range
    codes, scales, mode = quantize(vectors, "int8", "vector")
    assert codes[:, 0].tolist() == [127, 127] and mode == "vector"
    np.testing.assert_allclose(scales, [0.5 / 127, 1.0 / 127])


# ---- search API


@pytest.fixture
def shard(tmp_path):
    data, _, _ = _shard_bytes(n=300, dim=24)
    with Shard.open(_write(tmp_path, data), expected_space_id=SPACE) as opened:
        yield opened


def test_filters(shard):
    q = unit_vectors(1, 24, 9)[0]
    shoes = shard.search(q, k=20, filters={"category": "Shoes"})
    assert len(shoes) == 20 and {h.category for h in shoes} == {"Shoes"}
    cheap = shard.search(q, k=300, filters={"max_price": 30})
    assert {h.price for h in cheap} <= set(map(float, range(31))) and None not in {h.price for h in cheap}
    assert len(cheap) == len([i for i in range(31) if i % 7])
    both = shard.search(q, k=5, filters={"category": ["Shoes"], "min_price": 250, "max_price": 260})
    assert all(h.category == "Shoes" and 250 <= h.price <= 260 for h in both)
    assert len(both) == len([i for i in range(250, 261) if i % 2 and i % 7])
    assert len(shard.search(q, k=5, filters={"category": "Nope"})) == 0
    with pytest.raises(InvalidInputError, match="unknown filter"):
        shard.search(q, filters={"colour": "red"})
    with pytest.raises(InvalidInputError, match="max_price must be a number"):
        shard.search(q, filters={"max_price": "cheap"})


def test_search_result_shape_and_hits(shard):
    q = shard.vectors([5])[0]
    result = shard.search(q, k=3)
    assert isinstance(result, SearchResult) and result.source == "shard" and result.space_id == SPACE
    top = result.hits[0]
    assert (top.product_id, top.title, top.price, top.category) == ("p0005", "Title 5 Ünïcode", 5.0, "Shoes")
    assert len(shard.search(q, k=1000)) == 300  # k larger than the shard
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        shard.search(q, k=0)
    with pytest.raises(InvalidInputError, match=r"\[24\]"):
        shard.search(np.zeros(23, np.float32))
    with pytest.raises(InvalidInputError, match="finite"):
        shard.search(np.full(24, np.nan, np.float32))


def test_embedding_queries_are_space_checked(shard):
    vector = shard.vectors([1])[0]
    good = shard.search(Embedding(vector=vector, space_id=SPACE), k=1)
    assert good.ids == ["p0001"]
    with pytest.raises(SpaceMismatchError) as err:
        shard.search(Embedding(vector=vector, space_id=OTHER))
    assert SPACE in str(err.value) and OTHER in str(err.value)


def test_ids_count_vocabulary_describe(shard):
    assert shard.count == len(shard) == 300 and shard.ids[:2] == ["p0000", "p0001"]
    assert {"title", "5", "ünïcode", "shoes", "bags"} <= shard.vocabulary()
    info = shard.describe()
    for key in (
        "space_id",
        "dim",
        "count",
        "dtype",
        "version",
        "checksum",
        "format_version",
        "created_utc",
        "kernel",
    ):
        assert key in info
    assert info["meta"]["selection"]["by"] == "popularity" and info["categories"] == 2


def test_close_is_idempotent_and_final(tmp_path):
    data, _, _ = _shard_bytes(n=20, dim=8)
    shard = Shard.open(_write(tmp_path, data))
    with shard:
        shard.search(unit_vectors(1, 8)[0])
    shard.close()
    shard.close()
    with pytest.raises(InvalidInputError, match="closed"):
        shard.search(unit_vectors(1, 8)[0])
    assert "closed" in repr(shard)


def test_empty_and_tiny_shards(tmp_path):
    empty = encode_shard(space_id=SPACE, ids=[], vectors=np.zeros((0, 4), np.float32))
    with Shard.open(_write(tmp_path, empty, "e.shard")) as shard:
        assert shard.count == 0 and len(shard.search(np.ones(4, np.float32), k=5)) == 0
        assert shard.vocabulary() == frozenset()
    one = encode_shard(space_id=SPACE, ids=["only"], vectors=np.ones((1, 1), np.float32))
    with Shard.open(_write(tmp_path, one, "o.shard")) as shard:
        assert shard.search(np.ones(1, np.float32), k=3).ids == ["only"]


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"ids": ["a", "a"], "vectors": np.ones((2, 2), np.float32)}, "unique"),
        ({"ids": ["a"], "vectors": np.ones((2, 2), np.float32)}, "vectors must be"),
        ({"ids": ["a"], "vectors": np.full((1, 2), np.inf, np.float32)}, "NaN or infinity"),
        ({"ids": ["a"], "vectors": np.ones((1, 2), np.float32), "dtype": "int4"}, "int8, float16"),
        ({"ids": ["a"], "vectors": np.ones((1, 2), np.float32), "space_id": "x" * 17}, "space id"),
    ],
)
def test_encode_rejects_bad_input(kwargs, phrase):
    kwargs.setdefault("space_id", SPACE)
    with pytest.raises(InvalidInputError, match=phrase):
        encode_shard(**kwargs)


# ---- bad files


def test_shard_of_another_space_names_both_ids(tmp_path):
    data, _, _ = _shard_bytes()
    path = _write(tmp_path, data)
    with pytest.raises(SpaceMismatchError) as err:
        Shard.open(path, expected_space_id=OTHER)
    message = str(err.value)
    assert SPACE in message and OTHER in message and "fetch a shard" in message and str(path) in message


@pytest.mark.parametrize("keep", [HEADER_SIZE - 1, HEADER_SIZE + 10, -1])
def test_truncated_shard_names_the_file(tmp_path, keep):
    data, _, _ = _shard_bytes()
    path = _write(tmp_path, data[:keep])
    with pytest.raises(CorruptArtifactError, match="truncated") as err:
        Shard.open(path)
    assert str(path) in str(err.value) and "re-download" in str(err.value)
    with pytest.raises(CorruptArtifactError, match="truncated"):
        read_shard_info(path)


def test_flipped_body_byte_fails_the_checksum(tmp_path):
    data, _, _ = _shard_bytes()
    broken = bytearray(data)
    broken[decode_header(data).sections["vectors"][0] + 5] ^= 0x01
    path = _write(tmp_path, bytes(broken))
    with pytest.raises(CorruptArtifactError, match="checksum mismatch") as err:
        Shard.open(path)
    assert str(path) in str(err.value)
    # verify=False skips the body check (a caller that trusts its cache)
    with Shard.open(path, verify=False) as shard:
        assert shard.count == 300


def test_flipped_header_byte_fails_the_header_checksum(tmp_path):
    data, _, _ = _shard_bytes()
    broken = bytearray(data)
    broken[30] ^= 0x40  # inside the count field
    with pytest.raises(CorruptArtifactError, match="header checksum"):
        Shard.open(_write(tmp_path, bytes(broken)))


def test_not_a_shard(tmp_path):
    path = _write(tmp_path, b"PK\x03\x04" + bytes(400))
    with pytest.raises(CorruptArtifactError, match="not an edgeshelf shard") as err:
        Shard.open(path)
    assert str(path) in str(err.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Shard.open(tmp_path / "missing.shard")


def test_future_format_version_is_refused(tmp_path):
    data, _, _ = _shard_bytes()
    newer = bytearray(data)
    struct.pack_into("<H", newer, 8, FORMAT_VERSION + 1)
    struct.pack_into("<I", newer, HEADER_SIZE - 4, zlib.crc32(bytes(newer[: HEADER_SIZE - 4])))
    with pytest.raises(FormatVersionError, match=f"format version {FORMAT_VERSION + 1} is newer"):
        Shard.open(_write(tmp_path, bytes(newer)))


def test_write_shard_refuses_non_shard_bytes(tmp_path):
    with pytest.raises(CorruptArtifactError):
        write_shard(tmp_path / "x.shard", b"nonsense")
    assert not (tmp_path / "x.shard").exists()


def test_vector_searcher_validates_its_input():
    with pytest.raises(InvalidInputError, match="scale mode"):
        VectorSearcher(np.zeros((2, 2), np.int8), None, "none")
    with pytest.raises(InvalidInputError, match="int8, float16 or float32"):
        VectorSearcher(np.zeros((2, 2), np.float64))
    searcher = VectorSearcher(np.eye(3, dtype=np.float32), kernel="numpy")
    scores, rows = searcher.search(np.eye(3, dtype=np.float32), 2)
    assert rows[:, 0].tolist() == [0, 1, 2] and scores[:, 0].tolist() == [1.0, 1.0, 1.0]
    scores, rows = searcher.search(np.eye(3, dtype=np.float32)[:1], 5, mask=np.asarray([False, True, False]))
    assert rows.tolist() == [[1]]


def test_without_usearch_the_numpy_kernel_answers_the_same(tmp_path, monkeypatch):
    import edgeshelf.sdk.shard as shard_module
    from edgeshelf.sdk.errors import MissingDependencyError

    data, _, _ = _shard_bytes(n=500, dim=16, dtype="float16")
    path = _write(tmp_path, data)
    queries = unit_vectors(5, 16, seed=2)
    with Shard.open(path) as fast:
        expected = [r.ids for r in fast.search(queries, k=5)]
    monkeypatch.setattr(shard_module, "_AVAILABLE", {"simsimd": False, "usearch": False})
    monkeypatch.setattr(shard_module, "_simsimd", None)
    with Shard.open(path) as fallback:
        assert fallback.kernel == "numpy"
        assert [r.ids for r in fallback.search(queries, k=5)] == expected
    with pytest.raises(MissingDependencyError, match="pip install usearch"):
        Shard.open(path, kernel="usearch")
    int8, _, _ = _shard_bytes(n=50, dim=16)
    with pytest.raises(MissingDependencyError, match="pip install simsimd"):
        Shard.open(_write(tmp_path, int8, "i.shard"), kernel="simsimd")


def test_simsimd_broken_by_import_order_falls_back(tmp_path, monkeypatch):
    import edgeshelf.sdk.shard as shard_module
    from edgeshelf.sdk.errors import MissingDependencyError

    pytest.importorskip("simsimd")
    monkeypatch.setattr(shard_module, "_AVAILABLE", {"simsimd": False})
    data, _, _ = _shard_bytes(n=50, dim=16)
    path = _write(tmp_path, data)
    with Shard.open(path) as shard:
        assert shard.kernel in ("usearch", "numpy")
    with pytest.raises(MissingDependencyError, match="usearch was imported before simsimd"):
        Shard.open(path, kernel="simsimd")


def test_describe_shard_and_warm(tmp_path):
    from edgeshelf.sdk.shard import describe_shard

    data, _, _ = _shard_bytes(n=40, dim=8)
    path = _write(tmp_path, data)
    described = describe_shard(path)
    assert described["count"] == 40 and described["path"] == str(path) and described["kind"] == "shard"
    with Shard.open(path, warm=True) as shard:
        assert shard.warm() is shard and shard.search(shard.vectors([3])[0], k=1).ids == ["p0003"]
