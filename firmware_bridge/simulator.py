"""A firmware simulator: plays the microcontroller's side of the protocol from a WAV file, so
the whole path (wake -> audio -> ASR -> search -> result) can be shown and tested without
hardware.

It behaves like the reference firmware of PROTOCOL.md ("Firmware state machine"): it announces
itself with HELLO until acknowledged, sends WAKE, captures audio into a small ring buffer of
``ring_chunks`` chunks at the microphone's pace, sends a chunk only while it holds credit from
the host, and when the ring is full drops the oldest chunk and counts it. Drops are reported
in END_OF_UTTERANCE and in a STATUS frame, never silently.

Example::

    with FirmwareSimulator.open(transport, SimulatorOptions(pace=0)) as firmware:
        reply = firmware.query_wav("show_me_the_boots.wav")
        print(reply.result.ids, reply.dropped)
"""

from __future__ import annotations

import threading
import time
import wave
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from edgeshelf.firmware_bridge.errors import LinkTimeoutError
from edgeshelf.firmware_bridge.frames import MAX_PAYLOAD, Frame
from edgeshelf.firmware_bridge.link import Link, LinkOptions
from edgeshelf.firmware_bridge.messages import (
    AUDIO_HEADER_SIZE,
    IMAGE_HEADER_SIZE,
    AudioChunk,
    Capability,
    Credit,
    Display,
    EndOfUtterance,
    EndReason,
    Error,
    Hello,
    ImageChunk,
    Led,
    Message,
    NackReason,
    Result,
    ShardStatus,
    Status,
    Wake,
)
from edgeshelf.firmware_bridge.transports import Transport
from edgeshelf.sdk.errors import DeviceError, InvalidInputError


@dataclass(frozen=True)
class SimulatorOptions:
    """How the simulated firmware behaves.

    ``sample_rate`` Hz and ``chunk_ms`` per audio chunk (20 ms = 320 samples at 16 kHz).
    ``pace``: 1.0 captures audio in real time (a live microphone: without credit the ring
    fills and the oldest chunks are dropped); 2.0 twice as fast; 0 streams a file as fast as
    the host grants credit and never drops. ``ring_chunks``: the firmware's audio buffer.
    ``drain_timeout_s``: after the last chunk, how long to wait for credit for what is still in
    the ring before dropping it. ``hello_timeout_s``, ``result_timeout_s``: how long to wait for
    the host. ``image_chunk_bytes``: JPEG bytes per IMAGE_CHUNK.
    """

    sample_rate: int = 16000
    chunk_ms: int = 20
    pace: float = 1.0
    ring_chunks: int = 8
    drain_timeout_s: float = 2.0
    hello_timeout_s: float = 10.0
    result_timeout_s: float = 30.0
    wake_word: str = "hey shelf"
    wake_confidence: float = 0.93
    firmware_version: tuple[int, int, int] = (1, 0, 0)
    name: str = "edgeshelf-simulator"
    max_payload: int = MAX_PAYLOAD
    image_chunk_bytes: int = 768
    link: LinkOptions = field(default_factory=LinkOptions)

    def __post_init__(self) -> None:
        if self.sample_rate < 1000 or self.chunk_ms < 1:
            raise InvalidInputError(
                f"sample_rate must be >= 1000 Hz and chunk_ms >= 1, got {self.sample_rate}, {self.chunk_ms}"
            )
        if self.pace < 0:
            raise InvalidInputError(f"pace must be >= 0 (0 = as fast as credit allows), got {self.pace}")
        if self.ring_chunks < 1:
            raise InvalidInputError(f"ring_chunks must be >= 1, got {self.ring_chunks}")
        if AUDIO_HEADER_SIZE + 2 * self.chunk_samples > self.max_payload:
            raise InvalidInputError(
                f"a {self.chunk_ms} ms chunk at {self.sample_rate} Hz is {2 * self.chunk_samples} bytes, "
                f"more than max_payload {self.max_payload} minus the {AUDIO_HEADER_SIZE}-byte header: "
                "use shorter chunks"
            )
        if not 1 <= self.image_chunk_bytes <= self.max_payload - IMAGE_HEADER_SIZE:
            raise InvalidInputError(
                f"image_chunk_bytes must be 1..{self.max_payload - IMAGE_HEADER_SIZE}, got {self.image_chunk_bytes}"
            )

    @property
    def chunk_samples(self) -> int:
        return self.sample_rate * self.chunk_ms // 1000


@dataclass(frozen=True, repr=False)
class SimulatedQuery:
    """What one simulated query saw: the host's ``result`` (None on time-out), the LED states
    and display lines it showed meanwhile, audio ``chunks`` captured / ``sent`` / ``dropped``,
    and ``seconds`` from wake to result."""

    query: int
    result: Result | None
    leds: tuple[Led, ...]
    displays: tuple[Display, ...]
    chunks: int
    sent: int
    dropped: int
    seconds: float

    @property
    def ids(self) -> list[str]:
        return self.result.ids if self.result is not None else []

    def to_dict(self) -> dict[str, object]:
        result = self.result
        return {
            "query": self.query,
            "status": None if result is None else int(result.status),
            "transcript": None if result is None else result.transcript,
            "error": None if result is None else result.error,
            "hits": []
            if result is None
            else [
                {"product_id": h.product_id, "score": round(h.score, 6), "title": h.title}
                for h in result.hits
            ],
            "leds": [int(led.state) for led in self.leds],
            "audio_chunks": self.chunks,
            "audio_sent": self.sent,
            "audio_dropped": self.dropped,
            "seconds": round(self.seconds, 3),
        }

    def __repr__(self) -> str:
        top = self.ids[:3] if self.result is not None else "no result"
        return (
            f"SimulatedQuery({self.query}, {top}, dropped={self.dropped}/{self.chunks}, {self.seconds:.2f} s)"
        )


def read_wav_pcm16(path: str | Path, sample_rate: int) -> np.ndarray:
    """A 16-bit PCM WAV as int16 mono at ``sample_rate`` (channels averaged, linear resampling)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise InvalidInputError(f"{path} is not a readable WAV file ({exc})") from exc
    if width != 2:
        raise InvalidInputError(
            f"{path} has {8 * width}-bit samples, the firmware sends 16-bit PCM: convert it with "
            f"sox {path} -b 16 out.wav"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != sample_rate and samples.size:
        n_out = max(1, round(samples.size * sample_rate / rate))
        samples = np.interp(np.arange(n_out) * (rate / sample_rate), np.arange(samples.size), samples)
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


class FirmwareSimulator:
    """The firmware side of the link, in Python (threads, no hardware)."""

    def __init__(self, transport: Transport, options: SimulatorOptions = SimulatorOptions()) -> None:
        self.options = options
        self.link = Link(
            transport,
            options.link,
            on_message=self._on_message,
            on_nack=self._on_nack,
            name="firmware",
        )
        self._cond = threading.Condition()
        self._credit = 0  # audio chunks with index < credit may be sent
        self._audio_index = 0
        self._next_query = 1
        self._connected = False
        self._results: dict[int, Result] = {}
        self.leds: list[Led] = []
        self.displays: list[Display] = []
        self.shard_status: ShardStatus | None = None
        self.errors: list[Error] = []
        self._counts = {"captured": 0, "sent": 0, "dropped": 0}
        self._booted = time.monotonic()
        self._closed = False
        self._need_hello = False
        self._nacks: dict[int, int] = {}

    @classmethod
    def open(cls, transport: Transport, options: SimulatorOptions = SimulatorOptions()) -> FirmwareSimulator:
        """Start the link and say HELLO until the host acknowledges it (raises
        :class:`LinkTimeoutError` after ``options.hello_timeout_s``)."""
        simulator = cls(transport, options)
        try:
            simulator.link.start()
            simulator.connect()
        except BaseException:
            simulator.close()
            raise
        return simulator

    # ---- connection

    @property
    def hello(self) -> Hello:
        o = self.options
        return Hello(
            firmware_version=o.firmware_version,
            sample_rate=o.sample_rate,
            capabilities=int(
                Capability.MICROPHONE
                | Capability.WAKE_WORD
                | Capability.BUTTONS
                | Capability.LEDS
                | Capability.DISPLAY
            ),
            max_payload=o.max_payload,
            chunk_samples=o.chunk_samples,
            name=o.name,
        )

    def connect(self) -> None:
        """HELLO, repeated until acknowledged; resets audio numbering and credit."""
        deadline = time.monotonic() + self.options.hello_timeout_s
        with self._cond:
            self._connected = False
            self._credit = 0
            self._audio_index = 0
        self.link.reset_session()
        while True:
            self.link.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeoutError(
                    f"the host on {self.link.transport.name} did not acknowledge HELLO within "
                    f"{self.options.hello_timeout_s} s: is `edgeshelf bridge` running on the other end?"
                )
            seq = self.link.send(self.hello)
            try:
                outcome = self.link.wait(seq, remaining)
            except LinkTimeoutError:
                continue
            if outcome == "acked":
                with self._cond:
                    self._connected = True
                    self._cond.notify_all()
                return

    # ---- queries

    def query_wav(self, path: str | Path, *, wait: bool = True) -> SimulatedQuery:
        """Wake, stream the WAV's audio (resampled to ``options.sample_rate``), end the
        utterance, wait for the RESULT."""
        return self.query_audio(read_wav_pcm16(path, self.options.sample_rate), wait=wait)

    def query_audio(self, pcm16: np.ndarray, *, wait: bool = True) -> SimulatedQuery:
        """One spoken query from int16 mono samples at ``options.sample_rate``.

        ``wait=False`` returns once END_OF_UTTERANCE is sent (``result`` None): the next query
        can start while the host is still answering.
        """
        pcm16 = np.asarray(pcm16)
        if pcm16.ndim != 1 or pcm16.dtype != np.int16:
            raise InvalidInputError(
                f"audio must be int16 mono [samples], got {pcm16.dtype} {list(pcm16.shape)}"
            )
        query_id = self._new_query()
        start = time.monotonic()
        leds_before, displays_before = len(self.leds), len(self.displays)
        self._send_reliable(
            Wake(query_id, self.options.wake_confidence, self._now_ms(), self.options.wake_word)
        )
        captured, sent, dropped = self._stream(query_id, pcm16)
        self._send_reliable(EndOfUtterance(query_id, int(pcm16.size), dropped, EndReason.END_OF_INPUT))
        self._send_reliable(self.status())
        result = self.wait_result(query_id, self.options.result_timeout_s) if wait else None
        return SimulatedQuery(
            query_id,
            result,
            tuple(self.leds[leds_before:]),
            tuple(self.displays[displays_before:]),
            captured,
            sent,
            dropped,
            time.monotonic() - start,
        )

    def send_image(self, data: bytes, *, wait: bool = True) -> SimulatedQuery:
        """Send a JPEG in IMAGE_CHUNKs (reliable) and wait for the RESULT."""
        if not data:
            raise InvalidInputError("the image is empty (0 bytes)")
        query_id = self._new_query()
        start = time.monotonic()
        leds_before, displays_before = len(self.leds), len(self.displays)
        step = self.options.image_chunk_bytes
        for offset in range(0, len(data), step):
            self._send_reliable(ImageChunk(query_id, offset, len(data), data[offset : offset + step]))
        result = self.wait_result(query_id, self.options.result_timeout_s) if wait else None
        return SimulatedQuery(
            query_id,
            result,
            tuple(self.leds[leds_before:]),
            tuple(self.displays[displays_before:]),
            0,
            0,
            0,
            time.monotonic() - start,
        )

    def wait_result(self, query: int, timeout: float) -> Result:
        """The host's RESULT for ``query`` (raises :class:`LinkTimeoutError`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while query not in self._results:
                self._check()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkTimeoutError(f"no RESULT for query {query} within {timeout} s")
                self._cond.wait(min(remaining, 0.1))
            return self._results.pop(query)

    def send(self, message: Message) -> int:
        """Send any message (e.g. a Button) as the firmware would; returns its seq."""
        return self.link.send(message)

    def status(self) -> Status:
        """The firmware's counters as a STATUS message."""
        link = self.link.stats
        return Status(
            uptime_ms=self._now_ms(),
            audio_captured=self._counts["captured"],
            audio_sent=self._counts["sent"],
            audio_dropped=self._counts["dropped"],
            retransmits=link.retransmits,
            rx_errors=link.decoder.errors,
            rx_duplicates=link.duplicates,
        )

    @property
    def credit(self) -> int:
        with self._cond:
            return self._credit

    def close(self) -> None:
        """Wait briefly for outstanding acks, then stop the link (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.link.alive:
            self.link.flush(1.0)
        self.link.close()

    def __enter__(self) -> FirmwareSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals

    def _new_query(self) -> int:
        query = self._next_query
        self._next_query = query % 0xFFFF + 1
        return query

    def _now_ms(self) -> int:
        return int((time.monotonic() - self._booted) * 1000) & 0xFFFFFFFF

    def _send_reliable(self, message: Message) -> None:
        """Send and wait for the ack; after ``NACK not-ready`` say HELLO and send once more."""
        for attempt in range(2):
            self._check()
            seq = self.link.send(message)
            outcome = self.link.wait(seq, self.options.result_timeout_s)
            if outcome == "acked":
                return
            self.link.check()
            reason = self._nacks.get(seq)
            if outcome == "nacked" and reason == NackReason.NOT_READY and attempt == 0:
                continue
            if outcome == "nacked":
                try:
                    name = NackReason(reason).name
                except ValueError:
                    name = str(reason)
                raise DeviceError(f"the host refused {type(message).__name__} (NACK {name})")
            raise LinkTimeoutError(
                f"the host did not acknowledge {type(message).__name__} after "
                f"{self.options.link.max_retries} retransmissions ({outcome})"
            )

    def _stream(self, query: int, pcm16: np.ndarray) -> tuple[int, int, int]:
        """Capture ``pcm16`` chunk by chunk at the configured pace; send under credit."""
        o = self.options
        n = o.chunk_samples
        chunks = [
            (offset, pcm16[offset : offset + n].astype("<i2").tobytes()) for offset in range(0, pcm16.size, n)
        ]
        ring: deque[tuple[int, bytes]] = deque()
        counts = {"sent": 0, "dropped": 0}
        period = (o.chunk_ms / 1000.0) / o.pace if o.pace > 0 else 0.0

        def send_ready() -> None:
            while ring:
                with self._cond:
                    if self._audio_index >= self._credit:
                        return
                    index = self._audio_index
                    self._audio_index += 1
                offset, data = ring.popleft()
                self.link.send(AudioChunk(query, index, offset, data))
                counts["sent"] += 1
                self._counts["sent"] += 1

        def idle_until(until: float) -> None:
            """Sleep until ``until``, waking early when credit arrives for a waiting chunk."""
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            if not ring:
                time.sleep(remaining)
                return
            with self._cond:
                if self._audio_index >= self._credit:
                    self._cond.wait(remaining)

        def wait_for_room(limit: int) -> None:
            """File mode: block (never drop) until the ring holds fewer than ``limit`` chunks."""
            deadline = time.monotonic() + o.result_timeout_s
            send_ready()
            while len(ring) >= limit:
                self._check()
                if time.monotonic() >= deadline:
                    raise LinkTimeoutError(
                        f"the host granted no audio credit for {o.result_timeout_s} s "
                        f"(credit limit {self.credit}, next chunk {self._audio_index})"
                    )
                idle_until(min(deadline, time.monotonic() + 0.1))
                send_ready()

        next_tick = time.monotonic()
        for chunk in chunks:
            self._check()
            if o.pace > 0:
                # the microphone delivers a chunk every `period`; send whatever credit allows meanwhile
                while time.monotonic() < next_tick:
                    send_ready()
                    idle_until(next_tick)
                next_tick += period
            else:
                wait_for_room(o.ring_chunks)
            self._counts["captured"] += 1
            if len(ring) >= o.ring_chunks:
                ring.popleft()  # the oldest audio goes: the firmware never blocks its microphone
                counts["dropped"] += 1
                self._counts["dropped"] += 1
            ring.append(chunk)
            send_ready()
        if o.pace > 0:
            deadline = time.monotonic() + o.drain_timeout_s
            send_ready()
            while ring and time.monotonic() < deadline:
                idle_until(deadline)
                send_ready()
            counts["dropped"] += len(ring)
            self._counts["dropped"] += len(ring)
            ring.clear()
        else:
            wait_for_room(1)
        return len(chunks), counts["sent"], counts["dropped"]

    def _on_message(self, message: Message, frame: Frame) -> NackReason | None:
        if isinstance(message, Credit):
            with self._cond:
                self._credit = max(self._credit, message.limit) if self._connected else message.limit
                self._cond.notify_all()
        elif isinstance(message, Result):
            with self._cond:
                self._results[message.query] = message
                self._cond.notify_all()
        elif isinstance(message, Led):
            self.leds.append(message)
        elif isinstance(message, Display):
            self.displays.append(message)
        elif isinstance(message, ShardStatus):
            self.shard_status = message
        elif isinstance(message, Error):
            self.errors.append(message)
        else:
            return NackReason.UNSUPPORTED  # e.g. a host sending WAKE or AUDIO
        return None

    def _on_nack(self, seq: int, reason: int, message: Message | None) -> None:
        with self._cond:
            self._nacks[seq] = reason
            while len(self._nacks) > 256:
                self._nacks.pop(next(iter(self._nacks)))
            if reason == NackReason.NOT_READY:
                # the host restarted and does not know us: say HELLO again before the next send
                self._need_hello = True
            self._cond.notify_all()

    def _ensure_connected(self) -> None:
        with self._cond:
            need, self._need_hello = self._need_hello, False
        if need:
            self.connect()

    def _check(self) -> None:
        """Raise what stopped the link; reconnect when the host asked for HELLO."""
        self.link.check()
        self._ensure_connected()
