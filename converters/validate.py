"""The validation gate: does the quantized bundle still find the same products as float?

Figures (all on inputs the calibration never saw):

* per model: cosine between the float32 model's and the quantized model's outputs on held-out
  feeds (mean and 5th percentile); the fusion tower is fed the float encoders' outputs, so each
  model's own quantization error is measured;
* end to end: cosine between the query embeddings of the float32 bundle and the quantized bundle
  (both run by :class:`~edgeshelf.sdk.encoder.QueryEncoder` from raw queries);
* retrieval: the catalogue is embedded by the host towers (as the catalogue room indexes it);
  each query's top 10 under the float and the quantized query embedding overlap (mean
  ``|top10_f & top10_q| / 10``), and recall@10 / nDCG@10 of both on the labelled queries (the
  catalogue's, restricted to what the profile can take; without any, held-out products' own
  text / image / audio as single-answer queries, noted). ``host`` figures (the Keras towers at
  their own input sizes) are shown beside them, ungated, to expose the cost of a profile's
  smaller inputs apart from quantization;
* float ops left in an int8 model, and the bundle's size against the profile's budget.

:class:`GateThresholds` defaults are strict enough that a broken quantization fails (a
calibration set of zeros gives cosines far below 0.9), loose enough that a sound int8
conversion of trained towers passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError


@dataclass(frozen=True)
class GateThresholds:
    """Pass conditions of the gate (cosines in [-1, 1], overlaps and drops in [0, 1] units:
    0.01 = one point of recall). ``max_model_norm_error`` bounds ``|mean(|q| / |f|) - 1|`` of
    each model's outputs (cosine alone misses an output that collapsed in scale: the fusion
    tower mixes the encoders' outputs by magnitude). ``max_float_ops`` applies to ``int8``
    bundles only. ``max_adapter_recall_drop`` applies to bundles with a federated query adapter:
    the host towers with the adapter may lose at most this much recall@10 on the labelled
    queries against the towers alone (an adapter that learned a few households' tastes must not
    cost everyone else's queries)."""

    min_model_cosine_mean: float = 0.98
    min_model_cosine_p5: float = 0.95
    max_model_norm_error: float = 0.1
    min_query_cosine_mean: float = 0.98
    min_query_cosine_p5: float = 0.95
    min_top10_overlap: float = 0.8
    max_recall_drop: float = 0.03
    max_ndcg_drop: float = 0.03
    max_float_ops: int = 0
    max_adapter_recall_drop: float = 0.03

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InvalidInputError(f"GateThresholds.{f.name} must be a number, got {value!r}")

    def updated(self, overrides: Mapping[str, Any] | None) -> GateThresholds:
        """These thresholds with ``overrides`` (unknown names are refused)."""
        if not overrides:
            return self
        valid = {f.name for f in fields(self)}
        bad = sorted(set(overrides) - valid)
        if bad:
            raise InvalidInputError(f"unknown gate thresholds {bad}; valid names are {sorted(valid)}")
        return GateThresholds(**{**asdict(self), **dict(overrides)})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class CosineStats:
    """Cosine similarity between paired float and quantized outputs over ``n`` inputs, and
    the mean ratio of their norms (quantized / float)."""

    mean: float
    p5: float
    min: float
    n: int
    norm_ratio: float = 1.0

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> CosineStats:
        a = np.asarray(a, np.float64).reshape(len(a), -1)
        b = np.asarray(b, np.float64).reshape(len(b), -1)
        if len(a) == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        na = np.linalg.norm(a, axis=1)
        nb = np.linalg.norm(b, axis=1)
        cos = np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)
        both_zero = (na < 1e-12) & (nb < 1e-12)
        cos[both_zero] = 1.0  # identical
        ratio = np.where(both_zero, 1.0, nb / np.maximum(na, 1e-12))
        return cls(
            float(cos.mean()),
            float(np.percentile(cos, 5)),
            float(cos.min()),
            int(len(cos)),
            float(ratio.mean()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": round(self.mean, 6),
            "p5": round(self.p5, 6),
            "min": round(self.min, 6),
            "n": self.n,
            "norm_ratio": round(self.norm_ratio, 6),
        }


@dataclass(frozen=True)
class RetrievalFigures:
    """Float vs quantized retrieval over ``products`` catalogue items.

    ``overlap_queries`` queries give ``top10_overlap``; ``labelled_queries`` give the recall@10
    and nDCG@10 of the float bundle, the quantized bundle and the host towers."""

    products: int
    overlap_queries: int
    labelled_queries: int
    labels: str
    top10_overlap: float
    recall_at_10_float: float
    recall_at_10_quant: float
    ndcg_at_10_float: float
    ndcg_at_10_quant: float
    recall_at_10_host: float = float("nan")
    ndcg_at_10_host: float = float("nan")
    kinds: dict[str, int] = field(default_factory=dict)
    recall_at_10_towers: float = float("nan")  # host towers without the query adapter (adapter bundles)
    ndcg_at_10_towers: float = float("nan")

    @property
    def adapter_recall_drop(self) -> float:
        """Recall@10 the query adapter costs the host towers (NaN without an adapter)."""
        return self.recall_at_10_towers - self.recall_at_10_host

    @property
    def recall_drop(self) -> float:
        return self.recall_at_10_float - self.recall_at_10_quant

    @property
    def ndcg_drop(self) -> float:
        return self.ndcg_at_10_float - self.ndcg_at_10_quant

    def to_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["recall_drop"] = round(self.recall_drop, 6)
        out["ndcg_drop"] = round(self.ndcg_drop, 6)
        if not np.isnan(self.adapter_recall_drop):
            out["adapter_recall_drop"] = round(self.adapter_recall_drop, 6)
        return out


@dataclass(frozen=True, repr=False)
class ValidationReport:
    """The gate's figures and verdict for one bundle (see the module docstring)."""

    quantization: str
    models: dict[str, CosineStats]
    query: CosineStats
    retrieval: RetrievalFigures | None
    float_ops: dict[str, tuple[str, ...]]
    size_bytes: int
    size_budget_mb: float | None
    thresholds: GateThresholds
    failures: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "quantization": self.quantization,
            "models": {role: stats.to_dict() for role, stats in self.models.items()},
            "query": self.query.to_dict(),
            "retrieval": self.retrieval.to_dict() if self.retrieval else None,
            "float_ops": {role: list(ops) for role, ops in self.float_ops.items()},
            "size_bytes": self.size_bytes,
            "size_budget_mb": self.size_budget_mb,
            "thresholds": self.thresholds.to_dict(),
            "notes": list(self.notes),
            "table": self.table(),
        }

    def table(self) -> str:
        """The figures as a fixed-width text table (what ``edgeshelf convert`` prints)."""
        return format_table(self)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else f"FAILED ({len(self.failures)})"
        overlap = f", top10 overlap {self.retrieval.top10_overlap:.3f}" if self.retrieval else ""
        return f"ValidationReport({self.quantization}, query cos {self.query.mean:.4f}{overlap}, {verdict})"


def format_table(report: ValidationReport) -> str:
    t = report.thresholds
    rows: list[tuple[str, str, str, str, str]] = []

    def ok(flag: bool) -> str:
        return "ok" if flag else "FAIL"

    for role, s in report.models.items():
        rows.append(
            (
                f"{role} model cosine mean / p5",
                "",
                f"{s.mean:.4f} / {s.p5:.4f}",
                f">= {t.min_model_cosine_mean} / {t.min_model_cosine_p5}",
                ok(s.mean >= t.min_model_cosine_mean and s.p5 >= t.min_model_cosine_p5),
            )
        )
        rows.append(
            (
                f"{role} model norm ratio",
                "",
                f"{s.norm_ratio:.4f}",
                f"1 +- {t.max_model_norm_error}",
                ok(abs(s.norm_ratio - 1.0) <= t.max_model_norm_error),
            )
        )
    q = report.query
    rows.append(
        (
            "query embedding cosine mean / p5",
            "",
            f"{q.mean:.4f} / {q.p5:.4f}",
            f">= {t.min_query_cosine_mean} / {t.min_query_cosine_p5}",
            ok(q.mean >= t.min_query_cosine_mean and q.p5 >= t.min_query_cosine_p5),
        )
    )
    r = report.retrieval
    if r is not None:
        rows.append(
            (
                f"top-10 overlap ({r.overlap_queries} queries)",
                "",
                f"{r.top10_overlap:.4f}",
                f">= {t.min_top10_overlap}",
                ok(r.top10_overlap >= t.min_top10_overlap),
            )
        )
        rows.append(
            (
                f"recall@10 ({r.labelled_queries} {r.labels})",
                f"{r.recall_at_10_float:.4f}",
                f"{r.recall_at_10_quant:.4f}",
                f"drop <= {t.max_recall_drop}",
                ok(r.recall_drop <= t.max_recall_drop),
            )
        )
        rows.append(
            (
                "nDCG@10",
                f"{r.ndcg_at_10_float:.4f}",
                f"{r.ndcg_at_10_quant:.4f}",
                f"drop <= {t.max_ndcg_drop}",
                ok(r.ndcg_drop <= t.max_ndcg_drop),
            )
        )
        if not np.isnan(r.recall_at_10_host):
            rows.append(
                (
                    "host towers recall@10 / nDCG@10",
                    f"{r.recall_at_10_host:.4f} / {r.ndcg_at_10_host:.4f}",
                    "",
                    "(info)",
                    "",
                )
            )
        if not np.isnan(r.adapter_recall_drop):
            rows.append(
                (
                    "host recall@10 towers -> +adapter",
                    f"{r.recall_at_10_towers:.4f} -> {r.recall_at_10_host:.4f}",
                    "",
                    f"drop <= {t.max_adapter_recall_drop}",
                    ok(r.adapter_recall_drop <= t.max_adapter_recall_drop),
                )
            )
    if report.quantization == "int8":
        n_ops = sum(len(v) for v in report.float_ops.values())
        rows.append(
            ("float ops left (int8)", "", str(n_ops), f"<= {t.max_float_ops}", ok(n_ops <= t.max_float_ops))
        )
    budget = report.size_budget_mb
    rows.append(
        (
            "bundle size MB",
            "",
            f"{report.size_bytes / 1e6:.3f}",
            f"<= {budget}" if budget else "(no budget)",
            ok(budget is None or report.size_bytes <= budget * 1e6),
        )
    )
    header = ("figure", "float", report.quantization, "gate", "")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    verdict = "PASSED" if report.passed else "FAILED: " + "; ".join(report.failures)
    lines.append(f"gate: {verdict}")
    return "\n".join(lines)


def judge(
    quantization: str,
    models: dict[str, CosineStats],
    query: CosineStats,
    retrieval: RetrievalFigures | None,
    float_ops: dict[str, tuple[str, ...]],
    size_bytes: int,
    size_budget_mb: float | None,
    thresholds: GateThresholds,
    notes: Sequence[str] = (),
) -> ValidationReport:
    """Apply ``thresholds`` to the figures: a :class:`ValidationReport` listing each failure."""
    t = thresholds
    failures: list[str] = []
    for role, s in models.items():
        if not s.mean >= t.min_model_cosine_mean:
            failures.append(f"{role} model cosine mean {s.mean:.4f} < {t.min_model_cosine_mean}")
        if not s.p5 >= t.min_model_cosine_p5:
            failures.append(f"{role} model cosine p5 {s.p5:.4f} < {t.min_model_cosine_p5}")
        if not abs(s.norm_ratio - 1.0) <= t.max_model_norm_error:
            failures.append(
                f"{role} model output norm ratio {s.norm_ratio:.4f} is off 1 by more than {t.max_model_norm_error}"
            )
    if not query.mean >= t.min_query_cosine_mean:
        failures.append(f"query embedding cosine mean {query.mean:.4f} < {t.min_query_cosine_mean}")
    if not query.p5 >= t.min_query_cosine_p5:
        failures.append(f"query embedding cosine p5 {query.p5:.4f} < {t.min_query_cosine_p5}")
    if retrieval is not None:
        if not retrieval.top10_overlap >= t.min_top10_overlap:
            failures.append(f"top-10 overlap {retrieval.top10_overlap:.4f} < {t.min_top10_overlap}")
        if not retrieval.recall_drop <= t.max_recall_drop:
            failures.append(f"recall@10 drop {retrieval.recall_drop:.4f} > {t.max_recall_drop}")
        if not retrieval.ndcg_drop <= t.max_ndcg_drop:
            failures.append(f"nDCG@10 drop {retrieval.ndcg_drop:.4f} > {t.max_ndcg_drop}")
        drop = retrieval.adapter_recall_drop
        if not np.isnan(drop) and not drop <= t.max_adapter_recall_drop:
            failures.append(
                f"the query adapter costs the host towers {drop:.4f} recall@10 on the labelled queries "
                f"({retrieval.recall_at_10_towers:.4f} -> {retrieval.recall_at_10_host:.4f}) > "
                f"{t.max_adapter_recall_drop}"
            )
    if quantization == "int8":
        n_ops = sum(len(v) for v in float_ops.values())
        if n_ops > t.max_float_ops:
            listed = ", ".join(f"{role}: {' '.join(ops)}" for role, ops in float_ops.items() if ops)
            failures.append(f"{n_ops} float ops left in the int8 models ({listed}) > {t.max_float_ops}")
    if size_budget_mb is not None and size_bytes > size_budget_mb * 1e6:
        failures.append(f"bundle size {size_bytes / 1e6:.3f} MB > the profile's budget {size_budget_mb} MB")
    return ValidationReport(
        quantization,
        dict(models),
        query,
        retrieval,
        dict(float_ops),
        int(size_bytes),
        size_budget_mb,
        thresholds,
        tuple(failures),
        tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# measuring


def model_cosines(
    float_encoder: Any, quant_encoder: Any, feeds: Mapping[str, Sequence[Mapping[str, np.ndarray]]]
) -> dict[str, CosineStats]:
    """Per-model cosine of float vs quantized runners on the same held-out feeds (real values)."""
    out: dict[str, CosineStats] = {}
    for role, rows in feeds.items():
        if not rows:
            continue
        f_runner, q_runner = float_encoder.runner(role), quant_encoder.runner(role)
        a, b = [], []
        for feed in rows:
            a.append(f_runner.run(feed)[f_runner.outputs[0].name].copy())
            b.append(q_runner.run(feed)[q_runner.outputs[0].name].copy())
        out[role] = CosineStats.of(np.stack(a), np.stack(b))
    return out


def top_k_overlap(a: np.ndarray, b: np.ndarray, catalogue: np.ndarray, k: int = 10) -> float:
    """Mean ``|topk(a_i) & topk(b_i)| / k`` of two query sets ``[Q, d]`` against ``[N, d]``."""
    k = min(k, catalogue.shape[0])
    if len(a) == 0 or k == 0:
        return float("nan")
    ta = np.argsort(-(a @ catalogue.T), axis=1, kind="stable")[:, :k]
    tb = np.argsort(-(b @ catalogue.T), axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ta, tb)]))


def overall_metrics(
    scores: np.ndarray, product_ids: Sequence[str], queries: Sequence[Any]
) -> tuple[float, float]:
    """Mean recall@10 and nDCG@10 over all ``queries`` (each weighs one), via towers.evaluate."""
    from edgeshelf.towers.evaluate import rank_and_score

    report = rank_and_score(scores, list(product_ids), list(queries), "bundle")
    n = sum(r.queries for r in report.rows)
    if n == 0:
        return float("nan"), float("nan")
    recall = sum(r.recall_at_10 * r.queries for r in report.rows) / n
    ndcg = sum(r.ndcg_at_10 * r.queries for r in report.rows) / n
    return float(recall), float(ndcg)


__all__ = [
    "CosineStats",
    "GateThresholds",
    "RetrievalFigures",
    "ValidationReport",
    "format_table",
    "judge",
    "model_cosines",
    "overall_metrics",
    "top_k_overlap",
]
