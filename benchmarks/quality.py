"""`edgeshelf benchmark quality`: retrieval quality of float vs quantized bundles vs BM25 vs a
pretrained image embedder, per query kind, on one labelled-query protocol.

Setting (the same for every system, so rows compare):

* the corpus of each kind is embedded once by the **float towers** (that is how the catalogue and
  its shards are built); with ``protocol="fashion"`` it is the protocol's test split (the
  ``text_to_image`` kind: the title-hidden test products embedded from their image only);
  without a protocol every product of the catalogue, and the catalogue's labelled queries (kinds
  whose ``meta["corpus"]`` is ``"image_only"`` against products embedded without text);
* each **bundle** embeds the queries on the device path (:class:`QueryEncoder`: its own
  preprocessing, quantized models), so the rows show what quantization costs at query time; the
  cosine of each bundle query embedding to the float one is reported per kind
  (``quantization``);
* **BM25** (``bm25s``) ranks titles for text kinds with visible titles; the **peer** (e.g.
  MediaPipe's image embedder) ranks image queries by the cosine of its raw features;
* **voice** queries: ``voice_queries`` clean queries are spoken with espeak-ng, recognised by the
  device recogniser restricted to a grammar of the corpus vocabulary (as the speaker does), and
  the transcripts are the queries (same relevant products); unrecognised ones are counted in
  ``voice.recognised`` and left out of the kind's rows.

Metrics per kind (:mod:`edgeshelf.towers.evaluate`): recall@1, recall@10 (capped), MRR,
nDCG@10 (graded), P@5.

Example::

    doc = run_quality("towers-fashion", "../shared/data/catalogue/fashion/products.csv",
                      bundles=["bundles/glasses-int8"], columns="fashion",
                      options=QualityOptions(protocol="fashion"))
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.benchmarks.stats import machine_info, package_versions, utc_now
from edgeshelf.sdk.errors import InvalidInputError, MissingDependencyError, SpaceMismatchError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class QualityOptions:
    """How the quality benchmark runs (see the module docstring).

    ``protocol``: ``"fashion"`` or None (the catalogue's own labelled queries). ``seed``: the
    protocol's split seed and every sampling. ``max_queries_per_kind``: a seeded subset.
    ``voice_queries``: clean queries to speak (0 = no voice kind). ``voice``: espeak-ng voice.
    ``asr_engine``: the recogniser. ``bm25``: include the BM25 baseline. ``threads``: LiteRT
    threads of the bundles.
    """

    protocol: str | None = None
    seed: int = 0
    max_queries_per_kind: int | None = None
    voice_queries: int = 40
    voice: str = "en-us+f5"
    asr_engine: str = "pocketsphinx"
    bm25: bool = True
    threads: int = 2

    def __post_init__(self) -> None:
        if self.protocol not in (None, "fashion"):
            raise InvalidInputError(f"protocol must be 'fashion' or None, got {self.protocol!r}")
        if self.max_queries_per_kind is not None and self.max_queries_per_kind < 1:
            raise InvalidInputError(
                f"max_queries_per_kind must be >= 1 or None, got {self.max_queries_per_kind}"
            )
        if self.voice_queries < 0:
            raise InvalidInputError(f"voice_queries must be >= 0, got {self.voice_queries}")
        if self.threads < 1:
            raise InvalidInputError(f"threads must be >= 1, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "max_queries_per_kind": self.max_queries_per_kind,
            "voice_queries": self.voice_queries,
            "voice": self.voice,
            "asr_engine": self.asr_engine,
            "bm25": self.bm25,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class _Group:
    """The queries of one kind and the corpus they are answered from."""

    kind: str
    queries: tuple[Any, ...]
    corpus: tuple[str, ...]
    hide_titles: bool


# ---------------------------------------------------------------------------------------------
# groups


def _subset(items: Sequence[Any], limit: int | None, seed: int, kind: str) -> list[Any]:
    items = list(items)
    if limit is None or len(items) <= limit:
        return items
    rng = random.Random(f"edgeshelf-quality-{seed}-{kind}")
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]


def _groups(catalogue: Any, options: QualityOptions, towers_path: Path, notes: list[str]):
    """(products evaluated, groups, protocol summary or None)."""
    from edgeshelf.towers.evaluate import image_only_corpus

    if options.protocol == "fashion":
        from edgeshelf.towers.fashion import build_protocol, check_split
        from edgeshelf.towers.model import Towers

        proto = build_protocol(catalogue, "fashion", seed=options.seed)
        notes.extend(check_split(Towers.read_meta(towers_path), proto, ""))
        products = proto.test_products(catalogue)
        groups = [
            _Group(
                kind,
                tuple(_subset(proto.queries[kind], options.max_queries_per_kind, options.seed, kind)),
                tuple(proto.corpus(kind)),
                proto.hides_titles(kind),
            )
            for kind in proto.kinds
            if proto.queries[kind]
        ]
        return products, groups, proto.summary()
    products = list(catalogue.products)
    queries = list(getattr(catalogue, "queries", ()) or ())
    if not queries:
        raise InvalidInputError(
            f"the catalogue {getattr(catalogue, 'root', '')} has no labelled queries (queries.jsonl); "
            "use a sample catalogue (edgeshelf sample-catalogue) or --protocol fashion"
        )
    ids = tuple(p.id for p in products)
    kinds: dict[str, list[Any]] = {}
    for q in queries:
        kinds.setdefault(q.kind, []).append(q)
    groups = []
    for kind, qs in kinds.items():
        blind = [q for q in qs if image_only_corpus(q)]
        if blind and len(blind) != len(qs):
            notes.append(
                f"{kind}: {len(qs) - len(blind)} queries without the image-only corpus mark left out"
            )
        groups.append(
            _Group(
                kind,
                tuple(_subset(blind or qs, options.max_queries_per_kind, options.seed, kind)),
                ids,
                bool(blind),
            )
        )
    return products, groups, None


# ---------------------------------------------------------------------------------------------
# voice queries


def _speak(text: str, voice: str, folder: Path) -> Path:
    """The query spoken by espeak-ng (cached by voice and text)."""
    from edgeshelf.sdk.tts import espeak_available, speak_to_wav

    if not espeak_available():
        raise MissingDependencyError(
            "voice queries need espeak-ng to speak the queries (apt-get install espeak-ng), or pass --voice 0"
        )
    digest = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()[:16]
    out = folder / f"{digest}.wav"
    return out if out.is_file() else speak_to_wav(text, out, voice, 140)


def voice_group(
    clean: _Group,
    products: Sequence[Any],
    options: QualityOptions,
    folder: Path,
    progress: bool = False,
) -> tuple[_Group | None, dict[str, Any]]:
    """The ``voice`` kind from the first ``voice_queries`` English clean queries (see module doc)."""
    from edgeshelf.sdk.apps import as_pcm16, to_asr_rate
    from edgeshelf.sdk.asr import RecognizerOptions, SpeechRecognizer, grammar_from_titles
    from edgeshelf.sdk.preprocess import read_wav
    from tqdm import tqdm

    by_id = {p.id: p for p in products}
    corpus = [by_id[i] for i in clean.corpus if i in by_id]
    categories = sorted({p.category for p in corpus if p.category})
    grammar = grammar_from_titles(
        [p.title for p in corpus], extra_words=categories, nouns=categories, max_phrases=1000
    )
    spoken = [q for q in clean.queries if q.text and q.text.isascii()][: options.voice_queries]
    folder.mkdir(parents=True, exist_ok=True)
    heard: list[Any] = []
    examples: list[dict[str, str]] = []
    rtf: list[float] = []
    exact = 0
    with SpeechRecognizer.open(RecognizerOptions(engine=options.asr_engine, grammar=grammar)) as asr:
        for q in tqdm(spoken, desc="voice queries", unit="query", disable=not progress, leave=False):
            samples, rate = read_wav(_speak(q.text, options.voice, folder))
            transcript = asr.transcribe(to_asr_rate(as_pcm16(samples), rate), 16000)
            rtf.append(transcript.real_time_factor)
            text = transcript.text.strip()
            exact += int(" ".join(text.split()) == " ".join(q.text.lower().split()))
            if len(examples) < 8:
                examples.append({"said": q.text, "heard": text})
            if text:
                heard.append(
                    replace(q, id=q.id + "-voice", kind="voice", text=text, meta={**q.meta, "spoken": q.text})
                )
        phrases = len(asr.grammar or ())
    info = {
        "requested": options.voice_queries,
        "spoken": len(spoken),
        "recognised": len(heard),
        "exact_transcripts": exact,
        "engine": options.asr_engine,
        "voice": options.voice,
        "grammar_phrases": phrases,
        "mean_rtf": round(float(np.mean(rtf)), 4) if rtf else None,
        "examples": examples,
    }
    if not heard:
        return None, info
    return _Group("voice", tuple(heard), clean.corpus, False), info


# ---------------------------------------------------------------------------------------------
# the benchmark


def _name_bundle(manifest: Any, taken: set[str]) -> str:
    base = f"{manifest.profile_name}-{manifest.quantization}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _cos_stats(values: Sequence[float]) -> dict[str, float]:
    x = np.asarray(values, np.float64)
    return {
        "count": int(x.size),
        "mean": round(float(x.mean()), 5),
        "min": round(float(x.min()), 5),
        "p05": round(float(np.percentile(x, 5)), 5),
        "p50": round(float(np.percentile(x, 50)), 5),
    }


def _supports(encoder: Any, q: Any) -> bool:
    needed = [m for m in ("text", "image", "video", "audio") if getattr(q, m, None)]
    return bool(needed) and all(m in encoder.modalities for m in needed)


def run_quality(
    towers: str | os.PathLike[str],
    catalogue: str | os.PathLike[str],
    *,
    bundles: Sequence[str | os.PathLike[str]] = (),
    columns: str | None = None,
    peer: str | os.PathLike[str] | None = None,
    options: QualityOptions | None = None,
    workdir: str | os.PathLike[str] | None = None,
    command: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Run the quality benchmark (module docstring); return the JSON-ready document."""
    from edgeshelf.catalogue.products import load_catalogue
    from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder
    from edgeshelf.towers.evaluate import (
        EvalReport,
        bm25_baseline,
        embedder_peer,
        merge_reports,
        rank_and_score,
    )
    from edgeshelf.towers.model import Towers

    options = options or QualityOptions()
    towers_path = Path(towers)
    model = Towers.load(towers_path)
    cat = load_catalogue(catalogue, columns=columns)
    notes: list[str] = []
    products, groups, proto = _groups(cat, options, towers_path, notes)
    by_id = {p.id: i for i, p in enumerate(products)}

    own_tmp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="edgeshelf-quality-")) if own_tmp else Path(workdir)
    voice_info = None
    try:
        if options.voice_queries:
            clean = next((g for g in groups if g.kind == "clean"), None)
            if clean is None:
                notes.append("no clean queries: no voice queries")
            else:
                group, voice_info = voice_group(clean, products, options, root / "voice", progress)
                if group is not None:
                    groups.insert(groups.index(clean) + 1, group)
                    if voice_info["recognised"] < voice_info["spoken"]:
                        notes.append(
                            f"voice: {voice_info['spoken'] - voice_info['recognised']} of {voice_info['spoken']} "
                            "spoken queries were not recognised at all and are left out of the voice rows"
                        )
    finally:
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)

    # the corpus, embedded once by the float towers
    full = model.embed_products(products, progress=progress)
    blind_ids = sorted({i for g in groups if g.hide_titles for i in g.corpus}, key=lambda i: by_id[i])
    blind = {}
    if blind_ids:
        rows = [products[by_id[i]] for i in blind_ids]
        vectors = model.embed(
            texts=[None] * len(rows),
            images=[p.image for p in rows],
            videos=[p.video for p in rows],
            audios=[p.audio for p in rows],
            progress=progress,
        )
        blind = {pid: vectors[n] for n, pid in enumerate(blind_ids)}

    def corpus_matrix(group: _Group) -> np.ndarray:
        if group.hide_titles:
            return np.stack([blind[i] for i in group.corpus])
        return full[[by_id[i] for i in group.corpus]]

    systems: dict[str, dict[str, Any]] = {}
    float_q: dict[str, np.ndarray] = {}
    parts = []
    for g in groups:
        qv = model.embed_queries(list(g.queries), progress=progress)
        float_q[g.kind] = qv
        note = [f"{g.kind}: products embedded from their media only (titles hidden)"] if g.hide_titles else []
        parts.append(rank_and_score(qv @ corpus_matrix(g).T, list(g.corpus), list(g.queries), "float", note))
    float_report = merge_reports("float", parts)
    systems["float"] = _system_block(
        "towers", float_report, {"path": str(towers_path), "space_id": model.space_id}
    )

    quantization: dict[str, Any] = {}
    for bundle in bundles:
        with QueryEncoder.open(bundle, EncoderOptions(num_threads=options.threads)) as encoder:
            if encoder.space_id != model.space_id:
                raise SpaceMismatchError(
                    f"bundle {bundle}",
                    model.space_id,
                    encoder.space_id,
                    "evaluate a bundle converted from --towers",
                )
            name = _name_bundle(encoder.manifest, set(systems))
            b_parts, b_notes, cos = [], [], {}
            for g in groups:
                usable = [n for n, q in enumerate(g.queries) if _supports(encoder, q)]
                if not usable:
                    b_notes.append(
                        f"not applicable to {g.kind} (the bundle takes {'+'.join(encoder.modalities)})"
                    )
                    continue
                qs = [g.queries[n] for n in usable]
                qv = np.stack(
                    [
                        encoder.embed(text=q.text or None, image=q.image, audio=q.audio, video=q.video).vector
                        for q in qs
                    ]
                )
                cos[g.kind] = (qv * float_q[g.kind][usable]).sum(axis=1).tolist()
                if len(usable) < len(g.queries):
                    b_notes.append(
                        f"{g.kind}: {len(g.queries) - len(usable)} queries need a modality it lacks"
                    )
                b_parts.append(rank_and_score(qv @ corpus_matrix(g).T, list(g.corpus), qs, name))
            report = merge_reports(name, b_parts)
            report = EvalReport(name, report.rows, report.products, tuple([*b_notes, *report.notes]))
            info = {
                "path": str(bundle),
                "profile": encoder.manifest.profile_name,
                "quantization": encoder.manifest.quantization,
                "modalities": list(encoder.modalities),
                "total_bytes": int(sum(s.bytes for s in encoder.manifest.models.values())),
            }
            systems[name] = _system_block("bundle", report, info)
            quantization[name] = {
                "kinds": {kind: _cos_stats(values) for kind, values in cos.items()},
                "samples": {kind: [round(v, 5) for v in values] for kind, values in cos.items()},
            }

    if options.bm25:
        text_groups = [g for g in groups if not g.hide_titles and any(q.text for q in g.queries)]
        if text_groups:
            bm = [bm25_baseline(products, list(g.queries), products_subset=g.corpus) for g in text_groups]
            report = merge_reports("bm25", bm, bm[0].info)
            extra = [f"not applicable to {g.kind} (titles hidden)" for g in groups if g.hide_titles]
            report = EvalReport(
                "bm25", report.rows, report.products, tuple([*report.notes, *extra]), report.info
            )
            systems["bm25"] = _system_block("bm25", report, dict(report.info))
    if peer is not None:
        image_groups = [g for g in groups if any(q.image is not None and not q.text for q in g.queries)]
        if not image_groups:
            notes.append("--peer given but there are no image queries")
        else:
            reports = [
                embedder_peer(
                    products,
                    peer,
                    [q for q in g.queries if q.image is not None and not q.text],
                    products_subset=g.corpus,
                    progress=progress,
                )
                for g in image_groups
            ]
            report = merge_reports(reports[0].system, reports, reports[0].info)
            systems[report.system] = _system_block("peer", report, {**report.info, "path": str(peer)})

    return {
        "format": "edgeshelf-benchmark",
        "schema_version": SCHEMA_VERSION,
        "benchmark": "quality",
        "created_utc": utc_now(),
        "command": list(command),
        "machine": machine_info(),
        "versions": package_versions(["edgeshelf", "numpy", "ai-edge-litert", "tensorflow-cpu", "bm25s"]),
        "settings": options.to_dict(),
        "catalogue": {
            "path": str(catalogue),
            "columns": columns,
            "products_evaluated": len(products),
            "protocol": proto,
        },
        "towers": {"path": str(towers_path), "space_id": model.space_id},
        "kinds": {
            g.kind: {"queries": len(g.queries), "corpus": len(g.corpus), "titles_hidden": g.hide_titles}
            for g in groups
        },
        "systems": systems,
        "quantization": quantization,
        "voice": voice_info,
        "notes": notes,
        "goals": [],
    }


def _system_block(kind: str, report: Any, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "info": {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool, list)) or v is None},
        "kinds": {r.kind: r.to_dict() for r in report.rows},
        "notes": list(report.notes),
    }


def format_report(doc: dict[str, Any]) -> str:
    """A Markdown table per kind and system, then the quantization cosines and the voice figures."""
    metrics = (
        ("recall_at_1", "R@1"),
        ("recall_at_10", "R@10"),
        ("mrr", "MRR"),
        ("ndcg_at_10", "nDCG@10"),
        ("p_at_5", "P@5"),
    )
    lines = [
        f"catalogue {doc['catalogue']['path']} ({doc['catalogue']['products_evaluated']} products evaluated"
        + (f", protocol {doc['catalogue']['protocol']['protocol']}" if doc["catalogue"]["protocol"] else "")
        + ")",
        "",
        "| kind | system | queries | " + " | ".join(label for _, label in metrics) + " |",
        "|---|---|---:|" + "---:|" * len(metrics),
    ]
    for kind in doc["kinds"]:
        for name, system in doc["systems"].items():
            row = system["kinds"].get(kind)
            if row is None:
                continue
            values = " | ".join(f"{row[m]:.3f}" for m, _ in metrics)
            lines.append(f"| {kind} | {name} | {row['queries']} | {values} |")
    if doc["quantization"]:
        lines += ["", "cosine(bundle query embedding, float query embedding): mean / p05 / min"]
        for name, q in doc["quantization"].items():
            cells = ", ".join(
                f"{k} {v['mean']:.4f}/{v['p05']:.4f}/{v['min']:.4f}" for k, v in q["kinds"].items()
            )
            lines.append(f"  {name}: {cells}")
    if doc["voice"]:
        v = doc["voice"]
        lines.append(
            f"\nvoice: {v['recognised']}/{v['spoken']} recognised, {v['exact_transcripts']} exact, "
            f"{v['engine']} with {v['grammar_phrases']} grammar phrases, mean RTF {v['mean_rtf']}"
        )
    for name, system in doc["systems"].items():
        for note in system["notes"]:
            lines.append(f"- {name}: {note}")
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


__all__ = ["QualityOptions", "format_report", "run_quality", "voice_group"]
