"""The reliability layer: acks and retransmission, duplicate suppression, NACKs, PING/PONG,
giving up, HELLO resetting the duplicate window, and whole sessions over a damaging line."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from edgeshelf.firmware_bridge.errors import LinkClosedError, LinkTimeoutError
from edgeshelf.firmware_bridge.frames import (
    FLAG_ACK_REQUEST,
    FLAG_RETRANSMIT,
    Frame,
    FrameDecoder,
    encode_frame,
)
from edgeshelf.firmware_bridge.host import BridgeAnswer, HostOptions, HostSession
from edgeshelf.firmware_bridge.link import Link, LinkOptions
from edgeshelf.firmware_bridge.messages import (
    Ack,
    Button,
    Credit,
    Hello,
    Message,
    MessageType,
    Nack,
    NackReason,
    Wake,
    frame_to_message,
    message_to_frame,
)
from edgeshelf.firmware_bridge.simulator import FirmwareSimulator, SimulatorOptions
from edgeshelf.firmware_bridge.transports import Faults, FaultyTransport, LoopbackTransport
from edgeshelf.sdk.errors import InvalidInputError

FAST = LinkOptions(ack_timeout_s=0.05, backoff=1.0, max_retries=3, poll_s=0.005)


class Recorder:
    """on_message that records what arrived (and can refuse)."""

    def __init__(self, refuse: NackReason | None = None) -> None:
        self.messages: list[tuple[Message, Frame]] = []
        self.refuse = refuse
        self.event = threading.Event()

    def __call__(self, message: Message, frame: Frame) -> NackReason | None:
        self.messages.append((message, frame))
        self.event.set()
        return self.refuse


def _raw_frames(raw_end: LoopbackTransport, count: int, timeout: float = 2.0) -> list[Frame]:
    decoder = FrameDecoder()
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frames += decoder.feed(raw_end.read(4096, 0.01))
    return frames


def test_reliable_frame_is_acked_and_a_duplicate_is_dropped_but_acked_again() -> None:
    link_end, raw = LoopbackTransport.pair()
    recorder = Recorder()
    with Link(link_end, FAST, on_message=recorder):
        wake = encode_frame(message_to_frame(Wake(1, 0.5), 7))
        raw.write(wake + wake)  # the second is a retransmission whose ack was lost
        acks = _raw_frames(raw, 2)
        assert [frame_to_message(f) for f in acks] == [Ack(7), Ack(7)]
        assert [m for m, _ in recorder.messages] == [Wake(1, 0.5)]


def test_unreliable_frames_are_not_acked_and_not_deduplicated() -> None:
    link_end, raw = LoopbackTransport.pair()
    recorder = Recorder()
    with Link(link_end, FAST, on_message=recorder) as link:
        credit = encode_frame(message_to_frame(Credit(5), 3))
        raw.write(credit + credit)
        deadline = time.monotonic() + 2
        while len(recorder.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert [m for m, _ in recorder.messages] == [Credit(5), Credit(5)]
        assert _raw_frames(raw, 1, timeout=0.1) == []
        assert link.stats.duplicates == 0


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (Frame(0xEE, 4, b"", FLAG_ACK_REQUEST), NackReason.UNKNOWN_TYPE),
        (Frame(MessageType.WAKE, 4, b"\x01", FLAG_ACK_REQUEST), NackReason.BAD_PAYLOAD),
    ],
)
def test_intact_but_unusable_frames_are_nacked(frame: Frame, reason: NackReason) -> None:
    link_end, raw = LoopbackTransport.pair()
    recorder = Recorder()
    with Link(link_end, FAST, on_message=recorder) as link:
        raw.write(encode_frame(frame))
        assert [frame_to_message(f) for f in _raw_frames(raw, 1)] == [Nack(4, int(reason))]
        assert recorder.messages == [] and link.stats.nacks_sent == 1


def test_refused_message_is_nacked_not_acked() -> None:
    link_end, raw = LoopbackTransport.pair()
    recorder = Recorder(refuse=NackReason.NOT_READY)
    with Link(link_end, FAST, on_message=recorder):
        raw.write(encode_frame(message_to_frame(Button(1), 9)))
        assert [frame_to_message(f) for f in _raw_frames(raw, 1)] == [Nack(9, int(NackReason.NOT_READY))]


def test_unacknowledged_frame_is_retransmitted_then_given_up() -> None:
    link_end, raw = LoopbackTransport.pair()
    gave_up: list[Message] = []
    with Link(link_end, FAST, on_message=Recorder(), on_give_up=gave_up.append) as link:
        seq = link.send(Wake(2, 1.0))
        assert link.wait(seq, 5.0) == "given-up"
        frames = _raw_frames(raw, 4)
        assert [f.seq for f in frames] == [seq] * 4  # the first sending and 3 retransmissions
        assert frames[0].flags == FLAG_ACK_REQUEST
        assert all(f.flags == FLAG_ACK_REQUEST | FLAG_RETRANSMIT for f in frames[1:])
        assert gave_up == [Wake(2, 1.0)]
        assert link.stats.retransmits == 3 and link.stats.given_up == 1 and link.pending == 0


def test_ack_and_nack_settle_pending_frames() -> None:
    link_end, raw = LoopbackTransport.pair()
    nacks: list[tuple[int, int, Message | None]] = []
    with Link(link_end, FAST, on_message=Recorder(), on_nack=lambda *a: nacks.append(a)) as link:
        acked, nacked = link.send(Wake(1)), link.send(Wake(2))
        raw.write(
            encode_frame(message_to_frame(Ack(acked), 0)) + encode_frame(message_to_frame(Nack(nacked, 4), 1))
        )
        assert link.wait(acked, 2.0) == "acked"
        assert link.wait(nacked, 2.0) == "nacked"
        assert nacks == [(nacked, 4, Wake(2))]
        with pytest.raises(InvalidInputError, match="is not a reliable frame sent on this link"):
            link.wait(12345, 0.1)


def test_wait_times_out_while_pending() -> None:
    link_end, _raw = LoopbackTransport.pair()
    with Link(link_end, LinkOptions(ack_timeout_s=10.0), on_message=Recorder()) as link:
        seq = link.send(Wake(1))
        with pytest.raises(LinkTimeoutError, match=f"frame {seq} not acknowledged within 0.05 s"):
            link.wait(seq, 0.05)


def test_hello_starts_a_new_duplicate_window() -> None:
    link_end, raw = LoopbackTransport.pair()
    recorder = Recorder()
    with Link(link_end, FAST, on_message=recorder):
        frames = [message_to_frame(Hello(), 0), message_to_frame(Wake(1), 1)]
        frames += [message_to_frame(Hello(), 0), message_to_frame(Wake(2), 1)]  # the firmware rebooted
        raw.write(b"".join(encode_frame(f) for f in frames))
        _raw_frames(raw, 4)
        assert [type(m).__name__ for m, _ in recorder.messages] == ["Hello", "Wake", "Hello", "Wake"]


def test_ping_pong_between_two_links() -> None:
    a, b = LoopbackTransport.pair()
    with Link(a, FAST, on_message=Recorder()) as left, Link(b, FAST, on_message=Recorder()):
        assert left.ping(42, timeout=2.0) >= 0.0  # a PONG with our nonce came back


def test_peer_closing_stops_the_reader_with_an_error() -> None:
    a, b = LoopbackTransport.pair()
    link = Link(a, FAST, on_message=Recorder()).start()
    b.close()
    deadline = time.monotonic() + 2
    while link.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(LinkClosedError, match="peer closed"):
        link.check()
    link.close()
    link.close()
    with pytest.raises(LinkClosedError, match="the link is closed"):
        link.send(Wake(1))


def test_a_callback_bug_is_kept_and_raised_to_the_owner() -> None:
    def broken(message: Message, frame: Frame) -> None:
        raise ZeroDivisionError("bug in the owner")

    link_end, raw = LoopbackTransport.pair()
    link = Link(link_end, FAST, on_message=broken).start()
    raw.write(encode_frame(message_to_frame(Credit(1), 0)))
    deadline = time.monotonic() + 2
    while link.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ZeroDivisionError, match="bug in the owner"):
        link.check()
    link.close()


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"ack_timeout_s": 0}, "ack_timeout_s and poll_s must be > 0"),
        ({"backoff": 0.5}, "backoff must be >= 1"),
        ({"max_retries": -1}, "max_retries must be >= 0"),
    ],
)
def test_link_options_are_checked(kwargs: dict, phrase: str) -> None:
    with pytest.raises(InvalidInputError, match=phrase):
        LinkOptions(**kwargs)


class Checksum:
    """A handler that proves the audio arrived: it returns the samples' count and sum."""

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer:
        return BridgeAnswer(("sum",), (1.0,), transcript=f"{pcm16.size}:{int(pcm16.astype(np.int64).sum())}")


def test_whole_queries_survive_a_damaging_line_both_ways() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    faults = dict(drop=0.08, flip=0.08, garbage=0.08)
    host_line = FaultyTransport(host_end, Faults(**faults, seed=21))
    firmware_line = FaultyTransport(firmware_end, Faults(**faults, seed=22))
    link = LinkOptions(ack_timeout_s=0.05, poll_s=0.005)
    pcm = (np.arange(8000) % 200 - 100).astype(np.int16)
    with (
        HostSession.open(host_line, Checksum(), HostOptions(link=link)) as host,
        FirmwareSimulator.open(firmware_line, SimulatorOptions(pace=0, link=link)) as firmware,
    ):
        replies = [firmware.query_audio(pcm) for _ in range(4)]
        host_stats = host.stats
    assert [r.result.transcript.split(":")[0] for r in replies] == ["8000"] * 4
    assert [r.query for r in replies] == [1, 2, 3, 4]
    # damage happened and was handled: retransmissions, duplicates dropped, bad frames counted
    assert (
        host_stats.link.decoder.errors > 0
        and host_stats.link.retransmits + firmware.link.stats.retransmits > 0
    )
    assert len(host.queries) == 4  # each query answered exactly once despite retransmitted END_OF_UTTERANCE
    # audio is not retransmitted: a damaged chunk is silence, counted as lost, never a wrong sample
    exact = [r for r, q in zip(replies, host.queries) if q.lost_chunks == 0]
    assert all(r.result.transcript == f"8000:{int(pcm.astype(np.int64).sum())}" for r in exact)


def test_firmware_says_hello_again_when_the_host_restarted() -> None:
    host_end, firmware_end = LoopbackTransport.pair()
    firmware = FirmwareSimulator(firmware_end, SimulatorOptions(pace=0, link=FAST))
    firmware.link.start()
    # a first host acknowledges HELLO by hand, then "restarts": a fresh session that never saw HELLO
    connect = threading.Thread(target=firmware.connect)
    connect.start()
    hello = _raw_frames(host_end, 1)[0]
    host_end.write(
        encode_frame(message_to_frame(Ack(hello.seq), 0)) + encode_frame(message_to_frame(Credit(16), 1))
    )
    connect.join()
    with HostSession.open(host_end, Checksum(), HostOptions(link=FAST)) as host:
        reply = firmware.query_audio(np.ones(3200, dtype=np.int16))
        assert reply.result.transcript == "3200:3200"
        assert host.stats.link.nacks_sent >= 1  # the WAKE was refused: NOT_READY
        assert host.hello is not None
    firmware.close()


def test_waiting_on_a_dead_link_fails_at_once() -> None:
    a, b = LoopbackTransport.pair()
    with Link(a, LinkOptions(ack_timeout_s=10.0, poll_s=0.005), on_message=Recorder()) as link:
        seq = link.send(Wake(1))
        b.close()
        with pytest.raises(LinkClosedError, match="peer closed"):  # not a LinkTimeoutError 10 s later
            link.wait(seq, 10.0)
