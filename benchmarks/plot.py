"""PNG figures of the benchmark documents (matplotlib, Agg backend; imported only for ``--plot``).

* :func:`plot_latency`: the latency distribution of each stage (box plots over the raw samples,
  log time axis), and with ``--vs`` the per-system distributions of each compared query.
* :func:`plot_search`: single-query p50 per system against catalogue size, and recall@k.
* :func:`plot_quality`: nDCG@10 per kind and system, and the quantization error: the distribution
  of 1 - cosine(bundle query embedding, float query embedding) per bundle (log axis).

Each function reads only the JSON document (so saved results of other devices can be plotted)
and writes the PNG atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from edgeshelf.sdk.errors import require
from edgeshelf.sdk.fileio import atomic_write_bytes


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or :class:`MissingDependencyError` naming the extra."""
    matplotlib = require("matplotlib", "host")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return atomic_write_bytes(Path(path), buffer.getvalue())


def _title(doc: dict[str, Any], what: str) -> str:
    m = doc["machine"]
    emulated = " - EMULATED" if m.get("emulated") else ""
    return f"{what} - {m['cpu_model']} ({m['cpu_count']} cpus, load {m['load_average'][:1]}){emulated} - {doc['created_utc']}"


def plot_latency(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Box plots of every stage's samples (and of each ``--vs`` system) into ``path``."""
    plt = require_matplotlib()
    stages = doc["stages"]
    names = list(stages)
    cmp = doc.get("comparison")
    rows = 2 if cmp else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 0.45 * len(names) + 2 + (4 if cmp else 0)), squeeze=False)
    ax = axes[0][0]
    data = [stages[n]["samples_ms"] for n in names]
    ax.boxplot(data, vert=False, tick_labels=names, showfliers=True, whis=(1, 99))
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log); whiskers p1-p99")
    b = doc["bundle"]
    ax.set_title(
        _title(doc, f"latency: {b['profile']} {b['quantization']} bundle, {b['threads']} thread(s)"),
        fontsize=9,
    )
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)
    if cmp:
        ax = axes[1][0]
        labels, data = [], []
        for query, q in cmp["queries"].items():
            for system, samples in q["samples_ms"].items():
                labels.append(f"{query} {system}")
                data.append(samples)
        ax.boxplot(data, vert=False, tick_labels=labels, whis=(1, 99))
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds (log), interleaved pair by pair")
        ax.set_title("--vs: the same queries through each system", fontsize=9)
        ax.invert_yaxis()
        ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_search(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Single-query p50 and recall@k per system against catalogue size into ``path``."""
    plt = require_matplotlib()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    systems = sorted({name for row in doc["rows"] for name in row["systems"]})
    for name in systems:
        pts = [(r["n"], r["systems"][name]) for r in doc["rows"] if name in r["systems"]]
        left.plot([n for n, _ in pts], [s["single"]["p50_ms"] for _, s in pts], marker="o", label=name)
        right.plot([n for n, _ in pts], [s["recall_at_k"] for _, s in pts], marker="o", label=name)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("catalogue size")
    left.set_ylabel("single-query p50 (ms)")
    right.set_xscale("log")
    right.set_xlabel("catalogue size")
    right.set_ylabel(f"recall@{doc['settings']['k']} vs exact float32")
    right.set_ylim(0, 1.02)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(_title(doc, "search"), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_quality(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """nDCG@10 per kind and system, and the quantization-error histograms, into ``path``."""
    plt = require_matplotlib()
    import numpy as np

    quant = doc.get("quantization") or {}
    fig, axes = plt.subplots(1, 2 if quant else 1, figsize=(12 if quant else 7, 4.5), squeeze=False)
    ax = axes[0][0]
    kinds = list(doc["kinds"])
    systems = list(doc["systems"])
    width = 0.8 / max(1, len(systems))
    x = np.arange(len(kinds))
    for n, name in enumerate(systems):
        values = [doc["systems"][name]["kinds"].get(k, {}).get("ndcg_at_10", np.nan) for k in kinds]
        ax.bar(x + n * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, kinds, rotation=20)
    ax.set_ylabel("nDCG@10")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("retrieval quality per query kind (missing bar: not applicable)", fontsize=9)
    if quant:
        ax = axes[0][1]
        names = list(quant)
        # 1 - cosine on a log axis: float16/float32 bundles sit at ~0, int8 at ~1e-3
        data = [
            np.maximum(1.0 - np.asarray([v for s in quant[n]["samples"].values() for v in s]), 1e-7)
            for n in names
        ]
        ax.boxplot(
            data, vert=False, tick_labels=[f"{n} (n={len(d)})" for n, d in zip(names, data)], whis=(1, 99)
        )
        ax.set_xscale("log")
        ax.set_xlabel("1 - cosine(bundle query embedding, float query embedding), log; floor 1e-7")
        ax.set_title("quantization error per query", fontsize=9)
        ax.invert_yaxis()
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(_title(doc, f"quality: {doc['catalogue']['path']}"), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["plot_latency", "plot_quality", "plot_search", "require_matplotlib"]
