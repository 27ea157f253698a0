"""The seeded noisy-query generator."""

from __future__ import annotations

import random

import pytest
from edgeshelf.catalogue.noise import (
    ASR_CONFUSIONS,
    NoiseConfig,
    QueryNoise,
    confuse,
    corrupt,
    noisy_versions,
    typo,
)
from edgeshelf.sdk.errors import InvalidInputError

TEXTS = ["navy blue men shirts", "red cotton t-shirt", "black women heels", "white canvas backpack", "mug"]


def test_same_seed_same_output_other_seed_differs() -> None:
    a = [QueryNoise(5)(t) for t in TEXTS * 4]
    b = [QueryNoise(5)(t) for t in TEXTS * 4]
    assert a != [QueryNoise(6)(t) for t in TEXTS * 4]
    a2 = [QueryNoise(5)(t) for t in TEXTS * 4]
    assert a == a2 and a == b


def test_keyed_noise_is_independent_of_call_order() -> None:
    noise = QueryNoise(1)
    forward = [noise.noisy(t, key=t) for t in TEXTS]
    backward = [QueryNoise(1).noisy(t, key=t) for t in reversed(TEXTS)][::-1]
    assert forward == backward
    assert noisy_versions(TEXTS, seed=1) == noisy_versions(TEXTS, seed=1)


@pytest.mark.parametrize("seed", range(20))
def test_noisy_text_always_differs_and_keeps_at_least_half_the_words(seed: int) -> None:
    noise = QueryNoise(seed)
    for text in TEXTS:
        out = noise(text)
        assert out != text and out.strip()
        assert len(out.split()) >= (len(text.split()) + 1) // 2


def test_noise_mixes_typos_drops_and_asr_confusions() -> None:
    noise = QueryNoise(0, NoiseConfig(typo=0.3, drop=0.2, confuse=0.3))
    outs = [noise("navy blue men shirts") for _ in range(200)]
    words = [set(o.split()) for o in outs]
    assert any("blew" in w or "wavy" in w for w in words)  # homophones
    assert any(len(o.split()) == 3 for o in outs)  # a dropped word
    assert any(
        w & {"nvay", "bleu", "shitrs", "shirst", "mne", "naavy"} or any(len(x) > 6 for x in w) for w in words
    )
    assert len(set(outs)) > 50


def test_asr_confusion_table_and_phonetic_fallback() -> None:
    rng = random.Random(0)
    assert confuse("blue", rng) == "blew"
    assert confuse("jeans", rng) == "genes"
    assert confuse("phone", rng) in {"fone", "phone".replace("ph", "f")}
    assert confuse("xyz", rng) == "xyz"
    assert all(isinstance(v, tuple) and v for v in ASR_CONFUSIONS.values())


@pytest.mark.parametrize("word", ["ab", "shirt", "T-Shirt", "navy"])
def test_typo_changes_words_of_two_letters_or_more(word: str) -> None:
    rng = random.Random(3)
    assert any(typo(word, rng) != word for _ in range(10))
    assert typo("a", rng) == "a"


def test_empty_text_and_config_validation() -> None:
    assert corrupt("", random.Random(0)) == ""
    with pytest.raises(InvalidInputError, match=r"NoiseConfig.drop must be in \[0, 1\], got 1.5"):
        QueryNoise(0, NoiseConfig(drop=1.5))
    assert len(QueryNoise(2).variants("red cotton t-shirt", 3)) == 3
