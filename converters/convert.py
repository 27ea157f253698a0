"""Towers -> a validated bundle for one device profile (issue 4).

:func:`convert` runs, in order: load the towers, the profile and the calibration catalogue; split
the catalogue's products (seeded) into calibration items and held-out items; rebuild the
profile's Keras sub-models at its input sizes; convert each to the requested mode (and to
float32 as the reference); assemble a float32 reference bundle and the candidate bundle in a
temporary folder and run both with the device's own :class:`~edgeshelf.sdk.encoder.QueryEncoder`;
measure the gate's figures (:mod:`edgeshelf.converters.validate`); then either write the bundle
atomically (with the figures in its manifest) or, when the gate fails, raise
:class:`GateFailedError` and write nothing (``force=True`` writes it, the failure recorded).

Example::

    report = convert("towers/", "speaker", "shop/", "bundles/speaker", quant="int8")
    print(report.validation.table(), report.size_bytes)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from edgeshelf.converters.bundle_writer import ArchiveFormat, assemble, library_versions, write_bundle
from edgeshelf.converters.profiles import Profile, load_profile
from edgeshelf.converters.quantize import (
    MODES,
    ConvertedModel,
    Engine,
    convert_model,
    profile_models,
    sample_inputs,
    tensor_specs,
)
from edgeshelf.converters.validate import (
    CosineStats,
    GateThresholds,
    RetrievalFigures,
    ValidationReport,
    judge,
    model_cosines,
    overall_metrics,
    top_k_overlap,
)
from edgeshelf.sdk.bundle import ModelSpec
from edgeshelf.sdk.errors import EdgeshelfError, InvalidInputError

MAX_LABELLED_QUERIES = 2000
INPUT_CONTRACT = {
    "text": "str -> int32 [max_tokens] hashed token ids (edgeshelf.sdk.preprocess.tokenize)",
    "image": "uint8 [H, W, 3] RGB -> shorter side resized, centre crop [S, S, 3]; model value = pixels / 255",
    "video": "uint8 [F, H, W, 3] RGB, F frames sampled evenly; image model per frame, then the video model",
    "audio": "float32 mono 16 kHz in [-1, 1] -> log-mel [frames, n_mels]",
}
_CATALOGUE_CACHE: dict[str, np.ndarray] = {}


class GateFailedError(EdgeshelfError, ValueError):
    """The quantized bundle failed the validation gate; nothing was written. ``report`` holds
    the figures (a :class:`ConversionReport` with ``written == False``)."""

    def __init__(self, message: str, report: ConversionReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, repr=False)
class ConversionReport:
    """What :func:`convert` did: where the bundle went, its models and size, the gate's
    figures, and how long each stage took (seconds)."""

    out: Path
    archive: Path | None
    written: bool
    forced: bool
    profile: str
    quantization: str
    space_id: str
    models: dict[str, dict[str, Any]]
    size_bytes: int
    validation: ValidationReport
    timings: dict[str, float]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.validation.passed

    @property
    def seconds(self) -> float:
        return float(sum(self.timings.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "archive": str(self.archive) if self.archive else None,
            "written": self.written,
            "forced": self.forced,
            "passed": self.passed,
            "profile": self.profile,
            "quantization": self.quantization,
            "space_id": self.space_id,
            "models": self.models,
            "size_bytes": self.size_bytes,
            "validation": self.validation.to_dict(),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """The model sizes and the gate table, as ``edgeshelf convert`` prints them."""
        lines = [
            f"profile {self.profile}, quantization {self.quantization}, space {self.space_id}",
        ]
        for role, m in self.models.items():
            left = f", {len(m['float_tensors'])} float tensors left" if m.get("float_tensors") else ""
            lines.append(f"  {role:<15} {m['bytes'] / 1e3:9.1f} kB  {m['engine']}{left}")
        lines.append(f"  {'total':<15} {self.size_bytes / 1e3:9.1f} kB")
        lines.append(self.validation.table())
        for note in self.notes:
            lines.append(f"note: {note}")
        state = "written" if self.written else "NOT written"
        forced = " (forced past the gate)" if self.forced else ""
        lines.append(f"bundle {state}{forced}: {self.out}" + (f" (+ {self.archive})" if self.archive else ""))
        lines.append(
            f"took {self.seconds:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()) + ")"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else ("forced" if self.forced else "failed")
        return (
            f"ConversionReport({self.profile}/{self.quantization}, {self.size_bytes / 1e6:.2f} MB, "
            f"{verdict}, {self.out})"
        )


@dataclass(frozen=True)
class _Query:
    """A query for validation (labelled, or made from a held-out product); ``corpus`` is
    ``"full"`` (products with every modality) or ``"image_only"`` (titles hidden)."""

    id: str
    kind: str
    inputs: dict[str, Any]
    relevant: dict[str, int]
    exclude: tuple[str, ...] = ()
    corpus: str = "full"


# --------------------------------------------------------------------------------------------
# helpers


def _load_towers(towers: Any) -> Any:
    from edgeshelf.towers.model import Towers

    if isinstance(towers, Towers):
        return towers
    return Towers.load(towers)


def _load_catalogue(calibration: Any, columns: str | None, queries: str | os.PathLike[str] | None) -> Any:
    if hasattr(calibration, "products"):
        return calibration
    from edgeshelf.catalogue.products import load_catalogue

    return load_catalogue(calibration, columns=columns, queries=queries)


def _pick(items: Sequence[Any], count: int, rng: np.random.Generator) -> list[Any]:
    if len(items) <= count:
        return list(items)
    return [items[i] for i in sorted(rng.choice(len(items), count, replace=False))]


def _split(n: int, calibration_count: int, heldout_count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n < 2:
        raise InvalidInputError(f"the calibration catalogue needs at least 2 products, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    if n >= calibration_count + heldout_count:
        return order[:calibration_count], order[calibration_count : calibration_count + heldout_count]
    cal = max(1, min(n - 1, round(n * calibration_count / (calibration_count + heldout_count))))
    return order[:cal], order[cal:]


def _usable_inputs(query: Any, modalities: Sequence[str]) -> dict[str, Any] | None:
    """A labelled query's inputs when the profile can take all of them (voice -> its text)."""
    inputs = {"text": query.text, "image": query.image, "video": query.video, "audio": query.audio}
    if query.kind == "voice":
        # speech reaches the bundle as ASR text; the audio tower is for non-speech sounds
        if not query.text:
            return None
        inputs["audio"] = None
    present = {k: v for k, v in inputs.items() if v is not None and (k != "text" or str(v).strip())}
    if not present or any(k not in modalities for k in present):
        return None
    return present


def _corpus_of(query: Any) -> str:
    meta = getattr(query, "meta", None) or {}
    return "image_only" if meta.get("corpus") == "image_only" or query.kind == "text_to_image" else "full"


def _heldout_queries(products: Sequence[Any], profile: Profile, seed: int) -> list[_Query]:
    """One query per held-out product from what it has: a query-like text, its image, video
    or audio (a single modality mostly, all of them sometimes); relevant: the product."""
    from edgeshelf.converters.quantize import _texts_for

    rng = np.random.default_rng(seed + 7)
    texts = _texts_for(products, rng)
    out = []
    for p, text in zip(products, texts):
        available = {
            "text": text if text.strip() else None,
            "image": p.image,
            "video": p.video,
            "audio": p.audio,
        }
        present = [m for m in profile.modalities if available.get(m) is not None]
        if not present:
            continue
        chosen = present if rng.random() < 0.3 else [present[int(rng.integers(0, len(present)))]]
        out.append(
            _Query(
                id=f"heldout-{p.id}",
                kind="heldout-" + "+".join(chosen),
                inputs={m: available[m] for m in chosen},
                relevant={p.id: 1},
            )
        )
    return out


def _corpus_vectors(towers: Any, products: Sequence[Any], image_only: bool, progress: bool) -> np.ndarray:
    """Host (Keras) embeddings of ``products``, as the catalogue room indexes them (cached)."""
    key = hashlib.sha256(
        (
            towers.space_id + f"|{image_only}|" + "|".join(f"{p.id}:{p.title}:{p.image}" for p in products)
        ).encode()
    ).hexdigest()
    if key not in _CATALOGUE_CACHE:
        while len(_CATALOGUE_CACHE) >= 4:
            _CATALOGUE_CACHE.pop(next(iter(_CATALOGUE_CACHE)))
        _CATALOGUE_CACHE[key] = towers.embed_products(
            list(products), progress=progress, hide_titles=image_only
        )
    return _CATALOGUE_CACHE[key]


def _embed_queries(encoder: Any, queries: Sequence[_Query]) -> np.ndarray:
    out = np.zeros((len(queries), encoder.dim), np.float32)
    for i, q in enumerate(queries):
        out[i] = encoder.embed(**q.inputs).vector
    return out


def _host_queries(towers: Any, queries: Sequence[_Query]) -> np.ndarray:
    if not queries:
        return np.zeros((0, towers.config.dim), np.float32)

    def column(name: str) -> list[Any]:
        return [q.inputs.get(name) for q in queries]

    return towers.embed(
        texts=column("text"), images=column("image"), videos=column("video"), audios=column("audio")
    )


def _retrieval(
    towers: Any,
    corpora: dict[str, list[Any]],
    queries: list[_Query],
    scored: list[_Query],
    fq: np.ndarray,
    qq: np.ndarray,
    labels: str,
    progress: bool,
    query_adapter: Any = None,
) -> RetrievalFigures:
    """Top-10 overlap over ``queries`` and recall/nDCG of the ``scored`` ones (the first
    ``len(scored)`` rows of ``fq`` / ``qq``), each against its own corpus."""
    host = _host_queries(towers, scored)
    plain = None  # the towers without the adapter, to measure what the adapter costs
    if query_adapter is not None and len(host):
        from edgeshelf.towers.federated import apply_adapter

        plain, host = host, apply_adapter(query_adapter.weights, host)
    overlaps: list[float] = []
    sums = {"f": [0.0, 0.0], "q": [0.0, 0.0], "h": [0.0, 0.0], "t": [0.0, 0.0]}
    n_scored = 0
    for name, products in corpora.items():
        rows = [i for i, q in enumerate(queries) if q.corpus == name]
        if not rows or not products:
            continue
        vectors = _corpus_vectors(towers, products, name == "image_only", progress)
        ids = [p.id for p in products]
        overlap = top_k_overlap(fq[rows], qq[rows], vectors, 10)
        overlaps.extend([overlap] * len(rows))
        srows = [i for i in rows if i < len(scored)]
        if not srows:
            continue
        subset = [scored[i] for i in srows]
        sets = [("f", fq[srows]), ("q", qq[srows]), ("h", host[srows])]
        if plain is not None:
            sets.append(("t", plain[srows]))
        for tag, vecs in sets:
            recall, ndcg = overall_metrics(vecs @ vectors.T, ids, subset)
            sums[tag][0] += recall * len(srows)
            sums[tag][1] += ndcg * len(srows)
        n_scored += len(srows)
    kinds: dict[str, int] = {}
    for q in scored:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    mean = {tag: [v / n_scored if n_scored else float("nan") for v in pair] for tag, pair in sums.items()}
    return RetrievalFigures(
        products=sum(len(p) for p in corpora.values()),
        overlap_queries=len(overlaps),
        labelled_queries=n_scored,
        labels=labels,
        top10_overlap=float(np.mean(overlaps)) if overlaps else float("nan"),
        recall_at_10_float=mean["f"][0],
        recall_at_10_quant=mean["q"][0],
        ndcg_at_10_float=mean["f"][1],
        ndcg_at_10_quant=mean["q"][1],
        recall_at_10_host=mean["h"][0],
        ndcg_at_10_host=mean["h"][1],
        kinds=kinds,
        recall_at_10_towers=mean["t"][0] if plain is not None else float("nan"),
        ndcg_at_10_towers=mean["t"][1] if plain is not None else float("nan"),
    )


def _adapter_feeds(fusion: Any, adapter: Any, inputs: Any) -> list[dict[str, np.ndarray]]:
    """The adapter's feeds: the float fusion tower's (normalised) outputs on the fusion feeds."""
    rows = inputs.feeds["fusion"]
    if not rows:
        return []
    batch = {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}
    vectors = np.asarray(fusion.predict(batch, verbose=0, batch_size=256), np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    name = adapter.inputs[0].name
    return [{name: vectors[i : i + 1]} for i in range(len(vectors))]


def _adapter_info(query_adapter: Any) -> dict[str, Any]:
    return {
        "source": query_adapter.source,
        "space_id": query_adapter.space_id,
        "parameters": int(query_adapter.kernel.size + query_adapter.bias.size),
        "formula": "normalize(q + q W + b) after the fusion tower",
        "training": query_adapter.meta,
    }


def _backbone_file(towers: Any) -> tuple[bytes, ModelSpec] | None:
    if towers.backbone_path is None:
        return None
    data = Path(towers.backbone_path).read_bytes()
    inputs, outputs = tensor_specs(data)
    spec = ModelSpec(
        role="image_backbone",
        file="image_backbone.tflite",
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        quantization="as-given",
        inputs=inputs,
        outputs=outputs,
        engine="as-given",
    )
    return data, spec


# --------------------------------------------------------------------------------------------
# convert


def convert(
    towers: Any,
    profile: str | os.PathLike[str] | Profile,
    calibration: Any,
    out: str | os.PathLike[str],
    quant: str | None = None,
    force: bool = False,
    *,
    calibration_count: int = 200,
    heldout_count: int = 200,
    seed: int = 0,
    thresholds: GateThresholds | None = None,
    archive: ArchiveFormat | None = None,
    columns: str | None = None,
    queries: str | os.PathLike[str] | None = None,
    protocol: Literal["fashion"] | None = None,
    protocol_seed: int = 0,
    engine: Engine = "auto",
    calibration_data: Literal["catalogue", "zeros"] = "catalogue",
    num_threads: int = 2,
    progress: bool = False,
    adapter: str | os.PathLike[str] | None = None,
) -> ConversionReport:
    """Convert ``towers`` (a folder from ``edgeshelf train`` or a :class:`Towers`) for ``profile``
    (a built-in name, a profile file, or a :class:`Profile`) into the bundle folder ``out``.

    ``calibration``: a catalogue (path or loaded :class:`Catalogue`; ``columns`` maps a foreign
    file, ``queries`` names a labelled-queries file). ``calibration_count`` products calibrate and
    ``heldout_count`` others validate (seeded by ``seed``). With ``protocol="fashion"`` the
    calibration items come from the protocol's train split, the held-out items and the labelled
    queries (clean, noisy, image, text-to-image) from its test split (``protocol_seed``), each
    query answered from the protocol's corpus. ``quant`` overrides the profile's mode (``int8``,
    ``float16``, ``dynamic``, ``float32``); ``engine`` picks the quantizer (see
    :mod:`~edgeshelf.converters.quantize`). ``thresholds`` default to :class:`GateThresholds`
    with the profile's ``gate`` overrides. ``archive``: also write ``out.tar.gz`` / ``out.zip``.
    ``calibration_data="zeros"`` calibrates on all-zero inputs (a deliberately broken
    quantization, to check the gate). ``num_threads``: interpreter threads for validation.
    ``adapter``: a federated query adapter (``edgeshelf federated simulate --out``, trained on
    these towers) to ship after the fusion tower; it is quantized like the other models and the
    gate measures the bundle with it (host reference: the towers plus the float adapter).

    Raises :class:`GateFailedError` (nothing written) when the gate fails and not ``force``.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prof = load_profile(profile).with_quantization(quant)
    if prof.quantization not in MODES:
        raise InvalidInputError(f"unknown quantization {prof.quantization!r}; expected one of {list(MODES)}")
    if calibration_data not in ("catalogue", "zeros"):
        raise InvalidInputError(f"calibration_data must be 'catalogue' or 'zeros', got {calibration_data!r}")
    if calibration_count < 1 or heldout_count < 1:
        raise InvalidInputError(
            f"calibration_count and heldout_count must be >= 1, got {calibration_count}, {heldout_count}"
        )
    if protocol not in (None, "fashion"):
        raise InvalidInputError(f"unknown protocol {protocol!r}; expected 'fashion' or none")
    gate = thresholds if thresholds is not None else GateThresholds().updated(prof.gate)
    model = _load_towers(towers)
    catalogue = _load_catalogue(calibration, columns, queries)
    products = list(catalogue.products)
    notes: list[str] = []
    labelled_source: list[Any] = list(getattr(catalogue, "queries", ()) or ())
    if protocol == "fashion":
        from edgeshelf.catalogue.protocol import fashion_protocol

        proto = fashion_protocol(catalogue, seed=protocol_seed)
        rng = np.random.default_rng(seed)
        cal_products = _pick(proto.train_products(catalogue), calibration_count, rng)
        test_products = proto.test_products(catalogue)
        held_products = _pick(test_products, heldout_count, rng)
        hidden = set(proto.hidden_title_ids)
        corpora = {"full": test_products, "image_only": [p for p in test_products if p.id in hidden]}
        labelled_source = list(proto.all_queries())
        notes.append(
            f"fashion protocol (seed {protocol_seed}): calibration from its {len(proto.train_ids)} train "
            f"products, validation on its {len(proto.test_ids)} test products"
        )
    else:
        cal_idx, held_idx = _split(len(products), calibration_count, heldout_count, seed)
        cal_products = [products[i] for i in cal_idx]
        held_products = [products[i] for i in held_idx]
        corpora = {"full": products, "image_only": [p for p in products if p.image is not None]}
    if model.backbone_path is not None and prof.image_size is not None:
        notes.append(f"image_size {prof.image_size} ignored: the image tower runs a fixed-size backbone")
    keras_models = profile_models(model, prof)
    roles = tuple(prof.models)
    query_adapter = None
    if adapter is not None:
        from edgeshelf.towers.federated import adapter_keras_model, load_adapter

        query_adapter = load_adapter(adapter, space_id=model.space_id, dim=model.config.dim)
        keras_models["adapter"] = adapter_keras_model(query_adapter.weights)
        roles = (*roles, "adapter")
        notes.append(
            f"query adapter from {query_adapter.source} ({query_adapter.kernel.size + query_adapter.bias.size} "
            "parameters) runs after the fusion tower"
        )
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    calib = sample_inputs(
        model, keras_models, prof, cal_products, seed=seed, zeros=calibration_data == "zeros"
    )
    held = sample_inputs(model, keras_models, prof, held_products, seed=seed + 1, pin_range=False)
    if query_adapter is not None:
        for inputs in (calib, held):
            inputs.feeds["adapter"] = _adapter_feeds(keras_models["fusion"], keras_models["adapter"], inputs)
    notes.extend(calib.notes)
    timings["calibration"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from tqdm import tqdm

    quantized: dict[str, ConvertedModel] = {}
    reference: dict[str, ConvertedModel] = {}
    desc = f"converting {prof.name}/{prof.quantization}"
    for role in tqdm(roles, desc=desc, unit="model", disable=not progress):
        km = keras_models[role]
        reference[role] = convert_model(role, km, "float32")
        if prof.quantization == "float32":
            quantized[role] = reference[role]
        else:
            quantized[role] = convert_model(
                role,
                km,
                prof.quantization,
                calib.representative(role),
                engine=engine,
                pixel_input=role == "image" and model.backbone_path is None,
            )
    backbone = _backbone_file(model) if "image" in prof.models else None
    timings["convert"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pre = prof.preprocess_for(model.config.preprocess)
    common = {
        "profile": prof.to_dict(),
        "space_id": model.space_id,
        "dim": model.config.dim,
        "modalities": prof.modalities,
        "preprocess": pre.to_dict(),
        "runtime": {
            "num_threads": prof.threads,
            "xnnpack": True,
            "interpreters": ["ai_edge_litert", "tflite_runtime", "tensorflow.lite"],
            "input_contract": INPUT_CONTRACT,
            **({"query_adapter": _adapter_info(query_adapter)} if query_adapter is not None else {}),
        },
        "extra_files": {"image_backbone": backbone} if backbone is not None else {},
    }
    calibration_info = {
        "catalogue": str(getattr(catalogue, "source", "") or getattr(catalogue, "root", "")),
        "protocol": protocol,
        "products": len(products),
        "calibration_items": len(cal_products),
        "heldout_items": len(held_products),
        "seed": seed,
        "data": calibration_data,
        "engine": engine,
        "notes": list(calib.notes),
    }
    ref_manifest, ref_files = assemble(reference, quantization="float32", **common)
    manifest, files = assemble(
        quantized, quantization=prof.quantization, calibration=calibration_info, **common
    )
    size = sum(len(files[spec.file]) for spec in manifest.models.values())

    # queries: the labelled ones the profile can take, then one per held-out product
    labelled: list[_Query] = []
    skipped = 0
    for q in labelled_source:
        inputs = _usable_inputs(q, prof.modalities)
        if inputs is None:
            skipped += 1
            continue
        labelled.append(_Query(q.id, q.kind, inputs, dict(q.relevant), tuple(q.exclude or ()), _corpus_of(q)))
    if len(labelled) > MAX_LABELLED_QUERIES:
        labelled = _pick(labelled, MAX_LABELLED_QUERIES, np.random.default_rng(seed + 3))
        notes.append(f"labelled queries sampled down to {MAX_LABELLED_QUERIES}")
    if skipped:
        notes.append(
            f"{skipped} labelled queries skipped: they need modalities the {prof.name} profile lacks"
        )
    heldout_q = _heldout_queries(held_products, prof, seed)
    if labelled:
        scored, labels = labelled, "labelled queries"
    else:
        scored, labels = heldout_q, "held-out product queries"
        notes.append(
            "no labelled queries usable for this profile: recall/nDCG use held-out products' own "
            "text/media as single-answer queries"
        )
    all_queries = scored + [q for q in heldout_q if scored is not heldout_q]

    from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder

    with tempfile.TemporaryDirectory(prefix="edgeshelf-validate-") as tmp:
        ref_dir, _ = write_bundle(Path(tmp) / "float32", ref_manifest, ref_files)
        cand_dir, _ = write_bundle(Path(tmp) / "candidate", manifest, files)
        options = EncoderOptions(num_threads=num_threads, verify=False)
        with QueryEncoder.open(ref_dir, options) as f_enc, QueryEncoder.open(cand_dir, options) as q_enc:
            models_cos = model_cosines(f_enc, q_enc, held.feeds)
            fq = _embed_queries(f_enc, all_queries)
            qq = _embed_queries(q_enc, all_queries)
    query_cos = CosineStats.of(fq, qq)
    retrieval = (
        _retrieval(model, corpora, all_queries, scored, fq, qq, labels, progress, query_adapter)
        if all_queries
        else None
    )
    float_ops = {role: c.float_report.float_ops for role, c in quantized.items()}
    report = judge(
        prof.quantization, models_cos, query_cos, retrieval, float_ops, size, prof.size_budget_mb, gate, notes
    )
    timings["validate"] = time.perf_counter() - t0

    model_info = {
        role: {
            "bytes": len(c.data),
            "engine": c.engine,
            "seconds": round(c.seconds, 3),
            "float_tensors": [t.to_dict() for t in c.float_report.tensors]
            if prof.quantization != "float32"
            else [],
            "float_ops": list(c.float_report.float_ops),
        }
        for role, c in quantized.items()
    }
    if backbone is not None:
        model_info["image_backbone"] = {
            "bytes": backbone[1].bytes,
            "engine": "as-given",
            "float_tensors": [],
            "float_ops": [],
        }
    target = Path(out)
    if not report.passed and not force:
        failed = ConversionReport(
            target, None, False, False, prof.name, prof.quantization, model.space_id, model_info, size,
            report, timings, tuple(notes),
        )  # fmt: skip
        raise GateFailedError(
            f"the {prof.name}/{prof.quantization} bundle failed the validation gate "
            f"({'; '.join(report.failures)}); nothing was written to {target}. "
            + (
                "Train the adapter with a larger --weight-decay or fewer --rounds"
                if any("query adapter" in f for f in report.failures)
                else "Check the calibration catalogue or try another --quant"
            )
            + "; --force writes it with the failure recorded",
            failed,
        )
    t0 = time.perf_counter()
    forced = bool(force and not report.passed)
    final, final_files = assemble(
        quantized,
        quantization=prof.quantization,
        calibration=calibration_info,
        validation={**report.to_dict(), "forced": forced},
        versions=library_versions(),
        **common,
    )
    folder, archive_file = write_bundle(target, final, final_files, archive=archive)
    timings["write"] = time.perf_counter() - t0
    return ConversionReport(
        folder, archive_file, True, forced, prof.name, prof.quantization, model.space_id, model_info, size,
        report, timings, tuple(notes),
    )  # fmt: skip


__all__ = ["ConversionReport", "GateFailedError", "convert"]
