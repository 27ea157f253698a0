"""Retrieval quality of the towers, a BM25 baseline and an image-embedder peer, per query kind.

Every labelled query ranks the evaluated products (all of them, or ``products_subset``) by score;
the products in ``query.exclude`` (e.g. the product whose own photo is the query) are left out of
its ranking, and relevant ids that are not among the ranked products are ignored. Per query:

* ``recall@k`` = relevant products in the top k / ``min(k, number relevant)`` (capped recall, as
  BEIR's ``R_cap@k``: it is the hit rate for single-answer queries and reaches 1 when the top k
  are all relevant for queries with many answers);
* ``MRR`` = 1 / rank of the first relevant product (over the whole ranking);
* ``nDCG@10`` with graded gains ``2^grade - 1`` and the ideal ordering of the query's grades;
* ``P@5`` = relevant products in the top 5 / 5 (the figure quoted for image queries).

A kind's row is the mean over its queries. Ties are broken by catalogue order (stable sort).

Example::

    report = evaluate(Towers.load("towers/"), catalogue)
    print(format_table([report, bm25_baseline(catalogue)]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError

METRICS = ("recall_at_1", "recall_at_10", "mrr", "ndcg_at_10", "p_at_5")
METRIC_LABELS = {
    "recall_at_1": "R@1",
    "recall_at_10": "R@10",
    "mrr": "MRR",
    "ndcg_at_10": "nDCG@10",
    "p_at_5": "P@5",
}


@dataclass(frozen=True)
class KindMetrics:
    """Mean metrics of the ``queries`` queries of one kind (each in [0, 1])."""

    kind: str
    queries: int
    recall_at_1: float
    recall_at_10: float
    mrr: float
    ndcg_at_10: float
    p_at_5: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EvalReport:
    """One system's figures: a row per query kind (in first-seen order) and notes on what was skipped."""

    system: str
    rows: tuple[KindMetrics, ...]
    products: int
    notes: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def kind(self, kind: str) -> KindMetrics | None:
        return next((r for r in self.rows if r.kind == kind), None)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(r.kind for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "products": self.products,
            "kinds": {r.kind: r.to_dict() for r in self.rows},
            "notes": list(self.notes),
            **({"info": self.info} if self.info else {}),
        }

    def __repr__(self) -> str:
        parts = ", ".join(f"{r.kind}: nDCG@10={r.ndcg_at_10:.3f}" for r in self.rows)
        return f"EvalReport({self.system}, products={self.products}, {parts})"


# --------------------------------------------------------------------------------------------
# metrics


def query_metrics(ranked: Sequence[str], relevant: Mapping[str, int]) -> dict[str, float]:
    """Metrics of one ranking (product ids, best first) against graded ``relevant`` ids.

    ``relevant`` must hold at least one id with grade >= 1; ids absent from ``ranked`` count
    as never retrieved.
    """
    rel = {pid: int(g) for pid, g in relevant.items() if int(g) >= 1}
    if not rel:
        raise InvalidInputError("a query needs at least one relevant product (grade >= 1)")
    grades = np.array([rel.get(pid, 0) for pid in ranked], np.float64)
    return _metrics_from_grades(grades, np.array(sorted(rel.values(), reverse=True), np.float64))


def _metrics_from_grades(grades: np.ndarray, ideal: np.ndarray) -> dict[str, float]:
    """``grades``: grade of each ranked item (0 = not relevant); ``ideal``: all relevant grades, sorted."""
    hits = grades > 0
    n_rel = ideal.size
    first = np.flatnonzero(hits)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = float(np.sum((2.0 ** grades[:10] - 1.0) * discounts[: min(10, grades.size)]))
    idcg = float(np.sum((2.0 ** ideal[:10] - 1.0) * discounts[: min(10, ideal.size)]))
    return {
        "recall_at_1": float(hits[:1].sum()) / min(1, n_rel),
        "recall_at_10": float(hits[:10].sum()) / min(10, n_rel),
        "mrr": 1.0 / (first[0] + 1) if first.size else 0.0,
        "ndcg_at_10": dcg / idcg if idcg > 0 else 0.0,
        "p_at_5": float(hits[:5].sum()) / 5.0,
    }


def rank_and_score(
    scores: np.ndarray,
    product_ids: Sequence[str],
    queries: Sequence[Any],
    system: str,
    notes: Iterable[str] = (),
    info: dict[str, Any] | None = None,
) -> EvalReport:
    """Turn a ``[Q, N]`` score matrix (higher is better) into an :class:`EvalReport`.

    Rows of ``scores`` follow ``queries``, columns follow ``product_ids``. Queries whose
    relevant products are all outside ``product_ids`` are skipped (and counted in the notes).
    """
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(queries), len(product_ids)):
        raise InvalidInputError(
            f"scores must have shape [queries, products] = [{len(queries)}, {len(product_ids)}], "
            f"got {list(scores.shape)}"
        )
    column = {pid: j for j, pid in enumerate(product_ids)}
    per_kind: dict[str, list[dict[str, float]]] = {}
    skipped = 0
    for qi, q in enumerate(queries):
        rel = {column[pid]: int(g) for pid, g in q.relevant.items() if pid in column and int(g) >= 1}
        if not rel:
            skipped += 1
            continue
        row = scores[qi].copy()
        excluded = [column[pid] for pid in getattr(q, "exclude", ()) if pid in column]
        keep = np.ones(row.size, bool)
        keep[excluded] = False
        order = np.flatnonzero(keep)[np.argsort(-row[keep], kind="stable")]
        grade_of = np.zeros(row.size, np.float64)
        for j, g in rel.items():
            grade_of[j] = g
        grades = grade_of[order]
        ideal = np.sort(np.array([g for j, g in rel.items() if keep[j]], np.float64))[::-1]
        if ideal.size == 0:
            skipped += 1
            continue
        per_kind.setdefault(q.kind, []).append(_metrics_from_grades(grades, ideal))
    rows = tuple(
        KindMetrics(kind, len(items), *(float(np.mean([m[k] for m in items])) for k in METRICS))
        for kind, items in per_kind.items()
    )
    notes = list(notes)
    if skipped:
        notes.append(f"{skipped} queries skipped: none of their relevant products is ranked")
    return EvalReport(system, rows, len(product_ids), tuple(notes), dict(info or {}))


# --------------------------------------------------------------------------------------------
# selecting products and queries


def _select(catalogue: Any, queries: Sequence[Any] | None, products_subset: Iterable[str] | None):
    products = list(getattr(catalogue, "products", catalogue))
    if products_subset is not None:
        wanted = set(map(str, products_subset))
        products = [p for p in products if p.id in wanted]
    if not products:
        where = getattr(catalogue, "source", None) or getattr(catalogue, "root", "")
        raise InvalidInputError(f"no products to evaluate against in the catalogue {where}".rstrip())
    if queries is None:
        queries = list(getattr(catalogue, "queries", ()) or ())
    queries = list(queries)
    if not queries:
        raise InvalidInputError(
            "no labelled queries to evaluate: pass --queries FILE (JSONL, see `edgeshelf sample-catalogue`) "
            "or use --protocol fashion"
        )
    return products, queries


# --------------------------------------------------------------------------------------------
# systems


def image_only_corpus(query: Any) -> bool:
    """Whether a query is answered from products embedded without their text
    (``meta["corpus"] == "image_only"``, as the sample catalogue's ``text_to_image`` queries)."""
    return (getattr(query, "meta", None) or {}).get("corpus") == "image_only"


def merge_reports(system: str, parts: Sequence[EvalReport], info: dict[str, Any] | None = None) -> EvalReport:
    """One report from several (rows and notes concatenated; ``products`` is the largest corpus)."""
    rows: list[KindMetrics] = []
    notes: list[str] = []
    for part in parts:
        rows.extend(part.rows)
        notes.extend(n for n in part.notes if n not in notes)
    return EvalReport(
        system, tuple(rows), max((p.products for p in parts), default=0), tuple(notes), dict(info or {})
    )


def evaluate(
    towers: Any,
    catalogue: Any,
    queries: Sequence[Any] | None = None,
    products_subset: Iterable[str] | None = None,
    hidden_title_ids: Iterable[str] = (),
    batch_size: int = 64,
    progress: bool = False,
) -> EvalReport:
    """Rank the products by the towers' cosine score for each labelled query, per kind.

    Products are embedded with every modality they have; those in ``hidden_title_ids`` without
    their text (as a product listed with a photo only). Queries whose ``meta["corpus"]`` is
    ``"image_only"`` are answered from every product embedded without its text. ``queries``
    defaults to the catalogue's.
    """
    from edgeshelf.towers.model import product_text

    products, queries = _select(catalogue, queries, products_subset)
    hidden = set(map(str, hidden_title_ids))
    ids = [p.id for p in products]
    info = {"space_id": towers.space_id}

    def embed(hide: Callable[[Any], bool]) -> np.ndarray:
        return towers.embed(
            texts=[None if hide(p) else (product_text(p) or None) for p in products],
            images=[p.image for p in products],
            videos=[p.video for p in products],
            audios=[p.audio for p in products],
            batch_size=batch_size,
            progress=progress,
        )

    parts = []
    normal = [q for q in queries if not image_only_corpus(q)]
    image_only = [q for q in queries if image_only_corpus(q)]
    if normal:
        vectors = embed(lambda p: p.id in hidden)
        notes = [f"{len(hidden & set(ids))} products embedded without their titles"] if hidden else []
        qv = towers.embed_queries(normal, batch_size=batch_size, progress=progress)
        parts.append(rank_and_score(qv @ vectors.T, ids, normal, "towers", notes))
    if image_only:
        vectors = embed(lambda p: True)
        qv = towers.embed_queries(image_only, batch_size=batch_size, progress=progress)
        kinds = sorted({q.kind for q in image_only})
        note = f"{', '.join(kinds)}: products embedded without their text (image-only corpus)"
        parts.append(rank_and_score(qv @ vectors.T, ids, image_only, "towers", [note]))
    return merge_reports("towers", parts, info)


def bm25_baseline(
    catalogue: Any,
    queries: Sequence[Any] | None = None,
    products_subset: Iterable[str] | None = None,
    hidden_title_ids: Iterable[str] = (),
) -> EvalReport:
    """BM25 (``bm25s``, Lucene variant, English stop words) over product titles, text queries only.

    Queries without text (image, audio, video) are not scored (their kinds get no row). Products
    in ``hidden_title_ids`` have an empty title, as the towers see them.
    """
    from edgeshelf.sdk.errors import require

    bm25s = require("bm25s", "host")
    products, queries = _select(catalogue, queries, products_subset)
    hidden = set(map(str, hidden_title_ids))
    titles = ["" if p.id in hidden else (p.title or "") for p in products]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(titles, stopwords="en", show_progress=False), show_progress=False)
    text_queries = [q for q in queries if q.text and not image_only_corpus(q)]
    skipped_kinds = sorted({q.kind for q in queries if not q.text})
    blind = sorted({q.kind for q in queries if q.text and image_only_corpus(q)})
    tokens = bm25s.tokenize(
        [q.text for q in text_queries], stopwords="en", return_ids=False, show_progress=False
    )
    scores = np.zeros((len(text_queries), len(products)), np.float64)
    for i, toks in enumerate(tokens):
        if toks:
            scores[i] = retriever.get_scores(toks)
    notes = [f"not applicable to {', '.join(skipped_kinds)} queries (no text)"] if skipped_kinds else []
    if blind:
        notes.append(f"not applicable to {', '.join(blind)} queries (the products' titles are hidden)")
    if hidden:
        notes.append(f"{len(hidden & {p.id for p in products})} titles hidden")
    return rank_and_score(
        scores,
        [p.id for p in products],
        text_queries,
        "bm25",
        notes,
        {"library": f"bm25s {bm25s.__version__}"},
    )


def embedder_peer(
    catalogue: Any,
    model_path: str | Path,
    queries: Sequence[Any] | None = None,
    products_subset: Iterable[str] | None = None,
    system: str = "mediapipe-embedder",
    progress: bool = False,
) -> EvalReport:
    """A pretrained image embedder as is (e.g. MediaPipe's 1024-d one): cosine of raw features.

    Only image queries (an image and no text) are scored, against the products' images;
    products without an image rank last.
    """
    from edgeshelf.sdk.backbone import ImageBackbone
    from edgeshelf.sdk.preprocess import load_image
    from tqdm import tqdm

    products, queries = _select(catalogue, queries, products_subset)
    image_queries = [q for q in queries if q.image is not None and not q.text]
    if not image_queries:
        raise InvalidInputError("the peer embedder scores image queries only, and there are none")
    cache: dict[str, np.ndarray] = {}
    with ImageBackbone(model_path) as backbone:

        def features(path: Path) -> np.ndarray:
            key = str(path)
            if key not in cache:
                f = backbone.features_one(load_image(path))
                cache[key] = f / max(float(np.linalg.norm(f)), 1e-12)
            return cache[key]

        dim = backbone.dim
        with tqdm(
            total=len(products) + len(image_queries), desc=system, disable=not progress, leave=False
        ) as bar:
            pv = np.zeros((len(products), dim), np.float32)
            has = np.zeros(len(products), bool)
            for i, p in enumerate(products):
                if p.image is not None:
                    pv[i], has[i] = features(p.image), True
                bar.update(1)
            qv = np.zeros((len(image_queries), dim), np.float32)
            for i, q in enumerate(image_queries):
                qv[i] = features(q.image)
                bar.update(1)
    scores = (qv @ pv.T).astype(np.float64)
    scores[:, ~has] = -math.inf
    skipped_kinds = sorted({q.kind for q in queries if q.image is None or q.text})
    notes = (
        [f"not applicable to {', '.join(skipped_kinds)} queries (not image-only)"] if skipped_kinds else []
    )
    return rank_and_score(
        scores,
        [p.id for p in products],
        image_queries,
        system,
        notes,
        {"model": Path(model_path).name, "dim": dim},
    )


# --------------------------------------------------------------------------------------------
# presentation


def format_table(reports: Sequence[EvalReport], title: str | None = None) -> str:
    """A Markdown table: one line per (query kind, system), kinds in first-seen order."""
    kinds: list[str] = []
    for r in reports:
        for k in r.kinds:
            if k not in kinds:
                kinds.append(k)
    header = ["kind", "system", "queries", *(METRIC_LABELS[m] for m in METRICS)]
    lines = []
    if title:
        lines += [title, ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for kind in kinds:
        for r in reports:
            row = r.kind(kind)
            if row is None:
                continue
            values = [f"{getattr(row, m):.3f}" for m in METRICS]
            lines.append("| " + " | ".join([kind, r.system, str(row.queries), *values]) + " |")
    notes = [f"{r.system}: {n}" for r in reports for n in r.notes]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def reports_to_dict(reports: Sequence[EvalReport], **extra: Any) -> dict[str, Any]:
    """JSON-ready ``{"reports": {system: ...}, **extra}`` (what ``--json`` prints)."""
    return {**extra, "reports": {r.system: r.to_dict() for r in reports}}


__all__ = [
    "METRICS",
    "EvalReport",
    "KindMetrics",
    "bm25_baseline",
    "embedder_peer",
    "evaluate",
    "format_table",
    "image_only_corpus",
    "merge_reports",
    "query_metrics",
    "rank_and_score",
    "reports_to_dict",
]
