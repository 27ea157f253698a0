"""The catalogue index: embedded backend (SQLite + segment files) and Milvus Lite, same API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from edgeshelf.catalogue.index import CatalogueIndex, read_index_info
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    FormatVersionError,
    InvalidInputError,
    ModelNotFoundError,
    SpaceMismatchError,
)

from tests.fixtures_catalogue_index import SYNTHETIC_SPACE, make_products, unit_vectors

DIM = 16


def _exact(vectors, queries, k=10):
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


@pytest.fixture
def small(tmp_path):
    products = make_products(200, seed=3)
    vectors = unit_vectors(200, DIM, seed=3)
    index = CatalogueIndex.create(tmp_path / "ix", space_id=SYNTHETIC_SPACE, dim=DIM, dtype="float32")
    index.upsert(products, vectors)
    yield index, products, vectors
    index.close()


def test_create_search_get(small):
    index, products, vectors = small
    assert (index.count, index.dim, index.dtype, index.space_id) == (200, DIM, "float32", SYNTHETIC_SPACE)
    queries = unit_vectors(5, DIM, seed=8)
    results = index.search(queries, k=10)
    expected = _exact(vectors, queries)
    for result, row in zip(results, expected):
        assert result.ids == [products[j].id for j in row]
        assert result.source == "index" and result.space_id == SYNTHETIC_SPACE
    hit = index.search(vectors[7], k=1)[0].hits[0]
    assert (hit.product_id, hit.title, hit.price, hit.category) == (
        products[7].id,
        products[7].title,
        products[7].price,
        products[7].category,
    )
    got = index.get([products[3].id, products[0].id])
    assert [g["id"] for g in got] == [products[3].id, products[0].id]
    assert got[1]["price"] is None and got[0]["attributes"] == products[3].attributes
    with pytest.raises(InvalidInputError, match="not in index"):
        index.get(["nope"])
    assert index.get(["nope", products[1].id], missing="skip")[0]["id"] == products[1].id
    np.testing.assert_allclose(index.vectors_for([products[5].id]), vectors[5:6], atol=1e-6)


def test_filters_match_brute_force(small):
    index, products, vectors = small
    q = unit_vectors(1, DIM, seed=11)
    allowed = [
        i
        for i, p in enumerate(products)
        if p.category in ("Bags", "Lamps") and p.price is not None and p.price <= 120
    ]
    expected = [products[allowed[j]].id for j in np.argsort(-(vectors[allowed] @ q[0]), kind="stable")[:10]]
    result = index.search(q, k=10, filters={"category": ["Bags", "Lamps"], "max_price": 120})[0]
    assert result.ids == expected
    with pytest.raises(InvalidInputError, match="unknown filter"):
        index.search(q, filters={"brand": "x"})


@pytest.mark.parametrize(("dtype", "min_overlap"), [("float16", 0.98), ("int8", 0.9)])
def test_quantized_dtypes_agree_with_exact(tmp_path, dtype, min_overlap):
    vectors = unit_vectors(1500, DIM, seed=4)
    products = make_products(1500, seed=4)
    with CatalogueIndex.create(tmp_path / dtype, space_id=SYNTHETIC_SPACE, dim=DIM, dtype=dtype) as index:
        index.upsert(products, vectors)
        queries = unit_vectors(30, DIM, seed=5)
        expected = _exact(vectors, queries)
        results = index.search(queries, k=10)
        overlap = np.mean(
            [len(set(r.ids) & {products[j].id for j in row}) / 10 for r, row in zip(results, expected)]
        )
        assert overlap >= min_overlap


def test_upsert_and_remove_are_incremental(small):
    index, products, vectors = small
    before = index.generation
    changed = unit_vectors(1, DIM, seed=99)
    index.upsert([products[0]], changed)
    assert index.generation == before + 1 and index.count == 200
    assert index.search(changed, k=1)[0].ids == [products[0].id]
    index.remove([products[0].id, "not-there"])
    assert index.count == 199 and products[0].id not in index
    assert products[0].id not in index.search(changed, k=5)[0].ids
    with pytest.raises(InvalidInputError, match="unknown id"):
        index.remove(["not-there"], missing_ok=False)


def test_reader_opened_before_keeps_its_view(small, tmp_path):
    index, products, vectors = small
    early = CatalogueIndex.open(index.path)
    fresh_vector = unit_vectors(1, DIM, seed=123)
    new_product = make_products(1, prefix="new")[0]
    index.upsert([new_product], fresh_vector)
    index.remove([p.id for p in products[:100]])
    index.compact()  # rewrites and unlinks the segment files the early reader maps
    late = CatalogueIndex.open(index.path)
    try:
        assert early.count == 200 and late.count == 101
        assert early.search(fresh_vector, k=1)[0].ids != [new_product.id]
        assert late.search(fresh_vector, k=1)[0].ids == [new_product.id]
        # the early reader still answers from its snapshot, metadata included
        old_hit = early.search(vectors[1], k=1)[0].hits[0]
        assert (old_hit.product_id, old_hit.title) == (products[1].id, products[1].title)
        assert early.get([products[1].id])[0]["title"] == products[1].title
        assert early.refresh() is True and early.count == 101
        assert early.refresh() is False
    finally:
        early.close()
        late.close()


def test_many_small_upserts_keep_few_segments(tmp_path):
    vectors = unit_vectors(640, DIM, seed=6)
    products = make_products(640, seed=6)
    with CatalogueIndex.create(tmp_path / "ix", space_id=SYNTHETIC_SPACE, dim=DIM, dtype="float32") as index:
        for start in range(0, 640, 10):
            index.upsert(products[start : start + 10], vectors[start : start + 10])
        stats = index.stats()
        assert stats["count"] == 640 and stats["segments"] <= 8 and stats["dead_rows"] == 0
        assert len(list((tmp_path / "ix" / "segments").glob("*.npy"))) == stats["segments"]
        queries = unit_vectors(5, DIM, seed=7)
        for result, row in zip(index.search(queries, k=10), _exact(vectors, queries)):
            assert result.ids == [products[j].id for j in row]


def test_iter_vectors_and_list_ids(small):
    index, products, vectors = small
    seen = {}
    for ids, batch in index.iter_vectors(batch_size=64):
        assert batch.dtype == np.float32 and batch.shape == (len(ids), DIM)
        seen.update(zip(ids, batch))
    assert len(seen) == 200
    np.testing.assert_allclose(seen[products[9].id], vectors[9], atol=1e-6)
    by_pop = index.list_ids(order="popularity", limit=5)
    pops = sorted((-p.popularity, p.id) for p in products)[:5]
    assert by_pop == [pid for _, pid in pops]
    assert set(index.list_ids(category="Bags")) == {p.id for p in products if p.category == "Bags"}


@pytest.mark.parametrize(
    ("call", "phrase"),
    [
        (lambda ix: ix.upsert(make_products(2), unit_vectors(2, DIM + 1)), f"\\[N, {DIM}\\]"),
        (lambda ix: ix.upsert(make_products(2), unit_vectors(3, DIM)), "must align"),
        (lambda ix: ix.upsert(make_products(2) * 2, unit_vectors(4, DIM)), "duplicate product ids"),
        (lambda ix: ix.search(unit_vectors(1, DIM), k=0), "k must be >= 1"),
        (lambda ix: ix.update_metadata(make_products(1, prefix="ghost")), "not in the index"),
    ],
)
def test_bad_input_is_refused(small, call, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        call(small[0])


def test_search_space_check(small):
    index = small[0]
    with pytest.raises(SpaceMismatchError) as err:
        index.search(unit_vectors(1, DIM), space_id="0000000000000000")
    assert SYNTHETIC_SPACE in str(err.value) and "0000000000000000" in str(err.value)


def test_create_and_open_errors(tmp_path, small):
    index = small[0]
    with pytest.raises(InvalidInputError, match="already holds an index"):
        CatalogueIndex.create(index.path, space_id=SYNTHETIC_SPACE, dim=DIM)
    with pytest.raises(SpaceMismatchError):
        CatalogueIndex.create(
            index.path, space_id="1111111111111111", dim=DIM, dtype="float32", exist_ok=True
        )
    with pytest.raises(InvalidInputError, match="dtype 'int4'"):
        CatalogueIndex.create(tmp_path / "a", space_id=SYNTHETIC_SPACE, dim=DIM, dtype="int4")
    with pytest.raises(ModelNotFoundError, match="not a catalogue index"):
        CatalogueIndex.open(tmp_path / "nothing")
    copy = tmp_path / "copy"
    shutil.copytree(index.path, copy)
    manifest = json.loads((copy / "index.json").read_text())
    manifest["format_version"] = 99
    (copy / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatVersionError, match="newer"):
        read_index_info(copy)
    (copy / "index.json").write_text("{not json")
    with pytest.raises(CorruptArtifactError, match="unreadable index manifest"):
        CatalogueIndex.open(copy)


def test_close_is_idempotent(tmp_path):
    index = CatalogueIndex.create(tmp_path / "ix", space_id=SYNTHETIC_SPACE, dim=4)
    index.close()
    index.close()
    with pytest.raises(InvalidInputError, match="closed"):
        index.search(np.ones(4, np.float32))


def test_milvus_lite_agrees_with_embedded(tmp_path):
    pytest.importorskip("pymilvus")
    products = make_products(2000, seed=12)
    vectors = unit_vectors(2000, DIM, seed=12)
    queries = unit_vectors(20, DIM, seed=13)
    with (
        CatalogueIndex.create(
            tmp_path / "milvus", space_id=SYNTHETIC_SPACE, dim=DIM, backend="milvus"
        ) as milvus,
        CatalogueIndex.create(
            tmp_path / "embedded", space_id=SYNTHETIC_SPACE, dim=DIM, dtype="float32"
        ) as embedded,
    ):
        milvus.upsert(products, vectors)
        embedded.upsert(products, vectors)
        assert milvus.count == embedded.count == 2000 and milvus.backend == "milvus"
        for flt in (None, {"category": "Shoes", "max_price": 100.0}):
            for a, b in zip(
                milvus.search(queries, k=10, filters=flt), embedded.search(queries, k=10, filters=flt)
            ):
                assert a.ids == b.ids
                np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
                assert [h.price for h in a] == [h.price for h in b]
        assert milvus.get([products[10].id]) == embedded.get([products[10].id])
        assert milvus.list_ids(order="popularity", limit=20) == embedded.list_ids(
            order="popularity", limit=20
        )
        milvus.remove([products[0].id])
        embedded.remove([products[0].id])
        assert milvus.count == embedded.count == 1999
        assert milvus.search(vectors[0], k=3)[0].ids == embedded.search(vectors[0], k=3)[0].ids
    with CatalogueIndex.open(tmp_path / "milvus") as reopened:
        assert (
            reopened.backend == "milvus" and reopened.count == 1999 and reopened.space_id == SYNTHETIC_SPACE
        )
        np.testing.assert_allclose(reopened.vectors_for([products[1].id]), vectors[1:2], atol=1e-6)
