"""The bundle a device runs (DESIGN.md contract 2): ``.tflite`` files and a ``manifest.json``.

A bundle is one folder (or a ``.tar.gz`` / ``.zip`` archive of that folder's contents)::

    manifest.json      format, format_version, profile, space_id, embedding (dim, metric),
                       modalities, quantization, models, preprocess, runtime, validation,
                       calibration, versions, created_utc
    text.tflite        one file per model named in ``models`` (``text``, ``image``, ``video``,
    fusion.tflite      ``audio``, ``fusion``, and ``image_backbone`` when the image tower is a
    ...                pretrained TFLite backbone plus a head)

Each model entry names its file, sha256, size in bytes, quantization mode, and its input and
output tensors (signature name, TFLite tensor name, shape, dtype, quantization scale and zero
point; scale 0 means "not quantized"). Reading checks the format version (a newer one raises
:class:`FormatVersionError`), the space id, and (``verify=True``) the sha256 of every file
(:class:`CorruptArtifactError` naming the file and both digests).

The manifest codec is two pure functions (:func:`encode_manifest`, :func:`decode_manifest`);
files stay at the edges (:class:`Bundle`, :func:`describe`).

Example::

    with Bundle.open("bundles/speaker") as bundle:
        print(bundle.manifest.profile_name, bundle.manifest.space_id, bundle.model_path("text"))
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    FormatVersionError,
    InvalidInputError,
    ModelNotFoundError,
    SpaceMismatchError,
)
from edgeshelf.sdk.fileio import sha256_file

BUNDLE_FORMAT = "edgeshelf-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
MODEL_ROLES = ("text", "image", "video", "audio", "fusion", "adapter", "image_backbone")
QUANT_MODES = ("int8", "float16", "dynamic", "float32")
_SPACE_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: signature ``name``, TFLite ``tensor`` name, shape, dtype,
    and the affine quantization ``real = scale * (q - zero_point)`` (``scale == 0``: float)."""

    name: str
    tensor: str
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in ("int8", "uint8", "int16")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tensor": self.tensor,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        return cls(
            name=str(data["name"]),
            tensor=str(data.get("tensor", data["name"])),
            shape=tuple(int(v) for v in data["shape"]),
            dtype=str(data["dtype"]),
            scale=float(data.get("scale", 0.0)),
            zero_point=int(data.get("zero_point", 0)),
        )


@dataclass(frozen=True)
class ModelSpec:
    """One ``.tflite`` file of a bundle and its tensor contract.

    ``role`` is one of :data:`MODEL_ROLES`; ``quantization`` is the mode it was built with
    (``"as-given"`` for a pretrained backbone copied unchanged); ``float_tensors`` lists the
    tensors left in float in a quantized model (informational).
    """

    role: str
    file: str
    sha256: str
    bytes: int
    quantization: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    engine: str = ""
    float_tensors: tuple[str, ...] = ()

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise InvalidInputError(
            f"model {self.file} has no input {name!r}; its inputs are {[s.name for s in self.inputs]}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "file": self.file,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "quantization": self.quantization,
            "engine": self.engine,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "float_tensors": list(self.float_tensors),
        }

    @classmethod
    def from_dict(cls, role: str, data: Mapping[str, Any]) -> ModelSpec:
        return cls(
            role=str(data.get("role", role)),
            file=str(data["file"]),
            sha256=str(data["sha256"]),
            bytes=int(data.get("bytes", 0)),
            quantization=str(data.get("quantization", "")),
            inputs=tuple(TensorSpec.from_dict(s) for s in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(s) for s in data["outputs"]),
            engine=str(data.get("engine", "")),
            float_tensors=tuple(str(t) for t in data.get("float_tensors", ())),
        )


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of a bundle (see the module docstring for the layout).

    ``profile`` is the device profile as data (``name``, ``modalities``, input sizes, threads,
    ...); ``preprocess`` is a :class:`~edgeshelf.sdk.preprocess.PreprocessConfig` dict with the
    profile's input sizes applied; ``validation`` holds the gate's figures and verdict.
    """

    format_version: int
    profile: dict[str, Any]
    space_id: str
    dim: int
    metric: str
    modalities: tuple[str, ...]
    quantization: str
    models: dict[str, ModelSpec]
    preprocess: dict[str, Any]
    runtime: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created_utc: str = ""

    @property
    def profile_name(self) -> str:
        return str(self.profile.get("name", "?"))

    @property
    def has_backbone(self) -> bool:
        return "image_backbone" in self.models

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "format_version": self.format_version,
            "profile": self.profile,
            "space_id": self.space_id,
            "embedding": {"dim": self.dim, "metric": self.metric, "dtype": "float32", "normalized": True},
            "modalities": list(self.modalities),
            "quantization": self.quantization,
            "models": {role: spec.to_dict() for role, spec in self.models.items()},
            "preprocess": self.preprocess,
            "runtime": self.runtime,
            "validation": self.validation,
            "calibration": self.calibration,
            "versions": self.versions,
            "created_utc": self.created_utc,
        }


# --------------------------------------------------------------------------------------------
# codec (bytes <-> Manifest)


def encode_manifest(manifest: Manifest) -> bytes:
    """``manifest.json`` bytes (UTF-8, sorted keys, indented)."""
    return (json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def decode_manifest(data: bytes, source: str = MANIFEST_FILE) -> Manifest:
    """Parse and check ``manifest.json`` bytes; ``source`` names the file in error messages.

    Raises :class:`CorruptArtifactError` (not JSON, not a bundle manifest, a missing or bad
    field, no space id) and :class:`FormatVersionError` (written by a newer edgeshelf).
    """
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{source} is not valid JSON ({exc}); rebuild the bundle") from exc
    if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise CorruptArtifactError(f"{source}: format is {found!r}, expected {BUNDLE_FORMAT!r}")
    version = raw.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CorruptArtifactError(f"{source}: format_version must be a positive integer, got {version!r}")
    if version > BUNDLE_FORMAT_VERSION:
        from edgeshelf import __version__

        raise FormatVersionError(
            f"{source} has bundle format version {version}; this edgeshelf ({__version__}) reads up to "
            f"version {BUNDLE_FORMAT_VERSION}: upgrade edgeshelf (pip install -U edgeshelf) on this device"
        )
    space_id = raw.get("space_id")
    if not isinstance(space_id, str) or not _SPACE_ID.match(space_id):
        raise CorruptArtifactError(
            f"{source}: space_id must be 16 lower-case hex digits, got {space_id!r}; rebuild the bundle"
        )
    try:
        models_raw = raw["models"]
        models = {role: ModelSpec.from_dict(role, spec) for role, spec in models_raw.items()}
        embedding = raw["embedding"]
        manifest = Manifest(
            format_version=version,
            profile=dict(raw["profile"]),
            space_id=space_id,
            dim=int(embedding["dim"]),
            metric=str(embedding.get("metric", "ip")),
            modalities=tuple(raw["modalities"]),
            quantization=str(raw["quantization"]),
            models=models,
            preprocess=dict(raw["preprocess"]),
            runtime=dict(raw.get("runtime", {})),
            validation=dict(raw.get("validation", {})),
            calibration=dict(raw.get("calibration", {})),
            versions={str(k): str(v) for k, v in raw.get("versions", {}).items()},
            created_utc=str(raw.get("created_utc", "")),
        )
    except KeyError as exc:
        raise CorruptArtifactError(f"{source}: missing field {exc}; rebuild the bundle") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise CorruptArtifactError(f"{source}: malformed field ({exc}); rebuild the bundle") from exc
    unknown = [role for role in models if role not in MODEL_ROLES]
    if unknown:
        raise CorruptArtifactError(f"{source}: unknown model roles {unknown}; expected some of {MODEL_ROLES}")
    if "fusion" not in models:
        raise CorruptArtifactError(f"{source}: no fusion model; every bundle needs one")
    for modality in manifest.modalities:
        needed = ("image", modality) if modality == "video" else (modality,)
        missing = [m for m in needed if m not in models]
        if missing:
            raise CorruptArtifactError(
                f"{source}: modality {modality!r} is listed but the models {missing} are absent"
            )
    return manifest


# --------------------------------------------------------------------------------------------
# files


def is_archive(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a bundle archive (``.tar.gz``, ``.tgz``, ``.zip``)."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _extract(archive: Path, target: Path) -> None:
    """Extract a bundle archive into ``target``, refusing paths that leave it."""
    try:
        if archive.suffix.lower() == ".zip":
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    dest = (target / name).resolve()
                    if not dest.is_relative_to(target.resolve()):
                        raise CorruptArtifactError(
                            f"{archive}: member {name!r} would extract outside the bundle"
                        )
                zf.extractall(target)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                tf.extractall(target, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ModelNotFoundError(f"bundle archive {archive} does not exist") from exc
        raise CorruptArtifactError(f"{archive} is not a readable bundle archive ({exc})") from exc
    # an archive of the folder itself (one top-level folder holding manifest.json) is accepted too
    if not (target / MANIFEST_FILE).is_file():
        subdirs = [p for p in target.iterdir() if p.is_dir()]
        if len(subdirs) == 1 and (subdirs[0] / MANIFEST_FILE).is_file():
            for item in subdirs[0].iterdir():
                shutil.move(str(item), target / item.name)
            subdirs[0].rmdir()


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """The checked :class:`Manifest` of a bundle folder (files are not verified)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"{folder} is not a bundle (no {MANIFEST_FILE}); build one with `edgeshelf convert`"
        )
    return decode_manifest(path.read_bytes(), str(path))


def verify_files(folder: str | os.PathLike[str], manifest: Manifest) -> None:
    """Check that every model file exists and has the manifest's sha256 (CorruptArtifactError)."""
    root = Path(folder)
    for role, spec in manifest.models.items():
        path = root / spec.file
        if Path(spec.file).is_absolute() or ".." in Path(spec.file).parts:
            raise CorruptArtifactError(
                f"{root / MANIFEST_FILE}: model {role} file {spec.file!r} leaves the bundle"
            )
        if not path.is_file():
            raise CorruptArtifactError(
                f"{path} (model {role!r}) is missing from the bundle; rebuild or re-copy the bundle"
            )
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise CorruptArtifactError(
                f"{path} (model {role!r}) is corrupt: sha256 {actual} != {spec.sha256} in "
                f"{MANIFEST_FILE}; re-copy the bundle or rebuild it with `edgeshelf convert`"
            )


class Bundle:
    """An opened bundle: its folder, its :class:`Manifest`, and the paths of its models.

    Use :meth:`open`; an archive is extracted to a temporary folder removed by :meth:`close`.
    """

    def __init__(self, folder: Path, manifest: Manifest, source: Path, tmp: Path | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.source = source
        self._tmp = tmp

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        verify: bool = True,
        expected_space_id: str | None = None,
    ) -> Bundle:
        """Open a bundle folder or archive; check format version, space id and (``verify``) sha256s.

        ``expected_space_id``: raise :class:`SpaceMismatchError` when the bundle's differs.
        """
        source = Path(path)
        tmp: Path | None = None
        if source.is_file() and is_archive(source):
            tmp = Path(tempfile.mkdtemp(prefix="edgeshelf-bundle-"))
            try:
                _extract(source, tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            folder = tmp
        elif source.is_dir():
            folder = source
        elif not source.exists():
            raise ModelNotFoundError(f"bundle {source} does not exist; build one with `edgeshelf convert`")
        else:
            raise InvalidInputError(
                f"{source} is neither a bundle folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})"
            )
        try:
            manifest = read_manifest(folder)
            if verify:
                verify_files(folder, manifest)
            if expected_space_id is not None and manifest.space_id != expected_space_id:
                raise SpaceMismatchError(
                    f"bundle {source}",
                    expected_space_id,
                    manifest.space_id,
                    "use a bundle converted from the towers that made the catalogue, or rebuild the shard",
                )
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(folder, manifest, source, tmp)

    def model_path(self, role: str) -> Path:
        """Path of the ``.tflite`` file of ``role`` (``text``, ``fusion``, ...)."""
        spec = self.manifest.models.get(role)
        if spec is None:
            raise InvalidInputError(
                f"bundle {self.source} (profile {self.manifest.profile_name!r}) has no {role!r} model; "
                f"it has {sorted(self.manifest.models)}"
            )
        return self.folder / spec.file

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"Bundle({self.source}, profile={m.profile_name}, space={m.space_id}, "
            f"quant={m.quantization}, models={'+'.join(m.models)})"
        )


# --------------------------------------------------------------------------------------------
# inspect


def describe(path: str | os.PathLike[str], interpreters: bool = True) -> dict[str, Any]:
    """A JSON-ready description of a bundle for ``edgeshelf inspect``.

    Reads and checks the manifest (raising on an unreadable one or a newer format version),
    then reports, per model, whether its sha256 matches (``"sha256_ok"``) and, with
    ``interpreters``, which TFLite interpreters of this machine can load it
    (``ai_edge_litert``, ``tflite_runtime``, ``tensorflow.lite``: each ``{"status": "ok" |
    "fails" | "not installed", "detail": ...}``). Problems are listed under ``"problems"``.
    """
    from edgeshelf.sdk.litert import interpreter_support

    with Bundle.open(path, verify=False) as bundle:
        manifest = bundle.manifest
        out = manifest.to_dict()
        out["path"] = str(bundle.source)
        problems: list[str] = []
        total = 0
        for role, spec in manifest.models.items():
            file = bundle.folder / spec.file
            entry = out["models"][role]
            if not file.is_file():
                entry["sha256_ok"] = False
                problems.append(f"{spec.file}: missing")
                continue
            total += file.stat().st_size
            actual = sha256_file(file)
            entry["sha256_ok"] = actual == spec.sha256
            if actual != spec.sha256:
                problems.append(f"{spec.file}: sha256 {actual} != manifest {spec.sha256}")
            if interpreters:
                entry["interpreters"] = interpreter_support(file)
        out["total_bytes"] = total
        out["problems"] = problems
        return out


def _fmt_tensor(spec: Mapping[str, Any]) -> str:
    quant = f" q(scale={spec['scale']:.6g}, zero={spec['zero_point']})" if spec.get("scale") else ""
    return f"{spec['name']} {spec['dtype']}{list(spec['shape'])}{quant}"


def describe_text(info: Mapping[str, Any]) -> str:
    """Human-readable rendering of :func:`describe`'s dict (what ``edgeshelf inspect`` prints)."""
    emb = info.get("embedding", {})
    profile = info.get("profile", {})
    lines = [
        f"bundle      {info.get('path', '')}",
        f"format      {BUNDLE_FORMAT} v{info.get('format_version')}",
        f"profile     {profile.get('name', '?')} ({', '.join(info.get('modalities', []))}); "
        f"threads {info.get('runtime', {}).get('num_threads', '?')}",
        f"space id    {info.get('space_id')}",
        f"embedding   {emb.get('dim')}-d float32, metric {emb.get('metric')} (L2-normalised)",
        f"quant       {info.get('quantization')}",
        f"size        {info.get('total_bytes', 0) / 1e6:.3f} MB",
        f"created     {info.get('created_utc', '')}",
        "versions    " + ", ".join(f"{k} {v}" for k, v in sorted(info.get("versions", {}).items())),
    ]
    pre = info.get("preprocess", {})
    if pre:
        text, image, audio, video = (pre.get(k, {}) for k in ("text", "image", "audio", "video"))
        lines.append(
            f"preprocess  text {text.get('max_tokens')} tokens/{text.get('buckets')} buckets; "
            f"image {image.get('size')}px RGB; audio {audio.get('sample_rate')} Hz "
            f"{audio.get('n_mels')} mels {audio.get('max_seconds')} s; video {video.get('frames')} frames"
        )
    lines.append("models")
    for role, m in info.get("models", {}).items():
        ok = {True: "sha256 ok", False: "SHA256 MISMATCH"}.get(m.get("sha256_ok"), "")
        lines.append(f"  {role:<15} {m['file']} {m['bytes'] / 1e3:.1f} kB {m['quantization']} {ok}")
        for spec in m.get("inputs", []):
            lines.append(f"      in   {_fmt_tensor(spec)}")
        for spec in m.get("outputs", []):
            lines.append(f"      out  {_fmt_tensor(spec)}")
        if m.get("float_tensors"):
            lines.append(f"      float tensors left: {', '.join(m['float_tensors'])}")
        for name, status in m.get("interpreters", {}).items():
            detail = f" ({status['detail']})" if status.get("detail") else ""
            lines.append(f"      {name:<16} {status['status']}{detail}")
    validation = info.get("validation", {})
    if validation:
        verdict = "passed" if validation.get("passed") else "FAILED"
        forced = " (written with --force)" if validation.get("forced") else ""
        lines.append(f"validation  {verdict}{forced}")
        for failure in validation.get("failures", []):
            lines.append(f"  failure: {failure}")
        table = validation.get("table")
        if table:
            lines.extend("  " + row for row in table.splitlines())
    for problem in info.get("problems", []):
        lines.append(f"PROBLEM     {problem}")
    return "\n".join(lines)


__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "MANIFEST_FILE",
    "MODEL_ROLES",
    "QUANT_MODES",
    "Bundle",
    "Manifest",
    "ModelSpec",
    "TensorSpec",
    "decode_manifest",
    "describe",
    "describe_text",
    "encode_manifest",
    "is_archive",
    "read_manifest",
    "verify_files",
]
