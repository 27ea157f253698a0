"""`edgeshelf benchmark search`: the device shard vs FAISS ``IndexFlatIP`` and an approximate index.

At each catalogue size ``n`` the same L2-normalised float32 vectors are stored three ways:

* ``shard``: the device shard (:mod:`edgeshelf.sdk.shard`; int8 with per-dimension scales or
  float16), memory-mapped, exact search with its default kernel, through the public
  :meth:`Shard.search` (ids, titles and scores of the hits included);
* ``faiss_flat``: FAISS ``IndexFlatIP`` on float32, exact: the reference for recall;
* ``usearch_hnsw`` (float16 vectors, default settings) or ``faiss_hnsw`` (``IndexHNSWFlat``,
  M=32): approximate.

Reported per system: single-query latency (p50/p95/p99, one thread, interleaved query by query
so machine noise hits every system alike), batched latency per query (``batch`` queries per
call), ``recall_at_k`` against exact float32, the file size, the bytes of the searched
structure, the build time, and the resident memory of a fresh process that loads the file and
searches (``rss_bytes``: RSS after minus RSS before loading, every library already imported;
pages of a memory map count when touched).

Vectors: real embeddings (``vectors``: catalogue index folders, shards or ``.npy`` files) up to
their count, then seeded synthetic unit vectors to reach ``n`` (each row's ``source`` says how
many of each). Queries: real query embeddings (``query_vectors`` ``.npy``, or ``query_texts``
embedded with a ``bundle``), else stored vectors with Gaussian noise (``queries_source`` says
which).

Example::

    doc = run_search(SearchOptions(sizes=(10_000, 100_000)), vectors=["fashion.index"])
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.benchmarks.stats import (
    Stopwatch,
    machine_info,
    package_versions,
    ratio_summary,
    summarize,
    utc_now,
)
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError, require

SCHEMA_VERSION = 1
APPROX = ("usearch", "faiss-hnsw", "none")
BENCH_SPACE = "be9c4000be9c4000"
GOAL_ID = "shard_vs_faiss_100k"
GOAL = (
    "shard search, 100k products: no slower than FAISS IndexFlatIP single-query, with a quarter of its memory"
)


@dataclass(frozen=True)
class SearchOptions:
    """How the search benchmark runs (see the module docstring).

    ``sizes``: catalogue sizes. ``dim``: dimension of synthetic vectors (real vectors keep
    theirs). ``k``: top-k and recall@k. ``queries``: single queries per size. ``batch``: queries
    per batched call. ``dtype``: the shard's vector type. ``approx``: ``"usearch"``,
    ``"faiss-hnsw"`` or ``"none"``; ``approx_max``: the largest size it is built for (larger
    sizes say ``skipped``). ``memory``: measure resident memory in fresh processes.
    """

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    dim: int = 128
    k: int = 10
    queries: int = 200
    batch: int = 64
    dtype: str = "int8"
    approx: str = "usearch"
    approx_max: int = 1_000_000
    seed: int = 0
    memory: bool = True

    def __post_init__(self) -> None:
        if not self.sizes or any((not isinstance(n, int)) or n < 1 for n in self.sizes):
            raise InvalidInputError(f"sizes must be positive integers, got {list(self.sizes)}")
        for name, low in (("dim", 1), ("k", 1), ("queries", 1), ("batch", 1), ("approx_max", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InvalidInputError(f"SearchOptions.{name} must be an integer >= {low}, got {value!r}")
        if self.dtype not in ("int8", "float16"):
            raise InvalidInputError(f"SearchOptions.dtype must be 'int8' or 'float16', got {self.dtype!r}")
        if self.approx not in APPROX:
            raise InvalidInputError(
                f"SearchOptions.approx must be one of {list(APPROX)}, got {self.approx!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes),
            "dim": self.dim,
            "k": self.k,
            "queries": self.queries,
            "batch": self.batch,
            "dtype": self.dtype,
            "approx": self.approx,
            "approx_max": self.approx_max,
            "seed": self.seed,
            "memory": self.memory,
            "threads": 1,
        }


# ---------------------------------------------------------------------------------------------
# inputs


def load_vectors(source: str | os.PathLike[str]) -> np.ndarray:
    """Real embeddings from a catalogue index folder, a shard (dequantized) or a ``.npy``:
    float32 ``[N, dim]``, re-normalised to unit length."""
    path = Path(source)
    if path.is_dir():
        from edgeshelf.catalogue.index import CatalogueIndex

        with CatalogueIndex.open(path) as index:
            parts = [np.asarray(v, np.float32) for _, v in index.iter_vectors()]
        vectors = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    elif path.suffix == ".npy":
        if not path.is_file():
            raise ModelNotFoundError(f"vectors file {path} does not exist")
        vectors = np.asarray(np.load(path), np.float32)
    elif path.is_file():
        from edgeshelf.sdk.shard import Shard

        with Shard.open(path) as shard:
            vectors = np.asarray(shard.vectors(), np.float32)
    else:
        raise ModelNotFoundError(
            f"vectors source {path} does not exist; pass a catalogue index folder, a shard or a .npy"
        )
    if vectors.ndim != 2 or len(vectors) == 0:
        raise InvalidInputError(f"{path} holds no [N, dim] vectors (shape {list(vectors.shape)})")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def read_query_texts(path: str | os.PathLike[str]) -> list[str]:
    """Query texts from a ``.txt`` (one per line), a ``queries.jsonl`` (``text`` of each line) or
    a query-set ``.json`` (a list of strings, or ``querySetQueries[].queryText`` as ESCI's)."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"query texts file {path} does not exist")
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        texts = [json.loads(line).get("text") or "" for line in raw.splitlines() if line.strip()]
    elif path.suffix == ".json":
        data = json.loads(raw)
        items = data.get("querySetQueries", data.get("queries", [])) if isinstance(data, dict) else data
        texts = [i if isinstance(i, str) else (i.get("queryText") or i.get("text") or "") for i in items]
    else:
        texts = raw.splitlines()
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise InvalidInputError(f"{path} holds no query texts")
    return texts


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def catalogue_vectors(
    real: np.ndarray | None, n: int, dim: int, seed: int
) -> tuple[np.ndarray, dict[str, int]]:
    """``n`` vectors: a seeded sample of ``real`` (all of them when fewer), then seeded synthetic
    unit vectors; returns them and ``{"real": r, "synthetic": s}``."""
    rng = np.random.default_rng(seed)
    if real is None:
        return _unit(rng, n, dim), {"real": 0, "synthetic": n}
    take = min(n, len(real))
    rows = np.sort(rng.choice(len(real), size=take, replace=False)) if take < len(real) else np.arange(take)
    if take == n:
        return np.ascontiguousarray(real[rows]), {"real": take, "synthetic": 0}
    out = np.empty((n, real.shape[1]), np.float32)
    out[:take] = real[rows]
    out[take:] = _unit(rng, n - take, real.shape[1])
    return out, {"real": take, "synthetic": n - take}


# ---------------------------------------------------------------------------------------------
# systems


class _ShardSystem:
    name = "shard"

    def __init__(self, vectors: np.ndarray, dtype: str, folder: Path) -> None:
        from edgeshelf.sdk.shard import Shard, encode_shard, write_shard

        n = len(vectors)
        self.path = folder / f"bench-{n}.shard"
        with Stopwatch() as sw:
            data = encode_shard(
                space_id=BENCH_SPACE,
                ids=[f"{i:08d}" for i in range(n)],
                vectors=vectors,
                titles=[f"product {i}" for i in range(n)],
                categories=[f"c{i % 20}" for i in range(n)],
                dtype=dtype,
            )
            write_shard(self.path, data)
        del data
        self.build_s = sw.ms / 1e3
        self.shard = Shard.open(self.path, threads=1, warm=True)
        self.file_bytes = self.path.stat().st_size
        self.structure_bytes = int(self.shard.count * self.shard.dim * (1 if dtype == "int8" else 2))
        # plus what the kernel built (0 for simsimd, which reads the memory map in place)
        self.structure_bytes += int(self.shard._searcher.memory_bytes)
        self.engine = f"edgeshelf shard {dtype}, kernel {self.shard.kernel}, memory-mapped"

    def one(self, q: np.ndarray, k: int) -> np.ndarray:
        return np.asarray([int(i) for i in self.shard.search(q, k).ids], np.int64)

    def many(self, qs: np.ndarray, k: int) -> None:
        self.shard.search(qs, k)

    def close(self) -> None:
        self.shard.close()


class _ShardKernel:
    """The shard's search kernel alone (rows and scores, no hit objects): what FAISS returns.

    Reads the searcher the shard built (``Shard._searcher``, not public API), so the figure
    shows how much of ``shard`` is the kernel and how much the result objects.
    """

    name = "shard_kernel"
    memory_of = "shard"

    def __init__(self, shard: _ShardSystem) -> None:
        self._searcher = shard.shard._searcher
        self.path, self.file_bytes, self.structure_bytes = shard.path, shard.file_bytes, shard.structure_bytes
        self.build_s = shard.build_s
        self.engine = f"the shard's {shard.shard.kernel} kernel alone (rows, no hit objects)"

    def one(self, q: np.ndarray, k: int) -> np.ndarray:
        return self._searcher.search(q[None], k)[1][0]

    def many(self, qs: np.ndarray, k: int) -> None:
        self._searcher.search(qs, k)

    def close(self) -> None:
        self._searcher = None


class _FaissFlat:
    name = "faiss_flat"

    def __init__(self, vectors: np.ndarray, folder: Path) -> None:
        faiss = require("faiss", "server")
        faiss.omp_set_num_threads(1)
        self.faiss = faiss
        with Stopwatch() as sw:
            self.index = faiss.IndexFlatIP(vectors.shape[1])
            self.index.add(vectors)
        self.build_s = sw.ms / 1e3
        self.path = folder / f"faiss-flat-{len(vectors)}.index"
        faiss.write_index(self.index, str(self.path))
        self.file_bytes = self.path.stat().st_size
        self.structure_bytes = int(vectors.nbytes)
        self.engine = f"faiss {faiss.__version__} IndexFlatIP float32"

    def one(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(q[None], k)[1][0]

    def many(self, qs: np.ndarray, k: int) -> None:
        self.index.search(qs, k)

    def exact(self, qs: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(qs, k)[1]

    def close(self) -> None:
        self.index = None


class _Usearch:
    name = "usearch_hnsw"

    def __init__(self, vectors: np.ndarray, folder: Path) -> None:
        usearch = require("usearch.index", "server")
        import usearch as usearch_pkg

        with Stopwatch() as sw:
            self.index = usearch.Index(ndim=vectors.shape[1], metric=usearch.MetricKind.IP, dtype="f16")
            self.index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=os.cpu_count() or 1)
        self.build_s = sw.ms / 1e3
        self.path = folder / f"usearch-{len(vectors)}.usearch"
        self.index.save(str(self.path))
        self.file_bytes = self.path.stat().st_size
        self.structure_bytes = int(self.index.memory_usage)
        self.engine = (
            f"usearch {usearch_pkg.__version__} HNSW, f16, connectivity {self.index.connectivity}, "
            f"expansion_add {self.index.expansion_add}, expansion_search {self.index.expansion_search}"
        )

    def one(self, q: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(self.index.search(q, k, threads=1).keys, np.int64)[:k]

    def many(self, qs: np.ndarray, k: int) -> None:
        self.index.search(qs, k, threads=1)

    def close(self) -> None:
        self.index = None


class _FaissHnsw:
    name = "faiss_hnsw"

    def __init__(self, vectors: np.ndarray, folder: Path) -> None:
        faiss = require("faiss", "server")
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        with Stopwatch() as sw:
            self.index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = 64
            self.index.add(vectors)
        faiss.omp_set_num_threads(1)
        self.index.hnsw.efSearch = 64
        self.build_s = sw.ms / 1e3
        self.path = folder / f"faiss-hnsw-{len(vectors)}.index"
        faiss.write_index(self.index, str(self.path))
        self.file_bytes = self.path.stat().st_size
        self.structure_bytes = int(self.file_bytes)
        self.engine = f"faiss {faiss.__version__} IndexHNSWFlat M=32 efConstruction=64 efSearch=64 float32"

    def one(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(q[None], k)[1][0]

    def many(self, qs: np.ndarray, k: int) -> None:
        self.index.search(qs, k)

    def close(self) -> None:
        self.index = None


def _recall(found: Sequence[np.ndarray], exact: np.ndarray, k: int) -> float:
    hits = [len(set(np.asarray(f[:k]).tolist()) & set(e[:k].tolist())) / k for f, e in zip(found, exact)]
    return round(float(np.mean(hits)), 4)


# ---------------------------------------------------------------------------------------------
# memory of each system in a fresh process

_MEMORY_PROBE = r"""
import gc, json, sys
import numpy as np
args = json.loads(sys.argv[1])
from edgeshelf.benchmarks.stats import current_rss_bytes, peak_rss_bytes
kind = args["kind"]
queries = np.load(args["queries"])
if kind == "shard":
    import importlib
    from edgeshelf.sdk.shard import Shard
    for module in ("simsimd", "usearch.index"):  # kernels load lazily: not part of the data's memory
        try:
            importlib.import_module(module)
        except ImportError:
            pass
elif kind in ("faiss_flat", "faiss_hnsw"):
    import faiss
    faiss.omp_set_num_threads(1)
else:
    from usearch.index import Index
gc.collect()
before = current_rss_bytes()
if kind == "shard":
    obj = Shard.open(args["path"], threads=1, warm=True)
    search = lambda q: obj.search(q, args["k"])
elif kind in ("faiss_flat", "faiss_hnsw"):
    obj = faiss.read_index(args["path"])
    search = lambda q: obj.search(q[None], args["k"])
else:
    obj = Index.restore(args["path"])
    search = lambda q: obj.search(q, args["k"], threads=1)
for q in queries:
    search(q)
gc.collect()
print(json.dumps({"rss_bytes": current_rss_bytes() - before, "baseline_rss_bytes": before,
                  "peak_rss_bytes": peak_rss_bytes()}))
"""


def memory_probe(kind: str, path: Path, queries_file: Path, k: int) -> dict[str, int]:
    """Resident memory of one system loaded from ``path`` in a fresh process (see module doc)."""
    args = json.dumps({"kind": kind, "path": str(path), "queries": str(queries_file), "k": k})
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, args], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        from edgeshelf.benchmarks.latency import BenchmarkError

        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise BenchmarkError(f"the memory probe of {kind} on {path} failed (exit {done.returncode}): {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# the benchmark


def _queries(
    options: SearchOptions,
    dim: int,
    query_vectors: str | None,
    bundle: str | None,
    query_texts: str | None,
    real: np.ndarray | None,
) -> tuple[np.ndarray | None, str]:
    """Real query embeddings when given (``[Q, dim]``), else None (made per size from its vectors)."""
    if query_vectors is not None:
        q = np.asarray(np.load(query_vectors), np.float32)
        source = f"real: {q.shape[0]} query embeddings from {query_vectors}"
    elif query_texts is not None:
        if bundle is None:
            raise InvalidInputError("--query-texts needs --bundle BUNDLE to embed them (the device path)")
        from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder

        texts = read_query_texts(query_texts)
        with QueryEncoder.open(bundle, EncoderOptions(num_threads=2)) as encoder:
            q = np.stack([encoder.embed(text=t).vector for t in texts])
        source = f"real: {len(texts)} query texts of {query_texts} embedded with {bundle}"
    else:
        return None, "stored vectors with Gaussian noise (0.6 x a random unit vector), re-normalised"
    if q.ndim != 2 or q.shape[1] != dim:
        raise InvalidInputError(
            f"query vectors have shape {list(q.shape)} but the catalogue vectors have dim {dim}: "
            "embed them with the towers/bundle of the same space"
        )
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12), source


def _near_queries(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    q = vectors[rng.integers(0, len(vectors), count)] + 0.6 * _unit(rng, count, vectors.shape[1])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def run_search(
    options: SearchOptions | None = None,
    *,
    vectors: Sequence[str | os.PathLike[str]] | str | None = None,
    query_vectors: str | None = None,
    bundle: str | None = None,
    query_texts: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    command: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Run the search benchmark (module docstring); return the JSON-ready document."""
    from tqdm import tqdm

    options = options or SearchOptions()
    require("faiss", "server")
    sources = [vectors] if isinstance(vectors, (str, os.PathLike)) else list(vectors or [])
    real = np.concatenate([load_vectors(s) for s in sources]) if sources else None
    dim = int(real.shape[1]) if real is not None else options.dim
    fixed_q, q_source = _queries(options, dim, query_vectors, bundle, query_texts, real)
    notes: list[str] = []
    if real is not None and dim != options.dim:
        notes.append(f"dim {dim} from the real vectors (not --dim {options.dim})")
    doc: dict[str, Any] = {
        "format": "edgeshelf-benchmark",
        "schema_version": SCHEMA_VERSION,
        "benchmark": "search",
        "created_utc": utc_now(),
        "command": list(command),
        "machine": machine_info(),
        "versions": package_versions(["edgeshelf", "numpy", "faiss-cpu", "usearch", "simsimd"]),
        "settings": {**options.to_dict(), "dim": dim},
        "vectors": {
            "sources": [str(s) for s in sources],
            "real_count": 0 if real is None else int(len(real)),
            "queries_source": q_source,
        },
        "rows": [],
    }
    own_tmp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="edgeshelf-search-")) if own_tmp else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        for n in tqdm(options.sizes, desc="sizes", unit="size", disable=not progress, leave=False):
            doc["rows"].append(_one_size(n, dim, real, fixed_q, options, root, progress, notes))
            gc.collect()
    finally:
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)
    doc["notes"] = notes
    doc["goals"] = [search_goal(doc)]
    return doc


def _one_size(
    n: int,
    dim: int,
    real: np.ndarray | None,
    fixed_q: np.ndarray | None,
    options: SearchOptions,
    root: Path,
    progress: bool,
    notes: list[str],
) -> dict[str, Any]:
    from tqdm import tqdm

    vectors, counts = catalogue_vectors(real, n, dim, options.seed)
    if fixed_q is not None:
        rng = np.random.default_rng(options.seed + 7)
        rows = rng.choice(len(fixed_q), size=options.queries, replace=len(fixed_q) < options.queries)
        queries = fixed_q[rows]
    else:
        queries = _near_queries(vectors, options.queries, options.seed)
    folder = root / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    shard = _ShardSystem(vectors, options.dtype, folder)
    systems: list[Any] = [shard, _FaissFlat(vectors, folder), _ShardKernel(shard)]
    approx_note = None
    if options.approx != "none":
        if n <= options.approx_max:
            systems.append(
                _Usearch(vectors, folder) if options.approx == "usearch" else _FaissHnsw(vectors, folder)
            )
        else:
            approx_note = f"{options.approx} not built at n={n} (above --approx-max {options.approx_max})"
            notes.append(approx_note)
    del vectors
    gc.collect()
    flat = systems[1]
    exact = flat.exact(queries, options.k)
    k = options.k
    for system in systems:  # warm-up: page in, build lazily built parts
        for q in queries[:5]:
            system.one(q, k)
    single: dict[str, list[float]] = {s.name: [] for s in systems}
    found: dict[str, list[np.ndarray]] = {s.name: [] for s in systems}
    for q in tqdm(queries, desc=f"n={n}", unit="query", disable=not progress, leave=False):
        for system in systems:  # interleaved: the same query through each system back to back
            with Stopwatch() as sw:
                ids = system.one(q, k)
            single[system.name].append(sw.ms)
            found[system.name].append(ids)
    batch = queries[: options.batch]
    batched: dict[str, float] = {}
    for system in systems:
        system.many(batch, k)  # warm
        with Stopwatch() as sw:
            for _ in range(3):
                system.many(batch, k)
        batched[system.name] = sw.ms / (3 * len(batch))
    row: dict[str, Any] = {
        "n": n,
        "dim": dim,
        "source": counts,
        "queries": int(len(queries)),
        "systems": {},
        "ratios_vs_shard": {},
        "skipped": [approx_note] if approx_note else [],
    }
    queries_file = folder / "queries.npy"
    np.save(queries_file, queries[:50])
    measured: dict[str, dict[str, int]] = {}
    for system in systems:
        mem = None
        if options.memory:
            source = getattr(system, "memory_of", system.name)
            if source not in measured:
                measured[source] = memory_probe(source, system.path, queries_file, k)
            mem = measured[source]
        row["systems"][system.name] = {
            "engine": system.engine,
            "single": summarize(single[system.name]).to_dict(),
            "batched_ms_per_query": round(batched[system.name], 5),
            "recall_at_k": _recall(found[system.name], exact, k),
            "file_bytes": int(system.file_bytes),
            "structure_bytes": int(system.structure_bytes),
            "rss_bytes": None if mem is None else int(mem["rss_bytes"]),
            "build_seconds": round(system.build_s, 3),
        }
    for system in systems:
        if system.name == "shard":
            continue
        row["ratios_vs_shard"][system.name] = ratio_summary(single[system.name], single["shard"])
    for system in reversed(systems):
        system.close()
    for path in folder.iterdir():
        path.unlink()
    return row


def search_goal(doc: dict[str, Any]) -> dict[str, Any]:
    """The issue-6 search goal, judged on the 100k row when there is one."""
    row = next((r for r in doc["rows"] if r["n"] == 100_000), None)
    goal = {"id": GOAL_ID, "description": GOAL, "target": "ratio >= 1 and memory <= 0.25", "unit": ""}
    if row is None:
        return {**goal, "value": None, "met": None, "reason": "not measured: no 100000 row (--sizes)"}
    shard, flat = row["systems"]["shard"], row["systems"]["faiss_flat"]
    speed = row["ratios_vs_shard"]["faiss_flat"]["median"]
    mem_of = "rss_bytes" if shard["rss_bytes"] is not None and flat["rss_bytes"] else "structure_bytes"
    share = shard[mem_of] / max(flat[mem_of], 1)
    fast, small = speed >= 1.0, share <= 0.25 + 1e-9
    why = []
    if not fast:
        why.append(f"FAISS single-query is {1 / speed:.2f}x faster than the shard (median per-query ratio)")
        kernel = row["ratios_vs_shard"].get("shard_kernel")
        if kernel is not None:
            flat_over_kernel = speed / max(kernel["median"], 1e-9)
            why.append(
                f"the shard's kernel alone is {kernel['median']:.2f} of the full search time; "
                f"FAISS / kernel = {flat_over_kernel:.2f}x"
            )
    if not small:
        why.append(f"shard memory is {share:.3f} of FAISS ({mem_of})")
    return {
        **goal,
        "value": {"faiss_over_shard_time": speed, "memory_share": round(share, 4), "memory_measure": mem_of},
        "unit": "time ratio (FAISS / shard, median per query); memory share (shard / FAISS)",
        "met": fast and small,
        "reason": "; ".join(why),
    }


def format_report(doc: dict[str, Any]) -> str:
    """A human-readable table of the search document."""
    m = doc["machine"]
    lines = [
        f"machine  {m['cpu_model']} ({m['cpu_count']} cpus, load {m['load_average']}); one search thread",
        f"queries  {doc['vectors']['queries_source']}",
        "",
        f"{'n':>9} {'system':<13}{'p50 ms':>9}{'p99 ms':>9}{'batch ms/q':>11}{'recall@k':>9}"
        f"{'file MB':>9}{'RSS MB':>8}{'build s':>9}  source",
    ]
    for row in doc["rows"]:
        src = row["source"]
        for name, s in row["systems"].items():
            rss = "-" if s["rss_bytes"] is None else f"{s['rss_bytes'] / 1e6:.1f}"
            lines.append(
                f"{row['n']:>9} {name:<13}{s['single']['p50_ms']:>9.3f}{s['single']['p99_ms']:>9.3f}"
                f"{s['batched_ms_per_query']:>11.4f}{s['recall_at_k']:>9.3f}{s['file_bytes'] / 1e6:>9.1f}"
                f"{rss:>8}{s['build_seconds']:>9.2f}  {src['real']} real + {src['synthetic']} synthetic"
            )
        for name, r in row["ratios_vs_shard"].items():
            lines.append(f"{'':>9} {name} / shard time: {r['median']:.2f}x (median per query)")
        for s in row["skipped"]:
            lines.append(f"{'':>9} {s}")
    g = doc["goals"][0]
    mark = {True: "MET", False: "MISSED", None: "n/a"}[g["met"]]
    lines.append(f"\ngoal {mark}: {g['description']}: {g['value']} {g['reason']}")
    for note in doc.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


__all__ = [
    "SearchOptions",
    "catalogue_vectors",
    "format_report",
    "load_vectors",
    "memory_probe",
    "read_query_texts",
    "run_search",
    "search_goal",
]
