"""Speech synthesis into WAV files with ``espeak-ng`` (the demo's spoken query, voice benchmarks).

``espeak-ng`` is a system package (``apt-get install espeak-ng``), not a Python one: it is small,
offline, and speaks English and Korean, which is what the demo and the Vosk tests need.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from edgeshelf.sdk.errors import InvalidInputError, MissingDependencyError


def espeak_available() -> bool:
    """Whether ``espeak-ng`` is on the PATH."""
    return shutil.which("espeak-ng") is not None


def speak_to_wav(text: str, out: str | os.PathLike[str], voice: str = "en-us", speed: int = 150) -> Path:
    """Speak ``text`` with ``voice`` at ``speed`` words per minute into the WAV file ``out``
    (written atomically: a temporary sibling, then a rename); return its path."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingDependencyError("speaking needs espeak-ng: apt-get install espeak-ng")
    target = Path(out)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.wav")
    try:
        done = subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-w", str(tmp), text],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0 or not tmp.is_file():
            raise InvalidInputError(
                f"espeak-ng could not speak {text!r} with voice {voice}: {done.stderr.strip()}"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target
