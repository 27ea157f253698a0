"""The frame codec: known frames, frames that must be rejected, every length boundary, seeded
random round trips, and the stream decoder's resynchronisation (PROTOCOL.md, "Frames")."""

from __future__ import annotations

import json
import random
import struct
import zlib

import pytest
from cobs import cobs
from edgeshelf.firmware_bridge.errors import FrameError, FrameVersionError
from edgeshelf.firmware_bridge.frames import (
    FLAG_ACK_REQUEST,
    MAX_PAYLOAD,
    OVERHEAD,
    Frame,
    FrameDecoder,
    decode_frame,
    encode_frame,
    encode_frames,
    max_encoded_size,
    pack_frame,
    unpack_frame,
)
from edgeshelf.firmware_bridge.vectors import VECTORS_PATH, build_vectors, render
from edgeshelf.sdk.errors import CorruptArtifactError, FormatVersionError, InvalidInputError

# (frame, wire bytes) worked out from PROTOCOL.md: 00, COBS(version type flags seq length payload crc32), 00
KNOWN_FRAMES = [
    (Frame(0x33, 0, b"\x01\x00\x00\x00"), "000301330101020402010101056472e00a00"),
    (Frame(0x30, 1, b"\x07\x00"), "000301300201020202070579deab5a00"),
    (Frame(0x24, 65535, b"\x10\x00\x00\x00"), "0003012404ffff040210010105d9944a9300"),
    (Frame(0x02, 258, b"", FLAG_ACK_REQUEST), "000601020102010105cdfe78e000"),
    (Frame(0x32, 0, b"\x00\x00\x00", 0x03), "0004013203010203010101052f96a0c500"),
]


def _raw(version: int, type_: int, flags: int, seq: int, payload: bytes, length: int | None = None) -> bytes:
    head = (
        struct.pack("<BBBHH", version, type_, flags, seq, len(payload) if length is None else length)
        + payload
    )
    return head + struct.pack("<I", zlib.crc32(head))


@pytest.mark.parametrize(("frame", "wire"), KNOWN_FRAMES)
def test_known_frames_encode_and_decode(frame: Frame, wire: str) -> None:
    assert encode_frame(frame).hex() == wire
    assert decode_frame(bytes.fromhex(wire)[1:-1]) == frame
    assert FrameDecoder().feed(bytes.fromhex(wire)) == [frame]


def test_raw_layout_is_little_endian_with_crc32_of_everything_before() -> None:
    raw = pack_frame(Frame(0x10, 0x1234, b"\xaa\xbb", 0x01))
    assert raw[:7] == bytes([1, 0x10, 0x01, 0x34, 0x12, 0x02, 0x00])
    assert raw[7:9] == b"\xaa\xbb"
    assert raw[9:] == zlib.crc32(raw[:9]).to_bytes(4, "little")
    assert unpack_frame(raw) == Frame(0x10, 0x1234, b"\xaa\xbb", 0x01)


REJECTS = [
    ("empty", b"", "short"),
    ("ten bytes", _raw(1, 0x33, 0, 0, b"")[:10], "short"),
    ("truncated by one", _raw(1, 0x33, 0, 0, b"\x01\x02\x03\x04")[:-1], "crc"),
    ("crc flipped", _raw(1, 0x33, 0, 0, b"\x01")[:-1] + b"\x00", "crc"),
    ("payload flipped", bytes([1, 0x33, 0, 0, 0, 1, 0, 0x02]) + _raw(1, 0x33, 0, 0, b"\x01")[-4:], "crc"),
    ("version 0", _raw(0, 0x33, 0, 0, b"\x01"), "version"),
    ("version 2", _raw(2, 0x33, 0, 0, b"\x01"), "version"),
    ("length says 5, has 4", _raw(1, 0x33, 0, 0, b"\x01\x02\x03\x04", length=5), "length"),
    ("length says 3, has 4", _raw(1, 0x33, 0, 0, b"\x01\x02\x03\x04", length=3), "length"),
    ("payload 1025", _raw(1, 0x10, 0, 0, bytes(1025)), "length"),
]


@pytest.mark.parametrize(("name", "raw", "reason"), REJECTS, ids=[r[0] for r in REJECTS])
def test_frames_that_must_be_rejected(name: str, raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        unpack_frame(raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, CorruptArtifactError)
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00" + cobs.encode(raw) + b"\x00") == []
    assert decoder.stats.rejected[reason] == 1
    assert decoder.stats.errors == 1


def test_version_error_names_both_versions_and_is_a_format_version_error() -> None:
    with pytest.raises(FrameVersionError, match="version 2 != supported version 1") as caught:
        unpack_frame(_raw(2, 0x33, 0, 0, b""))
    assert isinstance(caught.value, FormatVersionError)
    assert (caught.value.expected, caught.value.actual) == (1, 2)


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        (b"\x05123", "cobs"),  # block runs past the end
        (b"\x01" * (max_encoded_size() + 1), "oversize"),
        (b"\xff" * 5000, "oversize"),
    ],
)
def test_segments_that_must_be_rejected(segment: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame(segment)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("frame", "phrase"),
    [
        (Frame(256, 0), "type, flags and version must be 0..255"),
        (Frame(-1, 0), "type, flags and version must be 0..255"),
        (Frame(1, 0, b"", 256), "type, flags and version must be 0..255"),
        (Frame(1, 65536), "seq must be 0..65535"),
        (Frame(1, -1), "seq must be 0..65535"),
        (Frame(1, 0, bytes(MAX_PAYLOAD + 1)), "1025 bytes, more than the maximum 1024"),
    ],
)
def test_pack_rejects_out_of_range_fields(frame: Frame, phrase: str) -> None:
    with pytest.raises(InvalidInputError, match=phrase):
        encode_frame(frame)


def test_every_payload_length_round_trips_within_the_size_bound() -> None:
    rng = random.Random(1)
    decoder = FrameDecoder()
    for n in range(MAX_PAYLOAD + 1):
        for payload in (bytes(rng.randrange(1, 256) for _ in range(n)), bytes(n), rng.randbytes(n)):
            frame = Frame(0x12, n, payload, n & 3)
            wire = encode_frame(frame)
            assert len(wire) - 2 <= max_encoded_size(n)
            assert decoder.feed(wire) == [frame]
    # all-non-zero raw frames are the worst case: the bound is exact there
    worst = pack_frame(Frame(0x12, 0x0101, bytes([7]) * MAX_PAYLOAD, 1))
    if 0 not in worst:
        assert len(cobs.encode(worst)) == max_encoded_size()
    assert max_encoded_size() == 1040 and OVERHEAD == 11
    assert decoder.stats.errors == 0


@pytest.mark.parametrize("raw_length", [253, 254, 255, 508, 509, 1016, 1017, 1035])
def test_cobs_block_boundaries_of_the_raw_frame(raw_length: int) -> None:
    payload_length = raw_length - OVERHEAD
    frame = Frame(0x12, 0x0101, bytes([0x55]) * payload_length, 1)
    assert len(pack_frame(frame)) == raw_length
    assert FrameDecoder().feed(encode_frame(frame)) == [frame]


def test_seeded_random_round_trips_in_random_chunks() -> None:
    rng = random.Random(7)
    frames = [
        Frame(
            rng.randrange(256),
            rng.randrange(65536),
            rng.randbytes(rng.choice([0, 1, 2, 253, 640, 1024])),
            rng.randrange(256),
        )
        for _ in range(600)
    ]
    wire = encode_frames(frames)
    decoder = FrameDecoder()
    got: list[Frame] = []
    position = 0
    while position < len(wire):
        step = rng.choice([1, 2, 3, 7, 64, 1000, 5000])
        got += decoder.feed(wire[position : position + step])
        position += step
    assert got == frames
    assert decoder.stats.frames == len(frames) and decoder.stats.bytes == len(wire)
    assert decoder.pending == 0


def test_byte_at_a_time_equals_one_block() -> None:
    frames = [Frame(0x33, i, i.to_bytes(4, "little")) for i in range(20)]
    wire = encode_frames(frames)
    decoder = FrameDecoder()
    assert [f for b in wire for f in decoder.feed(bytes([b]))] == frames


def test_resynchronises_after_garbage_truncation_and_bit_flips() -> None:
    a, b, c, d = (Frame(0x33, i, bytes([i + 1]) * 8) for i in range(4))
    truncated = encode_frame(b)[:9]
    flipped = bytearray(encode_frame(c))
    flipped[6] ^= 0x04
    wire = (
        b"\x17garbage\x00\xff\xfe"
        + encode_frame(a)
        + truncated
        + bytes(flipped)
        + b"\x01\x02\x03"
        + encode_frame(d)
    )
    decoder = FrameDecoder()
    assert decoder.feed(wire) == [a, d]
    # five damaged segments: "\x17garbage", "\xff\xfe", truncated b, flipped c, "\x01\x02\x03"
    assert decoder.stats.errors == 5
    assert isinstance(decoder.last_error, FrameError)


def test_oversize_segment_is_skipped_without_buffering() -> None:
    frame = Frame(0x33, 1, b"\x01\x00\x00\x00")
    decoder = FrameDecoder()
    for _ in range(100):  # 100 KB without a zero: never held in memory
        assert decoder.feed(b"\xff" * 1000) == []
        assert decoder.pending <= max_encoded_size()
    assert decoder.feed(encode_frame(frame)) == [frame]
    assert decoder.stats.rejected["oversize"] == 1
    decoder.reset()
    assert decoder.pending == 0


def test_smaller_max_payload_rejects_longer_frames() -> None:
    decoder = FrameDecoder(max_payload=64)
    ok, big = Frame(0x10, 0, bytes(64)), Frame(0x10, 1, bytes(65))
    assert decoder.feed(encode_frame(ok) + encode_frame(big)) == [ok]
    assert decoder.stats.rejected["oversize"] == 1  # 65 payload bytes cannot fit in 76 encoded bytes
    with pytest.raises(InvalidInputError, match="max_payload must be 0..1024"):
        FrameDecoder(max_payload=2048)


def test_shared_vectors_file_is_up_to_date() -> None:
    """Regenerate with: python -m edgeshelf.firmware_bridge.vectors firmware_bridge/test_vectors.json"""
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def test_python_side_agrees_with_every_shared_vector() -> None:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    for entry in vectors["crc32"]:
        assert zlib.crc32(bytes.fromhex(entry["data"])) == entry["crc32"]
    for entry in vectors["cobs"]:
        assert cobs.encode(bytes.fromhex(entry["data"])).hex() == entry["encoded"]
    for entry in vectors["frames"] + vectors["messages"]:
        frame = Frame(entry["type"], entry["seq"], bytes.fromhex(entry["payload"]), entry["flags"])
        assert encode_frame(frame).hex() == entry["wire"], entry["name"]
        assert FrameDecoder().feed(bytes.fromhex(entry["wire"])) == [frame], entry["name"]
    for entry in vectors["rejects"]:
        decoder = FrameDecoder()
        assert decoder.feed(bytes.fromhex(entry["wire"])) == [], entry["name"]
        assert decoder.last_error is not None and decoder.last_error.reason == entry["reason"], entry["name"]
    for stream in vectors["streams"]:
        decoder = FrameDecoder()
        got = decoder.feed(bytes.fromhex(stream["wire"]))
        assert [(f.type, f.seq, f.flags, f.payload.hex()) for f in got] == [
            (e["type"], e["seq"], e["flags"], e["payload"]) for e in stream["frames"]
        ]
        assert {k: v for k, v in decoder.stats.rejected.items() if v} == stream["rejected"]


def test_package_exports_resolve_lazily() -> None:
    import edgeshelf.firmware_bridge as bridge

    assert all(getattr(bridge, name) is not None for name in bridge.__all__)
    assert bridge.FrameDecoder is FrameDecoder
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        bridge.nope  # noqa: B018
