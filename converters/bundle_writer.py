"""Assemble and write a bundle (DESIGN.md contract 2): model files + ``manifest.json``, atomically.

:func:`assemble` is pure (converted models in, a :class:`~edgeshelf.sdk.bundle.Manifest` and the
file contents out); :func:`write_bundle` puts them on disk: the folder is built in a temporary
sibling and renamed over the target (a reader never sees half a bundle), and an archive, when
asked for, is written beside it the same way (``BUNDLE.tar.gz`` or ``BUNDLE.zip``, the folder's
files at the archive's top level).

Example::

    manifest, files = assemble(models, profile=..., space_id=..., ...)
    folder, archive = write_bundle("bundles/speaker", manifest, files, archive="tar.gz")
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import platform
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from edgeshelf.sdk.bundle import (
    BUNDLE_FORMAT_VERSION,
    MANIFEST_FILE,
    Manifest,
    ModelSpec,
    decode_manifest,
    encode_manifest,
)
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.fileio import atomic_directory, atomic_write_bytes

ArchiveFormat = Literal["tar.gz", "zip"]
ARCHIVE_FORMATS: tuple[str, ...] = ("tar.gz", "zip")


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of the libraries that built a bundle (those importable here)."""
    import importlib.metadata as md

    import numpy as np

    from edgeshelf import __version__

    out = {"edgeshelf": __version__, "numpy": np.__version__, "python": platform.python_version()}
    for dist in ("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert", "ai-edge-quantizer", *extra):
        try:
            out[dist.replace("-cpu", "")] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


def assemble(
    models: Mapping[str, Any],
    *,
    profile: Mapping[str, Any],
    space_id: str,
    dim: int,
    modalities: tuple[str, ...],
    quantization: str,
    preprocess: Mapping[str, Any],
    runtime: Mapping[str, Any] | None = None,
    validation: Mapping[str, Any] | None = None,
    calibration: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, tuple[bytes, ModelSpec]] | None = None,
    versions: Mapping[str, str] | None = None,
) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and ``{file name: bytes}`` of a bundle (no I/O).

    ``models`` maps a role to a :class:`~edgeshelf.converters.quantize.ConvertedModel` (stored as
    ``<role>.tflite``); ``extra_files`` maps a role to ready bytes and spec (the backbone as given).
    """
    specs: dict[str, ModelSpec] = {}
    files: dict[str, bytes] = {}
    for role, converted in models.items():
        name = f"{role}.tflite"
        specs[role] = converted.spec(name)
        files[name] = converted.data
    for role, (data, spec) in (extra_files or {}).items():
        if hashlib.sha256(data).hexdigest() != spec.sha256:
            raise InvalidInputError(f"extra file {spec.file} does not match its sha256 {spec.sha256}")
        specs[role] = spec
        files[spec.file] = data
    manifest = Manifest(
        format_version=BUNDLE_FORMAT_VERSION,
        profile=dict(profile),
        space_id=space_id,
        dim=int(dim),
        metric="ip",
        modalities=tuple(modalities),
        quantization=quantization,
        models=specs,
        preprocess=dict(preprocess),
        runtime=dict(runtime or {}),
        validation=dict(validation or {}),
        calibration=dict(calibration or {}),
        versions=dict(versions or library_versions()),
        created_utc=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    )
    decode_manifest(encode_manifest(manifest), "assembled manifest")  # the reader must accept it
    return manifest, files


def archive_bytes(files: Mapping[str, bytes], fmt: ArchiveFormat) -> bytes:
    """An archive of ``files`` (name -> bytes) at its top level, deterministic member order."""
    buffer = io.BytesIO()
    if fmt == "zip":
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(files):
                zf.writestr(name, files[name])
    elif fmt == "tar.gz":
        with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.size = len(files[name])
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(files[name]))
    else:
        raise InvalidInputError(f"unknown archive format {fmt!r}; expected one of {list(ARCHIVE_FORMATS)}")
    return buffer.getvalue()


def archive_path(folder: str | os.PathLike[str], fmt: ArchiveFormat) -> Path:
    """Where the archive of bundle ``folder`` goes: ``folder`` + ``.tar.gz`` / ``.zip``."""
    folder = Path(folder)
    return folder.with_name(f"{folder.name}.{fmt}")


def write_bundle(
    out: str | os.PathLike[str],
    manifest: Manifest,
    files: Mapping[str, bytes],
    archive: ArchiveFormat | None = None,
) -> tuple[Path, Path | None]:
    """Write the bundle folder ``out`` atomically (and its archive); returns both paths."""
    names = {spec.file for spec in manifest.models.values()}
    missing = sorted(names - set(files))
    if missing:
        raise InvalidInputError(f"bundle files {missing} are named in the manifest but not given")
    for spec in manifest.models.values():
        actual = hashlib.sha256(files[spec.file]).hexdigest()
        if actual != spec.sha256:
            raise InvalidInputError(f"{spec.file}: bytes have sha256 {actual}, manifest says {spec.sha256}")
    if archive is not None and archive not in ARCHIVE_FORMATS:
        raise InvalidInputError(
            f"unknown archive format {archive!r}; expected one of {list(ARCHIVE_FORMATS)}"
        )
    manifest_bytes = encode_manifest(manifest)
    target = Path(out)
    umask = os.umask(0)
    os.umask(umask)
    with atomic_directory(target) as staging:
        for name in sorted(names):
            (staging / name).write_bytes(files[name])
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)  # last: its presence marks a whole bundle
        os.chmod(staging, 0o777 & ~umask)  # a temporary folder is private; a bundle is to be copied
    archive_file = None
    if archive is not None:
        content = {name: files[name] for name in names} | {MANIFEST_FILE: manifest_bytes}
        archive_file = atomic_write_bytes(archive_path(target, archive), archive_bytes(content, archive))
        os.chmod(archive_file, 0o666 & ~umask)
    return target, archive_file


__all__ = ["ARCHIVE_FORMATS", "archive_bytes", "archive_path", "assemble", "library_versions", "write_bundle"]
