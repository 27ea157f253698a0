"""Cheap, session-scoped catalogue-index fixtures other rooms may reuse (no TensorFlow).

- ``synthetic_catalogue``: :class:`SyntheticCatalogue` (600 products with seeded random unit
  vectors of dim 32, titles, prices, categories, popularity; space id ``SYNTHETIC_SPACE``).
- ``synthetic_index``: path of an embedded index folder holding it (float16). Read-only:
  copy it (``shutil.copytree``) before changing it.
- ``synthetic_shard``: path of an int8 shard cut from that index (all products).
- ``hash_towers``: :class:`HashTowers`, a towers stand-in whose ``embed_products`` /
  ``embed_queries`` hash the text deterministically (for build/update tests without TF).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SYNTHETIC_SPACE = "5e1ec7ed5ba5e000"
SYNTHETIC_DIM = 32
CATEGORIES = ("Shoes", "Bags", "Watches", "Shirts", "Lamps")
WORDS = ("red", "blue", "leather", "canvas", "classic", "sport", "mini", "travel", "desk", "linen")


@dataclass(frozen=True)
class SyntheticCatalogue:
    space_id: str
    products: list[Any]
    vectors: np.ndarray  # float32 [N, dim], L2-normalised, aligned with products

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.products]


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Seeded random L2-normalised float32 ``[n, dim]``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_products(n: int, seed: int = 0, prefix: str = "sku") -> list[Any]:
    """``n`` Products with titles from a small vocabulary; every 10th has no price."""
    from edgeshelf.catalogue.products import Product

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        words = [WORDS[j] for j in rng.choice(len(WORDS), 2, replace=False)]
        out.append(
            Product(
                id=f"{prefix}{i:05d}",
                title=f"{words[0]} {words[1]} {category.lower()[:-1]} {i}",
                category=category,
                price=None if i % 10 == 0 else round(float(rng.uniform(5, 200)), 2),
                popularity=float(rng.integers(0, 1000)),
                attributes={"colour": words[0]},
            )
        )
    return out


def make_synthetic_index(path: str | Path, catalogue: SyntheticCatalogue, dtype: str = "float16") -> Path:
    """Write an embedded index of ``catalogue`` at ``path`` (a new folder); return the path."""
    from edgeshelf.catalogue.index import CatalogueIndex

    with CatalogueIndex.create(path, space_id=catalogue.space_id, dim=catalogue.dim, dtype=dtype) as index:
        index.upsert(catalogue.products, catalogue.vectors)
    return Path(path)


class HashTowers:
    """Towers stand-in: deterministic unit vectors from a hash of each product's text.

    Has what ``build_index`` needs: ``space_id``, ``config.dim``, ``embed_products``; counts
    the products it embedded in ``calls``. ``fail_after`` raises RuntimeError after that many
    ``embed_products`` calls (an interrupted build).
    """

    class _Config:
        def __init__(self, dim: int) -> None:
            self.dim = dim

    def __init__(
        self, dim: int = SYNTHETIC_DIM, space_id: str = SYNTHETIC_SPACE, fail_after: int | None = None
    ):
        self.config = self._Config(dim)
        self.space_id = space_id
        self.fail_after = fail_after
        self.calls: list[int] = []

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.config.dim), np.float32)
        for n, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            out[n] = unit_vectors(1, self.config.dim, seed)[0]
        return out

    def embed_products(self, products: list[Any], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError(f"HashTowers: simulated crash after {self.fail_after} batches")
        self.calls.append(len(products))
        return self.embed_texts([f"{p.title} {p.category}" for p in products])


@pytest.fixture(scope="session")
def synthetic_catalogue() -> SyntheticCatalogue:
    return SyntheticCatalogue(SYNTHETIC_SPACE, make_products(600), unit_vectors(600, SYNTHETIC_DIM, seed=1))


@pytest.fixture(scope="session")
def synthetic_index(
    tmp_path_factory: pytest.TempPathFactory, synthetic_catalogue: SyntheticCatalogue
) -> Path:
    return make_synthetic_index(
        tmp_path_factory.mktemp("catalogue_index") / "synthetic.index", synthetic_catalogue
    )


@pytest.fixture(scope="session")
def synthetic_shard(tmp_path_factory: pytest.TempPathFactory, synthetic_index: Path) -> Path:
    from edgeshelf.catalogue.build import cut_shard
    from edgeshelf.catalogue.index import CatalogueIndex

    out = tmp_path_factory.mktemp("catalogue_shard") / "synthetic.shard"
    with CatalogueIndex.open(synthetic_index) as index:
        cut_shard(index, out, dtype="int8")
    return out


@pytest.fixture
def hash_towers() -> HashTowers:
    return HashTowers()
