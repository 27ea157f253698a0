"""Fixtures of the benchmark tests: small real artifacts from the shared fixtures.

``bench_shard``: an int8 shard in the space of ``speaker_bundle`` / ``hub_bundle`` (the sample
catalogue's products with seeded random vectors: the latency benchmark needs real files and a
matching space, not meaningful neighbours). ``bench_wav``: a spoken product title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def bench_shard(
    speaker_bundle: Path, sample_catalogue: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from edgeshelf.sdk.bundle import read_manifest
    from edgeshelf.sdk.shard import encode_shard, write_shard

    manifest = read_manifest(speaker_bundle)
    products = list(sample_catalogue.products)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(products), manifest.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    data = encode_shard(
        space_id=manifest.space_id,
        ids=[p.id for p in products],
        vectors=vectors,
        titles=[p.title for p in products],
        prices=[p.price for p in products],
        categories=[p.category for p in products],
    )
    return write_shard(tmp_path_factory.mktemp("bench") / "catalogue.shard", data)


@pytest.fixture(scope="session")
def bench_wav(espeak_wav: Any, sample_catalogue: Any) -> Path:
    english = [p for p in sample_catalogue.products if p.attributes.get("lang") == "en"]
    return espeak_wav(english[0].title, voice="en-us+f5")


def check_doc(doc: dict[str, Any]) -> None:
    """Validate a benchmark document with the built-in checker and, where installed, jsonschema."""
    from edgeshelf.benchmarks.schema import SCHEMAS, validate

    validate(doc)
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.validate(doc, SCHEMAS[doc["benchmark"]])
