"""Fixtures of the device-app tests: one real pipeline per session, built from the shared fixtures.

``converters_towers`` (trained tiny towers) -> ``speaker_bundle`` / ``hub_bundle`` (int8) and
``apps_index`` (the 200-product sample catalogue embedded with the same towers) -> ``apps_shard``
(int8, every product) and ``apps_server`` (the real lookup service over that index).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

K = 10
VOICE = "en-us+f5"  # measured: pocketsphinx's English model hears this espeak-ng voice best


@pytest.fixture(scope="session")
def apps_index(
    converters_towers: Any, sample_catalogue: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from edgeshelf.catalogue.build import build_index

    out = tmp_path_factory.mktemp("apps") / "catalogue.index"
    build_index(sample_catalogue, converters_towers, out, progress=False)
    return out


@pytest.fixture(scope="session")
def apps_shard(apps_index: Path) -> Path:
    from edgeshelf.catalogue.build import cut_shard
    from edgeshelf.catalogue.index import CatalogueIndex

    out = apps_index.parent / "catalogue.shard"
    with CatalogueIndex.open(apps_index) as index:
        cut_shard(index, out, dtype="int8")
    return out


@pytest.fixture(scope="session")
def apps_server(apps_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real lookup service (uvicorn on 127.0.0.1) over ``apps_index``."""
    from edgeshelf.catalogue.service import ServiceOptions

    from tests.fixtures_catalogue_service import start_lookup_server

    options = ServiceOptions(rate_per_s=0, refresh_s=0)
    with start_lookup_server(apps_index, tmp_path_factory.mktemp("apps_server"), options=options) as server:
        yield server


@pytest.fixture(scope="session")
def speaker_app(speaker_bundle: Path, apps_shard: Path) -> Iterator[Any]:
    """A SpeakerApp on the shard alone (the speech model loads on first use)."""
    from edgeshelf.sdk import AppOptions, SpeakerApp

    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=AppOptions(policy="local-only")) as app:
        yield app


@pytest.fixture(scope="session")
def hub_app(hub_bundle: Path, apps_shard: Path) -> Iterator[Any]:
    from edgeshelf.sdk import AppOptions, HubApp

    with HubApp.open(hub_bundle, shard=apps_shard, options=AppOptions(policy="local-only")) as app:
        yield app


def english_products(catalogue: Any, count: int) -> list[Any]:
    """The first ``count`` products with an English title (a spoken query of the speaker)."""
    return [p for p in catalogue.products if p.attributes.get("lang") == "en"][:count]


def graded(catalogue: Any, product: Any) -> dict[str, int]:
    """Relevance of every product to one asked-for product: 3 itself, 1 the same category."""
    return {
        p.id: (3 if p.id == product.id else 1) for p in catalogue.products if p.category == product.category
    }


def best_grade(result: Any, relevant: dict[str, int]) -> int:
    """The highest relevance grade among the hits (0: nothing relevant in the list)."""
    return max((relevant.get(pid, 0) for pid in result.ids), default=0)


def pcm16(path: Path) -> np.ndarray:
    from edgeshelf.sdk.preprocess import read_wav

    samples, _ = read_wav(path)
    return (samples * 32767).astype(np.int16)


@pytest.fixture(scope="session")
def host_ids(converters_towers: Any, apps_index: Path):
    """The reference answer: ``host_ids(texts=[...] | images=[...] | videos=[...])`` -> the top-K
    product ids of the float Keras towers over the float16 index (what the device approximates)."""
    from edgeshelf.catalogue.index import CatalogueIndex

    index = CatalogueIndex.open(apps_index)

    def search(**inputs: list[Any]) -> list[str]:
        inputs = {k: [str(v) if isinstance(v, Path) else v for v in values] for k, values in inputs.items()}
        return index.search(converters_towers.embed(**inputs), k=K)[0].ids

    yield search
    index.close()


def check_against_host(
    pairs: list[tuple[list[str], list[str], dict[str, int]]], min_overlap: int = 7
) -> tuple[int, int]:
    """``pairs`` of (device ids, host ids, relevance): each device list must hold at least
    ``min_overlap`` of the host's top K (int8 vs float), and the device must find the intended
    product or its category about as often as the float towers do (at most one query fewer), and
    at least once. Returns (device hits, host hits)."""
    device_hits = host_hits = 0
    for device, host, relevant in pairs:
        assert len(set(device) & set(host)) >= min_overlap, (device, host)
        device_hits += max((relevant.get(i, 0) for i in device), default=0) >= 1
        host_hits += max((relevant.get(i, 0) for i in host), default=0) >= 1
    assert device_hits >= max(1, host_hits - 1), (device_hits, host_hits)
    return device_hits, host_hits


@pytest.fixture(scope="session")
def glasses_bundle(
    converters_towers: Any, sample_catalogue: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An int8 glasses bundle (text + image at the profile's 64 px; no video model)."""
    from edgeshelf.converters.convert import convert

    out = tmp_path_factory.mktemp("apps_bundles") / "glasses"
    return convert(
        converters_towers,
        "glasses",
        sample_catalogue,
        out,
        quant="int8",
        force=True,
        calibration_count=16,
        heldout_count=16,
    ).out
