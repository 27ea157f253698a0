"""The catalogue index on Milvus (``pymilvus``), for catalogues that outgrow one machine.

Same API as :class:`~edgeshelf.catalogue.index.CatalogueIndex`. Tests and small setups use
Milvus Lite (``milvus-lite``, embedded: the URI is a ``.db`` file); a Milvus server is
``http://host:19530``. Vectors are stored as ``FLOAT_VECTOR`` (float32) under a ``FLAT`` index
with the ``IP`` metric, so search is exact and agrees with the embedded backend.

Two collections: ``<name>`` (one row per product: id, vector, title, description, category,
price + has_price, popularity, attributes JSON, fingerprint, generation) and ``<name>_meta``
(space id, dim, generation). Milvus has no multi-statement transactions: an upsert is atomic
per call (Milvus semantics), consistency level ``Strong`` makes writes visible to the next
read, and a reader sees every committed write immediately (no snapshots; ``refresh()`` only
re-reads the generation). Milvus Lite is slow for bulk search; it is the correctness test of
this backend, not the default.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from edgeshelf.catalogue.index import (
    MANIFEST,
    IndexInfo,
    as_matrix,
    check_dtype,
    normalise_filters,
    product_row,
    search_queries,
)
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    InvalidInputError,
    ModelNotFoundError,
    ServiceError,
    SpaceMismatchError,
    require,
)
from edgeshelf.sdk.fileio import atomic_write_text
from edgeshelf.sdk.results import Hit, SearchResult

DEFAULT_COLLECTION = "edgeshelf_products"
LITE_FILE = "milvus.db"
_MAX_ID = 512
_MAX_TEXT = 8192
_OUTPUT = ["title", "description", "category", "price", "has_price", "popularity", "attributes"]


def _literal(value: str) -> str:
    """A Milvus expression string literal (JSON quoting escapes quotes and backslashes)."""
    return json.dumps(str(value), ensure_ascii=False)


def filter_expression(filters: dict[str, Any] | None) -> str:
    """Milvus boolean expression for ``{"category", "max_price", "min_price"}`` ('' = none)."""
    flt = normalise_filters(filters)
    parts = []
    if "category" in flt:
        parts.append(f"category in [{', '.join(_literal(c) for c in flt['category'])}]")
    if "max_price" in flt:
        parts.append(f"(has_price == true and price <= {flt['max_price']!r})")
    if "min_price" in flt:
        parts.append(f"(has_price == true and price >= {flt['min_price']!r})")
    return " and ".join(parts)


class MilvusCatalogueIndex:
    """The catalogue index over a Milvus collection (see the module docstring)."""

    backend = "milvus"

    def __init__(self, client: Any, uri: str, collection: str, folder: Path | None) -> None:
        self._client = client
        self._uri = uri
        self._collection = collection
        self._meta_collection = f"{collection}_meta"
        self._folder = folder
        self._closed = False
        meta = self._read_meta()
        self._space_id = meta["space_id"]
        self._dim = int(meta["dim"])
        self._generation = int(meta["generation"])

    # ---- construction

    @staticmethod
    def _connect(uri: str) -> Any:
        pymilvus = require("pymilvus", "server")
        try:
            return pymilvus.MilvusClient(uri)
        except Exception as exc:  # noqa: BLE001 - pymilvus raises many types; report one
            raise ServiceError(f"cannot connect to Milvus at {uri}: {exc}") from exc

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        *,
        space_id: str,
        dim: int,
        dtype: str = "float32",
        uri: str | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> MilvusCatalogueIndex:
        """Create the collections and ``folder/index.json`` naming them.

        ``uri``: Milvus Lite file or server URI (default: Milvus Lite at ``folder/milvus.db``).
        ``dtype`` is recorded only: Milvus stores float32 vectors.
        """
        check_dtype(dtype)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stored_uri = uri if uri is not None else LITE_FILE
        client = cls._connect(_resolve_uri(stored_uri, folder))
        pymilvus = require("pymilvus", "server")
        if client.has_collection(collection):
            raise InvalidInputError(
                f"Milvus at {stored_uri} already has a collection {collection!r}; open it, or choose another name"
            )
        types = pymilvus.DataType
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", types.VARCHAR, is_primary=True, max_length=_MAX_ID)
        schema.add_field("vector", types.FLOAT_VECTOR, dim=int(dim))
        schema.add_field("title", types.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("description", types.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("category", types.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("price", types.DOUBLE)
        schema.add_field("has_price", types.BOOL)
        schema.add_field("popularity", types.DOUBLE)
        schema.add_field("attributes", types.JSON)
        schema.add_field("fingerprint", types.VARCHAR, max_length=128)
        schema.add_field("generation", types.INT64)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong")
        meta_schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        meta_schema.add_field("key", types.VARCHAR, is_primary=True, max_length=64)
        meta_schema.add_field("value", types.VARCHAR, max_length=1024)
        meta_schema.add_field("unused", types.FLOAT_VECTOR, dim=2)
        meta_params = client.prepare_index_params()
        meta_params.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
        client.create_collection(
            f"{collection}_meta", schema=meta_schema, index_params=meta_params, consistency_level="Strong"
        )
        now = repr(time.time())
        client.upsert(
            f"{collection}_meta",
            [
                {"key": key, "value": value, "unused": [0.0, 0.0]}
                for key, value in (
                    ("space_id", space_id),
                    ("dim", str(int(dim))),
                    ("dtype", "float32"),
                    ("generation", "0"),
                    ("created", now),
                    ("updated", now),
                )
            ],
        )
        info = IndexInfo(
            backend="milvus",
            space_id=space_id,
            dim=int(dim),
            dtype="float32",
            uri=stored_uri,
            collection=collection,
        )
        atomic_write_text(folder / MANIFEST, json.dumps(info.to_dict(), indent=2) + "\n")
        return cls(client, stored_uri, collection, folder)

    @classmethod
    def open_folder(cls, folder: Path, info: IndexInfo) -> MilvusCatalogueIndex:
        """Open the Milvus index an ``index.json`` names."""
        uri = info.uri or LITE_FILE
        client = cls._connect(_resolve_uri(uri, folder))
        index = cls(client, uri, info.collection or DEFAULT_COLLECTION, folder)
        if index.space_id != info.space_id:
            index.close()
            raise SpaceMismatchError(
                f"Milvus collection named by {folder / MANIFEST}",
                info.space_id,
                index.space_id,
                "the collection was rebuilt for another space: rebuild the index folder too",
            )
        return index

    @classmethod
    def open_uri(cls, uri: str, collection: str = DEFAULT_COLLECTION) -> MilvusCatalogueIndex:
        """Open a collection directly at a Milvus URI (``file.db`` or ``http://host:19530``)."""
        if not (uri.startswith(("http://", "https://", "tcp://", "unix:")) or Path(uri).is_file()):
            raise ModelNotFoundError(
                f"{uri} is neither an index folder nor an existing Milvus Lite file or server URI; "
                "build one with `edgeshelf catalogue build --backend milvus`"
            )
        client = cls._connect(uri)
        if not client.has_collection(collection):
            raise ModelNotFoundError(
                f"Milvus at {uri} has no collection {collection!r}; build the index first"
            )
        return cls(client, uri, collection, None)

    # ---- properties

    @property
    def path(self) -> Path | None:
        return self._folder

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def space_id(self) -> str:
        return self._space_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def dtype(self) -> str:
        return "float32"

    @property
    def count(self) -> int:
        self._check_open()
        rows = self._client.query(self._collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def generation(self) -> int:
        return self._generation

    def __len__(self) -> int:
        return self.count

    def __contains__(self, product_id: object) -> bool:
        self._check_open()
        return bool(self._client.get(self._collection, ids=[str(product_id)], output_fields=["id"]))

    def __repr__(self) -> str:
        return f"MilvusCatalogueIndex({self._uri!r}, {self._collection}, space={self._space_id}, dim={self._dim})"

    # ---- life cycle

    def close(self) -> None:
        """Close the client (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> MilvusCatalogueIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> bool:
        """Re-read the generation (Milvus readers always see committed writes)."""
        before = self._generation
        self._generation = int(self._read_meta()["generation"])
        return self._generation != before

    # ---- writing

    def upsert(
        self, products: Sequence[Any], vectors: np.ndarray, *, fingerprints: Sequence[str] | None = None
    ) -> int:
        """Add or replace products with float32 ``[N, dim]`` vectors; return the generation."""
        if fingerprints is not None and len(fingerprints) != len(products):
            raise InvalidInputError(f"{len(fingerprints)} fingerprints for {len(products)} products")
        rows = [product_row(p, fp) for p, fp in zip(products, fingerprints or [""] * len(products))]
        matrix = as_matrix(vectors, self._dim)
        if len(matrix) != len(rows):
            raise InvalidInputError(f"{len(rows)} products but {len(matrix)} vectors; they must align")
        ids = [r["id"] for r in rows]
        if len(set(ids)) != len(ids):
            raise InvalidInputError(
                f"duplicate product ids in one upsert: {sorted({i for i in ids if ids.count(i) > 1})[:5]}"
            )
        if not rows:
            return self._generation
        self._check_open()
        generation = self._bump()
        data = [self._entity(r, matrix[n], generation) for n, r in enumerate(rows)]
        for start in range(0, len(data), 1000):
            self._client.upsert(self._collection, data[start : start + 1000])
        return generation

    def update_metadata(self, products: Sequence[Any]) -> int:
        """Change display metadata of products already in the index; return the generation."""
        rows = [product_row(p) for p in products]
        if not rows:
            return self._generation
        ids = [r["id"] for r in rows]
        existing = {e["id"]: e for e in self._get_entities(ids, ["vector", "fingerprint"])}
        missing = [i for i in ids if i not in existing]
        if missing:
            raise InvalidInputError(
                f"update_metadata: {len(missing)} product(s) not in the index, e.g. {missing[:5]}; "
                "upsert them with vectors instead"
            )
        generation = self._bump()
        data = []
        for r in rows:
            r["fingerprint"] = existing[r["id"]].get("fingerprint", "")
            data.append(self._entity(r, np.asarray(existing[r["id"]]["vector"], np.float32), generation))
        self._client.upsert(self._collection, data)
        return generation

    def remove(self, ids: Sequence[str], *, missing_ok: bool = True) -> int:
        """Remove products by id; return the generation."""
        ids = [str(i) for i in ids]
        if not ids:
            return self._generation
        self._check_open()
        if not missing_ok:
            found = {e["id"] for e in self._get_entities(ids, ["id"])}
            absent = [i for i in ids if i not in found]
            if absent:
                raise InvalidInputError(f"cannot remove {len(absent)} unknown id(s), e.g. {absent[:5]}")
        generation = self._bump()
        for start in range(0, len(ids), 1000):
            self._client.delete(self._collection, ids=ids[start : start + 1000])
        return generation

    def compact(self) -> int:
        """Ask Milvus to compact the collection; return the generation."""
        self._check_open()
        compact = getattr(self._client, "compact", None)
        if compact is not None:
            compact(self._collection)
        return self._generation

    # ---- reading

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        *,
        space_id: str | None = None,
    ) -> list[SearchResult]:
        """Exact top-``k`` by inner product (see ``CatalogueIndex.search``)."""
        matrix = search_queries(queries, k, space_id, self._space_id, self._dim, f"Milvus index {self._uri}")
        expr = filter_expression(filters)
        self._check_open()
        start = time.perf_counter()
        answers = self._client.search(
            self._collection,
            data=[row.tolist() for row in matrix],
            limit=int(k),
            filter=expr,
            output_fields=["title", "price", "has_price", "category"],
            search_params={"metric_type": "IP"},
        )
        elapsed = (time.perf_counter() - start) * 1000.0 / max(1, len(matrix))
        results = []
        for answer in answers:
            hits = []
            for match in answer:
                entity = match.get("entity", {})
                hits.append(
                    Hit(
                        product_id=str(match["id"]),
                        score=float(match["distance"]),
                        title=entity.get("title", ""),
                        price=float(entity["price"]) if entity.get("has_price") else None,
                        category=entity.get("category", ""),
                    )
                )
            results.append(
                SearchResult(hits=tuple(hits), source="index", space_id=self._space_id, latency_ms=elapsed)
            )
        return results

    def get(self, ids: Sequence[str], *, missing: Literal["raise", "skip"] = "raise") -> list[dict[str, Any]]:
        """Metadata dicts in the order of ``ids`` (see ``CatalogueIndex.get``)."""
        found = {e["id"]: _metadata(e) for e in self._get_entities([str(i) for i in ids], _OUTPUT)}
        absent = [str(i) for i in ids if str(i) not in found]
        if absent and missing == "raise":
            raise InvalidInputError(
                f"{len(absent)} product id(s) not in Milvus index {self._uri}, e.g. {absent[:5]}"
            )
        return [found[str(i)] for i in ids if str(i) in found]

    def list_ids(
        self,
        *,
        order: Literal["id", "popularity"] = "id",
        category: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Product ids sorted by id or by popularity (highest first, then id)."""
        if order not in ("id", "popularity"):
            raise InvalidInputError(f"order {order!r} is not one of id, popularity")
        expr = filter_expression({"category": category}) if category is not None else ""
        rows = list(self._scan(["id", "popularity"], expr))
        if order == "popularity":
            rows.sort(key=lambda e: (-float(e["popularity"]), e["id"]))
        else:
            rows.sort(key=lambda e: e["id"])
        ids = [e["id"] for e in rows]
        return ids if limit is None else ids[: int(limit)]

    def fingerprints(self) -> dict[str, str]:
        return {e["id"]: e.get("fingerprint", "") for e in self._scan(["id", "fingerprint"], "")}

    def vectors_for(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]``; unknown ids raise."""
        found = {e["id"]: e["vector"] for e in self._get_entities([str(i) for i in ids], ["vector"])}
        absent = [str(i) for i in ids if str(i) not in found]
        if absent:
            raise InvalidInputError(
                f"{len(absent)} product id(s) not in Milvus index {self._uri}, e.g. {absent[:5]}"
            )
        if not ids:
            return np.zeros((0, self._dim), np.float32)
        return np.asarray([found[str(i)] for i in ids], np.float32)

    def iter_vectors(self, batch_size: int = 4096) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield ``(ids, float32 [n, dim])`` batches in id order."""
        ids = self.list_ids()
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            yield chunk, self.vectors_for(chunk)

    def stats(self) -> dict[str, Any]:
        meta = self._read_meta()
        return {
            "backend": self.backend,
            "path": None if self._folder is None else str(self._folder),
            "uri": self._uri,
            "collection": self._collection,
            "space_id": self._space_id,
            "dim": self._dim,
            "dtype": self.dtype,
            "count": self.count,
            "generation": int(meta["generation"]),
            "created": float(meta.get("created", 0.0)),
            "updated": float(meta.get("updated", 0.0)),
        }

    # ---- internals

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(f"Milvus index {self._uri} is closed")

    def _read_meta(self) -> dict[str, str]:
        try:
            rows = self._client.query(
                self._meta_collection, filter='key != ""', output_fields=["key", "value"]
            )
        except Exception as exc:  # noqa: BLE001 - pymilvus raises many types
            raise CorruptArtifactError(
                f"Milvus at {self._uri}: cannot read {self._meta_collection} ({exc}); rebuild the index"
            ) from exc
        meta = {r["key"]: r["value"] for r in rows}
        for key in ("space_id", "dim", "generation"):
            if key not in meta:
                raise CorruptArtifactError(
                    f"Milvus at {self._uri}: {self._meta_collection} lacks {key!r}; rebuild the index"
                )
        return meta

    def _bump(self) -> int:
        generation = int(self._read_meta()["generation"]) + 1
        self._client.upsert(
            self._meta_collection,
            [
                {"key": "generation", "value": str(generation), "unused": [0.0, 0.0]},
                {"key": "updated", "value": repr(time.time()), "unused": [0.0, 0.0]},
            ],
        )
        self._generation = generation
        return generation

    def _entity(self, row: dict[str, Any], vector: np.ndarray, generation: int) -> dict[str, Any]:
        if len(row["id"].encode("utf-8")) > _MAX_ID:
            raise InvalidInputError(f"product id longer than {_MAX_ID} bytes: {row['id'][:40]!r}...")
        return {
            "id": row["id"],
            "vector": np.asarray(vector, np.float32).tolist(),
            "title": _clip(row["title"]),
            "description": _clip(row["description"]),
            "category": _clip(row["category"]),
            "price": 0.0 if row["price"] is None else float(row["price"]),
            "has_price": row["price"] is not None,
            "popularity": float(row["popularity"]),
            "attributes": row["attributes"],
            "fingerprint": row["fingerprint"][:128],
            "generation": int(generation),
        }

    def _get_entities(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        self._check_open()
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            if chunk:
                out.extend(self._client.get(self._collection, ids=chunk, output_fields=["id", *fields]))
        return out

    def _scan(self, fields: list[str], expr: str) -> Iterator[dict[str, Any]]:
        self._check_open()
        iterator = self._client.query_iterator(
            self._collection, batch_size=1000, filter=expr, output_fields=fields
        )
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    break
                yield from batch
        finally:
            iterator.close()


def _metadata(entity: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": entity["id"],
        "title": entity.get("title", ""),
        "description": entity.get("description", ""),
        "category": entity.get("category", ""),
        "price": float(entity["price"]) if entity.get("has_price") else None,
        "popularity": float(entity.get("popularity", 0.0)),
        "attributes": dict(entity.get("attributes") or {}),
    }


def _clip(text: str) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= _MAX_TEXT else data[:_MAX_TEXT].decode("utf-8", "ignore")


def _resolve_uri(uri: str, folder: Path) -> str:
    """A relative Milvus Lite file is relative to the index folder."""
    if "://" in uri or uri.startswith("unix:") or os.path.isabs(uri):
        return uri
    return str(folder / uri)


__all__ = ["DEFAULT_COLLECTION", "MilvusCatalogueIndex", "filter_expression"]
