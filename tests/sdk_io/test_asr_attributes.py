"""Attribute phrases in recogniser grammars ("navy blue men shirts": [colour] [audience] noun),
built from titles and categories and recognised by the real PocketSphinx on espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.sdk.apps import shard_grammar
from edgeshelf.sdk.asr import Grammar, RecognizerOptions, SpeechRecognizer, grammar_from_titles
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.preprocess import read_wav

RATE = 16000
TITLES = [
    "Turtle Check Men Navy Blue Shirt",
    "Peter England Men Navy Blue Formal Shirt",
    "Puma Women Black Heels",
    "Catwalk Women Red Heels",
    "Nike Men White Tshirts",
    "Levis Men Blue Jeans",
    "Fastrack Unisex Black Sunglasses",
    "Titan Women Silver Watch",
    "Baggit Women Off White Handbag",
    "Clarks Men Brown Leather Sandals",
]
CATEGORIES = ["Shirts", "Heels", "Tshirts", "Jeans", "Sunglasses", "Watches", "Handbags", "Sandals"]
VOICE = "en-us+f5"  # the voice of `edgeshelf benchmark quality --voice`
# measured (espeak-ng en-us+f5): each recognised exactly with the attribute grammar; none of
# them is a phrase of the title-ending grammar, which turns them into other phrases
ATTRIBUTE_QUERIES = [
    "navy blue men shirts",
    "black women heels",
    "white men tshirts",  # "tshirts": "t" + "shirts" joined, not in the English dictionary
    "black unisex sunglasses",
    "silver women watches",
    "off white women handbags",
    "brown men sandals",
]
# measured (espeak-ng en-us): still empty or low confidence with the attribute grammar
OUT_OF_GRAMMAR = [
    "the weather is nice today",
    "please play some music",
    "tell me a joke",
    "turn off the lights",
]


def _pcm(path) -> np.ndarray:
    samples, rate = read_wav(path)
    assert rate == RATE
    return np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)


# -- building -----------------------------------------------------------------------------------


def test_attribute_words_come_from_the_titles_and_categories():
    grammar = grammar_from_titles(TITLES, CATEGORIES, nouns=CATEGORIES + ["Casual Shoes", "T-Shirts"])
    assert isinstance(grammar, Grammar) and grammar.has_attributes
    # lexicon colours that occur in the titles only ("sea green" does not), most frequent first
    assert set(grammar.colours) == {
        "navy",
        "navy blue",
        "blue",
        "black",
        "white",
        "off white",
        "red",
        "silver",
        "brown",
    }
    assert grammar.colours[0] in ("black", "blue") and "sea green" not in grammar.colours
    assert set(grammar.audiences) == {"men", "women", "unisex"}
    assert grammar.nouns[-2:] == ("casual shoes", "t shirts")  # normalised like every phrase
    # a phrase list as before (title endings; categories are not repeated), then the attribute words
    assert grammar.phrases[:2] == ("shirt", "handbag") and "navy blue shirt" in grammar.phrases
    assert list(grammar)[len(grammar.phrases) :][:3] == ["shirts", "heels", "tshirts"]
    assert len(grammar) == len(set(grammar)) and "navy blue men shirts" not in grammar
    # without nouns: the plain list, unchanged
    plain = grammar_from_titles(TITLES, CATEGORIES)
    assert isinstance(plain, list) and plain[:3] == ["shirts", "heels", "tshirts"]


def test_possessive_audience_folds_into_the_plain_word():
    titles = ["Lumen Men's Red Wallet", "Lumen Men Black Wallet", "Ember Women's Blue Bag"]
    grammar = grammar_from_titles(titles, nouns=["wallets", "bags"])
    assert set(grammar.audiences) == {"men", "womens"}  # "mens" and "men" sound alike before "s"


def test_attribute_pattern_matching():
    grammar = Grammar(("blue jeans",), colours=("navy blue", "black"), audiences=("men",), nouns=("shirts",))
    for words in ["navy blue men shirts", "black shirts", "men shirts", "shirts"]:
        assert grammar.matches_attributes(words.split()), words
    for words in ["men navy blue shirts", "navy blue men", "black black shirts", "blue shirts", ""]:
        assert not grammar.matches_attributes(words.split()), words


def test_grammar_is_bounded_with_its_attribute_words():
    titles = [f"Brand{chr(97 + i % 26)}x Men Black Shirt Style{chr(97 + i // 26)}y" for i in range(600)]
    grammar = grammar_from_titles(titles, nouns=["Shirts", "Jeans"], max_phrases=50)
    assert len(grammar) == 50 and grammar.nouns == ("shirts", "jeans")
    with pytest.raises(InvalidInputError, match="raise max_phrases"):
        grammar_from_titles(TITLES, nouns=CATEGORIES, max_phrases=5)
    with pytest.raises(InvalidInputError, match="not one string"):
        grammar_from_titles(TITLES, nouns="shirts")
    with pytest.raises(InvalidInputError, match="no nouns"):
        Grammar(("blue jeans",), colours=("blue",))


def test_jsgf_of_a_tiny_grammar():
    grammar = Grammar(
        ("blue jeans", "black shirts", "puma running shoes"),
        colours=("navy blue", "black"),
        audiences=("men", "women"),
        nouns=("shirts", "casual shoes"),
    )
    # "black shirts" is an attribute phrase already: not repeated among the phrases
    assert grammar.jsgf() == (
        "#JSGF V1.0;\n"
        "grammar edgeshelf;\n"
        "public <query> = <phrase> | [<colour>] [<audience>] <noun>;\n"
        "<phrase> = blue jeans | puma running shoes;\n"
        "<colour> = navy blue | black;\n"
        "<audience> = men | women;\n"
        "<noun> = shirts | casual shoes;\n"
    )
    assert Grammar(("shirts",), nouns=("shirts", "jeans")).jsgf().splitlines()[2:] == [
        "public <query> = <noun>;",
        "<noun> = shirts | jeans;",
    ]
    assert (
        Grammar(("blue jeans", "red bag")).jsgf().splitlines()[2]
        == "public <query> = ( blue jeans | red bag );"
    )


class _Shard:
    """The two things shard_grammar reads from a shard: its titles and categories."""

    def __init__(self, titles, categories):
        self._titles, self.categories, self.count = titles, categories, len(titles)

    def title_at(self, row: int) -> str:
        return self._titles[row]


def test_shard_grammar_carries_the_categories_as_nouns():
    grammar = shard_grammar(_Shard(TITLES, CATEGORIES))
    assert isinstance(grammar, Grammar)
    assert grammar.nouns == tuple(c.lower() for c in CATEGORIES)
    assert "navy blue" in grammar.colours and "women" in grammar.audiences
    assert shard_grammar(None) is None
    without_categories = shard_grammar(_Shard(TITLES, []))  # a plain phrase grammar then
    assert not without_categories.has_attributes and not without_categories.colours
    assert list(without_categories) == grammar_from_titles(TITLES)


# -- PocketSphinx on synthetic speech -------------------------------------------------------------


@pytest.fixture(scope="module")
def sphinx_attributes():
    grammar = grammar_from_titles(TITLES, CATEGORIES, nouns=CATEGORIES)
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=grammar)) as asr:
        yield asr


@pytest.mark.parametrize("query", ATTRIBUTE_QUERIES)
def test_pocketsphinx_recognises_attribute_queries(sphinx_attributes, espeak_wav, query):
    transcript = sphinx_attributes.transcribe(_pcm(espeak_wav(query, voice=VOICE)))
    assert transcript.text == query, transcript
    assert transcript.in_grammar is True and not transcript.low_confidence
    assert 0.0 < transcript.real_time_factor < 1.0


def test_the_title_ending_grammar_cannot_produce_attribute_queries(espeak_wav):
    plain = grammar_from_titles(TITLES, CATEGORIES)
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=plain)) as asr:
        transcript = asr.transcribe(_pcm(espeak_wav("navy blue men shirts", voice=VOICE)))
    assert "navy blue men shirts" not in plain
    assert transcript.text != "navy blue men shirts"  # measured: "navy blue shirt"


def test_pocketsphinx_attribute_grammar_state(sphinx_attributes):
    attributes = sphinx_attributes.attribute_grammar
    assert attributes is not None and "tshirts" in attributes.nouns  # joined from "t" + "shirts"
    assert sphinx_attributes.oov_words == ("baggit",)  # its phrases were dropped
    assert set(attributes) == set(sphinx_attributes.grammar)


@pytest.mark.parametrize("sentence", OUT_OF_GRAMMAR)
def test_out_of_grammar_speech_is_still_flagged(sphinx_attributes, espeak_wav, sentence):
    transcript = sphinx_attributes.transcribe(_pcm(espeak_wav(sentence)))
    assert transcript.low_confidence, transcript
    assert transcript.text == "" or transcript.in_grammar is False or transcript.confidence < 0.3


def test_an_out_of_dictionary_category_is_dropped_and_listed(espeak_wav):
    grammar = grammar_from_titles(["Biba Women Red Kurta", "Puma Men Black Shoes"], nouns=["Kurtas", "Shoes"])
    with SpeechRecognizer.open(RecognizerOptions(engine="pocketsphinx", grammar=grammar)) as asr:
        assert asr.attribute_grammar.nouns == ("shoes",)
        assert set(asr.oov_words) == {"kurtas", "kurta"}  # "biba" is in the dictionary
        transcript = asr.transcribe(_pcm(espeak_wav("red women shoes", voice=VOICE)))
    assert transcript.text == "red women shoes" and transcript.in_grammar
