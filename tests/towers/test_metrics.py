"""Metrics on hand-made rankings (known values), the BM25 baseline, tables and JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edgeshelf.catalogue.products import LabelledQuery, Product
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.towers.evaluate import (
    bm25_baseline,
    format_table,
    query_metrics,
    rank_and_score,
    reports_to_dict,
)

L2 = [1.0 / math.log2(i + 2) for i in range(10)]  # discounts of ranks 1..10

# ranked ids, relevant {id: grade}, expected (R@1, R@10, MRR, nDCG@10, P@5)
CASES = [
    (["a", "b", "c"], {"a": 1}, (1.0, 1.0, 1.0, 1.0, 0.2)),
    (["b", "a", "c"], {"a": 1}, (0.0, 1.0, 0.5, L2[1], 0.2)),
    (["b", "c", "d"], {"a": 1}, (0.0, 0.0, 0.0, 0.0, 0.0)),
    ([*"bcdefghijk", "a"], {"a": 1}, (0.0, 0.0, 1 / 11, 0.0, 0.0)),  # rank 11: outside the cut-offs
    (
        ["a", "x", "b", "y", "c"],
        {"a": 1, "b": 1, "c": 1},
        (1.0, 1.0, 1.0, (L2[0] + L2[2] + L2[4]) / sum(L2[:3]), 0.6),
    ),
    # graded: the grade-3 item second; ideal order is (3, 1)
    (["b", "a"], {"a": 3, "b": 1}, (1.0, 1.0, 1.0, (1 * L2[0] + 7 * L2[1]) / (7 * L2[0] + 1 * L2[1]), 0.4)),
    # capped recall: 12 relevant, 10 of them in the top 10 -> R@10 = 10 / min(10, 12) = 1
    ([f"r{i}" for i in range(12)], {f"r{i}": 1 for i in range(12)}, (1.0, 1.0, 1.0, 1.0, 1.0)),
]


@pytest.mark.parametrize(("ranked", "relevant", "expected"), CASES)
def test_query_metrics_known_values(ranked, relevant, expected):
    m = query_metrics(ranked, relevant)
    got = (m["recall_at_1"], m["recall_at_10"], m["mrr"], m["ndcg_at_10"], m["p_at_5"])
    assert got == pytest.approx(expected, abs=1e-9)


def test_query_metrics_needs_a_relevant_item():
    with pytest.raises(InvalidInputError, match="at least one relevant"):
        query_metrics(["a"], {})


def _q(qid, kind, relevant, text="x", exclude=()):
    return LabelledQuery(qid, kind, text=text, relevant=relevant, exclude=tuple(exclude))


def test_rank_and_score_means_per_kind_excludes_and_skips():
    ids = ["p0", "p1", "p2", "p3"]
    scores = np.array(
        [
            [0.9, 0.8, 0.1, 0.0],  # clean: p0 relevant, first
            [0.9, 0.8, 0.1, 0.0],  # clean: p1 relevant, second
            [0.9, 0.8, 0.1, 0.0],  # image: p0 excluded (the query's own product), p1 then first
            [0.1, 0.2, 0.3, 0.4],  # relevant product not among the ranked: skipped
        ]
    )
    queries = [
        _q("a", "clean", {"p0": 1}),
        _q("b", "clean", {"p1": 1}),
        _q("c", "image", {"p1": 1}, exclude=["p0"]),
        _q("d", "clean", {"zz": 1}),
    ]
    report = rank_and_score(scores, ids, queries, "toy")
    assert report.kinds == ("clean", "image")
    clean, image = report.kind("clean"), report.kind("image")
    assert clean.queries == 2
    assert clean.recall_at_1 == pytest.approx(0.5)
    assert clean.mrr == pytest.approx(0.75)
    assert image.recall_at_1 == 1.0
    assert any("1 queries skipped" in n for n in report.notes)
    with pytest.raises(InvalidInputError, match=r"shape \[queries, products\]"):
        rank_and_score(scores[:2], ids, queries, "toy")


def test_ties_keep_catalogue_order():
    report = rank_and_score(np.zeros((1, 3)), ["a", "b", "c"], [_q("q", "clean", {"b": 1})], "flat")
    assert report.kind("clean").mrr == pytest.approx(0.5)


PRODUCTS = [
    Product("1", "Turtle Men Navy Blue Check Shirt", category="Shirts"),
    Product("2", "Puma Women Black Running Shoes", category="Shoes"),
    Product("3", "Casio Men Black Digital Watch", category="Watches"),
    Product("4", "Nike Men Red Sports Tshirt", category="Tshirts"),
]


def test_bm25_baseline_finds_title_matches_and_skips_image_queries(tmp_path):
    queries = [
        _q("t1", "clean", {"3": 1}, text="black digital watch"),
        _q("t2", "clean", {"2": 1}, text="women running shoes"),
        _q("t3", "noisy", {"1": 1}, text="navy check shirt"),
        LabelledQuery("i1", "image", image=tmp_path / "x.png", relevant={"1": 1}),
    ]
    report = bm25_baseline(PRODUCTS, queries)
    assert report.system == "bm25"
    assert report.kind("clean").recall_at_1 == 1.0
    assert report.kind("noisy").mrr == 1.0
    assert report.kind("image") is None
    assert any("not applicable to image" in n for n in report.notes)
    hidden = bm25_baseline(PRODUCTS, queries[:1], hidden_title_ids=["3"])
    assert hidden.kind("clean").recall_at_1 == 0.0  # the only matching title is hidden


def test_bm25_with_no_queries_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="no labelled queries"):
        bm25_baseline(PRODUCTS, [])
    with pytest.raises(InvalidInputError, match="no products"):
        bm25_baseline([], [_q("a", "clean", {"1": 1})])


def test_table_and_json():
    report = rank_and_score(
        np.eye(2), ["a", "b"], [_q("1", "clean", {"a": 1}), _q("2", "clean", {"b": 1})], "sys"
    )
    table = format_table([report], title="T")
    assert "| clean | sys | 2 | 1.000 | 1.000 | 1.000 | 1.000 | 0.200 |" in table
    data = reports_to_dict([report], towers="x")
    assert data["towers"] == "x"
    assert data["reports"]["sys"]["kinds"]["clean"]["ndcg_at_10"] == 1.0
    assert "sys" in repr(report)
