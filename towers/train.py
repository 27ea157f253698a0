"""Contrastive training of the towers: in-batch negatives, a learned temperature, modality dropout.

Every step draws about ``batch_size`` distinct products and runs ONE forward pass over these rows:

* ``T`` text-only queries made from each product: its clean title, a noisy one (words dropped
  or shuffled, typos and ASR-like confusions from :mod:`edgeshelf.catalogue.noise`), or one to
  three of its short attribute values and category ("navy blue men shirts");
* ``P`` the product with every modality it has, each dropped with probability
  ``modality_dropout`` (one is always kept); ``F`` the same with nothing dropped, as indexed;
* ``X`` the product's own text alone; ``I`` its image alone; ``V`` / ``A`` its video / audio alone
  (capped at ``max_media_rows`` a step: a video row costs ``frames`` image passes);
* ``Q`` labelled training queries (when given) and, for each, one of its relevant products.

Losses (symmetric InfoNCE, the other rows of the batch are the negatives; one learned temperature
``T = exp(-s)``, ``s`` clipped to ``[-log max_temperature, -log min_temperature]``):
``T<->P`` (query -> product), ``X<->P``, ``I<->T`` (text -> image, so title-hidden products are
found), ``I<->P`` (image query -> product) and, weighted by ``category_weight``, ``I<->P`` with
every product of the same category as a positive; ``V<->P``, ``A<->P``; ``F<->`` the normalised
sum of its ``X`` and ``I`` views (``centroid_weight``: keeps one modality from dominating the
fused vector); ``Q<->P_q``. Positives beyond the diagonal: rows with the same product text, and
for attribute queries every product having all the stated values.

Products are augmented (``token_dropout`` of their text tokens; ``feature_dropout`` of backbone
features, or left-right mirroring of raw images) and weights decay (AdamW, cosine schedule).
The first ``text_warmup_epochs`` use the text alone (cheap steps that teach the text tower
first). After training, the image CNN's BatchNorm statistics are re-estimated over the catalogue.

The whole catalogue is preprocessed once (:meth:`Towers.prepare`: uint8 images, or backbone
features computed once) and steps sample from it. Seeded (``keras.utils.set_random_seed`` and a
numpy ``Generator``); checkpoints (towers + optimizer + sampler state) are written atomically
into ``options.checkpoint_dir`` and :func:`train` resumes from one exactly.

Example::

    result = train(load_catalogue("shop/"), TrainOptions(epochs=8))
    result.save("towers/")
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError
from edgeshelf.sdk.fileio import atomic_directory
from edgeshelf.towers.model import MODALITIES, PreparedBatch, Towers, TowersConfig, product_text

CHECKPOINT_DIR = ".checkpoint"
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.npz"
_PREPARE_CHUNK = 64


@dataclass(frozen=True)
class TrainOptions:
    """Settings of one training run (all probabilities in [0, 1], times in minutes).

    ``checkpoint_every`` is in epochs (0 = only when stopping early); ``max_minutes`` stops
    after the step that crosses it (the towers are still saved, marked incomplete, and the
    checkpoint is kept so that ``resume`` continues).
    """

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 2e-3
    final_learning_rate_ratio: float = 0.1
    seed: int = 0
    temperature: float = 0.07
    min_temperature: float = 0.01
    max_temperature: float = 1.0
    modality_dropout: float = 0.3
    text_noise: float = 0.5
    attribute_queries: float = 0.5
    text_warmup_epochs: int = 0
    image_weight: float = 1.0
    category_weight: float = 0.5
    centroid_weight: float = 1.0
    token_dropout: float = 0.15
    feature_dropout: float = 0.2
    weight_decay: float = 1e-4
    query_weight: float = 1.0
    max_media_rows: int = 32
    query_batch_size: int = 64
    clip_norm: float = 5.0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 2, ">= 2 (in-batch negatives need two rows)"),
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("final_learning_rate_ratio", 0 < self.final_learning_rate_ratio <= 1, "in (0, 1]"),
            (
                "temperature",
                self.min_temperature <= self.temperature <= self.max_temperature,
                f"in [min_temperature, max_temperature] = [{self.min_temperature}, {self.max_temperature}]",
            ),
            (
                "min_temperature",
                0 < self.min_temperature <= self.max_temperature,
                "> 0 and <= max_temperature",
            ),
            ("modality_dropout", 0 <= self.modality_dropout < 1, "in [0, 1)"),
            ("text_noise", 0 <= self.text_noise <= 1, "in [0, 1]"),
            ("attribute_queries", 0 <= self.attribute_queries <= 1, "in [0, 1]"),
            ("text_warmup_epochs", 0 <= self.text_warmup_epochs <= self.epochs, "in [0, epochs]"),
            ("image_weight", self.image_weight >= 0, ">= 0"),
            ("category_weight", self.category_weight >= 0, ">= 0"),
            ("centroid_weight", self.centroid_weight >= 0, ">= 0"),
            ("token_dropout", 0 <= self.token_dropout < 1, "in [0, 1)"),
            ("feature_dropout", 0 <= self.feature_dropout < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("query_weight", self.query_weight >= 0, ">= 0"),
            ("max_media_rows", self.max_media_rows >= 0, ">= 0"),
            ("query_batch_size", self.query_batch_size >= 2, ">= 2"),
            ("clip_norm", self.clip_norm > 0, "> 0"),
            ("checkpoint_every", self.checkpoint_every >= 0, ">= 0"),
            ("max_minutes", self.max_minutes is None or self.max_minutes > 0, "> 0 or None"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InvalidInputError(
                    f"TrainOptions.{name} must be {expected}, got {getattr(self, name)!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochLog:
    """Mean loss of one epoch (and of each task), its duration in seconds, the temperature at its end."""

    epoch: int
    loss: float
    seconds: float
    temperature: float
    tasks: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """Trained towers, the per-epoch history, and what :meth:`save` records under ``training``."""

    towers: Towers
    history: tuple[EpochLog, ...]
    options: TrainOptions
    seconds: float
    completed: bool
    epochs_done: int
    steps_done: int
    temperature: float
    catalogue_fingerprint: str
    products: int
    queries: int
    checkpoint_dir: str | None = None

    @property
    def final_loss(self) -> float:
        return self.history[-1].loss if self.history else float("nan")

    def training_block(self) -> dict[str, Any]:
        """The ``training`` block of ``towers.json``."""
        return {
            "options": self.options.to_dict(),
            "seconds": round(self.seconds, 2),
            "completed": self.completed,
            "epochs_done": self.epochs_done,
            "steps_done": self.steps_done,
            "final_loss": None if math.isnan(self.final_loss) else round(self.final_loss, 5),
            "temperature": round(self.temperature, 5),
            "catalogue_fingerprint": self.catalogue_fingerprint,
            "products": self.products,
            "queries": self.queries,
            "history": [h.to_dict() for h in self.history],
        }

    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Save the towers with this run's ``training`` block (atomic), ``extra`` merged into it.

        A checkpoint inside ``path`` survives only when training stopped early (to resume from).
        """
        target = Path(path)
        ckpt = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        parked = None
        inside = ckpt is not None and ckpt.resolve().parent == target.resolve()
        if inside and ckpt.is_dir() and not self.completed:
            parked = target.parent / f".{target.name}.checkpoint-{os.getpid()}"
            shutil.rmtree(parked, ignore_errors=True)
            os.replace(ckpt, parked)
        try:
            self.towers.save(target, extra={**self.training_block(), **(extra or {})})
        finally:
            if parked is not None:
                os.replace(parked, target / ckpt.name)
        return target

    def __repr__(self) -> str:
        state = "complete" if self.completed else "stopped early"
        return (
            f"TrainResult(epochs={self.epochs_done}, loss={self.final_loss:.4f}, "
            f"seconds={self.seconds:.1f}, space={self.towers.space_id}, {state})"
        )


# --------------------------------------------------------------------------------------------
# catalogue helpers


def _products_of(catalogue: Any) -> list[Any]:
    products = getattr(catalogue, "products", catalogue)
    try:
        products = list(products)
    except TypeError:
        raise InvalidInputError(
            f"expected a Catalogue or a list of products, got {type(catalogue).__name__}"
        ) from None
    if not products:
        where = getattr(catalogue, "root", None)
        raise InvalidInputError(
            f"catalogue {where or ''} has no products: nothing to train on; check the file and its "
            "column mapping (`--preset` / `--columns`)".replace("catalogue  ", "catalogue ")
        )
    return products


def catalogue_fingerprint(products: Sequence[Any]) -> str:
    """16 hex digits over each product's id, text, attributes and media file names, in order."""
    digest = hashlib.sha256()
    for p in products:
        row = [
            str(p.id),
            p.title or "",
            getattr(p, "category", "") or "",
            sorted((getattr(p, "attributes", None) or {}).items()),
            *(Path(m).name if m else "" for m in (p.image, p.video, p.audio)),
        ]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


_WORD = re.compile(r"\S+")


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    op = int(rng.integers(0, 3))
    if op == 0:  # swap two neighbours
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if op == 1:  # drop one
        return word[:i] + word[i + 1 :]
    return word[:i] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))] + word[i + 1 :]


def noisy_text(text: str, rng: np.random.Generator) -> str:
    """A query-like corruption of ``text`` (seeded by ``rng``): some words dropped, the order
    sometimes shuffled, then typos and speech-recognition confusions
    (:func:`edgeshelf.catalogue.noise.corrupt` when the catalogue room is installed)."""
    toks = _WORD.findall(text)
    if len(toks) > 1:
        keep = rng.random(len(toks)) > 0.3
        if not keep.any():
            keep[int(rng.integers(0, len(toks)))] = True
        toks = [t for t, k in zip(toks, keep) if k]
        if rng.random() < 0.5:
            rng.shuffle(toks)
    try:
        import random

        from edgeshelf.catalogue.noise import corrupt
    except ImportError:
        return " ".join(_typo(t, rng) if rng.random() < 0.25 else t for t in toks)
    return corrupt(" ".join(toks), random.Random(int(rng.integers(0, 2**31))))


def _attribute_values(product: Any) -> list[str]:
    """Short attribute values a shopper might type (1-3 words, 3-30 characters) and the category;
    long free text (alternative titles) and codes ("en") are left out."""
    values = [str(v).strip() for v in (getattr(product, "attributes", None) or {}).values()]
    values = [v for v in values if 3 <= len(v) <= 30 and len(v.split()) <= 3]
    values.append((getattr(product, "category", "") or "").strip())
    return list(dict.fromkeys(v for v in values if v))


def attribute_query(product: Any, rng: np.random.Generator) -> str | None:
    """One to three of the product's attribute values and its category, in random order
    (``None`` when it has none): a shopper's "navy blue men shirts" rather than a title."""
    picked = _pick_attributes(product, rng)
    return " ".join(picked) if picked else None


def _pick_attributes(product: Any, rng: np.random.Generator) -> list[str]:
    values = _attribute_values(product)
    if not values:
        return []
    k = int(rng.integers(1, min(3, len(values)) + 1))
    return [values[i] for i in rng.choice(len(values), size=k, replace=False)]


# --------------------------------------------------------------------------------------------
# the loss


def _info_nce(tf, a, b, positives: np.ndarray, scale):
    """Symmetric multi-positive InfoNCE of rows ``a`` vs rows ``b`` (``positives[i, j]`` = a_i ~ b_j)."""
    logits = scale * tf.matmul(a, b, transpose_b=True)
    log_pos = tf.constant(np.where(positives, 0.0, -1e9).astype(np.float32))
    ab = tf.reduce_logsumexp(logits, axis=1) - tf.reduce_logsumexp(logits + log_pos, axis=1)
    ba = tf.reduce_logsumexp(logits, axis=0) - tf.reduce_logsumexp(logits + log_pos, axis=0)
    return 0.5 * (tf.reduce_mean(ab) + tf.reduce_mean(ba))


@dataclass
class _Segment:
    start: int
    positions: np.ndarray  # positions in the step's product rows (sorted); for Q: query order


class _Trainer:
    def __init__(
        self, towers: Towers, products: list[Any], queries: list[Any], options: TrainOptions, progress: bool
    ) -> None:
        self.towers = towers
        self.products = products
        self.options = options
        self.progress = progress
        self.data = _prepare_all(towers, products, progress)
        self.presence = self.data.mask.copy()
        texts = [product_text(p) for p in products]
        self.texts = texts
        categories: dict[str, int] = {}
        self.category = np.array(
            [
                categories.setdefault(p.category.lower(), len(categories))
                if getattr(p, "category", "")
                else -1
                for p in products
            ],
            np.int64,
        )
        self.values = [frozenset(v.lower() for v in _attribute_values(p)) for p in products]
        text_key = {}
        self.text_key = np.array(
            [text_key.setdefault(t.lower(), len(text_key)) if t else -1 - i for i, t in enumerate(texts)],
            np.int64,
        )
        self.embeddable = np.flatnonzero(self.presence.sum(axis=1) > 0)
        if self.embeddable.size < 2:
            raise InvalidInputError(
                f"only {self.embeddable.size} product(s) have any text or media: at least 2 are needed"
            )
        id_to_row = {str(p.id): i for i, p in enumerate(products)}
        self.queries: list[Any] = []
        self.query_relevant: list[tuple[np.ndarray, np.ndarray]] = []
        for q in queries:
            rel = [(id_to_row[pid], g) for pid, g in q.relevant.items() if pid in id_to_row and g > 0]
            if rel and (q.text or q.image is not None or q.audio is not None or q.video is not None):
                rows, grades = zip(*rel)
                self.queries.append(q)
                self.query_relevant.append((np.array(rows), np.array(grades, np.float64)))
        self.query_data = _prepare_all(towers, self.queries, progress, queries=True) if self.queries else None

    # ---- batches

    def _text_rows(self, rows: np.ndarray, rng: np.random.Generator):
        """Token ids of one query-like text per row, and for attribute queries the set of values
        every matching product has (those products are positives of the row, not negatives)."""
        opts = self.options
        out, constraints = [], []
        for r in rows:
            text, constraint = self.texts[r], None
            u = rng.random()
            if u < opts.attribute_queries:
                picked = _pick_attributes(self.products[r], rng)
                if picked:
                    text, constraint = " ".join(picked), frozenset(v.lower() for v in picked)
                    if rng.random() < opts.text_noise:
                        text = noisy_text(text, rng) or text
            elif u < opts.attribute_queries + (1 - opts.attribute_queries) * opts.text_noise:
                text = noisy_text(self.products[r].title or text, rng) or text
            out.append(text)
            constraints.append(constraint)
        from edgeshelf.sdk.preprocess import tokenize_batch

        return tokenize_batch(out, self.towers.config.preprocess.text), constraints

    def epoch_batches(self, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Row indices of each step of an epoch: a random split of the embeddable products."""
        return np.array_split(self.embeddable[rng.permutation(self.embeddable.size)], steps)

    def _augment(self, batch: PreparedBatch, rng: np.random.Generator) -> PreparedBatch:
        """Product-side augmentation: drop text tokens (one is always kept), drop backbone
        feature units (inverted dropout) or mirror images left-right."""
        opts = self.options
        ids = batch.token_ids
        if opts.token_dropout > 0:
            drop = (rng.random(ids.shape) < opts.token_dropout) & (ids > 0)
            drop[np.arange(ids.shape[0]), np.argmax(ids > 0, axis=1)] = False
            kept = np.where(drop, 0, ids)
            order = np.argsort(kept == 0, axis=1, kind="stable")  # keep ids left-aligned
            ids = np.take_along_axis(kept, order, axis=1)
        images, videos = batch.images, batch.videos
        if images.dtype == np.uint8:
            flip = rng.random(images.shape[0]) < 0.5
            images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
        elif opts.feature_dropout > 0:
            keep = rng.random(images.shape) >= opts.feature_dropout
            images = images * keep / (1.0 - opts.feature_dropout)
            keep_v = rng.random(videos.shape) >= opts.feature_dropout
            videos = videos * keep_v / (1.0 - opts.feature_dropout)
        return PreparedBatch(
            ids, images.astype(batch.images.dtype), videos.astype(batch.videos.dtype), batch.audio, batch.mask
        )

    def _satisfies(self, constraints: list[frozenset | None], product_rows: np.ndarray) -> np.ndarray:
        """``[i, j]``: product ``j`` has every attribute value of query constraint ``i``."""
        out = np.zeros((len(constraints), product_rows.size), bool)
        for i, c in enumerate(constraints):
            if c is not None:
                out[i] = [c <= self.values[r] for r in product_rows]
        return out

    def _dropout_mask(self, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        keep = (rng.random(present.shape) >= self.options.modality_dropout) & (present > 0)
        for i in np.flatnonzero(~keep.any(axis=1)):
            choices = np.flatnonzero(present[i] > 0)
            keep[i, choices[int(rng.integers(0, choices.size))]] = True
        return keep.astype(np.float32)

    def build_step(self, rows: np.ndarray, rng: np.random.Generator, text_only: bool = False):
        """One concatenated PreparedBatch and the loss pairs over its segments (``text_only``:
        the products' text alone, a cheap warm-up step)."""
        opts = self.options
        parts: list[PreparedBatch] = []
        segments: dict[str, _Segment] = {}
        offset = 0

        def add(name: str, batch: PreparedBatch, positions: np.ndarray) -> None:
            nonlocal offset
            parts.append(batch)
            segments[name] = _Segment(offset, positions)
            offset += len(batch)

        present = self.presence[rows].copy()
        if text_only:
            rows = rows[present[:, 0] > 0]
            present = present[present[:, 0] > 0]
            present[:, 1:] = 0.0
            if rows.size < 2:
                return None, []
        base = self._augment(self.data.take(rows), rng)
        # P: full products with modality dropout
        add("P", base.with_mask(self._dropout_mask(present, rng)), np.arange(rows.size))
        # F: full products, nothing dropped (as they are indexed)
        f_pos = np.flatnonzero((present[:, 0] > 0) & (present[:, 1] > 0))
        if f_pos.size > max(2, rows.size // 2):  # half a batch is enough for this loss
            f_pos = np.sort(rng.choice(f_pos, size=max(2, rows.size // 2), replace=False))
        if opts.centroid_weight > 0 and f_pos.size >= 2:
            add("F", base.take(f_pos), f_pos)
        # T: text-only query variants
        t_pos = np.flatnonzero(present[:, 0] > 0)
        if t_pos.size:
            t_batch = base.take(t_pos)
            token_ids, constraints = self._text_rows(rows[t_pos], rng)
            t_batch = replace(t_batch, token_ids=token_ids)
            constraint_at = dict(zip(t_pos.tolist(), constraints))
            add("T", t_batch.with_mask(_only(len(t_pos), 0)), t_pos)
        # X: the product's own text only (keeps a full product near its text-only view)
        if t_pos.size:
            add("X", base.take(t_pos).with_mask(_only(len(t_pos), 0)), t_pos)
        # I: image-only
        i_pos = np.flatnonzero(present[:, 1] > 0)
        if i_pos.size:
            add("I", base.take(i_pos).with_mask(_only(len(i_pos), 1)), i_pos)
        for name, col in (("V", 2), ("A", 3)):
            pos = np.flatnonzero(present[:, col] > 0)
            if pos.size > opts.max_media_rows:
                pos = np.sort(rng.choice(pos, size=opts.max_media_rows, replace=False))
            if pos.size >= 2:
                add(name, base.take(pos).with_mask(_only(len(pos), col)), pos)
        pairs = []
        for a, b in (("T", "P"), ("X", "P"), ("I", "T"), ("I", "P"), ("V", "P"), ("A", "P")):
            if a in segments and b in segments:
                common = np.intersect1d(segments[a].positions, segments[b].positions)
                if common.size >= 2:
                    ia = np.searchsorted(segments[a].positions, common)
                    ib = np.searchsorted(segments[b].positions, common)
                    keys = self.text_key[rows[common]]
                    pos = keys[:, None] == keys[None, :]
                    np.fill_diagonal(pos, True)
                    if "T" in (a, b):
                        sat = self._satisfies([constraint_at[c] for c in common.tolist()], rows[common])
                        pos |= sat if a == "T" else sat.T
                    weight = opts.image_weight if (a, b) == ("I", "P") else 1.0
                    pairs.append((f"{a}-{b}", segments[a].start + ia, segments[b].start + ib, pos, weight))
                    if (a, b) == ("I", "P") and opts.category_weight > 0:
                        cats = self.category[rows[common]]
                        same = (cats[:, None] == cats[None, :]) & (cats[:, None] >= 0)
                        if (same.sum(axis=1) > 1).any():
                            pairs.append(
                                (
                                    "I-P/category",
                                    segments[a].start + ia,
                                    segments[b].start + ib,
                                    pos | same,
                                    opts.category_weight,
                                )
                            )
        if all(k in segments for k in ("F", "X", "I")):
            # the fused product should sit at the centroid of its text and image views, so that
            # neither modality dominates it (text queries and image queries both find it)
            f = segments["F"].positions
            ix = segments["X"].start + np.searchsorted(segments["X"].positions, f)
            ii = segments["I"].start + np.searchsorted(segments["I"].positions, f)
            keys = self.text_key[rows[f]]
            pos = keys[:, None] == keys[None, :]
            np.fill_diagonal(pos, True)
            pairs.append(
                ("F-centroid", segments["F"].start + np.arange(f.size), (ix, ii), pos, opts.centroid_weight)
            )
        if self.query_data is not None:
            nq = min(opts.query_batch_size, len(self.queries))
            picked = rng.choice(len(self.queries), size=nq, replace=False)
            chosen = []
            for qi in picked:
                rel_rows, grades = self.query_relevant[qi]
                chosen.append(rel_rows[int(rng.choice(rel_rows.size, p=grades / grades.sum()))])
            chosen = np.array(chosen)
            add("Q", self.query_data.take(picked), picked)
            prod = self.data.take(chosen)
            add("Pq", prod, chosen)
            rel_sets = [set(self.query_relevant[qi][0].tolist()) for qi in picked]
            pos = np.array([[c in rs for c in chosen] for rs in rel_sets])
            np.fill_diagonal(pos, True)
            q0, p0 = segments["Q"].start, segments["Pq"].start
            pairs.append(("Q-P", q0 + np.arange(nq), p0 + np.arange(nq), pos, opts.query_weight))
        return PreparedBatch.concat(parts), pairs


def _rows(tf, emb, index):
    """Rows ``index`` of ``emb``, or for a tuple of index arrays the normalised sum of those rows."""
    if isinstance(index, tuple):
        return tf.math.l2_normalize(tf.add_n([tf.gather(emb, i) for i in index]), axis=-1)
    return tf.gather(emb, index)


def _only(n: int, col: int) -> np.ndarray:
    mask = np.zeros((n, len(MODALITIES)), np.float32)
    mask[:, col] = 1.0
    return mask


def _prepare_all(
    towers: Towers, items: Sequence[Any], progress: bool, queries: bool = False
) -> PreparedBatch:
    """Preprocess every product (or query) once, in chunks, with a progress bar."""
    from tqdm import tqdm

    parts = []
    desc = "preparing queries" if queries else "preparing catalogue"
    with tqdm(total=len(items), desc=desc, unit="item", disable=not progress, leave=False) as bar:
        for start in range(0, len(items), _PREPARE_CHUNK):
            chunk = items[start : start + _PREPARE_CHUNK]
            texts = [q.text for q in chunk] if queries else [product_text(p) or None for p in chunk]
            parts.append(
                towers.prepare(
                    texts=texts,
                    images=[p.image for p in chunk],
                    videos=[p.video for p in chunk],
                    audios=[p.audio for p in chunk],
                )
            )
            bar.update(len(chunk))
    return PreparedBatch.concat(parts)


def _recalibrate_batchnorm(towers: Towers, data: PreparedBatch, batch_size: int) -> None:
    """Set the image CNN's BatchNorm statistics to the mean of its batch statistics over the
    catalogue's images. Short runs are too few steps for the moving averages (momentum 0.99)
    to settle, and inference would then see other statistics than training did."""
    import keras

    if towers.backbone_path is not None:
        return
    norms = [
        layer for layer in towers.image_encoder.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    rows = np.flatnonzero(data.mask[:, 1] > 0)
    if not norms or rows.size == 0:
        return
    momenta = [layer.momentum for layer in norms]
    try:
        for k, start in enumerate(range(0, rows.size, batch_size)):
            for layer in norms:
                layer.momentum = k / (k + 1)  # a running mean over the batches
            images = data.images[rows[start : start + batch_size]].astype(np.float32) * (1.0 / 255.0)
            towers.image_encoder(images, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


# --------------------------------------------------------------------------------------------
# checkpoints


def _find_resume_source(path: Path) -> tuple[str, Path]:
    """("checkpoint", dir) or ("towers", dir) for a resume path (an output folder or a checkpoint)."""
    for candidate in (path / CHECKPOINT_DIR, path):
        if (candidate / STATE_FILE).is_file() and (candidate / "towers").is_dir():
            return "checkpoint", candidate
    if (path / "towers.json").is_file():
        return "towers", path
    raise ModelNotFoundError(
        f"nothing to resume in {path}: no {CHECKPOINT_DIR}/{STATE_FILE} and no towers.json; "
        "train without --resume first"
    )


def _write_checkpoint(directory: Path, towers: Towers, optimizer: Any, state: dict[str, Any]) -> None:
    with atomic_directory(directory) as tmp:
        towers.save(tmp / "towers")
        arrays = {f"v{i:04d}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
        np.savez(tmp / OPTIMIZER_FILE, **arrays)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))


# --------------------------------------------------------------------------------------------
# the loop


def train(
    catalogue: Any,
    options: TrainOptions = TrainOptions(),
    config: TowersConfig | None = None,
    queries: Sequence[Any] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_epoch: Callable[[EpochLog], bool | None] | None = None,
) -> TrainResult:
    """Train towers on ``catalogue`` (a Catalogue or a list of products) and return them.

    ``on_epoch`` is called with each finished epoch's log; returning ``False`` stops training
    there (checkpointed, result marked incomplete, as with ``max_minutes``).

    ``queries`` are labelled *training* queries (a catalogue's own ``queries.jsonl`` is for
    evaluation and is not used unless passed here). ``resume_from`` is an output folder or a
    checkpoint folder: a checkpoint restores weights, optimizer, temperature and sampler exactly;
    a finished towers folder restores weights and the epoch counter (fresh optimizer). The
    architecture then comes from the resumed towers and ``config`` is ignored.
    """
    import keras
    import tensorflow as tf

    products = _products_of(catalogue)
    queries = list(queries or [])
    fingerprint = catalogue_fingerprint(products)
    start_epoch, steps_done, history = 0, 0, []
    log_scale0 = -math.log(options.temperature)
    state: dict[str, Any] | None = None
    kind, source = "", Path()
    if resume_from is not None:
        kind, source = _find_resume_source(Path(resume_from))
        if kind == "checkpoint":
            state = json.loads((source / STATE_FILE).read_text())
            towers = Towers.load(source / "towers")
        else:
            towers = Towers.load(source)
            state = Towers.read_meta(source).get("training") or {}
        old = state.get("catalogue_fingerprint")
        if old and old != fingerprint:
            raise InvalidInputError(
                f"cannot resume from {source}: it was trained on catalogue {old}, this catalogue is "
                f"{fingerprint}; train from scratch (drop --resume) or pass the same catalogue"
            )
        start_epoch = int(state.get("epochs_done", 0))
        steps_done = int(state.get("steps_done", 0))
        history = [EpochLog(**h) for h in state.get("history", [])]
        log_scale0 = -math.log(float(state.get("temperature", options.temperature)))
    else:
        towers = Towers.create(config or TowersConfig(), seed=options.seed)

    keras.utils.set_random_seed(options.seed + start_epoch)
    rng = np.random.default_rng(options.seed + start_epoch)
    if state and "rng" in state:
        rng.bit_generator.state = state["rng"]
    trainer = _Trainer(towers, products, queries, options, progress)
    n = trainer.embeddable.size
    steps_per_epoch = max(1, round(n / options.batch_size))  # balanced batches of about batch_size
    total_steps = steps_per_epoch * options.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        options.learning_rate, decay_steps=max(1, total_steps), alpha=options.final_learning_rate_ratio
    )
    optimizer = keras.optimizers.AdamW(
        schedule, weight_decay=options.weight_decay, global_clipnorm=options.clip_norm
    )
    log_scale = keras.Variable(log_scale0, dtype="float32", name="log_inverse_temperature")
    optimizer.exclude_from_weight_decay(var_list=[log_scale])
    variables = [*towers.trainable_weights, log_scale]
    optimizer.build(variables)
    if kind == "checkpoint":
        saved = np.load(source / OPTIMIZER_FILE)
        if len(saved.files) != len(optimizer.variables):
            raise InvalidInputError(
                f"{source / OPTIMIZER_FILE} holds {len(saved.files)} optimizer arrays, expected "
                f"{len(optimizer.variables)}: the checkpoint does not match these towers"
            )
        for i, var in enumerate(optimizer.variables):
            var.assign(saved[f"v{i:04d}"])
    lo, hi = -math.log(options.max_temperature), -math.log(options.min_temperature)

    def step(batch: PreparedBatch, pairs) -> tuple[float, dict[str, float]]:
        with tf.GradientTape() as tape:
            emb = towers.forward(batch, training=True)
            scale = tf.exp(log_scale)
            losses = {
                name: _info_nce(tf, tf.gather(emb, ia), _rows(tf, emb, ib), pos, scale)
                for name, ia, ib, pos, _ in pairs
            }
            weights = {name: w for name, *_, w in pairs}
            total = tf.add_n([weights[k] * v for k, v in losses.items()]) / sum(weights.values())
        grads = tape.gradient(total, variables)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]  # absent modalities
        optimizer.apply([g for g, _ in used], [v for _, v in used])
        log_scale.assign(tf.clip_by_value(log_scale, lo, hi))
        return float(total), {k: float(v) for k, v in losses.items()}

    from tqdm import tqdm

    started = time.monotonic()
    deadline = started + 60.0 * options.max_minutes if options.max_minutes else None
    prior_seconds = float(state.get("seconds", 0.0)) if state else 0.0
    ckpt_dir = Path(options.checkpoint_dir) if options.checkpoint_dir else None
    completed, epochs_done = True, start_epoch

    def snapshot(epochs_done: int) -> dict[str, Any]:
        return {
            "epochs_done": epochs_done,
            "steps_done": steps_done,
            "temperature": float(math.exp(-float(log_scale.numpy()))),
            "seconds": prior_seconds + time.monotonic() - started,
            "catalogue_fingerprint": fingerprint,
            "options": options.to_dict(),
            "history": [h.to_dict() for h in history],
            "rng": rng.bit_generator.state,
        }

    bar = tqdm(
        total=total_steps,
        initial=min(steps_done, total_steps),
        desc="training",
        unit="step",
        disable=not progress,
    )
    try:
        for epoch in range(start_epoch, options.epochs):
            t0 = time.monotonic()
            batches = trainer.epoch_batches(steps_per_epoch, rng)
            sums: dict[str, float] = {}
            losses_seen = []
            stopped = False
            for s, rows in enumerate(batches):
                batch, pairs = trainer.build_step(rows, rng, text_only=epoch < options.text_warmup_epochs)
                if not pairs:
                    continue
                loss, parts = step(batch, pairs)
                if not math.isfinite(loss):
                    raise InvalidInputError(
                        f"training diverged at epoch {epoch + 1}, step {s + 1} (loss {loss}); "
                        "lower --learning-rate or raise the minimum temperature"
                    )
                steps_done += 1
                losses_seen.append(loss)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
                bar.set_postfix(
                    epoch=epoch + 1, loss=f"{loss:.3f}", T=f"{math.exp(-float(log_scale.numpy())):.3f}"
                )
                if deadline is not None and time.monotonic() > deadline:
                    stopped = True
                    break
            if stopped:
                completed = False
                break
            epochs_done = epoch + 1
            history.append(
                EpochLog(
                    epoch=epoch + 1,
                    loss=float(np.mean(losses_seen)) if losses_seen else float("nan"),
                    seconds=round(time.monotonic() - t0, 2),
                    temperature=float(math.exp(-float(log_scale.numpy()))),
                    tasks={k: round(v / max(1, len(losses_seen)), 5) for k, v in sums.items()},
                )
            )
            if (
                ckpt_dir is not None
                and options.checkpoint_every
                and (epoch + 1) % options.checkpoint_every == 0
            ):
                _write_checkpoint(ckpt_dir, towers, optimizer, snapshot(epoch + 1))
            if on_epoch is not None and on_epoch(history[-1]) is False and epoch + 1 < options.epochs:
                completed = False
                break
        if not completed and ckpt_dir is not None:
            # the current weights, counted as `epochs_done` full epochs: resume redoes the cut one
            _write_checkpoint(ckpt_dir, towers, optimizer, snapshot(epochs_done))
    finally:
        bar.close()
    if not history and completed:
        raise InvalidInputError("no training step could be built from this catalogue (too few products)")
    _recalibrate_batchnorm(towers, trainer.data, options.batch_size)
    return TrainResult(
        towers=towers,
        history=tuple(history),
        options=options,
        seconds=prior_seconds + time.monotonic() - started,
        completed=completed,
        epochs_done=epochs_done,
        steps_done=steps_done,
        temperature=float(math.exp(-float(log_scale.numpy()))),
        catalogue_fingerprint=fingerprint,
        products=len(products),
        queries=len(trainer.queries),
        checkpoint_dir=str(ckpt_dir) if ckpt_dir else None,
    )


__all__ = [
    "CHECKPOINT_DIR",
    "EpochLog",
    "TrainOptions",
    "TrainResult",
    "attribute_query",
    "catalogue_fingerprint",
    "noisy_text",
    "train",
]
