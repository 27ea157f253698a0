"""Keras sub-model -> ``.tflite`` bytes in one quantization mode, with representative data.

Modes and the path each takes (figures measured on the fashion towers, TF 2.21,
ai-edge-quantizer 0.10; see ``converters/RESULTS.md``):

* ``float32``: ``tf.lite.TFLiteConverter`` (the only path), TFLite builtin ops only.
* ``float16``: the converter with ``supported_types=[float16]``: float16 weights dequantized at
  load (half the size), the format GPU delegates consume directly.
* ``dynamic``: the converter's dynamic-range quantization (int8 weights, float activations
  quantized on the fly). It quantizes the text tower's embedding table (a ``GATHER``), which
  ai-edge-quantizer's dynamic recipe (``dynamic_wi8_afp32``) leaves in float: a 1.97 MB speaker
  bundle against 6.68 MB, for the same accuracy.
* ``int8``: the converter's full-integer post-training quantization (``TFLITE_BUILTINS_INT8``
  only, so nothing can fall back to float silently; per-channel weights; int8 activations; int8
  outputs; uint8 image input with scale 1/255 and zero point 0, so the device copies camera
  pixels in unchanged). Against ai-edge-quantizer's ``static_wi8_ai8`` on the same calibration
  data it keeps the outputs closer to float (cosine mean text 0.9998 vs 0.9967, fusion 0.9993 vs
  0.9825; top-10 overlap of the speaker bundle 0.977 vs 0.936) and keeps everything in int8,
  where ai-edge-quantizer leaves float islands (e.g. ``DEQUANTIZE -> L2_NORMALIZATION ->
  QUANTIZE`` in the fusion tower).

``engine="aeq"`` runs ai-edge-quantizer instead (``dynamic_wi8_afp32`` for ``dynamic``,
``static_wi8_ai8`` for ``int8``, ``dynamic_wi4_afp32`` for ``int4``: int4 weights of the fully
connected and convolution layers, embedding tables left float), for comparison and for models
where it serves better; ``engine="auto"`` picks the converter for every mode for the reasons
above (``int4`` exists only through ai-edge-quantizer).

Representative data (:func:`sample_inputs`) come from catalogue items through
:meth:`Towers.prepare` with the profile's input sizes: product texts and query-like shortenings
of them; product images as ``pixels / 255`` plus one black-and-white frame that pins the image
input range to exactly [0, 1]; video clips and audio clips, filled up to 16 (or half the items)
with clips of jittered product images and seeded synthetic tones, chirps and noise when the
catalogue has fewer; and for the fusion tower, the float encoders' outputs on those items under
realistic presence masks (single modalities, the full set, random subsets), absent inputs zeroed.

:func:`float_tensors_report` lists every tensor left in float in a model, and the ops that
compute in float (``QUANTIZE``/``DEQUANTIZE``/``CAST`` conversions excluded).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from edgeshelf.sdk.bundle import ModelSpec, TensorSpec
from edgeshelf.sdk.errors import EdgeshelfError, InvalidInputError

QuantMode = Literal["int8", "float16", "dynamic", "float32", "int4"]
Engine = Literal["auto", "converter", "aeq"]
MODES: tuple[str, ...] = ("int8", "float16", "dynamic", "float32")
AEQ_RECIPES = {"dynamic": "dynamic_wi8_afp32", "int8": "static_wi8_ai8", "int4": "dynamic_wi4_afp32"}
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE", "CAST")
_FLOAT_DTYPES = ("float32", "float16", "float64")
MIN_MEDIA_ITEMS = 16  # fewer video / audio items than this (or half the items) are padded


class ConversionError(EdgeshelfError, RuntimeError):
    """A sub-model could not be converted or quantized (the converter's message is included)."""


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _quiet() -> Iterator[list[str]]:
    """Silence the converter's C++ and Python chatter (fd 1 and 2); yields a list that receives
    the captured text when the block raises, for the error message."""
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tf.lite.Interpreter deprecation, inside calibration
                    yield captured
            except BaseException:
                sys.stdout.flush()
                sys.stderr.flush()
                sink.seek(0)
                captured.append(sink.read().decode("utf-8", "replace")[-2000:])
                raise
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# --------------------------------------------------------------------------------------------
# the float-tensor report


@dataclass(frozen=True)
class FloatTensor:
    """A tensor left in float: its name, dtype, shape, producing op (``"input"`` /
    ``"constant"`` when none) and consuming ops."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    producer: str
    consumers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "producer": self.producer,
            "consumers": list(self.consumers),
        }


@dataclass(frozen=True)
class FloatReport:
    """Every float tensor of a model and the ops that compute in float (``"OP#index"``)."""

    tensors: tuple[FloatTensor, ...]
    float_ops: tuple[str, ...]
    ops: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_tensors": [t.to_dict() for t in self.tensors],
            "float_ops": list(self.float_ops),
            "ops": list(self.ops),
        }

    def __repr__(self) -> str:
        return f"FloatReport({len(self.tensors)} float tensors, float ops {list(self.float_ops) or 'none'})"


def _analysis_interpreter(tflite_bytes: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=bytes(tflite_bytes),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )


def float_tensors_report(tflite_bytes: bytes) -> FloatReport:
    """List every float tensor of a ``.tflite`` model (main subgraph) and every op computing
    in float. Runs LiteRT without delegates so the ops are the model's own."""
    interpreter = _analysis_interpreter(tflite_bytes)
    tensors = {int(t["index"]): t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    producer: dict[int, str] = {}
    consumers: dict[int, list[str]] = {}
    float_ops: list[str] = []
    names: list[str] = []
    for op in ops:
        label = f"{op['op_name']}#{op['index']}"
        names.append(op["op_name"])
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        outs = [int(i) for i in op["outputs"] if int(i) >= 0]
        for i in outs:
            producer[i] = label
        for i in ins:
            consumers.setdefault(i, []).append(label)
        touched = [np.dtype(tensors[i]["dtype"]).name for i in ins + outs if i in tensors]
        if op["op_name"] not in _CONVERSION_OPS and any(d in _FLOAT_DTYPES for d in touched):
            float_ops.append(label)
    inputs = {int(d["index"]) for d in interpreter.get_input_details()}
    found = []
    for index, detail in sorted(tensors.items()):
        dtype = np.dtype(detail["dtype"]).name
        if dtype not in _FLOAT_DTYPES:
            continue
        source = producer.get(index, "input" if index in inputs else "constant")
        if source == "constant" and index not in consumers:
            continue
        found.append(
            FloatTensor(
                name=str(detail["name"]),
                dtype=dtype,
                shape=tuple(int(v) for v in detail["shape"]),
                producer=source,
                consumers=tuple(consumers.get(index, ())),
            )
        )
    return FloatReport(tuple(found), tuple(float_ops), tuple(names))


def tensor_specs(tflite_bytes: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output :class:`TensorSpec` of a model (signature names, batch 1)."""
    from edgeshelf.sdk.litert import specs_from_interpreter

    interpreter = _analysis_interpreter(tflite_bytes)
    interpreter.allocate_tensors()
    return specs_from_interpreter(interpreter)


# --------------------------------------------------------------------------------------------
# sub-models at the profile's input sizes


def profile_models(towers: Any, profile: Any) -> dict[str, Any]:
    """The Keras sub-models a profile needs, rebuilt at its input sizes with the towers' weights.

    Input sizes only change tensor shapes (the encoders pool over tokens, pixels, frames and
    time), so the weights transfer unchanged; models at the towers' own sizes are reused as is.
    """
    from edgeshelf.towers import model as tm

    config = towers.config
    pre = profile.preprocess_for(config.preprocess)
    cfg = replace(config, preprocess=pre)
    out: dict[str, Any] = {}
    for role in profile.models:
        source = towers.models[role]
        if role == "text" and pre.text != config.preprocess.text:
            rebuilt = tm.build_text_encoder(cfg)
        elif role == "image" and not config.image_backbone and pre.image.size != config.preprocess.image.size:
            rebuilt = tm.build_image_encoder(config, size=pre.image.size)
        elif role == "audio" and pre.audio != config.preprocess.audio:
            rebuilt = tm.build_audio_encoder(cfg)
        elif role == "video" and pre.video != config.preprocess.video:
            rebuilt = tm.build_video_encoder(cfg)
        else:
            out[role] = source
            continue
        rebuilt.set_weights(source.get_weights())
        out[role] = rebuilt
    return out


def _weights_digest(model: Any) -> str:
    digest = hashlib.sha256()
    for spec in model.inputs:
        digest.update(f"{spec.name}{tuple(spec.shape)}{spec.dtype}".encode())
    for w in model.get_weights():
        arr = np.ascontiguousarray(w)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# conversion


@dataclass(frozen=True)
class ConvertedModel:
    """One converted sub-model: ``data`` (the ``.tflite`` bytes) and what describes it."""

    role: str
    data: bytes
    quantization: str
    engine: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    float_report: FloatReport
    seconds: float

    def spec(self, file: str) -> ModelSpec:
        return ModelSpec(
            role=self.role,
            file=file,
            sha256=hashlib.sha256(self.data).hexdigest(),
            bytes=len(self.data),
            quantization=self.quantization,
            inputs=self.inputs,
            outputs=self.outputs,
            engine=self.engine,
            float_tensors=self.float_report.names if self.quantization == "int8" else (),
        )

    def __repr__(self) -> str:
        return f"ConvertedModel({self.role}, {self.quantization}/{self.engine}, {len(self.data)} bytes)"


Representative = Callable[[], Iterator[dict[str, np.ndarray]]]
_FLOAT32_CACHE: dict[str, bytes] = {}
_EXPORTS: dict[str, Path] = {}
_EXPORT_ROOT: list[Path] = []
_CACHE_LIMIT = 24


def _export_root() -> Path:
    if not _EXPORT_ROOT:
        root = Path(tempfile.mkdtemp(prefix="edgeshelf-savedmodels-"))
        atexit.register(shutil.rmtree, root, True)
        _EXPORT_ROOT.append(root)
    return _EXPORT_ROOT[0]


def _saved_model(model: Any, role: str, key: str) -> Path:
    """The model exported as a SavedModel (once per process and weights digest)."""
    if key not in _EXPORTS:
        path = _export_root() / f"{role}-{key[:16]}"
        try:
            with _quiet() as captured:
                model.export(str(path), format="tf_saved_model", verbose=False)
        except Exception as exc:
            raise ConversionError(
                f"{role}: SavedModel export failed: {exc} {''.join(captured)[-500:]}"
            ) from exc
        _EXPORTS[key] = path
        while len(_EXPORTS) > _CACHE_LIMIT:
            shutil.rmtree(_EXPORTS.pop(next(iter(_EXPORTS))), ignore_errors=True)
    return _EXPORTS[key]


def convert_model(
    role: str,
    model: Any,
    mode: str,
    representative: Representative | None = None,
    engine: Engine = "auto",
    pixel_input: bool = False,
) -> ConvertedModel:
    """Convert one Keras sub-model in ``mode``; ``representative`` yields feed dicts (int8 and
    ai-edge-quantizer static); ``pixel_input``: the one input is an image in [0, 1] (uint8 in int8).

    The SavedModel export and the float32 conversion are cached in-process by a digest of the
    weights and input shapes, so the float reference of a model is converted once however many
    modes or profiles use it.
    """
    if mode not in (*MODES, "int4"):
        raise InvalidInputError(f"unknown quantization {mode!r}; expected one of {list(MODES)}")
    if engine not in ("auto", "converter", "aeq"):
        raise InvalidInputError(f"unknown engine {engine!r}; expected auto, converter or aeq")
    use_aeq = (engine == "aeq" and mode != "float32") or mode == "int4"
    if use_aeq and mode not in AEQ_RECIPES:
        raise InvalidInputError(f"ai-edge-quantizer has no recipe for {mode!r} here; use engine='converter'")
    if mode == "int8" and representative is None:
        raise InvalidInputError(f"{role}: int8 quantization needs representative data")
    t0 = time.perf_counter()
    key = _weights_digest(model)
    if use_aeq:
        data = _aeq(role, model, key, mode, representative)
        engine_name = f"ai-edge-quantizer:{AEQ_RECIPES[mode]}"
    elif mode == "float32":
        data = float32_bytes(role, model, key)
        engine_name = "tflite-converter"
    else:
        data = _converter(role, model, key, mode, representative, pixel_input)
        engine_name = "tflite-converter"
    inputs, outputs = tensor_specs(data)
    report = float_tensors_report(data)
    return ConvertedModel(role, data, mode, engine_name, inputs, outputs, report, time.perf_counter() - t0)


def float32_bytes(role: str, model: Any, key: str | None = None) -> bytes:
    """The float32 ``.tflite`` of ``model`` (cached in-process)."""
    key = key or _weights_digest(model)
    if key not in _FLOAT32_CACHE:
        _FLOAT32_CACHE[key] = _converter(role, model, key, "float32", None, False)
        while len(_FLOAT32_CACHE) > _CACHE_LIMIT:
            _FLOAT32_CACHE.pop(next(iter(_FLOAT32_CACHE)))
    return _FLOAT32_CACHE[key]


def _converter(
    role: str, model: Any, key: str, mode: str, representative: Representative | None, pixel_input: bool
) -> bytes:
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(_saved_model(model, role, key)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        float_inputs = [i for i in model.inputs if str(i.dtype).endswith("float32")]
        if float_inputs:
            converter.inference_input_type = tf.uint8 if pixel_input else tf.int8
        converter.inference_output_type = tf.int8
    try:
        with _quiet() as captured:
            return bytes(converter.convert())
    except Exception as exc:
        tail = " ".join("".join(captured).split())[-600:]
        raise ConversionError(
            f"converting the {role} model to TFLite ({mode}) failed: {exc}. {tail}".strip()
        ) from exc


def _aeq(role: str, model: Any, key: str, mode: str, representative: Representative | None) -> bytes:
    from edgeshelf.sdk.errors import require

    quantizer_mod = require("ai_edge_quantizer.quantizer", "host")
    recipe_mod = require("ai_edge_quantizer.recipe", "host")
    float_model = float32_bytes(role, model, key)
    try:
        with _quiet() as captured:
            quantizer = quantizer_mod.Quantizer(
                bytearray(float_model), getattr(recipe_mod, AEQ_RECIPES[mode])()
            )
            calibration = None
            if quantizer.need_calibration:
                if representative is None:
                    raise InvalidInputError(f"{role}: {mode} with ai-edge-quantizer needs calibration data")
                calibration = quantizer.calibrate({"serving_default": list(representative())}, num_threads=2)
            result = quantizer.quantize(calibration, enable_progress_report=False)
    except InvalidInputError:
        raise
    except Exception as exc:
        tail = " ".join("".join(captured).split())[-600:]
        raise ConversionError(
            f"ai-edge-quantizer ({AEQ_RECIPES[mode]}) failed on the {role} model: {exc}. {tail}"
        ) from exc
    return bytes(result.quantized_model)


# --------------------------------------------------------------------------------------------
# representative / held-out inputs


@dataclass
class ModelInputs:
    """Per-model feed dicts (batch 1, real values) for ``count`` catalogue items, and notes on
    what was synthesised. ``fusion`` feeds carry the float encoders' outputs and a mask."""

    feeds: dict[str, list[dict[str, np.ndarray]]]
    notes: list[str] = field(default_factory=list)
    items: int = 0

    def representative(self, role: str) -> Representative:
        rows = self.feeds[role]

        def gen() -> Iterator[dict[str, np.ndarray]]:
            yield from rows

        return gen


def _texts_for(products: Sequence[Any], rng: np.random.Generator) -> list[str]:
    """Product texts and query-like shortenings (first words, attribute values)."""
    from edgeshelf.towers.model import product_text

    out = []
    for p in products:
        text = product_text(p) or p.id
        words = text.split()
        roll = rng.random()
        if roll < 0.5 or len(words) < 2:
            out.append(text)
        elif roll < 0.8:
            out.append(" ".join(words[: int(rng.integers(1, len(words)))]))
        else:
            values = [str(v) for v in (getattr(p, "attributes", None) or {}).values() if str(v).strip()]
            picks = [values[i] for i in rng.permutation(len(values))[:3]] if values else words[:2]
            out.append(" ".join(picks))
    return out


def synthetic_audio(
    count: int, seconds: float, rng: np.random.Generator, rate: int = 16000
) -> list[np.ndarray]:
    """Seeded non-speech clips (tones, chirps, noise bursts, near-silence) as float32 16 kHz."""
    n = int(seconds * rate)
    t = np.arange(n, dtype=np.float32) / rate
    clips = []
    for _ in range(count):
        kind = int(rng.integers(0, 4))
        amp = float(rng.uniform(0.02, 0.8))
        if kind == 0:
            sig = np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
        elif kind == 1:
            f0, f1 = rng.uniform(100, 3000, 2)
            sig = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(seconds, 1e-3))))
        elif kind == 2:
            sig = rng.standard_normal(n) * (rng.random(n) < rng.uniform(0.05, 1.0))
        else:
            sig = rng.standard_normal(n) * 0.01
        env = np.clip(np.sin(np.pi * t / max(seconds, 1e-3) * rng.uniform(0.5, 4)) ** 2, 0, 1)
        clips.append((amp * sig * env).astype(np.float32).clip(-1, 1))
    return clips


def _pseudo_clip(image: Any, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A clip of ``frames`` jittered copies (shifts, mirroring) of an image: uint8 [F, H, W, 3]."""
    from edgeshelf.sdk.preprocess import load_image

    rgb = load_image(image)
    h, w = rgb.shape[:2]
    out = np.zeros((frames, h, w, 3), np.uint8)
    for f in range(frames):
        dy = int(rng.integers(-(h // 8), h // 8 + 1))
        dx = int(rng.integers(-(w // 8), w // 8 + 1))
        frame = np.roll(rgb, (dy, dx), axis=(0, 1))
        out[f] = frame[:, ::-1] if rng.random() < 0.3 else frame
    return out


def _predict(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, int(model.outputs[0].shape[-1])), np.float32)
    return np.concatenate(
        [np.asarray(model(x[i : i + batch], training=False), np.float32) for i in range(0, len(x), batch)]
    )


def _masks(n: int, modalities: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Presence masks [n, 4] over MODALITIES: single modalities (half), the profile's full set
    (a quarter) and random non-empty subsets (a quarter)."""
    from edgeshelf.towers.model import MODALITIES

    cols = [MODALITIES.index(m) for m in modalities]
    masks = np.zeros((n, len(MODALITIES)), np.float32)
    for i in range(n):
        roll = rng.random()
        if roll < 0.5:
            chosen = [cols[int(rng.integers(0, len(cols)))]]
        elif roll < 0.75:
            chosen = cols
        else:
            keep = rng.random(len(cols)) < 0.5
            chosen = [c for c, k in zip(cols, keep) if k] or [cols[int(rng.integers(0, len(cols)))]]
        masks[i, chosen] = 1.0
    return masks


def sample_inputs(
    towers: Any,
    models: dict[str, Any],
    profile: Any,
    products: Sequence[Any],
    seed: int = 0,
    zeros: bool = False,
    pin_range: bool = True,
) -> ModelInputs:
    """Feeds for every model of ``profile`` from ``products`` (see the module docstring).

    ``pin_range`` adds the black-and-white frame that pins the image input range to [0, 1]
    (calibration; leave it out for held-out data). ``zeros=True`` replaces every input by zeros (a deliberately broken calibration, for
    testing the validation gate).
    """
    from edgeshelf.towers.model import MODALITIES, Towers

    rng = np.random.default_rng(seed)
    products = list(products)
    n = len(products)
    if n == 0:
        raise InvalidInputError("no calibration items: the calibration catalogue has no products")
    pre = profile.preprocess_for(towers.config.preprocess)
    view = Towers(replace(towers.config, preprocess=pre), towers.models, towers.backbone_path)
    view._backbone = getattr(towers, "_backbone", None)
    notes: list[str] = []
    feeds: dict[str, list[dict[str, np.ndarray]]] = {}
    outputs: dict[str, np.ndarray] = {}
    backbone = towers.backbone_path is not None

    def rows(name: str, x: np.ndarray) -> list[dict[str, np.ndarray]]:
        if zeros:
            x = np.zeros_like(x)
        return [{name: x[i : i + 1]} for i in range(len(x))]

    if "text" in models:
        texts = _texts_for(products, rng)
        ids = view.prepare(texts=texts).token_ids
        feeds["text"] = rows("token_ids", ids)
        outputs["text"] = _predict(models["text"], ids)
    if "image" in models:
        with_image = [p for p in products if p.image is not None]
        if not with_image:
            raise InvalidInputError(
                f"profile {profile.name!r} includes images but no calibration product has an image; "
                "calibrate with a catalogue that has product images"
            )
        images = view.prepare(images=[p.image for p in with_image]).images
        if backbone:
            x = images.astype(np.float32)
        else:
            x = images.astype(np.float32) * np.float32(1.0 / 255.0)
            if pin_range:
                extremes = np.zeros((1, *x.shape[1:]), np.float32)
                extremes[:, ::2] = 1.0  # black and white rows: the input range is exactly [0, 1]
                x = np.concatenate([x, extremes])
        feeds["image"] = rows(models["image"].inputs[0].name, x)
        outputs["image"] = _predict(models["image"], x[: len(with_image)])
    wanted = max(MIN_MEDIA_ITEMS, n // 2)
    if "video" in models:
        with_video = [p for p in products if p.video is not None]
        frames = pre.video.frames
        clips = view.prepare(videos=[p.video for p in with_video]).videos if with_video else None
        if len(with_video) < wanted:
            with_image = [p for p in products if p.image is not None]
            if not with_image and clips is None:
                raise InvalidInputError(
                    f"profile {profile.name!r} includes video but no calibration product has a video "
                    "or an image; calibrate with a catalogue that has media"
                )
            extra = (
                [with_image[i % len(with_image)] for i in range(wanted - len(with_video))]
                if with_image
                else []
            )
            if extra:
                pseudo = view.prepare(videos=[_pseudo_clip(p.image, frames, rng) for p in extra]).videos
                clips = pseudo if clips is None else np.concatenate([clips, pseudo])
                notes.append(
                    f"video: {len(with_video)} catalogue clips + {len(extra)} clips of jittered product images"
                )
        flat = clips.reshape((-1, *clips.shape[2:]))
        x_frames = flat.astype(np.float32) if backbone else flat.astype(np.float32) * np.float32(1.0 / 255.0)
        per_frame = _predict(models["image"], x_frames).reshape(len(clips), frames, -1)
        feeds["video"] = rows(models["video"].inputs[0].name, per_frame)
        outputs["video"] = _predict(models["video"], per_frame)
    if "audio" in models:
        with_audio = [p for p in products if p.audio is not None]
        mel = view.prepare(audios=[p.audio for p in with_audio]).audio if with_audio else None
        if len(with_audio) < wanted:
            synth = synthetic_audio(
                wanted - len(with_audio), pre.audio.max_seconds, rng, pre.audio.sample_rate
            )
            extra_mel = view.prepare(audios=synth).audio
            mel = extra_mel if mel is None else np.concatenate([mel, extra_mel])
            notes.append(
                f"audio: {len(with_audio)} catalogue clips + {len(synth)} seeded synthetic tones and noise"
            )
        feeds["audio"] = rows(models["audio"].inputs[0].name, mel)
        outputs["audio"] = _predict(models["audio"], mel)
    # fusion: float encoder outputs under realistic presence masks, absent inputs zeroed
    m = towers.config.modality_dim
    masks = _masks(n, profile.modalities, rng)
    fusion_rows = []
    for i in range(n):
        row: dict[str, np.ndarray] = {}
        for col, name in enumerate(MODALITIES):
            vec = np.zeros((1, m), np.float32)
            if masks[i, col] > 0 and name in outputs and len(outputs[name]):
                vec[0] = outputs[name][i % len(outputs[name])]
            row[name] = np.zeros_like(vec) if zeros else vec
        row["mask"] = np.zeros_like(masks[i : i + 1]) if zeros else masks[i : i + 1].copy()
        fusion_rows.append(row)
    feeds["fusion"] = fusion_rows
    if zeros:
        notes.append("calibration inputs replaced by zeros (deliberately broken)")
    return ModelInputs(feeds, notes, n)


__all__ = [
    "AEQ_RECIPES",
    "MODES",
    "ConversionError",
    "ConvertedModel",
    "FloatReport",
    "FloatTensor",
    "ModelInputs",
    "convert_model",
    "float32_bytes",
    "float_tensors_report",
    "profile_models",
    "sample_inputs",
    "synthetic_audio",
    "tensor_specs",
]
