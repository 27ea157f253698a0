"""The catalogue lookup service (DESIGN.md contract 4): search by embedding, shard downloads.

A FastAPI app over one :class:`~edgeshelf.catalogue.index.CatalogueIndex` and a folder of shard
files, served by uvicorn (``edgeshelf serve``). Endpoints:

- ``POST /v1/search`` ``{space_id, dtype, vector, scale?, k, filters?}`` -> ranked ids, scores
  and display metadata. ``vector`` is base64 of ``dim`` little-endian ``dtype`` values
  (``int8`` codes with ``scale``: value = code * scale). Only an embedding is accepted: the
  request model forbids any other field, so no audio, image or text can reach the service.
- ``GET /v1/info``: the space id, dimension, product count and limits of this service.
- ``GET /v1/shards``, ``GET /v1/shards/{name}`` (``ETag`` = the shard checksum,
  ``If-None-Match`` -> 304), ``GET /v1/shards/{name}/delta?from_version=N`` (404 when no delta
  from that version exists: download the full shard).
- ``GET /healthz`` (no token), ``GET /metrics`` (Prometheus text; ``?format=json`` for JSON).

Every ``/v1`` endpoint needs ``Authorization: Bearer <device token>``
(:mod:`edgeshelf.catalogue.tokens`); each token has a token-bucket rate limit. Errors are JSON
``{"error": {"code", "message", "field"}}`` with a 4xx status whose message names the field, the
expected and the actual value; exception handlers make sure bad input never becomes a 500.

Example::

    app = create_app("shop.index", "tokens.json", "shards/", ServiceOptions(rate_per_s=20))
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import os
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import numpy as np
from edgeshelf.catalogue.tokens import TokenError, TokenRecord, TokenStore
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    EdgeshelfError,
    InvalidInputError,
    SpaceMismatchError,
)
from edgeshelf.sdk.fileio import atomic_write_bytes
from edgeshelf.sdk.lookup import shard_etag
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

API_VERSION = "v1"
WIRE_DTYPES: tuple[str, ...] = ("float32", "float16", "int8")
_WIRE_NUMPY = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1")}
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SHARD_SUFFIX = ".shard"
# Up to this many stored values (count x dim) a search runs on the event loop, above it in a thread.
_INLINE_SEARCH_WORK = 1 << 22
ONLY_EMBEDDINGS = (
    "This API accepts only embeddings: there is no field for audio, images, video or query text, "
    "and a request carrying any other field is rejected."
)


@dataclass(frozen=True)
class ServiceOptions:
    """Limits and behaviour of the lookup service.

    ``rate_per_s`` / ``burst``: token bucket per device token (``rate_per_s=0`` turns the limit
    off). ``max_body_bytes``: larger request bodies get 413. ``max_k``: largest ``k``.
    ``auth=False`` serves without tokens (loopback experiments only). ``refresh_s``: how often
    the index is re-read to pick up a newer generation (0: never). ``latency_window``: how many
    recent latencies per route the percentiles in ``/metrics`` are computed over.
    """

    auth: bool = True
    rate_per_s: float = 20.0
    burst: int = 40
    max_body_bytes: int = 64 * 1024
    max_k: int = 1000
    refresh_s: float = 30.0
    latency_window: int = 20_000

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or not math.isfinite(self.rate_per_s):
            raise InvalidInputError(f"rate_per_s must be >= 0 (0 = unlimited); got {self.rate_per_s}")
        if self.rate_per_s > 0 and self.burst < 1:
            raise InvalidInputError(f"burst must be >= 1; got {self.burst}")
        if self.max_body_bytes < 1024:
            raise InvalidInputError(f"max_body_bytes must be >= 1024; got {self.max_body_bytes}")
        if not 1 <= self.max_k <= 100_000:
            raise InvalidInputError(f"max_k must be in 1..100000; got {self.max_k}")
        if self.refresh_s < 0:
            raise InvalidInputError(f"refresh_s must be >= 0; got {self.refresh_s}")


# ---- wire models


class SearchFilters(BaseModel):
    """Optional filters on display metadata (a product without a price fails a price filter)."""

    model_config = ConfigDict(extra="forbid")

    category: StrictStr | list[StrictStr] | None = Field(
        None, description="Only products of this category (or of any of these categories)."
    )
    min_price: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = Field(
        None, description="Only products priced at least this much."
    )
    max_price: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = Field(
        None, description="Only products priced at most this much."
    )


class SearchRequest(BaseModel):
    """A search by embedding. Only an embedding is accepted: there is no field for audio, images,
    video or query text, and any field not listed here is rejected with 422."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": ONLY_EMBEDDINGS,
            "examples": [
                {
                    "space_id": "3f2a9c0d1e4b5a67",
                    "dtype": "float16",
                    "vector": "<base64 of dim little-endian float16 values>",
                    "k": 10,
                    "filters": {"category": "Shoes", "max_price": 80.0},
                }
            ],
        },
    )

    space_id: StrictStr = Field(
        ...,
        min_length=1,
        max_length=64,
        description="Embedding space id of the towers/bundle that made the vector; must equal the index's.",
    )
    dtype: Literal["float32", "float16", "int8"] = Field(
        ..., description="Element type of `vector`: float32, float16, or int8 codes with `scale`."
    )
    vector: StrictStr = Field(
        ...,
        description=(
            "The query embedding: base64 of `dim` little-endian values of `dtype` (L2-normalised, "
            "inner product metric). The only query content this API accepts; never audio, image or text."
        ),
    )
    scale: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = Field(
        None, description="int8 only: each value is code * scale (scale > 0)."
    )
    k: StrictInt = Field(10, description="How many products to return (1..max_k, see GET /v1/info).")
    filters: SearchFilters | None = Field(None, description="Optional metadata filters.")


class HitOut(BaseModel):
    product_id: str
    score: float = Field(..., description="Inner product with the query (higher is better).")
    title: str
    price: float | None
    category: str


class SearchResponse(BaseModel):
    space_id: str
    k: int
    generation: int = Field(..., description="Index generation the answer was computed on.")
    latency_ms: float = Field(..., description="Search time inside the service, in milliseconds.")
    hits: list[HitOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ShardOut(BaseModel):
    name: str
    space_id: str
    version: int
    checksum: str
    etag: str
    size: int


class InfoResponse(BaseModel):
    space_id: str
    dim: int
    count: int
    generation: int
    index_dtype: str
    dtypes: list[str]
    max_k: int
    filters: list[str]
    max_body_bytes: int
    shards: list[str]
    privacy: str


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Malformed JSON body"),
        (401, "Missing, malformed or unknown device token"),
        (403, "Revoked device token"),
        (409, "The embedding comes from another space (both ids named)"),
        (413, "Request body too large"),
        (415, "Body is not JSON"),
        (422, "A field is missing, of the wrong type or out of range (named in the message)"),
        (429, "Rate limit of this device token exceeded (see Retry-After)"),
    )
}


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``; never a 5xx for bad input."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        body = {"code": self.code, "message": self.message, "field": self.field, **self.extra}
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


# ---- decoding


def decode_vector(dtype: str, data: str, scale: float | None, dim: int) -> np.ndarray:
    """float32 ``[dim]`` from the wire form; raises :class:`ApiError` (422) naming the problem."""
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ApiError(
            422,
            "bad_base64",
            f"vector: expected standard base64 of {dim} little-endian {dtype} values; "
            f"got malformed base64 ({exc})",
            field="vector",
        ) from exc
    wire = _WIRE_NUMPY[dtype]
    if len(raw) % wire.itemsize:
        raise ApiError(
            422,
            "wrong_dimension",
            f"vector: {len(raw)} bytes is not a whole number of {dtype} values ({wire.itemsize} bytes each); "
            f"expected {dim * wire.itemsize} bytes = {dim} values",
            field="vector",
        )
    n = len(raw) // wire.itemsize
    if n != dim:
        raise ApiError(
            422,
            "wrong_dimension",
            f"vector: expected dimension {dim} (the index's), got {n} {dtype} values",
            field="vector",
            extra={"expected": dim, "actual": n},
        )
    values = np.frombuffer(raw, dtype=wire)
    if dtype == "int8":
        if scale is None:
            raise ApiError(
                422, "missing_scale", "scale: required with dtype int8 (value = code * scale)", "scale"
            )
        if not scale > 0:
            raise ApiError(422, "bad_scale", f"scale: expected a finite number > 0; got {scale}", "scale")
        vector = values.astype(np.float32) * np.float32(scale)
    else:
        if scale is not None:
            raise ApiError(
                422,
                "unexpected_scale",
                f"scale: only for dtype int8; got scale={scale} with dtype {dtype}",
                "scale",
            )
        vector = values.astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(vector)))
    if bad:
        raise ApiError(
            422,
            "non_finite",
            f"vector: expected finite values; got {bad} NaN or infinite value(s) of {dim}",
            field="vector",
        )
    return vector


# ---- concurrency helpers


class _ReadWriteLock:
    """Many searches at once, or one index refresh (writers are not starved)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _RateLimiter:
    """Token bucket per key: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds until the next request would be."""
        if self._rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > 100_000:  # forget buckets that have refilled (bounded memory)
                full = self._burst / self._rate
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate


class _Metrics:
    """Request counts by route and status, latency percentiles, errors by code."""

    def __init__(self, window: int) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = defaultdict(int)
        self._errors: dict[str, int] = defaultdict(int)
        self._latency: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._bytes_sent: dict[str, int] = defaultdict(int)
        self.started = time.time()

    @staticmethod
    def route_of(path: str) -> str:
        if path in ("/v1/search", "/v1/info", "/v1/shards", "/healthz", "/metrics"):
            return path
        if path.startswith("/v1/shards/"):
            return "/v1/shards/{name}/delta" if path.endswith("/delta") else "/v1/shards/{name}"
        return "other"

    def record(self, route: str, status: int, seconds: float, code: str | None, sent: int) -> None:
        with self._lock:
            self._counts[(route, status)] += 1
            self._latency[route].append(seconds * 1000.0)
            self._latency_sum[route] += seconds * 1000.0
            self._bytes_sent[route] += sent
            if status >= 400:
                self._errors[code or str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            errors = dict(self._errors)
            latency = {r: np.asarray(v, np.float64) for r, v in self._latency.items()}
            sums = dict(self._latency_sum)
            sent = dict(self._bytes_sent)
        routes: dict[str, Any] = {}
        for (route, status), n in sorted(counts.items()):
            entry = routes.setdefault(route, {"requests": 0, "by_status": {}})
            entry["requests"] += n
            entry["by_status"][str(status)] = n
        for route, values in latency.items():
            entry = routes.setdefault(route, {"requests": 0, "by_status": {}})
            entry["latency_ms"] = {
                "window": int(len(values)),
                "sum": round(sums.get(route, 0.0), 3),
                **{
                    f"p{q}": round(float(np.percentile(values, q)), 3) if len(values) else None
                    for q in (50, 90, 99)
                },
                "max": round(float(values.max()), 3) if len(values) else None,
            }
            entry["bytes_sent"] = sent.get(route, 0)
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "requests_total": sum(counts.values()),
            "errors_total": sum(errors.values()),
            "errors_by_code": dict(sorted(errors.items())),
            "routes": routes,
        }


def _prometheus(snap: dict[str, Any], index_stats: dict[str, Any]) -> str:
    lines = [
        "# HELP edgeshelf_requests_total HTTP requests served, by route and status.",
        "# TYPE edgeshelf_requests_total counter",
    ]
    for route, entry in snap["routes"].items():
        for status, n in entry["by_status"].items():
            lines.append(f'edgeshelf_requests_total{{route="{route}",status="{status}"}} {n}')
    lines += [
        "# HELP edgeshelf_request_latency_ms Request latency over the recent window, in milliseconds.",
        "# TYPE edgeshelf_request_latency_ms summary",
    ]
    for route, entry in snap["routes"].items():
        lat = entry.get("latency_ms")
        if not lat:
            continue
        for q in (50, 90, 99):
            if lat[f"p{q}"] is not None:
                lines.append(
                    f'edgeshelf_request_latency_ms{{route="{route}",quantile="{q / 100:g}"}} {lat[f"p{q}"]}'
                )
        lines.append(f'edgeshelf_request_latency_ms_sum{{route="{route}"}} {lat["sum"]}')
        lines.append(f'edgeshelf_request_latency_ms_count{{route="{route}"}} {entry["requests"]}')
    lines += [
        "# HELP edgeshelf_errors_total Error responses, by error code.",
        "# TYPE edgeshelf_errors_total counter",
    ]
    for code, n in snap["errors_by_code"].items():
        lines.append(f'edgeshelf_errors_total{{code="{code}"}} {n}')
    lines += [
        "# HELP edgeshelf_index_products Products in the served index snapshot.",
        "# TYPE edgeshelf_index_products gauge",
        f"edgeshelf_index_products {index_stats['count']}",
        "# HELP edgeshelf_index_generation Generation of the served index snapshot.",
        "# TYPE edgeshelf_index_generation gauge",
        f"edgeshelf_index_generation {index_stats['generation']}",
        "# HELP edgeshelf_uptime_seconds Seconds since the service started.",
        "# TYPE edgeshelf_uptime_seconds gauge",
        f"edgeshelf_uptime_seconds {snap['uptime_s']}",
    ]
    return "\n".join(lines) + "\n"


# ---- ASGI middleware (outermost first: metrics, then the body limit)


class _MetricsMiddleware:
    def __init__(self, app: Callable, metrics: _Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 500, "sent": 0}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    if key == b"x-edgeshelf-error":
                        state["code"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                state["sent"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.record(
                _Metrics.route_of(scope.get("path", "")),
                state["status"],
                time.perf_counter() - start,
                state.get("code"),
                state["sent"],
            )


class _BodyLimitMiddleware:
    """Reads a request body up to ``limit`` bytes, answering 413 beyond it, then replays it."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                with contextlib.suppress(ValueError):
                    declared = int(value)
        if declared is not None and declared > self.limit:
            await self._reject(send, declared)
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and not declared:
            await self.app(scope, receive, send)
            return
        chunks = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.limit:
                await self._reject(send, total, streamed=True)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send, size: int, streamed: bool = False) -> None:
        what = f"more than {self.limit}" if streamed else str(size)
        error = ApiError(
            413,
            "body_too_large",
            f"request body: expected at most {self.limit} bytes; got {what} bytes "
            "(a search request is one embedding, a few KiB)",
        )
        response = error.response()
        response.headers["x-edgeshelf-error"] = error.code
        response.headers["connection"] = "close"
        await response({"type": "http"}, _no_receive, send)


async def _no_receive():  # pragma: no cover - a JSONResponse never reads the request
    return {"type": "http.disconnect"}


# ---- shards


@dataclass(frozen=True)
class _ShardEntry:
    name: str
    path: Path
    space_id: str
    version: int
    checksum: int
    size: int

    @property
    def etag(self) -> str:
        return shard_etag(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "space_id": self.space_id,
            "version": self.version,
            "checksum": f"{self.checksum:08x}",
            "etag": self.etag,
            "size": self.size,
        }


class _ShardFolder:
    """The shards a service offers (the layout :func:`publish_shard` writes).

    ``<dir>/<name>.shard`` is the current shard of ``name``; ``<dir>/<name>.deltas/<v>.delta``
    turns version ``v`` into it. A delta whose target is not the current shard (version and
    checksum) is never served, so a half-finished publish cannot hand out a wrong patch.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._cache: dict[Path, tuple[tuple[int, int, int], _ShardEntry]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if self.folder is None or not self.folder.is_dir():
            return []
        return sorted(
            p.name[: -len(SHARD_SUFFIX)] for p in self.folder.glob(f"*{SHARD_SUFFIX}") if p.is_file()
        )

    def entry(self, name: str) -> _ShardEntry:
        """What shard ``name`` is now (404 when it is not served)."""
        entry, handle = self.open(name)
        handle.close()
        return entry

    def open(self, name: str) -> tuple[_ShardEntry, BinaryIO]:
        """The current shard ``name`` and an open handle on exactly that file.

        Describing the open file (not the path) keeps headers and bytes consistent while a
        publish renames a new shard into place.
        """
        if not _SHARD_NAME.match(name) or name.endswith(SHARD_SUFFIX):
            raise ApiError(
                422,
                "bad_shard_name",
                f"shard name: expected 1-128 letters, digits, '.', '_' or '-' without the {SHARD_SUFFIX} "
                f"suffix; got {name!r}",
                field="name",
            )
        try:
            if self.folder is None:
                raise FileNotFoundError(name)
            path = self.folder / f"{name}{SHARD_SUFFIX}"
            handle = open(path, "rb")  # noqa: SIM115 - handed to the response, which closes it
        except FileNotFoundError:
            raise ApiError(
                404,
                "unknown_shard",
                f"shard {name!r} is not served here; available: {', '.join(self.names()) or '(none)'}",
                field="name",
            ) from None
        try:
            st = os.fstat(handle.fileno())
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._cache.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1], handle
            from edgeshelf.sdk.shard import HEADER_SIZE, decode_header

            info = decode_header(os.pread(handle.fileno(), HEADER_SIZE, 0), str(path))
            if info.size != st.st_size:
                raise CorruptArtifactError(
                    f"{path}: {st.st_size} bytes on disk, the header declares {info.size}"
                )
            entry = _ShardEntry(name, path, info.space_id, int(info.version), int(info.checksum), info.size)
            with self._lock:
                self._cache[path] = (stamp, entry)
            return entry, handle
        except EdgeshelfError as exc:
            handle.close()
            raise ApiError(
                503, "shard_unavailable", f"shard {name!r} cannot be served right now: {exc}"
            ) from exc
        except BaseException:
            handle.close()
            raise

    def delta(self, entry: _ShardEntry, from_version: int) -> bytes | None:
        """The delta from ``from_version`` to ``entry``, when one exists and targets ``entry``."""
        if self.folder is None:
            return None
        from edgeshelf.sdk.shard import decode_delta

        path = self.folder / f"{entry.name}.deltas" / f"{from_version}.delta"
        try:
            data = path.read_bytes()
            info, _, _ = decode_delta(data, str(path))
        except (FileNotFoundError, EdgeshelfError):
            return None  # an unreadable delta is as good as none: the client downloads the shard
        if (info.base_version, info.target_version, info.target_checksum) != (
            from_version,
            entry.version,
            entry.checksum,
        ):
            return None
        return data


def publish_shard(
    shards_dir: str | os.PathLike[str], name: str, shard: str | os.PathLike[str], *, keep: int = 3
) -> dict[str, Any]:
    """Make ``shard`` (a file) the current shard ``name`` of a service's shard folder.

    The previous current shard is kept in ``<name>.versions/`` (the newest ``keep`` versions)
    and a delta from each kept version to the new shard is written to ``<name>.deltas/`` when
    the two are compatible (same space, dtype and int8 scales: cut the new one with
    ``reuse_scales``); deltas are written before the new shard is renamed into place, and the
    server only serves a delta whose target is the current shard. Returns what was done.
    """
    from edgeshelf.sdk.shard import decode_header, encode_delta

    if not _SHARD_NAME.match(name) or name.endswith(SHARD_SUFFIX):
        raise InvalidInputError(
            f"shard name {name!r}: use 1-128 letters, digits, '.', '_' or '-' (no suffix)"
        )
    if keep < 0:
        raise InvalidInputError(f"keep must be >= 0; got {keep}")
    folder = Path(shards_dir)
    new_bytes = Path(shard).read_bytes()
    new_info = decode_header(new_bytes, str(shard))
    folder.mkdir(parents=True, exist_ok=True)
    current = folder / f"{name}{SHARD_SUFFIX}"
    versions = folder / f"{name}.versions"
    deltas = folder / f"{name}.deltas"
    if current.is_file():
        old_bytes = current.read_bytes()
        old_info = decode_header(old_bytes, str(current))
        if old_info.space_id != new_info.space_id:
            raise SpaceMismatchError(
                f"publishing {shard} as shard {name!r} in {folder}",
                old_info.space_id,
                new_info.space_id,
                "publish it under another name, or remove the old shard first",
            )
        if (old_info.version, old_info.checksum) != (new_info.version, new_info.checksum):
            atomic_write_bytes(versions / f"{old_info.version}{SHARD_SUFFIX}", old_bytes)
    kept = sorted(
        (
            int(p.name[: -len(SHARD_SUFFIX)])
            for p in versions.glob(f"*{SHARD_SUFFIX}")
            if p.name[: -len(SHARD_SUFFIX)].isdigit()
        ),
        reverse=True,
    )
    written, skipped = [], {}
    for version in kept[:keep]:
        if version == new_info.version:
            continue
        base = (versions / f"{version}{SHARD_SUFFIX}").read_bytes()
        try:
            delta = encode_delta(base, new_bytes)
        except EdgeshelfError as exc:
            skipped[version] = str(exc)
            continue
        atomic_write_bytes(deltas / f"{version}.delta", delta)
        written.append(version)
    for version in kept[keep:]:
        with contextlib.suppress(FileNotFoundError):
            (versions / f"{version}{SHARD_SUFFIX}").unlink()
    for stale in deltas.glob("*.delta") if deltas.is_dir() else ():
        if stale.stem.isdigit() and int(stale.stem) not in written:
            stale.unlink()
    atomic_write_bytes(current, new_bytes)
    return {
        "name": name,
        "path": str(current),
        "version": new_info.version,
        "checksum": f"{new_info.checksum:08x}",
        "deltas_from": written,
        "deltas_skipped": skipped,
    }


# ---- the app

_bearer = HTTPBearer(auto_error=False, description="Per-device token from `edgeshelf tokens create`.")


async def _authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TokenRecord | None:
    """Check the device token and its rate limit (the dependency of every /v1 endpoint).

    Runs on the event loop: a token seen before is checked from memory; only the first
    request of a token runs the slow hash, in a worker thread.
    """
    return await request.app.state.edgeshelf.authenticate(request)


Device = Annotated["TokenRecord | None", Depends(_authenticate)]


def create_app(
    index_path: str | os.PathLike[str],
    tokens_path: str | os.PathLike[str] | None,
    shards_dir: str | os.PathLike[str] | None = None,
    options: ServiceOptions | None = None,
) -> FastAPI:
    """The lookup service over the index at ``index_path``.

    ``tokens_path`` is the token file (required unless ``options.auth`` is False; it must exist:
    create a token with ``edgeshelf tokens create``). ``shards_dir`` holds ``<name>.shard`` files
    to offer for download (optional). The index is opened here, so a bad path fails now, not at
    the first request.
    """
    from edgeshelf.catalogue.index import CatalogueIndex

    options = options or ServiceOptions()
    tokens = None
    if options.auth:
        if tokens_path is None:
            raise InvalidInputError(
                "the lookup service needs a token file (--tokens FILE; create one with "
                "`edgeshelf tokens create --device NAME`) or --no-auth"
            )
        tokens = TokenStore.open(tokens_path)
    shards = _ShardFolder(Path(shards_dir) if shards_dir is not None else None)
    if shards_dir is not None and not Path(shards_dir).is_dir():
        raise FileNotFoundError(f"shard folder {shards_dir} does not exist; cut a shard into it first")
    index = CatalogueIndex.open(index_path)
    state = _State(index=index, tokens=tokens, shards=shards, options=options)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(state.refresh_loop()) if options.refresh_s > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            state.close()

    app = FastAPI(
        title="edgeshelf catalogue lookup",
        version=API_VERSION,
        description=(
            "Search a product catalogue by embedding and download shards of it for on-device search. "
            + ONLY_EMBEDDINGS
        ),
        lifespan=lifespan,
    )
    app.state.edgeshelf = state
    _install_error_handlers(app)

    @app.post(
        "/v1/search",
        response_model=SearchResponse,
        responses=_ERROR_RESPONSES,
        summary="Search by embedding (only embeddings are accepted)",
        description=ONLY_EMBEDDINGS,
    )
    async def search(body: SearchRequest, device: Device) -> SearchResponse:
        # A small index is searched on the event loop (well under a millisecond at 10k x 128,
        # cheaper than a worker-thread hop under load); a large one in a worker thread.
        if state.index.count * state.index.dim <= _INLINE_SEARCH_WORK:
            return state.search(body)
        from anyio import to_thread

        return await to_thread.run_sync(state.search, body)

    @app.get("/v1/info", response_model=InfoResponse, responses=_ERROR_RESPONSES)
    async def info(device: Device) -> InfoResponse:
        return state.info()

    @app.get("/v1/shards", response_model=list[ShardOut], responses=_ERROR_RESPONSES)
    def list_shards(device: Device) -> list[ShardOut]:
        return [ShardOut(**shards.entry(name).to_dict()) for name in shards.names()]

    @app.get(
        "/v1/shards/{name}",
        responses={
            **_ERROR_RESPONSES,
            200: {
                "content": {"application/octet-stream": {}},
                "description": "The shard file (DESIGN.md contract 3)",
            },
            304: {"description": "If-None-Match matched: the device's shard is current"},
        },
        response_class=Response,
    )
    def get_shard(
        name: str, device: Device, if_none_match: Annotated[str | None, Header()] = None
    ) -> Response:
        entry, handle = shards.open(name)
        headers = _shard_headers(entry)
        if _etag_matches(if_none_match, entry.etag):
            handle.close()
            return Response(status_code=304, headers=headers)
        headers["Content-Length"] = str(entry.size)

        def chunks():
            with handle:
                while block := handle.read(1 << 20):
                    yield block

        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    @app.get(
        "/v1/shards/{name}/delta",
        responses={
            **_ERROR_RESPONSES,
            200: {
                "content": {"application/octet-stream": {}},
                "description": "Delta bytes (sdk.shard.apply_delta)",
            },
            304: {"description": "The device's shard is current"},
            404: {
                "model": ErrorResponse,
                "description": "No delta from that version: download the full shard",
            },
        },
        response_class=Response,
    )
    def get_delta(
        name: str,
        device: Device,
        from_version: Annotated[int, Query(ge=0, description="Version of the shard the device holds.")],
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        entry = shards.entry(name)
        headers = _shard_headers(entry)
        if _etag_matches(if_none_match, entry.etag):
            return Response(status_code=304, headers=headers)
        data = shards.delta(entry, from_version)
        if data is None:
            raise ApiError(
                404,
                "no_delta",
                f"no delta for shard {name!r} from version {from_version} to {entry.version}: "
                f"download the full shard (GET /v1/shards/{name})",
                field="from_version",
            )
        return Response(data, media_type="application/octet-stream", headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return state.health()

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(format: Annotated[Literal["prometheus", "json"], Query()] = "prometheus") -> Response:
        snap = state.metrics.snapshot()
        index_stats = state.index_stats()
        if format == "json":
            return JSONResponse({**snap, "index": index_stats})
        return PlainTextResponse(_prometheus(snap, index_stats), media_type="text/plain; version=0.0.4")

    app.add_middleware(_BodyLimitMiddleware, limit=options.max_body_bytes)
    app.add_middleware(_MetricsMiddleware, metrics=state.metrics)
    return app


class _State:
    """What one app instance holds: the index, tokens, shards, limits and metrics."""

    def __init__(
        self, index: Any, tokens: TokenStore | None, shards: _ShardFolder, options: ServiceOptions
    ) -> None:
        self.index = index
        self.tokens = tokens
        self.shards = shards
        self.options = options
        self.metrics = _Metrics(options.latency_window)
        self.limiter = _RateLimiter(options.rate_per_s, options.burst)
        self.rw = _ReadWriteLock()
        self.closed = False

    # auth + rate limit

    async def authenticate(self, request: Request) -> TokenRecord | None:
        key = request.client.host if request.client else "unknown"
        record = None
        if self.tokens is not None:
            # HTTPBearer documents the scheme in OpenAPI; the header is parsed here so that an
            # empty "Bearer" is "missing" and another scheme is named as such.
            scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
            if scheme and scheme.lower() != "bearer":
                raise ApiError(
                    401,
                    "malformed_authorization",
                    f"Authorization header: expected 'Bearer <device token>'; got scheme {scheme[:20]!r}",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            token = value.strip() or None
            try:
                record = self.tokens.verify_cached(token)
                if record is None:
                    from anyio import to_thread

                    record = await to_thread.run_sync(self.tokens.verify, token)
            except TokenError as exc:
                status = 403 if exc.problem == "revoked" else 401
                raise ApiError(
                    status, f"token_{exc.problem}", str(exc), headers={"WWW-Authenticate": "Bearer"}
                ) from exc
            key = record.token_id
        wait = self.limiter.take(key)
        if wait > 0:
            who = f"device {record.device!r}" if record else f"client {key}"
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {self.options.rate_per_s:g} requests/s (burst {self.options.burst}) exceeded "
                f"for {who}; retry after {wait:.2f} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return record

    # search

    def search(self, body: SearchRequest) -> SearchResponse:
        index = self.index
        if body.space_id != index.space_id:
            raise ApiError(
                409,
                "space_mismatch",
                f"space_id: the embedding is from space {body.space_id} but this index is space "
                f"{index.space_id}: embed with the bundle of space {index.space_id}, or query the service "
                f"that serves space {body.space_id}",
                field="space_id",
                extra={"expected": index.space_id, "actual": body.space_id},
            )
        if not 1 <= body.k <= self.options.max_k:
            raise ApiError(
                422,
                "k_out_of_range",
                f"k: expected an integer in 1..{self.options.max_k}; got {body.k}",
                field="k",
                extra={"expected": [1, self.options.max_k], "actual": body.k},
            )
        vector = decode_vector(body.dtype, body.vector, body.scale, index.dim)
        filters = body.filters.model_dump(exclude_none=True) if body.filters else None
        start = time.perf_counter()
        with self.rw.read():
            index = self.index
            try:
                result = index.search(vector[None, :], body.k, filters)[0]
            except InvalidInputError as exc:
                raise ApiError(422, "invalid_input", str(exc), field="filters" if filters else None) from exc
            generation = index.generation
        latency = (time.perf_counter() - start) * 1000.0
        return SearchResponse(
            space_id=index.space_id,
            k=body.k,
            generation=generation,
            latency_ms=round(latency, 3),
            hits=[
                HitOut(
                    product_id=h.product_id, score=h.score, title=h.title, price=h.price, category=h.category
                )
                for h in result.hits
            ],
        )

    def info(self) -> InfoResponse:
        stats = self.index_stats()
        return InfoResponse(
            space_id=self.index.space_id,
            dim=self.index.dim,
            count=stats["count"],
            generation=stats["generation"],
            index_dtype=self.index.dtype,
            dtypes=list(WIRE_DTYPES),
            max_k=self.options.max_k,
            filters=["category", "min_price", "max_price"],
            max_body_bytes=self.options.max_body_bytes,
            shards=self.shards.names(),
            privacy=ONLY_EMBEDDINGS,
        )

    def index_stats(self) -> dict[str, Any]:
        with self.rw.read():
            return {"count": int(self.index.count), "generation": int(self.index.generation)}

    def health(self) -> dict[str, Any]:
        stats = self.index_stats()
        return {
            "status": "ok",
            "space_id": self.index.space_id,
            "dim": self.index.dim,
            **stats,
            "uptime_s": round(time.time() - self.metrics.started, 3),
        }

    # background refresh

    async def refresh_loop(self) -> None:
        from anyio import to_thread

        while True:
            await asyncio.sleep(self.options.refresh_s)
            await to_thread.run_sync(self.refresh)

    def refresh(self) -> bool:
        """Move the index to its newest generation (searches wait for the moment of the swap)."""
        if not hasattr(self.index, "refresh"):
            return False
        with self.rw.write():
            return bool(self.index.refresh())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self.rw.write():
            self.index.close()


def _shard_headers(entry: _ShardEntry) -> dict[str, str]:
    return {
        "ETag": entry.etag,
        "Cache-Control": "no-cache",
        "X-Edgeshelf-Space-Id": entry.space_id,
        "X-Edgeshelf-Shard-Version": str(entry.version),
        "X-Edgeshelf-Shard-Checksum": f"{entry.checksum:08x}",
    }


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return etag in tags


# ---- error handlers: every failure is JSON, and bad input is a 4xx


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "a JSON object",
    "list_type": "a list",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "finite_number": "a finite number",
}


_UNION_TAGS = re.compile(r"^(str|int|float|bool|none|dict|list(\[.*\])?|function-[a-z]+\[.*\])$")
_TYPE_WORDS_BY_TAG = {"str": "a string", "list[str]": "a list of strings"}


def _validation_error(exc: RequestValidationError, request: Request) -> ApiError:
    """One 4xx naming the field, what was expected and what came, for pydantic's error list."""
    errors = exc.errors()
    first = errors[0] if errors else {"type": "unknown", "loc": (), "msg": "invalid request"}
    kind = first.get("type", "")

    def location(error: dict[str, Any]) -> list[str]:
        parts = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if error.get("type") != "extra_forbidden":  # drop pydantic's union-member tags ("str", "list[str]")
            parts = [p for p in parts if not _UNION_TAGS.match(p)]
        return parts

    loc = location(first)
    field = ".".join(loc) or None
    got = first.get("input")
    same = [e for e in errors if location(e) == loc]
    more = f" (and {len(errors) - len(same)} more problem(s))" if len(errors) > len(same) else ""
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "invalid JSON")
        return ApiError(
            400, "malformed_json", f"request body: expected a JSON object; got malformed JSON ({detail})"
        )
    if kind == "missing" and not loc and request.method == "POST":
        return ApiError(
            400, "empty_body", "request body: expected a JSON object (see the schema at /docs); got nothing"
        )
    if kind == "model_attributes_type" and not loc and isinstance(got, bytes | bytearray):
        ctype = request.headers.get("content-type", "(none)")
        return ApiError(415, "not_json", f"Content-Type: expected application/json; got {ctype}")
    if kind == "extra_forbidden":
        allowed = ", ".join(SearchRequest.model_fields) if len(loc) == 1 else "category, min_price, max_price"
        return ApiError(
            422,
            "unknown_field",
            f"{field}: unknown field (allowed: {allowed}). {ONLY_EMBEDDINGS}{more}",
            field=field,
        )
    if kind == "missing":
        return ApiError(422, "missing_field", f"{field}: required field is missing{more}", field=field)
    if kind == "literal_error":
        expected = (first.get("ctx") or {}).get("expected", "")
        code = "unknown_dtype" if field == "dtype" else "bad_value"
        return ApiError(
            422, code, f"{field}: expected one of {expected}; got {_show(got)}{more}", field=field
        )
    words = []
    for error in same:
        tags = [str(p) for p in error.get("loc", ()) if _UNION_TAGS.match(str(p))]
        word = _TYPE_WORDS_BY_TAG.get(tags[-1]) if tags else _TYPE_WORDS.get(error.get("type", ""))
        if word and word not in words:
            words.append(word)
    if words and all(_TYPE_WORDS.get(e.get("type", "")) for e in same):
        return ApiError(
            422,
            "wrong_type",
            f"{field or 'request body'}: expected {' or '.join(words)}; got {_show(got)}{more}",
            field=field,
        )
    return ApiError(
        422,
        "invalid_field",
        f"{field or 'request'}: {first.get('msg', 'invalid')}; got {_show(got)}{more}",
        field=field,
    )


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    text = (
        json.dumps(value)
        if isinstance(value, str | int | float | bool | type(None))
        else type(value).__name__
    )
    if isinstance(value, str | int | float | bool):
        text += f" ({type(value).__name__})"
    return text if len(text) <= 80 else text[:77] + "..."


def _install_error_handlers(app: FastAPI) -> None:
    def respond(error: ApiError) -> JSONResponse:
        response = error.response()
        response.headers["x-edgeshelf-error"] = error.code
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(_validation_error(exc, request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "malformed_json", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, f"http_{exc.status_code}"
        )
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no endpoint {request.url.path}; see /docs for the API"
        elif exc.status_code == 400:  # FastAPI could not decode the body (e.g. invalid UTF-8)
            message = f"request body: expected a JSON object in UTF-8; got malformed JSON ({exc.detail})"
        return respond(ApiError(exc.status_code, code, message, headers=getattr(exc, "headers", None)))

    @app.exception_handler(SpaceMismatchError)
    async def space_error(request: Request, exc: SpaceMismatchError) -> JSONResponse:
        return respond(
            ApiError(
                409,
                "space_mismatch",
                str(exc),
                "space_id",
                extra={"expected": exc.expected, "actual": exc.actual},
            )
        )

    @app.exception_handler(InvalidInputError)
    async def input_error(request: Request, exc: InvalidInputError) -> JSONResponse:
        return respond(ApiError(422, "invalid_input", str(exc)))

    @app.exception_handler(CorruptArtifactError)
    async def corrupt_error(request: Request, exc: CorruptArtifactError) -> JSONResponse:
        return respond(ApiError(503, "artifact_unavailable", f"the service cannot read its data: {exc}"))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A real bug, not bad input: say so without leaking internals (uvicorn logs the traceback).
        return respond(
            ApiError(500, "internal_error", f"internal error ({type(exc).__name__}); see the service log")
        )


__all__ = [
    "ONLY_EMBEDDINGS",
    "WIRE_DTYPES",
    "SearchFilters",
    "SearchRequest",
    "SearchResponse",
    "ServiceOptions",
    "create_app",
    "decode_vector",
    "publish_shard",
]
