"""Reading bundles: checksums, format version, space id, archives, describe (DESIGN.md contract 2)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from edgeshelf.converters.bundle_writer import archive_bytes, archive_path, write_bundle
from edgeshelf.sdk.bundle import (
    BUNDLE_FORMAT_VERSION,
    Bundle,
    decode_manifest,
    describe,
    describe_text,
    encode_manifest,
    read_manifest,
)
from edgeshelf.sdk.encoder import QueryEncoder
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    FormatVersionError,
    ModelNotFoundError,
    SpaceMismatchError,
)


@pytest.fixture
def bundle_copy(speaker_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "speaker"
    shutil.copytree(speaker_bundle, target)
    return target


def _edit_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_opens_and_names_its_models(speaker_bundle):
    with Bundle.open(speaker_bundle) as bundle:
        assert bundle.manifest.profile_name == "speaker"
        assert set(bundle.manifest.models) == {"text", "audio", "fusion"}
        assert bundle.model_path("text").name == "text.tflite"
        assert "speaker" in repr(bundle)


def test_corrupted_model_file_is_refused_naming_file_and_digests(bundle_copy):
    model = bundle_copy / "audio.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    expected = read_manifest(bundle_copy).models["audio"].sha256
    with pytest.raises(CorruptArtifactError) as err:
        Bundle.open(bundle_copy)
    message = str(err.value)
    assert "audio.tflite" in message and "sha256" in message and expected in message
    with pytest.raises(CorruptArtifactError, match="audio.tflite"):
        QueryEncoder.open(bundle_copy)
    Bundle.open(bundle_copy, verify=False).close()  # the caller may skip verification


def test_missing_model_file_is_refused(bundle_copy):
    (bundle_copy / "fusion.tflite").unlink()
    with pytest.raises(CorruptArtifactError, match="fusion.tflite.*missing"):
        Bundle.open(bundle_copy)


def test_future_format_version_is_refused_with_both_versions(bundle_copy):
    _edit_manifest(bundle_copy, format_version=BUNDLE_FORMAT_VERSION + 1)
    with pytest.raises(FormatVersionError) as err:
        Bundle.open(bundle_copy)
    message = str(err.value)
    assert f"version {BUNDLE_FORMAT_VERSION + 1}" in message
    assert f"up to version {BUNDLE_FORMAT_VERSION}" in message
    assert "upgrade edgeshelf" in message


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"space_id": ""}, "space_id must be 16"),
        ({"space_id": "XYZ"}, "space_id must be 16"),
        ({"format": "something-else"}, "expected 'edgeshelf-bundle'"),
        ({"format_version": "1"}, "format_version must be a positive integer"),
        ({"models": {}}, "no fusion model"),
        ({"modalities": ["text", "image"]}, "modality 'image' is listed"),
    ],
)
def test_bad_manifests_are_refused(bundle_copy, changes, phrase):
    _edit_manifest(bundle_copy, **changes)
    with pytest.raises(CorruptArtifactError, match=phrase):
        Bundle.open(bundle_copy)


def test_missing_field_and_bad_json(bundle_copy):
    data = json.loads((bundle_copy / "manifest.json").read_text())
    del data["preprocess"]
    with pytest.raises(CorruptArtifactError, match="missing field 'preprocess'"):
        decode_manifest(json.dumps(data).encode(), "m.json")
    with pytest.raises(CorruptArtifactError, match="m.json is not valid JSON"):
        decode_manifest(b"{not json", "m.json")


def test_not_a_bundle(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no manifest.json"):
        Bundle.open(tmp_path)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Bundle.open(tmp_path / "absent")


def test_expected_space_id(speaker_bundle):
    actual = read_manifest(speaker_bundle).space_id
    with pytest.raises(SpaceMismatchError) as err:
        Bundle.open(speaker_bundle, expected_space_id="0" * 16)
    assert actual in str(err.value) and "0" * 16 in str(err.value)


def test_manifest_codec_round_trip(speaker_bundle):
    manifest = read_manifest(speaker_bundle)
    assert decode_manifest(encode_manifest(manifest)) == manifest


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_archives_open_and_embed(speaker_bundle, tmp_path, fmt):
    manifest = read_manifest(speaker_bundle)
    files = {spec.file: (speaker_bundle / spec.file).read_bytes() for spec in manifest.models.values()}
    folder, archive = write_bundle(tmp_path / "speaker", manifest, files, archive=fmt)
    assert archive == archive_path(folder, fmt) and archive.is_file()
    with QueryEncoder.open(archive) as encoder:
        extracted = encoder._open_bundle().folder
        assert extracted.is_dir()
        assert encoder.embed(text="red cotton shirt").dim == manifest.dim
    assert not extracted.exists()  # the temporary extraction is removed at close


def test_archive_of_the_folder_itself_and_unsafe_members(speaker_bundle, tmp_path):
    nested = tmp_path / "nested.tar.gz"
    with tarfile.open(nested, "w:gz") as tf:
        tf.add(speaker_bundle, arcname="speaker")
    with Bundle.open(nested) as bundle:
        assert bundle.manifest.profile_name == "speaker"
    evil = tmp_path / "evil.zip"
    evil.write_bytes(archive_bytes({"../escape.txt": b"x", "manifest.json": b"{}"}, "zip"))
    with pytest.raises(CorruptArtifactError, match="outside the bundle"):
        Bundle.open(evil)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not an archive")
    with pytest.raises(CorruptArtifactError, match="not a readable bundle archive"):
        Bundle.open(broken)


def test_describe_reports_checksums_and_interpreters(bundle_copy):
    info = describe(bundle_copy)
    assert info["problems"] == []
    assert info["total_bytes"] > 0
    for model in info["models"].values():
        assert model["sha256_ok"] is True
        assert model["interpreters"]["ai_edge_litert"] == {"status": "ok", "detail": ""}
        assert set(model["interpreters"]) == {"ai_edge_litert", "tflite_runtime", "tensorflow.lite"}
        for status in model["interpreters"].values():
            assert status["status"] in ("ok", "fails", "not installed")
    text = describe_text(info)
    assert "speaker" in text and "sha256 ok" in text and "validation" in text
    json.dumps(info)  # JSON-ready for `edgeshelf inspect --json`
    (bundle_copy / "text.tflite").write_bytes(b"garbage")
    info = describe(bundle_copy, interpreters=False)
    assert info["models"]["text"]["sha256_ok"] is False
    assert any("text.tflite" in p for p in info["problems"])
    assert "SHA256 MISMATCH" in describe_text(info)
