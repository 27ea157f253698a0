"""Shared test plumbing.

Tests that read ``../shared/data`` use the ``shared_data`` fixture: where that folder is absent
(a user's clone) they skip with the reason; with ``EDGESHELF_REQUIRE_SHARED_DATA=1`` (set by
``.ci/run``) a missing folder fails them instead, so CI always runs them.

Cross-room fixtures (a small sample catalogue, tiny trained towers, a bundle, a shard) live in
``tests/fixtures_*.py``, one module per room, loaded below.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# TensorFlow must be imported before usearch: the other order breaks the TFLite converter's
# int8 path in one process ("Failed VHLO to version"). Hosts without TensorFlow skip this.
try:  # noqa: SIM105
    import tensorflow  # noqa: F401
except ImportError:
    pass

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGESHELF_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

pytest_plugins = [
    f"tests.{p.stem}" for p in sorted((REPO_ROOT / "tests").glob("fixtures_*.py"))
]


def require_shared_data(*relative: str) -> Path:
    """Return ``SHARED_DATA/relative`` or skip (fail under EDGESHELF_REQUIRE_SHARED_DATA=1)."""
    path = SHARED_DATA.joinpath(*relative)
    if not path.exists():
        reason = f"{path} is absent (the shared real-data folder; see ../shared/data/README.md)"
        if os.environ.get("EDGESHELF_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"EDGESHELF_REQUIRE_SHARED_DATA=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The root of ``../shared/data`` (skips or fails where absent, see module docstring)."""
    return require_shared_data()
