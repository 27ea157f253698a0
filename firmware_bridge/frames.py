"""The frame codec (PROTOCOL.md, "Frames"): pure functions from bytes to frames and back.

A frame before stuffing (the *raw* frame), all integers little-endian::

    offset  size  field
    0       1     version   protocol version, 1
    1       1     type      message type (see messages.MessageType)
    2       1     flags     bit 0 ack-request, bit 1 retransmission, others 0
    3       2     seq       sender's sequence number, wraps at 65536
    5       2     length    payload bytes, 0..1024
    7       N     payload
    7+N     4     crc32     zlib.crc32 of bytes [0, 7+N)

On the wire each raw frame is COBS-encoded (the ``cobs`` package) and written between two zero
bytes: ``00 COBS(raw) 00``. Zero never occurs inside a COBS block, so a receiver splits the
stream at zeros; empty segments (two zeros in a row) are ignored. The leading zero makes a
frame survive the truncation of the frame before it.

Example::

    wire = encode_frame(Frame(type=0x33, seq=7, payload=b"\\x01\\x00\\x00\\x00"))
    decoder = FrameDecoder()
    frames = decoder.feed(wire[:5]) + decoder.feed(wire[5:])   # arbitrary chunks
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cobs import cobs
from edgeshelf.firmware_bridge.errors import FRAME_ERROR_REASONS, FrameError, FrameVersionError
from edgeshelf.sdk.errors import InvalidInputError

PROTOCOL_VERSION = 1
HEADER_SIZE = 7
CRC_SIZE = 4
OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_PAYLOAD = 1024
DELIMITER = b"\x00"
FLAG_ACK_REQUEST = 0x01
FLAG_RETRANSMIT = 0x02

_HEADER = struct.Struct("<BBBHH")
_CRC = struct.Struct("<I")


def max_raw_size(max_payload: int = MAX_PAYLOAD) -> int:
    """Bytes of the largest raw frame (header + payload + CRC32)."""
    return max_payload + OVERHEAD


def max_encoded_size(max_payload: int = MAX_PAYLOAD) -> int:
    """Bytes of the largest COBS-encoded frame, delimiters excluded (1040 for 1024-byte payloads).

    COBS adds one code byte per started run of 254 non-zero bytes.
    """
    raw = max_raw_size(max_payload)
    return raw + (raw + 253) // 254


class Frame(NamedTuple):
    """One frame: ``type`` and ``flags`` are 0..255, ``seq`` 0..65535, ``payload`` up to 1024 bytes.

    A named tuple rather than a dataclass: the decoder builds hundreds of thousands per second.
    """

    type: int
    seq: int
    payload: bytes = b""
    flags: int = 0
    version: int = PROTOCOL_VERSION

    @property
    def ack_requested(self) -> bool:
        return bool(self.flags & FLAG_ACK_REQUEST)

    def __repr__(self) -> str:
        return (
            f"Frame(type=0x{self.type:02x}, seq={self.seq}, flags=0x{self.flags:02x}, {len(self.payload)} B)"
        )


def pack_frame(frame: Frame, max_payload: int = MAX_PAYLOAD) -> bytes:
    """Frame -> raw bytes (header, payload, CRC32), before COBS."""
    type_, seq, payload, flags, version = frame
    if not (0 <= type_ <= 0xFF and 0 <= flags <= 0xFF and 0 <= version <= 0xFF):
        raise InvalidInputError(
            f"frame type, flags and version must be 0..255, got type={type_}, flags={flags}, version={version}"
        )
    if not 0 <= seq <= 0xFFFF:
        raise InvalidInputError(f"frame seq must be 0..65535, got {seq}")
    if len(payload) > max_payload:
        raise InvalidInputError(
            f"frame payload is {len(payload)} bytes, more than the maximum {max_payload}: "
            "split it into chunks (audio and image messages carry offsets for that)"
        )
    head = _HEADER.pack(version, type_, flags, seq, len(payload)) + bytes(payload)
    return head + _CRC.pack(zlib.crc32(head))


def unpack_frame(raw: bytes, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Raw bytes (after COBS decoding) -> Frame; raises :class:`FrameError` on any damage.

    Checks, in this order (the C side checks the same): at least 11 bytes (``short``), the
    CRC32 over everything but the last 4 bytes (``crc``), the version (``version``), then the
    length field against the bytes present and ``max_payload`` (``length``).
    """
    size = len(raw)
    if size < OVERHEAD:
        raise FrameError("short", f"frame of {size} bytes is shorter than the {OVERHEAD}-byte minimum")
    body = size - CRC_SIZE
    (crc,) = _CRC.unpack_from(raw, body)
    actual = zlib.crc32(memoryview(raw)[:body])
    if crc != actual:
        raise FrameError("crc", f"frame CRC32 0x{crc:08x} != computed 0x{actual:08x} over {body} bytes")
    version, type_, flags, seq, length = _HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION:
        raise FrameVersionError(PROTOCOL_VERSION, version)
    if length != body - HEADER_SIZE or length > max_payload:
        raise FrameError(
            "length",
            f"frame length field {length} != {body - HEADER_SIZE} payload bytes present "
            f"(maximum {max_payload})",
        )
    return Frame(type_, seq, bytes(raw[HEADER_SIZE:body]), flags, version)


def encode_frame(frame: Frame, max_payload: int = MAX_PAYLOAD) -> bytes:
    """Frame -> wire bytes: ``00 COBS(raw) 00``."""
    return b"\x00" + cobs.encode(pack_frame(frame, max_payload)) + b"\x00"


def encode_frames(frames: Iterable[Frame], max_payload: int = MAX_PAYLOAD) -> bytes:
    """Several frames -> one wire byte string."""
    return b"".join(encode_frame(f, max_payload) for f in frames)


def decode_frame(segment: bytes, max_payload: int = MAX_PAYLOAD) -> Frame:
    """One COBS segment (the bytes between two zeros, neither included) -> Frame.

    Raises :class:`FrameError` (``oversize``, ``cobs`` or any reason of :func:`unpack_frame`).
    """
    if len(segment) > max_encoded_size(max_payload):
        raise FrameError(
            "oversize",
            f"segment of {len(segment)} bytes is longer than the longest frame "
            f"({max_encoded_size(max_payload)} bytes encoded)",
        )
    try:
        raw = cobs.decode(segment)
    except cobs.DecodeError as exc:
        raise FrameError("cobs", f"bad COBS encoding in a {len(segment)}-byte segment: {exc}") from None
    return unpack_frame(raw, max_payload)


@dataclass(frozen=True)
class DecoderStats:
    """What a :class:`FrameDecoder` has seen: ``bytes`` fed, ``frames`` delivered, ``rejected``
    segments per reason (``oversize``, ``cobs``, ``short``, ``crc``, ``version``, ``length``)."""

    bytes: int
    frames: int
    rejected: dict[str, int]

    @property
    def errors(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, object]:
        return {"bytes": self.bytes, "frames": self.frames, "rejected": dict(self.rejected)}


class FrameDecoder:
    """Stateful stream decoder: feed it arbitrary chunks, get complete frames back.

    Damaged segments are counted per reason (:attr:`stats`) and skipped; decoding resumes at
    the next zero byte, so garbage, bit flips and truncated frames cost only the frames they
    touch. A segment longer than any frame can be is discarded without being buffered (memory
    stays bounded by :func:`max_encoded_size`). Never raises on any input bytes.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise InvalidInputError(f"max_payload must be 0..{MAX_PAYLOAD}, got {max_payload}")
        self.max_payload = max_payload
        self._limit = max_encoded_size(max_payload)
        self._tail = b""
        self._discarding = False
        self._bytes = 0
        self._frames = 0
        self._rejected = dict.fromkeys(FRAME_ERROR_REASONS, 0)
        self.last_error: FrameError | None = None

    @property
    def stats(self) -> DecoderStats:
        return DecoderStats(self._bytes, self._frames, dict(self._rejected))

    @property
    def pending(self) -> int:
        """Bytes buffered of a frame not yet terminated."""
        return len(self._tail)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` (any length, any split) and return the frames it completed, in order."""
        self._bytes += len(data)
        if DELIMITER not in data:
            if not self._discarding:
                self._tail += data
                if len(self._tail) > self._limit:
                    self._tail = b""
                    self._discarding = True
            return []
        parts = (self._tail + data).split(DELIMITER) if self._tail else bytes(data).split(DELIMITER)
        tail = parts.pop()
        frames: list[Frame] = []
        limit, max_payload = self._limit, self.max_payload
        start = 0
        if self._discarding:
            # the first part ends the over-long segment; it was never buffered
            self._reject(FrameError("oversize", f"segment longer than the longest frame ({limit} bytes)"))
            self._discarding = False
            start = 1
        append = frames.append
        for index in range(start, len(parts)):
            segment = parts[index]
            if not segment:
                continue
            if len(segment) > limit:
                self._reject(FrameError("oversize", f"segment of {len(segment)} bytes > {limit}"))
                continue
            try:
                append(unpack_frame(cobs.decode(segment), max_payload))
            except cobs.DecodeError as exc:
                self._reject(FrameError("cobs", f"bad COBS encoding: {exc}"))
            except FrameError as exc:
                self._reject(exc)
        if len(tail) > limit:
            tail = b""
            self._discarding = True
        self._tail = tail
        self._frames += len(frames)
        return frames

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening the port); statistics are kept."""
        self._tail = b""
        self._discarding = False

    def _reject(self, error: FrameError) -> None:
        self._rejected[error.reason] += 1
        self.last_error = error
