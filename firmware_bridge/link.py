"""The reliability layer (PROTOCOL.md, "Reliability"), shared by the host and the simulated
firmware: sequence numbers, acks with retransmission for reliable messages, duplicate
suppression, NACKs for intact frames that cannot be used, PING/PONG.

One reader thread per link reads the transport, decodes frames (resynchronising after any
damage), answers ACK/NACK/PING itself and hands every other message to ``on_message``; the
same thread retransmits reliable frames whose ack is overdue. ``on_message`` runs on that
thread: keep it short (queue the work), and return a :class:`NackReason` to refuse a frame.

Example::

    with Link(transport, on_message=lambda msg, frame: print(msg)) as link:
        seq = link.send(Wake(query=1, confidence=0.9))
        link.wait(seq, timeout=1.0)      # "acked", "nacked" or "given-up"
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edgeshelf.firmware_bridge.errors import (
    LinkClosedError,
    LinkTimeoutError,
    PayloadError,
    UnknownMessageError,
)
from edgeshelf.firmware_bridge.frames import (
    FLAG_ACK_REQUEST,
    FLAG_RETRANSMIT,
    MAX_PAYLOAD,
    DecoderStats,
    Frame,
    FrameDecoder,
    encode_frame,
)
from edgeshelf.firmware_bridge.messages import (
    Ack,
    Message,
    MessageType,
    Nack,
    NackReason,
    Ping,
    Pong,
    frame_to_message,
    message_to_frame,
)
from edgeshelf.firmware_bridge.transports import Transport
from edgeshelf.sdk.errors import InvalidInputError

Outcome = Literal["acked", "nacked", "given-up", "closed"]
MessageCallback = Callable[[Message, Frame], "NackReason | None"]


@dataclass(frozen=True)
class LinkOptions:
    """``ack_timeout_s``: wait this long for an ack before the first retransmission, then
    ``backoff`` times longer each try, ``max_retries`` retransmissions before giving up.
    ``dedupe_window``: how many recent reliable sequence numbers are remembered to drop
    retransmitted duplicates. ``poll_s``: the reader's wake-up interval (retransmission timer
    resolution). ``max_payload``: the largest payload accepted from the peer."""

    ack_timeout_s: float = 0.2
    backoff: float = 1.5
    max_retries: int = 8
    dedupe_window: int = 128
    poll_s: float = 0.02
    read_size: int = 16384
    max_payload: int = MAX_PAYLOAD

    def __post_init__(self) -> None:
        if self.ack_timeout_s <= 0 or self.poll_s <= 0:
            raise InvalidInputError(
                f"LinkOptions.ack_timeout_s and poll_s must be > 0, got {self.ack_timeout_s}, {self.poll_s}"
            )
        if self.backoff < 1.0:
            raise InvalidInputError(f"LinkOptions.backoff must be >= 1, got {self.backoff}")
        if self.max_retries < 0 or self.dedupe_window < 1 or self.read_size < 1:
            raise InvalidInputError(
                "LinkOptions.max_retries must be >= 0 and dedupe_window, read_size >= 1, got "
                f"{self.max_retries}, {self.dedupe_window}, {self.read_size}"
            )


@dataclass(frozen=True)
class LinkStats:
    """Counters of one link: frames ``sent`` (first transmissions) and ``received`` (intact),
    ``retransmits``, ``duplicates`` dropped, reliable frames ``given_up`` after the last
    retry, NACKs sent and received, and the decoder's statistics (damaged frames per reason)."""

    sent: int
    received: int
    retransmits: int
    duplicates: int
    given_up: int
    nacks_sent: int
    nacks_received: int
    decoder: DecoderStats

    def to_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "received": self.received,
            "retransmits": self.retransmits,
            "duplicates": self.duplicates,
            "given_up": self.given_up,
            "nacks_sent": self.nacks_sent,
            "nacks_received": self.nacks_received,
            "decoder": self.decoder.to_dict(),
        }


class _Pending:
    __slots__ = ("message", "wire", "deadline", "tries")

    def __init__(self, message: Message, wire: bytes, deadline: float) -> None:
        self.message = message
        self.wire = wire
        self.deadline = deadline
        self.tries = 0


class Link:
    """A framed, reliable-where-asked message link over a :class:`Transport` (owned: closed
    with the link).

    Callbacks (all on the reader thread): ``on_message(message, frame)`` for every message but
    ACK, NACK and PING (return a :class:`NackReason` to refuse it); ``on_nack(seq, reason,
    message)`` when the peer refused one of ours (``message`` is None for an unreliable one);
    ``on_give_up(message)`` when a reliable message went unacknowledged after the last retry.
    """

    def __init__(
        self,
        transport: Transport,
        options: LinkOptions = LinkOptions(),
        *,
        on_message: MessageCallback,
        on_nack: Callable[[int, int, Message | None], None] | None = None,
        on_give_up: Callable[[Message], None] | None = None,
        name: str = "link",
    ) -> None:
        self.transport = transport
        self.options = options
        self.name = name
        self._on_message = on_message
        self._on_nack = on_nack
        self._on_give_up = on_give_up
        self._decoder = FrameDecoder(options.max_payload)
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: dict[int, _Pending] = {}
        self._outcomes: OrderedDict[int, Outcome] = OrderedDict()
        self._pongs: dict[int, float] = {}
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._next_seq = 0
        self._counts = dict.fromkeys(
            ("sent", "received", "retransmits", "duplicates", "given_up", "nacks_sent", "nacks_received"), 0
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.error: BaseException | None = None

    # ---- life cycle

    def start(self) -> Link:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-reader", daemon=True)
            self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self) -> None:
        """Raise the error that stopped the reader, if any (a closed line, a callback's bug)."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the reader, then close the transport (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self.transport.close()
        with self._cond:
            for seq in list(self._pending):
                self._finish(seq, "closed")
            self._cond.notify_all()

    def __enter__(self) -> Link:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sending

    def send(self, message: Message) -> int:
        """Send ``message`` now; return its sequence number. Reliable messages are remembered
        and retransmitted until acknowledged (see :meth:`wait`)."""
        if self._closed:
            raise LinkClosedError(f"{self.name}: the link is closed")
        with self._write_lock:
            seq = self._next_seq
            self._next_seq = (seq + 1) & 0xFFFF
            frame = message_to_frame(message, seq)
            wire = encode_frame(frame)
            if message.RELIABLE:
                retry = encode_frame(frame._replace(flags=frame.flags | FLAG_RETRANSMIT))
                with self._cond:
                    self._pending[seq] = _Pending(
                        message, retry, time.monotonic() + self.options.ack_timeout_s
                    )
                    self._outcomes.pop(seq, None)
            self._counts["sent"] += 1
            self.transport.write(wire)
        return seq

    def _write(self, wire: bytes) -> None:
        with self._write_lock:
            self.transport.write(wire)

    def _send_control(self, message: Message) -> None:
        """ACK / NACK / PONG: unreliable, from the reader thread."""
        with self._write_lock:
            seq = self._next_seq
            self._next_seq = (seq + 1) & 0xFFFF
            self.transport.write(encode_frame(message_to_frame(message, seq)))

    def nack(self, seq: int, reason: NackReason) -> None:
        """Refuse the peer's frame ``seq`` (normally done by returning a reason from on_message)."""
        self._counts["nacks_sent"] += 1
        self._send_control(Nack(seq, int(reason)))

    def wait(self, seq: int, timeout: float) -> Outcome:
        """Wait for reliable frame ``seq``: ``"acked"``, ``"nacked"``, ``"given-up"`` or
        ``"closed"``; raises :class:`LinkTimeoutError` when still pending after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while seq in self._pending:
                if self._stop.is_set():
                    self.check()
                    raise LinkClosedError(f"{self.name}: the link stopped while frame {seq} was pending")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkTimeoutError(
                        f"{self.name}: frame {seq} not acknowledged within {timeout} s "
                        f"({self._pending[seq].tries} retransmissions so far)"
                    )
                self._cond.wait(remaining)
            outcome = self._outcomes.get(seq)
        if outcome is None:
            raise InvalidInputError(f"{self.name}: {seq} is not a reliable frame sent on this link")
        return outcome

    def flush(self, timeout: float) -> bool:
        """Wait until every reliable frame is acknowledged or given up; False on time-out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        """Reliable frames sent and not yet acknowledged."""
        with self._cond:
            return len(self._pending)

    def ping(self, nonce: int, timeout: float = 1.0) -> float:
        """Round-trip time in seconds of a PING (raises :class:`LinkTimeoutError`)."""
        start = time.monotonic()
        self.send(Ping(nonce))
        with self._cond:
            if not self._cond.wait_for(lambda: nonce in self._pongs or self._stop.is_set(), timeout):
                raise LinkTimeoutError(f"{self.name}: no PONG for PING {nonce} within {timeout} s")
            if nonce not in self._pongs:
                raise LinkClosedError(f"{self.name}: closed while waiting for PONG {nonce}")
            return self._pongs.pop(nonce) - start

    def reset_session(self) -> None:
        """Forget the peer's recent sequence numbers (after sending or receiving HELLO: the peer
        numbers its frames afresh)."""
        with self._cond:
            self._seen.clear()
            self._seen_order.clear()

    @property
    def stats(self) -> LinkStats:
        c = self._counts
        return LinkStats(
            c["sent"],
            c["received"],
            c["retransmits"],
            c["duplicates"],
            c["given_up"],
            c["nacks_sent"],
            c["nacks_received"],
            self._decoder.stats,
        )

    # ---- the reader thread

    def _run(self) -> None:
        options = self.options
        try:
            while not self._stop.is_set():
                try:
                    data = self.transport.read(options.read_size, options.poll_s)
                except LinkClosedError:
                    if self._stop.is_set():
                        break
                    raise
                if data:
                    for frame in self._decoder.feed(data):
                        self._handle(frame)
                self._retransmit_due()
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised to the owner by check()
            if not self._stop.is_set():
                self.error = exc
        finally:
            self._stop.set()
            with self._cond:
                self._cond.notify_all()

    def _handle(self, frame: Frame) -> None:
        self._counts["received"] += 1
        try:
            message = frame_to_message(frame)
        except UnknownMessageError:
            self.nack(frame.seq, NackReason.UNKNOWN_TYPE)
            return
        except PayloadError:
            self.nack(frame.seq, NackReason.BAD_PAYLOAD)
            return
        kind = frame.type
        if kind == MessageType.ACK:
            self._settle(message.seq, "acked")
            return
        if kind == MessageType.NACK:
            self._counts["nacks_received"] += 1
            pending = self._settle(message.seq, "nacked")
            if self._on_nack is not None:
                self._on_nack(message.seq, message.reason, pending)
            return
        if kind == MessageType.PING:
            self._send_control(Pong(message.nonce))
            return
        if kind == MessageType.PONG:
            with self._cond:
                self._pongs[message.nonce] = time.monotonic()
                self._cond.notify_all()
            return
        reliable = bool(frame.flags & FLAG_ACK_REQUEST)
        if reliable:
            if kind == MessageType.HELLO:
                self.reset_session()  # the peer rebooted: its numbering starts afresh
            else:
                with self._cond:
                    duplicate = frame.seq in self._seen
                if duplicate:
                    self._counts["duplicates"] += 1
                    self._send_control(Ack(frame.seq))  # our first ack may have been lost
                    return
        refusal = self._on_message(message, frame)
        if refusal is not None:
            self.nack(frame.seq, refusal)
            return
        if reliable:
            self._remember(frame.seq)
            self._send_control(Ack(frame.seq))

    def _remember(self, seq: int) -> None:
        with self._cond:
            self._seen.add(seq)
            self._seen_order.append(seq)
            if len(self._seen_order) > self.options.dedupe_window:
                self._seen.discard(self._seen_order.popleft())

    def _settle(self, seq: int, outcome: Outcome) -> Message | None:
        with self._cond:
            pending = self._pending.get(seq)
            if pending is None:
                return None
            self._finish(seq, outcome)
            self._cond.notify_all()
            return pending.message

    def _finish(self, seq: int, outcome: Outcome) -> None:
        self._pending.pop(seq, None)
        self._outcomes[seq] = outcome
        while len(self._outcomes) > 4096:
            self._outcomes.popitem(last=False)

    def _retransmit_due(self) -> None:
        now = time.monotonic()
        resend: list[bytes] = []
        gave_up: list[Message] = []
        with self._cond:
            for seq, pending in list(self._pending.items()):
                if pending.deadline > now:
                    continue
                if pending.tries >= self.options.max_retries:
                    self._counts["given_up"] += 1
                    self._finish(seq, "given-up")
                    gave_up.append(pending.message)
                    continue
                pending.tries += 1
                pending.deadline = now + self.options.ack_timeout_s * self.options.backoff**pending.tries
                resend.append(pending.wire)
            if gave_up:
                self._cond.notify_all()
        for wire in resend:
            self._counts["retransmits"] += 1
            self._write(wire)
        if self._on_give_up is not None:
            for message in gave_up:
                self._on_give_up(message)

    def __repr__(self) -> str:
        return f"Link({self.name} over {self.transport.name}, {self.pending} pending)"
