"""Building and updating the catalogue index, and cutting shards and shard deltas from it.

- :func:`build_index` embeds a catalogue with the towers into an index (batched, with a progress
  bar, one committed transaction per batch: an interrupted build resumes where it stopped).
- :func:`update_index` brings an existing index in line with a catalogue without rebuilding:
  only new products and products whose embedding inputs changed are embedded; price /
  popularity / title-only edits are metadata updates; products gone from the catalogue are
  removed.
- :func:`cut_shard` writes a shard (DESIGN.md contract 3) of the top N products.
- :func:`make_delta` writes the delta from an older shard to the index's current content.

``towers`` is anything with ``space_id``, ``config.dim`` and ``embed_products(products,
batch_size=..., progress=...) -> float32 [N, dim]`` (L2-normalised), e.g.
:class:`edgeshelf.towers.model.Towers`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from edgeshelf.catalogue.index import MANIFEST, CatalogueIndex, product_row
from edgeshelf.sdk.errors import InvalidInputError, SpaceMismatchError
from edgeshelf.sdk.shard import (
    DeltaInfo,
    ShardInfo,
    decode_delta,
    decode_header,
    decode_shard,
    encode_delta,
    encode_shard,
    write_shard,
)

# What the embedding of a product depends on (price and popularity are display/rank only).
_EMBEDDED_FIELDS = ("title", "description", "category", "attributes")
_MEDIA_FIELDS = ("image", "video", "audio")
# A delta reuses the base shard's int8 scales; beyond this share of clipped values, cut a full shard.
MAX_CLIPPED_FRACTION = 1e-3


class DeltaNotPossibleError(InvalidInputError):
    """The change cannot be expressed as a delta of that base shard: send the full shard."""


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build_index` / :func:`update_index` did (counts of products, seconds)."""

    index: str
    space_id: str
    count: int
    added: int
    changed: int
    metadata_only: int
    removed: int
    unchanged: int
    embedded: int
    seconds: float
    embed_seconds: float
    generation: int

    @property
    def products_per_s(self) -> float:
        """Embedding throughput of this run (products embedded / seconds spent embedding)."""
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["products_per_s"] = round(self.products_per_s, 2)
        out["seconds"] = round(self.seconds, 3)
        out["embed_seconds"] = round(self.embed_seconds, 3)
        return out


def product_fingerprint(product: Any) -> str:
    """sha256 (32 hex) of what a product's embedding is computed from: text fields, attributes,
    and each media file's path, size and modification time."""
    row = product_row(product)
    parts: dict[str, Any] = {name: row[name] for name in _EMBEDDED_FIELDS}
    for name in _MEDIA_FIELDS:
        media = product.get(name) if isinstance(product, dict) else getattr(product, name, None)
        if media is None:
            parts[name] = None
            continue
        if isinstance(media, (str, os.PathLike)):
            try:
                st = os.stat(media)
                parts[name] = [str(media), st.st_size, st.st_mtime_ns]
            except OSError:
                parts[name] = [str(media), None, None]
        else:  # an in-memory array
            array = np.ascontiguousarray(media)
            parts[name] = hashlib.sha256(array.tobytes()).hexdigest()
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


def _products(catalogue: Any) -> list[Any]:
    products = list(getattr(catalogue, "products", catalogue))
    ids = [product_row(p)["id"] for p in products]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise InvalidInputError(f"the catalogue has duplicate product ids, e.g. {dupes}")
    return products


def _towers_dim(towers: Any) -> int:
    config = getattr(towers, "config", None)
    dim = getattr(config, "dim", None) if config is not None else getattr(towers, "dim", None)
    if dim is None:
        raise InvalidInputError("towers must have config.dim (the embedding size)")
    return int(dim)


def build_index(
    catalogue: Any,
    towers: Any,
    out: str | os.PathLike[str],
    *,
    batch_size: int = 256,
    dtype: Literal["float32", "float16", "int8"] = "float16",
    resume: bool = True,
    progress: bool = True,
    backend: Literal["embedded", "milvus"] = "embedded",
    uri: str | None = None,
    remove_missing: bool = True,
) -> BuildReport:
    """Embed every product of ``catalogue`` (a ``Catalogue`` or a list of products) into the
    index at ``out``, recording the towers' space id.

    Each batch of ``batch_size`` products is embedded and committed on its own, so an
    interrupted build, run again with ``resume=True`` (the default), embeds only what is
    missing. ``resume=False`` refuses an existing index. An existing index of another space
    raises :class:`SpaceMismatchError`.
    """
    folder = Path(out)
    exists = (folder / MANIFEST).exists()
    if exists and not resume:
        raise InvalidInputError(
            f"{folder} already holds an index; pass resume=True (--resume) or choose a new folder"
        )
    space_id = str(towers.space_id)
    dim = _towers_dim(towers)
    if exists:
        index = CatalogueIndex.open(folder)
        if index.space_id != space_id:
            index.close()
            raise SpaceMismatchError(
                f"existing index {folder}",
                space_id,
                index.space_id,
                "it was built with other towers: build into a new folder (or delete this one)",
            )
        if index.dim != dim:
            index.close()
            raise InvalidInputError(
                f"existing index {folder} has dim {index.dim}, the towers make {dim}; use a new folder"
            )
    else:
        index = CatalogueIndex.create(
            folder, space_id=space_id, dim=dim, dtype=dtype, backend=backend, uri=uri
        )
    with index:
        return update_index(
            index, catalogue, towers, batch_size=batch_size, progress=progress, remove_missing=remove_missing
        )


def update_index(
    index: Any,
    catalogue: Any,
    towers: Any,
    *,
    batch_size: int = 256,
    progress: bool = True,
    remove_missing: bool = True,
) -> BuildReport:
    """Make ``index`` match ``catalogue`` without rebuilding (see the module docstring).

    Products whose fingerprint (:func:`product_fingerprint`) is unchanged are not embedded
    again; ``remove_missing=False`` keeps products that are not in ``catalogue`` (a partial
    update file).
    """
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size must be >= 1; got {batch_size}")
    if str(towers.space_id) != index.space_id:
        raise SpaceMismatchError(
            f"index {getattr(index, 'path', '')}",
            index.space_id,
            str(towers.space_id),
            "update it with the towers it was built with, or build a new index",
        )
    start = time.perf_counter()
    products = _products(catalogue)
    known = index.fingerprints()
    fingerprints = [product_fingerprint(p) for p in products]
    to_embed = []
    maybe_meta = []
    unchanged = 0
    for product, fp in zip(products, fingerprints):
        pid = product_row(product)["id"]
        if pid not in known:
            to_embed.append((product, fp, "added"))
        elif known[pid] != fp:
            to_embed.append((product, fp, "changed"))
        else:
            maybe_meta.append(product)
    # metadata-only changes (price, popularity): compare with what is stored
    meta_changes = []
    for start_at in range(0, len(maybe_meta), 2000):
        chunk = maybe_meta[start_at : start_at + 2000]
        stored = {row["id"]: row for row in index.get([product_row(p)["id"] for p in chunk])}
        for product in chunk:
            row = product_row(product)
            old = stored[row["id"]]
            if any(
                old[key] != row[key]
                for key in ("title", "description", "category", "price", "popularity", "attributes")
            ):
                meta_changes.append(product)
            else:
                unchanged += 1
    from tqdm import tqdm

    embed_seconds = 0.0
    bar = tqdm(total=len(to_embed), desc="embedding products", unit="product", disable=not progress)
    try:
        for start_at in range(0, len(to_embed), batch_size):
            batch = to_embed[start_at : start_at + batch_size]
            items = [b[0] for b in batch]
            t0 = time.perf_counter()
            vectors = np.asarray(
                towers.embed_products(items, batch_size=batch_size, progress=False), np.float32
            )
            embed_seconds += time.perf_counter() - t0
            index.upsert(items, vectors, fingerprints=[b[1] for b in batch])
            bar.update(len(batch))
    finally:
        bar.close()
    if meta_changes:
        index.update_metadata(meta_changes)
    removed = 0
    if remove_missing:
        wanted = {product_row(p)["id"] for p in products}
        gone = [pid for pid in known if pid not in wanted]
        if gone:
            index.remove(gone)
            removed = len(gone)
    return BuildReport(
        index=str(getattr(index, "path", "") or getattr(index, "uri", "")),
        space_id=index.space_id,
        count=int(index.count),
        added=sum(1 for b in to_embed if b[2] == "added"),
        changed=sum(1 for b in to_embed if b[2] == "changed"),
        metadata_only=len(meta_changes),
        removed=removed,
        unchanged=unchanged,
        embedded=len(to_embed),
        seconds=time.perf_counter() - start,
        embed_seconds=embed_seconds,
        generation=int(index.generation),
    )


# ---------------------------------------------------------------- shards


def parse_selection(by: str) -> dict[str, Any]:
    """``"popularity"`` or ``"category=A"`` (``"category=A|B"`` for several) -> a selection dict."""
    by = by.strip()
    if by == "popularity":
        return {"by": "popularity"}
    if by.startswith("category="):
        names = [c.strip() for c in by[len("category=") :].split("|") if c.strip()]
        if not names:
            raise InvalidInputError("--by category=NAME needs at least one category name")
        return {"by": "category", "categories": names}
    raise InvalidInputError(f"--by {by!r}: expected popularity or category=NAME[|NAME...]")


def shard_content(
    index: Any, *, top: int | None = None, by: str = "popularity"
) -> tuple[list[str], np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """The products a shard of ``index`` holds: ``(ids, float32 vectors, metadata, selection)``.

    Products are ranked by popularity (highest first, ties by id), optionally only those of
    the named categories, and the first ``top`` kept.
    """
    selection = parse_selection(by)
    if top is not None and int(top) < 1:
        raise InvalidInputError(f"--top must be >= 1; got {top}")
    ids = index.list_ids(order="popularity", category=selection.get("categories"), limit=top)
    selection["top"] = None if top is None else int(top)
    vectors = index.vectors_for(ids)
    metadata = index.get(ids)
    return ids, vectors, metadata, selection


def cut_shard(
    index: Any,
    out: str | os.PathLike[str],
    *,
    top: int | None = None,
    by: str = "popularity",
    dtype: Literal["int8", "float16"] = "int8",
    scales: Literal["dimension", "vector"] = "dimension",
    reuse_scales: np.ndarray | None = None,
    created: float | None = None,
) -> ShardInfo:
    """Write a shard of the ``top`` products of ``index`` (``by`` popularity or a category) to
    ``out`` atomically (a reader sees the old file or the new one, never a part); return its
    header. ``reuse_scales`` (float32 ``[dim]``) quantizes with given per-dimension scales."""
    if dtype not in ("int8", "float16"):
        raise InvalidInputError(f"shard dtype {dtype!r} is not one of int8, float16")
    content = shard_content(index, top=top, by=by)
    data = _cut_bytes(index, content, dtype=dtype, scales=scales, reuse=reuse_scales, created=created)
    write_shard(out, data)
    return decode_header(data)


def _cut_bytes(
    index: Any, content: tuple, *, dtype: str, scales: str, reuse: np.ndarray | None, created: float | None
) -> bytes:
    ids, vectors, metadata, selection = content
    from edgeshelf import __version__

    meta = {
        "selection": selection,
        "index": {"generation": int(index.generation), "count": int(index.count), "backend": index.backend},
        "producer": {"edgeshelf": __version__, "numpy": np.__version__},
    }
    return encode_shard(
        space_id=index.space_id,
        ids=ids,
        vectors=vectors,
        titles=[m["title"] for m in metadata],
        prices=[m["price"] for m in metadata],
        categories=[m["category"] for m in metadata],
        dtype=dtype,
        scales=reuse if reuse is not None and dtype == "int8" else scales,
        version=int(index.generation),
        created=created,
        meta=meta,
    )


def make_delta(
    old_shard: str | os.PathLike[str],
    index: Any,
    out: str | os.PathLike[str],
    *,
    new_shard: str | os.PathLike[str] | None = None,
    created: float | None = None,
) -> DeltaInfo:
    """Write to ``out`` the delta that turns ``old_shard`` into a shard of the index's current
    content (same selection, dtype and scales as the old shard); also write that shard to
    ``new_shard`` when given. Returns the delta's header.

    Raises :class:`DeltaNotPossibleError` when the new vectors fall too far outside the old
    shard's int8 range (more than 0.1% of values would clip): send a full shard then.
    """
    base = Path(old_shard).read_bytes()
    old = decode_shard(base, str(old_shard))
    if old.space_id != index.space_id:
        raise SpaceMismatchError(
            f"shard {old_shard}",
            index.space_id,
            old.space_id,
            "cut a full shard from this index instead of a delta",
        )
    selection = dict(old.meta.get("selection", {"by": "popularity", "top": None}))
    by = (
        "popularity" if selection.get("by") != "category" else "category=" + "|".join(selection["categories"])
    )
    reuse = old.scales if old.scale_mode == "dimension" else None
    content = shard_content(index, top=selection.get("top"), by=by)
    if reuse is not None:
        vectors = content[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            clipped = int(np.count_nonzero(np.abs(vectors / reuse[None, :]) > 127.5))
        if vectors.size and clipped > MAX_CLIPPED_FRACTION * vectors.size:
            raise DeltaNotPossibleError(
                f"{clipped} of {vectors.size} vector values fall outside the int8 range of {old_shard} "
                f"(more than {MAX_CLIPPED_FRACTION:.1%}); cut and send a full shard instead"
            )
    target = _cut_bytes(
        index,
        content,
        dtype=old.dtype,
        scales=old.scale_mode if old.scale_mode != "none" else "dimension",
        reuse=reuse,
        created=created,
    )
    delta = encode_delta(base, target)
    from edgeshelf.sdk.fileio import atomic_write_bytes

    atomic_write_bytes(out, delta)
    if new_shard is not None:
        write_shard(new_shard, target)
    return decode_delta(delta)[0]


__all__ = [
    "BuildReport",
    "DeltaNotPossibleError",
    "build_index",
    "cut_shard",
    "make_delta",
    "parse_selection",
    "product_fingerprint",
    "shard_content",
    "update_index",
]
