"""The device's client of the catalogue lookup service (DESIGN.md contract 4).

:class:`LookupClient` sends a query *embedding* (plus its space id, ``k`` and optional metadata
filters) and nothing else: no audio, no image, no query text ever leaves the device through it.
It retries dead connections and 429/502/503/504 answers with exponential back-off, and turns
failures into typed errors: :class:`~edgeshelf.sdk.errors.ServiceError` when the service cannot
be reached (the device can fall back to its cached shard), :class:`LookupAuthError` for a
missing or revoked token, :class:`~edgeshelf.sdk.errors.SpaceMismatchError` when the service
serves another embedding space, :class:`~edgeshelf.sdk.errors.InvalidInputError` for a request
the service rejected.

It also keeps the device's shard current: :meth:`LookupClient.update_shard` asks for a delta from
the cached version, falls back to the full shard, verifies the result (checksum, space id) in a
temporary file and swaps it in with one rename; a failed or interrupted update leaves the old
shard in place.

Example::

    with LookupClient.open("http://hub.local:8080", token) as client:
        result = client.search(embedding, k=10, filters={"max_price": 50})
        client.update_shard("top10k", "cache/top10k.shard", expected_space_id=embedding.space_id)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    EdgeshelfError,
    FormatVersionError,
    InvalidInputError,
    ServiceError,
    SpaceMismatchError,
    require,
)
from edgeshelf.sdk.results import Embedding, Hit, SearchResult

if TYPE_CHECKING:
    import httpx

WireDtype = Literal["float32", "float16", "int8"]
WIRE_DTYPES: tuple[str, ...] = ("float32", "float16", "int8")
FILTER_KEYS: tuple[str, ...] = ("category", "min_price", "max_price")
# The only keys a search request body ever has (the privacy test checks every request).
SEARCH_KEYS: tuple[str, ...] = ("space_id", "dtype", "vector", "scale", "k", "filters")
_RETRY_STATUS = (429, 502, 503, 504)
_WIRE_NUMPY = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1")}
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TOKEN_HELP = "create a device token with `edgeshelf tokens create --device NAME` on the service host"


class LookupAuthError(ServiceError, PermissionError):
    """The service refused the device token (missing, unknown or revoked)."""


class RateLimitedError(ServiceError):
    """The service kept answering 429 for this device token after every retry."""


@dataclass(frozen=True)
class LookupOptions:
    """How the client talks to the service.

    ``timeout_s``: read/write timeout of one request, seconds; ``connect_timeout_s``: TCP
    connect timeout; ``download_timeout_s``: read timeout while downloading a shard.
    ``retries``: extra attempts after the first for connection errors, time-outs and
    429/502/503/504; ``backoff_s`` doubles each retry (with up to 25 % jitter), capped at
    ``backoff_max_s`` (a 429's ``Retry-After`` is honoured up to that cap). ``dtype``: wire
    element type of the query vector (``float16`` halves the bytes; ``int8`` quarters them).
    ``max_delta_bytes``: larger delta answers are refused (a full download is cheaper).
    ``transport`` (an ``httpx.BaseTransport``) and ``on_request`` (called with every
    ``httpx.Request`` before it is sent) exist so tests can route and record traffic.
    """

    timeout_s: float = 2.0
    connect_timeout_s: float = 1.0
    download_timeout_s: float = 30.0
    retries: int = 2
    backoff_s: float = 0.2
    backoff_max_s: float = 2.0
    dtype: WireDtype = "float16"
    max_delta_bytes: int = 64 << 20
    user_agent: str = "edgeshelf-sdk"
    transport: Any = field(default=None, compare=False, repr=False)
    on_request: Callable[[Any], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("timeout_s", "connect_timeout_s", "download_timeout_s"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(
                    f"LookupOptions.{name} must be > 0 seconds; got {getattr(self, name)}"
                )
        if self.retries < 0:
            raise InvalidInputError(f"LookupOptions.retries must be >= 0; got {self.retries}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise InvalidInputError("LookupOptions.backoff_s and backoff_max_s must be >= 0")
        if self.dtype not in WIRE_DTYPES:
            raise InvalidInputError(
                f"LookupOptions.dtype {self.dtype!r} is not one of {', '.join(WIRE_DTYPES)}"
            )


@dataclass(frozen=True)
class ShardUpdate:
    """What :meth:`LookupClient.update_shard` / :meth:`~LookupClient.fetch_shard` did.

    ``status``: ``"current"`` (the device already had it), ``"delta"`` (patched) or ``"full"``
    (downloaded whole). ``bytes_downloaded`` counts payload bytes; ``note`` says why a delta
    was not used, when it was not.
    """

    status: Literal["current", "delta", "full"]
    path: Path
    space_id: str
    version: int
    checksum: str
    bytes_downloaded: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "path": str(self.path),
            "space_id": self.space_id,
            "version": self.version,
            "checksum": self.checksum,
            "bytes_downloaded": self.bytes_downloaded,
            "note": self.note,
        }


def encode_query(vector: np.ndarray, dtype: WireDtype) -> tuple[str, float | None]:
    """Wire form of a float32 ``[dim]`` vector: ``(base64 of little-endian dtype values, scale)``.

    ``int8`` is symmetric per vector: ``code = round(v / scale)``, ``scale = max|v| / 127``.
    """
    vector = np.asarray(vector, np.float32).reshape(-1)
    if dtype == "int8":
        peak = float(np.abs(vector).max()) if vector.size else 0.0
        scale = peak / 127.0 if peak > 0 else 1.0
        codes = np.clip(np.rint(vector / scale), -127, 127).astype(np.int8)
        return base64.b64encode(codes.tobytes()).decode("ascii"), scale
    if dtype not in _WIRE_NUMPY:
        raise InvalidInputError(f"dtype {dtype!r} is not one of {', '.join(WIRE_DTYPES)}")
    return base64.b64encode(vector.astype(_WIRE_NUMPY[dtype]).tobytes()).decode("ascii"), None


class LookupClient:
    """HTTP client of the lookup service; a context manager (``close()`` is idempotent).

    ``search`` takes an :class:`Embedding` (float32 ``[dim]``, L2-normalised, with its space id)
    or a float32 ``[dim]`` array plus ``space_id``. Construct with :meth:`open`; nothing is sent
    until the first call, so opening works offline.
    """

    def __init__(self, url: str, token: str | None, options: LookupOptions, space_id: str | None) -> None:
        httpx = require("httpx", "device")
        self.url = url
        self.options = options
        self.space_id = space_id
        self._closed = False
        headers = {"User-Agent": options.user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        hooks = {"request": [options.on_request]} if options.on_request is not None else {}
        self._client = httpx.Client(
            base_url=url,
            headers=headers,
            timeout=httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s),
            transport=options.transport,
            event_hooks=hooks,
            follow_redirects=False,
        )

    @classmethod
    def open(
        cls,
        url: str,
        token: str | None = None,
        options: LookupOptions | None = None,
        *,
        space_id: str | None = None,
    ) -> LookupClient:
        """A client of the service at ``url`` (``http(s)://host:port``) using device ``token``.

        ``space_id`` (optional) is used for searches given a bare array.
        """
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"lookup service url must start with http:// or https://; got {url!r}")
        if token is not None and (
            not isinstance(token, str) or not token.isascii() or not token.isprintable() or " " in token
        ):
            raise InvalidInputError(
                "device token must be printable ASCII without spaces (as printed by `edgeshelf tokens create`)"
            )
        return cls(url.rstrip("/"), token, options or LookupOptions(), space_id)

    # ---- life cycle

    def close(self) -> None:
        """Close the connection pool (safe to call twice)."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> LookupClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LookupClient({self.url!r}, space={self.space_id or '?'}{', closed' if self._closed else ''})"

    # ---- search

    def search(
        self,
        embedding: Embedding | np.ndarray,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        dtype: WireDtype | None = None,
        *,
        space_id: str | None = None,
    ) -> SearchResult:
        """Top-``k`` products for one query embedding, ranked by the service (``source="remote"``).

        Sends only ``{space_id, dtype, vector, scale?, k, filters?}``. ``filters``:
        ``{"category": str | list[str], "min_price": float, "max_price": float}``.
        """
        self._check_open()
        vector, space = self._query_vector(embedding, space_id)
        dtype = dtype or self.options.dtype
        if dtype not in WIRE_DTYPES:
            raise InvalidInputError(f"dtype {dtype!r} is not one of {', '.join(WIRE_DTYPES)}")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1; got {k!r}")
        data, scale = encode_query(vector, dtype)
        body: dict[str, Any] = {"space_id": space, "dtype": dtype, "vector": data, "k": int(k)}
        if scale is not None:
            body["scale"] = scale
        if filters:
            body["filters"] = _check_filters(filters)
        start = time.perf_counter()
        response = self._request("POST", "/v1/search", json=body)
        latency = (time.perf_counter() - start) * 1000.0
        answer = self._answer(response, "search", sent_space=space)
        try:
            hits = tuple(
                Hit(
                    product_id=str(h["product_id"]),
                    score=float(h["score"]),
                    title=str(h.get("title") or ""),
                    price=None if h.get("price") is None else float(h["price"]),
                    category=str(h.get("category") or ""),
                )
                for h in answer["hits"]
            )
            served_space = str(answer["space_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceError(
                f"lookup service {self.url} sent a search answer this SDK cannot read ({exc})"
            ) from exc
        self.space_id = served_space
        return SearchResult(
            hits=hits,
            source="remote",
            space_id=served_space,
            latency_ms=latency,
            note=f"generation {answer.get('generation', '?')}",
        )

    def info(self) -> dict[str, Any]:
        """``GET /v1/info``: space id, dim, count, limits and shards of the service."""
        self._check_open()
        answer = self._answer(self._request("GET", "/v1/info"), "info")
        self.space_id = str(answer.get("space_id") or "") or self.space_id
        return answer

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (needs no token)."""
        self._check_open()
        return self._answer(self._request("GET", "/healthz"), "health check")

    # ---- shards

    def fetch_shard(
        self, name: str, dest_path: str | os.PathLike[str], expected_space_id: str | None = None
    ) -> ShardUpdate:
        """Download shard ``name`` to ``dest_path`` unless the cached copy is current (ETag).

        The download goes to a temporary file beside ``dest_path``, is verified (checksum,
        and space id when ``expected_space_id`` is given) and then renamed over it; on any
        failure the old file stays and the error says why.
        """
        self._check_open()
        _check_shard_name(name)
        dest = Path(dest_path)
        current = _cached_info(dest)
        return self._download_full(name, dest, current, expected_space_id, note="")

    def update_shard(
        self, name: str, shard_path: str | os.PathLike[str], expected_space_id: str
    ) -> ShardUpdate:
        """Bring the cached shard at ``shard_path`` up to date: a delta first, else the full shard.

        The new shard is checked (checksum, and space id == ``expected_space_id``) in a temporary
        file and swapped in atomically. A failed or interrupted update raises
        (:class:`ServiceError`, :class:`CorruptArtifactError`, :class:`SpaceMismatchError`) and
        leaves the old shard in use. A :class:`Shard` already open on the old file keeps reading
        it (the rename does not disturb its mapping); open the path again to search the new one.
        """
        self._check_open()
        _check_shard_name(name)
        from edgeshelf.sdk.shard import apply_delta

        dest = Path(shard_path)
        current = _cached_info(dest)
        if current is None:
            note = "no readable cached shard: full download" if dest.exists() else ""
            return self._download_full(name, dest, None, expected_space_id, note=note)
        if current.space_id != expected_space_id:
            return self._download_full(
                name,
                dest,
                None,
                expected_space_id,
                note=f"cached shard is space {current.space_id}, expected {expected_space_id}: full download",
            )
        response = self._request(
            "GET",
            f"/v1/shards/{name}/delta",
            params={"from_version": int(current.version)},
            headers={"If-None-Match": shard_etag(current)},
        )
        if response.status_code == 304:
            return ShardUpdate(
                "current", dest, current.space_id, int(current.version), f"{int(current.checksum):08x}"
            )
        if response.status_code in (404, 410):
            reason = _error_message(response)
            if _error_code(response) == "unknown_shard":
                self._answer(response, f"shard {name!r}")
            return self._download_full(name, dest, current, expected_space_id, note=f"no delta: {reason}")
        self._answer(response, f"delta of shard {name!r}", expect_json=False)
        delta = response.content
        if len(delta) > self.options.max_delta_bytes:
            return self._download_full(
                name,
                dest,
                current,
                expected_space_id,
                note=f"delta of {len(delta)} bytes is over max_delta_bytes: full download",
            )
        expected_checksum = response.headers.get("x-edgeshelf-shard-checksum")
        tmp = _temp_beside(dest)
        try:
            apply_delta(dest, delta, tmp)
            info = _verify(
                tmp, expected_space_id, expected_checksum, f"delta of shard {name!r} from {self.url}"
            )
        except EdgeshelfError as exc:
            _unlink(tmp)
            update = self._download_full(
                name, dest, current, expected_space_id, note=f"delta did not apply ({exc}): full download"
            )
            return update
        except BaseException:
            _unlink(tmp)
            raise
        _swap(tmp, dest)
        return ShardUpdate(
            "delta", dest, str(info.space_id), int(info.version), f"{int(info.checksum):08x}", len(delta)
        )

    # ---- internals

    def _download_full(
        self, name: str, dest: Path, current: Any, expected_space_id: str | None, note: str
    ) -> ShardUpdate:
        httpx = require("httpx", "device")
        headers = {"If-None-Match": shard_etag(current)} if current is not None else {}
        timeout = httpx.Timeout(self.options.download_timeout_s, connect=self.options.connect_timeout_s)
        kept = f"the old shard {dest} is still in use" if dest.exists() else f"no shard was written to {dest}"
        what = f"shard {name!r} from {self.url}"
        last = ""
        for attempt in range(self.options.retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt))
            tmp: Path | None = None
            received = 0
            total = None
            try:
                with self._client.stream(
                    "GET", f"/v1/shards/{name}", headers=headers, timeout=timeout
                ) as response:
                    status = response.status_code
                    if status == 304 and current is not None:
                        return ShardUpdate(
                            "current",
                            dest,
                            str(current.space_id),
                            int(current.version),
                            f"{int(current.checksum):08x}",
                            0,
                            note,
                        )
                    if status != 200:
                        response.read()
                        if status in _RETRY_STATUS:
                            last = f"HTTP {status}: {_error_message(response)}"
                            continue
                        self._answer(response, f"shard {name!r}", expect_json=False)
                        raise ServiceError(f"{what}: unexpected HTTP {status}; {kept}")
                    total = response.headers.get("content-length")
                    checksum = response.headers.get("x-edgeshelf-shard-checksum")
                    tmp = _temp_beside(dest)
                    with open(tmp, "wb") as handle:
                        for chunk in response.iter_bytes(1 << 16):
                            handle.write(chunk)
                            received += len(chunk)
                        handle.flush()
                        os.fsync(handle.fileno())
                if total is not None and received != int(total):
                    last = f"interrupted: got {received} of {total} bytes"
                    _unlink(tmp)
                    continue
                info = _verify(tmp, expected_space_id, checksum, what)
            except httpx.TransportError as exc:
                if tmp is not None:
                    _unlink(tmp)
                size = f" of {total}" if total else ""
                last = f"interrupted after {received}{size} bytes ({type(exc).__name__}: {exc or 'connection closed'})"
                continue
            except SpaceMismatchError as exc:
                if tmp is not None:
                    _unlink(tmp)
                raise SpaceMismatchError(
                    what, exc.expected, exc.actual, f"the service offers a shard of another space; {kept}"
                ) from exc
            except (CorruptArtifactError, FormatVersionError) as exc:
                if tmp is not None:
                    _unlink(tmp)
                raise CorruptArtifactError(f"{what} failed verification ({exc}); {kept}") from exc
            except BaseException:
                if tmp is not None:
                    _unlink(tmp)
                raise
            _swap(tmp, dest)
            return ShardUpdate(
                "full",
                dest,
                str(info.space_id),
                int(info.version),
                f"{int(info.checksum):08x}",
                received,
                note,
            )
        raise ServiceError(
            f"downloading {what} failed after {self.options.retries + 1} attempt(s) ({last}); {kept}"
        )

    def _query_vector(
        self, embedding: Embedding | np.ndarray, space_id: str | None
    ) -> tuple[np.ndarray, str]:
        if isinstance(embedding, Embedding):
            vector, space = embedding.vector, space_id or embedding.space_id
            if space_id and space_id != embedding.space_id:
                raise SpaceMismatchError(
                    "search: space_id argument vs the embedding",
                    embedding.space_id,
                    space_id,
                    "pass one space id",
                )
        else:
            vector, space = embedding, space_id or self.space_id
        if not space:
            raise InvalidInputError(
                "search needs the embedding's space id: pass an Embedding, or space_id=..., "
                "or open the client with space_id=..."
            )
        array = np.asarray(vector)
        if array.ndim == 2 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 1 or array.size == 0:
            raise InvalidInputError(f"query embedding must be float32 [dim]; got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise InvalidInputError(f"query embedding must be floating point (float32); got {array.dtype}")
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise InvalidInputError("query embedding contains NaN or infinite values; it cannot be searched")
        return array, str(space)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(f"lookup client for {self.url} is closed")

    def _backoff(self, attempt: int) -> float:
        base = min(self.options.backoff_max_s, self.options.backoff_s * (2 ** (attempt - 1)))
        return base * (1.0 + 0.25 * random.random())

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries on transport errors and 429/502/503/504; return the last response."""
        httpx = require("httpx", "device")
        last: str = ""
        wait = 0.0
        for attempt in range(self.options.retries + 1):
            if attempt:
                time.sleep(max(wait, self._backoff(attempt)))
            wait = 0.0
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc or 'no answer'}"
                continue
            if response.status_code not in _RETRY_STATUS:
                return response
            last = f"HTTP {response.status_code}: {_error_message(response)}"
            if response.status_code == 429:
                with contextlib.suppress(ValueError):
                    wait = min(self.options.backoff_max_s, float(response.headers.get("retry-after", "0")))
                if attempt == self.options.retries:
                    raise RateLimitedError(
                        f"lookup service {self.url} rate-limited this device after {attempt + 1} attempt(s) "
                        f"({last}); slow down, or answer from the cached shard meanwhile"
                    )
        raise ServiceError(
            f"lookup service {self.url} is unreachable after {self.options.retries + 1} attempt(s) "
            f"({last}); the device can fall back to its cached shard"
        )

    def _answer(
        self, response: httpx.Response, what: str, *, sent_space: str | None = None, expect_json: bool = True
    ) -> Any:
        """The decoded 2xx answer, or the typed error for a 4xx/5xx."""
        status = response.status_code
        if 200 <= status < 300:
            if not expect_json:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise ServiceError(
                    f"lookup service {self.url} answered {what} with non-JSON ({exc})"
                ) from exc
        message = _error_message(response)
        if status in (401, 403):
            raise LookupAuthError(
                f"lookup service {self.url} refused the device token for {what} (HTTP {status}: {message}); "
                f"{_TOKEN_HELP} and give it to the device"
            )
        if status == 409 and _error_code(response) == "space_mismatch":
            expected = str(_error_field(response, "expected") or "?")
            raise SpaceMismatchError(
                f"lookup service {self.url}",
                expected,
                str(_error_field(response, "actual") or sent_space or "?"),
                "the service serves another embedding space: update the device's bundle, "
                "or point the device at the service for its space",
            )
        if status in (400, 413, 415, 422):
            raise InvalidInputError(
                f"lookup service {self.url} rejected the {what} request (HTTP {status}): {message}"
            )
        raise ServiceError(f"lookup service {self.url} failed the {what} request (HTTP {status}: {message})")


# ---- helpers


def _check_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise InvalidInputError(f"unknown filter(s) {unknown}; valid filters: {', '.join(FILTER_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if key == "category":
            out[key] = value if isinstance(value, str) else [str(v) for v in value]
        else:
            try:
                out[key] = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"filter {key} must be a number; got {value!r}") from exc
    return out


def _check_shard_name(name: str) -> None:
    if not isinstance(name, str) or not _SHARD_NAME.match(name):
        raise InvalidInputError(
            f"shard name {name!r} is invalid: use 1-128 letters, digits, '.', '_' or '-' (the name the service lists)"
        )


def _error_body(response: Any) -> dict[str, Any]:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        body = json.loads(response.content or b"{}")
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return error
    return {}


def _error_message(response: Any) -> str:
    message = _error_body(response).get("message")
    if message:
        return str(message)
    with contextlib.suppress(Exception):
        text = response.text.strip()
        if text:
            return text[:200]
    return response.reason_phrase or f"HTTP {response.status_code}"


def _error_code(response: Any) -> str:
    return str(_error_body(response).get("code") or "")


def _error_field(response: Any, key: str) -> Any:
    return _error_body(response).get(key)


def shard_etag(info: Any) -> str:
    """The HTTP ETag of a shard: its space id, version and body crc32 (quoted)."""
    return f'"{info.space_id}-{int(info.version)}-{int(info.checksum):08x}"'


def _cached_info(path: Path) -> Any:
    """The header of the cached shard, or None when there is none or it is unreadable."""
    from edgeshelf.sdk.shard import read_shard_info

    if not path.is_file():
        return None
    try:
        return read_shard_info(path)
    except EdgeshelfError:
        return None


def _verify(path: Path, expected_space_id: str | None, expected_checksum: str | None, what: str) -> Any:
    """Check a downloaded shard fully (structure + checksum, space id, the server's checksum)."""
    from edgeshelf.sdk.shard import Shard, read_shard_info

    info = read_shard_info(path)
    if expected_checksum and f"{int(info.checksum):08x}" != expected_checksum:
        raise CorruptArtifactError(
            f"{what}: checksum {int(info.checksum):08x} != {expected_checksum} announced by the service"
        )
    if expected_space_id is not None and str(info.space_id) != expected_space_id:
        raise SpaceMismatchError(
            what, expected_space_id, str(info.space_id), "the service offers another space"
        )
    # Opening checks the body crc32 and the section layout; the numpy kernel builds no index.
    with Shard.open(path, expected_space_id=expected_space_id, kernel="numpy"):
        pass
    return info


def _temp_beside(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    return Path(tmp)


def _swap(tmp: Path, dest: Path) -> None:
    """Rename the verified ``tmp`` over ``dest`` (atomic on POSIX) and make the rename durable."""
    os.replace(tmp, dest)
    with contextlib.suppress(OSError):
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


__all__ = [
    "FILTER_KEYS",
    "SEARCH_KEYS",
    "LookupAuthError",
    "LookupClient",
    "LookupOptions",
    "RateLimitedError",
    "ShardUpdate",
    "encode_query",
    "shard_etag",
]
