"""Seeded noisy queries: typos, dropped words and speech-recognition-like confusions.

Used by the sample-catalogue generator and the fashion protocol to make "noisy" versions of
clean text queries. Deterministic: the same ``seed`` and text give the same output (Python's
``random.Random`` with a string seed is stable across runs and platforms).

Example::

    noise = QueryNoise(seed=3)
    noise("navy blue men shirts")        # e.g. "navy blew men shrits"
    noise.variants("red cotton t-shirt", 3)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from edgeshelf.sdk.errors import InvalidInputError

# Words a speech recogniser plausibly hears as another (homophones, near-homophones, splits).
ASR_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "blue": ("blew",),
    "red": ("read", "bread"),
    "white": ("wide", "wight"),
    "black": ("block", "blackened"),
    "navy": ("wavy", "navvy"),
    "grey": ("gray", "great"),
    "gray": ("grey", "great"),
    "green": ("clean", "grin"),
    "pink": ("ink", "pinks"),
    "brown": ("brand", "crown"),
    "beige": ("bays", "beach"),
    "maroon": ("marooned", "marin"),
    "purple": ("people",),
    "yellow": ("hello", "yell"),
    "orange": ("arrange",),
    "olive": ("all of", "alive"),
    "teal": ("teel", "deal"),
    "silver": ("sliver",),
    "gold": ("cold", "goal"),
    "cream": ("scream", "green"),
    "men": ("man", "main"),
    "women": ("woman", "we men"),
    "mens": ("means",),
    "womens": ("woman's",),
    "boys": ("buoys",),
    "girls": ("curls",),
    "kids": ("kits",),
    "unisex": ("uni sex", "units"),
    "shirt": ("short", "sure"),
    "shirts": ("shorts", "sure it's"),
    "tshirts": ("tea shirts", "t shirts"),
    "t-shirt": ("tea shirt", "t shirt"),
    "tshirt": ("tea shirt",),
    "tee": ("tea",),
    "jeans": ("genes",),
    "shoes": ("choose", "shoe"),
    "shoe": ("shoo", "show"),
    "watch": ("wash", "what's"),
    "watches": ("washes",),
    "bag": ("back", "beg"),
    "bags": ("backs",),
    "handbags": ("hand bags",),
    "boots": ("boats", "butts"),
    "socks": ("sox", "sucks"),
    "cap": ("cup", "cab"),
    "caps": ("cups",),
    "mug": ("mud", "muck"),
    "scarf": ("scar", "scarves"),
    "belt": ("built", "bolt"),
    "belts": ("bolts",),
    "sandals": ("candles", "scandals"),
    "heels": ("heals", "hills"),
    "jacket": ("jacked", "jack it"),
    "ring": ("wring",),
    "rings": ("wrings",),
    "necklace": ("neckless",),
    "sunglasses": ("sun glasses",),
    "tops": ("taps", "stops"),
    "top": ("tap", "stop"),
    "dress": ("address", "dresser"),
    "skirt": ("skit", "squirt"),
    "shorts": ("shirts", "sorts"),
    "kurta": ("curta", "court a"),
    "kurtas": ("curtas",),
    "wallet": ("wall it",),
    "wallets": ("wall its",),
    "trousers": ("trouser", "browsers"),
    "flip": ("flipped",),
    "flops": ("flaps",),
    "casual": ("causal",),
    "sports": ("spots", "ports"),
    "formal": ("former",),
    "leather": ("lever", "weather"),
    "cotton": ("cotin", "gotten"),
    "denim": ("then im", "venom"),
    "wool": ("will", "wall"),
    "silk": ("milk", "sulk"),
    "linen": ("linden", "lining"),
    "metal": ("medal", "meddle"),
    "wood": ("would",),
    "wooden": ("would an",),
    "plastic": ("plastics",),
    "canvas": ("canvass",),
    "ceramic": ("ceramics",),
    "suede": ("swayed", "sway"),
    "for": ("four", "fore"),
    "to": ("two", "too"),
    "with": ("width",),
    "lamp": ("lump", "lamb"),
    "chair": ("cheer", "share"),
    "hat": ("had", "hot"),
    "gloves": ("loves",),
    "vase": ("vaze", "face"),
    "pillow": ("pillar",),
    "towel": ("tower", "towl"),
    "bottle": ("battle", "model"),
    "umbrella": ("a umbrella",),
    "headphones": ("head phones",),
    "backpack": ("back pack",),
    "sneakers": ("sneaker", "speakers"),
    "hoodie": ("hood e", "who'd he"),
    "sweater": ("sweeter",),
    "coat": ("code", "goat"),
}

# Sound-alike spelling rewrites used when a word has no entry above.
_PHONETIC = (
    ("ph", "f"),
    ("ck", "k"),
    ("ee", "ea"),
    ("ea", "ee"),
    ("th", "d"),
    ("ou", "o"),
    ("ai", "ay"),
    ("ie", "y"),
    ("s", "z"),
    ("c", "k"),
)

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            for rr in (r - 1, r + 1):
                if 0 <= rr < len(_KEYBOARD_ROWS):
                    other = _KEYBOARD_ROWS[rr]
                    near += [other[j] for j in (i - 1, i, i + 1) if 0 <= j < len(other)]
            out[ch] = "".join(near)
    return out


_NEAR = _neighbours()


@dataclass(frozen=True)
class NoiseConfig:
    """Per-word probabilities of each corruption; at least one is always applied."""

    typo: float = 0.15
    drop: float = 0.1
    confuse: float = 0.12


def typo(word: str, rng: random.Random) -> str:
    """One keyboard-style typo: swap, delete, double or neighbour-key substitute a letter."""
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    if len(word) < 2 or not letters:
        return word
    op = rng.choice(("swap", "delete", "double", "near"))
    i = rng.choice(letters)
    if op == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "delete" and len(word) > 2:
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    near = _NEAR.get(word[i].lower())
    if near:
        ch = rng.choice(near)
        return word[:i] + (ch.upper() if word[i].isupper() else ch) + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def confuse(word: str, rng: random.Random) -> str:
    """A speech-recognition-like confusion: a homophone or a sound-alike respelling."""
    key = word.lower()
    if key in ASR_CONFUSIONS:
        return rng.choice(ASR_CONFUSIONS[key])
    options = [(a, b) for a, b in _PHONETIC if a in key]
    if not options:
        return word
    a, b = rng.choice(options)
    return key.replace(a, b, 1)


class QueryNoise:
    """Seeded generator of noisy query text (see module docstring).

    Each call draws from the generator's own stream, so a sequence of calls is reproducible
    from the seed; :meth:`noisy` with an explicit ``key`` is reproducible per text regardless of
    call order.
    """

    def __init__(self, seed: int = 0, config: NoiseConfig = NoiseConfig()) -> None:
        for name in ("typo", "drop", "confuse"):
            value = getattr(config, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"NoiseConfig.{name} must be in [0, 1], got {value}")
        self.seed = int(seed)
        self.config = config
        self._rng = random.Random(f"edgeshelf-noise-{self.seed}")

    def __call__(self, text: str) -> str:
        return self.noisy(text)

    def noisy(self, text: str, key: str | None = None) -> str:
        """A noisy version of ``text`` that differs from it (when it has any letters)."""
        rng = self._rng if key is None else random.Random(f"edgeshelf-noise-{self.seed}-{key}")
        return corrupt(text, rng, self.config)

    def variants(self, text: str, count: int) -> list[str]:
        """``count`` noisy versions of ``text`` (distinct where possible)."""
        out: list[str] = []
        for _ in range(max(0, count) * 4):
            if len(out) >= count:
                break
            candidate = self.noisy(text)
            if candidate not in out:
                out.append(candidate)
        while len(out) < count:
            out.append(self.noisy(text))
        return out


def corrupt(text: str, rng: random.Random, config: NoiseConfig = NoiseConfig()) -> str:
    """Apply typos, dropped words and ASR confusions to ``text`` with ``rng``; result != text
    whenever ``text`` contains a letter (a typo is forced if nothing else changed it)."""
    words = text.split()
    if not words:
        return text
    for _attempt in range(8):
        out: list[str] = []
        dropped = 0
        max_drop = (len(words) - 1) // 2
        for w in words:
            if dropped < max_drop and rng.random() < config.drop:
                dropped += 1
                continue
            r = rng.random()
            if r < config.confuse:
                w = confuse(w, rng)
            elif r < config.confuse + config.typo:
                w = typo(w, rng)
            out.append(w)
        result = " ".join(out)
        if result != " ".join(words):
            return result
    # Nothing changed by chance: force one typo in the longest word.
    i = max(range(len(words)), key=lambda j: len(words[j]))
    forced = list(words)
    for _ in range(8):
        forced[i] = typo(words[i], rng)
        if forced[i] != words[i]:
            return " ".join(forced)
    return " ".join(forced)


def noisy_versions(texts: Sequence[str], seed: int = 0, config: NoiseConfig = NoiseConfig()) -> list[str]:
    """One noisy version per text, each keyed by its position and text (order-independent)."""
    noise = QueryNoise(seed, config)
    return [noise.noisy(t, key=f"{i}:{t}") for i, t in enumerate(texts)]


__all__ = ["ASR_CONFUSIONS", "NoiseConfig", "QueryNoise", "confuse", "corrupt", "noisy_versions", "typo"]
