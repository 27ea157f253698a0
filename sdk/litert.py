"""The LiteRT runtime wrapper: one interpreter per model, created once, buffers allocated at open.

Interpreters are tried in order (:data:`INTERPRETERS`): ``ai_edge_litert`` (LiteRT, XNNPACK on
by default), then ``tflite_runtime`` (its predecessor; under numpy 2 it cannot create an
interpreter, and it rejects op versions newer than TF 2.14), then ``tensorflow.lite`` (a host
with TensorFlow). The first that loads the model wins; when none can, :class:`ModelLoadError`
names the model file, each interpreter's reason, and the op and version when the error says so.

:class:`ModelRunner` quantizes inputs and dequantizes outputs with the manifest's scale and zero
point (``real = scale * (q - zero_point)``), writing straight into the interpreter's input
tensors and into float32 output buffers allocated at open, so the query path allocates nothing
that could have been allocated before.

Example::

    runner = ModelRunner.open("bundle/text.tflite", spec, num_threads=2)
    vector = runner.run({"token_ids": ids})["output_0"]    # float32 [1, m]
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.bundle import ModelSpec, TensorSpec
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    EdgeshelfError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
)

INTERPRETERS: tuple[str, ...] = ("ai_edge_litert", "tflite_runtime", "tensorflow.lite")
_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow.lite": "tensorflow",
}
_OP_ERROR = re.compile(r"builtin opcode '([A-Z0-9_]+)' version '(\d+)'")
_CUSTOM_OP_ERROR = re.compile(r"custom op(?:eration)?\s*[:'\"]?\s*'?([A-Za-z0-9_]+)")


class ModelLoadError(EdgeshelfError, RuntimeError):
    """No available TFLite interpreter can load a model (an op or op version it lacks, ...)."""


def _interpreter_module(name: str) -> Any:
    """The module holding ``Interpreter`` and ``OpResolverType`` for interpreter ``name``."""
    if name not in _MODULES:
        raise InvalidInputError(f"unknown interpreter {name!r}; expected one of {INTERPRETERS}")
    module = importlib.import_module(_MODULES[name])
    return module.lite if name == "tensorflow.lite" else module


def _op_hint(message: str) -> str:
    match = _OP_ERROR.search(message)
    if match:
        return (
            f"op {match.group(1)} version {match.group(2)} is not supported by this interpreter "
            "(the model was built by a newer converter)"
        )
    if "Select TensorFlow op" in message or "Flex" in message:
        return "the model needs Select TF (Flex) ops, which device interpreters do not have"
    match = _CUSTOM_OP_ERROR.search(message)
    if match and "custom" in message.lower():
        return f"custom op {match.group(1)} is not registered"
    return ""


def _short(message: str, limit: int = 300) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _create(name: str, path: Path, num_threads: int, use_xnnpack: bool) -> Any:
    module = _interpreter_module(name)
    kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": int(num_threads)}
    resolver = getattr(module, "OpResolverType", None) or getattr(
        getattr(module, "experimental", None), "OpResolverType", None
    )
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = (
            resolver.AUTO if use_xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it is deprecated
        interpreter = module.Interpreter(**kwargs)
    interpreter.allocate_tensors()
    return interpreter


def load_interpreter(
    path: str | os.PathLike[str],
    num_threads: int = 1,
    use_xnnpack: bool = True,
    interpreters: Sequence[str] = INTERPRETERS,
) -> tuple[Any, str]:
    """Create and allocate an interpreter for ``path`` with the first of ``interpreters`` that can.

    Returns ``(interpreter, name)``. Raises :class:`ModelNotFoundError` (no file),
    :class:`MissingDependencyError` (no interpreter installed) or :class:`ModelLoadError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} does not exist")
    if num_threads < 1:
        raise InvalidInputError(f"num_threads must be >= 1, got {num_threads}")
    reasons: list[str] = []
    installed = 0
    for name in interpreters:
        try:
            _interpreter_module(name)
        except ImportError as exc:
            reasons.append(f"{name}: not installed ({exc})")
            continue
        installed += 1
        try:
            return _create(name, path, num_threads, use_xnnpack), name
        except (ValueError, RuntimeError, OSError, SystemError, ImportError, AttributeError) as exc:
            hint = _op_hint(str(exc))
            reasons.append(f"{name}: {hint + ': ' if hint else ''}{_short(str(exc))}")
    if installed == 0:
        raise MissingDependencyError(
            f"no TFLite interpreter is installed to run {path} ({'; '.join(reasons)}); "
            "install one with: pip install 'edgeshelf[device]' (ai-edge-litert)"
        )
    raise ModelLoadError(
        f"no available interpreter can load {path}: {'; '.join(reasons)}. Install a current "
        "ai-edge-litert (pip install -U ai-edge-litert), or rebuild the bundle with a mode this "
        "interpreter supports (edgeshelf convert --quant int8 / float32)"
    )


def interpreter_support(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Which interpreters of this machine can load ``path``: ``{name: {"status", "detail"}}``.

    ``status`` is ``"ok"``, ``"fails"`` (with the reason, op and version when known) or
    ``"not installed"``; each interpreter is actually tried, nothing is assumed.
    """
    out: dict[str, dict[str, str]] = {}
    for name in INTERPRETERS:
        try:
            _interpreter_module(name)
        except ImportError as exc:
            out[name] = {"status": "not installed", "detail": _short(str(exc), 120)}
            continue
        try:
            interpreter = _create(name, Path(path), 1, True)
            del interpreter
            out[name] = {"status": "ok", "detail": ""}
        except (ValueError, RuntimeError, OSError, SystemError, ImportError, AttributeError) as exc:
            hint = _op_hint(str(exc))
            out[name] = {"status": "fails", "detail": hint or _short(str(exc), 200)}
    return out


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


def specs_from_interpreter(interpreter: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output :class:`TensorSpec` of an allocated interpreter (signature names when
    the model has a signature, else the tensor names)."""
    by_index: dict[int, str] = {}
    try:
        signatures = interpreter._get_full_signature_list()  # {key: {"inputs": {name: idx}, ...}}
    except AttributeError:
        signatures = {}
    if signatures:
        first = next(iter(signatures.values()))
        for kind in ("inputs", "outputs"):
            for name, index in first.get(kind, {}).items():
                by_index[int(index)] = name

    def spec(detail: Mapping[str, Any]) -> TensorSpec:
        scale, zero = detail.get("quantization", (0.0, 0))
        return TensorSpec(
            name=by_index.get(int(detail["index"]), detail["name"]),
            tensor=str(detail["name"]),
            shape=tuple(int(v) for v in detail["shape"]),
            dtype=_dtype_name(detail["dtype"]),
            scale=float(scale),
            zero_point=int(zero),
        )

    return (
        tuple(spec(d) for d in interpreter.get_input_details()),
        tuple(spec(d) for d in interpreter.get_output_details()),
    )


class _Slot:
    """One input or output tensor: its spec, interpreter index and preallocated float buffer."""

    __slots__ = ("spec", "index", "buffer", "lo", "hi", "inv_scale", "pixel_identity", "pixel_int8", "zeros", "stored")

    def __init__(self, spec: TensorSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self.buffer = np.zeros(spec.shape, np.float32)
        if spec.quantized:
            info = np.iinfo(np.dtype(spec.dtype))
            self.lo, self.hi = float(info.min), float(info.max)
            self.inv_scale = 1.0 / spec.scale
        else:
            self.lo = self.hi = 0.0
            self.inv_scale = 1.0
        # uint8 pixels can be copied as they are when the tensor is uint8 with scale 1/255, zero 0
        # (or shifted by 128 for int8 with zero point -128): no float conversion on the device
        unit = spec.quantized and abs(spec.scale * 255.0 - 1.0) < 1e-6
        self.pixel_identity = unit and spec.dtype == "uint8" and spec.zero_point == 0
        self.pixel_int8 = unit and spec.dtype == "int8" and spec.zero_point == -128
        # the stored form of an all-zero input (an absent modality): written as is, no quantizing
        zero = min(max(spec.zero_point, self.lo), self.hi) if spec.quantized else 0
        self.zeros = np.full(spec.shape, zero, np.dtype(spec.dtype))
        self.stored = np.empty(spec.shape, np.dtype(spec.dtype))  # a quantized input, before set_tensor


class ModelRunner:
    """One TFLite model with its interpreter, created once and reused for every call.

    Inputs are given as float values (or int32 token ids, or uint8 pixels through
    :meth:`set_pixels`); quantized tensors are quantized here with the manifest's scale and zero
    point. Outputs come back dequantized as float32 arrays of the model's output shape; they are
    buffers owned by the runner, valid until the next :meth:`invoke` (copy them to keep them).
    """

    def __init__(self, path: Path, interpreter: Any, interpreter_name: str, spec: ModelSpec | None) -> None:
        self.path = path
        self.interpreter_name = interpreter_name
        self._interpreter = interpreter
        actual_in, actual_out = specs_from_interpreter(interpreter)
        inputs = spec.inputs if spec is not None else actual_in
        outputs = spec.outputs if spec is not None else actual_out
        details_in = {d["name"]: int(d["index"]) for d in interpreter.get_input_details()}
        details_out = {d["name"]: int(d["index"]) for d in interpreter.get_output_details()}
        self._inputs = {s.name: _Slot(s, self._match(s, actual_in, details_in, "input")) for s in inputs}
        self._outputs = {s.name: _Slot(s, self._match(s, actual_out, details_out, "output")) for s in outputs}
        self.inputs: tuple[TensorSpec, ...] = tuple(inputs)
        self.outputs: tuple[TensorSpec, ...] = tuple(outputs)

    def _match(
        self, spec: TensorSpec, actual: Sequence[TensorSpec], index: Mapping[str, int], kind: str
    ) -> int:
        found = next((a for a in actual if a.tensor == spec.tensor), None)
        if found is None:
            raise CorruptArtifactError(
                f"{self.path}: the manifest names {kind} tensor {spec.tensor!r} but the model has "
                f"{[a.tensor for a in actual]}; the manifest does not belong to this file"
            )
        same_q = abs(found.scale - spec.scale) <= 1e-6 * max(1.0, abs(spec.scale)) and (
            found.zero_point == spec.zero_point or not spec.quantized
        )
        if found.shape != spec.shape or found.dtype != spec.dtype or not same_q:
            raise CorruptArtifactError(
                f"{self.path}: {kind} {spec.name!r} is {found.dtype}{list(found.shape)} "
                f"(scale {found.scale:.6g}, zero {found.zero_point}) but the manifest says "
                f"{spec.dtype}{list(spec.shape)} (scale {spec.scale:.6g}, zero {spec.zero_point})"
            )
        return index[spec.tensor]

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        spec: ModelSpec | None = None,
        *,
        num_threads: int = 1,
        use_xnnpack: bool = True,
        interpreters: Sequence[str] = INTERPRETERS,
    ) -> ModelRunner:
        """Load ``path`` with the first interpreter of ``interpreters`` that can (see module doc).

        ``spec`` (from the bundle manifest) fixes tensor names, shapes, dtypes and quantization
        and is checked against the model; without it they are read from the model.
        """
        path = Path(path)
        interpreter, name = load_interpreter(path, num_threads, use_xnnpack, interpreters)
        return cls(path, interpreter, name, spec)

    # ---- inputs

    def _slot(self, name: str) -> _Slot:
        self._check_open()
        slot = self._inputs.get(name)
        if slot is None:
            raise InvalidInputError(
                f"{self.path.name} has no input {name!r}; its inputs are {list(self._inputs)}"
            )
        return slot

    def _check_value(self, slot: _Slot, value: np.ndarray) -> np.ndarray:
        if value.size != slot.buffer.size:
            raise InvalidInputError(
                f"{self.path.name} input {slot.spec.name!r} needs {list(slot.spec.shape)} "
                f"({slot.buffer.size} values), got {list(value.shape)}"
            )
        return value.reshape(slot.spec.shape)

    def set_input(self, name: str, value: np.ndarray) -> None:
        """Write one input (its real value; quantized here when the tensor is quantized)."""
        slot = self._slot(name)
        value = self._check_value(slot, np.asarray(value))
        if slot.spec.quantized:
            buf = slot.buffer
            np.multiply(value, slot.inv_scale, out=buf, casting="unsafe")
            np.rint(buf, out=buf)
            buf += slot.spec.zero_point
            np.clip(buf, slot.lo, slot.hi, out=buf)
            np.copyto(slot.stored, buf, casting="unsafe")
            self._interpreter.set_tensor(slot.index, slot.stored)
        else:
            self._interpreter.set_tensor(slot.index, value.astype(slot.stored.dtype, copy=False))

    def set_input_zeros(self, name: str) -> None:
        """Write an all-zero input (its stored form is computed once at open)."""
        slot = self._slot(name)
        self._interpreter.set_tensor(slot.index, slot.zeros)

    def set_pixels(self, name: str, pixels: np.ndarray) -> None:
        """Write uint8 pixels whose real value is ``pixels / 255`` (an image model's input).

        A uint8 tensor with scale 1/255 and zero point 0 takes the pixels as they are.
        """
        slot = self._slot(name)
        pixels = self._check_value(slot, np.asarray(pixels))
        if pixels.dtype != np.uint8:
            raise InvalidInputError(f"pixels must be uint8, got {pixels.dtype}")
        if slot.pixel_identity:
            view = self._interpreter.tensor(slot.index)()
            view[...] = pixels
            del view
        elif slot.pixel_int8:
            view = self._interpreter.tensor(slot.index)()
            np.subtract(pixels, 128, out=view, casting="unsafe")
            del view
        elif not slot.spec.quantized:
            view = self._interpreter.tensor(slot.index)()
            np.multiply(pixels, np.float32(1.0 / 255.0), out=view, casting="unsafe")
            del view
        else:
            np.multiply(pixels, np.float32(1.0 / 255.0), out=slot.buffer, casting="unsafe")
            self.set_input(name, slot.buffer)

    def set_input_raw(self, name: str, value: np.ndarray) -> None:
        """Write an input as stored in the model (no quantization); dtype must match exactly."""
        slot = self._slot(name)
        value = self._check_value(slot, np.asarray(value))
        if value.dtype != np.dtype(slot.spec.dtype):
            raise InvalidInputError(
                f"{self.path.name} input {name!r} is {slot.spec.dtype}, got {value.dtype}"
            )
        view = self._interpreter.tensor(slot.index)()
        view[...] = value
        del view

    # ---- running

    def invoke(self) -> None:
        """Run the model on the inputs written so far."""
        self._check_open()
        self._interpreter.invoke()

    def output(self, name: str | None = None) -> np.ndarray:
        """Dequantized float32 output ``name`` (default: the first); a runner-owned buffer."""
        self._check_open()
        slot = self._outputs[name] if name is not None else next(iter(self._outputs.values()))
        view = self._interpreter.tensor(slot.index)()
        if slot.spec.quantized:
            np.subtract(view, np.float32(slot.spec.zero_point), out=slot.buffer, dtype=np.float32)
            slot.buffer *= np.float32(slot.spec.scale)
        else:
            np.copyto(slot.buffer, view, casting="unsafe")
        del view
        return slot.buffer

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Set every input from ``feeds`` (real values), invoke, return every output (float32)."""
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise InvalidInputError(f"{self.path.name} needs inputs {missing}; got {list(feeds)}")
        for name, value in feeds.items():
            self.set_input(name, value)
        self.invoke()
        return {name: self.output(name) for name in self._outputs}

    def raw_input(self, name: str) -> np.ndarray:
        """A copy of the tensor an input currently holds, in the model's dtype (for checks)."""
        slot = self._slot(name)
        return np.array(self._interpreter.tensor(slot.index)())

    # ---- lifecycle

    def _check_open(self) -> None:
        if self._interpreter is None:
            raise InvalidInputError(f"the runner of {self.path} is closed")

    @property
    def closed(self) -> bool:
        return self._interpreter is None

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}:{s.dtype}{list(s.shape)}" for s in self.inputs)
        return f"ModelRunner({self.path.name}, {self.interpreter_name}, [{ins}])"


__all__ = [
    "INTERPRETERS",
    "ModelLoadError",
    "ModelRunner",
    "interpreter_support",
    "load_interpreter",
    "specs_from_interpreter",
]
