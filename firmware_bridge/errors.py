"""The firmware bridge's errors, all rooted in :class:`edgeshelf.sdk.errors.EdgeshelfError`.

* :class:`FrameError`: a frame failed a structural check (COBS, size, CRC32, version, length);
  ``reason`` is one of :data:`FRAME_ERROR_REASONS`, the same names the C side's
  ``esb_strerror`` prints.
* :class:`PayloadError`: an intact frame whose payload does not parse as its message type
  (answered with ``NACK bad-payload``); :class:`UnknownMessageError`: an intact frame of a type
  this side does not know (``NACK unknown-type``).
* :class:`LinkClosedError`: the peer closed the serial line or socket.
* :class:`LinkTimeoutError`: the peer did not answer in time (no ack, no credit, no result).
"""

from __future__ import annotations

from typing import Literal

from edgeshelf.sdk.errors import CorruptArtifactError, DeviceError, FormatVersionError

FrameErrorReason = Literal["oversize", "cobs", "short", "crc", "version", "length"]
FRAME_ERROR_REASONS: tuple[str, ...] = ("oversize", "cobs", "short", "crc", "version", "length")


class FrameError(CorruptArtifactError):
    """A frame on the wire is damaged or not a frame of this protocol.

    ``reason``: ``"oversize"`` (longer than any frame can be), ``"cobs"`` (bad byte stuffing),
    ``"short"`` (fewer than 11 bytes), ``"crc"`` (checksum mismatch), ``"version"`` (an intact
    frame of another protocol version), ``"length"`` (the length field disagrees with the bytes).
    """

    def __init__(self, reason: FrameErrorReason, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class FrameVersionError(FrameError, FormatVersionError):
    """An intact frame (its CRC32 matches) written by another protocol version."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            "version",
            f"frame protocol version {actual} != supported version {expected}: "
            "update the firmware or the edgeshelf SDK so both speak the same version",
        )


class PayloadError(CorruptArtifactError):
    """An intact frame whose payload does not match its message type's layout."""


class UnknownMessageError(PayloadError):
    """An intact frame of a message type this side does not know."""

    def __init__(self, message_type: int, known: str) -> None:
        self.message_type = message_type
        super().__init__(f"unknown message type 0x{message_type:02x}; known types: {known}")


class LinkClosedError(DeviceError):
    """The serial line or socket was closed by the peer (or by us)."""


class LinkTimeoutError(DeviceError, TimeoutError):
    """The peer did not answer within the time allowed."""
