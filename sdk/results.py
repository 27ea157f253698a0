"""Result types shared by every modality and every search path (frozen, numpy inside)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True, repr=False)
class Embedding:
    """One query or product embedding.

    ``vector`` is float32 ``[dim]``, L2-normalised (the metric is inner product = cosine).
    ``modalities`` names the inputs that were present, in ``("text", "image", "video", "audio")``
    order. ``timings_ms`` holds per-stage latencies (``"tokenize"``, ``"text"``, ``"fusion"``, ...).
    """

    vector: np.ndarray
    space_id: str
    modalities: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vector.shape[-1])

    def __repr__(self) -> str:
        head = ", ".join(f"{v:+.3f}" for v in self.vector[:3])
        return (
            f"Embedding(dim={self.dim}, space={self.space_id}, "
            f"modalities={'+'.join(self.modalities) or '-'}, [{head}, ...])"
        )


@dataclass(frozen=True)
class Hit:
    """One ranked product: its id, score (higher is better) and display metadata."""

    product_id: str
    score: float
    title: str = ""
    price: float | None = None
    category: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "score": round(float(self.score), 6),
            "title": self.title,
            "price": self.price,
            "category": self.category,
        }


@dataclass(frozen=True, repr=False)
class SearchResult:
    """Top-k products for one query, best first, and where they came from."""

    hits: tuple[Hit, ...]
    source: Literal["shard", "remote", "index"]
    space_id: str
    latency_ms: float = 0.0
    note: str = ""

    @property
    def ids(self) -> list[str]:
        return [hit.product_id for hit in self.hits]

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([hit.score for hit in self.hits], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)

    def __repr__(self) -> str:
        top = ", ".join(f"{h.product_id}:{h.score:.3f}" for h in self.hits[:3])
        more = ", ..." if len(self.hits) > 3 else ""
        return f"SearchResult({len(self.hits)} from {self.source}, [{top}{more}], {self.latency_ms:.2f} ms)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "space_id": self.space_id,
            "latency_ms": round(self.latency_ms, 3),
            "note": self.note,
            "hits": [hit.to_dict() for hit in self.hits],
        }
