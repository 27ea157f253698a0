"""`edgeshelf benchmark latency`: per-stage latency of the device runtime, like TFLite's
``benchmark_model`` but with percentiles, plus memory, sizes and (``--vs``) peers on the same towers.

What is measured (all times in milliseconds, wall clock, this process unless said otherwise):

* ``cold``: bundle open (read and verify the manifest and every model's sha256, create and
  allocate each interpreter), the first embedding after it, shard open and its first search,
  the speech model's open.
* ``warmup_ms``: the ``warmup`` iterations after that, kept apart from the statistics.
* ``stages``: ``runs`` steady-state iterations of each stage, summarised as count, mean, std,
  min, p50, p95, p99, max (and the raw ``samples_ms``). Stage names (present when the bundle and
  the inputs allow): ``tokenize``, ``encoder.text``, ``fusion`` (one modality present),
  ``query.text`` (tokenize + text encoder + fusion: :meth:`QueryEncoder.embed`), the same for
  ``image.preprocess`` / ``encoder.image`` / ``query.image`` (crop of a decoded RGB frame +
  image model(s) + fusion), ``audio.*`` and ``video.*``, ``search`` (:meth:`Shard.search`, k
  products), ``asr`` (speech to text of the ``--wav`` utterance, grammar from the shard) and
  ``query.voice`` (``asr`` + text embedding + search: what the speaker does after capture).
* ``asr``: the recogniser, its grammar size, the transcript and the real-time factor.
* ``memory``: peak RSS of this process, and of the *speaker runtime* measured in a fresh
  process that opens the bundle and the shard and answers text queries without loading a speech
  model (peak RSS: ``VmHWM``, else ``ru_maxrss``); that process also times the true cold start (imports, open, first
  embedding) on its own.
* ``comparison`` (``--vs``): the same query through the bundle, the float32 bundle of the same
  towers, the towers in TensorFlow/Keras float (``tf.function``) and ONNX Runtime (exported with
  tf2onnx), interleaved pair by pair (for each run: bundle, float32, Keras, ONNX on the same
  input) so that machine drift cancels in the per-run ratios.

The result is one JSON document (schema: ``benchmarks/SCHEMA.md``). TensorFlow, tf2onnx, ONNX
Runtime and matplotlib are imported only for ``--vs`` / ``--plot``: a device with
``edgeshelf[device]`` runs the rest.

Example::

    doc = run_latency("bundles/speaker", shard="catalogue.shard", wav="query.wav",
                      options=LatencyOptions(runs=50, threads=1))
    print(doc["stages"]["query.text"]["p50_ms"])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.benchmarks.stats import (
    Stopwatch,
    machine_info,
    package_versions,
    peak_rss_bytes,
    peak_rss_source,
    ratio_summary,
    summarize,
    utc_now,
)
from edgeshelf.sdk.errors import EdgeshelfError, InvalidInputError, SpaceMismatchError, require

SCHEMA_VERSION = 1
DEFAULT_TEXTS: tuple[str, ...] = (
    "red running shoes",
    "navy blue men shirt",
    "black leather handbag for women",
    "white cotton t shirt",
    "brown analog watch",
    "blue denim jeans slim fit",
    "pink floral summer dress",
    "grey sports socks pack",
)
SYSTEMS: tuple[str, ...] = ("bundle", "float32_bundle", "keras", "onnx")
VS_QUERIES: tuple[str, ...] = ("query.text", "query.image", "query.audio")

#: the goals of issue 6 that a latency run can check (the search goal is `benchmark search`'s)
GOALS: dict[str, str] = {
    "text_vs_keras": "text query (tokenize + encode + fuse), int8 bundle: >= 5x faster than the towers in TensorFlow float",
    "text_vs_onnx": "text query, int8 bundle: faster than ONNX Runtime float",
    "image_vs_float32": "image query, int8 bundle: faster than the float32 bundle",
    "image_vs_onnx": "image query, int8 bundle: faster than ONNX Runtime float",
    "image_under_10ms": "image query, int8, glasses profile resolution, one thread: p50 < 10 ms",
    "open_to_first_embedding": "bundle open to first embedding: < 200 ms",
    "speaker_peak_rss": "speaker runtime peak memory (ASR model excluded): < 150 MB",
    "asr_rtf": "ASR real-time factor with the catalogue grammar: < 0.1",
}


@dataclass(frozen=True)
class LatencyOptions:
    """How the latency benchmark runs.

    ``runs``/``warmup``: steady-state and warm-up iterations per stage. ``threads``: interpreter
    threads per model (and the peers' intra-op threads). ``k``: products per search.
    ``asr_runs``: utterances transcribed for the ASR figures (each takes about RTF x the
    utterance length). ``asr_engine``/``asr_model``: the recogniser (see ``edgeshelf.sdk.asr``).
    ``texts``: text queries to cycle through (default: titles sampled from the shard, else a
    built-in list). ``memory_probe``: measure the speaker runtime in a fresh process.
    """

    runs: int = 100
    warmup: int = 10
    threads: int = 1
    k: int = 10
    asr_runs: int = 20
    asr_engine: str = "pocketsphinx"
    asr_model: str | None = None
    texts: tuple[str, ...] = ()
    memory_probe: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("runs", 1), ("warmup", 0), ("threads", 1), ("k", 1), ("asr_runs", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InvalidInputError(f"LatencyOptions.{name} must be an integer >= {low}, got {value!r}")
        if self.asr_engine not in ("pocketsphinx", "vosk"):
            raise InvalidInputError(
                f"LatencyOptions.asr_engine must be 'pocketsphinx' or 'vosk', got {self.asr_engine!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "warmup": self.warmup,
            "threads": self.threads,
            "k": self.k,
            "asr_runs": self.asr_runs,
            "asr_engine": self.asr_engine,
            "asr_model": self.asr_model,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class VsOptions:
    """The ``--vs`` peers: ``towers`` (the folder the bundle was converted from) builds the Keras
    and ONNX peers; the float32 bundle is ``float32_bundle`` or, when None, converted from the
    towers with the bundle's profile, calibrated/validated on ``calibration`` (a catalogue), into
    ``workdir`` (default: a temporary folder). ``systems``: which peers to run. ``rotate``: each
    run times every system on the same input back to back, starting one system later than the
    run before (else always bundle, float32, Keras, ONNX: then the bundle always runs right after
    TensorFlow and ONNX Runtime have evicted its caches, which measurably penalises small models)."""

    towers: Path
    float32_bundle: Path | None = None
    calibration: Path | None = None
    calibration_columns: str | None = None
    workdir: Path | None = None
    systems: tuple[str, ...] = ("float32_bundle", "keras", "onnx")
    onnx_opset: int = 17
    rotate: bool = True

    def __post_init__(self) -> None:
        bad = [s for s in self.systems if s not in SYSTEMS[1:]]
        if bad or not self.systems:
            raise InvalidInputError(
                f"--vs systems must be some of {list(SYSTEMS[1:])}, got {list(self.systems)}"
            )


# ---------------------------------------------------------------------------------------------
# recording


class _Recorder:
    """Samples per stage; the first ``warmup`` calls of each stage go to ``warm``."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.seen: dict[str, int] = {}
        self.samples: dict[str, list[float]] = {}
        self.warm: dict[str, list[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        n = self.seen.get(stage, 0)
        self.seen[stage] = n + 1
        (self.warm if n < self.warmup else self.samples).setdefault(stage, []).append(float(ms))

    def time(self, stage: str, fn: Callable[[], Any]) -> Any:
        with Stopwatch() as sw:
            value = fn()
        self.add(stage, sw.ms)
        return value


def _stage_dict(samples: Sequence[float]) -> dict[str, Any]:
    return {**summarize(samples).to_dict(), "samples_ms": [round(v, 4) for v in samples]}


# ---------------------------------------------------------------------------------------------
# inputs


def _texts(options: LatencyOptions, shard: Any | None) -> list[str]:
    if options.texts:
        return [t for t in options.texts if t.strip()] or list(DEFAULT_TEXTS)
    if shard is not None and shard.count:
        rng = np.random.default_rng(options.seed)
        rows = rng.choice(shard.count, size=min(32, shard.count), replace=False)
        titles = [shard.title_at(int(r)).strip().lower() for r in rows]
        titles = [t for t in titles if t]
        if titles:
            return titles
    return list(DEFAULT_TEXTS)


def synthetic_frame(height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """A seeded uint8 RGB ``[H, W, 3]`` camera-sized frame (smooth gradients plus noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], axis=-1) * 200.0
    noise = rng.normal(0.0, 20.0, (height, width, 3)).astype(np.float32)
    return np.clip(base + noise + 20.0, 0, 255).astype(np.uint8)


def _pcm16_at_16k(path: Path) -> tuple[np.ndarray, float]:
    from edgeshelf.sdk.apps import as_pcm16, to_asr_rate
    from edgeshelf.sdk.preprocess import read_wav

    samples, rate = read_wav(path)
    pcm = to_asr_rate(as_pcm16(samples), rate)
    return pcm, len(pcm) / 16000.0


# ---------------------------------------------------------------------------------------------
# the benchmark


def run_latency(
    bundle: str | os.PathLike[str],
    shard: str | os.PathLike[str] | None = None,
    *,
    wav: str | os.PathLike[str] | None = None,
    image: str | os.PathLike[str] | None = None,
    video: str | os.PathLike[str] | None = None,
    options: LatencyOptions | None = None,
    vs: VsOptions | None = None,
    command: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Run the latency benchmark (module docstring); return the JSON-ready document."""
    from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder
    from edgeshelf.sdk.preprocess import load_image, read_video_frames, read_wav, tokenize

    options = options or LatencyOptions()
    bundle_path = Path(bundle)
    notes: list[str] = []
    doc: dict[str, Any] = {
        "format": "edgeshelf-benchmark",
        "schema_version": SCHEMA_VERSION,
        "benchmark": "latency",
        "created_utc": utc_now(),
        "command": list(command),
        "machine": machine_info(),
        "versions": package_versions(["edgeshelf", "numpy", "ai-edge-litert", "opencv-python-headless"]),
        "settings": options.to_dict(),
    }
    rec = _Recorder(options.warmup)
    cold: dict[str, float | None] = dict.fromkeys(
        (
            "bundle_open_ms",
            "first_embedding_ms",
            "open_to_first_embedding_ms",
            "shard_open_ms",
            "first_search_ms",
            "asr_open_ms",
        )
    )

    with Stopwatch() as sw:
        encoder = QueryEncoder.open(bundle_path, EncoderOptions(num_threads=options.threads))
    cold["bundle_open_ms"] = sw.ms
    shard_obj = None
    try:
        manifest = encoder.manifest
        texts = _texts(options, None)
        rgb = None
        if "image" in encoder.modalities:
            if image is not None:
                rgb = load_image(image)
            else:
                rgb = synthetic_frame(seed=options.seed)
                notes.append("no --image: the image query is a seeded synthetic 640x480 frame")
        frames = None
        if "video" in encoder.modalities:
            if video is not None:
                frames = read_video_frames(video, encoder.preprocess.video)
            else:
                base = rgb if rgb is not None else synthetic_frame(seed=options.seed)
                frames = np.stack([np.roll(base, 8 * i, axis=1) for i in range(encoder.frames)])
                notes.append("no --video: the video query is the image frame shifted per frame")
        sound = None
        if "audio" in encoder.modalities:
            if wav is not None:
                samples, rate = read_wav(wav)
                from edgeshelf.sdk.preprocess import resample

                sound = resample(samples, rate, 16000) if rate != 16000 else samples
            else:
                rng = np.random.default_rng(options.seed)
                sound = (rng.standard_normal(16000) * 0.1).astype(np.float32)
                notes.append("no --wav: the audio-tower query is 1 s of seeded noise")

        # first embedding right after open: the cold path a device takes
        first_kw: dict[str, Any] = (
            {"text": texts[0]}
            if "text" in encoder.modalities
            else {"image": rgb}
            if rgb is not None
            else {"audio": sound}
        )
        with Stopwatch() as sw:
            encoder.embed(**first_kw)
        cold["first_embedding_ms"] = sw.ms
        cold["open_to_first_embedding_ms"] = cold["bundle_open_ms"] + sw.ms

        if shard is not None:
            from edgeshelf.sdk.shard import Shard

            with Stopwatch() as sw:
                shard_obj = Shard.open(shard, expected_space_id=encoder.space_id, threads=options.threads)
            cold["shard_open_ms"] = sw.ms
            texts = _texts(options, shard_obj)
            probe_vec = encoder.embed(text=texts[0]).vector if "text" in encoder.modalities else None
            if probe_vec is None:
                probe_vec = encoder.embed(**first_kw).vector
            with Stopwatch() as sw:
                shard_obj.search(probe_vec, options.k)
            cold["first_search_ms"] = sw.ms

        from tqdm import tqdm

        total = options.warmup + options.runs
        for i in tqdm(range(total), desc="latency", unit="run", disable=not progress, leave=False):
            vec = None
            if "text" in encoder.modalities:
                text = texts[i % len(texts)]
                ids = rec.time("tokenize", lambda text=text: tokenize(text, encoder.preprocess.text))
                part = rec.time("encoder.text", lambda ids=ids: encoder.encode("text", ids))
                rec.time("fusion", lambda part=part: encoder.fuse({"text": part}))
                vec = rec.time("query.text", lambda text=text: encoder.embed(text=text)).vector
            if rgb is not None:
                prep = rec.time("image.preprocess", lambda: encoder.prepare_inputs(image=rgb))
                part = rec.time("encoder.image", lambda prep=prep: encoder.encode("image", prep.image))
                if "text" not in encoder.modalities:
                    rec.time("fusion", lambda part=part: encoder.fuse({"image": part}))
                emb = rec.time("query.image", lambda: encoder.embed(image=rgb))
                vec = emb.vector if vec is None else vec
            if sound is not None:
                prep = rec.time("audio.preprocess", lambda: encoder.prepare_inputs(audio=sound))
                rec.time("encoder.audio", lambda prep=prep: encoder.encode("audio", prep.audio))
                rec.time("query.audio", lambda: encoder.embed(audio=sound))
            if frames is not None:
                prep = rec.time("video.preprocess", lambda: encoder.prepare_inputs(video=frames))
                rec.time("encoder.video", lambda prep=prep: encoder.encode("video", prep.video))
                rec.time("query.video", lambda: encoder.embed(video=frames))
            if shard_obj is not None and vec is not None:
                rec.time("search", lambda vec=vec: shard_obj.search(vec, options.k))
        rss_before_asr = peak_rss_bytes()

        asr_block = None
        if wav is not None and "text" in encoder.modalities:
            asr_block = _asr_stage(encoder, shard_obj, Path(wav), options, rec, cold, notes, progress)

        doc["bundle"] = _bundle_block(encoder, bundle_path)
        doc["shard"] = _shard_block(shard_obj) if shard_obj is not None else None
        doc["inputs"] = {
            "texts": texts[: min(len(texts), 8)],
            "text_count": len(texts),
            "image": str(image) if image is not None else ("synthetic" if rgb is not None else None),
            "image_shape": list(rgb.shape) if rgb is not None else None,
            "video": str(video) if video is not None else ("synthetic" if frames is not None else None),
            "wav": str(wav) if wav is not None else None,
        }
        doc["cold"] = {k: (round(v, 3) if v is not None else None) for k, v in cold.items()}
        doc["warmup_ms"] = {k: [round(v, 4) for v in vs_] for k, vs_ in rec.warm.items()}
        doc["stages"] = {k: _stage_dict(v) for k, v in rec.samples.items()}
        doc["asr"] = asr_block
        doc["comparison"] = None
        if vs is not None:
            doc["comparison"] = _compare(encoder, manifest, vs, options, texts, rgb, sound, notes, progress)
    finally:
        if shard_obj is not None:
            shard_obj.close()
        encoder.close()

    probe = None
    if options.memory_probe:
        probe = speaker_runtime_probe(bundle_path, shard, texts[:8], options.threads, options.k)
    doc["memory"] = {
        "peak_rss_source": peak_rss_source(),
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_bytes_before_asr": rss_before_asr,
        "speaker_runtime": probe,
    }
    doc["notes"] = notes
    doc["goals"] = evaluate_goals(doc)
    return doc


def _asr_stage(
    encoder: Any,
    shard: Any | None,
    wav: Path,
    options: LatencyOptions,
    rec: _Recorder,
    cold: dict[str, float | None],
    notes: list[str],
    progress: bool,
) -> dict[str, Any]:
    from edgeshelf.sdk.apps import shard_grammar
    from edgeshelf.sdk.asr import RecognizerOptions, SpeechRecognizer

    pcm, seconds = _pcm16_at_16k(wav)
    grammar = shard_grammar(shard) if shard is not None else None
    if grammar is None:
        notes.append("no --shard: speech recognition is free-form (no catalogue grammar)")
    ropts = RecognizerOptions(engine=options.asr_engine, model_path=options.asr_model, grammar=grammar)
    with Stopwatch() as sw:
        recognizer = SpeechRecognizer.open(ropts)
    cold["asr_open_ms"] = sw.ms
    rtf: list[float] = []
    transcript = None
    asr_rec = _Recorder(1)
    from tqdm import tqdm

    try:
        for _ in tqdm(range(1 + options.asr_runs), desc="asr", unit="utt", disable=not progress, leave=False):
            with Stopwatch() as total:
                transcript = asr_rec.time("asr", lambda: recognizer.transcribe(pcm, 16000))
                text = transcript.text.strip()
                vec = encoder.embed(text=text).vector if text else None
                if vec is not None and shard is not None:
                    shard.search(vec, options.k)
            if text:
                asr_rec.add("query.voice", total.ms)
            if asr_rec.seen["asr"] > 1:
                rtf.append(transcript.real_time_factor)
        oov = list(recognizer.oov_words)
        phrases = len(recognizer.grammar) if recognizer.grammar is not None else None
    finally:
        recognizer.close()
    for stage in ("asr", "query.voice"):
        for v in asr_rec.samples.get(stage, []):
            rec.samples.setdefault(stage, []).append(v)
        for v in asr_rec.warm.get(stage, []):
            rec.warm.setdefault(stage, []).append(v)
    if transcript is None or not transcript.text.strip():
        notes.append(f"the recogniser heard nothing in {wav}: query.voice was not measured")
    rtf_arr = np.asarray(rtf, np.float64)
    return {
        "engine": options.asr_engine,
        "model": options.asr_model,
        "grammar_phrases": phrases,
        "oov_words": oov[:20],
        "audio_seconds": round(seconds, 3),
        "transcript": transcript.text if transcript is not None else "",
        "confidence": round(float(transcript.confidence), 4) if transcript is not None else None,
        "real_time_factor": {
            "count": int(rtf_arr.size),
            "mean": round(float(rtf_arr.mean()), 5),
            "p50": round(float(np.percentile(rtf_arr, 50)), 5),
            "p95": round(float(np.percentile(rtf_arr, 95)), 5),
            "max": round(float(rtf_arr.max()), 5),
        },
    }


_DISTRIBUTIONS = {
    "ai_edge_litert": "ai-edge-litert",
    "tflite_runtime": "tflite-runtime",
    "tensorflow.lite": "tensorflow",
}


def _interpreter_versions(encoder: Any) -> str:
    """``"ai_edge_litert 2.3.0"`` (every interpreter the encoder's models run on)."""
    names = sorted(set(encoder.interpreter_names.values()))
    versions = package_versions(_DISTRIBUTIONS.get(n, n) for n in names)
    return ", ".join(f"{n} {v}" for n, v in zip(names, versions.values()))


def _bundle_block(encoder: Any, path: Path) -> dict[str, Any]:
    manifest = encoder.manifest
    names = sorted(set(encoder.interpreter_names.values()))
    versions = package_versions(_DISTRIBUTIONS.get(n, n) for n in names)
    sizes = {role: int(spec.bytes) for role, spec in manifest.models.items()}
    return {
        "path": str(path),
        "profile": manifest.profile_name,
        "quantization": manifest.quantization,
        "space_id": manifest.space_id,
        "dim": manifest.dim,
        "modalities": list(encoder.modalities),
        "image_size": int(encoder.image_size) if "image" in encoder.modalities else None,
        "interpreter": ", ".join(names),
        "interpreter_version": ", ".join(versions.values()),
        "xnnpack": bool(encoder.options.use_xnnpack),
        "threads": int(encoder.options.num_threads or manifest.runtime.get("num_threads", 1)),
        "model_bytes": sizes,
        "total_bytes": int(sum(sizes.values())),
    }


def _shard_block(shard: Any) -> dict[str, Any]:
    return {
        "path": str(shard.path),
        "count": int(shard.count),
        "dim": int(shard.dim),
        "dtype": shard.dtype,
        "bytes": int(Path(shard.path).stat().st_size),
        "kernel": shard.kernel,
    }


# ---------------------------------------------------------------------------------------------
# the speaker runtime in a fresh process (honest peak memory and cold start)

_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from edgeshelf.benchmarks.stats import current_rss_bytes, peak_rss_bytes
from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder
from edgeshelf.sdk.shard import Shard
try:
    import ai_edge_litert.interpreter  # noqa: F401  (the import is part of the cold start)
except ImportError:
    pass
t1 = time.perf_counter()
args = json.loads(sys.argv[1])
baseline = current_rss_bytes()
out = {"import_ms": (t1 - t0) * 1e3, "baseline_rss_bytes": baseline}
t = time.perf_counter()
enc = QueryEncoder.open(args["bundle"], EncoderOptions(num_threads=args["threads"]))
out["bundle_open_ms"] = (time.perf_counter() - t) * 1e3
t = time.perf_counter()
vec = enc.embed(text=args["texts"][0]).vector
out["first_embedding_ms"] = (time.perf_counter() - t) * 1e3
out["open_to_first_embedding_ms"] = out["bundle_open_ms"] + out["first_embedding_ms"]
shard = None
if args["shard"]:
    t = time.perf_counter()
    shard = Shard.open(args["shard"], expected_space_id=enc.space_id, threads=args["threads"])
    shard.search(vec, args["k"])
    out["shard_open_and_first_search_ms"] = (time.perf_counter() - t) * 1e3
n = 0
for _ in range(args["rounds"]):
    for text in args["texts"]:
        vec = enc.embed(text=text).vector
        if shard is not None:
            shard.search(vec, args["k"])
        n += 1
out["queries"] = n
out["rss_after_bytes"] = current_rss_bytes()
out["peak_rss_bytes"] = peak_rss_bytes()
print(json.dumps(out))
"""


def speaker_runtime_probe(
    bundle: str | os.PathLike[str],
    shard: str | os.PathLike[str] | None,
    texts: Sequence[str],
    threads: int = 1,
    k: int = 10,
    rounds: int = 5,
) -> dict[str, Any]:
    """Open ``bundle`` (+ ``shard``) in a fresh Python process, answer text queries, and report
    its cold start and peak RSS (:func:`peak_rss_bytes`); no speech model is loaded.

    Returns ``{"import_ms", "bundle_open_ms", "first_embedding_ms", "open_to_first_embedding_ms",
    "shard_open_and_first_search_ms", "baseline_rss_bytes", "rss_after_bytes",
    "peak_rss_bytes", "queries", "includes"}``.
    """
    args = {
        "bundle": str(bundle),
        "shard": str(shard) if shard is not None else None,
        "texts": list(texts) or list(DEFAULT_TEXTS),
        "threads": int(threads),
        "k": int(k),
        "rounds": int(rounds),
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise BenchmarkError(
            f"the speaker-runtime memory probe failed (exit {done.returncode}) on bundle {bundle}: "
            + " | ".join(tail)
        )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}
    out["includes"] = "python + numpy + LiteRT + bundle + shard + text queries; no speech model"
    return out


class BenchmarkError(EdgeshelfError, RuntimeError):
    """A benchmark step failed (a peer could not be built, a probe process died, ...)."""


# ---------------------------------------------------------------------------------------------
# --vs: the same queries through the float32 bundle, Keras and ONNX Runtime, pair by pair


class _GraphPeer:
    """Keras or ONNX sub-models behind the bundle's preprocessing: ``text``/``image``/``audio``
    queries -> float32 ``[dim]`` L2-normalised (the same computation as the bundle, in float)."""

    def __init__(
        self,
        run: dict[str, Callable[..., np.ndarray]],
        fusion_inputs: Sequence[str],
        preprocess: Any,
        image_size: int,
        mdim: int,
        backbone: Any | None,
    ) -> None:
        self._run = run
        self._fusion_inputs = tuple(fusion_inputs)
        self._pre = preprocess
        self._image_size = image_size
        self._zeros = np.zeros((1, mdim), np.float32)
        self._backbone = backbone

    def _fuse(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        order = ("text", "image", "video", "audio")
        mask = np.array([[1.0 if m in parts else 0.0 for m in order]], np.float32)
        feeds = {m: parts.get(m, self._zeros) for m in order}
        feeds["mask"] = mask
        out = np.asarray(self._run["fusion"](*(feeds[name] for name in self._fusion_inputs)), np.float32)
        vec = out.reshape(-1)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def text(self, text: str) -> np.ndarray:
        from edgeshelf.sdk.preprocess import tokenize

        ids = tokenize(text, self._pre.text)[None]
        return self._fuse({"text": np.asarray(self._run["text"](ids), np.float32)})

    def image(self, rgb: np.ndarray) -> np.ndarray:
        from edgeshelf.sdk.preprocess import resize_center_crop

        if self._backbone is not None:
            x = self._backbone.features_one(rgb)[None]
        else:
            x = resize_center_crop(rgb, self._image_size)[None].astype(np.float32) * np.float32(1.0 / 255.0)
        return self._fuse({"image": np.asarray(self._run["image"](x), np.float32)})

    def audio(self, samples: np.ndarray) -> np.ndarray:
        from edgeshelf.sdk.preprocess import log_mel

        mel = log_mel(samples, self._pre.audio)[None]
        return self._fuse({"audio": np.asarray(self._run["audio"](mel), np.float32)})


class _BundlePeer:
    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def text(self, text: str) -> np.ndarray:
        return self.encoder.embed(text=text).vector

    def image(self, rgb: np.ndarray) -> np.ndarray:
        return self.encoder.embed(image=rgb).vector

    def audio(self, samples: np.ndarray) -> np.ndarray:
        return self.encoder.embed(audio=samples).vector


def _input_signature(tf: Any, model: Any) -> list[Any]:
    return [
        tf.TensorSpec([1, *inp.shape[1:]], inp.dtype, name=inp.name.split(":")[0]) for inp in model.inputs
    ]


def _build_peers(
    manifest: Any, vs: VsOptions, threads: int, notes: list[str], info: dict[str, Any]
) -> dict[str, Any]:
    """Load the towers and build the Keras / ONNX peers and the float32 bundle (as asked)."""
    tf = require("tensorflow", "host")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        notes.append("TensorFlow was already initialised: its thread settings could not be changed")
    from edgeshelf.converters.profiles import Profile
    from edgeshelf.converters.quantize import profile_models
    from edgeshelf.sdk.preprocess import PreprocessConfig
    from edgeshelf.towers.model import Towers

    towers = Towers.load(vs.towers)
    if towers.space_id != manifest.space_id:
        raise SpaceMismatchError(
            f"towers {vs.towers} vs the bundle",
            manifest.space_id,
            towers.space_id,
            "pass --towers the folder the bundle was converted from",
        )
    profile = Profile.from_dict(dict(manifest.profile), source="bundle manifest")
    keras_models = profile_models(towers, profile)
    roles = [r for r in ("text", "image", "audio") if r in manifest.modalities] + ["fusion"]
    pre = PreprocessConfig.from_dict(manifest.preprocess)
    mdim = int(towers.config.modality_dim)
    image_size = pre.image.size
    backbone = None
    if towers.backbone_path is not None and "image" in roles:
        from edgeshelf.sdk.backbone import ImageBackbone

        backbone = ImageBackbone(towers.backbone_path, num_threads=threads)
        notes.append(
            "the towers' image tower is a frozen TFLite backbone + head: the Keras and ONNX peers run "
            "the same float backbone file with LiteRT, then their own head"
        )
    functions = {}
    for role in roles:
        model = keras_models[role]
        signature = _input_signature(tf, model)
        if len(signature) == 1:
            fn = tf.function(lambda x, m=model: m(x, training=False), input_signature=signature)
        else:
            fn = tf.function(lambda *xs, m=model: m(list(xs), training=False), input_signature=signature)
        functions[role] = (fn, signature)
    fusion_inputs = [s.name for s in functions["fusion"][1]]
    peers: dict[str, Any] = {}
    if "keras" in vs.systems:
        run = {role: (lambda *xs, fn=fn: fn(*xs).numpy()) for role, (fn, _) in functions.items()}
        peers["keras"] = _GraphPeer(run, fusion_inputs, pre, image_size, mdim, backbone)
        info["keras"] = {
            "engine": "tensorflow tf.function (graph), float32",
            "version": f"tensorflow {tf.__version__}",
            "threads": threads,
        }
    if "onnx" in vs.systems:
        tf2onnx = require("tf2onnx", "bench")
        ort = require("onnxruntime", "bench")
        sess_opts = ort.SessionOptions()
        sess_opts.intra_op_num_threads = threads
        sess_opts.inter_op_num_threads = 1
        sess_opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess_opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        run = {}
        export_s = 0.0
        for role, (fn, signature) in functions.items():
            with Stopwatch() as sw:
                try:
                    proto, _ = tf2onnx.convert.from_function(
                        fn, input_signature=signature, opset=vs.onnx_opset
                    )
                except Exception as exc:  # noqa: BLE001 - tf2onnx raises many kinds; name the role
                    raise BenchmarkError(
                        f"tf2onnx could not export the {role} model of {vs.towers}: {exc}"
                    ) from exc
            export_s += sw.ms / 1e3
            session = ort.InferenceSession(
                proto.SerializeToString(), sess_options=sess_opts, providers=["CPUExecutionProvider"]
            )
            names = [i.name for i in session.get_inputs()]
            run[role] = lambda *xs, s=session, n=names: s.run(None, dict(zip(n, xs)))[0]
        peers["onnx"] = _GraphPeer(run, fusion_inputs, pre, image_size, mdim, backbone)
        info["onnx"] = {
            "engine": f"onnxruntime CPUExecutionProvider, float32 (exported with tf2onnx, opset {vs.onnx_opset})",
            "version": f"onnxruntime {ort.__version__}, tf2onnx {tf2onnx.__version__}",
            "threads": threads,
            "export_seconds": round(export_s, 2),
        }
    if "float32_bundle" in vs.systems:
        peers["float32_bundle"] = _float32_bundle(towers, profile, vs, threads, notes, info)
    return peers


def _float32_bundle(
    towers: Any, profile: Any, vs: VsOptions, threads: int, notes: list[str], info: dict[str, Any]
):
    from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder

    path = vs.float32_bundle
    if path is None:
        if vs.calibration is None:
            raise InvalidInputError(
                "--vs needs the float32 bundle: pass --vs-bundle PATH (edgeshelf convert --quant float32), "
                "or --calibration CATALOGUE to convert it from --towers now"
            )
        from edgeshelf.converters.convert import convert

        root = Path(vs.workdir) if vs.workdir is not None else Path(tempfile.mkdtemp(prefix="edgeshelf-vs-"))
        path = root / f"{profile.name}-float32.bundle"
        if not (path / "manifest.json").is_file():
            with Stopwatch() as sw:
                convert(
                    towers,
                    profile,
                    vs.calibration,
                    path,
                    quant="float32",
                    force=True,
                    calibration_count=32,
                    heldout_count=64,
                    columns=vs.calibration_columns,
                )
            notes.append(f"float32 bundle converted from the towers in {sw.ms / 1e3:.1f} s into {path}")
    encoder = QueryEncoder.open(path, EncoderOptions(num_threads=threads))
    if encoder.space_id != towers.space_id:
        encoder.close()
        raise SpaceMismatchError(
            f"float32 bundle {path}", towers.space_id, encoder.space_id, "convert it from the same --towers"
        )
    if encoder.manifest.quantization != "float32":
        notes.append(f"--vs-bundle {path} is {encoder.manifest.quantization}, not float32")
    info["float32_bundle"] = {
        "engine": f"LiteRT, {encoder.manifest.quantization} bundle",
        "version": _interpreter_versions(encoder),
        "threads": threads,
        "path": str(path),
        "total_bytes": int(sum(s.bytes for s in encoder.manifest.models.values())),
    }
    return _BundlePeer(encoder)


def _compare(
    encoder: Any,
    manifest: Any,
    vs: VsOptions,
    options: LatencyOptions,
    texts: Sequence[str],
    rgb: np.ndarray | None,
    sound: np.ndarray | None,
    notes: list[str],
    progress: bool,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "bundle": {
            "engine": f"LiteRT, {manifest.quantization} bundle",
            "version": _interpreter_versions(encoder),
            "threads": options.threads,
        }
    }
    peers = _build_peers(manifest, vs, options.threads, notes, info)
    systems: dict[str, Any] = {"bundle": _BundlePeer(encoder)}
    systems.update({name: peers[name] for name in SYSTEMS[1:] if name in peers})
    queries: dict[str, tuple[str, list[Any]]] = {}
    if "text" in encoder.modalities:
        queries["query.text"] = ("text", list(texts))
    if rgb is not None:
        queries["query.image"] = ("image", [rgb])
    if sound is not None:
        queries["query.audio"] = ("audio", [sound])
    out: dict[str, Any] = {
        "systems": info,
        "order": list(systems),
        "order_rotates": bool(vs.rotate),
        "queries": {},
    }
    from tqdm import tqdm

    try:
        for query, (method, inputs) in queries.items():
            samples: dict[str, list[float]] = {name: [] for name in systems}
            reference = {name: getattr(s, method)(inputs[0]) for name, s in systems.items()}
            base = reference.get("keras", reference["bundle"])
            cosines = {name: round(float(np.dot(v, base)), 5) for name, v in reference.items()}
            total = options.warmup + options.runs
            names = list(systems)
            for i in tqdm(range(total), desc=f"vs {query}", unit="run", disable=not progress, leave=False):
                x = inputs[i % len(inputs)]
                shift = i % len(names) if vs.rotate else 0
                for name in names[shift:] + names[:shift]:  # every system on the same input, back to back
                    fn = getattr(systems[name], method)
                    with Stopwatch() as sw:
                        fn(x)
                    if i >= options.warmup:
                        samples[name].append(sw.ms)
            out["queries"][query] = {
                "systems": {name: summarize(s).to_dict() for name, s in samples.items()},
                "samples_ms": {name: [round(v, 4) for v in s] for name, s in samples.items()},
                "ratios_vs_bundle": {
                    name: ratio_summary(s, samples["bundle"])
                    for name, s in samples.items()
                    if name != "bundle"
                },
                "cosine_vs_reference": cosines,
                "reference": "keras" if "keras" in reference else "bundle",
            }
    finally:
        for system in systems.values():
            if isinstance(system, _BundlePeer) and system.encoder is not encoder:
                system.encoder.close()
    return out


# ---------------------------------------------------------------------------------------------
# goals


def _goal(
    goal_id: str, target: str, value: Any, unit: str, met: bool | None, reason: str = ""
) -> dict[str, Any]:
    return {
        "id": goal_id,
        "description": GOALS[goal_id],
        "target": target,
        "value": value,
        "unit": unit,
        "met": met,
        "reason": reason,
    }


def evaluate_goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue-6 goals this document can judge: ``met`` true / false, or None (not measured here)."""
    goals = []
    cmp = doc.get("comparison") or {}
    queries = cmp.get("queries", {})
    quant = (doc.get("bundle") or {}).get("quantization", "?")

    def ratio(query: str, system: str) -> float | None:
        r = queries.get(query, {}).get("ratios_vs_bundle", {}).get(system)
        return None if r is None else r["median"]

    def judged(goal_id: str, query: str, system: str, threshold: float) -> dict[str, Any]:
        value = ratio(query, system)
        if value is None:
            target = f"> {threshold:g}x" if threshold == 1 else f">= {threshold:g}x"
            return _goal(
                goal_id,
                target,
                None,
                "x",
                None,
                f"not measured: run with --vs ({system}) and a bundle with {query.split('.')[1]}",
            )
        reason = "" if quant == "int8" else f"the bundle is {quant}, the goal is about int8"
        return _goal(
            goal_id,
            f"> {threshold:g}x" if threshold == 1 else f">= {threshold:g}x",
            value,
            "x (median per-run time ratio, peer / bundle)",
            value >= threshold if threshold != 1 else value > 1,
            reason,
        )

    goals.append(judged("text_vs_keras", "query.text", "keras", 5.0))
    goals.append(judged("text_vs_onnx", "query.text", "onnx", 1.0))
    goals.append(judged("image_vs_float32", "query.image", "float32_bundle", 1.0))
    goals.append(judged("image_vs_onnx", "query.image", "onnx", 1.0))

    stages = doc.get("stages", {})
    bundle = doc.get("bundle") or {}
    img = stages.get("query.image")
    if img is None:
        goals.append(
            _goal(
                "image_under_10ms", "< 10 ms", None, "ms", None, "not measured: the bundle has no image model"
            )
        )
    else:
        why = []
        if bundle.get("profile") != "glasses":
            why.append(f"profile is {bundle.get('profile')}, not glasses")
        if doc["settings"]["threads"] != 1:
            why.append(f"{doc['settings']['threads']} threads, not 1")
        met = img["p50_ms"] < 10.0 if not why else None
        goals.append(_goal("image_under_10ms", "< 10 ms", img["p50_ms"], "ms (p50)", met, "; ".join(why)))

    probe = (doc.get("memory") or {}).get("speaker_runtime")
    cold = doc.get("cold") or {}
    if probe is not None:
        value, where = probe["open_to_first_embedding_ms"], "fresh process, page cache warm"
    else:
        value, where = cold.get("open_to_first_embedding_ms"), "in this process"
    goals.append(
        _goal(
            "open_to_first_embedding",
            "< 200 ms",
            value,
            f"ms ({where})",
            None if value is None else value < 200.0,
        )
    )
    if probe is None:
        goals.append(
            _goal("speaker_peak_rss", "< 150 MB", None, "MB", None, "not measured: memory probe off")
        )
    else:
        mb = round(probe["peak_rss_bytes"] / 1e6, 1)
        reason = "" if bundle.get("profile") == "speaker" else f"bundle profile is {bundle.get('profile')}"
        goals.append(
            _goal("speaker_peak_rss", "< 150 MB", mb, "MB (peak RSS, fresh process)", mb < 150.0, reason)
        )
    asr = doc.get("asr")
    if asr is None:
        goals.append(_goal("asr_rtf", "< 0.1", None, "", None, "not measured: no --wav"))
    else:
        rtf = asr["real_time_factor"]["p50"]
        reason = "" if asr.get("grammar_phrases") else "free-form (no shard grammar)"
        goals.append(_goal("asr_rtf", "< 0.1", rtf, f"RTF (p50, {asr['engine']})", rtf < 0.1, reason))
    return goals


# ---------------------------------------------------------------------------------------------
# text rendering


def format_report(doc: dict[str, Any]) -> str:
    """A human-readable rendering of the latency document."""
    m, b = doc["machine"], doc["bundle"]
    lines = [
        f"machine   {m['cpu_model']} ({m['cpu_count']} cpus, {m['arch']}, load {m['load_average']})"
        + ("  EMULATED: timings mean nothing" if m.get("emulated") else ""),
        f"bundle    {b['path']} ({b['profile']}, {b['quantization']}, {b['total_bytes'] / 1e6:.3f} MB) "
        f"on {b['interpreter']} {b['interpreter_version']}, {b['threads']} thread(s)",
    ]
    if doc.get("shard"):
        s = doc["shard"]
        lines.append(
            f"shard     {s['path']} ({s['count']} x {s['dim']} {s['dtype']}, {s['bytes'] / 1e6:.2f} MB, {s['kernel']})"
        )
    cold = doc["cold"]
    lines.append(
        "cold      "
        + " | ".join(f"{k.replace('_ms', '')} {v:.1f} ms" for k, v in cold.items() if v is not None)
    )
    lines += ["", f"{'stage':<18}{'count':>6}{'mean':>10}{'std':>9}{'p50':>9}{'p95':>9}{'p99':>9}  (ms)"]
    for name, st in doc["stages"].items():
        lines.append(
            f"{name:<18}{st['count']:>6}{st['mean_ms']:>10.3f}{st['std_ms']:>9.3f}{st['p50_ms']:>9.3f}"
            f"{st['p95_ms']:>9.3f}{st['p99_ms']:>9.3f}"
        )
    if doc.get("asr"):
        a = doc["asr"]
        lines.append(
            f"\nasr       {a['engine']}, {a['grammar_phrases']} phrases, {a['audio_seconds']} s audio: "
            f'"{a["transcript"]}", RTF p50 {a["real_time_factor"]["p50"]:.4f}'
        )
    mem = doc["memory"]
    line = f"memory    peak RSS {mem['peak_rss_bytes'] / 1e6:.1f} MB (this process)"
    if mem.get("speaker_runtime"):
        p = mem["speaker_runtime"]
        line += (
            f"; speaker runtime {p['peak_rss_bytes'] / 1e6:.1f} MB peak in a fresh process "
            f"(open->first embedding {p['open_to_first_embedding_ms']:.1f} ms, imports {p['import_ms']:.0f} ms)"
        )
    lines.append(line)
    cmp = doc.get("comparison")
    if cmp:
        lines.append("\n--vs (median per-run ratio peer/bundle; >1 = the bundle is faster)")
        for query, q in cmp["queries"].items():
            parts = [f"{name} p50 {st['p50_ms']:.3f} ms" for name, st in q["systems"].items()]
            ratios = [f"{name} {r['median']:.2f}x" for name, r in q["ratios_vs_bundle"].items()]
            lines.append(f"  {query:<12} " + " | ".join(parts))
            lines.append(f"  {'':<12} ratios: " + ", ".join(ratios))
    lines.append("\ngoals")
    for g in doc["goals"]:
        mark = {True: "MET   ", False: "MISSED", None: "n/a   "}[g["met"]]
        value = "-" if g["value"] is None else g["value"]
        reason = f" ({g['reason']})" if g["reason"] else ""
        lines.append(f"  {mark} {g['id']:<24} {value} {g['unit']} target {g['target']}{reason}")
    for note in doc.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


__all__ = [
    "GOALS",
    "BenchmarkError",
    "LatencyOptions",
    "VsOptions",
    "evaluate_goals",
    "format_report",
    "run_latency",
    "speaker_runtime_probe",
    "synthetic_frame",
]
