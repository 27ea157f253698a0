"""Search benchmarks of shards and the index against FAISS ``IndexFlatIP`` (and usearch HNSW).

Synthetic L2-normalised float32 vectors, one thread everywhere (FAISS via
``omp_set_num_threads(1)``, usearch ``threads=1``; set ``OPENBLAS_NUM_THREADS=1`` before numpy
is imported for the numpy kernel). Latencies are measured interleaved (shard, FAISS, HNSW for
the same query in turn) so that machine noise hits all of them alike.

Run (the figures of the report)::

    OPENBLAS_NUM_THREADS=1 python -m edgeshelf.catalogue.bench_search --sizes 10000 100000 1000000

``bench_search`` returns one JSON-ready dict per size; ``bench_index`` measures the embedded
index (upsert throughput, size on disk, search latency).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.shard import Shard, encode_shard, write_shard


def synthetic_vectors(n: int, dim: int, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """Seeded random unit float32 ``[n, dim]`` (made in chunks to bound memory)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def _rss_bytes() -> int | None:
    """Resident set size of this process (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
    }


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / a.shape[1] for x, y in zip(a, b)]))


def bench_search(
    sizes: tuple[int, ...] = (10_000, 100_000),
    *,
    dim: int = 256,
    k: int = 10,
    queries: int = 200,
    batch: int = 64,
    dtype: str = "int8",
    hnsw_max: int = 20_000,
    seed: int = 0,
    workdir: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """``Shard.search`` vs FAISS ``IndexFlatIP`` (and usearch HNSW up to ``hnsw_max`` vectors).

    For each size: shard size and cut/open/warm times; single-query p50/p99 of the full
    ``Shard.search`` (ids, titles, SearchResult) and of its kernel alone, FAISS and HNSW;
    batched per-query time (``batch`` queries per call); top-``k`` overlap with exact float32;
    resident bytes of the vectors each one searches.
    """
    import faiss

    faiss.omp_set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for n in sizes:
            rows.append(_bench_one(int(n), dim, k, queries, batch, dtype, hnsw_max, seed, Path(tmp), faiss))
            gc.collect()
    return rows


def _bench_one(n, dim, k, n_queries, batch, dtype, hnsw_max, seed, tmp, faiss) -> dict[str, Any]:
    vectors = synthetic_vectors(n, dim, seed)
    qs = synthetic_vectors(n_queries, dim, seed + 1)
    # queries near stored vectors, like real retrieval (a random query has no clear neighbours)
    qs = qs * 0.6 + vectors[np.random.default_rng(seed + 2).integers(0, n, n_queries)]
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    ids = [f"p{i:07d}" for i in range(n)]
    row: dict[str, Any] = {"n": n, "dim": dim, "k": k, "dtype": dtype, "queries": n_queries, "batch": batch}

    t = time.perf_counter()
    data = encode_shard(
        space_id="bench000bench000",
        ids=ids,
        vectors=vectors,
        titles=[f"product {i}" for i in range(n)],
        prices=[float(i % 500) for i in range(n)],
        categories=[f"c{i % 20}" for i in range(n)],
        dtype=dtype,
    )
    path = tmp / f"bench-{n}.shard"
    write_shard(path, data)
    row["shard_cut_s"] = round(time.perf_counter() - t, 3)
    row["shard_bytes"] = len(data)
    del data
    rss_before = _rss_bytes()
    t = time.perf_counter()
    shard = Shard.open(path)
    row["shard_open_verify_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    shard.warm()
    row["shard_warm_s"] = round(time.perf_counter() - t, 4)
    for q in qs[:5]:
        shard.search(q, k)
    if rss_before is not None:
        # resident growth from opening + searching (mapped pages touched + search index)
        row["shard_rss_bytes"] = _rss_bytes() - rss_before
    row["kernel"] = shard.kernel
    searcher = shard._searcher
    row["shard_search_bytes"] = int(searcher.memory_bytes)
    # storage order is sorted ids = input order here (p0000000...), so rows map to input rows

    rss_before = _rss_bytes()
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    row["faiss_bytes"] = int(vectors.nbytes)
    if rss_before is not None:
        row["faiss_rss_bytes"] = _rss_bytes() - rss_before

    hnsw = None
    if n <= hnsw_max:
        from usearch.index import Index, MetricKind

        t = time.perf_counter()
        # f16: usearch's own float->i8 cast (x * 127) is too coarse for unit vectors
        hnsw = Index(ndim=dim, metric=MetricKind.IP, dtype="f16", expansion_search=128)
        hnsw.add(np.arange(n, dtype=np.uint64), vectors, threads=os.cpu_count() or 1)
        row["hnsw_build_s"] = round(time.perf_counter() - t, 3)
        row["hnsw_bytes"] = int(hnsw.memory_usage)

    # warm-up
    for q in qs[:5]:
        shard.search(q, k)
        flat.search(q[None], k)
    t_shard, t_kernel, t_faiss, t_hnsw = [], [], [], []
    got_shard, got_faiss, got_hnsw = [], [], []
    for q in qs:
        q2 = q[None]
        t = time.perf_counter()
        result = shard.search(q, k)
        t_shard.append(time.perf_counter() - t)
        t = time.perf_counter()
        searcher.search(q2, k)
        t_kernel.append(time.perf_counter() - t)
        t = time.perf_counter()
        _, found = flat.search(q2, k)
        t_faiss.append(time.perf_counter() - t)
        got_shard.append([int(pid[1:]) for pid in result.ids])
        got_faiss.append(found[0])
        if hnsw is not None:
            t = time.perf_counter()
            matches = hnsw.search(q, k, threads=1)
            t_hnsw.append(time.perf_counter() - t)
            got_hnsw.append(np.asarray(matches.keys, np.int64)[:k])
    exact = np.asarray(got_faiss)
    row["shard_search"] = _percentiles(t_shard)
    row["shard_kernel"] = _percentiles(t_kernel)
    row["faiss_flat"] = _percentiles(t_faiss)
    row["shard_recall_at_k"] = round(_overlap(np.asarray(got_shard), exact), 4)
    if hnsw is not None:
        row["hnsw"] = _percentiles(t_hnsw)
        row["hnsw_recall_at_k"] = round(_overlap(np.asarray(got_hnsw), exact), 4)

    # batched: per-query time of `batch` queries in one call
    qb = qs[:batch]
    reps = 3
    t = time.perf_counter()
    for _ in range(reps):
        searcher.search(qb, k)
    row["shard_batched_ms_per_query"] = round((time.perf_counter() - t) * 1000 / (reps * len(qb)), 4)
    t = time.perf_counter()
    for _ in range(reps):
        flat.search(qb, k)
    row["faiss_batched_ms_per_query"] = round((time.perf_counter() - t) * 1000 / (reps * len(qb)), 4)

    # filtered search (one category of 20 = 5% of the rows; price <= 250 = half of them)
    for name, flt in (("category_5pct", {"category": "c3"}), ("price_50pct", {"max_price": 249.0})):
        samples = []
        for q in qs[:50]:
            t = time.perf_counter()
            shard.search(q, k, filters=flt)
            samples.append(time.perf_counter() - t)
        row[f"shard_filtered_{name}"] = _percentiles(samples)
    shard.close()
    path.unlink()
    return row


def bench_index(
    sizes: tuple[int, ...] = (10_000, 100_000),
    *,
    dim: int = 128,
    dtype: str = "float16",
    batch_size: int = 10_000,
    queries: int = 100,
    seed: int = 0,
    workdir: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Embedded index: upsert throughput (vectors/s, batches of ``batch_size``, one commit
    each), size on disk, single-query search p50/p99, shard cut time."""
    from edgeshelf.catalogue.build import cut_shard
    from edgeshelf.catalogue.index import CatalogueIndex

    rows = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for n in sizes:
            vectors = synthetic_vectors(n, dim, seed)
            products = [
                {
                    "id": f"p{i:07d}",
                    "title": f"product {i}",
                    "category": f"c{i % 20}",
                    "price": float(i % 500),
                    "popularity": float(i),
                }
                for i in range(n)
            ]
            folder = Path(tmp) / f"ix-{n}"
            t = time.perf_counter()
            with CatalogueIndex.create(folder, space_id="bench000bench000", dim=dim, dtype=dtype) as index:
                for start in range(0, n, batch_size):
                    index.upsert(products[start : start + batch_size], vectors[start : start + batch_size])
                upsert_s = time.perf_counter() - t
                stats = index.stats()
                samples = []
                for q in vectors[:queries]:
                    t = time.perf_counter()
                    index.search(q, k=10)
                    samples.append(time.perf_counter() - t)
                t = time.perf_counter()
                shard = cut_shard(index, Path(tmp) / f"cut-{n}.shard", top=min(n, 100_000))
                cut_s = time.perf_counter() - t
            rows.append(
                {
                    "n": n,
                    "dim": dim,
                    "dtype": dtype,
                    "upsert_s": round(upsert_s, 3),
                    "vectors_per_s": round(n / upsert_s, 1),
                    "bytes_on_disk": stats["bytes_on_disk"],
                    "segments": stats["segments"],
                    "search": _percentiles(samples),
                    "shard_cut_s": round(cut_s, 3),
                    "shard_bytes": shard.size,
                }
            )
            gc.collect()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--dtype", choices=("int8", "float16"), default="int8")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-max", type=int, default=20_000, help="largest size to build usearch HNSW for")
    parser.add_argument("--index", action="store_true", help="also benchmark the embedded index (dim 128)")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {
        "search": bench_search(
            tuple(args.sizes), dim=args.dim, dtype=args.dtype, queries=args.queries, hnsw_max=args.hnsw_max
        ),
        "cpu_count": os.cpu_count(),
        "threads": {"faiss": 1, "usearch": 1, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
    }
    if args.index:
        out["index"] = bench_index(tuple(args.sizes))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
