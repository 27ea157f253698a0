"""Fixtures of the catalogue data (cheap, session-scoped; reusable by every room).

- ``sample_catalogue_dir``: a 200-product sample catalogue (seed 0) generated once per session
  into a temporary folder (products.csv, images/, videos/, audio/, queries.jsonl, ...).
- ``sample_catalogue``: that folder loaded (:class:`edgeshelf.catalogue.products.Catalogue`, with
  its labelled queries).
- ``fashion_catalogue``: ``../shared/data/catalogue/fashion/products.csv`` loaded with the
  ``fashion`` preset (2,583 products with images); skips where the shared data is absent
  (fails under ``EDGESHELF_REQUIRE_SHARED_DATA=1``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_PRODUCTS = 200
SAMPLE_SEED = 0


@pytest.fixture(scope="session")
def sample_catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeshelf.catalogue.sample import generate_sample_catalogue

    out = tmp_path_factory.mktemp("sample_catalogue") / "catalogue"
    generate_sample_catalogue(out, seed=SAMPLE_SEED, products=SAMPLE_PRODUCTS)
    return out


@pytest.fixture(scope="session")
def sample_catalogue(sample_catalogue_dir: Path):
    from edgeshelf.catalogue.products import load_catalogue

    return load_catalogue(sample_catalogue_dir)


@pytest.fixture(scope="session")
def fashion_catalogue():
    from edgeshelf.catalogue.products import load_catalogue

    from tests.conftest import require_shared_data

    folder = require_shared_data("catalogue", "fashion")
    return load_catalogue(folder / "products.csv", columns="fashion")
