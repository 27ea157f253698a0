"""The shared test vectors (``firmware_bridge/test_vectors.json``), generated from the Python
codec and checked by both sides: the Python tests and the C test program
(``firmware_bridge/c/test_bridge.c``, ``test_bridge vectors test_vectors.json``).

Regenerate after any change to the wire format (the tests fail while the file is stale)::

    python -m edgeshelf.firmware_bridge.vectors firmware_bridge/test_vectors.json
    # or: edgeshelf bridge vectors --out firmware_bridge/test_vectors.json

Everything here is deterministic (fixed seeds), so the file only changes with the protocol.
Floats in messages are chosen exactly representable in binary32 so both sides compare exactly.
"""

from __future__ import annotations

import json
import os
import random
import sys
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any

from cobs import cobs
from edgeshelf.firmware_bridge.frames import (
    FLAG_ACK_REQUEST,
    FLAG_RETRANSMIT,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    encode_frame,
    pack_frame,
)
from edgeshelf.firmware_bridge.messages import (
    Ack,
    AudioChunk,
    Button,
    ButtonAction,
    Capability,
    Credit,
    Display,
    EndOfUtterance,
    EndReason,
    Error,
    Hello,
    ImageChunk,
    Led,
    LedState,
    Message,
    MessageType,
    Nack,
    NackReason,
    Ping,
    Pong,
    Result,
    ResultHit,
    ResultStatus,
    ShardState,
    ShardStatus,
    Status,
    Wake,
    message_to_frame,
)
from edgeshelf.sdk.fileio import atomic_write_text

VECTORS_PATH = Path(__file__).with_name("test_vectors.json")
FORMAT = "edgeshelf-firmware-bridge-vectors/1"

MESSAGE_NAMES: dict[type[Message], str] = {
    Hello: "hello",
    Wake: "wake",
    Button: "button",
    AudioChunk: "audio",
    EndOfUtterance: "end_of_utterance",
    ImageChunk: "image_chunk",
    Status: "status",
    Result: "result",
    Led: "led",
    Display: "display",
    ShardStatus: "shard_status",
    Credit: "credit",
    Ack: "ack",
    Nack: "nack",
    Error: "error",
    Ping: "ping",
    Pong: "pong",
}
_BY_NAME = {name: cls for cls, name in MESSAGE_NAMES.items()}


def _nonzero(n: int, start: int = 1) -> bytes:
    return bytes((start + i) % 255 + 1 for i in range(n))


def message_fields(message: Message) -> dict[str, Any]:
    """A message's fields as JSON values (bytes as hex, audio as a list of ints, hits as objects)."""
    out: dict[str, Any] = {}
    for f in fields(message):
        value = getattr(message, f.name)
        if isinstance(message, AudioChunk) and f.name == "samples":
            value = message.pcm16.tolist()
        elif isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple) and value and isinstance(value[0], ResultHit):
            value = [{"product_id": h.product_id, "score": h.score, "title": h.title} for h in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = int(value) if isinstance(value, bool) else value
    return out


def message_from_fields(name: str, values: dict[str, Any]) -> Message:
    """Inverse of :func:`message_fields`."""
    cls = _BY_NAME[name]
    kwargs = dict(values)
    if cls is AudioChunk:
        import numpy as np

        kwargs["samples"] = np.asarray(kwargs["samples"], dtype="<i2").tobytes()
    elif cls is ImageChunk:
        kwargs["data"] = bytes.fromhex(kwargs["data"])
    elif cls is Result:
        kwargs["hits"] = tuple(ResultHit(**h) for h in kwargs["hits"])
    for key in ("firmware_version", "rgb"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return cls(**kwargs)


def sample_messages() -> list[tuple[str, Message]]:
    """One or more instances of every message type, edge values included."""
    caps = int(Capability.MICROPHONE | Capability.WAKE_WORD | Capability.BUTTONS | Capability.LEDS)
    samples = [0, 1, -1, 32767, -32768, 256, -256, 12345]
    return [
        ("hello", Hello((1, 2, 3), 16000, 1, 1, 1, caps, 1024, 320, "shelf-speaker")),
        ("hello-empty-name", Hello((0, 0, 0), 48000, 1, 1, 0, 0, 64, 480, "")),
        ("wake", Wake(7, 0.875, 123456, "hey shelf")),
        ("wake-utf8", Wake(65535, 1.0, 0xFFFFFFFF, "héj hylla")),
        ("button", Button(2, int(ButtonAction.LONG_PRESS), 99)),
        (
            "audio",
            AudioChunk(7, 41, 13120, bytes(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))),
        ),
        ("audio-empty", AudioChunk(1, 0, 0, b"")),
        ("end_of_utterance", EndOfUtterance(7, 35200, 3, int(EndReason.SILENCE))),
        ("image_chunk", ImageChunk(9, 768, 2000, bytes.fromhex("ffd8ffe000104a464946") + bytes(6))),
        ("status", Status(60000, 500, 480, 20, 3, 1, 2)),
        (
            "result",
            Result(
                7,
                int(ResultStatus.OK),
                (
                    ResultHit("P-1001", 0.8125, "Brown leather boots"),
                    ResultHit("P-2002", 0.5, "Pink summer dress"),
                    ResultHit("P-3003", -0.25, "Grüne Wollmütze"),
                ),
                "show me the brown leather boots",
                "",
            ),
        ),
        ("result-error", Result(8, int(ResultStatus.ERROR), (), "", "no speech recognised")),
        ("led", Led(int(LedState.LISTENING), (0, 96, 255), 800)),
        ("display", Display(1, "Brown leather boots")),
        ("shard_status", ShardStatus(int(ShardState.READY), 2583, 3600, "a1b2c3d4e5f60718")),
        ("credit", Credit(4294967295)),
        ("ack", Ack(65535)),
        ("nack", Nack(12, int(NackReason.NOT_READY))),
        ("error", Error(500, "handler failed")),
        ("ping", Ping(0xDEADBEEF)),
        ("pong", Pong(0)),
    ]


def _frame_entry(name: str, frame: Frame) -> dict[str, Any]:
    return {
        "name": name,
        "type": int(frame.type),
        "flags": frame.flags,
        "seq": frame.seq,
        "payload": frame.payload.hex(),
        "wire": encode_frame(frame).hex(),
    }


def _boundary_lengths() -> list[int]:
    """Payload lengths where the raw frame (payload + 11) crosses a COBS block boundary."""
    lengths = {0, 1, 2, MAX_PAYLOAD - 1, MAX_PAYLOAD}
    for raw in (253, 254, 255, 508, 509, 762, 763, 1016, 1017):
        lengths.add(raw - 11)
    return sorted(n for n in lengths if 0 <= n <= MAX_PAYLOAD)


def _segment(raw: bytes) -> str:
    """A rejected segment on the wire: 00 COBS(raw) 00."""
    return (b"\x00" + cobs.encode(raw) + b"\x00").hex()


def build_vectors() -> dict[str, Any]:
    """All vectors as one JSON-ready dict."""
    rng = random.Random(20240607)
    crc_inputs = [b"", b"a", b"123456789", bytes(range(256)), rng.randbytes(1035)]

    cobs_inputs: list[tuple[str, bytes]] = [
        ("empty", b""),
        ("zero", b"\x00"),
        ("two-zeros", b"\x00\x00"),
        ("digits-with-zero", b"12345\x006789"),
        ("trailing-zero", b"12345\x006789\x00"),
        ("253-nonzero", _nonzero(253)),
        ("254-nonzero", _nonzero(254)),
        ("255-nonzero", _nonzero(255)),
        ("254-nonzero-then-zero", _nonzero(254) + b"\x00"),
        ("508-nonzero", _nonzero(508)),
        ("0-255", bytes(range(256))),
        ("1040-random", rng.randbytes(1040)),
    ]
    cobs_invalid = [
        ("zero-code", b"\x00"),
        ("short-block", b"\x05123"),
        ("zero-inside", b"\x0512\x004"),
        ("zero-at-end", b"\x051234\x00"),
    ]

    frames = [
        _frame_entry("ping-seq0", Frame(MessageType.PING, 0, b"\x01\x00\x00\x00")),
        _frame_entry("ack-request", Frame(MessageType.WAKE, 1, b"\x00" * 10 + b"\x00", FLAG_ACK_REQUEST)),
        _frame_entry(
            "retransmit-flag",
            Frame(MessageType.ERROR, 65535, b"\x01\x00\x00", FLAG_ACK_REQUEST | FLAG_RETRANSMIT),
        ),
        _frame_entry("unknown-type", Frame(0xEE, 4660, b"future")),
        _frame_entry("all-zero-payload", Frame(MessageType.AUDIO, 256, bytes(64))),
    ]
    for n in _boundary_lengths():
        frames.append(_frame_entry(f"payload-{n}-nonzero", Frame(MessageType.AUDIO, n, _nonzero(n, n))))
        frames.append(
            _frame_entry(f"payload-{n}-random", Frame(MessageType.IMAGE_CHUNK, n + 1, rng.randbytes(n)))
        )

    good = pack_frame(Frame(MessageType.PING, 3, b"\x2a\x00\x00\x00"))
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01
    flipped_payload = bytearray(good)
    flipped_payload[8] ^= 0x80
    v2 = bytearray(good)
    v2[0] = 2
    v2 = bytes(v2[:-4]) + zlib.crc32(bytes(v2[:-4])).to_bytes(4, "little")
    bad_len = bytearray(good[:-4])
    bad_len[5] = 5
    bad_len = bytes(bad_len) + zlib.crc32(bytes(bad_len)).to_bytes(4, "little")
    too_long = pack_frame(Frame(MessageType.AUDIO, 0, bytes(1024)))[:-4]
    too_long = too_long[:5] + (1026).to_bytes(2, "little") + too_long[7:] + b"\x01\x02"
    too_long += zlib.crc32(too_long).to_bytes(4, "little")
    rejects = [
        {"name": "one-byte", "wire": _segment(b"\x01"), "reason": "short"},
        {"name": "ten-bytes", "wire": _segment(good[:10]), "reason": "short"},
        {"name": "truncated", "wire": _segment(good[:-1]), "reason": "crc"},
        {"name": "crc-bit-flip", "wire": _segment(bytes(bad_crc)), "reason": "crc"},
        {"name": "payload-bit-flip", "wire": _segment(bytes(flipped_payload)), "reason": "crc"},
        {"name": "version-2", "wire": _segment(v2), "reason": "version"},
        {"name": "length-field-5-of-4", "wire": _segment(bad_len), "reason": "length"},
        {"name": "payload-1026-over-max", "wire": _segment(too_long), "reason": "length"},
        {"name": "bad-cobs-code", "wire": "00" + "05313233" + "00", "reason": "cobs"},
        {"name": "oversize-1041", "wire": "00" + "01" * 1041 + "00", "reason": "oversize"},
        {"name": "oversize-garbage", "wire": "00" + "ff" * 3000 + "00", "reason": "oversize"},
    ]

    messages = []
    for seq, (name, message) in enumerate(sample_messages()):
        entry = _frame_entry(name, message_to_frame(message, seq))
        entry["message"] = MESSAGE_NAMES[type(message)]
        entry["fields"] = message_fields(message)
        messages.append(entry)

    streams = [_stream_vector(rng)]
    return {
        "format": FORMAT,
        "protocol_version": PROTOCOL_VERSION,
        "max_payload": MAX_PAYLOAD,
        "generated_by": "python -m edgeshelf.firmware_bridge.vectors firmware_bridge/test_vectors.json",
        "crc32": [{"data": d.hex(), "crc32": zlib.crc32(d)} for d in crc_inputs],
        "cobs": [{"name": n, "data": d.hex(), "encoded": cobs.encode(d).hex()} for n, d in cobs_inputs],
        "cobs_invalid": [{"name": n, "encoded": e.hex()} for n, e in cobs_invalid],
        "frames": frames,
        "rejects": rejects,
        "messages": messages,
        "streams": streams,
    }


def _stream_vector(rng: random.Random) -> dict[str, Any]:
    """Frames with garbage, a truncation and bit flips between them; what must come out."""
    frames = [message_to_frame(m, i) for i, (_, m) in enumerate(sample_messages()[:8])]
    wire = bytearray(b"\xff\x13garbage before the first frame")
    for i, frame in enumerate(frames):
        encoded = encode_frame(frame)
        if i == 2:
            wire += encoded[: len(encoded) // 2]  # truncated: its tail never arrives
        elif i == 4:
            damaged = bytearray(encoded)
            damaged[len(damaged) // 2] ^= 0x10
            wire += damaged
        elif i == 6:
            wire += rng.randbytes(40).replace(b"\x00", b"\x01") + encoded
        else:
            wire += encoded
    decoder = FrameDecoder()
    delivered = decoder.feed(bytes(wire))
    rejected = {k: v for k, v in decoder.stats.rejected.items() if v}
    return {
        "name": "garbage-truncation-bitflip",
        "wire": bytes(wire).hex(),
        "frames": [
            {"type": f.type, "seq": f.seq, "flags": f.flags, "payload": f.payload.hex()} for f in delivered
        ],
        "rejected": rejected,
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1, ensure_ascii=False) + "\n"


def write_vectors(path: str | Path = VECTORS_PATH) -> Path:
    """Generate and write the vectors atomically (mode 0644); return the path."""
    target = atomic_write_text(path, render(build_vectors()))
    os.chmod(target, 0o644)
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = write_vectors(args[0] if args else VECTORS_PATH)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
