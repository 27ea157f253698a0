"""Messages: every type round-trips, its fields' ranges are checked, damaged payloads are
refused with PayloadError, and the shared vectors' messages decode to their fields."""

from __future__ import annotations

import json
import math
import struct

import pytest
from edgeshelf.firmware_bridge.errors import PayloadError, UnknownMessageError
from edgeshelf.firmware_bridge.frames import FLAG_ACK_REQUEST, FLAG_RETRANSMIT, MAX_PAYLOAD, Frame
from edgeshelf.firmware_bridge.messages import (
    MESSAGE_CLASSES,
    AudioChunk,
    Credit,
    Display,
    EndOfUtterance,
    Hello,
    ImageChunk,
    Led,
    MessageType,
    Result,
    ResultHit,
    ResultStatus,
    Wake,
    fit_text,
    frame_to_message,
    message_to_frame,
)
from edgeshelf.firmware_bridge.vectors import VECTORS_PATH, message_from_fields, sample_messages
from edgeshelf.sdk.errors import InvalidInputError

RELIABLE = {
    "HELLO",
    "WAKE",
    "BUTTON",
    "END_OF_UTTERANCE",
    "IMAGE_CHUNK",
    "STATUS",
    "RESULT",
    "LED",
    "DISPLAY",
    "SHARD_STATUS",
    "ERROR",
}


def test_every_message_type_has_a_class_and_a_sample() -> None:
    assert set(MESSAGE_CLASSES) == set(MessageType)
    assert {type(m) for _, m in sample_messages()} == set(MESSAGE_CLASSES.values())


@pytest.mark.parametrize(("name", "message"), sample_messages(), ids=[n for n, _ in sample_messages()])
def test_round_trip_and_reliability_flag(name: str, message) -> None:
    frame = message_to_frame(message, 99)
    assert frame.type == message.TYPE and frame.seq == 99
    assert bool(frame.flags & FLAG_ACK_REQUEST) == (message.TYPE.name in RELIABLE)
    assert frame_to_message(frame) == message
    assert message_to_frame(message, 99, retransmit=True).flags & FLAG_RETRANSMIT


def test_vector_messages_decode_to_their_fields() -> None:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    assert len(vectors["messages"]) == len(sample_messages())
    for entry in vectors["messages"]:
        frame = Frame(entry["type"], entry["seq"], bytes.fromhex(entry["payload"]), entry["flags"])
        assert frame_to_message(frame) == message_from_fields(entry["message"], entry["fields"]), entry[
            "name"
        ]


def test_known_payload_layouts() -> None:
    assert (
        Wake(7, 0.875, 123456, "hey").to_payload()
        == b"\x07\x00" + struct.pack("<f", 0.875) + b"\x40\xe2\x01\x00\x03hey"
    )
    assert Credit(0x01020304).to_payload() == b"\x04\x03\x02\x01"
    assert Led(2, (1, 2, 3), 800).to_payload() == b"\x02\x01\x02\x03\x20\x03"
    assert EndOfUtterance(1, 2, 3, 4).to_payload() == b"\x01\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    assert (
        AudioChunk(1, 2, 3, b"\x01\x00\xff\xff").to_payload()
        == b"\x01\x00\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\xff\xff"
    )
    assert AudioChunk(1, 2, 3, b"\x01\x00\xff\xff").pcm16.tolist() == [1, -1]
    result = Result(5, 0, (ResultHit("a", 0.5, "T"),), "hi", "")
    assert result.to_payload() == b"\x05\x00\x00\x01" + struct.pack("<f", 0.5) + b"\x01a\x01T\x02hi\x00"


def test_receivers_ignore_appended_fields() -> None:
    frame = message_to_frame(Credit(5), 0)
    assert frame_to_message(frame._replace(payload=frame.payload + b"future")) == Credit(5)


BAD_PAYLOADS = [
    (MessageType.WAKE, b"\x01\x00", "fixed fields need 10"),
    (
        MessageType.WAKE,
        b"\x01\x00" + struct.pack("<f", 1.5) + bytes(4) + b"\x00",
        "confidence must be in [0, 1]",
    ),
    (
        MessageType.WAKE,
        b"\x01\x00" + struct.pack("<f", math.nan) + bytes(4) + b"\x00",
        "confidence must be in [0, 1]",
    ),
    (MessageType.WAKE, b"\x01\x00" + struct.pack("<f", 0.5) + bytes(4), "ends before word's length byte"),
    (MessageType.WAKE, b"\x01\x00" + struct.pack("<f", 0.5) + bytes(4) + b"\x05ab", "word needs 5 bytes"),
    (MessageType.WAKE, b"\x01\x00" + struct.pack("<f", 0.5) + bytes(4) + b"\x02\xc3\x28", "not valid UTF-8"),
    (MessageType.AUDIO, bytes(10) + b"\x01", "not a whole number of PCM16 samples"),
    (MessageType.IMAGE_CHUNK, struct.pack("<HIIB", 1, 8, 10, 1) + b"abc", "run past total 10"),
    (MessageType.RESULT, b"\x01\x00\x00\x02" + struct.pack("<f", 0.5) + b"\x01a\x01b", "hit 1"),
    (MessageType.RESULT, b"\x01\x00\x00\x00", "transcript"),
    (MessageType.HELLO, bytes(17) + b"\x00", "sample_rate must be >= 1"),
    (
        MessageType.HELLO,
        b"\x01\x01\x00\x00" + struct.pack("<IBBBHHH", 16000, 1, 1, 1, 0, 16, 320) + b"\x00",
        "max_payload must be 64..1024",
    ),
    (MessageType.DISPLAY, b"", "DISPLAY payload is empty"),
    (MessageType.ACK, b"\x01", "fixed fields need 2"),
]


@pytest.mark.parametrize(("type_", "payload", "phrase"), BAD_PAYLOADS)
def test_damaged_payloads_are_refused(type_: MessageType, payload: bytes, phrase: str) -> None:
    with pytest.raises(PayloadError, match=phrase.replace("[", r"\[").replace("]", r"\]")):
        frame_to_message(Frame(int(type_), 0, payload))


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownMessageError, match=r"unknown message type 0xee; known types: 0x01 HELLO"
    ) as caught:
        frame_to_message(Frame(0xEE, 0, b""))
    assert caught.value.message_type == 0xEE


@pytest.mark.parametrize(
    ("build", "phrase"),
    [
        (lambda: Wake(70000), "Wake.query must be 0..65535"),
        (lambda: Wake(1, confidence=-0.1), r"confidence must be in \[0, 1\]"),
        (lambda: Wake(1, word="x" * 256), "Wake.word is 256 UTF-8 bytes, more than 255"),
        (lambda: AudioChunk(1, 0, 0, b"\x01"), "whole PCM16 samples"),
        (lambda: ImageChunk(1, 5, 6, b"ab"), "run past total 6"),
        (lambda: Led(1, (0, 0, 256)), "Led.rgb component must be 0..255"),
        (lambda: Led(1, (0, 0)), r"Led.rgb must be \(r, g, b\)"),
        (lambda: Hello(firmware_version=(1, 0)), "firmware_version must be"),
        (lambda: Hello(max_payload=2048), "max_payload must be 64..1024"),
        (lambda: Result(1, hits=[ResultHit("a", 1.0)] * 256), "at most 255 hits"),
        (lambda: Display(300), "Display.line must be 0..255"),
        (lambda: message_to_frame(AudioChunk(1, 0, 0, bytes(MAX_PAYLOAD)), 0), "more than 1024"),
    ],
)
def test_out_of_range_fields_are_refused(build, phrase: str) -> None:
    with pytest.raises(InvalidInputError, match=phrase):
        build()


def test_fit_text_cuts_at_character_boundaries() -> None:
    assert fit_text("héllo", 2) == "h"  # 'é' is two bytes: never split
    assert fit_text("héllo", 3) == "hé"
    assert fit_text("short", 32) == "short"
    assert fit_text("", 0) == ""


def test_result_fit_shortens_for_a_small_firmware() -> None:
    hits = tuple(ResultHit(f"sku-{i:04d}", 1.0 - i / 10, "A very long product title " * 4) for i in range(10))
    result = Result(3, int(ResultStatus.OK), hits, "a transcript " * 19)
    fitted = result.fit(128, title_bytes=16, transcript_bytes=20)
    assert len(fitted.to_payload()) <= 128
    assert fitted.hits and all(len(h.title.encode()) <= 16 for h in fitted.hits)
    assert [h.product_id for h in fitted.hits] == [h.product_id for h in hits[: len(fitted.hits)]]
    assert len(fitted.transcript.encode()) <= 20
    assert len(result.fit(MAX_PAYLOAD).hits) == 10
