"""The C side (firmware_bridge/c/): compiled with the machine's gcc as strict C99, checked byte
for byte against the Python side on the shared vectors and on seeded random data, both ways:
Python encodes -> C decodes, C encodes -> Python decodes."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from cobs import cobs
from edgeshelf.firmware_bridge.bench import C_DIR, c_code_size
from edgeshelf.firmware_bridge.frames import Frame, FrameDecoder, encode_frame
from edgeshelf.firmware_bridge.vectors import VECTORS_PATH

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
REASONS = ("oversize", "cobs", "short", "crc", "version", "length")


@pytest.fixture(scope="session")
def c_test_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (apt-get install gcc)")
    out = tmp_path_factory.mktemp("c") / "test_bridge"
    subprocess.run(
        [
            gcc,
            *STRICT,
            "-O1",
            "-I",
            str(C_DIR),
            str(C_DIR / "edgeshelf_bridge.c"),
            str(C_DIR / "test_bridge.c"),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def _run(program: Path, *args: str, stdin: bytes = b"") -> str:
    done = subprocess.run([str(program), *args], input=stdin, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


def test_c_program_passes_every_shared_vector(c_test_program: Path) -> None:
    out = _run(c_test_program, "vectors", str(VECTORS_PATH))
    assert ", 0 failures" in out
    assert int(out.split()[1]) >= 300  # checks run


def test_c_program_notices_a_wrong_vector(c_test_program: Path, tmp_path: Path) -> None:
    text = VECTORS_PATH.read_text(encoding="utf-8").replace('"confidence": 0.875', '"confidence": 0.5', 1)
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    done = subprocess.run([str(c_test_program), "vectors", str(bad)], capture_output=True, check=False)
    assert done.returncode == 1
    assert b"FAIL wake: C payload != Python payload" in done.stderr


def _damaged_stream(seed: int, count: int) -> tuple[bytes, list[Frame]]:
    rng = random.Random(seed)
    wire = bytearray()
    frames = []
    for i in range(count):
        frame = Frame(
            rng.randrange(256), i, rng.randbytes(rng.choice([0, 3, 200, 253, 700, 1024])), rng.randrange(256)
        )
        frames.append(frame)
        encoded = bytearray(encode_frame(frame))
        roll = rng.random()
        if roll < 0.1:
            encoded[rng.randrange(len(encoded))] ^= 1 << rng.randrange(8)
        elif roll < 0.2:
            del encoded[rng.randrange(1, len(encoded)) :]
        elif roll < 0.3:
            encoded[:0] = rng.randbytes(rng.randrange(1, 2000))
        wire += encoded
    wire += b"\x01" * 1500 + b"\x00"  # one over-long segment at the end
    return bytes(wire), frames


@pytest.mark.parametrize("seed", [1, 2])
def test_c_stream_decoder_matches_python_on_damaged_streams(c_test_program: Path, seed: int) -> None:
    wire, _ = _damaged_stream(seed, 400)
    decoder = FrameDecoder()
    python_frames = decoder.feed(wire)
    lines = _run(c_test_program, "decode", stdin=wire).splitlines()
    c_frames = [line.split() for line in lines if line.startswith("F ")]
    assert [(int(t), int(s), int(f), p[0] if p else "") for _, t, s, f, *p in c_frames] == [
        (f.type, f.seq, f.flags, f.payload.hex()) for f in python_frames
    ]
    summary = lines[-1].split()
    assert summary[0] == "S" and int(summary[1]) == len(python_frames)
    assert dict(zip(REASONS, map(int, summary[2:]))) == decoder.stats.rejected
    assert decoder.stats.rejected["oversize"] >= 1 and decoder.stats.errors > 20


def test_c_encoder_matches_python_on_random_frames(c_test_program: Path) -> None:
    rng = random.Random(11)
    frames = [
        Frame(rng.randrange(256), rng.randrange(65536), rng.randbytes(n), rng.randrange(256))
        for n in [*range(0, 300), *range(490, 530), *range(1000, 1025)]
    ]
    lines = "".join(f"{f.type} {f.flags} {f.seq} {f.payload.hex()}\n" for f in frames).encode()
    wires = _run(c_test_program, "encode", stdin=lines).split()
    assert wires == [encode_frame(f).hex() for f in frames]
    decoder = FrameDecoder()
    assert decoder.feed(bytes.fromhex("".join(wires))) == frames  # C -> Python


def test_c_cobs_matches_the_cobs_package(c_test_program: Path) -> None:
    rng = random.Random(5)
    inputs = [bytes(n) for n in (0, 1, 254, 255)]
    inputs += [
        bytes(rng.randrange(1, 256) for _ in range(n)) for n in (1, 253, 254, 255, 256, 508, 509, 1040)
    ]
    inputs += [rng.randbytes(rng.randrange(0, 1200)) for _ in range(200)]
    garbage = [
        bytes(rng.choice([0, 1, 2, 3, 254, 255, rng.randrange(256)]) for _ in range(rng.randrange(1, 12)))
        for _ in range(300)
    ]
    lines = "".join(f"E {d.hex()}\n" for d in inputs) + "".join(f"D {cobs.encode(d).hex()}\n" for d in inputs)
    lines += "".join(f"D {g.hex()}\n" for g in garbage)
    out = _run(c_test_program, "cobs", stdin=lines.encode()).split("\n")[:-1]
    expected = [cobs.encode(d).hex() for d in inputs] + [d.hex() for d in inputs]
    for g in garbage:
        try:
            expected.append(cobs.decode(g).hex())
        except cobs.DecodeError:
            expected.append("ERR")
    assert out == expected


def test_library_builds_strict_with_a_smaller_payload_limit(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    for define in ("-DESB_MAX_PAYLOAD=256u", "-DESB_MAX_PAYLOAD=64u"):
        subprocess.run(
            [
                gcc,
                *STRICT,
                define,
                "-Os",
                "-c",
                str(C_DIR / "edgeshelf_bridge.c"),
                "-o",
                str(tmp_path / "small.o"),
            ],
            check=True,
            capture_output=True,
        )


def test_c_code_size_is_measured(record_property: pytest.RecordProperty) -> None:
    if shutil.which("gcc") is None or shutil.which("size") is None:
        pytest.skip("gcc and size are needed")
    size = c_code_size(flags="-Os")
    record_property("c_text_bytes_Os", size.text)
    assert 1000 < size.text < 16384 and size.data == 0 and size.bss == 0  # no mutable globals


def test_c_parsers_stay_inside_damaged_payloads_under_sanitizers(tmp_path: Path) -> None:
    """Random payloads for every host-to-firmware type through the C parsers, built with
    AddressSanitizer and UBSan: any read outside a payload aborts the program."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    program = tmp_path / "test_bridge_asan"
    sources = [str(C_DIR / "edgeshelf_bridge.c"), str(C_DIR / "test_bridge.c")]
    flags = [*STRICT, "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", str(C_DIR)]
    built = subprocess.run([gcc, *flags, *sources, "-o", str(program)], capture_output=True, check=False)
    if built.returncode != 0:
        pytest.skip(f"this gcc cannot build with sanitizers: {built.stderr.decode(errors='replace')[:200]}")
    rng = random.Random(9)
    types = [0x20, 0x21, 0x22, 0x23, 0x24, 0x30, 0x31, 0x32, 0x33, 0x34]
    frames = []
    for i in range(4000):
        if rng.random() < 0.5:
            payload = rng.randbytes(rng.randrange(0, 300))
        else:  # plausible RESULT-like heads with random counts and lengths
            payload = bytes([rng.randrange(256), 0, rng.randrange(3), rng.randrange(8)]) + rng.randbytes(
                rng.randrange(0, 100)
            )
        frames.append(Frame(rng.choice(types), i, payload))
    out = _run(program, "decode", stdin=b"".join(encode_frame(f) for f in frames))
    assert out.splitlines()[-1].split()[:2] == ["S", str(len(frames))]
