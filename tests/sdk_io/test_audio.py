"""Audio capture: the endpoint detector, WAV sources, and the real sounddevice path on a virtual
ALSA microphone (tests/fixtures_sdk_io.py)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.sdk.audio import (
    EndpointDetector,
    EndpointOptions,
    Microphone,
    MicrophoneOptions,
    Utterance,
    WavFileSource,
    find_input_device,
    frame_energy_db,
    list_input_devices,
    record_utterance,
)
from edgeshelf.sdk.errors import DeviceError, InvalidInputError
from edgeshelf.sdk.preprocess import read_wav, resample

from tests.conftest import require_shared_data

RATE = 16000
FRAME_S = 0.03


def _noise(seconds: float, db: float, seed: int) -> np.ndarray:
    """Gaussian noise at ``db`` dBFS (RMS), int16."""
    rng = np.random.default_rng(seed)
    rms = 10 ** (db / 20) * 32768
    return np.clip(rng.normal(0, rms, int(seconds * RATE)), -32768, 32767).astype(np.int16)


def _tone(seconds: float, db: float = -20.0, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    amplitude = 10 ** (db / 20) * 32768 * np.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _syllables(seconds: float) -> np.ndarray:
    """Speech-like: 0.25 s tone bursts with 0.1 s gaps, ending on a burst."""
    out = np.zeros(int(seconds * RATE), np.int16)
    burst, period = int(0.25 * RATE), int(0.35 * RATE)
    for end in range(out.size, 0, -period):
        out[max(0, end - burst) : end] = _tone((end - max(0, end - burst)) / RATE)
    return out


def _signal(*parts: tuple[str, float]) -> np.ndarray:
    """Concatenate ``("quiet" | "tone" | "speech", seconds)`` parts over -70 dBFS noise."""
    pieces = []
    for i, (kind, seconds) in enumerate(parts):
        sound = {"tone": _tone, "speech": _syllables}.get(kind)
        noise = _noise(seconds, -70, i)
        pieces.append(noise if sound is None else sound(seconds) + noise)
    return np.concatenate(pieces)


def _detect(
    samples: np.ndarray, options: EndpointOptions | None = None, chunk: int | None = None
) -> Utterance:
    detector = EndpointDetector(options or EndpointOptions(), RATE)
    step = chunk or samples.size
    for start in range(0, samples.size, step):
        if detector.push(samples[start : start + step]) is not None:
            break
    return detector.result()


# -- the endpoint detector: a table of known signals -------------------------------------------

ENDPOINT_CASES = [
    # parts, reason, speech start, speech end (s), or None
    ([("quiet", 6.0)], "no_speech", None, None),
    ([("quiet", 1.0), ("tone", 1.0), ("quiet", 2.0)], "end_of_speech", 1.0, 2.0),
    # speech at the very start: found once a pause between syllables brings the floor down
    (
        [("tone", 0.3), ("quiet", 0.1), ("tone", 0.3), ("quiet", 0.1), ("tone", 0.3), ("quiet", 2.0)],
        "end_of_speech",
        0.0,
        1.1,
    ),
    # a steady level from the start is the room's noise, not speech
    ([("tone", 6.0)], "no_speech", None, None),
    ([("quiet", 0.5), ("tone", 1.0)], "end_of_input", 0.5, 1.5),
    ([("quiet", 0.5), ("speech", 12.0)], "max_length", 0.5, 10.5),
    ([("quiet", 1.0), ("tone", 0.06), ("quiet", 5.0)], "no_speech", None, None),  # a click
]


@pytest.mark.parametrize(("parts", "reason", "start", "end"), ENDPOINT_CASES)
def test_endpoint_detector_known_signals(parts, reason, start, end):
    utterance = _detect(_signal(*parts))
    assert utterance.reason == reason
    if start is None:
        assert not utterance.has_speech and utterance.samples.size == 0
        assert utterance.speech_start_s is None
    else:
        assert utterance.speech_start_s == pytest.approx(start, abs=2 * FRAME_S)
        assert utterance.speech_end_s == pytest.approx(end, abs=4 * FRAME_S)  # may stop in a gap
        # padding_s either side of the speech, clipped to what was captured
        assert utterance.duration_s <= (end - start) + 2 * EndpointOptions().padding_s + 2 * FRAME_S
        assert utterance.samples.dtype == np.int16


def test_silence_stops_at_the_leading_timeout_not_at_the_end_of_input():
    options = EndpointOptions(start_timeout_s=2.0)
    detector = EndpointDetector(options, RATE)
    silence = _noise(30.0, -70, 0)
    fed = 0
    for start in range(0, silence.size, 480):
        fed += 480
        if detector.push(silence[start : start + 480]) is not None:
            break
    assert detector.reason == "no_speech"
    assert fed / RATE == pytest.approx(2.0, abs=FRAME_S)
    assert detector.result().captured_s == pytest.approx(2.0, abs=FRAME_S)


def test_endpoint_is_independent_of_block_size():
    samples = _signal(("quiet", 0.7), ("tone", 0.8), ("quiet", 0.3), ("tone", 0.4), ("quiet", 1.5))
    whole = _detect(samples)
    rng = np.random.default_rng(7)
    for chunk in (1, 7, 479, 480, 4801, int(rng.integers(2, 3000))):
        other = _detect(samples, chunk=chunk)
        assert other.reason == whole.reason == "end_of_speech"
        assert np.array_equal(other.samples, whole.samples)
    # the 0.3 s gap is shorter than end_silence_s: one utterance spans both tones
    assert whole.speech_start_s == pytest.approx(0.7, abs=2 * FRAME_S)
    assert whole.speech_end_s == pytest.approx(2.2, abs=2 * FRAME_S)


def test_digital_silence_at_the_start_does_not_make_noise_look_like_speech():
    samples = np.concatenate(
        [np.zeros(RATE // 10, np.int16), _noise(2.0, -45, 1), _tone(1.0), _noise(2.0, -45, 2)]
    )
    utterance = _detect(samples)
    assert utterance.reason == "end_of_speech"
    assert utterance.speech_start_s == pytest.approx(2.1, abs=2 * FRAME_S)


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"frame_ms": 5}, "frame_ms"),
        ({"end_silence_s": 0}, "end_silence_s"),
        ({"start_timeout_s": -1}, "start_timeout_s"),
        ({"padding_s": -0.1}, "padding_s"),
    ],
)
def test_endpoint_options_reject_bad_values(kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        EndpointOptions(**kwargs)


def test_push_rejects_odd_bytes_and_wrong_dtype():
    detector = EndpointDetector()
    with pytest.raises(InvalidInputError, match="even number of bytes"):
        detector.push(b"\x00\x01\x02")
    with pytest.raises(InvalidInputError, match="int16"):
        detector.push(np.zeros(10, np.float32))


def test_frame_energy_db_table():
    assert frame_energy_db(np.zeros(480, np.int16)) == pytest.approx(-120.0)
    full = np.full(480, 32767, np.int16)
    assert frame_energy_db(full) == pytest.approx(0.0, abs=0.01)
    assert frame_energy_db(_tone(0.03, db=-20.0)) == pytest.approx(-20.0, abs=0.5)


# -- WAV sources -------------------------------------------------------------------------------


def test_wav_source_blocks_and_resampling(tmp_path):
    import wave

    path = tmp_path / "stereo_8k.wav"
    stereo = np.stack([_tone(1.0), _tone(1.0)], axis=1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(stereo[::2].astype("<i2").tobytes())  # 1 s at 8 kHz
    with WavFileSource(path, block_ms=20) as source:
        assert source.source_rate == 8000 and source.sample_rate == 16000
        blocks = list(source.blocks())
        assert all(len(b) == 640 for b in blocks[:-1])
        assert sum(len(b) for b in blocks) // 2 == source.samples.size == 16000
        assert source.read() is None
    with pytest.raises(InvalidInputError, match="closed"):
        source.read()


def test_wav_source_max_seconds_caps_and_bad_values(tmp_path):
    import wave

    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(_tone(2.0).tobytes())
    assert WavFileSource(path, max_seconds=0.5).duration_s == pytest.approx(0.5)
    with pytest.raises(InvalidInputError, match="max_seconds"):
        WavFileSource(path, max_seconds=0)
    with pytest.raises(InvalidInputError, match="block_ms"):
        WavFileSource(path, block_ms=2)
    with pytest.raises(InvalidInputError, match="does not exist"):
        WavFileSource(tmp_path / "missing.wav")


def test_record_utterance_max_seconds_cuts_speech_as_max_length(tmp_path):
    import wave

    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(_signal(("quiet", 0.5), ("tone", 5.0)).tobytes())
    with WavFileSource(path) as source:
        utterance = source.record_utterance(max_seconds=2.0)
    assert utterance.reason == "max_length"
    assert utterance.captured_s == pytest.approx(2.0, abs=FRAME_S)
    with pytest.raises(InvalidInputError, match="max_seconds"):
        record_utterance(WavFileSource(path), max_seconds=0)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "rate", "start", "end", "reason"),
    [
        # JFK: "And so my fellow Americans" then a 1.2 s pause: the first utterance ends there
        ("whisper_cpp_jfk.wav", 16000, 0.33, 2.13, "end_of_speech"),
        # LJSpeech starts speaking at once and stops 0.1 s before the file ends
        ("ljspeech_LJ050-0131.wav", 22050, 0.0, 7.56, "end_of_input"),
        ("vosk_api_test.wav", 16000, 0.87, 2.94, "end_of_speech"),
    ],
)
def test_real_recordings_through_wav_source_resample_and_vad(name, rate, start, end, reason):
    path = require_shared_data("speech", name)
    samples, source_rate = read_wav(path)
    assert source_rate == rate
    with WavFileSource(path) as source:
        assert source.samples.size == pytest.approx(samples.size * RATE / rate, abs=1)
        expected = np.clip(np.round(resample(samples, rate, RATE) * 32768), -32768, 32767).astype(np.int16)
        assert np.array_equal(source.samples, expected)
        utterance = source.record_utterance()
    assert utterance.reason == reason
    assert utterance.speech_start_s == pytest.approx(start, abs=0.1)
    assert utterance.speech_end_s == pytest.approx(end, abs=0.1)


# -- the real sounddevice path on a virtual ALSA microphone -----------------------------------


def test_virtual_microphone_delivers_the_exact_samples(virtual_microphone, espeak_wav):
    speech, _ = read_wav(espeak_wav("navy blue men shirt"))
    pcm = np.concatenate(
        [np.zeros(8000, np.int16), np.round(speech * 32768).astype(np.int16), np.zeros(8000, np.int16)]
    )
    name = virtual_microphone(pcm)
    assert name in [d.name for d in list_input_devices()]
    options = MicrophoneOptions(device=name, max_seconds=pcm.size / RATE, block_ms=20)
    with Microphone.open(options) as mic:
        assert mic.device.name == name and mic.sample_rate == RATE
        captured = np.frombuffer(b"".join(mic.blocks()), dtype="<i2")
        assert mic.read() is None  # max_seconds reached: end of input, not a hang
        assert mic.overflows == 0
        assert mic.seconds_read == pytest.approx(pcm.size / RATE)
    assert np.array_equal(captured, pcm)
    mic.close()  # idempotent
    with pytest.raises(DeviceError, match="closed"):
        mic.read()


def test_virtual_microphone_utterance_is_endpointed_and_recognised(virtual_microphone, espeak_wav):
    from edgeshelf.sdk.asr import RecognizerOptions, SpeechRecognizer

    speech, _ = read_wav(espeak_wav("puma running shoes"))
    lead, tail = int(0.6 * RATE), int(2.0 * RATE)
    pcm = np.concatenate(
        [np.zeros(lead, np.int16), np.round(speech * 32768).astype(np.int16), np.zeros(tail, np.int16)]
    )
    name = virtual_microphone(pcm)
    with Microphone.open(MicrophoneOptions(device=name, max_seconds=pcm.size / RATE)) as mic:
        utterance = mic.record_utterance()
    assert utterance.reason == "end_of_speech"
    assert utterance.speech_start_s == pytest.approx(0.6, abs=0.1)
    voiced_end = (lead + np.flatnonzero(np.abs(speech) > 0.01)[-1]) / RATE  # espeak-ng pads with silence
    # a weak final fricative may fall under the threshold: padding_s keeps it in the samples
    assert voiced_end - EndpointOptions().padding_s <= utterance.speech_end_s <= voiced_end
    assert utterance.captured_s < pcm.size / RATE  # stopped at the end of speech, not the cap
    grammar = ["puma running shoes", "navy blue men shirt", "brown leather sandals"]
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=grammar)) as asr:
        assert asr.transcribe(utterance.samples).text == "puma running shoes"


def test_virtual_microphone_silence_gives_no_speech(virtual_microphone):
    name = virtual_microphone(np.zeros(8 * RATE, np.int16))
    options = MicrophoneOptions(device=name, max_seconds=8.0, endpoint=EndpointOptions(start_timeout_s=3.0))
    with Microphone.open(options) as mic:
        utterance = mic.record_utterance()
    assert utterance.reason == "no_speech"
    assert not utterance.has_speech
    assert utterance.captured_s == pytest.approx(3.0, abs=FRAME_S)


def test_bad_device_name_lists_the_available_inputs(virtual_microphone):
    name = virtual_microphone(np.zeros(RATE, np.int16))
    with pytest.raises(DeviceError, match="no audio input device matches 'no-such-mic'") as info:
        Microphone.open(MicrophoneOptions(device="no-such-mic", max_seconds=1.0))
    assert "available input devices" in str(info.value) and name in str(info.value)
    with pytest.raises(DeviceError, match="is not an input device"):
        find_input_device(9999)
    # a unique part of the name, any case, finds it
    assert find_input_device(name.upper()[-6:]).name == name


def test_no_input_device_at_all_says_what_to_do():
    if list_input_devices():
        pytest.skip("this machine has audio inputs; the error for none cannot be shown here")
    with pytest.raises(DeviceError, match="no default audio input") as info:
        Microphone.open(MicrophoneOptions(max_seconds=1.0))
    assert "arecord -l" in str(info.value)


def test_ambiguous_device_name_is_an_error(virtual_microphone):
    first = virtual_microphone(np.zeros(RATE, np.int16))
    second = virtual_microphone(np.zeros(RATE, np.int16))
    with pytest.raises(DeviceError, match="matches several input devices"):
        find_input_device("edgeshelf_vmic")
    assert find_input_device(first).name == first  # an exact name wins over partial matches
    assert find_input_device(second).index != find_input_device(first).index


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"sample_rate": 100}, "sample_rate"),
        ({"block_ms": 0}, "block_ms"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"read_timeout_s": 0}, "read_timeout_s"),
        ({"device": 1.5}, "device"),
    ],
)
def test_microphone_options_reject_bad_values(kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        MicrophoneOptions(**kwargs)
