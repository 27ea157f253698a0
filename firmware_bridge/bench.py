"""The bridge's figures: Python decoder throughput, audio drops under a deliberately slow host,
and the C code's size (``edgeshelf bridge bench``).

* :func:`decoder_throughput`: frames/s and bytes/s :class:`FrameDecoder` sustains on a stream
  of encoded frames fed in 4 KiB reads (what a serial or socket read returns), one thread.
* :func:`slow_host_drops`: a simulated firmware streams real-time audio to a host whose
  per-chunk processing is slower than real time; the drops the firmware counts and reports
  (END_OF_UTTERANCE and STATUS) are returned next to what the host saw.
* :func:`c_code_size`: ``size`` of the compiled C codec (text, data, bss bytes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from edgeshelf.firmware_bridge.frames import Frame, FrameDecoder, encode_frame
from edgeshelf.firmware_bridge.host import BridgeAnswer, HostOptions, HostSession
from edgeshelf.firmware_bridge.messages import AudioChunk, Credit, message_to_frame
from edgeshelf.firmware_bridge.simulator import FirmwareSimulator, SimulatorOptions
from edgeshelf.firmware_bridge.transports import LoopbackTransport
from edgeshelf.sdk.errors import InvalidInputError, MissingDependencyError

C_DIR = Path(__file__).with_name("c")


@dataclass(frozen=True)
class DecoderThroughput:
    """``frames_per_s`` and ``bytes_per_s`` (wire bytes) over ``frames`` frames of
    ``payload_bytes`` each, best of ``repeats`` runs of ``seconds``."""

    label: str
    payload_bytes: int
    frames: int
    seconds: float
    frames_per_s: float
    bytes_per_s: float
    repeats: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _stream(kind: str, count: int) -> tuple[bytes, int]:
    if kind == "audio":  # 20 ms of 16 kHz PCM16: the bulk of the real traffic
        rng = np.random.default_rng(0)
        pcm = rng.integers(-3000, 3000, 320, dtype=np.int16).astype("<i2").tobytes()
        frames = [message_to_frame(AudioChunk(1, i, 320 * i, pcm), i & 0xFFFF) for i in range(count)]
    elif kind == "control":  # credit frames: the smallest real frames
        frames = [message_to_frame(Credit(i + 16), i & 0xFFFF) for i in range(count)]
    elif kind == "max":
        frames = [Frame(0x12, i & 0xFFFF, bytes(range(256)) * 4) for i in range(count)]
    else:
        raise InvalidInputError(f"unknown stream kind {kind!r}; choose audio, control or max")
    return b"".join(encode_frame(f) for f in frames), len(frames[0].payload)


def decoder_throughput(
    kind: str = "audio", frames: int = 20000, repeats: int = 3, read_size: int = 4096
) -> DecoderThroughput:
    """Decode ``frames`` frames of ``kind`` (``audio`` 650-byte payloads, ``control`` 4-byte,
    ``max`` 1024-byte) fed in ``read_size`` chunks; best of ``repeats``."""
    if frames < 1 or repeats < 1 or read_size < 1:
        raise InvalidInputError(
            f"frames, repeats and read_size must be >= 1, got {frames}, {repeats}, {read_size}"
        )
    wire, payload = _stream(kind, frames)
    chunks = [wire[i : i + read_size] for i in range(0, len(wire), read_size)]
    best = float("inf")
    for _ in range(repeats):
        decoder = FrameDecoder()
        start = time.perf_counter()
        got = 0
        for chunk in chunks:
            got += len(decoder.feed(chunk))
        elapsed = time.perf_counter() - start
        if got != frames:
            raise InvalidInputError(f"decoder delivered {got} of {frames} frames; the codec is broken")
        best = min(best, elapsed)
    return DecoderThroughput(kind, payload, frames, best, frames / best, len(wire) / best, repeats)


@dataclass(frozen=True)
class DropReport:
    """Audio over a host slower than real time: ``chunks`` captured by the firmware, ``sent``,
    ``dropped`` (reported by the firmware in END_OF_UTTERANCE and STATUS: ``status_dropped``),
    chunks the host consumed, and whether the query was still answered."""

    seconds_of_audio: float
    host_ms_per_chunk: float
    chunk_ms: int
    credit_window: int
    ring_chunks: int
    chunks: int
    sent: int
    dropped: int
    status_dropped: int
    host_chunks: int
    host_dropped_seen: int
    answered: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _SlowHandler:
    """A host handler whose streaming step takes ``delay_s`` per chunk (a slow recogniser)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def feed_audio(self, pcm16: np.ndarray, sample_rate: int) -> None:
        time.sleep(self.delay_s)

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer:
        return BridgeAnswer(("slow",), (1.0,), ("slow host",), transcript=f"{pcm16.size} samples")


def slow_host_drops(
    seconds: float = 1.0,
    host_ms_per_chunk: float = 40.0,
    chunk_ms: int = 20,
    credit_window: int = 4,
    ring_chunks: int = 4,
) -> DropReport:
    """Stream ``seconds`` of real-time audio to a host needing ``host_ms_per_chunk`` per
    ``chunk_ms`` chunk, over an in-memory link; return the drop counts."""
    if seconds <= 0 or host_ms_per_chunk < 0:
        raise InvalidInputError(
            f"seconds must be > 0 and host_ms_per_chunk >= 0, got {seconds}, {host_ms_per_chunk}"
        )
    host_end, firmware_end = LoopbackTransport.pair()
    pcm = (np.sin(np.arange(int(16000 * seconds)) / 8.0) * 8000).astype(np.int16)
    host_options = HostOptions(credit_window=credit_window)
    firmware_options = SimulatorOptions(pace=1.0, chunk_ms=chunk_ms, ring_chunks=ring_chunks)
    with (
        HostSession.open(host_end, _SlowHandler(host_ms_per_chunk / 1000.0), host_options) as host,
        FirmwareSimulator.open(firmware_end, firmware_options) as firmware,
    ):
        reply = firmware.query_audio(pcm)
        status = host.wait_for_status(5.0)
        records = host.wait_for_queries(1, 10.0)
        stats = host.stats
    return DropReport(
        seconds_of_audio=seconds,
        host_ms_per_chunk=host_ms_per_chunk,
        chunk_ms=chunk_ms,
        credit_window=credit_window,
        ring_chunks=ring_chunks,
        chunks=reply.chunks,
        sent=reply.sent,
        dropped=reply.dropped,
        status_dropped=status.audio_dropped,
        host_chunks=stats.audio_chunks,
        host_dropped_seen=records[0].dropped_chunks,
        answered=reply.result is not None,
    )


@dataclass(frozen=True)
class CodeSize:
    """``size`` of the C codec's object file compiled with ``flags`` by ``compiler``."""

    compiler: str
    flags: str
    text: int
    data: int
    bss: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def c_code_size(compiler: str = "gcc", flags: str = "-Os") -> CodeSize:
    """Compile ``c/edgeshelf_bridge.c`` and read its section sizes with ``size``."""
    cc, size = shutil.which(compiler), shutil.which("size")
    if cc is None or size is None:
        raise MissingDependencyError(
            f"measuring the C code size needs {compiler} and size (binutils) on PATH"
        )
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "edgeshelf_bridge.o")
        command = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", *flags.split(), "-c"]
        subprocess.run(
            [*command, str(C_DIR / "edgeshelf_bridge.c"), "-o", obj], check=True, capture_output=True
        )
        out = subprocess.run([size, obj], check=True, capture_output=True, text=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return CodeSize(compiler, flags, text, data, bss)
