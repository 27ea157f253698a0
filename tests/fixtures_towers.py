"""Fixtures of the towers room (session-scoped; reusable by every room).

- ``tiny_towers``: towers trained for ~20-40 s on the 200-product ``sample_catalogue`` with a
  small architecture (:func:`tiny_config`: 64-d space, 4,096 hash buckets, 32 px images, 1 s
  audio), saved to a temporary folder. It is a :class:`TinyTowers` with ``path`` (the saved
  folder, loadable with ``Towers.load``), ``towers`` (loaded from that folder), ``catalogue``
  and ``train`` (the :class:`~edgeshelf.towers.train.TrainResult`). Its clean text queries
  find a relevant product in the top 10 almost always (checked in ``tests/towers``).
- ``untrained_towers``: the same architecture, freshly initialised (seed 0), not saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def tiny_config():
    """The small architecture of the test towers (fast to train, convert and run)."""
    from edgeshelf.sdk.preprocess import AudioConfig, ImageConfig, PreprocessConfig, TextConfig, VideoConfig
    from edgeshelf.towers.model import TowersConfig

    return TowersConfig(
        dim=64,
        modality_dim=64,
        text_embed_dim=64,
        text_hidden=128,
        image_widths=(16, 32, 48, 64),
        audio_widths=(16, 32),
        fusion_hidden=128,
        head_hidden=128,
        preprocess=PreprocessConfig(
            text=TextConfig(buckets=4096, max_tokens=48),
            image=ImageConfig(size=32),
            audio=AudioConfig(max_seconds=1.0),
            video=VideoConfig(frames=4),
        ),
    )


def tiny_options(**changes: Any):
    """Training settings of the test towers (seeded)."""
    from edgeshelf.towers.train import TrainOptions

    values = {
        "epochs": 36,
        "text_warmup_epochs": 30,  # cheap text-only steps first, then multimodal ones
        "batch_size": 40,
        "learning_rate": 3e-3,
        "seed": 0,
        **changes,
    }
    return TrainOptions(**values)


@dataclass(frozen=True)
class TinyTowers:
    path: Path
    towers: Any
    catalogue: Any
    train: Any


@pytest.fixture(scope="session")
def tiny_towers(sample_catalogue, tmp_path_factory: pytest.TempPathFactory) -> TinyTowers:
    from edgeshelf.towers.model import Towers
    from edgeshelf.towers.train import train

    result = train(sample_catalogue, tiny_options(), config=tiny_config(), progress=False)
    path = result.save(tmp_path_factory.mktemp("tiny_towers") / "towers")
    return TinyTowers(path=path, towers=Towers.load(path), catalogue=sample_catalogue, train=result)


@pytest.fixture(scope="session")
def untrained_towers():
    from edgeshelf.towers.model import Towers

    return Towers.create(tiny_config(), seed=0)
