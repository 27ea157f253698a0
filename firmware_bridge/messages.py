"""The messages (PROTOCOL.md, "Messages"): one frozen dataclass per message type.

Each message knows its ``TYPE``, whether it is ``RELIABLE`` (sent with the ack-request flag and
retransmitted until acknowledged) and its payload layout (``to_payload`` / ``from_payload``).
Payload integers are little-endian; ``f32`` is an IEEE-754 single; ``str8`` is one length byte
followed by that many bytes of UTF-8. A receiver ignores bytes after the last field it knows
(later revisions of version 1 may append fields), except where the last field is "the rest"
(audio samples, image data).

Example::

    frame = message_to_frame(Wake(query=3, confidence=0.91, word="hey shelf"), seq=12)
    assert frame_to_message(frame) == Wake(query=3, confidence=0.91, word="hey shelf")  # f32!
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

import numpy as np
from edgeshelf.firmware_bridge.errors import PayloadError, UnknownMessageError
from edgeshelf.firmware_bridge.frames import FLAG_ACK_REQUEST, FLAG_RETRANSMIT, MAX_PAYLOAD, Frame
from edgeshelf.sdk.errors import InvalidInputError


class MessageType(IntEnum):
    """Message type codes (the frame's ``type`` byte). F = firmware, H = host."""

    HELLO = 0x01  # F->H  capabilities
    WAKE = 0x02  # F->H  wake word heard
    BUTTON = 0x03  # F->H  button event
    AUDIO = 0x10  # F->H  PCM16 chunk (credit-controlled, not acknowledged)
    END_OF_UTTERANCE = 0x11  # F->H
    IMAGE_CHUNK = 0x12  # F->H  JPEG chunk
    STATUS = 0x13  # F->H  firmware counters (audio drops among them)
    RESULT = 0x20  # H->F  top-k answer
    LED = 0x21  # H->F
    DISPLAY = 0x22  # H->F
    SHARD_STATUS = 0x23  # H->F
    CREDIT = 0x24  # H->F  audio flow control
    ACK = 0x30  # both
    NACK = 0x31  # both
    ERROR = 0x32  # both
    PING = 0x33  # both
    PONG = 0x34  # both


class NackReason(IntEnum):
    UNKNOWN_TYPE = 1
    BAD_PAYLOAD = 2
    NOT_READY = 3
    BUSY = 4
    UNSUPPORTED = 5


class ButtonAction(IntEnum):
    PRESS = 1
    RELEASE = 2
    LONG_PRESS = 3
    DOUBLE_PRESS = 4


class EndReason(IntEnum):
    UNSPECIFIED = 0
    SILENCE = 1  # the firmware's voice-activity detector heard the speaker stop
    BUTTON = 2  # push-to-talk released
    MAX_LENGTH = 3
    CANCELLED = 4
    END_OF_INPUT = 5  # the simulator's WAV file ended


class ResultStatus(IntEnum):
    OK = 0
    NO_MATCH = 1  # understood, but nothing to show
    ERROR = 2  # see the result's error text


class LedState(IntEnum):
    OFF = 0
    IDLE = 1
    LISTENING = 2
    THINKING = 3
    ANSWER = 4
    ERROR = 5
    CUSTOM = 6


class ShardState(IntEnum):
    NONE = 0
    READY = 1
    UPDATING = 2
    STALE = 3
    ERROR = 4


class Capability(IntEnum):
    """Bits of Hello.capabilities."""

    MICROPHONE = 0x0001
    WAKE_WORD = 0x0002
    BUTTONS = 0x0004
    LEDS = 0x0008
    DISPLAY = 0x0010
    CAMERA = 0x0020


SAMPLE_FORMAT_PCM16LE = 1
IMAGE_FORMAT_JPEG = 0x01
AUDIO_HEADER_SIZE = 10
IMAGE_HEADER_SIZE = 11


# ---- field helpers ------------------------------------------------------------------------


def _str8(text: str, field: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > 255:
        raise InvalidInputError(
            f"{field} is {len(data)} UTF-8 bytes, more than 255: shorten it (see fit_text())"
        )
    return bytes((len(data),)) + data


def _read_str8(payload: bytes, offset: int, field: str, kind: str) -> tuple[str, int]:
    if offset >= len(payload):
        raise PayloadError(f"{kind} payload of {len(payload)} bytes ends before {field}'s length byte")
    size = payload[offset]
    end = offset + 1 + size
    if end > len(payload):
        raise PayloadError(
            f"{kind} {field} needs {size} bytes at offset {offset + 1}, payload has {len(payload)}"
        )
    try:
        return payload[offset + 1 : end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{kind} {field} is not valid UTF-8 ({exc})") from None


def _unpack(layout: struct.Struct, payload: bytes, kind: str, offset: int = 0) -> tuple:
    if len(payload) < offset + layout.size:
        raise PayloadError(
            f"{kind} payload has {len(payload)} bytes, its fixed fields need {offset + layout.size}"
        )
    return layout.unpack_from(payload, offset)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInputError(message)


def _u8(value: int, field: str) -> None:
    _check(0 <= value <= 0xFF, f"{field} must be 0..255, got {value}")


def _u16(value: int, field: str) -> None:
    _check(0 <= value <= 0xFFFF, f"{field} must be 0..65535, got {value}")


def _u32(value: int, field: str) -> None:
    _check(0 <= value <= 0xFFFFFFFF, f"{field} must be 0..4294967295, got {value}")


def _text(value: str, field: str) -> None:
    _check(isinstance(value, str), f"{field} must be a str, got {type(value).__name__}")
    size = len(value.encode("utf-8"))
    _check(size <= 255, f"{field} is {size} UTF-8 bytes, more than 255: shorten it (see fit_text())")


def fit_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


# ---- messages -----------------------------------------------------------------------------


class Message:
    """Base of every message: ``TYPE``, ``RELIABLE``, ``to_payload()``, ``from_payload()``."""

    TYPE: ClassVar[MessageType]
    RELIABLE: ClassVar[bool]

    def to_payload(self) -> bytes:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @classmethod
    def from_payload(cls, payload: bytes) -> Message:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


# the smallest max_payload a firmware may announce: a RESULT with one short hit must fit
MIN_MAX_PAYLOAD = 64

_HELLO = struct.Struct("<BBBBIBBBHHH")


@dataclass(frozen=True)
class Hello(Message):
    """F->H, reliable. The firmware's capabilities, sent at boot and after ``NACK not-ready``.

    ``sample_rate`` Hz of the audio chunks, ``channels`` (1), ``sample_format`` (1 = PCM16LE),
    ``image_formats`` bits (1 = JPEG), ``capabilities`` bits (:class:`Capability`),
    ``max_payload`` the largest payload the firmware accepts, ``chunk_samples`` samples per
    audio chunk, ``name`` a device name.
    """

    TYPE: ClassVar[MessageType] = MessageType.HELLO
    RELIABLE: ClassVar[bool] = True
    firmware_version: tuple[int, int, int] = (1, 0, 0)
    sample_rate: int = 16000
    channels: int = 1
    sample_format: int = SAMPLE_FORMAT_PCM16LE
    image_formats: int = IMAGE_FORMAT_JPEG
    capabilities: int = 0
    max_payload: int = MAX_PAYLOAD
    chunk_samples: int = 320
    name: str = ""
    protocol: int = 1

    def __post_init__(self) -> None:
        if len(self.firmware_version) != 3:
            raise InvalidInputError(
                f"firmware_version must be (major, minor, patch), got {self.firmware_version}"
            )
        object.__setattr__(self, "firmware_version", tuple(int(v) for v in self.firmware_version))
        for value, name in zip(self.firmware_version, ("major", "minor", "patch")):
            _u8(value, f"firmware_version {name}")
        _u8(self.protocol, "protocol")
        _check(1 <= self.sample_rate <= 0xFFFFFFFF, f"sample_rate must be >= 1 Hz, got {self.sample_rate}")
        _u8(self.channels, "channels")
        _u8(self.sample_format, "sample_format")
        _u8(self.image_formats, "image_formats")
        _u16(self.capabilities, "capabilities")
        _check(
            MIN_MAX_PAYLOAD <= self.max_payload <= MAX_PAYLOAD,
            f"max_payload must be {MIN_MAX_PAYLOAD}..{MAX_PAYLOAD}, got {self.max_payload}",
        )
        _u16(self.chunk_samples, "chunk_samples")
        _text(self.name, "Hello.name")

    def to_payload(self) -> bytes:
        major, minor, patch = self.firmware_version
        return _HELLO.pack(
            self.protocol,
            major,
            minor,
            patch,
            self.sample_rate,
            self.channels,
            self.sample_format,
            self.image_formats,
            self.capabilities,
            self.max_payload,
            self.chunk_samples,
        ) + _str8(self.name, "Hello.name")

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        p, major, minor, patch, rate, ch, fmt, img, caps, maxp, chunk = _unpack(_HELLO, payload, "HELLO")
        name, _ = _read_str8(payload, _HELLO.size, "name", "HELLO")
        try:
            return cls((major, minor, patch), rate, ch, fmt, img, caps, maxp, chunk, name, p)
        except InvalidInputError as exc:
            raise PayloadError(f"HELLO payload: {exc}") from None


_WAKE = struct.Struct("<HfI")


@dataclass(frozen=True)
class Wake(Message):
    """F->H, reliable. The wake word was heard: ``query`` id of the utterance that follows,
    ``confidence`` in [0, 1] (f32), ``timestamp_ms`` firmware clock, ``word`` the wake word."""

    TYPE: ClassVar[MessageType] = MessageType.WAKE
    RELIABLE: ClassVar[bool] = True
    query: int
    confidence: float = 1.0
    timestamp_ms: int = 0
    word: str = ""

    def __post_init__(self) -> None:
        _u16(self.query, "Wake.query")
        _check(0.0 <= self.confidence <= 1.0, f"Wake.confidence must be in [0, 1], got {self.confidence}")
        _u32(self.timestamp_ms, "Wake.timestamp_ms")
        _text(self.word, "Wake.word")

    def to_payload(self) -> bytes:
        return _WAKE.pack(self.query, self.confidence, self.timestamp_ms) + _str8(self.word, "Wake.word")

    @classmethod
    def from_payload(cls, payload: bytes) -> Wake:
        query, confidence, ts = _unpack(_WAKE, payload, "WAKE")
        word, _ = _read_str8(payload, _WAKE.size, "word", "WAKE")
        if not 0.0 <= confidence <= 1.0:  # also rejects NaN
            raise PayloadError(f"WAKE confidence must be in [0, 1], got {confidence}")
        return cls(query, confidence, ts, word)


_BUTTON = struct.Struct("<BBI")


@dataclass(frozen=True)
class Button(Message):
    """F->H, reliable. ``button`` index, ``action`` (:class:`ButtonAction`), ``timestamp_ms``."""

    TYPE: ClassVar[MessageType] = MessageType.BUTTON
    RELIABLE: ClassVar[bool] = True
    button: int
    action: int = ButtonAction.PRESS
    timestamp_ms: int = 0

    def __post_init__(self) -> None:
        _u8(self.button, "Button.button")
        _u8(self.action, "Button.action")
        _u32(self.timestamp_ms, "Button.timestamp_ms")

    def to_payload(self) -> bytes:
        return _BUTTON.pack(self.button, self.action, self.timestamp_ms)

    @classmethod
    def from_payload(cls, payload: bytes) -> Button:
        return cls(*_unpack(_BUTTON, payload, "BUTTON"))


_AUDIO = struct.Struct("<HII")


@dataclass(frozen=True, repr=False)
class AudioChunk(Message):
    """F->H, not acknowledged, credit-controlled. ``query`` id, ``index`` the firmware's running
    count of audio chunks sent since HELLO (flow control and loss detection), ``sample_offset``
    of the first sample within the utterance, ``samples`` 16-bit little-endian mono PCM bytes."""

    TYPE: ClassVar[MessageType] = MessageType.AUDIO
    RELIABLE: ClassVar[bool] = False
    query: int
    index: int
    sample_offset: int
    samples: bytes = b""

    def __post_init__(self) -> None:
        _u16(self.query, "AudioChunk.query")
        _u32(self.index, "AudioChunk.index")
        _u32(self.sample_offset, "AudioChunk.sample_offset")
        _check(
            len(self.samples) % 2 == 0,
            f"AudioChunk.samples must be whole PCM16 samples, got {len(self.samples)} bytes",
        )

    @property
    def pcm16(self) -> np.ndarray:
        """The samples as int16 [n]."""
        return np.frombuffer(self.samples, dtype="<i2").astype(np.int16, copy=False)

    def to_payload(self) -> bytes:
        return _AUDIO.pack(self.query, self.index, self.sample_offset) + self.samples

    @classmethod
    def from_payload(cls, payload: bytes) -> AudioChunk:
        query, index, offset = _unpack(_AUDIO, payload, "AUDIO")
        samples = bytes(payload[_AUDIO.size :])
        if len(samples) % 2:
            raise PayloadError(
                f"AUDIO carries {len(samples)} sample bytes, not a whole number of PCM16 samples"
            )
        return cls(query, index, offset, samples)

    def __repr__(self) -> str:
        return f"AudioChunk(query={self.query}, index={self.index}, offset={self.sample_offset}, {len(self.samples) // 2} samples)"


_EOU = struct.Struct("<HIIB")


@dataclass(frozen=True)
class EndOfUtterance(Message):
    """F->H, reliable. ``samples`` captured in the utterance (sent or not), ``dropped`` audio
    chunks the firmware had to drop for lack of credit, ``reason`` (:class:`EndReason`)."""

    TYPE: ClassVar[MessageType] = MessageType.END_OF_UTTERANCE
    RELIABLE: ClassVar[bool] = True
    query: int
    samples: int = 0
    dropped: int = 0
    reason: int = EndReason.UNSPECIFIED

    def __post_init__(self) -> None:
        _u16(self.query, "EndOfUtterance.query")
        _u32(self.samples, "EndOfUtterance.samples")
        _u32(self.dropped, "EndOfUtterance.dropped")
        _u8(self.reason, "EndOfUtterance.reason")

    def to_payload(self) -> bytes:
        return _EOU.pack(self.query, self.samples, self.dropped, self.reason)

    @classmethod
    def from_payload(cls, payload: bytes) -> EndOfUtterance:
        return cls(*_unpack(_EOU, payload, "END_OF_UTTERANCE"))


_IMAGE = struct.Struct("<HIIB")


@dataclass(frozen=True, repr=False)
class ImageChunk(Message):
    """F->H, reliable. Bytes ``offset`` .. ``offset+len(data)`` of image ``query`` whose full
    size is ``total`` bytes, in ``format`` (1 = JPEG)."""

    TYPE: ClassVar[MessageType] = MessageType.IMAGE_CHUNK
    RELIABLE: ClassVar[bool] = True
    query: int
    offset: int
    total: int
    data: bytes = b""
    format: int = IMAGE_FORMAT_JPEG

    def __post_init__(self) -> None:
        _u16(self.query, "ImageChunk.query")
        _u32(self.offset, "ImageChunk.offset")
        _u32(self.total, "ImageChunk.total")
        _u8(self.format, "ImageChunk.format")
        _check(
            self.offset + len(self.data) <= self.total,
            f"ImageChunk bytes {self.offset}..{self.offset + len(self.data)} run past total {self.total}",
        )

    def to_payload(self) -> bytes:
        return _IMAGE.pack(self.query, self.offset, self.total, self.format) + self.data

    @classmethod
    def from_payload(cls, payload: bytes) -> ImageChunk:
        query, offset, total, fmt = _unpack(_IMAGE, payload, "IMAGE_CHUNK")
        data = bytes(payload[_IMAGE.size :])
        if offset + len(data) > total:
            raise PayloadError(f"IMAGE_CHUNK bytes {offset}..{offset + len(data)} run past total {total}")
        return cls(query, offset, total, data, fmt)

    def __repr__(self) -> str:
        return f"ImageChunk(query={self.query}, {self.offset}+{len(self.data)}/{self.total})"


_STATUS = struct.Struct("<IIIIIII")


@dataclass(frozen=True)
class Status(Message):
    """F->H, reliable. The firmware's counters since boot: ``uptime_ms``, audio chunks
    ``audio_captured`` / ``audio_sent`` / ``audio_dropped`` (no credit, buffer full),
    ``retransmits`` of its reliable frames, ``rx_errors`` (damaged frames it received),
    ``rx_duplicates`` (retransmissions it had already seen)."""

    TYPE: ClassVar[MessageType] = MessageType.STATUS
    RELIABLE: ClassVar[bool] = True
    uptime_ms: int = 0
    audio_captured: int = 0
    audio_sent: int = 0
    audio_dropped: int = 0
    retransmits: int = 0
    rx_errors: int = 0
    rx_duplicates: int = 0

    def __post_init__(self) -> None:
        for name in (
            "uptime_ms",
            "audio_captured",
            "audio_sent",
            "audio_dropped",
            "retransmits",
            "rx_errors",
            "rx_duplicates",
        ):
            _u32(getattr(self, name), f"Status.{name}")

    def to_payload(self) -> bytes:
        return _STATUS.pack(
            self.uptime_ms,
            self.audio_captured,
            self.audio_sent,
            self.audio_dropped,
            self.retransmits,
            self.rx_errors,
            self.rx_duplicates,
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Status:
        return cls(*_unpack(_STATUS, payload, "STATUS"))


_RESULT = struct.Struct("<HBB")
_SCORE = struct.Struct("<f")


@dataclass(frozen=True)
class ResultHit:
    """One displayed product: ``product_id``, ``score`` (f32, higher is better), short ``title``."""

    product_id: str
    score: float
    title: str = ""


@dataclass(frozen=True)
class Result(Message):
    """H->F, reliable. The answer to query ``query``: ``status`` (:class:`ResultStatus`), up to
    255 ``hits`` best first, the ``transcript`` as understood, an ``error`` text when status is
    ERROR. Layout: query u16, status u8, count u8, count x (score f32, id str8, title str8),
    transcript str8, error str8."""

    TYPE: ClassVar[MessageType] = MessageType.RESULT
    RELIABLE: ClassVar[bool] = True
    query: int
    status: int = ResultStatus.OK
    hits: tuple[ResultHit, ...] = ()
    transcript: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        _u16(self.query, "Result.query")
        _u8(self.status, "Result.status")
        object.__setattr__(self, "hits", tuple(self.hits))
        _check(len(self.hits) <= 255, f"Result holds at most 255 hits, got {len(self.hits)}")
        for hit in self.hits:
            _text(hit.product_id, "ResultHit.product_id")
            _text(hit.title, "ResultHit.title")
        _text(self.transcript, "Result.transcript")
        _text(self.error, "Result.error")

    @property
    def ids(self) -> list[str]:
        return [h.product_id for h in self.hits]

    def to_payload(self) -> bytes:
        parts = [_RESULT.pack(self.query, self.status, len(self.hits))]
        for hit in self.hits:
            parts.append(_SCORE.pack(hit.score))
            parts.append(_str8(hit.product_id, "ResultHit.product_id"))
            parts.append(_str8(hit.title, "ResultHit.title"))
        parts.append(_str8(self.transcript, "Result.transcript"))
        parts.append(_str8(self.error, "Result.error"))
        return b"".join(parts)

    @classmethod
    def from_payload(cls, payload: bytes) -> Result:
        query, status, count = _unpack(_RESULT, payload, "RESULT")
        offset = _RESULT.size
        hits = []
        for i in range(count):
            if offset + 4 > len(payload):
                raise PayloadError(
                    f"RESULT hit {i} of {count}: payload of {len(payload)} bytes ends at its score"
                )
            (score,) = _SCORE.unpack_from(payload, offset)
            product_id, offset = _read_str8(payload, offset + 4, f"hit {i} id", "RESULT")
            title, offset = _read_str8(payload, offset, f"hit {i} title", "RESULT")
            hits.append(ResultHit(product_id, score, title))
        transcript, offset = _read_str8(payload, offset, "transcript", "RESULT")
        error, offset = _read_str8(payload, offset, "error", "RESULT")
        return cls(query, status, tuple(hits), transcript, error)

    def fit(self, max_payload: int, title_bytes: int = 32, transcript_bytes: int = 64) -> Result:
        """This result shortened for a firmware that accepts ``max_payload`` bytes: titles cut
        to ``title_bytes``, the transcript to ``transcript_bytes``, then hits dropped from the
        end until it fits."""
        hits = [ResultHit(h.product_id, h.score, fit_text(h.title, title_bytes)) for h in self.hits]
        result = Result(
            self.query,
            self.status,
            tuple(hits),
            fit_text(self.transcript, transcript_bytes),
            fit_text(self.error, 255),
        )
        while len(result.to_payload()) > max_payload and result.hits:
            result = Result(result.query, result.status, result.hits[:-1], result.transcript, result.error)
        if len(result.to_payload()) > max_payload:
            result = Result(
                result.query, result.status, (), "", fit_text(result.error, max(0, max_payload - 8))
            )
        return result


_LED = struct.Struct("<BBBBH")


@dataclass(frozen=True)
class Led(Message):
    """H->F, reliable. Show ``state`` (:class:`LedState`) in colour ``rgb`` (0..255 each),
    pulsing with ``period_ms`` (0 = steady)."""

    TYPE: ClassVar[MessageType] = MessageType.LED
    RELIABLE: ClassVar[bool] = True
    state: int
    rgb: tuple[int, int, int] = (0, 0, 0)
    period_ms: int = 0

    def __post_init__(self) -> None:
        _u8(self.state, "Led.state")
        _check(len(self.rgb) == 3, f"Led.rgb must be (r, g, b), got {self.rgb}")
        object.__setattr__(self, "rgb", tuple(int(c) for c in self.rgb))
        for c in self.rgb:
            _u8(c, "Led.rgb component")
        _u16(self.period_ms, "Led.period_ms")

    def to_payload(self) -> bytes:
        return _LED.pack(self.state, *self.rgb, self.period_ms)

    @classmethod
    def from_payload(cls, payload: bytes) -> Led:
        state, r, g, b, period = _unpack(_LED, payload, "LED")
        return cls(state, (r, g, b), period)


@dataclass(frozen=True)
class Display(Message):
    """H->F, reliable. Show ``text`` on display line ``line`` (0 = top)."""

    TYPE: ClassVar[MessageType] = MessageType.DISPLAY
    RELIABLE: ClassVar[bool] = True
    line: int
    text: str = ""

    def __post_init__(self) -> None:
        _u8(self.line, "Display.line")
        _text(self.text, "Display.text")

    def to_payload(self) -> bytes:
        return bytes((self.line,)) + _str8(self.text, "Display.text")

    @classmethod
    def from_payload(cls, payload: bytes) -> Display:
        if not payload:
            raise PayloadError("DISPLAY payload is empty; it needs a line byte and a str8 text")
        text, _ = _read_str8(payload, 1, "text", "DISPLAY")
        return cls(payload[0], text)


_SHARD = struct.Struct("<BII")


@dataclass(frozen=True)
class ShardStatus(Message):
    """H->F, reliable. The catalogue shard the host searches: ``state`` (:class:`ShardState`),
    ``products`` count, ``age_s`` seconds since it was cut, its ``space_id``."""

    TYPE: ClassVar[MessageType] = MessageType.SHARD_STATUS
    RELIABLE: ClassVar[bool] = True
    state: int
    products: int = 0
    age_s: int = 0
    space_id: str = ""

    def __post_init__(self) -> None:
        _u8(self.state, "ShardStatus.state")
        _u32(self.products, "ShardStatus.products")
        _u32(self.age_s, "ShardStatus.age_s")
        _text(self.space_id, "ShardStatus.space_id")

    def to_payload(self) -> bytes:
        return _SHARD.pack(self.state, self.products, self.age_s) + _str8(
            self.space_id, "ShardStatus.space_id"
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> ShardStatus:
        state, products, age = _unpack(_SHARD, payload, "SHARD_STATUS")
        space_id, _ = _read_str8(payload, _SHARD.size, "space_id", "SHARD_STATUS")
        return cls(state, products, age, space_id)


_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


@dataclass(frozen=True)
class Credit(Message):
    """H->F, not acknowledged (each one supersedes the last). The firmware may send audio chunks
    whose ``index`` is below ``limit``."""

    TYPE: ClassVar[MessageType] = MessageType.CREDIT
    RELIABLE: ClassVar[bool] = False
    limit: int

    def __post_init__(self) -> None:
        _u32(self.limit, "Credit.limit")

    def to_payload(self) -> bytes:
        return _U32.pack(self.limit)

    @classmethod
    def from_payload(cls, payload: bytes) -> Credit:
        return cls(*_unpack(_U32, payload, "CREDIT"))


@dataclass(frozen=True)
class Ack(Message):
    """Both ways, not acknowledged. The frame with sequence number ``seq`` arrived intact."""

    TYPE: ClassVar[MessageType] = MessageType.ACK
    RELIABLE: ClassVar[bool] = False
    seq: int

    def __post_init__(self) -> None:
        _u16(self.seq, "Ack.seq")

    def to_payload(self) -> bytes:
        return _U16.pack(self.seq)

    @classmethod
    def from_payload(cls, payload: bytes) -> Ack:
        return cls(*_unpack(_U16, payload, "ACK"))


_NACK = struct.Struct("<HB")


@dataclass(frozen=True)
class Nack(Message):
    """Both ways, not acknowledged. Frame ``seq`` arrived intact but was refused (:class:`NackReason`)."""

    TYPE: ClassVar[MessageType] = MessageType.NACK
    RELIABLE: ClassVar[bool] = False
    seq: int
    reason: int = NackReason.BAD_PAYLOAD

    def __post_init__(self) -> None:
        _u16(self.seq, "Nack.seq")
        _u8(self.reason, "Nack.reason")

    def to_payload(self) -> bytes:
        return _NACK.pack(self.seq, self.reason)

    @classmethod
    def from_payload(cls, payload: bytes) -> Nack:
        return cls(*_unpack(_NACK, payload, "NACK"))


@dataclass(frozen=True)
class Error(Message):
    """Both ways, reliable. Something went wrong on the sender's side: ``code``, ``text``."""

    TYPE: ClassVar[MessageType] = MessageType.ERROR
    RELIABLE: ClassVar[bool] = True
    code: int
    text: str = ""

    def __post_init__(self) -> None:
        _u16(self.code, "Error.code")
        _text(self.text, "Error.text")

    def to_payload(self) -> bytes:
        return _U16.pack(self.code) + _str8(self.text, "Error.text")

    @classmethod
    def from_payload(cls, payload: bytes) -> Error:
        (code,) = _unpack(_U16, payload, "ERROR")
        text, _ = _read_str8(payload, 2, "text", "ERROR")
        return cls(code, text)


@dataclass(frozen=True)
class Ping(Message):
    """Both ways, not acknowledged; answered by a PONG with the same ``nonce``."""

    TYPE: ClassVar[MessageType] = MessageType.PING
    RELIABLE: ClassVar[bool] = False
    nonce: int

    def __post_init__(self) -> None:
        _u32(self.nonce, "Ping.nonce")

    def to_payload(self) -> bytes:
        return _U32.pack(self.nonce)

    @classmethod
    def from_payload(cls, payload: bytes) -> Ping:
        return cls(*_unpack(_U32, payload, "PING"))


@dataclass(frozen=True)
class Pong(Message):
    """Both ways, not acknowledged: the answer to PING ``nonce``."""

    TYPE: ClassVar[MessageType] = MessageType.PONG
    RELIABLE: ClassVar[bool] = False
    nonce: int

    def __post_init__(self) -> None:
        _u32(self.nonce, "Pong.nonce")

    def to_payload(self) -> bytes:
        return _U32.pack(self.nonce)

    @classmethod
    def from_payload(cls, payload: bytes) -> Pong:
        return cls(*_unpack(_U32, payload, "PONG"))


MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Wake,
        Button,
        AudioChunk,
        EndOfUtterance,
        ImageChunk,
        Status,
        Result,
        Led,
        Display,
        ShardStatus,
        Credit,
        Ack,
        Nack,
        Error,
        Ping,
        Pong,
    )
}

_KNOWN = ", ".join(f"0x{t:02x} {MessageType(t).name}" for t in MESSAGE_CLASSES)


def message_to_frame(message: Message, seq: int, *, retransmit: bool = False) -> Frame:
    """Message -> Frame; reliable messages get the ack-request flag."""
    flags = (FLAG_ACK_REQUEST if message.RELIABLE else 0) | (FLAG_RETRANSMIT if retransmit else 0)
    payload = message.to_payload()
    if len(payload) > MAX_PAYLOAD:
        raise InvalidInputError(
            f"{type(message).__name__} payload is {len(payload)} bytes, more than {MAX_PAYLOAD}"
        )
    return Frame(int(message.TYPE), seq, payload, flags)


def frame_to_message(frame: Frame) -> Message:
    """Frame -> Message; raises :class:`UnknownMessageError` or :class:`PayloadError`."""
    cls = MESSAGE_CLASSES.get(frame.type)
    if cls is None:
        raise UnknownMessageError(frame.type, _KNOWN)
    try:
        return cls.from_payload(frame.payload)
    except InvalidInputError as exc:  # a field out of range
        raise PayloadError(f"{MessageType(frame.type).name} payload: {exc}") from None
