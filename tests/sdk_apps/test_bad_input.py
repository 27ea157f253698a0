"""Inputs that must fail, each with its error type and the phrase that says what to do."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from edgeshelf.sdk import (
    AppOptions,
    CorruptArtifactError,
    InvalidInputError,
    NoSpeechError,
    SpaceMismatchError,
    SpeakerApp,
    open_device,
)
from edgeshelf.sdk.apps import LowConfidenceError, as_pcm16


def test_shard_of_another_space_is_refused(speaker_bundle, synthetic_shard):
    from edgeshelf.sdk.shard import read_shard_info

    other = read_shard_info(synthetic_shard).space_id
    with pytest.raises(SpaceMismatchError) as info:
        SpeakerApp.open(speaker_bundle, shard=synthetic_shard)
    message = str(info.value)
    assert other in message and str(synthetic_shard) in message


def test_truncated_shard_is_refused(speaker_bundle, apps_shard, tmp_path):
    cut = tmp_path / "cut.shard"
    data = apps_shard.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArtifactError, match=str(cut)):
        SpeakerApp.open(speaker_bundle, shard=cut)


def test_bundle_with_a_bad_checksum_is_refused(speaker_bundle, apps_shard, tmp_path):
    bad = tmp_path / "bad.bundle"
    shutil.copytree(speaker_bundle, bad)
    model = sorted(bad.glob("*.tflite"))[0]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match="sha256") as info:
        SpeakerApp.open(bad, shard=apps_shard)
    assert model.name in str(info.value)


@pytest.mark.parametrize("seconds", [0.5, 2.0])
def test_silence_is_no_speech(speaker_app, seconds):
    with pytest.raises(NoSpeechError, match="no speech recognised"):
        speaker_app.answer_audio(np.zeros(int(16000 * seconds), np.int16), 16000)


def test_empty_audio_is_no_speech(speaker_app):
    with pytest.raises(NoSpeechError, match="empty"):
        speaker_app.answer_audio(b"", 16000)


def test_noise_is_no_speech(speaker_app):
    noise = np.random.default_rng(0).standard_normal(16000) * 0.2 * 32767
    with pytest.raises(NoSpeechError, match="no speech recognised"):
        speaker_app.answer_audio(noise.clip(-32767, 32767).astype(np.int16), 16000)


OUT_OF_GRAMMAR = "the weather is nice today"  # measured: heard as one catalogue word, flagged unsure


def test_unsure_transcript_is_answered_with_a_note_or_rejected(speaker_bundle, apps_shard, espeak_wav):
    wav = espeak_wav(OUT_OF_GRAMMAR)
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=AppOptions(policy="local-only")) as app:
        answer = app.answer_wav(wav)
    assert answer.transcript.low_confidence
    assert "low-confidence transcript" in answer.to_dict()["note"]
    options = AppOptions(policy="local-only", reject_low_confidence=True)
    with (
        SpeakerApp.open(speaker_bundle, shard=apps_shard, options=options) as app,
        pytest.raises(LowConfidenceError, match="say it again") as info,
    ):
        app.answer_wav(wav)
    assert info.value.transcript.text == answer.transcript.text


@pytest.mark.parametrize(
    ("audio", "phrase"),
    [
        (b"\x00", "even number of bytes"),
        (np.zeros((2, 100), np.int16), "mono"),
        (np.zeros(10, np.int32), "int16 PCM or float32"),
        (np.array([0.0, np.nan], np.float32), "NaN"),
    ],
)
def test_bad_audio_arrays(audio, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        as_pcm16(audio)


def test_one_pixel_image_is_refused(hub_app):
    with pytest.raises(InvalidInputError, match="1x1 pixels; at least 8x8"):
        hub_app.answer_frame(np.zeros((1, 1, 3), np.uint8))


def test_unreadable_image_file_is_refused(hub_app, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    with pytest.raises(InvalidInputError, match="not a readable image"):
        hub_app.answer_image(junk)


def test_speaker_bundle_cannot_see(speaker_bundle, apps_shard):
    with (
        open_device(speaker_bundle, apps_shard, options=AppOptions(policy="local-only")) as device,
        pytest.raises(InvalidInputError, match="not image"),
    ):
        device.answer_frame(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"num_threads": 0}, "num_threads must be >= 1"),
        ({"asr_engine": "whisper"}, "'pocketsphinx' or 'vosk'"),
        ({"max_record_seconds": 0}, "max_record_seconds must be > 0"),
    ],
)
def test_app_options_are_checked(kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        AppOptions(**kwargs)


def test_an_app_needs_somewhere_to_search(speaker_bundle):
    with pytest.raises(InvalidInputError, match="needs a shard"):
        SpeakerApp.open(speaker_bundle)


def test_empty_text_and_closed_app(speaker_bundle, apps_shard):
    app = SpeakerApp.open(speaker_bundle, shard=apps_shard)
    with pytest.raises(InvalidInputError, match="empty"):
        app.answer_text("   ")
    app.close()
    app.close()
    with pytest.raises(InvalidInputError, match="closed"):
        app.answer_text("red dress")


def test_hub_needs_some_input(hub_app):
    with pytest.raises(InvalidInputError, match="at least one of text, image, video, speech"):
        hub_app.answer()
