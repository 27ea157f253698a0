"""Catalogue shards (DESIGN.md contract 3): one memory-mappable file per cut of the catalogue.

A device caches a shard, opens it memory-mapped and answers exact top-k queries locally.
Written by ``edgeshelf.catalogue`` (``edgeshelf catalogue shard``), read here with numpy only;
``simsimd`` (in the ``device`` extra) and ``usearch`` make search faster when installed (see
:class:`VectorSearcher`).

File layout (little-endian; every section starts on a 64-byte boundary)::

    0    8s   magic b"ESHARD\\r\\n"
    8    H    format version (1)              10  H   header size (256)
    12   B    dtype (1 int8, 2 float16)       13  B   scale mode (0 none, 1 per-dimension, 2 per-vector)
    14   H    flags (0)                       16  I   dim
    20   I    reserved (0)                    24  Q   count
    32   Q    shard version (the index generation it was cut from)
    40   d    created (unix seconds)          48  16s space id (ASCII, NUL-padded)
    64   Q    body length                     72  I   crc32 of the body
    76   I    reserved (0)                    80  9 x (Q offset, Q length): the sections
    252  I    crc32 of header bytes [0, 252)
    body: ids_index uint32 [count+1] | ids UTF-8 | vectors int8/float16 [count, dim]
          | scales float32 [dim] or [count] | prices float64 [count] (NaN = none)
          | categories uint32 [count] (into meta["categories"]) | titles_index uint32 [count+1]
          | titles UTF-8 | meta JSON (categories, selection, producer)

Products are stored sorted by id, so a shard is a pure function of its content: a shard
rebuilt from a delta is byte-identical to one cut directly (the delta carries the checksum
of its target and :func:`apply_delta` checks it).

Design of the int8 path (the default; a quarter of float32's memory): quantization is
symmetric with **per-dimension** float32 scales (``scale_j = max |v[:, j]| / 127``), which fold
into the query (``v . q = c . (s * q)``), so ranking is a plain int8 dot product with the query
quantized on its own range, run by simsimd's SIMD kernels straight from the memory map; the
best ``2k + 8`` are re-scored in float32. Measured on 100k x 256, one core, same run: simsimd
int8 ~1.2 ms for the dot products and about half of FAISS ``IndexFlatIP`` end to end, versus
~1.7 ms for usearch's exact int8 search (plus an index to build and ~90 bytes per vector) and
~12 ms for numpy (int8 -> float32 blocks + BLAS; numpy's int8 matmul is not BLAS). Top-10
overlap with exact float32 search on random unit vectors: 0.98 (per-vector scales: 0.99;
``scales="vector"`` is supported and searched by simsimd or numpy). A delta reuses its base
shard's scales (see ``edgeshelf.catalogue.build.make_delta``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import mmap
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    FormatVersionError,
    InvalidInputError,
    MissingDependencyError,
    SpaceMismatchError,
)
from edgeshelf.sdk.fileio import atomic_write_bytes
from edgeshelf.sdk.results import Embedding, Hit, SearchResult

try:
    # Imported here, early, on purpose: usearch bundles its own copy of simsimd's kernels, and
    # when usearch is loaded first the standalone simsimd refuses int8 input. The kernel is
    # self-tested before use (``_simsimd_works``), so a wrong import order only costs speed.
    import simsimd as _simsimd
except ImportError:
    _simsimd = None

MAGIC = b"ESHARD\r\n"
DELTA_MAGIC = b"EDELTA\r\n"
FORMAT_VERSION = 1
DELTA_FORMAT_VERSION = 1
HEADER_SIZE = 256
ALIGN = 64
SECTIONS = (
    "ids_index",
    "ids",
    "vectors",
    "scales",
    "prices",
    "categories",
    "titles_index",
    "titles",
    "meta",
)
_HEAD = struct.Struct("<8sHHBBHIIQQd16sQII")  # up to the section table (80 bytes)
_SECTION = struct.Struct("<QQ")
_TABLE_END = _HEAD.size + len(SECTIONS) * _SECTION.size  # 224
_HEADER_CRC_AT = HEADER_SIZE - 4

ShardDtype = Literal["int8", "float16"]
ScaleMode = Literal["none", "dimension", "vector"]
Kernel = Literal["auto", "simsimd", "usearch", "numpy"]

#: Searches fetch this many candidates beyond k and rank by (score, product id): products with
#: equal scores (identical vectors, e.g. two listings with one title) come out in the same order
#: from a shard and from the lookup index, whatever their storage order.
TIE_SLACK = 8
KERNELS: tuple[str, ...] = ("auto", "simsimd", "usearch", "numpy")
_DTYPE_CODES = {"int8": 1, "float16": 2}
_SCALE_CODES = {"none": 0, "dimension": 1, "vector": 2}
_DTYPE_NAMES = {v: k for k, v in _DTYPE_CODES.items()}
_SCALE_NAMES = {v: k for k, v in _SCALE_CODES.items()}
_WORD = re.compile(r"\w+", re.UNICODE)

SPACE_REMEDY = (
    "fetch a shard cut for the bundle's space (edgeshelf catalogue shard on an index built with the same "
    "towers), or a bundle for the shard's space"
)

# ---------------------------------------------------------------- header


@dataclass(frozen=True)
class ShardInfo:
    """A shard's header: what it holds, without loading it."""

    format_version: int
    space_id: str
    dim: int
    count: int
    dtype: str
    scale_mode: str
    version: int
    created: float
    body_length: int
    checksum: int
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The file size the header declares (header + body), in bytes."""
        return HEADER_SIZE + self.body_length

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "space_id": self.space_id,
            "dim": self.dim,
            "count": self.count,
            "dtype": self.dtype,
            "scale_mode": self.scale_mode,
            "version": self.version,
            "created": self.created,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "size_bytes": self.size,
            "checksum": f"crc32:{self.checksum:08x}",
            "sections": {name: {"offset": o, "length": n} for name, (o, n) in self.sections.items()},
        }


def decode_header(data: bytes | memoryview, source: str = "<bytes>") -> ShardInfo:
    """Parse and check the first 256 bytes of a shard (magic, format version, header crc).

    ``source`` names the file in error messages. Raises :class:`CorruptArtifactError` (not a
    shard, truncated header, header crc) or :class:`FormatVersionError` (newer format).
    """
    head = bytes(data[:HEADER_SIZE])
    if len(head) < 8 or head[:8] != MAGIC:
        if head[:8] == DELTA_MAGIC:
            raise CorruptArtifactError(
                f"{source}: this is a shard delta, not a shard; apply it with apply_delta"
            )
        raise CorruptArtifactError(
            f"{source}: not an edgeshelf shard (magic {head[:8]!r} != {MAGIC!r}); "
            "cut one with `edgeshelf catalogue shard`"
        )
    if len(head) < HEADER_SIZE:
        raise CorruptArtifactError(
            f"{source}: truncated shard: {len(head)} bytes, shorter than the {HEADER_SIZE}-byte header; "
            "re-download it or cut it again"
        )
    (
        _,
        fmt,
        header_size,
        dtype,
        scale,
        _flags,
        dim,
        _r,
        count,
        version,
        created,
        space,
        body_len,
        crc,
        _r2,
    ) = _HEAD.unpack_from(head, 0)
    if fmt > FORMAT_VERSION:
        raise FormatVersionError(
            f"{source}: shard format version {fmt} is newer than this edgeshelf reads ({FORMAT_VERSION}); "
            "upgrade edgeshelf on the device (pip install -U 'edgeshelf[device]') or cut an older-format shard"
        )
    stored_crc = struct.unpack_from("<I", head, _HEADER_CRC_AT)[0]
    actual_crc = zlib.crc32(head[:_HEADER_CRC_AT])
    if stored_crc != actual_crc:
        raise CorruptArtifactError(
            f"{source}: shard header checksum mismatch (crc32 {actual_crc:08x} != stored {stored_crc:08x}); "
            "the file is corrupt: re-download it or cut it again"
        )
    if fmt < 1 or header_size != HEADER_SIZE or dtype not in _DTYPE_NAMES or scale not in _SCALE_NAMES:
        raise CorruptArtifactError(
            f"{source}: inconsistent shard header (format {fmt}, header size {header_size}, dtype code {dtype}, "
            f"scale code {scale}); re-download it or cut it again"
        )
    sections = {}
    for n, name in enumerate(SECTIONS):
        offset, length = _SECTION.unpack_from(head, _HEAD.size + n * _SECTION.size)
        if offset < HEADER_SIZE or offset + length > HEADER_SIZE + body_len:
            raise CorruptArtifactError(
                f"{source}: shard section {name} [{offset}, {offset + length}) lies outside the body; "
                "re-download it or cut it again"
            )
        sections[name] = (int(offset), int(length))
    return ShardInfo(
        format_version=int(fmt),
        space_id=space.rstrip(b"\0").decode("ascii", "replace"),
        dim=int(dim),
        count=int(count),
        dtype=_DTYPE_NAMES[dtype],
        scale_mode=_SCALE_NAMES[scale],
        version=int(version),
        created=float(created),
        body_length=int(body_len),
        checksum=int(crc),
        sections=sections,
    )


def read_shard_info(path: str | os.PathLike[str]) -> ShardInfo:
    """Read a shard's header without loading the file (also checks the file is not truncated)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_SIZE)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptArtifactError(f"{path}: cannot read the shard ({exc})") from exc
    info = decode_header(head, str(path))
    _check_size(info, size, str(path))
    return info


def _check_size(info: ShardInfo, size: int, source: str) -> None:
    if size < info.size:
        raise CorruptArtifactError(
            f"{source}: truncated shard: {size} bytes on disk, the header declares {info.size}; "
            "re-download it or cut it again"
        )
    if size > info.size:
        raise CorruptArtifactError(
            f"{source}: {size - info.size} unexpected trailing bytes after the shard body; re-download it"
        )


# ---------------------------------------------------------------- content (bytes <-> arrays)


@dataclass(frozen=True, repr=False)
class ShardContent:
    """Everything in a shard, decoded: the input of :func:`encode_content`.

    ``codes`` is int8 or float16 ``[count, dim]``; ``scales`` float32 ``[dim]`` (scale mode
    ``"dimension"``), ``[count]`` (``"vector"``) or None (float16). ``prices`` float64
    ``[count]`` with NaN for "no price". Rows are in ``ids`` order.
    """

    space_id: str
    ids: tuple[str, ...]
    codes: np.ndarray
    scales: np.ndarray | None
    scale_mode: str
    titles: tuple[str, ...]
    prices: np.ndarray
    categories: tuple[str, ...]
    version: int = 0
    created: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dtype(self) -> str:
        return "int8" if self.codes.dtype == np.int8 else "float16"

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"ShardContent({len(self)} x {self.dim} {self.dtype}, space={self.space_id}, version={self.version})"

    def dequantized(self) -> np.ndarray:
        """float32 ``[count, dim]`` vectors as the shard stores them."""
        return dequantize(self.codes, self.scales, self.scale_mode)

    def sorted(self) -> ShardContent:
        """The same content with rows sorted by id (the canonical order)."""
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        if order == list(range(len(order))):
            return self
        idx = np.asarray(order, np.int64)
        return replace(
            self,
            ids=tuple(self.ids[i] for i in order),
            codes=self.codes[idx],
            scales=self.scales[idx] if self.scale_mode == "vector" else self.scales,
            titles=tuple(self.titles[i] for i in order),
            prices=self.prices[idx],
            categories=tuple(self.categories[i] for i in order),
        )


def dequantize(codes: np.ndarray, scales: np.ndarray | None, scale_mode: str) -> np.ndarray:
    """float32 ``[N, dim]`` from stored codes and scales."""
    out = np.asarray(codes, np.float32)
    if scale_mode == "dimension":
        out = out * scales[None, :]
    elif scale_mode == "vector":
        out = out * scales[:, None]
    return out


def quantize(
    vectors: np.ndarray,
    dtype: ShardDtype = "int8",
    scales: Literal["dimension", "vector"] | np.ndarray = "dimension",
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """float32 ``[N, dim]`` -> ``(codes, scales, scale_mode)`` for a shard.

    int8 is symmetric: ``codes = round(v / scale)`` clipped to [-127, 127], with per-dimension
    scales (``max |v[:, j]| / 127``, float32 ``[dim]``) or per-vector scales (float32 ``[N]``).
    Passing a float32 ``[dim]`` array reuses those per-dimension scales (a delta is quantized
    with its base shard's scales; out-of-range values are clipped). float16 has no scales.
    """
    vectors = np.asarray(vectors, np.float32)
    if dtype == "float16":
        return np.ascontiguousarray(vectors, np.float16), None, "none"
    if dtype != "int8":
        raise InvalidInputError(f"shard dtype {dtype!r} is not one of int8, float16")
    if isinstance(scales, np.ndarray):
        if scales.shape != (vectors.shape[1],):
            raise InvalidInputError(f"reused scales must be float32 [{vectors.shape[1]}]; got {scales.shape}")
        mode, scale = "dimension", scales.astype(np.float32)
        codes = np.rint(vectors / scale[None, :])
    elif scales == "dimension":
        peak = np.abs(vectors).max(axis=0) if len(vectors) else np.zeros(vectors.shape[1], np.float32)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        mode, codes = "dimension", np.rint(vectors / scale[None, :])
    elif scales == "vector":
        peak = np.abs(vectors).max(axis=1) if vectors.shape[1] else np.zeros(len(vectors), np.float32)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        mode, codes = "vector", np.rint(vectors / scale[:, None])
    else:
        raise InvalidInputError(f"int8 scales {scales!r} is not one of dimension, vector (or a [dim] array)")
    return np.clip(codes, -127, 127).astype(np.int8), scale, mode


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _strings(values: Sequence[str]) -> tuple[bytes, bytes]:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.uint64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    if offsets[-1] >= 2**32:
        raise InvalidInputError("shard strings exceed 4 GiB; cut a smaller shard")
    return offsets.astype("<u4").tobytes(), b"".join(encoded)


def encode_content(content: ShardContent) -> bytes:
    """Serialise :class:`ShardContent` to shard bytes (rows as given; see :func:`encode_shard`)."""
    n = len(content.ids)
    codes = np.ascontiguousarray(content.codes)
    if codes.ndim != 2 or codes.shape[0] != n or codes.dtype not in (np.int8, np.float16):
        raise InvalidInputError(f"codes must be int8/float16 [{n}, dim]; got {codes.dtype} {codes.shape}")
    dim = codes.shape[1]
    if not (len(content.titles) == len(content.categories) == len(content.prices) == n):
        raise InvalidInputError("ids, titles, prices and categories must have one entry per product")
    if len(set(content.ids)) != n:
        raise InvalidInputError("shard product ids must be unique")
    expected_scales = {"none": None, "dimension": (dim,), "vector": (n,)}[content.scale_mode]
    scales = None if content.scales is None else np.ascontiguousarray(content.scales, "<f4")
    if (scales is None) != (expected_scales is None) or (
        scales is not None and scales.shape != expected_scales
    ):
        raise InvalidInputError(
            f"scale mode {content.scale_mode} needs scales of shape {expected_scales}; got "
            f"{None if scales is None else scales.shape}"
        )
    if (codes.dtype == np.int8) == (content.scale_mode == "none"):
        raise InvalidInputError(f"{codes.dtype} codes cannot use scale mode {content.scale_mode}")
    space = content.space_id.encode("ascii")
    if not 0 < len(space) <= 16:
        raise InvalidInputError(f"space id must be 1..16 ASCII characters; got {content.space_id!r}")
    category_names: dict[str, int] = {}
    category_codes = np.asarray(
        [category_names.setdefault(c, len(category_names)) for c in content.categories], "<u4"
    )
    meta = dict(content.meta)
    meta["categories"] = list(category_names)
    ids_index, ids_blob = _strings(content.ids)
    titles_index, titles_blob = _strings(content.titles)
    parts = {
        "ids_index": ids_index,
        "ids": ids_blob,
        "vectors": codes.astype(codes.dtype.newbyteorder("<"), copy=False).tobytes(),
        "scales": b"" if scales is None else scales.tobytes(),
        "prices": np.ascontiguousarray(content.prices, "<f8").tobytes(),
        "categories": category_codes.tobytes(),
        "titles_index": titles_index,
        "titles": titles_blob,
        "meta": json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
    }
    body = bytearray()
    table = []
    for name in SECTIONS:
        pad = _align(HEADER_SIZE + len(body)) - (HEADER_SIZE + len(body))
        body += b"\0" * pad
        table.append((HEADER_SIZE + len(body), len(parts[name])))
        body += parts[name]
    crc = zlib.crc32(body)
    head = bytearray(HEADER_SIZE)
    _HEAD.pack_into(
        head,
        0,
        MAGIC,
        FORMAT_VERSION,
        HEADER_SIZE,
        _DTYPE_CODES[content.dtype],
        _SCALE_CODES[content.scale_mode],
        0,
        dim,
        0,
        n,
        int(content.version),
        float(content.created),
        space,
        len(body),
        crc,
        0,
    )
    for i, (offset, length) in enumerate(table):
        _SECTION.pack_into(head, _HEAD.size + i * _SECTION.size, offset, length)
    struct.pack_into("<I", head, _HEADER_CRC_AT, zlib.crc32(bytes(head[:_HEADER_CRC_AT])))
    return bytes(head) + bytes(body)


def encode_shard(
    *,
    space_id: str,
    ids: Sequence[str],
    vectors: np.ndarray,
    titles: Sequence[str] | None = None,
    prices: Sequence[float | None] | None = None,
    categories: Sequence[str] | None = None,
    dtype: ShardDtype = "int8",
    scales: Literal["dimension", "vector"] | np.ndarray = "dimension",
    version: int = 0,
    created: float | None = None,
    meta: dict[str, Any] | None = None,
) -> bytes:
    """Shard bytes for float32 ``[N, dim]`` ``vectors`` of products ``ids`` (bytes in, bytes out).

    ``titles``/``prices``/``categories`` are the display metadata (one per id; price None =
    unknown). Rows are stored sorted by id. ``version`` is the index generation it was cut
    from; ``meta`` (JSON-ready) records how it was selected.

    >>> data = encode_shard(space_id="0123456789abcdef", ids=["a"], vectors=np.ones((1, 4), np.float32) / 2)
    >>> decode_header(data).count
    1
    """
    vectors = np.asarray(vectors)
    ids = [str(i) for i in ids]
    if vectors.ndim != 2 or vectors.shape[0] != len(ids) or vectors.shape[1] < 1:
        raise InvalidInputError(f"vectors must be float32 [{len(ids)}, dim]; got shape {vectors.shape}")
    vectors = vectors.astype(np.float32, copy=False)
    if not np.isfinite(vectors).all():
        raise InvalidInputError("vectors contain NaN or infinity")
    n = len(ids)
    codes, scale, mode = quantize(vectors, dtype, scales)
    content = ShardContent(
        space_id=space_id,
        ids=tuple(ids),
        codes=codes,
        scales=scale,
        scale_mode=mode,
        titles=tuple("" if t is None else str(t) for t in (titles or [""] * n)),
        prices=np.asarray([np.nan if p is None else float(p) for p in (prices or [None] * n)], np.float64),
        categories=tuple("" if c is None else str(c) for c in (categories or [""] * n)),
        version=int(version),
        created=time.time() if created is None else float(created),
        meta=dict(meta or {}),
    )
    return encode_content(content.sorted())


def _section(data: Any, info: ShardInfo, name: str, dtype: Any, count: int | None = None) -> np.ndarray:
    offset, length = info.sections[name]
    dt = np.dtype(dtype)
    n = length // dt.itemsize if count is None else count
    if n * dt.itemsize != length:
        raise CorruptArtifactError(f"shard section {name}: {length} bytes is not {n} x {dt}")
    return np.frombuffer(data, dtype=dt, count=n, offset=offset)


def _check_layout(data: Any, info: ShardInfo, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Check section sizes against the header; return (ids_index, titles_index)."""
    n, dim = info.count, info.dim
    item = 1 if info.dtype == "int8" else 2
    want = {
        "ids_index": 4 * (n + 1),
        "vectors": n * dim * item,
        "scales": {"none": 0, "dimension": 4 * dim, "vector": 4 * n}[info.scale_mode],
        "prices": 8 * n,
        "categories": 4 * n,
        "titles_index": 4 * (n + 1),
    }
    for name, size in want.items():
        if info.sections[name][1] != size:
            raise CorruptArtifactError(
                f"{source}: shard section {name} is {info.sections[name][1]} bytes, expected {size} for "
                f"{n} x {dim} {info.dtype}; re-download it or cut it again"
            )
    ids_index = _section(data, info, "ids_index", "<u4")
    titles_index = _section(data, info, "titles_index", "<u4")
    for name, index in (("ids", ids_index), ("titles", titles_index)):
        if (
            index[0] != 0
            or index[-1] != info.sections[name][1]
            or (n and np.any(np.diff(index.astype(np.int64)) < 0))
        ):
            raise CorruptArtifactError(
                f"{source}: shard section {name} has a broken offset table; re-download it"
            )
    return ids_index, titles_index


def _verify_body(data: Any, info: ShardInfo, source: str) -> None:
    crc = zlib.crc32(memoryview(data)[HEADER_SIZE : HEADER_SIZE + info.body_length])
    if crc != info.checksum:
        raise CorruptArtifactError(
            f"{source}: shard checksum mismatch (crc32 of the body {crc:08x} != header {info.checksum:08x}): "
            "the file is corrupt; re-download it or cut it again with `edgeshelf catalogue shard`"
        )


def decode_shard(data: bytes | memoryview, source: str = "<bytes>", verify: bool = True) -> ShardContent:
    """Decode shard bytes fully (copies); checks header, size and (``verify``) the body crc."""
    info = decode_header(data, source)
    _check_size(info, len(data), source)
    if verify:
        _verify_body(data, info, source)
    ids_index, titles_index = _check_layout(data, info, source)
    ids_blob = bytes(_section(data, info, "ids", np.uint8))
    titles_blob = bytes(_section(data, info, "titles", np.uint8))
    meta = json.loads(bytes(_section(data, info, "meta", np.uint8)).decode("utf-8"))
    names = meta.pop("categories", [])
    codes_dtype = "<i1" if info.dtype == "int8" else "<f2"
    codes = _section(data, info, "vectors", codes_dtype, info.count * info.dim).reshape(info.count, info.dim)
    scales = None
    if info.scale_mode != "none":
        scales = _section(data, info, "scales", "<f4").copy()
    cat_codes = _section(data, info, "categories", "<u4")
    return ShardContent(
        space_id=info.space_id,
        ids=tuple(_split(ids_blob, ids_index)),
        codes=codes.astype(np.dtype(codes_dtype).newbyteorder("="), copy=True),
        scales=scales,
        scale_mode=info.scale_mode,
        titles=tuple(_split(titles_blob, titles_index)),
        prices=_section(data, info, "prices", "<f8").copy(),
        categories=tuple(names[c] for c in cat_codes),
        version=info.version,
        created=info.created,
        meta=meta,
    )


def _split(blob: bytes, index: np.ndarray) -> list[str]:
    bounds = index.tolist()
    return [blob[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:])]


def write_shard(path: str | os.PathLike[str], data: bytes) -> Path:
    """Check ``data`` is a whole shard, then write it atomically (a reader sees old or new)."""
    decode_header(data, str(path))
    return atomic_write_bytes(path, data)


# ---------------------------------------------------------------- search kernel


class VectorSearcher:
    """Exact top-k inner product over stored vectors: int8 codes with scales, float16 or float32.

    ``vectors`` is ``[N, dim]`` (a memory map is fine; it must outlive the searcher and not
    change); ``scales`` float32 ``[dim]`` for ``scale_mode="dimension"``, ``[N]`` for
    ``"vector"``. Scores are inner products of the float32 query with the dequantized stored
    vectors; the quantized kernels rank with an int8 (or float16) copy of the query, then
    re-score the best ``2k + 8`` candidates in float32, so returned scores are exact.

    Kernels (``kernel="auto"`` picks the first available that applies):

    - ``"simsimd"`` (int8; needs ``simsimd``): SIMD int8 dot products of the quantized query
      with every stored row, straight from the memory map (AVX-512 VNNI / AVX2 on x86, NEON
      SDOT on Arm), in blocks of 64k rows; per-dimension scales fold into the query, per-vector
      scales multiply the scores. Nothing is built and nothing is copied: the resident memory
      is the int8 rows themselves (a quarter of float32). Measured on 100k x 256, one core:
      ~1.2 ms for the dot products, about half of FAISS ``IndexFlatIP`` on float32.
    - ``"usearch"`` (int8 with per-dimension scales, float16, float32; needs ``usearch``):
      usearch's SIMD exact search (``search(..., exact=True)``) over an index that reads the
      vectors in place (``copy=False``). Building it (at the first search, or :meth:`warm`)
      takes ~0.4 s per 100k vectors on two x86 cores and ~90 bytes per vector of bookkeeping.
      The fast path for float16.
    - ``"numpy"``: float32 BLAS matmul over blocks of converted rows (float16 and float32 are
      converted once at :meth:`warm`, float32-sized). Always available; ~3x slower than FAISS
      for int8, as fast as FAISS for float16 after the conversion.

    Filters are a boolean ``mask [N]``: with under a quarter of the rows allowed those rows are
    scored directly; otherwise simsimd scores everything and drops the rest, and usearch
    over-fetches and filters after.
    """

    BLOCK = 65536

    def __init__(
        self,
        vectors: np.ndarray,
        scales: np.ndarray | None = None,
        scale_mode: str = "none",
        *,
        kernel: Kernel = "auto",
        threads: int = 1,
    ) -> None:
        if vectors.ndim != 2:
            raise InvalidInputError(f"vectors must be [N, dim]; got shape {vectors.shape}")
        if scale_mode not in _SCALE_CODES:
            raise InvalidInputError(f"scale mode {scale_mode!r} is not one of {', '.join(_SCALE_CODES)}")
        if vectors.dtype not in (np.int8, np.float16, np.float32):
            raise InvalidInputError(f"vectors must be int8, float16 or float32; got {vectors.dtype}")
        if (vectors.dtype == np.int8) == (scale_mode == "none"):
            raise InvalidInputError(f"{vectors.dtype} vectors cannot use scale mode {scale_mode}")
        if kernel not in KERNELS:
            raise InvalidInputError(f"kernel {kernel!r} is not one of {', '.join(KERNELS)}")
        self.vectors = vectors
        self.scales = None if scales is None else np.asarray(scales, np.float32)
        self.scale_mode = scale_mode
        self.threads = max(1, int(threads))
        self.count, self.dim = int(vectors.shape[0]), int(vectors.shape[1])
        self._usearch = None
        self._f32: np.ndarray | None = None
        self._contiguous: np.ndarray | None = None  # what usearch reads (copy=False): keep it alive
        self._lock = threading.Lock()
        self._built = False
        self._closed = False
        self.kernel = self._choose(kernel)

    def _choose(self, kernel: str) -> str:
        int8 = self.vectors.dtype == np.int8
        usearch_ok = not (int8 and self.scale_mode == "vector")
        if kernel == "simsimd" and not int8:
            raise InvalidInputError(
                "the simsimd kernel searches int8 shards; use usearch or numpy for float16"
            )
        if kernel == "usearch" and not usearch_ok:
            raise InvalidInputError(
                "the usearch kernel needs per-dimension scales (or float16/float32 vectors)"
            )
        if kernel == "simsimd" and _simsimd is not None and not _available(kernel):
            raise MissingDependencyError(
                "simsimd cannot run int8 in this process: usearch was imported before simsimd (usearch "
                "bundles clashing kernels); import edgeshelf.sdk.shard before usearch, or use kernel='auto'"
            )
        if kernel in ("simsimd", "usearch") and not _available(kernel):
            raise MissingDependencyError(
                f"kernel={kernel!r} needs the {kernel} package: pip install {kernel} (or use kernel='numpy')"
            )
        if kernel != "auto":
            return kernel
        if int8 and _available("simsimd"):
            return "simsimd"
        if usearch_ok and _available("usearch"):
            return "usearch"
        return "numpy"

    def warm(self) -> VectorSearcher:
        """Do the one-off preparation now rather than at the first search; return self."""
        with self._lock:
            if self._built:
                return self
            if self.kernel == "usearch":
                self._usearch = self._build_usearch()
            elif self.kernel == "numpy" and self.vectors.dtype != np.int8:
                self._f32 = np.ascontiguousarray(self.vectors, np.float32)
            self._built = True
        return self

    def _build_usearch(self):
        from usearch.index import Index, MetricKind

        kind = {np.dtype(np.int8): "i8", np.dtype(np.float16): "f16", np.dtype(np.float32): "f32"}
        # Only exact search is used: the smallest graph keeps the bookkeeping small, and
        # copy=False makes usearch read the vectors where they are (the shard's memory map).
        index = Index(
            ndim=self.dim,
            metric=MetricKind.IP,
            dtype=kind[self.vectors.dtype],
            connectivity=2,
            expansion_add=2,
            enable_key_lookups=False,
        )
        if self.count:
            self._contiguous = np.ascontiguousarray(self.vectors)
            keys = np.arange(self.count, dtype=np.uint64)
            index.add(keys, self._contiguous, copy=False, threads=os.cpu_count() or 1)
        return index

    @property
    def memory_bytes(self) -> int:
        """Bytes this searcher allocated beyond the (memory-mapped) input, as far as it knows."""
        if self._usearch is not None:
            return int(self._usearch.memory_usage)
        if self._f32 is not None and self._f32 is not self.vectors:
            return int(self._f32.nbytes)
        return 0

    def close(self) -> None:
        """Free what the searcher built and drop its references to the input (safe to call twice)."""
        self._usearch = None
        self._f32 = None
        self._contiguous = None
        self._built = True
        self._closed = True
        self.vectors = np.zeros((0, self.dim), np.float32)
        self.scales = None

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """float32 ``[len(rows), dim]`` dequantized vectors of ``rows``."""
        codes = np.asarray(self.vectors[rows], np.float32)
        if self.scale_mode == "dimension":
            codes *= self.scales[None, :]
        elif self.scale_mode == "vector":
            codes *= self.scales[rows][:, None]
        return codes

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores float32 [Q, k'], rows int64 [Q, k'])`` best first, ``k' = min(k, allowed)``.

        ``queries`` float32 ``[Q, dim]``; ``mask`` bool ``[N]`` of allowed rows (None = all).
        """
        q = np.ascontiguousarray(queries, np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InvalidInputError(f"queries must be float32 [Q, {self.dim}]; got {q.shape}")
        k = int(k)
        if k < 1:
            raise InvalidInputError(f"k must be >= 1; got {k}")
        if self._closed:
            raise InvalidInputError("this vector searcher is closed")
        if not self._built:
            self.warm()
        if mask is not None and bool(mask.all()):
            mask = None
        allowed = self.count if mask is None else int(np.count_nonzero(mask))
        kk = min(k, allowed)
        if kk == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if mask is not None and (allowed < self.count / 4 or self.kernel == "numpy"):
            rows = np.flatnonzero(mask)
            return _topk(q @ self.rows(rows).T, kk, rows)
        if self.kernel == "simsimd":
            return self._search_simsimd(q, kk, mask)
        if self.kernel == "usearch":
            return self._search_usearch(q, kk, mask, allowed / self.count)
        return self._search_numpy(q, kk)

    def _query_codes(self, q: np.ndarray) -> np.ndarray:
        """The query in the stored type: int8 ranks ``s * q`` (per-dimension scales folded in)
        quantized on its own range, which leaves the order of the dot products unchanged."""
        if self.vectors.dtype == np.int8:
            folded = q * self.scales[None, :] if self.scale_mode == "dimension" else q
            peak = np.abs(folded).max(axis=1, keepdims=True)
            peak[peak == 0] = 1.0
            return np.clip(np.rint(folded / peak * 127.0), -127, 127).astype(np.int8)
        return q.astype(self.vectors.dtype)

    def _rescore(self, q: np.ndarray, candidates: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_r = np.full((len(q), k), -1, np.int64)
        for i, cand in enumerate(candidates):
            s, r = _topk(q[i : i + 1] @ self.rows(cand).T, k, cand)
            out_s[i, : s.shape[1]], out_r[i, : r.shape[1]] = s[0], r[0]
        return out_s, out_r

    def _search_simsimd(
        self, q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        codes = self._query_codes(q)
        fetch = 2 * k + 8
        parts: list[list[np.ndarray]] = [[] for _ in range(len(q))]
        for start in range(0, self.count, self.BLOCK):
            stop = min(self.count, start + self.BLOCK)
            # no out= here: simsimd 6.5 drops a reference to None on every call that passes one
            out = np.asarray(
                _simsimd.cdist(
                    codes, self.vectors[start:stop], metric="dot", out_dtype="float32", threads=self.threads
                )
            )
            if self.scale_mode == "vector":
                out *= self.scales[None, start:stop]
            if mask is not None:
                out[:, ~mask[start:stop]] = -np.inf
            take = min(fetch, stop - start)
            best = np.argpartition(out, -take, axis=1)[:, -take:] if take < stop - start else None
            for i in range(len(q)):
                rows = np.arange(stop - start) if best is None else best[i]
                if mask is not None:
                    rows = rows[np.isfinite(out[i, rows])]
                parts[i].append(rows + start)
        candidates = []
        for i in range(len(q)):
            cand = np.concatenate(parts[i])
            if len(cand) > fetch:  # keep the best `fetch` by the int8 score across blocks
                approx = np.asarray(self.vectors[cand], np.float32) @ codes[i].astype(np.float32)
                if self.scale_mode == "vector":
                    approx *= self.scales[cand]
                cand = cand[np.argpartition(approx, -fetch)[-fetch:]]
            candidates.append(cand)
        return self._rescore(q, candidates, k)

    def _search_usearch(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, fraction: float
    ) -> tuple[np.ndarray, np.ndarray]:
        want = 2 * k + 8
        fetch = min(self.count, want if mask is None else int(math.ceil(want / fraction * 1.5)) + 16)
        matches = self._usearch.search(self._query_codes(q), fetch, exact=True, threads=self.threads)
        keys = np.asarray(matches.keys).reshape(len(q), -1).astype(np.int64)
        counts = np.asarray(matches.counts).reshape(-1) if len(q) > 1 else np.asarray([len(matches.keys)])
        candidates = []
        for i in range(len(q)):
            cand = keys[i, : counts[i]]
            if mask is not None:
                cand = cand[mask[cand]]
                if len(cand) < k:  # the filter was more selective among the nearest: score all allowed
                    cand = np.flatnonzero(mask)
            candidates.append(cand)
        return self._rescore(q, candidates, k)

    def _search_numpy(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        cand_s, cand_r = [], []
        block = 8192
        for start in range(0, self.count, block):
            stop = min(self.count, start + block)
            if self._f32 is not None:
                scores = q @ self._f32[start:stop].T
            elif self.scale_mode == "dimension":
                scores = (q * self.scales[None, :]) @ np.asarray(self.vectors[start:stop], np.float32).T
            else:  # per-vector scales
                scores = q @ np.asarray(self.vectors[start:stop], np.float32).T
                scores *= self.scales[None, start:stop]
            s, r = _topk(scores, min(k, stop - start), np.arange(start, stop))
            cand_s.append(s)
            cand_r.append(r)
        scores = np.concatenate(cand_s, axis=1)
        rows = np.concatenate(cand_r, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


_AVAILABLE: dict[str, bool] = {}


def _available(package: str) -> bool:
    """Whether an optional kernel package imports and works (checked once per process)."""
    if package not in _AVAILABLE:
        if package == "simsimd":
            _AVAILABLE[package] = _simsimd is not None and _simsimd_works()
        else:
            try:
                importlib.import_module("usearch.index")
                _AVAILABLE[package] = True
            except ImportError:
                _AVAILABLE[package] = False
    return _AVAILABLE[package]


def _simsimd_works() -> bool:
    """simsimd's int8 dot product answers correctly in this process (see the import above)."""
    try:
        out = _simsimd.cdist(np.ones((1, 4), np.int8), np.full((2, 4), 2, np.int8), metric="dot")
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.asarray(out) == 8.0))


def _topk(scores: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of ``scores [Q, n]`` (ties broken by position), mapped through ``rows``."""
    scores = np.asarray(scores, np.float32)
    n = scores.shape[1]
    k = min(k, n)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape)
    picked = np.take_along_axis(scores, part, axis=1)
    # sort by score, then by column so that equal scores come out in a stable order
    order = np.lexsort((part, -picked), axis=1) if k > 1 else np.zeros((len(scores), k), np.int64)
    part = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(scores, part, axis=1), np.asarray(rows)[part].astype(np.int64)


def exact_topk(
    vectors: np.ndarray,
    scales: np.ndarray | None,
    queries: np.ndarray,
    k: int,
    mask: np.ndarray | None = None,
    scale_mode: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One-off exact top-k with the numpy kernel (see :class:`VectorSearcher`).

    ``scale_mode`` defaults to ``"vector"`` when ``scales`` has one entry per row, else
    ``"dimension"`` (int8) or ``"none"``.
    """
    if scale_mode is None:
        if scales is None:
            scale_mode = "none"
        else:
            scale_mode = (
                "vector" if len(scales) == len(vectors) and len(scales) != vectors.shape[1] else "dimension"
            )
    return VectorSearcher(vectors, scales, scale_mode, kernel="numpy").search(queries, k, mask)


# ---------------------------------------------------------------- the device reader


@dataclass(frozen=True)
class ShardOptions:
    """How :meth:`Shard.open` reads a shard.

    ``expected_space_id``: refuse a shard of another space (the bundle's space id).
    ``verify``: check the body crc32 on open (reads the whole file once).
    ``kernel``: see :class:`VectorSearcher`; ``threads``: search threads (1 = one core).
    ``warm``: build the search index at open instead of at the first search.
    """

    expected_space_id: str | None = None
    verify: bool = True
    kernel: Kernel = "auto"
    threads: int = 1
    warm: bool = False


class Shard:
    """A cached catalogue shard, memory-mapped read-only, searchable by exact top-k.

    Queries are float32 ``[dim]`` (or ``[Q, dim]``) L2-normalised embeddings of the shard's
    space, or :class:`~edgeshelf.sdk.results.Embedding` objects (their space id is checked).
    Scores are inner products with the dequantized stored vectors (higher is better).

    Example::

        with Shard.open("catalogue.shard", expected_space_id=bundle.space_id) as shard:
            result = shard.search(embedding, k=5, filters={"category": "Shoes", "max_price": 80})
    """

    def __init__(self, path: Path, options: ShardOptions) -> None:
        self._path = path
        self._options = options
        self._closed = False
        self._file = None
        self._mm: mmap.mmap | None = None
        self._searcher: VectorSearcher | None = None
        self._ids: list[str] | None = None
        self._vocabulary: frozenset[str] | None = None
        source = str(path)
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - held open for the mapping, closed in close()
            size = os.fstat(self._file.fileno()).st_size
            if size < HEADER_SIZE:
                decode_header(self._file.read(HEADER_SIZE), source)
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            info = decode_header(self._mm, source)
            _check_size(info, size, source)
            if options.expected_space_id is not None and info.space_id != options.expected_space_id:
                raise SpaceMismatchError(
                    f"shard {path}", options.expected_space_id, info.space_id, SPACE_REMEDY
                )
            if options.verify:
                _verify_body(self._mm, info, source)
            self._ids_index, self._titles_index = _check_layout(self._mm, info, source)
            self.info = info
            meta = json.loads(bytes(_section(self._mm, info, "meta", np.uint8)).decode("utf-8"))
            self._category_names: list[str] = list(meta.pop("categories", []))
            self.meta: dict[str, Any] = meta
            self._prices = _section(self._mm, info, "prices", "<f8")
            self._categories = _section(self._mm, info, "categories", "<u4")
            if (
                info.count
                and len(self._categories)
                and int(self._categories.max()) >= len(self._category_names)
            ):
                raise CorruptArtifactError(f"{source}: shard category codes point past the category table")
            self._forget_pages()  # after every check that read the file
            codes_dtype = "<i1" if info.dtype == "int8" else "<f2"
            self._vectors = _section(self._mm, info, "vectors", codes_dtype, info.count * info.dim).reshape(
                info.count, info.dim
            )
            scales = _section(self._mm, info, "scales", "<f4") if info.scale_mode != "none" else None
            self._searcher = VectorSearcher(
                self._vectors, scales, info.scale_mode, kernel=options.kernel, threads=options.threads
            )
            if options.warm:
                self.warm()
        except BaseException:
            # local views into the map may still exist here: the map is then released when they
            # are collected, and the error that stopped the open is the one to report
            with contextlib.suppress(BufferError):
                self.close()
            raise

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        expected_space_id: str | None = None,
        verify: bool = True,
        *,
        kernel: Kernel = "auto",
        threads: int = 1,
        warm: bool = False,
    ) -> Shard:
        """Open a shard file (see :class:`ShardOptions` for the parameters)."""
        return cls.create_from_options(
            path,
            ShardOptions(
                expected_space_id=expected_space_id, verify=verify, kernel=kernel, threads=threads, warm=warm
            ),
        )

    def warm(self) -> Shard:
        """Build the search index now (else the first search does); return self."""
        searcher = self._live_searcher()
        if not searcher._built:
            searcher.warm()
        return self

    def _forget_pages(self) -> None:
        """Let the OS drop the pages the checks read (the checksum reads the whole file): search
        touches only the vectors and the rows of its hits, so that is all that stays resident
        (file-backed, reclaimable)."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is not None and self._mm is not None and len(self._mm):
            self._mm.madvise(advice)

    @classmethod
    def create_from_options(cls, path: str | os.PathLike[str], options: ShardOptions) -> Shard:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"shard {path} does not exist; fetch or cut one (edgeshelf catalogue shard)"
            )
        return cls(path, options)

    # ---- properties

    @property
    def path(self) -> Path:
        return self._path

    @property
    def space_id(self) -> str:
        return self.info.space_id

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def count(self) -> int:
        return self.info.count

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def dtype(self) -> str:
        return self.info.dtype

    @property
    def kernel(self) -> str:
        return self._live_searcher().kernel

    @property
    def ids(self) -> list[str]:
        """Product ids in storage order (sorted), decoded once on first use."""
        if self._ids is None:
            self._check_open()
            blob = bytes(_section(self._mm, self.info, "ids", np.uint8))
            self._ids = _split(blob, self._ids_index)
        return self._ids

    @property
    def categories(self) -> list[str]:
        """The distinct categories in the shard."""
        return list(self._category_names)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.kernel
        return (
            f"Shard({str(self._path)!r}, {self.count} x {self.dim} {self.dtype}, space={self.space_id}, "
            f"version={self.version}, {state})"
        )

    # ---- life cycle

    def close(self) -> None:
        """Unmap the file and free the search index (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        if self._searcher is not None:
            self._searcher.close()
        self._searcher = None
        for name in ("_vectors", "_prices", "_categories", "_ids_index", "_titles_index"):
            if hasattr(self, name):
                delattr(self, name)
        if self._mm is not None:
            self._mm.close()
        self._mm = None
        if self._file is not None:
            self._file.close()
        self._file = None

    def __enter__(self) -> Shard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(f"shard {self._path} is closed")

    def _live_searcher(self) -> VectorSearcher:
        self._check_open()
        return self._searcher

    # ---- reading

    def id_at(self, row: int) -> str:
        """The product id of storage row ``row``."""
        self._check_open()
        a, b = int(self._ids_index[row]), int(self._ids_index[row + 1])
        offset = self.info.sections["ids"][0]
        return self._mm[offset + a : offset + b].decode("utf-8")

    def title_at(self, row: int) -> str:
        self._check_open()
        a, b = int(self._titles_index[row]), int(self._titles_index[row + 1])
        offset = self.info.sections["titles"][0]
        return self._mm[offset + a : offset + b].decode("utf-8")

    def hit(self, row: int, score: float) -> Hit:
        price = float(self._prices[row])
        return Hit(
            product_id=self.id_at(row),
            score=float(score),
            title=self.title_at(row),
            price=None if math.isnan(price) else price,
            category=self._category_names[int(self._categories[row])],
        )

    def filter_mask(self, filters: dict[str, Any] | None) -> np.ndarray | None:
        """bool ``[count]`` of rows passing ``filters`` (None when there are none).

        ``{"category": str | list[str], "max_price": float, "min_price": float}``; a product
        without a price fails any price filter.
        """
        if not filters:
            return None
        self._check_open()
        allowed = ("category", "max_price", "min_price")
        unknown = sorted(set(filters) - set(allowed))
        if unknown:
            raise InvalidInputError(f"unknown filter(s) {unknown}; valid filters: {', '.join(allowed)}")
        mask = np.ones(self.count, bool)
        if filters.get("category") is not None:
            wanted = filters["category"]
            wanted = {wanted} if isinstance(wanted, str) else {str(w) for w in wanted}
            codes = [n for n, name in enumerate(self._category_names) if name in wanted]
            mask &= np.isin(self._categories, np.asarray(codes, np.uint32))
        with np.errstate(invalid="ignore"):
            for key, op in (("max_price", np.less_equal), ("min_price", np.greater_equal)):
                if filters.get(key) is not None:
                    try:
                        limit = float(filters[key])
                    except (TypeError, ValueError) as exc:
                        raise InvalidInputError(
                            f"filter {key} must be a number; got {filters[key]!r}"
                        ) from exc
                    mask &= op(self._prices, limit)
        return mask

    def _as_queries(self, query: Any) -> tuple[np.ndarray, bool]:
        if isinstance(query, Embedding):
            if query.space_id != self.space_id:
                raise SpaceMismatchError(
                    f"query embedding for shard {self._path}", self.space_id, query.space_id, SPACE_REMEDY
                )
            query = query.vector
        elif isinstance(query, (list, tuple)) and query and isinstance(query[0], Embedding):
            for emb in query:
                if emb.space_id != self.space_id:
                    raise SpaceMismatchError(
                        f"query embedding for shard {self._path}", self.space_id, emb.space_id, SPACE_REMEDY
                    )
            query = np.stack([emb.vector for emb in query])
        array = np.asarray(query)
        if array.ndim not in (1, 2) or array.shape[-1] != self.dim:
            raise InvalidInputError(
                f"query must be float32 [{self.dim}] or [Q, {self.dim}]; got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise InvalidInputError(f"query must be finite floating point (float32); got {array.dtype}")
        return np.atleast_2d(array.astype(np.float32, copy=False)), array.ndim == 1

    @overload
    def search(
        self, query: Embedding, k: int = ..., filters: dict[str, Any] | None = ...
    ) -> SearchResult: ...

    @overload
    def search(self, query: np.ndarray, k: int = ..., filters: dict[str, Any] | None = ...) -> Any: ...

    def search(self, query: Any, k: int = 10, filters: dict[str, Any] | None = None) -> Any:
        """Exact top-``k`` products for one query (``[dim]`` or an Embedding) -> SearchResult;
        for ``[Q, dim]`` (or a list of Embeddings) -> list of SearchResult, one per query.

        ``filters``: ``{"category": str | list[str], "max_price": float, "min_price": float}``.
        """
        if int(k) < 1:
            raise InvalidInputError(f"k must be >= 1; got {k}")
        start = time.perf_counter()
        searcher = self._live_searcher()
        if not searcher._built:
            self.warm()
        queries, single = self._as_queries(query)
        mask = self.filter_mask(filters)
        scores, rows = searcher.search(queries, int(k) + TIE_SLACK, mask)
        results = []
        elapsed = (time.perf_counter() - start) * 1000.0 / len(queries)
        for q in range(len(queries)):
            valid = rows[q] >= 0
            s_q, r_q = scores[q][valid], rows[q][valid]
            best = np.lexsort((r_q, -s_q))[: int(k)]  # rows are stored in id order: ties by id
            hits = tuple(self.hit(int(r_q[i]), float(s_q[i])) for i in best)
            results.append(
                SearchResult(hits=hits, source="shard", space_id=self.space_id, latency_ms=elapsed)
            )
        return results[0] if single or isinstance(query, Embedding) else results

    def vectors(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """float32 dequantized vectors of storage ``rows`` (all when None)."""
        searcher = self._live_searcher()
        rows = np.arange(self.count) if rows is None else np.asarray(rows, np.int64)
        return searcher.rows(rows)

    def vocabulary(self) -> frozenset[str]:
        """Lower-cased words of every title and category (the speech recogniser's grammar)."""
        if self._vocabulary is None:
            self._check_open()
            titles = bytes(_section(self._mm, self.info, "titles", np.uint8)).decode("utf-8")
            words = set(_WORD.findall(titles.lower()))
            for name in self._category_names:
                words.update(_WORD.findall(name.lower()))
            self._vocabulary = frozenset(words)
        return self._vocabulary

    def describe(self) -> dict[str, Any]:
        """The header and a summary, JSON-ready (``edgeshelf inspect FILE.shard`` prints this)."""
        self._check_open()
        out = {"kind": "shard", "path": str(self._path), **self.info.to_dict()}
        out["sections"] = {name: length for name, (_, length) in self.info.sections.items()}
        out["categories"] = len(self._category_names)
        out["kernel"] = self.kernel
        out["meta"] = self.meta
        out["example_ids"] = [self.id_at(i) for i in range(min(3, self.count))]
        return out


def describe_shard(path: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """:meth:`Shard.describe` of a file (numpy kernel: no index is built just to describe it)."""
    with Shard.open(path, verify=verify, kernel="numpy") as shard:
        return shard.describe()


# ---------------------------------------------------------------- deltas

_DELTA_HEAD = struct.Struct("<8sHH16sIQIQIdIQI")  # see encode_delta


@dataclass(frozen=True)
class DeltaInfo:
    """A delta's header: which shard it applies to and which shard it makes."""

    format_version: int
    space_id: str
    base_version: int
    base_checksum: int
    target_version: int
    target_checksum: int
    target_created: float
    target_count: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "space_id": self.space_id,
            "base_version": self.base_version,
            "base_checksum": f"crc32:{self.base_checksum:08x}",
            "target_version": self.target_version,
            "target_checksum": f"crc32:{self.target_checksum:08x}",
            "target_count": self.target_count,
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
        }


def _content_rows(content: ShardContent) -> dict[str, tuple]:
    """id -> (codes bytes, scale bytes, title, price, category): what a delta compares."""
    out = {}
    for n, pid in enumerate(content.ids):
        scale = content.scales[n].tobytes() if content.scale_mode == "vector" else b""
        price = content.prices[n]
        out[pid] = (
            content.codes[n].tobytes(),
            scale,
            content.titles[n],
            None if math.isnan(price) else float(price),
            content.categories[n],
        )
    return out


def encode_delta(base: bytes | ShardContent, target: bytes | ShardContent) -> bytes:
    """Delta bytes that turn shard ``base`` into shard ``target`` (both bytes or decoded).

    Both must share space, dim, dtype and scales (cut the target with ``reuse_scales`` of
    the base, see ``edgeshelf.catalogue.build.make_delta``). The delta holds the added and
    changed products (a small shard), the removed ids, and the target's header fields and
    checksum, so :func:`apply_delta` rebuilds the target byte for byte.
    """
    base_bytes = base if isinstance(base, (bytes, bytearray)) else encode_content(base.sorted())
    target_bytes = target if isinstance(target, (bytes, bytearray)) else encode_content(target.sorted())
    old, new = decode_shard(base_bytes, "<base shard>"), decode_shard(target_bytes, "<target shard>")
    base_info, target_info = decode_header(base_bytes), decode_header(target_bytes)
    if old.space_id != new.space_id:
        raise SpaceMismatchError(
            "delta target shard",
            old.space_id,
            new.space_id,
            "a delta only links shards of one space; send the full shard",
        )
    if (old.dim, old.dtype, old.scale_mode) != (new.dim, new.dtype, new.scale_mode):
        raise InvalidInputError(
            f"delta needs the same layout: base {old.dim} {old.dtype}/{old.scale_mode} != target "
            f"{new.dim} {new.dtype}/{new.scale_mode}; send the full shard"
        )
    if old.scale_mode == "dimension" and not np.array_equal(old.scales, new.scales):
        raise InvalidInputError(
            "delta needs the target quantized with the base shard's per-dimension scales; cut it with reuse_scales"
        )
    rows_old, rows_new = _content_rows(old), _content_rows(new)
    added = sorted(set(rows_new) - set(rows_old))
    removed = sorted(set(rows_old) - set(rows_new))
    changed = sorted(pid for pid in set(rows_new) & set(rows_old) if rows_new[pid] != rows_old[pid])
    upsert_ids = set(added) | set(changed)
    pick = np.asarray([n for n, pid in enumerate(new.ids) if pid in upsert_ids], np.int64)
    part = ShardContent(
        space_id=new.space_id,
        ids=tuple(new.ids[i] for i in pick),
        codes=new.codes[pick] if len(pick) else np.zeros((0, new.dim), new.codes.dtype),
        scales=(new.scales[pick] if new.scale_mode == "vector" else new.scales),
        scale_mode=new.scale_mode,
        titles=tuple(new.titles[i] for i in pick),
        prices=new.prices[pick],
        categories=tuple(new.categories[i] for i in pick),
        version=new.version,
        created=new.created,
        meta={},
    )
    upserts = encode_content(part)
    extra = json.dumps(
        {"added": added, "changed": changed, "removed": removed, "target_meta": new.meta},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    body = struct.pack("<QQ", len(upserts), len(extra)) + upserts + extra
    head = _DELTA_HEAD.pack(
        DELTA_MAGIC,
        DELTA_FORMAT_VERSION,
        _DELTA_HEAD.size,
        new.space_id.encode("ascii"),
        0,
        base_info.version,
        base_info.checksum,
        target_info.version,
        target_info.checksum,
        target_info.created,
        zlib.crc32(body),
        len(body),
        target_info.count,
    )
    return head + body


def decode_delta(data: bytes, source: str = "<delta>") -> tuple[DeltaInfo, bytes, dict[str, Any]]:
    """Parse a delta: ``(info, upserts shard bytes, extra)``; checks magic, version and crc."""
    if len(data) < 8 or data[:8] != DELTA_MAGIC:
        raise CorruptArtifactError(
            f"{source}: not an edgeshelf shard delta (magic {bytes(data[:8])!r} != {DELTA_MAGIC!r})"
        )
    if len(data) < _DELTA_HEAD.size:
        raise CorruptArtifactError(f"{source}: truncated shard delta ({len(data)} bytes); download it again")
    (_, fmt, head_size, space, _r, base_v, base_crc, target_v, target_crc, created, crc, body_len, count) = (
        _DELTA_HEAD.unpack_from(data, 0)
    )
    if fmt > DELTA_FORMAT_VERSION:
        raise FormatVersionError(
            f"{source}: shard delta format version {fmt} is newer than this edgeshelf reads "
            f"({DELTA_FORMAT_VERSION}); upgrade edgeshelf or download the full shard"
        )
    body = data[head_size:]
    if len(body) != body_len:
        raise CorruptArtifactError(
            f"{source}: truncated shard delta: body {len(body)} bytes, header declares {body_len}; download it again"
        )
    if zlib.crc32(body) != crc:
        raise CorruptArtifactError(f"{source}: shard delta checksum mismatch; download it again")
    n_up, n_extra = struct.unpack_from("<QQ", body, 0)
    upserts = bytes(body[16 : 16 + n_up])
    extra = json.loads(bytes(body[16 + n_up : 16 + n_up + n_extra]).decode("utf-8"))
    info = DeltaInfo(
        format_version=int(fmt),
        space_id=space.rstrip(b"\0").decode("ascii", "replace"),
        base_version=int(base_v),
        base_checksum=int(base_crc),
        target_version=int(target_v),
        target_checksum=int(target_crc),
        target_created=float(created),
        target_count=int(count),
        added=tuple(extra["added"]),
        changed=tuple(extra["changed"]),
        removed=tuple(extra["removed"]),
    )
    return info, upserts, extra


def apply_delta_bytes(base: bytes, delta: bytes, source: str = "<base shard>") -> bytes:
    """Pure form of :func:`apply_delta`: base shard bytes + delta bytes -> target shard bytes."""
    info, upserts, extra = decode_delta(delta)
    base_info = decode_header(base, source)
    if base_info.space_id != info.space_id:
        raise SpaceMismatchError(f"shard delta for {source}", base_info.space_id, info.space_id, SPACE_REMEDY)
    if base_info.version != info.base_version or base_info.checksum != info.base_checksum:
        raise InvalidInputError(
            f"{source}: this delta applies to shard version {info.base_version} "
            f"(crc32 {info.base_checksum:08x}) but the cached shard is version {base_info.version} "
            f"(crc32 {base_info.checksum:08x}); download the full shard or the delta for version {base_info.version}"
        )
    old = decode_shard(base, source)
    part = decode_shard(upserts, "<delta upserts>")
    rows = {pid: n for n, pid in enumerate(old.ids)}
    missing = [pid for pid in info.removed + info.changed if pid not in rows]
    if missing:
        raise CorruptArtifactError(
            f"{source}: the delta changes/removes ids the base lacks, e.g. {missing[:5]}"
        )
    keep = [n for n, pid in enumerate(old.ids) if pid not in set(info.removed) | set(info.changed)]
    keep_idx = np.asarray(keep, np.int64)
    merged = ShardContent(
        space_id=old.space_id,
        ids=tuple(old.ids[i] for i in keep) + part.ids,
        codes=np.concatenate([old.codes[keep_idx], part.codes]),
        scales=(
            np.concatenate([old.scales[keep_idx], part.scales]) if old.scale_mode == "vector" else old.scales
        ),
        scale_mode=old.scale_mode,
        titles=tuple(old.titles[i] for i in keep) + part.titles,
        prices=np.concatenate([old.prices[keep_idx], part.prices]),
        categories=tuple(old.categories[i] for i in keep) + part.categories,
        version=info.target_version,
        created=info.target_created,
        meta=dict(extra.get("target_meta", {})),
    )
    out = encode_content(merged.sorted())
    result = decode_header(out)
    if result.checksum != info.target_checksum or result.count != info.target_count:
        raise CorruptArtifactError(
            f"{source}: applying the delta gave crc32 {result.checksum:08x} / {result.count} products, the delta "
            f"promised {info.target_checksum:08x} / {info.target_count}; download the full shard"
        )
    return out


def apply_delta(
    shard_path: str | os.PathLike[str], delta: bytes, out: str | os.PathLike[str] | None = None
) -> Path:
    """Apply ``delta`` to the shard at ``shard_path``; write the result atomically to ``out``
    (default: replace ``shard_path``). A delta for another base version is refused with both
    versions in the message. Returns the written path."""
    base = Path(shard_path).read_bytes()
    data = apply_delta_bytes(base, delta, str(shard_path))
    return atomic_write_bytes(Path(out) if out is not None else Path(shard_path), data)


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "DeltaInfo",
    "Shard",
    "ShardContent",
    "ShardInfo",
    "ShardOptions",
    "VectorSearcher",
    "apply_delta",
    "apply_delta_bytes",
    "decode_delta",
    "decode_header",
    "decode_shard",
    "describe_shard",
    "dequantize",
    "encode_content",
    "encode_delta",
    "encode_shard",
    "exact_topk",
    "quantize",
    "read_shard_info",
    "write_shard",
]
