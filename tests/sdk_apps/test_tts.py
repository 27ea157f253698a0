"""Speech synthesis into WAV files (espeak-ng), as the demo and the voice benchmark use it."""

from __future__ import annotations

import shutil
import wave

import pytest
from edgeshelf.sdk.errors import MissingDependencyError
from edgeshelf.sdk.tts import espeak_available, speak_to_wav


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)
def test_speak_to_wav_writes_a_readable_wav(tmp_path):
    out = speak_to_wav("red leather wallet", tmp_path / "q.wav")
    with wave.open(str(out)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        assert 0.5 < wav.getnframes() / wav.getframerate() < 5.0
    assert [p.name for p in tmp_path.iterdir()] == ["q.wav"]  # no temporary file left behind


def test_without_espeak_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not espeak_available()
    with pytest.raises(MissingDependencyError, match="apt-get install espeak-ng"):
        speak_to_wav("hello", tmp_path / "q.wav")
    assert not (tmp_path / "q.wav").exists()
