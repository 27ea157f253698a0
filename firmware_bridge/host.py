"""The host side: a session state machine that turns firmware events into queries for a
:class:`QueryHandler` and answers with RESULT frames (PROTOCOL.md, "Host state machine").

    WAIT_HELLO --HELLO--> READY --WAKE/AUDIO--> LISTENING --END_OF_UTTERANCE--> THINKING
        ^                   ^                                                     |
        |                   +-------------------- RESULT, LED answer/error -------+
        +-- (any state) HELLO: the firmware rebooted; start over

The reader thread (in :class:`~edgeshelf.firmware_bridge.link.Link`) only queues events; one
worker thread consumes audio, grants credit as it consumes (so a slow host slows the firmware's
sending and the firmware's drops are counted, never silent), and calls the handler.

Example::

    with HostSession.open(transport, handler) as session:
        for record in session.serve(max_queries=1):
            print(record.answer.ids, record.dropped_chunks)
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from edgeshelf.firmware_bridge.errors import LinkTimeoutError
from edgeshelf.firmware_bridge.frames import Frame
from edgeshelf.firmware_bridge.link import Link, LinkOptions, LinkStats
from edgeshelf.firmware_bridge.messages import (
    AudioChunk,
    Button,
    Credit,
    EndOfUtterance,
    EndReason,
    Error,
    Hello,
    ImageChunk,
    Led,
    LedState,
    Message,
    NackReason,
    Result,
    ResultHit,
    ResultStatus,
    Status,
    Wake,
    fit_text,
)
from edgeshelf.firmware_bridge.transports import Transport
from edgeshelf.sdk.errors import EdgeshelfError, InvalidInputError

SessionState = Literal["wait_hello", "ready", "listening", "thinking", "closed"]

# LED colours per state: (r, g, b), pulse period in ms (0 = steady)
LED_STYLE: dict[LedState, tuple[tuple[int, int, int], int]] = {
    LedState.OFF: ((0, 0, 0), 0),
    LedState.IDLE: ((0, 0, 32), 0),
    LedState.LISTENING: ((0, 96, 255), 800),
    LedState.THINKING: ((255, 160, 0), 400),
    LedState.ANSWER: ((0, 255, 64), 0),
    LedState.ERROR: ((255, 0, 0), 0),
}

ERROR_HANDLER_FAILED = 500
ERROR_IMAGE_TOO_LARGE = 413


@dataclass(frozen=True, repr=False)
class BridgeAnswer:
    """A handler's answer: ranked product ``ids`` (best first) with their ``scores`` and short
    display ``titles`` (same length, or empty), the ``transcript`` as understood, and an
    ``error`` text when the query could not be answered (no speech, no model, ...)."""

    ids: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    titles: tuple[str, ...] = ()
    transcript: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        for name in ("ids", "scores", "titles"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))
        if len(self.scores) != len(self.ids):
            raise InvalidInputError(
                f"BridgeAnswer has {len(self.ids)} ids but {len(self.scores)} scores; give one score per id"
            )
        if self.titles and len(self.titles) != len(self.ids):
            raise InvalidInputError(
                f"BridgeAnswer has {len(self.ids)} ids but {len(self.titles)} titles; give one per id or none"
            )

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict[str, object]:
        titles = self.titles or ("",) * len(self.ids)
        return {
            "transcript": self.transcript,
            "error": self.error,
            "hits": [
                {"product_id": i, "score": round(s, 6), "title": t}
                for i, s, t in zip(self.ids, self.scores, titles)
            ],
        }

    def __repr__(self) -> str:
        if self.error:
            return f"BridgeAnswer(error={self.error!r})"
        return (
            f"BridgeAnswer({self.transcript!r}, {list(self.ids[:3])}{', ...' if len(self.ids) > 3 else ''})"
        )


@runtime_checkable
class QueryHandler(Protocol):
    """What the bridge calls to answer a spoken query.

    ``answer_audio(pcm16, sample_rate)``: ``pcm16`` is int16 mono ``[samples]`` at
    ``sample_rate`` Hz (the firmware's, from HELLO); chunks the firmware dropped are silence.
    Raise an :class:`~edgeshelf.sdk.errors.EdgeshelfError` (or return ``error=``) for a query
    that cannot be answered; the firmware then shows the error state.

    Optional methods, used when present: ``feed_audio(pcm16, sample_rate)`` for each chunk as
    it arrives (a streaming recogniser; credit is granted after it returns, so a slow one slows
    the firmware); ``answer_image(data: bytes, image_format: int) -> BridgeAnswer``;
    ``shard_status() -> ShardStatus | None`` (sent after HELLO); ``on_button(button: Button)``;
    ``close()``.
    """

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer: ...


@dataclass(frozen=True)
class HostOptions:
    """``credit_window``: audio chunks the firmware may send beyond the last one the host has
    consumed (16 x 20 ms = 320 ms in flight). ``k``: hits in a RESULT; ``title_bytes``: display
    title length. ``utterance_timeout_s``: answer what was heard when END_OF_UTTERANCE does not
    come. ``credit_refresh_s``: re-send the credit this often while idle (credit frames are not
    acknowledged). ``max_image_bytes``: the largest image accepted."""

    credit_window: int = 16
    k: int = 3
    title_bytes: int = 32
    utterance_timeout_s: float = 15.0
    credit_refresh_s: float = 0.5
    max_image_bytes: int = 1 << 20
    link: LinkOptions = field(default_factory=LinkOptions)

    def __post_init__(self) -> None:
        if self.credit_window < 1:
            raise InvalidInputError(f"HostOptions.credit_window must be >= 1, got {self.credit_window}")
        if not 1 <= self.k <= 255:
            raise InvalidInputError(f"HostOptions.k must be 1..255, got {self.k}")
        if self.title_bytes < 1 or self.utterance_timeout_s <= 0 or self.credit_refresh_s <= 0:
            raise InvalidInputError(
                "HostOptions.title_bytes, utterance_timeout_s and credit_refresh_s must be > 0, got "
                f"{self.title_bytes}, {self.utterance_timeout_s}, {self.credit_refresh_s}"
            )


@dataclass(frozen=True, repr=False)
class QueryRecord:
    """One answered query: its ``query`` id and ``kind``, the handler's ``answer``, the RESULT
    sent, audio ``samples`` assembled, chunks ``lost`` in transit (index gaps seen by the host)
    and ``dropped_chunks`` by the firmware (from END_OF_UTTERANCE), the wake ``confidence``,
    and ``latency_ms`` from the end of the query to the RESULT."""

    query: int
    kind: Literal["audio", "image"]
    answer: BridgeAnswer
    result: Result
    samples: int = 0
    lost_chunks: int = 0
    dropped_chunks: int = 0
    confidence: float | None = None
    end_reason: int = EndReason.UNSPECIFIED
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "query": self.query,
            "kind": self.kind,
            **self.answer.to_dict(),
            "status": int(self.result.status),
            "samples": self.samples,
            "lost_chunks": self.lost_chunks,
            "dropped_chunks": self.dropped_chunks,
            "confidence": self.confidence,
            "end_reason": int(self.end_reason),
            "latency_ms": round(self.latency_ms, 3),
        }

    def __repr__(self) -> str:
        return f"QueryRecord({self.query}, {self.answer!r}, dropped={self.dropped_chunks}, lost={self.lost_chunks})"


@dataclass(frozen=True)
class HostStats:
    """A snapshot: ``state``, the firmware's ``hello``, queries answered, audio chunks consumed
    and lost in transit, the firmware's last STATUS (its ``audio_dropped`` counts drops since
    boot), buttons, ERROR frames received, RESULTs the firmware never acknowledged, link stats."""

    state: SessionState
    hello: Hello | None
    queries: int
    audio_chunks: int
    audio_lost: int
    firmware_status: Status | None
    buttons: int
    errors_received: tuple[Error, ...]
    undelivered: int
    link: LinkStats

    @property
    def firmware_dropped(self) -> int:
        return self.firmware_status.audio_dropped if self.firmware_status is not None else 0

    def to_dict(self) -> dict[str, object]:
        status = self.firmware_status
        return {
            "state": self.state,
            "firmware": None
            if self.hello is None
            else {
                "name": self.hello.name,
                "version": ".".join(map(str, self.hello.firmware_version)),
                "sample_rate": self.hello.sample_rate,
                "max_payload": self.hello.max_payload,
            },
            "queries": self.queries,
            "audio_chunks": self.audio_chunks,
            "audio_lost": self.audio_lost,
            "firmware_status": None
            if status is None
            else {f.name: getattr(status, f.name) for f in fields(status)},
            "firmware_dropped": self.firmware_dropped,
            "buttons": self.buttons,
            "errors_received": [{"code": e.code, "text": e.text} for e in self.errors_received],
            "undelivered": self.undelivered,
            "link": self.link.to_dict(),
        }


class _Recent:
    """The last ``size`` query ids answered (ids wrap at 65535, so memory must be short)."""

    def __init__(self, size: int = 64) -> None:
        self._order: deque[int] = deque()
        self._set: set[int] = set()
        self._size = size

    def add(self, query: int) -> None:
        if query in self._set:
            return
        self._set.add(query)
        self._order.append(query)
        if len(self._order) > self._size:
            self._set.discard(self._order.popleft())

    def clear(self) -> None:
        self._order.clear()
        self._set.clear()

    def __contains__(self, query: object) -> bool:
        return query in self._set


@dataclass
class _Utterance:
    query: int
    confidence: float | None
    started: float
    last_activity: float
    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    lost: int = 0


@dataclass
class _Image:
    query: int
    data: bytearray
    received: int
    image_format: int


class HostSession:
    """The bridge's host side over one transport (owned: closed with the session)."""

    def __init__(
        self,
        transport: Transport,
        handler: QueryHandler,
        options: HostOptions = HostOptions(),
        *,
        on_query: Callable[[QueryRecord], None] | None = None,
    ) -> None:
        if not callable(getattr(handler, "answer_audio", None)):
            raise InvalidInputError(
                f"the handler {type(handler).__name__} has no answer_audio(pcm16, sample_rate) method"
            )
        self.handler = handler
        self.options = options
        self._on_query = on_query
        self.link = Link(
            transport,
            options.link,
            on_message=self._on_message,
            on_nack=self._on_nack,
            on_give_up=self._on_give_up,
            name="host",
        )
        self._events: queue.Queue[Message | None] = queue.Queue()
        self._cond = threading.Condition()
        self._state: SessionState = "wait_hello"
        self._hello: Hello | None = None
        self._credit_lock = threading.Lock()
        self._credit_limit = 0
        self._expected_index = 0
        self._utterance: _Utterance | None = None
        self._finished = _Recent()
        self._images: dict[int, _Image] = {}
        self._records: list[QueryRecord] = []
        self._status: Status | None = None
        self._errors: list[Error] = []
        self._counts = {"audio_chunks": 0, "audio_lost": 0, "buttons": 0, "undelivered": 0}
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None

    @classmethod
    def open(
        cls,
        transport: Transport,
        handler: QueryHandler,
        options: HostOptions = HostOptions(),
        *,
        on_query: Callable[[QueryRecord], None] | None = None,
    ) -> HostSession:
        """Create the session and start its reader and worker threads."""
        session = cls(transport, handler, options, on_query=on_query)
        session.start()
        return session

    def start(self) -> HostSession:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="host-worker", daemon=True)
            self._worker.start()
            self.link.start()
        return self

    # ---- public state

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def hello(self) -> Hello | None:
        return self._hello

    @property
    def queries(self) -> list[QueryRecord]:
        with self._cond:
            return list(self._records)

    @property
    def stats(self) -> HostStats:
        c = self._counts
        return HostStats(
            self._state,
            self._hello,
            len(self._records),
            c["audio_chunks"],
            c["audio_lost"],
            self._status,
            c["buttons"],
            tuple(self._errors),
            c["undelivered"],
            self.link.stats,
        )

    def check(self) -> None:
        """Raise what stopped the session (a closed line, a handler's bug)."""
        if self.error is not None:
            raise self.error
        self.link.check()

    def wait_for_hello(self, timeout: float) -> Hello:
        """Block until the firmware has said HELLO (raises :class:`LinkTimeoutError`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._hello is None:
                self.check()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkTimeoutError(
                        f"no HELLO from the firmware on {self.link.transport.name} within {timeout} s: "
                        "is it powered, on this port, at this baud rate?"
                    )
                self._cond.wait(min(remaining, 0.1))
            return self._hello

    def wait_for_queries(self, count: int, timeout: float) -> list[QueryRecord]:
        """Block until ``count`` queries have been answered; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._records) < count:
                self.check()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkTimeoutError(
                        f"{len(self._records)} of {count} queries answered within {timeout} s"
                    )
                self._cond.wait(min(remaining, 0.1))
            return list(self._records)

    def wait_for_status(self, timeout: float) -> Status:
        """Block until a STATUS frame has arrived from the firmware; return the latest."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._status is None:
                self.check()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkTimeoutError(f"no STATUS from the firmware within {timeout} s")
                self._cond.wait(min(remaining, 0.1))
            return self._status

    def serve(self, max_queries: int | None = None, duration_s: float | None = None) -> list[QueryRecord]:
        """Run until ``max_queries`` have been answered or ``duration_s`` has passed (forever
        when both are None); raises what stopped the session. Returns the records."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        with self._cond:
            while max_queries is None or len(self._records) < max_queries:
                self.check()
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._cond.wait(0.1)
            records = list(self._records)
        self.link.flush(2.0)  # let the last RESULT be acknowledged
        return records

    def send(self, message: Message) -> int:
        """Send any host message (LED, DISPLAY, SHARD_STATUS, ...) now; returns its seq."""
        return self.link.send(message)

    def close(self) -> None:
        """Stop the worker and the link, close the transport (idempotent). The handler is the
        caller's to close."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._events.put(None)
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)
        self.link.close()
        self._set_state("closed")

    def __enter__(self) -> HostSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reader thread: only bookkeeping and queueing

    def _on_message(self, message: Message, frame: Frame) -> NackReason | None:
        if isinstance(message, Hello):
            if message.protocol != 1:
                return NackReason.UNSUPPORTED
            self._on_hello(message)
            return None
        if self._hello is None:
            return NackReason.NOT_READY  # we restarted, or the HELLO was lost: firmware says HELLO again
        if isinstance(message, Status):
            with self._cond:
                self._status = message
                self._cond.notify_all()
        elif isinstance(message, Error):
            self._errors.append(message)
        elif isinstance(message, (Wake, AudioChunk, EndOfUtterance, ImageChunk, Button)):
            self._events.put(message)
        else:
            return NackReason.UNSUPPORTED  # a host-to-firmware message sent to the host
        return None

    def _on_hello(self, hello: Hello) -> None:
        with self._credit_lock:
            self._credit_limit = self.options.credit_window
            self._expected_index = 0
        with self._cond:
            self._hello = hello
            self._cond.notify_all()
        self._events.put(hello)  # the worker drops any half-heard utterance
        # sent from the reader thread so that they precede the ACK: the firmware starts its
        # first query with credit, an idle LED and the shard's state
        self.link.send(Credit(self._credit_limit))
        self._led(LedState.IDLE)
        status = getattr(self.handler, "shard_status", None)
        if callable(status):
            shard = status()
            if shard is not None:
                self.link.send(shard)

    def _on_nack(self, seq: int, reason: int, message: Message | None) -> None:
        if message is not None:
            self._counts["undelivered"] += 1

    def _on_give_up(self, message: Message) -> None:
        self._counts["undelivered"] += 1

    # ---- the worker thread

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    event = self._events.get(timeout=self.options.credit_refresh_s)
                except queue.Empty:
                    self._idle()
                    continue
                if event is None:
                    break
                self._dispatch(event)
        except BaseException as exc:  # noqa: BLE001 - kept and raised to the owner by check()
            self.error = exc
            with self._cond:
                self._cond.notify_all()

    def _dispatch(self, event: Message) -> None:
        if isinstance(event, Hello):
            self._utterance = None
            self._images.clear()
            self._finished.clear()
            self._set_state("ready")
        elif isinstance(event, Wake):
            if event.query in self._finished:
                return  # a retransmission that arrived after the answer
            utterance = self._begin(event.query)
            utterance.confidence = event.confidence
            self._led(LedState.LISTENING)
        elif isinstance(event, AudioChunk):
            self._consume(event)
        elif isinstance(event, EndOfUtterance):
            self._finish(event)
        elif isinstance(event, ImageChunk):
            self._image(event)
        elif isinstance(event, Button):
            self._counts["buttons"] += 1
            on_button = getattr(self.handler, "on_button", None)
            if callable(on_button):
                on_button(event)

    def _idle(self) -> None:
        if self._hello is None:
            return
        with self._credit_lock:
            limit = self._credit_limit
        self.link.send(Credit(limit))
        utterance = self._utterance
        if (
            utterance is not None
            and time.monotonic() - utterance.last_activity > self.options.utterance_timeout_s
        ):
            samples = sum(len(data) // 2 for _, data in utterance.chunks)
            self._finish(EndOfUtterance(utterance.query, samples, 0, EndReason.MAX_LENGTH))

    def _begin(self, query: int) -> _Utterance:
        current = self._utterance
        if current is None or current.query != query:
            now = time.monotonic()
            current = self._utterance = _Utterance(query, None, now, now)
            self._set_state("listening")
        return current

    def _consume(self, chunk: AudioChunk) -> None:
        self._counts["audio_chunks"] += 1
        with self._credit_lock:
            gap = chunk.index - self._expected_index
            if gap > 0:
                self._counts["audio_lost"] += gap
            self._expected_index = max(self._expected_index, chunk.index + 1)
        if chunk.query not in self._finished:
            utterance = self._begin(chunk.query)
            if gap > 0:
                utterance.lost += gap
            utterance.chunks.append((chunk.sample_offset, chunk.samples))
            utterance.last_activity = time.monotonic()
            feed = getattr(self.handler, "feed_audio", None)
            if callable(feed):
                feed(chunk.pcm16, self._sample_rate)
        with self._credit_lock:
            self._credit_limit = max(self._credit_limit, chunk.index + 1 + self.options.credit_window)
            limit = self._credit_limit
        self.link.send(Credit(limit))

    @property
    def _sample_rate(self) -> int:
        return self._hello.sample_rate if self._hello is not None else 16000

    def _finish(self, end: EndOfUtterance) -> None:
        if end.query in self._finished:
            return
        utterance = (
            self._utterance if self._utterance is not None and self._utterance.query == end.query else None
        )
        chunks = utterance.chunks if utterance is not None else []
        total = max([end.samples] + [offset + len(data) // 2 for offset, data in chunks])
        pcm = np.zeros(total, dtype=np.int16)
        for offset, data in chunks:
            samples = np.frombuffer(data, dtype="<i2")
            pcm[offset : offset + samples.size] = samples
        self._utterance = None
        self._finished.add(end.query)
        self._set_state("thinking")
        self._led(LedState.THINKING)
        start = time.monotonic()
        answer = self._call(lambda: self.handler.answer_audio(pcm, self._sample_rate))
        self._answer(
            QueryRecord(
                query=end.query,
                kind="audio",
                answer=answer,
                result=self._result(end.query, answer),
                samples=int(total),
                lost_chunks=utterance.lost if utterance is not None else 0,
                dropped_chunks=end.dropped,
                confidence=utterance.confidence if utterance is not None else None,
                end_reason=end.reason,
                latency_ms=(time.monotonic() - start) * 1000.0,
            )
        )

    def _image(self, chunk: ImageChunk) -> None:
        if chunk.query in self._finished:
            return
        if chunk.total > self.options.max_image_bytes:
            self._finished.add(chunk.query)
            self.link.send(
                Error(
                    ERROR_IMAGE_TOO_LARGE,
                    f"image {chunk.query} is {chunk.total} bytes, more than {self.options.max_image_bytes}",
                )
            )
            return
        image = self._images.get(chunk.query)
        if image is None or len(image.data) != chunk.total:
            image = self._images[chunk.query] = _Image(chunk.query, bytearray(chunk.total), 0, chunk.format)
        image.data[chunk.offset : chunk.offset + len(chunk.data)] = chunk.data
        image.received += len(chunk.data)
        if image.received < chunk.total:
            return
        del self._images[chunk.query]
        self._finished.add(chunk.query)
        self._set_state("thinking")
        self._led(LedState.THINKING)
        start = time.monotonic()
        answer_image = getattr(self.handler, "answer_image", None)
        if callable(answer_image):
            answer = self._call(lambda: answer_image(bytes(image.data), image.image_format))
        else:
            answer = BridgeAnswer(
                error="this host answers spoken queries only (its handler has no answer_image)"
            )
        self._answer(
            QueryRecord(
                query=chunk.query,
                kind="image",
                answer=answer,
                result=self._result(chunk.query, answer),
                latency_ms=(time.monotonic() - start) * 1000.0,
            )
        )

    def _call(self, compute: Callable[[], BridgeAnswer]) -> BridgeAnswer:
        """Run the handler; a library error becomes an error answer, anything else stops the
        session (after telling the firmware)."""
        try:
            answer = compute()
        except EdgeshelfError as exc:
            return BridgeAnswer(error=str(exc))
        except BaseException as exc:
            self.link.send(
                Error(ERROR_HANDLER_FAILED, f"host handler failed: {type(exc).__name__}: {exc}"[:255])
            )
            self._led(LedState.ERROR)
            raise
        if not isinstance(answer, BridgeAnswer):
            raise InvalidInputError(f"the handler returned {type(answer).__name__}, expected a BridgeAnswer")
        return answer

    def _result(self, query: int, answer: BridgeAnswer) -> Result:
        titles = answer.titles or ("",) * len(answer.ids)
        top = list(zip(answer.ids, answer.scores, titles))[: self.options.k]
        hits = tuple(ResultHit(fit_text(i, 255), s, fit_text(t, self.options.title_bytes)) for i, s, t in top)
        if answer.error:
            status = ResultStatus.ERROR
        else:
            status = ResultStatus.OK if hits else ResultStatus.NO_MATCH
        result = Result(query, status, hits, fit_text(answer.transcript, 255), fit_text(answer.error, 255))
        max_payload = self._hello.max_payload if self._hello is not None else 1024
        return result.fit(max_payload, title_bytes=self.options.title_bytes)

    def _answer(self, record: QueryRecord) -> None:
        # LED first: a firmware may hang up as soon as it has read the RESULT
        self._led(LedState.ERROR if record.result.status == ResultStatus.ERROR else LedState.ANSWER)
        self.link.send(record.result)
        self._set_state("ready" if self._utterance is None else "listening")
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()
        if self._on_query is not None:
            self._on_query(record)

    def _led(self, state: LedState) -> None:
        rgb, period = LED_STYLE[state]
        self.link.send(Led(int(state), rgb, period))

    def _set_state(self, state: SessionState) -> None:
        with self._cond:
            self._state = state
            self._cond.notify_all()

    def __repr__(self) -> str:
        return f"HostSession({self._state}, {len(self._records)} answered, {self.link!r})"
