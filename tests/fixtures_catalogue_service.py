"""Fixtures of the lookup service: a REAL uvicorn server on 127.0.0.1 over a synthetic index.

- ``service_index``: a synthetic float16 catalogue index (``SERVICE_COUNT`` products, dim
  ``SERVICE_DIM``, seeded) and its vectors, built once per session.
- ``lookup_server``: a running service over it (session): ``.url``, ``.token``, ``.space_id``,
  ``.index_path``, ``.shards_dir``, ``.tokens_path``, ``.dim``. A float16 shard of the whole
  index is published as ``"all"``.
- :func:`start_lookup_server` (a context manager) starts one over any index, for tests that
  need their own limits or their own index (the apps tests use it with their index).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SERVICE_SPACE = "5e71ce0000c0ffee"
SERVICE_DIM = 64
SERVICE_COUNT = 2000
CATEGORIES = ("Shoes", "Bags", "Hats", "Coats", "Watches")


@dataclass(frozen=True)
class ServiceIndex:
    path: Path
    space_id: str
    ids: list[str]
    vectors: np.ndarray  # float32 [count, dim], as stored (float16-rounded)


@dataclass(frozen=True)
class LookupServer:
    url: str
    token: str
    space_id: str
    dim: int
    index_path: Path
    shards_dir: Path
    tokens_path: Path


def build_service_index(
    path: Path, count: int = SERVICE_COUNT, dim: int = SERVICE_DIM, seed: int = 7
) -> ServiceIndex:
    """A seeded synthetic float16 index: unit vectors, 5 categories, prices (every 9th unknown)."""
    from edgeshelf.catalogue.index import CatalogueIndex

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    products = [
        {
            "id": f"p{n:05d}",
            "title": f"Product {n}",
            "category": CATEGORIES[n % len(CATEGORIES)],
            "price": None if n % 9 == 0 else round(5.0 + (n * 37 % 200), 2),
            "popularity": float(count - n),
        }
        for n in range(count)
    ]
    with CatalogueIndex.create(path, space_id=SERVICE_SPACE, dim=dim, dtype="float16") as index:
        index.upsert(products, vectors)
        ids = index.list_ids()
        stored = index.vectors_for(ids)
    return ServiceIndex(path=path, space_id=SERVICE_SPACE, ids=ids, vectors=stored)


def shard_bytes_of(index_path: Path, *, version: int | None = None, drop: int = 0, retitle: int = 0) -> bytes:
    """A float16 shard of the whole index (optionally without the first ``drop`` products and with
    the first ``retitle`` titles changed: a later version for delta tests)."""
    from edgeshelf.catalogue.index import CatalogueIndex
    from edgeshelf.sdk.shard import encode_shard

    with CatalogueIndex.open(index_path) as index:
        ids = index.list_ids()[drop:]
        rows = index.get(ids)
        vectors = index.vectors_for(ids)
        generation = index.generation
    titles = [("NEW " if n < retitle else "") + r["title"] for n, r in enumerate(rows)]
    return encode_shard(
        space_id=_space_of(index_path),
        ids=ids,
        vectors=vectors,
        titles=titles,
        prices=[r["price"] for r in rows],
        categories=[r["category"] for r in rows],
        dtype="float16",
        version=generation if version is None else version,
        created=1_700_000_000.0,
    )


def _space_of(index_path: Path) -> str:
    from edgeshelf.catalogue.index import read_index_info

    return read_index_info(index_path).space_id


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(app) -> Iterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1 (a free port) in a thread; yield its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10.0)
        sock.close()


@contextlib.contextmanager
def start_lookup_server(
    index_path: Path, workdir: Path, *, options=None, device: str = "test-device"
) -> Iterator[LookupServer]:
    """Start the lookup service over ``index_path`` with a fresh token file and shard folder in
    ``workdir``; yield a :class:`LookupServer` (with a token for ``device``)."""
    from edgeshelf.catalogue.index import read_index_info
    from edgeshelf.catalogue.service import ServiceOptions, create_app
    from edgeshelf.catalogue.tokens import TokenStore

    workdir.mkdir(parents=True, exist_ok=True)
    tokens_path = workdir / "tokens.json"
    shards_dir = workdir / "shards"
    shards_dir.mkdir(exist_ok=True)
    token = TokenStore.open(tokens_path, create=True).create(device).token
    info = read_index_info(index_path)
    app = create_app(
        index_path, tokens_path, shards_dir, options or ServiceOptions(rate_per_s=0, refresh_s=0)
    )
    with serve_app(app) as url:
        yield LookupServer(
            url=url,
            token=token,
            space_id=info.space_id,
            dim=info.dim,
            index_path=Path(index_path),
            shards_dir=shards_dir,
            tokens_path=tokens_path,
        )


@pytest.fixture(scope="session")
def service_index(tmp_path_factory) -> ServiceIndex:
    return build_service_index(tmp_path_factory.mktemp("service_index") / "index")


@pytest.fixture(scope="session")
def lookup_server(service_index, tmp_path_factory) -> Iterator[LookupServer]:
    """A running lookup service over ``service_index`` (rate limit 10000/s, shard "all" published)."""
    from edgeshelf.catalogue.service import ServiceOptions, publish_shard

    workdir = tmp_path_factory.mktemp("lookup_server")
    options = ServiceOptions(rate_per_s=10_000, burst=10_000, refresh_s=0)
    with start_lookup_server(service_index.path, workdir, options=options) as server:
        shard = workdir / "all-v1.shard"
        shard.write_bytes(shard_bytes_of(service_index.path))
        publish_shard(server.shards_dir, "all", shard)
        yield server
