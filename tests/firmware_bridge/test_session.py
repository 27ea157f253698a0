"""End to end: the speaker session over a real pseudo-terminal (pyserial on the host side),
the firmware simulator playing espeak-ng speech, a pocketsphinx grammar recogniser as the
query handler; flow control under a slow host; images; errors; the CLI commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from edgeshelf.firmware_bridge.handler import answer_from_sdk, load_handler_factory, make_speaker_handler
from edgeshelf.firmware_bridge.host import BridgeAnswer, HostOptions, HostSession
from edgeshelf.firmware_bridge.messages import (
    AudioChunk,
    Button,
    Display,
    EndReason,
    LedState,
    ResultStatus,
    ShardState,
    ShardStatus,
    Wake,
)
from edgeshelf.firmware_bridge.simulator import FirmwareSimulator, SimulatorOptions, read_wav_pcm16
from edgeshelf.firmware_bridge.transports import LoopbackTransport, SocketListener, open_pty_pair
from edgeshelf.sdk.errors import InvalidInputError, MissingDependencyError, ModelNotFoundError

from edgeshelf.cli import main

# products whose names pocketsphinx's US-English model recognises reliably in espeak-ng speech
PRODUCTS = {
    "sku-boots": "brown leather boots",
    "sku-watch": "silver wrist watch",
    "sku-dress": "pink summer dress",
    "sku-scarf": "green wool scarf",
    "sku-socks": "grey sports socks",
}


class SphinxProductHandler:
    """A real speech handler: pocketsphinx (its wheel's English model) restricted to a JSGF
    grammar of the product names; products ranked by the share of their words heard."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path

        model = Path(get_model_path()) / "en-us"
        self.decoder = Decoder(
            hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"), lm=None, logfn=os.devnull
        )
        names = " | ".join(PRODUCTS.values())
        self.decoder.add_jsgf_string(
            "products",
            f"#JSGF V1.0;\ngrammar products;\npublic <q> = [ show me | find ] [ the | a ] ( {names} );\n",
        )
        self.decoder.activate_search("products")
        self.shard = ShardStatus(int(ShardState.READY), len(PRODUCTS), 0, "0123456789abcdef")

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer:
        if sample_rate != 16000:
            raise InvalidInputError(f"this handler takes 16000 Hz audio, got {sample_rate}")
        self.decoder.start_utt()
        self.decoder.process_raw(pcm16.astype("<i2").tobytes(), False, True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        heard = hyp.hypstr if hyp is not None else ""
        if not heard:
            return BridgeAnswer(error="no product name recognised")
        words = set(heard.split())
        ranked = sorted(PRODUCTS.items(), key=lambda item: -len(words & set(item[1].split())))
        return BridgeAnswer(
            ids=tuple(i for i, _ in ranked),
            scores=tuple(len(words & set(name.split())) / len(name.split()) for _, name in ranked),
            titles=tuple(name.title() for _, name in ranked),
            transcript=heard,
        )

    def shard_status(self) -> ShardStatus:
        return self.shard


def make_sphinx_handler(args: argparse.Namespace) -> SphinxProductHandler:
    """The ``--handler`` factory the CLI test passes."""
    return SphinxProductHandler()


@pytest.fixture(scope="module")
def spoken(espeak_wav) -> dict[str, Path]:
    return {
        "sku-boots": espeak_wav("show me the brown leather boots", speed=150),
        "sku-watch": espeak_wav("silver wrist watch", speed=150),
    }


def test_speaker_session_over_a_pseudo_terminal(
    spoken: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    """`edgeshelf bridge --port /dev/pts/N` (pyserial) against the simulated firmware on the
    pty's master side: wake + spoken query -> RESULT naming the intended product."""
    pair = open_pty_pair()
    argv = [
        "bridge",
        "--port",
        pair.slave_path,
        "--handler",
        "tests.firmware_bridge.test_session:make_sphinx_handler",
        "--max-queries",
        "2",
        "--hello-timeout",
        "20",
        "--json",
    ]
    exit_codes: list[int] = []
    host = threading.Thread(target=lambda: exit_codes.append(main(argv)))
    host.start()
    try:
        with FirmwareSimulator.open(pair.master, SimulatorOptions(pace=0, hello_timeout_s=20)) as firmware:
            replies = {sku: firmware.query_wav(path) for sku, path in spoken.items()}
            shard = firmware.shard_status
    finally:
        host.join(timeout=30)
    assert exit_codes == [0]
    for sku, reply in replies.items():
        assert reply.result.status == ResultStatus.OK
        assert reply.ids[0] == sku, reply.result
        assert reply.result.hits[0].title == PRODUCTS[sku].title()
        assert reply.result.hits[0].score == 1.0
        assert reply.dropped == 0 and reply.sent == reply.chunks
        states = [led.state for led in reply.leds]
        assert states[:3] == [LedState.LISTENING, LedState.THINKING, LedState.ANSWER]
    assert replies["sku-boots"].result.transcript == "show me the brown leather boots"
    assert shard is not None and shard.products == len(PRODUCTS)
    report = json.loads(capsys.readouterr().out)
    assert [q["hits"][0]["product_id"] for q in report["queries"]] == list(spoken)
    assert report["stats"]["firmware"]["name"] == "edgeshelf-simulator"
    assert report["stats"]["link"]["decoder"]["rejected"]["crc"] == 0


class SlowRecogniser:
    """A streaming handler slower than real time: 40 ms of work per 20 ms chunk."""

    def __init__(self) -> None:
        self.fed = 0

    def feed_audio(self, pcm16: np.ndarray, sample_rate: int) -> None:
        self.fed += 1
        time.sleep(0.04)

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer:
        return BridgeAnswer(("x",), (1.0,), transcript=f"{pcm16.size}")


def test_slow_host_makes_the_firmware_drop_and_report_not_block() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    pcm = (np.sin(np.arange(16000) / 5.0) * 5000).astype(np.int16)  # 1 s = 50 chunks of 20 ms
    handler = SlowRecogniser()
    with (
        HostSession.open(host_end, handler, HostOptions(credit_window=4)) as host,
        FirmwareSimulator.open(
            firmware_end, SimulatorOptions(pace=1.0, ring_chunks=4, drain_timeout_s=0.5)
        ) as firmware,
    ):
        reply = firmware.query_audio(pcm)
        status = host.wait_for_status(5.0)
        record = host.wait_for_queries(1, 5.0)[0]
    # the firmware never sent more than the host granted, and counted every chunk it had to drop
    assert reply.chunks == 50
    assert reply.dropped > 5 and reply.sent + reply.dropped == reply.chunks
    assert status.audio_dropped == reply.dropped and status.audio_sent == reply.sent
    assert record.dropped_chunks == reply.dropped and record.lost_chunks == 0
    assert handler.fed == reply.sent
    # the query is still answered, over the whole utterance (dropped chunks are silence)
    assert reply.result.transcript == "16000" and record.samples == 16000


class FastRecogniser(SlowRecogniser):
    def feed_audio(self, pcm16: np.ndarray, sample_rate: int) -> None:
        self.fed += 1


def test_a_fast_host_drops_nothing_at_real_time_pace() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    pcm = np.zeros(4000, dtype=np.int16)
    with (
        HostSession.open(host_end, FastRecogniser()),
        FirmwareSimulator.open(firmware_end, SimulatorOptions(pace=1.0, ring_chunks=8)) as firmware,
    ):
        reply = firmware.query_audio(pcm)
    assert reply.dropped == 0 and reply.sent == reply.chunks == 13


class Picky:
    """Answers images; refuses silence with a library error; crashes on a long utterance."""

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer:
        if pcm16.size > 10000:
            raise RuntimeError("handler bug")
        if not pcm16.any():
            raise InvalidInputError("no speech in the audio")
        return BridgeAnswer(("a", "b"), (0.9, 0.1), ("A", "B"), transcript="words")

    def answer_image(self, data: bytes, image_format: int) -> BridgeAnswer:
        return BridgeAnswer(("img",), (0.5,), (f"{len(data)} bytes {data[:2].hex()}",))

    def on_button(self, button: Button) -> None:
        self.button = button


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_images_buttons_and_handler_errors() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    handler = Picky()
    with (
        HostSession.open(host_end, handler, HostOptions(k=1)) as host,
        FirmwareSimulator.open(firmware_end, SimulatorOptions(pace=0, image_chunk_bytes=500)) as firmware,
    ):
        jpeg = b"\xff\xd8" + bytes(range(256)) * 8 + b"\xff\xd9"
        image = firmware.send_image(jpeg)
        assert image.result.ids == ["img"] and image.result.hits[0].title == f"{len(jpeg)} bytes ffd8"

        silent = firmware.query_audio(np.zeros(1600, dtype=np.int16))
        assert silent.result.status == ResultStatus.ERROR
        assert silent.result.error == "no speech in the audio"
        assert silent.leds[-1].state == LedState.ERROR

        ok = firmware.query_audio(np.ones(1600, dtype=np.int16))
        assert ok.ids == ["a"]  # k=1

        host.send(Display(0, "Hello shopper"))
        firmware.send(Button(3, 1, 1234))
        _wait_until(lambda: hasattr(handler, "button") and firmware.displays)
        assert handler.button == Button(3, 1, 1234) and host.stats.buttons == 1
        assert firmware.displays == [Display(0, "Hello shopper")]

        firmware.query_audio(np.ones(16000, dtype=np.int16), wait=False)
        _wait_until(lambda: host.error is not None and firmware.errors)
        with pytest.raises(RuntimeError, match="handler bug"):
            host.check()
        assert firmware.errors[0].code == 500 and "RuntimeError: handler bug" in firmware.errors[0].text


def test_host_without_hello_times_out_with_a_hint() -> None:
    host_end, _ = LoopbackTransport.pair()
    with (
        HostSession.open(host_end, Picky()) as host,
        pytest.raises(Exception, match="no HELLO from the firmware on loopback:a within 0.05 s"),
    ):
        host.wait_for_hello(0.05)


def test_session_refuses_a_handler_without_answer_audio() -> None:
    with pytest.raises(InvalidInputError, match="has no answer_audio"):
        HostSession(LoopbackTransport.pair()[0], object())


def test_simulate_cli_over_a_unix_socket(
    spoken: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    listener = SocketListener.bind(f"unix-listen://{tmp_path / 'bridge.sock'}")
    codes: list[int] = []
    wav = str(spoken["sku-watch"])
    argv = [
        "bridge",
        "simulate",
        "--port",
        listener.address,
        "--wav",
        wav,
        "--pace",
        "0",
        "--repeat",
        "2",
        "--json",
    ]
    firmware = threading.Thread(target=lambda: codes.append(main(argv)))
    firmware.start()
    try:
        with HostSession.open(listener.accept(10.0), SphinxProductHandler()) as host:
            host.wait_for_queries(2, 20.0)
            firmware.join(timeout=20)  # the host stays up until the firmware has acked and left
    finally:
        listener.close()
        firmware.join(timeout=20)
    assert codes == [0]
    report = json.loads(capsys.readouterr().out)
    assert [q["hits"][0]["product_id"] for q in report["queries"]] == ["sku-watch", "sku-watch"]
    assert report["status"]["audio_dropped"] == 0
    assert report["status"]["audio_sent"] == 2 * report["queries"][0]["audio_chunks"]


def test_simulator_reads_and_resamples_wav_files(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "stereo_8k.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.repeat(np.arange(800, dtype="<i2"), 2).tobytes())
    pcm = read_wav_pcm16(path, 16000)
    assert pcm.dtype == np.int16 and pcm.size == 1600 and pcm[0] == 0 and pcm[2] == 1
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(InvalidInputError, match="bad.wav is not a readable WAV file"):
        read_wav_pcm16(tmp_path / "bad.wav", 16000)
    with pytest.raises(InvalidInputError, match="more than max_payload 1024"):
        SimulatorOptions(chunk_ms=40)


def test_bench_and_vectors_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bridge", "bench", "--frames", "500", "--slow-ms", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {d["label"] for d in report["decoder"]} == {"control", "audio", "max"}
    assert all(d["frames_per_s"] > 0 for d in report["decoder"])
    assert report["slow_host"]["dropped"] > 0 and report["slow_host"]["answered"] is True
    assert report["slow_host"]["dropped"] == report["slow_host"]["status_dropped"]
    out = tmp_path / "vectors.json"
    assert main(["bridge", "vectors", "--out", str(out)]) == 0
    from edgeshelf.firmware_bridge.vectors import VECTORS_PATH

    assert out.read_bytes() == VECTORS_PATH.read_bytes()


def test_bridge_cli_errors(capsys: pytest.CaptureFixture) -> None:
    assert main(["bridge"]) == 2
    assert "edgeshelf bridge needs --port" in capsys.readouterr().err
    assert main(["bridge", "--port", "/dev/null", "--handler", "nosuchmodule:f"]) == 2
    assert "cannot import nosuchmodule" in capsys.readouterr().err
    assert main(["bridge", "--port", "/dev/null"]) == 2
    assert "needs --bundle PATH" in capsys.readouterr().err


def test_handler_factory_errors() -> None:
    with pytest.raises(InvalidInputError, match="must look like package.module:function"):
        load_handler_factory("nocolon")
    with pytest.raises(InvalidInputError, match="has no callable 'nope'"):
        load_handler_factory("tests.firmware_bridge.test_session:nope")
    assert (
        load_handler_factory("tests.firmware_bridge.test_session:make_sphinx_handler") is make_sphinx_handler
    )


def test_make_speaker_handler_reports_a_missing_sdk_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "edgeshelf.sdk.apps", None)  # as on a device without it
    args = argparse.Namespace(bundle="b", shard="s", asr_engine="pocketsphinx", asr_model=None, k=3)
    with pytest.raises(MissingDependencyError, match=r"edgeshelf.sdk.apps\) cannot be imported"):
        make_speaker_handler(args)


def test_make_speaker_handler_opens_the_sdk_app(tmp_path: Path) -> None:
    args = argparse.Namespace(
        bundle=str(tmp_path / "missing.bundle"),
        shard=str(tmp_path / "x.shard"),
        asr_engine="pocketsphinx",
        asr_model=None,
        k=3,
    )
    with pytest.raises((ModelNotFoundError, InvalidInputError, FileNotFoundError)):
        make_speaker_handler(args)


def test_sdk_answers_convert_to_bridge_answers() -> None:
    from edgeshelf.sdk.apps import Answer
    from edgeshelf.sdk.results import Hit, SearchResult

    result = SearchResult((Hit("p1", 0.75, "Boots"), Hit("p2", 0.5, "Socks")), "shard", "0123456789abcdef")
    answer = answer_from_sdk(Answer(query="brown boots", modalities=("text",), result=result))
    assert answer == BridgeAnswer(("p1", "p2"), (0.75, 0.5), ("Boots", "Socks"), "brown boots")


def test_utterance_without_end_is_answered_after_the_time_out() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    options = HostOptions(utterance_timeout_s=0.2, credit_refresh_s=0.05)
    with (
        HostSession.open(host_end, Picky(), options) as host,
        FirmwareSimulator.open(firmware_end, SimulatorOptions(pace=0)) as firmware,
    ):
        firmware.send(Wake(40, 0.75))
        firmware.send(
            AudioChunk(40, 0, 0, np.ones(320, dtype="<i2").tobytes())
        )  # then the firmware goes quiet
        record = host.wait_for_queries(1, 5.0)[0]
        result = firmware.wait_result(40, 5.0)
    assert record.end_reason == EndReason.MAX_LENGTH and record.samples == 320 and record.confidence == 0.75
    assert result.ids == ["a", "b"]


def test_too_large_image_is_refused_with_an_error_frame() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    with (
        HostSession.open(host_end, Picky(), HostOptions(max_image_bytes=100)),
        FirmwareSimulator.open(firmware_end, SimulatorOptions(pace=0)) as firmware,
    ):
        firmware.send_image(bytes(300), wait=False)
        _wait_until(lambda: firmware.errors)
    assert firmware.errors[0].code == 413 and "300 bytes, more than 100" in firmware.errors[0].text


@pytest.mark.parametrize(
    ("build", "phrase"),
    [
        (lambda: HostOptions(credit_window=0), "credit_window must be >= 1"),
        (lambda: HostOptions(k=0), "k must be 1..255"),
        (lambda: HostOptions(utterance_timeout_s=0), "must be > 0"),
        (lambda: SimulatorOptions(pace=-1), "pace must be >= 0"),
        (lambda: SimulatorOptions(ring_chunks=0), "ring_chunks must be >= 1"),
        (lambda: SimulatorOptions(sample_rate=100), "sample_rate must be >= 1000 Hz"),
        (lambda: SimulatorOptions(image_chunk_bytes=2000), "image_chunk_bytes must be 1..1013"),
        (lambda: BridgeAnswer(("a", "b"), (1.0,)), "2 ids but 1 scores"),
        (lambda: BridgeAnswer(("a",), (1.0,), ("x", "y")), "1 ids but 2 titles"),
    ],
)
def test_options_and_answers_are_checked(build, phrase: str) -> None:
    with pytest.raises(InvalidInputError, match=phrase):
        build()


def test_simulate_cli_on_its_own_pseudo_terminal(spoken: dict[str, Path]) -> None:
    """`edgeshelf bridge simulate --port pty` (a subprocess) prints the pty's path; a host opens
    it with pyserial, as `edgeshelf bridge --port /dev/pts/N` would."""
    import subprocess

    from edgeshelf.firmware_bridge.transports import SerialTransport

    command = [sys.executable, "-m", "edgeshelf.cli", "bridge", "simulate", "--port", "pty"]
    command += ["--wav", str(spoken["sku-boots"]), "--pace", "0", "--timeout", "30", "--json"]
    simulator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = simulator.stderr.readline().decode()
        assert "edgeshelf bridge simulate: firmware on /dev/pts/" in line
        path = line.split(" on ", 1)[1].split(";", 1)[0]
        with HostSession.open(SerialTransport.open(path), SphinxProductHandler()) as host:
            host.wait_for_queries(1, 30.0)
            out, err = simulator.communicate(timeout=30)
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait()
    assert simulator.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["queries"][0]["hits"][0]["product_id"] == "sku-boots"
    assert report["queries"][0]["transcript"] == "show me the brown leather boots"
