"""The real-data evaluation protocol on ``../shared/data/catalogue/fashion`` (seeded, by product).

Load the catalogue with the ``fashion`` preset, then::

    protocol = fashion_protocol(catalogue, seed=0, test_fraction=0.3)

The products are split at random (seeded) into train and test. Every query is answered from
the test products only (``protocol.corpus(kind)``); train products never appear in a relevant
set. Query kinds (relevance is binary, grade 1):

* ``clean``: ``"<colour> <gender> <articleType>"`` (lower case, e.g. ``"navy blue men shirts"``)
  for every such triple among the test products; relevant = every test product with those three
  attributes (``baseColour``, ``gender``, ``articleType``).
* ``noisy``: each clean query through :class:`~edgeshelf.catalogue.noise.QueryNoise` (typos,
  dropped words, ASR-like confusions); same relevant set; ``meta["clean"]`` is the clean text.
* ``image``: a test product's photo; relevant = the other test products of the same
  ``articleType``; ``exclude`` holds the product itself (drop it from the ranking).
* ``text_to_image``: ``"<colour> <articleType>"`` against the test products embedded from
  their image only (titles hidden: ``protocol.hidden_title_ids``, ``protocol.hides_titles(kind)``);
  relevant = the title-hidden test products with that colour and articleType.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeshelf.catalogue.noise import QueryNoise
from edgeshelf.catalogue.products import Catalogue, LabelledQuery, Product
from edgeshelf.sdk.errors import InvalidInputError

PROTOCOL_VERSION = 1
FASHION_KINDS = ("clean", "noisy", "image", "text_to_image")
_REQUIRED = ("baseColour", "gender", "articleType")


@dataclass(frozen=True, repr=False)
class Protocol:
    """A seeded train/test split by product and the labelled queries per kind.

    ``queries[kind]`` holds the queries of that kind; each is answered against
    ``corpus(kind)`` (product ids), embedded without titles when ``hides_titles(kind)``.
    """

    name: str
    seed: int
    test_fraction: float
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    hidden_title_ids: tuple[str, ...]
    queries: dict[str, tuple[LabelledQuery, ...]] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.queries)

    def all_queries(self) -> tuple[LabelledQuery, ...]:
        return tuple(q for qs in self.queries.values() for q in qs)

    def corpus(self, kind: str) -> tuple[str, ...]:
        """Product ids to index for queries of ``kind``."""
        self._check_kind(kind)
        return self.hidden_title_ids if self.hides_titles(kind) else self.test_ids

    def hides_titles(self, kind: str) -> bool:
        """Whether ``kind`` is answered from products embedded without their title (image only)."""
        self._check_kind(kind)
        return kind == "text_to_image"

    def train_products(self, catalogue: Catalogue) -> list[Product]:
        return [catalogue[i] for i in self.train_ids]

    def test_products(self, catalogue: Catalogue) -> list[Product]:
        return [catalogue[i] for i in self.test_ids]

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": self.name,
            "version": PROTOCOL_VERSION,
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "train": len(self.train_ids),
            "test": len(self.test_ids),
            "hidden_titles": len(self.hidden_title_ids),
            "queries": {k: len(v) for k, v in self.queries.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary, the split and every query (media paths absolute)."""
        return {
            **self.summary(),
            "train_ids": list(self.train_ids),
            "test_ids": list(self.test_ids),
            "hidden_title_ids": list(self.hidden_title_ids),
            "query_list": [q.to_dict() for q in self.all_queries()],
        }

    def _check_kind(self, kind: str) -> None:
        if kind not in self.queries:
            raise InvalidInputError(
                f"unknown query kind {kind!r} for protocol {self.name}; kinds: {', '.join(self.queries)}"
            )

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v)}" for k, v in self.queries.items())
        return f"Protocol({self.name}, seed={self.seed}, train={len(self.train_ids)}, test={len(self.test_ids)}, {counts})"


def split_by_product(
    ids: Sequence[str], seed: int, test_fraction: float
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Seeded split of product ids into (train, test), each sorted; independent of input order."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    ordered = sorted(set(ids))
    if len(ordered) < 2:
        raise InvalidInputError(f"need at least 2 products to split, got {len(ordered)}")
    rng = random.Random(f"edgeshelf-split-{seed}")
    shuffled = list(ordered)
    rng.shuffle(shuffled)
    n_test = min(len(shuffled) - 1, max(1, round(len(shuffled) * test_fraction)))
    test = set(shuffled[:n_test])
    return tuple(i for i in ordered if i not in test), tuple(i for i in ordered if i in test)


def _attr(p: Product, key: str) -> str:
    value = p.attributes.get(key, "")
    if not value and key == "articleType":
        value = p.category
    return value.strip()


def _subsample(items: list[Any], limit: int | None, rng: random.Random) -> list[Any]:
    if limit is None or len(items) <= limit:
        return items
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]


def fashion_protocol(
    catalogue: Catalogue,
    seed: int = 0,
    test_fraction: float = 0.3,
    *,
    max_queries_per_kind: int | None = None,
) -> Protocol:
    """Build the fashion protocol (module docstring) from a catalogue loaded with ``--preset fashion``.

    Deterministic in ``seed``. ``max_queries_per_kind`` keeps a seeded subset of each kind
    (noisy queries follow the kept clean ones).
    """
    products = list(catalogue.products)
    if not products:
        raise InvalidInputError(f"the catalogue {catalogue.source} has no products to build a protocol from")
    if max_queries_per_kind is not None and max_queries_per_kind < 1:
        raise InvalidInputError(f"max_queries_per_kind must be >= 1 or None, got {max_queries_per_kind}")
    missing = [k for k in _REQUIRED if not any(_attr(p, k) for p in products)]
    if missing:
        raise InvalidInputError(
            f"the catalogue {catalogue.source} has no {', '.join(missing)} attribute(s); the fashion protocol "
            f"needs baseColour, gender and articleType: load it with columns='fashion' (--preset fashion)"
        )
    train_ids, test_ids = split_by_product([p.id for p in products], seed, test_fraction)
    test = [catalogue[i] for i in test_ids]
    rng = random.Random(f"edgeshelf-fashion-queries-{seed}")

    triples: dict[tuple[str, str, str], list[str]] = {}
    for p in test:
        key = (_attr(p, "baseColour"), _attr(p, "gender"), _attr(p, "articleType"))
        if all(key):
            triples.setdefault(key, []).append(p.id)
    clean_keys = _subsample(sorted(triples), max_queries_per_kind, rng)
    clean = [
        LabelledQuery(
            id=f"fashion-clean-{k:04d}",
            kind="clean",
            text=f"{c} {g} {a}".lower(),
            relevant=dict.fromkeys(triples[(c, g, a)], 1),
            meta={"baseColour": c, "gender": g, "articleType": a},
        )
        for k, (c, g, a) in enumerate(clean_keys, start=1)
    ]
    noise = QueryNoise(seed)
    noisy = [
        LabelledQuery(
            id=q.id.replace("-clean-", "-noisy-"),
            kind="noisy",
            text=noise.noisy(q.text or "", key=q.id),
            relevant=dict(q.relevant),
            meta={**q.meta, "clean": q.text or ""},
        )
        for q in clean
    ]

    by_type: dict[str, list[str]] = {}
    for p in test:
        a = _attr(p, "articleType")
        if a:
            by_type.setdefault(a, []).append(p.id)
    image_sources = [
        p for p in test if p.image is not None and len(by_type.get(_attr(p, "articleType"), ())) > 1
    ]
    image_sources = _subsample(image_sources, max_queries_per_kind, rng)
    image = [
        LabelledQuery(
            id=f"fashion-image-{k:04d}",
            kind="image",
            image=p.image,
            relevant={i: 1 for i in by_type[_attr(p, "articleType")] if i != p.id},
            exclude=(p.id,),
            meta={"source": p.id, "articleType": _attr(p, "articleType")},
        )
        for k, p in enumerate(image_sources, start=1)
    ]

    hidden = tuple(p.id for p in test if p.image is not None)
    pairs: dict[tuple[str, str], list[str]] = {}
    for i in hidden:
        p = catalogue[i]
        key = (_attr(p, "baseColour"), _attr(p, "articleType"))
        if all(key):
            pairs.setdefault(key, []).append(p.id)
    pair_keys = _subsample(sorted(pairs), max_queries_per_kind, rng)
    text_to_image = [
        LabelledQuery(
            id=f"fashion-t2i-{k:04d}",
            kind="text_to_image",
            text=f"{c} {a}".lower(),
            relevant=dict.fromkeys(pairs[(c, a)], 1),
            meta={"baseColour": c, "articleType": a, "corpus": "image_only"},
        )
        for k, (c, a) in enumerate(pair_keys, start=1)
    ]
    return Protocol(
        name="fashion",
        seed=seed,
        test_fraction=test_fraction,
        train_ids=train_ids,
        test_ids=test_ids,
        hidden_title_ids=hidden,
        queries={
            "clean": tuple(clean),
            "noisy": tuple(noisy),
            "image": tuple(image),
            "text_to_image": tuple(text_to_image),
        },
    )


__all__ = ["FASHION_KINDS", "PROTOCOL_VERSION", "Protocol", "fashion_protocol", "split_by_product"]
