"""The fashion real-data protocol: seeded split by product and query invariants."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from edgeshelf.catalogue.products import Catalogue, Product
from edgeshelf.catalogue.protocol import fashion_protocol, split_by_product
from edgeshelf.sdk.errors import InvalidInputError


@pytest.fixture(scope="module")
def protocol(fashion_catalogue):
    return fashion_protocol(fashion_catalogue, seed=0, test_fraction=0.3)


def _attrs(p: Product) -> tuple[str, str, str]:
    return p.attr("baseColour"), p.attr("gender"), p.attr("articleType")


def test_split_is_disjoint_complete_and_seeded(fashion_catalogue, protocol) -> None:
    train, test = set(protocol.train_ids), set(protocol.test_ids)
    assert not train & test
    assert train | test == set(fashion_catalogue.ids)
    assert len(test) == round(0.3 * len(fashion_catalogue)) == 775
    again = fashion_protocol(fashion_catalogue, seed=0)
    assert again.test_ids == protocol.test_ids and again.all_queries() == protocol.all_queries()
    other = fashion_protocol(fashion_catalogue, seed=1)
    assert other.test_ids != protocol.test_ids


def test_clean_queries_cover_every_test_triple_with_exact_relevant_sets(fashion_catalogue, protocol) -> None:
    expected: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for p in protocol.test_products(fashion_catalogue):
        if all(_attrs(p)):  # a few rows have no baseColour: they make no query
            expected[_attrs(p)].add(p.id)
    clean = protocol.queries["clean"]
    assert len(clean) == len(expected)
    for q in clean:
        key = (q.meta["baseColour"], q.meta["gender"], q.meta["articleType"])
        assert q.text == " ".join(key).lower()
        assert set(q.relevant) == expected[key] and set(q.relevant.values()) == {1}


def test_no_train_product_is_ever_relevant_and_corpora_are_test_only(protocol) -> None:
    train = set(protocol.train_ids)
    for q in protocol.all_queries():
        assert q.relevant and not set(q.relevant) & train
        assert set(q.relevant) <= set(protocol.corpus(q.kind))
    assert set(protocol.corpus("clean")) == set(protocol.test_ids)


def test_noisy_queries_mirror_clean_ones(protocol) -> None:
    pairs = list(zip(protocol.queries["clean"], protocol.queries["noisy"]))
    assert len(pairs) == len(protocol.queries["noisy"])
    for clean, noisy in pairs:
        assert noisy.meta["clean"] == clean.text != noisy.text
        assert noisy.relevant == clean.relevant


def test_image_queries_are_test_photos_relevant_by_article_type(fashion_catalogue, protocol) -> None:
    images = protocol.queries["image"]
    assert len(images) > 700
    for q in images[:200]:
        source = fashion_catalogue[q.meta["source"]]
        assert q.image == source.image and q.exclude == (source.id,)
        assert source.id in protocol.test_ids and source.id not in q.relevant
        expected = {
            p.id
            for p in protocol.test_products(fashion_catalogue)
            if p.attributes["articleType"] == source.attributes["articleType"] and p.id != source.id
        }
        assert set(q.relevant) == expected


def test_text_to_image_hides_titles_of_the_test_products(fashion_catalogue, protocol) -> None:
    assert protocol.hides_titles("text_to_image") and not protocol.hides_titles("clean")
    hidden = set(protocol.hidden_title_ids)
    assert hidden == set(protocol.test_ids)  # every fashion product has a photo
    assert protocol.corpus("text_to_image") == protocol.hidden_title_ids
    for q in protocol.queries["text_to_image"]:
        colour, article = q.meta["baseColour"], q.meta["articleType"]
        assert q.text == f"{colour} {article}".lower()
        assert set(q.relevant) == {
            i
            for i in hidden
            if fashion_catalogue[i].attr("baseColour") == colour
            and fashion_catalogue[i].attr("articleType") == article
        }


def test_max_queries_per_kind_keeps_a_seeded_subset(fashion_catalogue, protocol) -> None:
    small = fashion_protocol(fashion_catalogue, seed=0, max_queries_per_kind=25)
    assert {k: len(v) for k, v in small.queries.items()} == dict.fromkeys(small.kinds, 25)
    assert set(q.id for q in small.queries["clean"]) <= {q.id for q in protocol.queries["clean"]}
    assert small.summary()["test"] == 775


def _tiny(tmp_path: Path) -> Catalogue:
    products = []
    for i in range(40):
        attrs = {
            "baseColour": ["Red", "Blue"][i % 2],
            "gender": ["Men", "Women"][i // 2 % 2],
            "articleType": ["Shirts", "Jeans"][i // 4 % 2],
        }
        products.append(
            Product(id=f"{i:03d}", title=f"p{i}", category=attrs["articleType"], attributes=attrs)
        )
    return Catalogue(products=tuple(products), root=tmp_path)


def test_synthetic_catalogue_invariants_and_errors(tmp_path: Path) -> None:
    cat = _tiny(tmp_path)
    proto = fashion_protocol(cat, seed=3, test_fraction=0.5)
    assert len(proto.test_ids) == 20 and proto.hidden_title_ids == ()  # no photos: no hidden titles
    assert proto.queries["image"] == () and proto.queries["text_to_image"] == ()
    assert {q.text for q in proto.queries["clean"]} <= {
        f"{c} {g} {a}" for c in ("red", "blue") for g in ("men", "women") for a in ("shirts", "jeans")
    }
    with pytest.raises(InvalidInputError, match=r"test_fraction must be in \(0, 1\), got 1.0"):
        fashion_protocol(cat, test_fraction=1.0)
    bare = Catalogue(products=(Product("a"), Product("b")), root=tmp_path)
    with pytest.raises(InvalidInputError, match=r"no baseColour, gender, articleType attribute\(s\)"):
        fashion_protocol(bare)
    with pytest.raises(InvalidInputError, match="unknown query kind 'voice'"):
        proto.corpus("voice")
    assert split_by_product(["b", "a", "c"], 0, 0.34) == split_by_product(["c", "b", "a"], 0, 0.34)
