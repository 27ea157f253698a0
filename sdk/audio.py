"""Audio capture: a live microphone (sounddevice / PortAudio), WAV files, and end-of-speech detection.

Data contract: every source delivers 16-bit little-endian PCM, mono, at ``sample_rate`` Hz
(16 kHz by default), in blocks of ``block_ms`` milliseconds; ``read()`` returns one block as
``bytes`` and ``None`` at the end of the input. :func:`record_utterance` (and each source's
``record_utterance`` method) returns an :class:`Utterance`: int16 samples ``[N]`` of one
endpointed utterance and why capture stopped (``"end_of_speech"``, ``"max_length"``,
``"no_speech"``, ``"end_of_input"``). Silence gives ``reason="no_speech"`` and no samples, never a
hang: every wait is bounded (leading-silence timeout, ``max_seconds``, ``read_timeout_s``).

Live microphone, the way the Vosk microphone example does it: the PortAudio callback only copies
the bytes into a queue; ``read()`` takes them out in the caller's thread, so a slow recogniser
never blocks the audio thread (a full queue drops blocks and counts them in ``overflows``).

Picking a microphone (e.g. on a Raspberry Pi)::

    $ arecord -l                       # ALSA's cards: "card 1: Device [USB PnP Sound Device]"
    $ python -c "from edgeshelf.sdk.audio import list_input_devices; print(*list_input_devices(), sep='\\n')"
    [0] USB PnP Sound Device: Audio (hw:1,0)  ALSA  1 ch  44100 Hz
    [3] default  ALSA  128 ch  44100 Hz *

    mic = Microphone.open(MicrophoneOptions(device="USB PnP"))   # part of the name, any case
    mic = Microphone.open(MicrophoneOptions(device=0))           # or the index
    # CLI: edgeshelf speaker ... --mic "USB PnP"

A name matches when it equals a device name or is a unique part of one; an unknown or ambiguous
name raises :class:`~edgeshelf.sdk.errors.DeviceError` listing the input devices. ``device=None``
is PortAudio's default input (on Raspberry Pi OS: ALSA's ``default``, set by ``~/.asoundrc`` or
``raspi-config``). Many USB microphones and HATs (ReSpeaker, I2S MEMS) record at 44.1/48 kHz
only: open ALSA's ``default``, ``sysdefault`` or a ``plughw:CARD,0`` device, which resample to
16 kHz for you, rather than the raw ``hw:`` device (which rejects 16 kHz with "Invalid sample
rate"). PortAudio reads the device list once per process: after plugging a microphone in, call
:func:`rescan_devices` (with no stream open).

End of speech is an energy detector (:class:`EndpointDetector`): frame energy in dBFS against a
noise floor tracked as the quietest frame of the last seconds; onset after ``min_speech_s`` of
speech-level frames, end after ``end_silence_s`` below it. See :class:`EndpointOptions`.
"""

from __future__ import annotations

import collections
import math
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from edgeshelf.sdk.errors import DeviceError, InvalidInputError, MissingDependencyError

StopReason = Literal["end_of_speech", "max_length", "no_speech", "end_of_input"]

#: Frames at or below this level (dBFS; about 3 LSB RMS) are digital silence: they do not update
#: the noise floor, so a muted start or zero padding cannot make the room's hiss look like speech.
DIGITAL_SILENCE_DB = -80.0


# --------------------------------------------------------------------------------------------
# options and results


@dataclass(frozen=True)
class EndpointOptions:
    """End-of-speech detection settings (times in seconds, levels in dB).

    ``frame_ms``: analysis frame. A frame is speech when its energy exceeds the noise floor by
    ``threshold_db`` and is above ``min_level_db`` dBFS + ``threshold_db`` (so digital silence
    never counts as speech). The floor is the quietest frame energy (at least ``min_level_db``)
    in the last ``floor_window_s``; digital silence (below :data:`DIGITAL_SILENCE_DB`, e.g. a
    muted start) does not count.
    ``start_timeout_s``: give up with ``"no_speech"`` when no speech starts this long after the
    start. Speech starts after ``min_speech_s`` of consecutive speech frames and ends after
    ``end_silence_s`` of non-speech (``"end_of_speech"``) or at ``max_utterance_s``
    (``"max_length"``). ``padding_s`` of audio is kept before the onset and after the last speech.
    """

    frame_ms: int = 30
    threshold_db: float = 12.0
    min_level_db: float = -60.0
    floor_window_s: float = 3.0
    start_timeout_s: float = 5.0
    min_speech_s: float = 0.1
    end_silence_s: float = 0.8
    max_utterance_s: float = 10.0
    padding_s: float = 0.25

    def __post_init__(self) -> None:
        if not 10 <= self.frame_ms <= 100:
            raise InvalidInputError(f"EndpointOptions.frame_ms must be in [10, 100], got {self.frame_ms}")
        for name in ("start_timeout_s", "end_silence_s", "max_utterance_s", "floor_window_s"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"EndpointOptions.{name} must be > 0, got {getattr(self, name)}")
        for name in ("min_speech_s", "padding_s", "threshold_db"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"EndpointOptions.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True, repr=False)
class Utterance:
    """One endpointed utterance.

    ``samples``: int16 ``[N]`` mono at ``sample_rate`` Hz (empty when ``reason == "no_speech"``).
    ``speech_start_s`` / ``speech_end_s``: the detected speech, in seconds from the start of the
    capture (None without speech). ``captured_s``: how much audio was read in all.
    """

    samples: np.ndarray
    sample_rate: int
    reason: StopReason
    captured_s: float
    speech_start_s: float | None = None
    speech_end_s: float | None = None

    @property
    def has_speech(self) -> bool:
        return self.samples.size > 0

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate

    def pcm16(self) -> bytes:
        """The samples as 16-bit little-endian PCM bytes (what the recognisers take)."""
        return self.samples.astype("<i2", copy=False).tobytes()

    def to_float(self) -> np.ndarray:
        """float32 ``[N]`` in [-1, 1]."""
        return self.samples.astype(np.float32) / 32768.0

    def __repr__(self) -> str:
        span = ""
        if self.speech_start_s is not None:
            span = f", speech {self.speech_start_s:.2f}-{self.speech_end_s:.2f} s"
        return (
            f"Utterance({self.reason}, {self.duration_s:.2f} s at {self.sample_rate} Hz{span}, "
            f"captured {self.captured_s:.2f} s)"
        )


@dataclass(frozen=True)
class InputDevice:
    """An audio input PortAudio can open."""

    index: int
    name: str
    host_api: str
    channels: int
    default_sample_rate: float
    is_default: bool = False

    def __str__(self) -> str:
        mark = " *" if self.is_default else ""
        return (
            f"[{self.index}] {self.name}  {self.host_api}  {self.channels} ch  "
            f"{self.default_sample_rate:.0f} Hz{mark}"
        )


@dataclass(frozen=True)
class MicrophoneOptions:
    """How to open a microphone.

    ``device``: an index, a name (or a unique part of one, any case), or None for the default
    input. ``sample_rate``: Hz delivered (16000 for the recognisers). ``block_ms``: size of each
    ``read()`` block. ``max_seconds``: stop delivering (``read()`` -> None) after this much audio
    in total (None: never). ``read_timeout_s``: ``read()`` raises DeviceError when no audio
    arrives this long. ``queue_seconds``: audio buffered between the callback and ``read()``.
    ``endpoint``: end-of-speech settings for :meth:`Microphone.record_utterance`.
    """

    device: int | str | None = None
    sample_rate: int = 16000
    block_ms: int = 30
    max_seconds: float | None = None
    read_timeout_s: float = 2.0
    queue_seconds: float = 30.0
    endpoint: EndpointOptions = field(default_factory=EndpointOptions)

    def __post_init__(self) -> None:
        _check_rate_block(self.sample_rate, self.block_ms, "MicrophoneOptions")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise InvalidInputError(
                f"MicrophoneOptions.max_seconds must be > 0 or None, got {self.max_seconds}"
            )
        if self.read_timeout_s <= 0 or self.queue_seconds <= 0:
            raise InvalidInputError(
                "MicrophoneOptions.read_timeout_s and queue_seconds must be > 0, "
                f"got {self.read_timeout_s}, {self.queue_seconds}"
            )
        if isinstance(self.device, bool) or not isinstance(self.device, (int, str, type(None))):
            raise InvalidInputError(
                f"MicrophoneOptions.device must be an int, a str or None, got {self.device!r}"
            )


def _check_rate_block(sample_rate: int, block_ms: int, where: str) -> None:
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
        raise InvalidInputError(
            f"{where}.sample_rate must be an int in [8000, 192000] Hz, got {sample_rate!r}"
        )
    if not isinstance(block_ms, int) or not 5 <= block_ms <= 1000:
        raise InvalidInputError(f"{where}.block_ms must be an int in [5, 1000], got {block_ms!r}")


# --------------------------------------------------------------------------------------------
# end-of-speech detection


def frame_energy_db(frame: np.ndarray) -> float:
    """Mean-square energy of int16 samples in dBFS (a full-scale square wave is 0 dB; -120 floor)."""
    x = frame.astype(np.float64) / 32768.0
    power = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * math.log10(max(power, 1e-12))


class EndpointDetector:
    """Energy-based voice-activity and end-of-speech detector over int16 mono PCM.

    Push audio with :meth:`push` (bytes or int16 arrays, any block size); it returns the
    :data:`StopReason` once capture should stop, else None. Then :meth:`result` gives the
    :class:`Utterance`. Deterministic: the same samples give the same decision, however they are
    split into blocks.
    """

    def __init__(self, options: EndpointOptions | None = None, sample_rate: int = 16000) -> None:
        self.options = options or EndpointOptions()
        self.sample_rate = int(sample_rate)
        o = self.options
        self._frame = max(1, self.sample_rate * o.frame_ms // 1000)
        frame_s = self._frame / self.sample_rate
        self._frames_floor = max(1, round(o.floor_window_s / frame_s))
        self._frames_onset = max(1, math.ceil(o.min_speech_s / frame_s - 1e-9))
        self._frames_end = max(1, math.ceil(o.end_silence_s / frame_s - 1e-9))
        self._frames_timeout = max(1, math.ceil(o.start_timeout_s / frame_s - 1e-9))
        self._frames_max = max(1, math.ceil(o.max_utterance_s / frame_s - 1e-9))
        self._frames_pad = round(o.padding_s / frame_s)
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames: list[np.ndarray] = []  # every frame seen (bounded by the caller's caps)
        self._levels: list[float] = []  # their energies, dBFS
        self._energies: collections.deque[float] = collections.deque(maxlen=self._frames_floor)
        self._run = 0  # consecutive speech frames (before onset) or silence frames (after)
        self._onset: int | None = None  # frame index where speech started
        self._last_speech: int | None = None
        self.reason: StopReason | None = None
        self.noise_floor_db: float | None = None

    @property
    def in_speech(self) -> bool:
        return self._onset is not None and self.reason is None

    def push(self, pcm: bytes | bytearray | memoryview | np.ndarray) -> StopReason | None:
        """Add audio; return why to stop (once decided; later pushes are ignored), else None."""
        if self.reason is not None:
            return self.reason
        if isinstance(pcm, (bytes, bytearray, memoryview)):
            if len(pcm) % 2:
                raise InvalidInputError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
            data = np.frombuffer(bytes(pcm), dtype="<i2").astype(np.int16)
        else:
            data = np.asarray(pcm)
            if data.dtype != np.int16 or data.ndim != 1:
                raise InvalidInputError(
                    f"push() takes int16 [N] samples or bytes, got {data.dtype} {data.shape}"
                )
        buffer = np.concatenate([self._pending, data]) if self._pending.size else data
        usable = buffer.size - buffer.size % self._frame
        for start in range(0, usable, self._frame):
            self._step(buffer[start : start + self._frame])
            if self.reason is not None:
                break
        self._pending = buffer[usable:].copy() if self.reason is None else np.zeros(0, np.int16)
        return self.reason

    def _step(self, frame: np.ndarray) -> None:
        o = self.options
        index = len(self._frames)
        self._frames.append(frame)
        energy = frame_energy_db(frame)
        self._levels.append(energy)
        if energy > DIGITAL_SILENCE_DB:  # zeros (a muted start, padding) say nothing about the room
            self._energies.append(max(energy, o.min_level_db))
        self.noise_floor_db = min(self._energies) if self._energies else o.min_level_db
        speech = energy > max(self.noise_floor_db, o.min_level_db) + o.threshold_db
        if self._onset is None:
            self._run = self._run + 1 if speech else 0
            if self._run >= self._frames_onset:
                self._onset = self._backtrack(index - self._run + 1)
                self._last_speech = index
                self._run = 0
            elif index + 1 >= self._frames_timeout:
                self.reason = "no_speech"
            return
        if speech:
            self._last_speech = index
            self._run = 0
        else:
            self._run += 1
        if self._run >= self._frames_end:
            self.reason = "end_of_speech"
        elif index + 1 - self._onset >= self._frames_max:
            self.reason = "max_length"

    def _backtrack(self, onset: int) -> int:
        """Move the onset back over earlier frames that are speech by the current floor: speech
        at the very start of the input sets a high floor and is only recognised once a quieter
        frame has brought the floor down."""
        threshold = max(self.noise_floor_db, self.options.min_level_db) + self.options.threshold_db
        gap = self._frames_onset + 2  # short dips inside a word do not end the look-back
        start, quiet = onset, 0
        for j in range(onset - 1, -1, -1):
            if self._levels[j] > threshold:
                start, quiet = j, 0
            else:
                quiet += 1
                if quiet > gap:
                    break
        return start

    def finish(self, in_speech: StopReason = "end_of_input") -> StopReason:
        """The input ended or was cut: decide now (``in_speech`` if speech had started, else
        ``"no_speech"``); a decision already taken stands."""
        if self.reason is None:
            self.reason = in_speech if self._onset is not None else "no_speech"
        return self.reason

    def result(self) -> Utterance:
        """The utterance once a stop reason is known (calls :meth:`finish` if needed)."""
        reason = self.finish()
        frame_s = self._frame / self.sample_rate
        captured = len(self._frames) * frame_s + self._pending.size / self.sample_rate
        if self._onset is None or reason == "no_speech":
            return Utterance(np.zeros(0, np.int16), self.sample_rate, "no_speech", captured)
        first = max(0, self._onset - self._frames_pad)
        last = min(len(self._frames), (self._last_speech or self._onset) + 1 + self._frames_pad)
        samples = np.concatenate(self._frames[first:last]).astype(np.int16)
        return Utterance(
            samples=samples,
            sample_rate=self.sample_rate,
            reason=reason,
            captured_s=captured,
            speech_start_s=self._onset * frame_s,
            speech_end_s=((self._last_speech or self._onset) + 1) * frame_s,
        )


# --------------------------------------------------------------------------------------------
# sources


class AudioSource:
    """What every audio source offers: ``read()`` blocks, ``record_utterance()``, ``close()``.

    Blocks are PCM16 little-endian mono ``bytes`` at ``sample_rate``; ``read()`` returns None
    at the end of the input. Sources are context managers; ``close()`` is idempotent.
    """

    sample_rate: int
    endpoint: EndpointOptions

    def read(self) -> bytes | None:
        raise NotImplementedError

    def blocks(self) -> Iterator[bytes]:
        """Every remaining block until the end of the input."""
        while (block := self.read()) is not None:
            yield block

    def record_utterance(
        self, *, max_seconds: float | None = None, endpoint: EndpointOptions | None = None
    ) -> Utterance:
        """Read until the end of one utterance; see :func:`record_utterance`."""
        return record_utterance(self, endpoint=endpoint, max_seconds=max_seconds)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def record_utterance(
    source: AudioSource, *, endpoint: EndpointOptions | None = None, max_seconds: float | None = None
) -> Utterance:
    """Read ``source`` until one utterance is endpointed; never more than ``max_seconds`` of audio.

    Stops at the end of speech, at ``endpoint.max_utterance_s`` of speech, when no speech starts
    within ``endpoint.start_timeout_s`` (``"no_speech"``, no samples), or at the end of the input.
    ``max_seconds`` caps the audio read in this call, leading silence included (None: the
    endpoint's time-outs alone bound it).
    """
    options = endpoint or source.endpoint
    if max_seconds is not None:
        if max_seconds <= 0:
            raise InvalidInputError(f"max_seconds must be > 0, got {max_seconds}")
        # speech may not run past the cap: shorten the utterance limit to fit
        options = replace(options, max_utterance_s=min(options.max_utterance_s, max_seconds))
    detector = EndpointDetector(options, source.sample_rate)
    budget = None if max_seconds is None else int(round(max_seconds * source.sample_rate)) * 2
    read = 0
    while True:
        block = source.read()
        if block is None:
            detector.finish()
            break
        if budget is not None and read + len(block) >= budget:
            detector.push(block[: budget - read])
            detector.finish("max_length")
            break
        read += len(block)
        if detector.push(block) is not None:
            break
    return detector.result()


# --------------------------------------------------------------------------------------------
# microphone (sounddevice)


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there but libportaudio is not
        raise MissingDependencyError(
            f"sounddevice cannot load PortAudio ({exc}): install it with `sudo apt-get install "
            "libportaudio2` (Debian, Raspberry Pi OS)"
        ) from exc
    except ImportError as exc:
        raise MissingDependencyError(
            f"sounddevice is not installed ({exc}): pip install 'edgeshelf[device]'"
        ) from exc
    return sounddevice


def rescan_devices() -> None:
    """Make PortAudio list the devices again (after a hot-plug or an ALSA configuration change).

    PortAudio enumerates devices once when it starts; this restarts it. Call it only while no
    stream is open.
    """
    sd = _sounddevice()
    sd._terminate()  # sounddevice's documented way to re-enumerate (no public API for it)
    sd._initialize()


def list_input_devices() -> list[InputDevice]:
    """The devices PortAudio can record from (the default input marked ``is_default``)."""
    sd = _sounddevice()
    try:
        default_in = sd.default.device[0]
        apis = sd.query_hostapis()
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise DeviceError(f"PortAudio could not list the audio devices ({exc})") from exc
    found = []
    for index, info in enumerate(devices):
        if info["max_input_channels"] > 0:
            found.append(
                InputDevice(
                    index=index,
                    name=str(info["name"]),
                    host_api=str(apis[info["hostapi"]]["name"]),
                    channels=int(info["max_input_channels"]),
                    default_sample_rate=float(info["default_samplerate"]),
                    is_default=index == default_in,
                )
            )
    return found


def _device_listing(devices: list[InputDevice]) -> str:
    if not devices:
        return (
            "PortAudio sees no input device at all: plug in a microphone (check `arecord -l`), "
            "then call rescan_devices() or restart"
        )
    return "available input devices: " + "; ".join(str(d) for d in devices)


def find_input_device(device: int | str | None) -> InputDevice:
    """Resolve an index, a name (exact, or a unique case-insensitive part) or None (default)."""
    devices = list_input_devices()
    if device is None:
        for d in devices:
            if d.is_default:
                return d
        raise DeviceError(
            "there is no default audio input: pass a device index or name (--mic); "
            + _device_listing(devices)
        )
    if isinstance(device, int):
        for d in devices:
            if d.index == device:
                return d
        raise DeviceError(f"audio device {device} is not an input device; " + _device_listing(devices))
    wanted = device.strip().lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    partial = exact or [d for d in devices if wanted in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise DeviceError(f"no audio input device matches {device!r}; " + _device_listing(devices))
    names = ", ".join(f"[{d.index}] {d.name}" for d in partial)
    raise DeviceError(f"{device!r} matches several input devices ({names}): pass the index or a longer name")


class Microphone(AudioSource):
    """A live microphone through sounddevice (PortAudio): PCM16 mono blocks at ``sample_rate``.

    Open with :meth:`open`; the stream starts at once. The callback only queues bytes;
    ``read()`` returns the next block (``block_ms`` of audio), None after ``max_seconds``.
    Counters: ``overflows`` (blocks dropped because the queue was full, plus PortAudio input
    overflows), ``seconds_read``.
    """

    def __init__(
        self,
        options: MicrophoneOptions,
        device: InputDevice,
        stream: Any,
        q: queue.Queue,
        state: dict[str, int],
    ) -> None:
        self.options = options
        self.device = device
        self.sample_rate = options.sample_rate
        self.endpoint = options.endpoint
        self._stream = stream
        self._queue = q
        self._state = state  # shared with the callback: bytes queued, overflows
        self._read = 0
        self._limit = (
            None if options.max_seconds is None else int(round(options.max_seconds * self.sample_rate)) * 2
        )
        self._closed = False

    @classmethod
    def open(cls, options: MicrophoneOptions | None = None) -> Microphone:
        """Find the device, check the format, start the stream."""
        options = options or MicrophoneOptions()
        sd = _sounddevice()
        device = find_input_device(options.device)
        try:
            sd.check_input_settings(
                device=device.index, channels=1, dtype="int16", samplerate=options.sample_rate
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(
                f"input device {device} cannot record 16-bit mono at {options.sample_rate} Hz ({exc}): "
                "use ALSA's 'default' or a 'plughw:' device, which resample, or another sample_rate"
            ) from exc
        block = options.sample_rate * options.block_ms // 1000
        q: queue.Queue = queue.Queue(
            maxsize=max(2, math.ceil(options.queue_seconds * 1000 / options.block_ms))
        )
        state = {"queued": 0, "overflows": 0}
        limit = (
            None if options.max_seconds is None else int(round(options.max_seconds * options.sample_rate)) * 2
        )

        def callback(indata, frames, time_info, status) -> None:  # PortAudio's thread: queue only
            if status.input_overflow:
                state["overflows"] += 1
            data = bytes(indata)
            if limit is not None:
                data = data[: max(0, limit - state["queued"])]
            if data:
                try:
                    q.put_nowait(data)
                    state["queued"] += len(data)
                except queue.Full:
                    state["overflows"] += 1
            if limit is not None and state["queued"] >= limit:
                raise sd.CallbackStop

        try:
            stream = sd.RawInputStream(
                samplerate=options.sample_rate,
                blocksize=block,
                device=device.index,
                channels=1,
                dtype="int16",
                callback=callback,
            )
            stream.start()
        except sd.PortAudioError as exc:
            raise DeviceError(f"could not start recording from {device} ({exc})") from exc
        return cls(options, device, stream, q, state)

    @property
    def overflows(self) -> int:
        return int(self._state["overflows"])

    @property
    def seconds_read(self) -> float:
        return self._read / 2 / self.sample_rate

    def read(self) -> bytes | None:
        """The next block of PCM16 bytes; None once ``max_seconds`` of audio has been read."""
        if self._closed:
            raise DeviceError(f"microphone {self.device.name!r} is closed")
        if self._limit is not None and self._read >= self._limit:
            return None
        try:
            block = self._queue.get(timeout=self.options.read_timeout_s)
        except queue.Empty:
            raise DeviceError(
                f"microphone {self.device.name!r} delivered no audio for {self.options.read_timeout_s} s "
                "(unplugged, muted at the driver, or used by another program?)"
            ) from None
        self._read += len(block)
        return block

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.abort(ignore_errors=True)
        finally:
            self._stream.close(ignore_errors=True)

    def __repr__(self) -> str:
        return f"Microphone({self.device.name!r}, {self.sample_rate} Hz, {self.options.block_ms} ms blocks)"


# --------------------------------------------------------------------------------------------
# WAV files


class WavFileSource(AudioSource):
    """A PCM WAV file with the microphone's interface: PCM16 mono blocks at ``sample_rate``.

    Any rate, width or channel count :func:`edgeshelf.sdk.preprocess.read_wav` reads; channels
    are averaged and the audio resampled to ``sample_rate``. ``max_seconds`` caps what is
    delivered. Reading is as fast as the caller asks (no real-time pacing).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: int = 16000,
        block_ms: int = 30,
        max_seconds: float | None = None,
        endpoint: EndpointOptions | None = None,
    ) -> None:
        from edgeshelf.sdk.preprocess import read_wav, resample

        _check_rate_block(sample_rate, block_ms, "WavFileSource")
        self.path = Path(path)
        samples, rate = read_wav(self.path)
        self.source_rate = int(rate)
        samples = resample(samples, rate, sample_rate)
        # the exact inverse of read_wav's int16 / 32768: a 16-bit file at the same rate comes back bit for bit
        pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
        if max_seconds is not None:
            if max_seconds <= 0:
                raise InvalidInputError(f"max_seconds must be > 0 or None, got {max_seconds}")
            pcm = pcm[: int(round(max_seconds * sample_rate))]
        self._pcm = pcm.tobytes()
        self.sample_rate = sample_rate
        self.endpoint = endpoint or EndpointOptions()
        self._block = sample_rate * block_ms // 1000 * 2
        self._offset = 0
        self._closed = False

    @property
    def samples(self) -> np.ndarray:
        """The whole file: int16 ``[N]`` at ``sample_rate``."""
        return np.frombuffer(self._pcm, dtype="<i2")

    @property
    def duration_s(self) -> float:
        return len(self._pcm) / 2 / self.sample_rate

    def read(self) -> bytes | None:
        if self._closed:
            raise InvalidInputError(f"WavFileSource({self.path}) is closed")
        if self._offset >= len(self._pcm):
            return None
        block = self._pcm[self._offset : self._offset + self._block]
        self._offset += len(block)
        return block

    def rewind(self) -> None:
        self._offset = 0

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"WavFileSource({str(self.path)!r}, {self.duration_s:.2f} s at {self.sample_rate} Hz)"
