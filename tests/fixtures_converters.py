"""Fixtures of the converters room (session-scoped, cheap; reusable by every room).

- ``converters_towers``: the towers room's ``tiny_towers`` (small, trained on the sample catalogue).
- ``converters_catalogue``: the catalogue room's ``sample_catalogue`` (200 products with images,
  videos, audio and labelled queries).
- ``speaker_bundle`` / ``hub_bundle``: int8 bundle folders converted from those towers with a small
  calibration set (16 items), written with ``force=True`` (tiny towers need not pass the gate;
  the figures are in the manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CALIBRATION_COUNT = 16
HELDOUT_COUNT = 16


@pytest.fixture(scope="session")
def converters_towers(tiny_towers: Any) -> Any:
    """The towers room's small trained towers (a :class:`~edgeshelf.towers.model.Towers`)."""
    return tiny_towers.towers


@pytest.fixture(scope="session")
def converters_catalogue(sample_catalogue: Any) -> Any:
    return sample_catalogue


def _bundle(towers: Any, catalogue: Any, profile: str, out: Path) -> Path:
    from edgeshelf.converters.convert import convert

    report = convert(
        towers,
        profile,
        catalogue,
        out,
        quant="int8",
        force=True,
        calibration_count=CALIBRATION_COUNT,
        heldout_count=HELDOUT_COUNT,
    )
    return report.out


@pytest.fixture(scope="session")
def speaker_bundle(
    converters_towers: Any, converters_catalogue: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An int8 speaker bundle folder (text + audio + fusion)."""
    return _bundle(
        converters_towers, converters_catalogue, "speaker", tmp_path_factory.mktemp("bundles") / "speaker"
    )


@pytest.fixture(scope="session")
def hub_bundle(
    converters_towers: Any, converters_catalogue: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An int8 hub bundle folder (all four modalities + fusion)."""
    return _bundle(converters_towers, converters_catalogue, "hub", tmp_path_factory.mktemp("bundles") / "hub")
