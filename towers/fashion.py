"""The fashion experiment: train on the protocol's train split, evaluate every kind on its test split.

The protocol (:func:`edgeshelf.catalogue.protocol.fashion_protocol`) splits the real fashion
catalogue by product (seeded) and builds the test queries. Training sees only the train
products, plus labelled *training* queries made by the same templates from the train products
alone (:func:`training_queries`): ``"<colour> <gender> <articleType>"`` (clean and noisy, with
a noise seed of its own) and ``"<colour> <articleType>"``, each relevant to the train products
with those attributes. No test product or test query is used for training.

Evaluation (:func:`evaluate_fashion`) ranks, per kind, the protocol's corpus: the test products
with every modality, or, for ``text_to_image``, the test products embedded from their image only.
Beside the towers it scores BM25 over the titles (text kinds whose titles are visible) and,
given a model file, a pretrained image embedder as is (image kind), on the same split.

Rerun (see ``towers/RESULTS.md``)::

    edgeshelf train --catalogue ../shared/data/catalogue/fashion/products.csv --preset fashion \\
        --protocol fashion --image-backbone ../shared/data/models/mobilenet_v3_small_075_224_embedder.tflite \\
        --out towers-fashion
    edgeshelf evaluate --towers towers-fashion --catalogue ../shared/data/catalogue/fashion/products.csv \\
        --preset fashion --protocol fashion \\
        --peer ../shared/data/models/mobilenet_v3_small_075_224_embedder.tflite
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.towers.evaluate import (
    EvalReport,
    bm25_baseline,
    embedder_peer,
    merge_reports,
    rank_and_score,
)

PROTOCOLS = ("fashion",)
TEST_FRACTION = 0.3


def build_protocol(
    catalogue: Any, name: str = "fashion", seed: int = 0, max_queries_per_kind: int | None = None
):
    """The named protocol of ``catalogue`` (only ``"fashion"`` exists)."""
    if name not in PROTOCOLS:
        raise InvalidInputError(f"unknown protocol {name!r}; protocols: {', '.join(PROTOCOLS)}")
    from edgeshelf.catalogue.protocol import fashion_protocol

    return fashion_protocol(
        catalogue, seed=seed, test_fraction=TEST_FRACTION, max_queries_per_kind=max_queries_per_kind
    )


def protocol_block(protocol: Any) -> dict[str, Any]:
    """What ``towers.json`` records of the split a model was trained on."""
    return {
        "name": protocol.name,
        "seed": protocol.seed,
        "test_fraction": protocol.test_fraction,
        "train": len(protocol.train_ids),
        "test": len(protocol.test_ids),
    }


def training_queries(catalogue: Any, protocol: Any, noise_seed: int = 1_000_003) -> list[Any]:
    """Labelled training queries from the protocol's templates over the TRAIN products only."""
    from edgeshelf.catalogue.noise import QueryNoise
    from edgeshelf.catalogue.products import LabelledQuery

    def attr(p: Any, key: str) -> str:
        value = p.attributes.get(key, "") or (p.category if key == "articleType" else "")
        return value.strip()

    train = protocol.train_products(catalogue)
    triples: dict[tuple[str, str, str], list[str]] = {}
    pairs: dict[tuple[str, str], list[str]] = {}
    for p in train:
        c, g, a = attr(p, "baseColour"), attr(p, "gender"), attr(p, "articleType")
        if c and g and a:
            triples.setdefault((c, g, a), []).append(p.id)
        if c and a:
            pairs.setdefault((c, a), []).append(p.id)
    noise = QueryNoise(noise_seed)
    out = []
    for k, (key, ids) in enumerate(sorted(triples.items())):
        text = " ".join(key).lower()
        rel = dict.fromkeys(ids, 1)
        out.append(LabelledQuery(f"train-clean-{k:04d}", "clean", text=text, relevant=rel))
        out.append(
            LabelledQuery(f"train-noisy-{k:04d}", "noisy", text=noise.noisy(text, key=str(k)), relevant=rel)
        )
    for k, (key, ids) in enumerate(sorted(pairs.items())):
        out.append(
            LabelledQuery(
                f"train-colour-type-{k:04d}",
                "text_to_image",
                text=" ".join(key).lower(),
                relevant=dict.fromkeys(ids, 1),
            )
        )
    return out


def check_split(meta: dict[str, Any], protocol: Any, catalogue_fingerprint: str) -> list[str]:
    """Refuse towers trained on another split of this catalogue; notes on other mismatches."""
    training = meta.get("training") or {}
    trained = training.get("protocol")
    if trained:
        wanted = (protocol.name, protocol.seed, protocol.test_fraction)
        got = (trained.get("name"), trained.get("seed"), trained.get("test_fraction"))
        if got != wanted:
            raise InvalidInputError(
                f"the towers were trained on the {got[0]} split with seed {got[1]} (test fraction {got[2]}); "
                f"evaluating on seed {wanted[1]} (test fraction {wanted[2]}) would score products they were "
                f"trained on: pass --seed {got[1]} or retrain with --protocol {wanted[0]} --seed {wanted[1]}"
            )
        return []
    if training.get("catalogue_fingerprint") == catalogue_fingerprint:
        return ["towers were trained on the whole catalogue, test products included: figures are optimistic"]
    return ["towers were not trained with this protocol (no 'protocol' in towers.json)"]


def evaluate_fashion(
    towers: Any,
    catalogue: Any,
    protocol: Any,
    peer_model: str | Path | None = None,
    bm25: bool = True,
    batch_size: int = 64,
    progress: bool = False,
) -> list[EvalReport]:
    """Towers (every kind), BM25 (text kinds with visible titles) and the peer (image) on the test split."""
    test = protocol.test_products(catalogue)
    hidden = set(protocol.hidden_title_ids)
    by_id = {p.id: i for i, p in enumerate(test)}
    full = towers.embed_products(test, batch_size=batch_size, progress=progress)
    hidden_products = [p for p in test if p.id in hidden]
    image_only = (
        towers.embed(
            texts=[None] * len(hidden_products),
            images=[p.image for p in hidden_products],
            videos=[p.video for p in hidden_products],
            audios=[p.audio for p in hidden_products],
            batch_size=batch_size,
            progress=progress,
        )
        if hidden_products
        else None
    )
    parts = []
    text_kinds, blind_kinds = [], []
    for kind in protocol.kinds:
        queries = list(protocol.queries[kind])
        if not queries:
            continue
        qv = towers.embed_queries(queries, batch_size=batch_size, progress=progress)
        if protocol.hides_titles(kind):
            ids = [p.id for p in hidden_products]
            vectors = image_only
            blind_kinds.append(kind)
            note = f"{kind}: {len(ids)} test products embedded from their image only (titles hidden)"
            parts.append(rank_and_score(qv @ vectors.T, ids, queries, "towers", [note]))
        else:
            ids = list(protocol.corpus(kind))
            vectors = full[[by_id[i] for i in ids]]
            parts.append(rank_and_score(qv @ vectors.T, ids, queries, "towers"))
            if any(q.text for q in queries):
                text_kinds.append(kind)
    reports = [merge_reports("towers", parts, {"space_id": towers.space_id, **protocol.summary()})]
    if bm25 and text_kinds:
        bm_parts = [
            bm25_baseline(test, list(protocol.queries[k]), products_subset=protocol.corpus(k))
            for k in text_kinds
        ]
        report = merge_reports("bm25", bm_parts, bm_parts[0].info)
        notes = list(report.notes)
        if blind_kinds:
            notes.append(f"not applicable to {', '.join(blind_kinds)} (titles hidden)")
        reports.append(EvalReport("bm25", report.rows, report.products, tuple(notes), report.info))
    image_kinds = [
        k for k in protocol.kinds if any(q.image is not None and not q.text for q in protocol.queries[k])
    ]
    if peer_model is not None and image_kinds:
        queries = [q for k in image_kinds for q in protocol.queries[k]]
        reports.append(
            embedder_peer(test, peer_model, queries, products_subset=protocol.test_ids, progress=progress)
        )
    return reports


def subsample_protocol(protocol: Any, per_kind: int) -> Any:
    """The same split with at most ``per_kind`` queries a kind (first ones): quick checks."""
    from dataclasses import replace

    return replace(protocol, queries={k: tuple(v[:per_kind]) for k, v in protocol.queries.items()})


__all__ = [
    "PROTOCOLS",
    "TEST_FRACTION",
    "build_protocol",
    "check_split",
    "evaluate_fashion",
    "protocol_block",
    "subsample_protocol",
    "training_queries",
]
