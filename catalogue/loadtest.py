"""A bounded load test of the lookup service: N concurrent clients for T seconds.

Each client (an asyncio task with its own ``httpx.AsyncClient`` and one keep-alive connection)
sends ``POST /v1/search`` back to back with seeded random unit vectors of
the served space until the deadline. The report holds throughput, latency percentiles (round
trip, as the client sees it, milliseconds) and the error count by kind; the service's own view
of ``/v1/search`` latency is read from ``/metrics`` afterwards. The run is bounded in time and
concurrency, and aimed at loopback unless ``allow_remote`` is set.

Example::

    report = run_load_test("http://127.0.0.1:8080", LoadTestOptions(seconds=60, clients=32, token=token))
    print(report.throughput_rps, report.latency_ms["p99"], report.errors)
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError, ServiceError, require
from edgeshelf.sdk.lookup import WIRE_DTYPES, encode_query

MAX_SECONDS = 3600.0
MAX_CLIENTS = 1024


@dataclass(frozen=True)
class LoadTestOptions:
    """``seconds`` (wall time, at most 3600) with ``clients`` concurrent clients (at most 1024),
    each searching ``k`` with vectors sent as ``dtype``; ``queries`` distinct seeded vectors are
    cycled. ``timeout_s`` bounds one request. ``token`` is the device token (None for --no-auth)."""

    seconds: float = 60.0
    clients: int = 32
    k: int = 10
    dtype: str = "float16"
    queries: int = 512
    seed: int = 0
    timeout_s: float = 10.0
    token: str | None = field(default=None, repr=False)
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.seconds <= MAX_SECONDS:
            raise InvalidInputError(f"seconds must be in (0, {MAX_SECONDS:g}]; got {self.seconds}")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise InvalidInputError(f"clients must be in 1..{MAX_CLIENTS}; got {self.clients}")
        if self.k < 1:
            raise InvalidInputError(f"k must be >= 1; got {self.k}")
        if self.dtype not in WIRE_DTYPES:
            raise InvalidInputError(f"dtype {self.dtype!r} is not one of {', '.join(WIRE_DTYPES)}")
        if self.queries < 1:
            raise InvalidInputError(f"queries must be >= 1; got {self.queries}")


@dataclass(frozen=True)
class LoadTestReport:
    """What one run measured. ``latency_ms`` has ``p50``, ``p90``, ``p99``, ``max``, ``mean``."""

    url: str
    seconds: float
    clients: int
    requests: int
    ok: int
    errors: int
    errors_by_kind: dict[str, int]
    throughput_rps: float
    latency_ms: dict[str, float]
    index: dict[str, Any]
    server: dict[str, Any]
    options: dict[str, Any]

    def __repr__(self) -> str:
        lat = self.latency_ms
        return (
            f"LoadTestReport({self.requests} requests in {self.seconds:.1f} s from {self.clients} clients: "
            f"{self.throughput_rps:.0f} req/s, p50 {lat.get('p50', float('nan')):.2f} ms, "
            f"p99 {lat.get('p99', float('nan')):.2f} ms, {self.errors} errors)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "seconds": round(self.seconds, 3),
            "clients": self.clients,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "throughput_rps": round(self.throughput_rps, 1),
            "latency_ms": {key: round(value, 3) for key, value in self.latency_ms.items()},
            "index": self.index,
            "server": self.server,
            "options": self.options,
        }


def run_load_test(url: str, options: LoadTestOptions | None = None) -> LoadTestReport:
    """Run the load test against the service at ``url`` (blocking; see the module docstring)."""
    options = options or LoadTestOptions()
    _check_url(url, options.allow_remote)
    return asyncio.run(_run(url.rstrip("/"), options))


async def _run(url: str, options: LoadTestOptions) -> LoadTestReport:
    httpx = require("httpx", "device")
    headers = {"Content-Type": "application/json"}
    if options.token:
        headers["Authorization"] = f"Bearer {options.token}"
    timeout = httpx.Timeout(options.timeout_s)

    def client(connections: int = 1) -> Any:
        # One client (one keep-alive connection) per worker: a shared pool of 32 connections
        # costs the load generator more CPU per request than the service spends.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits)

    async with client() as probe:
        info = await _get_json(probe, "/v1/info", url)
    bodies = _bodies(info, options)
    latencies: list[list[float]] = [[] for _ in range(options.clients)]
    kinds: Counter[str] = Counter()
    start = time.perf_counter()
    deadline = start + options.seconds

    async def worker(n: int) -> None:
        mine = latencies[n]
        i = n
        async with client() as session:
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += options.clients
                t0 = time.perf_counter()
                try:
                    response = await session.post("/v1/search", content=body)
                except httpx.HTTPError as exc:
                    kinds[type(exc).__name__] += 1
                    mine.append((time.perf_counter() - t0) * 1000.0)
                    continue
                mine.append((time.perf_counter() - t0) * 1000.0)
                if response.status_code != 200:
                    kinds[f"HTTP {response.status_code}"] += 1

    await asyncio.gather(*(worker(n) for n in range(options.clients)))
    elapsed = time.perf_counter() - start
    async with client() as probe:
        server = await _server_view(probe)
    values = np.asarray([v for mine in latencies for v in mine], np.float64)
    errors = sum(kinds.values())
    latency = (
        {
            "p50": float(np.percentile(values, 50)),
            "p90": float(np.percentile(values, 90)),
            "p99": float(np.percentile(values, 99)),
            "max": float(values.max()),
            "mean": float(values.mean()),
        }
        if len(values)
        else {}
    )
    return LoadTestReport(
        url=url,
        seconds=elapsed,
        clients=options.clients,
        requests=int(len(values)),
        ok=int(len(values)) - errors,
        errors=errors,
        errors_by_kind=dict(sorted(kinds.items())),
        throughput_rps=len(values) / elapsed if elapsed > 0 else 0.0,
        latency_ms=latency,
        index={key: info.get(key) for key in ("space_id", "dim", "count", "index_dtype")},
        server=server,
        options={
            "seconds": options.seconds,
            "clients": options.clients,
            "k": options.k,
            "dtype": options.dtype,
            "queries": options.queries,
            "seed": options.seed,
        },
    )


def _bodies(info: dict[str, Any], options: LoadTestOptions) -> list[bytes]:
    """Pre-encoded request bodies for seeded random unit vectors of the served space."""
    try:
        dim, space_id = int(info["dim"]), str(info["space_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError(f"GET /v1/info answered without dim/space_id ({exc})") from exc
    rng = np.random.default_rng(options.seed)
    vectors = rng.standard_normal((options.queries, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bodies = []
    for vector in vectors:
        data, scale = encode_query(vector, options.dtype)  # type: ignore[arg-type]
        body: dict[str, Any] = {"space_id": space_id, "dtype": options.dtype, "vector": data, "k": options.k}
        if scale is not None:
            body["scale"] = scale
        bodies.append(json.dumps(body, separators=(",", ":")).encode("ascii"))
    return bodies


async def _get_json(client: Any, path: str, url: str) -> dict[str, Any]:
    httpx = require("httpx", "device")
    try:
        response = await client.get(path)
    except httpx.HTTPError as exc:
        raise ServiceError(f"lookup service {url} is unreachable ({type(exc).__name__}: {exc})") from exc
    if response.status_code != 200:
        raise ServiceError(
            f"lookup service {url} answered GET {path} with HTTP {response.status_code}: {response.text[:300]}"
        )
    return response.json()


async def _server_view(client: Any) -> dict[str, Any]:
    """The service's own /v1/search figures from ``/metrics?format=json`` (empty when unavailable)."""
    httpx = require("httpx", "device")
    try:
        response = await client.get("/metrics", params={"format": "json"})
        data = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    route = data.get("routes", {}).get("/v1/search", {})
    return {
        "search_requests": route.get("requests"),
        "search_by_status": route.get("by_status"),
        "search_latency_ms": route.get("latency_ms"),
        "errors_by_code": data.get("errors_by_code"),
    }


def _check_url(url: str, allow_remote: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"load test url must be http(s)://host:port; got {url!r}")
    if allow_remote:
        return
    host = parts.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InvalidInputError(
            f"load test url {url!r} is not loopback; load-test only your own service (pass allow_remote / "
            "--allow-remote to aim at another host you run)"
        )


__all__ = ["LoadTestOptions", "LoadTestReport", "run_load_test"]
