"""Building, updating, shard cutting and deltas: the server side of the shard life cycle."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from edgeshelf.catalogue.build import (
    DeltaNotPossibleError,
    build_index,
    cut_shard,
    make_delta,
    parse_selection,
    product_fingerprint,
    update_index,
)
from edgeshelf.catalogue.index import CatalogueIndex
from edgeshelf.sdk.errors import CorruptArtifactError, InvalidInputError, SpaceMismatchError
from edgeshelf.sdk.shard import Shard, apply_delta, apply_delta_bytes, decode_delta, read_shard_info

from tests.conftest import REPO_ROOT
from tests.fixtures_catalogue_index import SYNTHETIC_SPACE, HashTowers, make_products


def test_build_resumes_after_an_interruption(tmp_path):
    products = make_products(100, seed=1)
    crashing = HashTowers(fail_after=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_index(products, crashing, tmp_path / "ix", batch_size=16, progress=False)
    with CatalogueIndex.open(tmp_path / "ix") as index:
        assert index.count == 32 and index.space_id == SYNTHETIC_SPACE  # two committed batches
    towers = HashTowers()
    report = build_index(products, towers, tmp_path / "ix", batch_size=16, progress=False)
    assert sum(towers.calls) == 68 and report.embedded == 68 and report.unchanged == 32
    assert report.count == 100 and report.added == 68
    with CatalogueIndex.open(tmp_path / "ix") as index:
        expected = HashTowers().embed_products(products)
        np.testing.assert_allclose(index.vectors_for([p.id for p in products]), expected, atol=2e-3)
    again = build_index(products, HashTowers(), tmp_path / "ix", progress=False)
    assert again.embedded == 0 and again.unchanged == 100


def test_build_refuses_other_towers_and_no_resume(tmp_path):
    products = make_products(10)
    build_index(products, HashTowers(), tmp_path / "ix", progress=False)
    with pytest.raises(SpaceMismatchError) as err:
        build_index(products, HashTowers(space_id="aaaaaaaaaaaaaaaa"), tmp_path / "ix", progress=False)
    assert SYNTHETIC_SPACE in str(err.value) and "aaaaaaaaaaaaaaaa" in str(err.value)
    with pytest.raises(InvalidInputError, match="already holds an index"):
        build_index(products, HashTowers(), tmp_path / "ix", resume=False, progress=False)


def test_update_embeds_only_what_changed(tmp_path):
    products = make_products(50, seed=2)
    build_index(products, HashTowers(), tmp_path / "ix", progress=False)
    retitled = dataclasses.replace(products[0], title="brand new title")
    repriced = dataclasses.replace(products[1], price=1.5, popularity=99999.0)
    added = make_products(3, prefix="add")
    catalogue = [retitled, repriced, *products[2:40], *added]  # products 40..49 are gone
    towers = HashTowers()
    with CatalogueIndex.open(tmp_path / "ix") as index:
        report = update_index(index, catalogue, towers, progress=False)
        assert (report.added, report.changed, report.metadata_only, report.removed) == (3, 1, 1, 10)
        assert sum(towers.calls) == 4 and index.count == 43
        assert index.get([repriced.id])[0]["price"] == 1.5
        assert index.list_ids(order="popularity", limit=1) == [repriced.id]
        hit = index.search(HashTowers().embed_products([retitled]), k=1)[0].hits[0]
        assert (hit.product_id, hit.title) == (retitled.id, "brand new title")


def test_fingerprint_tracks_embedding_inputs_only(tmp_path):
    product = make_products(1)[0]
    base = product_fingerprint(product)
    assert product_fingerprint(dataclasses.replace(product, price=1.0, popularity=5.0)) == base
    assert product_fingerprint(dataclasses.replace(product, title="other")) != base
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n1")
    with_image = product_fingerprint(dataclasses.replace(product, image=image))
    image.write_bytes(b"\x89PNG\r\n\x1a\n12")
    assert product_fingerprint(dataclasses.replace(product, image=image)) != with_image


# ---- shards


@pytest.fixture
def built(tmp_path, synthetic_index):
    folder = tmp_path / "ix"
    shutil.copytree(synthetic_index, folder)
    with CatalogueIndex.open(folder) as index:
        yield index


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("popularity", {"by": "popularity"}),
        ("category=Shoes", {"by": "category", "categories": ["Shoes"]}),
        ("category=Shoes|Bags", {"by": "category", "categories": ["Shoes", "Bags"]}),
    ],
)
def test_parse_selection(by, expected):
    assert parse_selection(by) == expected


@pytest.mark.parametrize("by", ["price", "category=", "category"])
def test_parse_selection_rejects(by):
    with pytest.raises(InvalidInputError):
        parse_selection(by)


def test_cut_shard_top_by_popularity_and_category(built, tmp_path, synthetic_catalogue):
    info = cut_shard(built, tmp_path / "top.shard", top=50, dtype="int8")
    assert (info.count, info.space_id, info.version, info.dim) == (50, SYNTHETIC_SPACE, built.generation, 32)
    by_pop = sorted(synthetic_catalogue.products, key=lambda p: (-p.popularity, p.id))[:50]
    with Shard.open(tmp_path / "top.shard", expected_space_id=SYNTHETIC_SPACE) as shard:
        assert set(shard.ids) == {p.id for p in by_pop}
        product = by_pop[0]
        vector = synthetic_catalogue.vectors[synthetic_catalogue.ids.index(product.id)]
        hit = shard.search(vector, k=1).hits[0]
        assert (hit.product_id, hit.title, hit.price, hit.category) == (
            product.id,
            product.title,
            product.price,
            product.category,
        )
        assert shard.meta["selection"] == {"by": "popularity", "top": 50}
    info = cut_shard(built, tmp_path / "bags.shard", by="category=Bags", dtype="float16")
    assert (
        info.count == sum(p.category == "Bags" for p in synthetic_catalogue.products)
        and info.dtype == "float16"
    )


def test_delta_round_trip_equals_a_fresh_cut(built, tmp_path):
    old = tmp_path / "old.shard"
    cut_shard(built, old, top=300)
    products = make_products(600)  # the fixture's products
    built.upsert([dataclasses.replace(products[0], popularity=10_000.0)], built.vectors_for([products[0].id]))
    built.update_metadata([dataclasses.replace(products[1], title="renamed", popularity=9_999.0)])
    built.remove(built.list_ids(order="popularity", limit=3)[2:3])
    built.upsert(make_products(2, prefix="fresh"), np.ones((2, 32), np.float32) / np.sqrt(32))
    delta_path = tmp_path / "old-to-new.delta"
    info = make_delta(old, built, delta_path, new_shard=tmp_path / "new.shard", created=123.0)
    assert info.base_version == read_shard_info(old).version and info.target_version == built.generation
    assert len(info.added) + len(info.changed) + len(info.removed) > 0
    assert delta_path.stat().st_size < old.stat().st_size / 4
    patched = tmp_path / "patched.shard"
    apply_delta(old, delta_path.read_bytes(), patched)
    assert patched.read_bytes() == (tmp_path / "new.shard").read_bytes()
    fresh = tmp_path / "fresh.shard"
    cut_shard(built, fresh, top=300, reuse_scales=_scales(old), created=123.0)
    assert patched.read_bytes() == fresh.read_bytes()
    with Shard.open(patched) as shard:
        assert "renamed" in {shard.title_at(i) for i in range(shard.count)}


def _scales(path: Path) -> np.ndarray:
    from edgeshelf.sdk.shard import decode_shard

    return decode_shard(path.read_bytes()).scales


def test_delta_for_another_base_is_refused(built, tmp_path):
    old = tmp_path / "old.shard"
    cut_shard(built, old, top=100)
    built.update_metadata([dataclasses.replace(make_products(600)[5], title="x")])
    middle = tmp_path / "middle.shard"
    make_delta(old, built, tmp_path / "d1.delta", new_shard=middle)
    built.update_metadata([dataclasses.replace(make_products(600)[6], title="y")])
    delta = tmp_path / "d2.delta"
    make_delta(middle, built, delta)
    with pytest.raises(InvalidInputError) as err:
        apply_delta(old, delta.read_bytes(), tmp_path / "out.shard")
    base_version = read_shard_info(old).version
    delta_base = decode_delta(delta.read_bytes())[0].base_version
    assert f"version {delta_base}" in str(err.value) and f"version {base_version}" in str(err.value)
    assert not (tmp_path / "out.shard").exists()
    broken = bytearray(delta.read_bytes())
    broken[-3] ^= 0xFF
    with pytest.raises(CorruptArtifactError, match="delta checksum"):
        apply_delta_bytes(middle.read_bytes(), bytes(broken))
    with pytest.raises(CorruptArtifactError, match="not an edgeshelf shard delta"):
        apply_delta_bytes(middle.read_bytes(), b"garbage" * 20)


def test_delta_refuses_vectors_outside_the_int8_range(built, tmp_path):
    old = tmp_path / "old.shard"
    cut_shard(built, old)
    spiky = np.zeros((40, 32), np.float32)
    spiky[:, 0] = 1.0  # far beyond any per-dimension range of random unit vectors
    built.upsert(make_products(40, prefix="spike"), spiky)
    with pytest.raises(DeltaNotPossibleError, match="full shard"):
        make_delta(old, built, tmp_path / "d.delta")


def test_interrupted_writer_leaves_the_old_shard(built, tmp_path, monkeypatch):
    out = tmp_path / "cached.shard"
    cut_shard(built, out, top=100)
    before = out.read_bytes()
    built.remove(built.list_ids(limit=10))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        cut_shard(built, out, top=100)
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cached")] == []
    with Shard.open(out) as shard:
        assert shard.count == 100


def test_killed_writer_process_leaves_the_old_shard(built, tmp_path):
    out = tmp_path / "cached.shard"
    cut_shard(built, out, top=100)
    before = out.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from edgeshelf.catalogue.build import cut_shard
        from edgeshelf.catalogue.index import CatalogueIndex

        def stall(fd):  # the new bytes are in the temporary file: announce, then hang until killed
            print("writing", flush=True)
            time.sleep(60)

        os.fsync = stall
        with CatalogueIndex.open({str(built.path)!r}) as index:
            index.remove(index.list_ids(limit=5))
            cut_shard(index, {str(out)!r}, top=50)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "writing", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == before
    with Shard.open(out) as shard:
        assert shard.count == 100


def test_apply_delta_replaces_the_cached_shard_in_place(built, tmp_path):
    cached = tmp_path / "cached.shard"
    cut_shard(built, cached, top=50)
    built.remove(built.list_ids(order="popularity", limit=1))
    info = make_delta(cached, built, tmp_path / "d.delta", new_shard=tmp_path / "new.shard")
    assert info.to_dict()["removed"] == 1 and info.to_dict()["added"] == 1
    assert apply_delta(cached, (tmp_path / "d.delta").read_bytes()) == cached
    assert cached.read_bytes() == (tmp_path / "new.shard").read_bytes()
    with Shard.open(cached) as shard:
        assert shard.version == built.generation


def test_shard_and_index_rank_equal_scores_alike(tmp_path):
    """Listings with identical vectors (one title sold twice) tie; the shard (rows in id order)
    and the index (rows in insertion order, upserted shuffled here) must return the same top 10."""
    from edgeshelf.catalogue.build import cut_shard
    from edgeshelf.catalogue.index import CatalogueIndex
    from edgeshelf.sdk.shard import Shard

    from tests.fixtures_catalogue_index import SYNTHETIC_SPACE, make_products, unit_vectors

    order = np.random.default_rng(6).permutation(200)
    products = [make_products(200, seed=3)[i] for i in order]
    base = unit_vectors(40, 32, seed=4)
    vectors = base[order % 40]  # every vector five times: groups of exact ties
    with CatalogueIndex.create(
        tmp_path / "ties.index", space_id=SYNTHETIC_SPACE, dim=32, dtype="float16"
    ) as index:
        index.upsert(products, vectors)
        cut_shard(index, tmp_path / "ties.shard", dtype="float16")
        with Shard.open(tmp_path / "ties.shard") as shard:
            for query in unit_vectors(30, 32, seed=5):
                remote, local = index.search(query, 10)[0], shard.search(query, 10)
                assert local.ids == remote.ids
                assert [h.score for h in local.hits] == pytest.approx(
                    [h.score for h in remote.hits], abs=1e-6
                )
