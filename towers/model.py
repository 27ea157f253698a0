"""The reference towers: four Keras 3 encoders and the seed's fusion tower.

For an item with text X, image Z, video V and audio A (any of which may be absent)::

    F = W [ f_x(X)*w_x ; f_z(Z)*w_z ; f_v(V)*w_v ; f_a(A)*w_a ; mask ]     (fusion_W, linear)
    R = M(F)                                                               (fusion_M*, MLP)
    embedding = R / ||R||                                                  (tf.math.l2_normalize)

Absent modalities are masked: their encoder output is multiplied by 0 *and* the presence mask
is an input of W, so the tower learns a bias per presence pattern instead of reading zeros as
content. Queries and products go through the same fusion, so they share one space; the metric
is inner product on the normalised vectors (cosine).

Every op was chosen to convert to full-integer TFLite (FACTS.md): Embedding -> masked mean ->
Dense; Conv/DepthwiseConv/BatchNorm/ReLU6; slicing and concatenation; ``tf.math.l2_normalize``
(one int8 op), never ``keras.ops.normalize`` (leaves float ops behind).

Sub-model tensor contracts (B = batch, m = ``modality_dim``):

* ``text_encoder``: int32 ``[B, max_tokens]`` token ids (see ``sdk.preprocess.tokenize``) -> ``[B, m]``
* ``image_encoder``: float32 ``[B, S, S, 3]`` RGB in [0, 1] -> ``[B, m]``; with an
  ``image_backbone`` it is the head: float32 ``[B, backbone_dim]`` features -> ``[B, m]``
* ``video_encoder``: float32 ``[B, frames, m]`` per-frame image-encoder outputs -> ``[B, m]``
* ``audio_encoder``: float32 ``[B, audio_frames, n_mels]`` log-mel -> ``[B, m]``
* ``fusion``: ``text``, ``image``, ``video``, ``audio`` float32 ``[B, m]`` and ``mask`` float32
  ``[B, 4]`` (presence, in ``MODALITIES`` order) -> float32 ``[B, dim]``, L2-normalised
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import FormatVersionError, InvalidInputError, ModelNotFoundError
from edgeshelf.sdk.fileio import atomic_directory, sha256_file
from edgeshelf.sdk.preprocess import (
    PreprocessConfig,
    as_rgb,
    iter_chunks,
    load_audio,
    load_image,
    log_mel,
    preprocess_image,
    read_video_frames,
    resize_center_crop,
    sample_frames,
    tokenize_batch,
)
from edgeshelf.sdk.space import compute_space_id

from edgeshelf import __version__

MODALITIES: tuple[str, ...] = ("text", "image", "video", "audio")
TOWERS_FORMAT_VERSION = 1
TOWERS_FILE = "towers.json"


@dataclass(frozen=True)
class TowersConfig:
    """Architecture of the towers (all sizes in units, not bytes)."""

    dim: int = 128
    modality_dim: int = 128
    text_embed_dim: int = 96
    text_hidden: int = 256
    image_widths: tuple[int, ...] = (32, 64, 96, 128, 160)
    audio_widths: tuple[int, ...] = (48, 64, 96)
    fusion_hidden: int = 256
    head_hidden: int = 256
    image_backbone: str | None = None
    backbone_dim: int = 0
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TowersConfig:
        data = dict(data)
        data["preprocess"] = PreprocessConfig.from_dict(data.get("preprocess", {}))
        for key in ("image_widths", "audio_widths"):
            if key in data:
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInputError(f"bad towers config: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Keras building blocks (imported lazily: TensorFlow is a host-only dependency)


def _keras():
    import keras

    return keras


def _layers():
    import keras
    import tensorflow as tf

    class MaskedMean(keras.layers.Layer):
        """Mean of token embeddings over non-padding ids: ``([B,L,E], [B,L]) -> [B,E]``."""

        def call(self, embedded, ids):
            mask = keras.ops.expand_dims(keras.ops.cast(keras.ops.greater(ids, 0), "float32"), -1)
            total = keras.ops.sum(embedded * mask, axis=1)
            count = keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)
            return total / count

    class ModalityScale(keras.layers.Layer):
        """The seed's per-modality weight ``w_i`` (elementwise), applied under the presence mask."""

        def __init__(self, index: int, **kwargs):
            super().__init__(**kwargs)
            self.index = index

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x, mask):
            return x * self.w * mask[:, self.index : self.index + 1]

    class L2Normalize(keras.layers.Layer):
        """``tf.math.l2_normalize`` on the last axis (converts to one int8 TFLite op)."""

        def call(self, x):
            return tf.math.l2_normalize(x, axis=-1)

    class FramePool(keras.layers.Layer):
        """Temporal pooling over frames: ``[B, F, m] -> [B, 2m]`` (mean ; max)."""

        def call(self, x):
            return keras.ops.concatenate([keras.ops.mean(x, axis=1), keras.ops.max(x, axis=1)], axis=-1)

    return MaskedMean, ModalityScale, L2Normalize, FramePool


def build_text_encoder(config: TowersConfig):
    keras = _keras()
    MaskedMean, *_ = _layers()
    tcfg = config.preprocess.text
    ids = keras.Input((tcfg.max_tokens,), dtype="int32", name="token_ids")
    embedded = keras.layers.Embedding(tcfg.buckets, config.text_embed_dim, name="text_embedding")(ids)
    x = MaskedMean(name="masked_mean")(embedded, ids)
    x = keras.layers.Dense(config.text_hidden, activation="relu", name="text_hidden")(x)
    out = keras.layers.Dense(config.modality_dim, name="text_out")(x)
    return keras.Model(ids, out, name="text_encoder")


def _separable_block(keras, x, width: int, stride: int, name: str):
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{name}_pw")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_pw_relu")(x)


def build_image_encoder(config: TowersConfig, size: int | None = None):
    """The small mobile CNN (or, with a backbone, the head over its features).

    ``size`` overrides the input resolution (the network is fully convolutional up to global
    pooling, so a device profile may run it at a lower resolution with the same weights).
    """
    keras = _keras()
    if config.image_backbone:
        feats = keras.Input((config.backbone_dim,), dtype="float32", name="backbone_features")
        x = keras.layers.Dense(config.head_hidden, activation="relu", name="head_hidden")(feats)
        out = keras.layers.Dense(config.modality_dim, name="image_out")(x)
        return keras.Model(feats, out, name="image_encoder")
    side = size or config.preprocess.image.size
    image = keras.Input((side, side, 3), dtype="float32", name="image")
    widths = config.image_widths
    x = keras.layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    stem = keras.layers.ReLU(6.0, name="stem_relu")(x)
    x = stem
    for i, width in enumerate(widths[1:]):
        x = _separable_block(keras, x, width, 2 if i < len(widths) - 2 else 1, f"block{i + 1}")
    pooled = [
        keras.layers.GlobalAveragePooling2D(name="pool_pixels")(image),  # colour statistics
        keras.layers.GlobalAveragePooling2D(name="pool_stem")(stem),
        keras.layers.GlobalAveragePooling2D(name="pool_top")(x),
    ]
    x = keras.layers.Concatenate(name="pool_concat")(pooled)
    out = keras.layers.Dense(config.modality_dim, name="image_out")(x)
    return keras.Model(image, out, name="image_encoder")


def build_video_encoder(config: TowersConfig):
    keras = _keras()
    *_, FramePool = _layers()
    frames = keras.Input(
        (config.preprocess.video.frames, config.modality_dim), dtype="float32", name="frames"
    )
    x = FramePool(name="frame_pool")(frames)
    out = keras.layers.Dense(config.modality_dim, name="video_out")(x)
    return keras.Model(frames, out, name="video_encoder")


def build_audio_encoder(config: TowersConfig):
    keras = _keras()
    acfg = config.preprocess.audio
    mel = keras.Input((acfg.frames, acfg.n_mels), dtype="float32", name="log_mel")
    x = mel
    for i, width in enumerate(config.audio_widths):
        x = keras.layers.Conv1D(width, 5, strides=2, padding="same", name=f"audio_conv{i}")(x)
        x = keras.layers.ReLU(6.0, name=f"audio_relu{i}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="audio_pool")(x)
    out = keras.layers.Dense(config.modality_dim, name="audio_out")(x)
    return keras.Model(mel, out, name="audio_encoder")


def build_fusion(config: TowersConfig):
    keras = _keras()
    _, ModalityScale, L2Normalize, _ = _layers()
    m = config.modality_dim
    inputs = {name: keras.Input((m,), dtype="float32", name=name) for name in MODALITIES}
    mask = keras.Input((len(MODALITIES),), dtype="float32", name="mask")
    parts = [ModalityScale(i, name=f"w_{name}")(inputs[name], mask) for i, name in enumerate(MODALITIES)]
    x = keras.layers.Concatenate(name="fusion_concat")([*parts, mask])
    x = keras.layers.Dense(config.fusion_hidden, name="fusion_W")(x)
    x = keras.layers.ReLU(name="fusion_relu0")(x)
    x = keras.layers.Dense(config.fusion_hidden, activation="relu", name="fusion_M1")(x)
    x = keras.layers.Dense(config.dim, name="fusion_M2")(x)
    out = L2Normalize(name="l2_normalize")(x)
    return keras.Model([*(inputs[n] for n in MODALITIES), mask], out, name="fusion")


# --------------------------------------------------------------------------------------------
# prepared (preprocessed) inputs


@dataclass
class PreparedBatch:
    """Preprocessed inputs of B items (numpy), ready for :meth:`Towers.forward`.

    ``images`` is uint8 ``[B, S, S, 3]`` (or float32 ``[B, backbone_dim]`` features with a
    backbone); ``videos`` is uint8 ``[B, F, S, S, 3]`` (or float32 ``[B, F, backbone_dim]``);
    rows whose ``mask`` column is 0 hold zeros.
    """

    token_ids: np.ndarray
    images: np.ndarray
    videos: np.ndarray
    audio: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def take(self, rows: np.ndarray) -> PreparedBatch:
        return PreparedBatch(
            self.token_ids[rows], self.images[rows], self.videos[rows], self.audio[rows], self.mask[rows]
        )

    def with_mask(self, mask: np.ndarray) -> PreparedBatch:
        return replace(self, mask=mask.astype(np.float32))

    @staticmethod
    def concat(batches: Sequence[PreparedBatch]) -> PreparedBatch:
        return PreparedBatch(
            *(
                np.concatenate([getattr(b, f) for b in batches])
                for f in ("token_ids", "images", "videos", "audio", "mask")
            )
        )


class Towers:
    """The four encoders and the fusion tower, with their preprocessing; one embedding space.

    Example::

        towers = Towers.load("towers/")
        vectors = towers.embed(texts=["navy blue shirt", None], images=[None, "shoe.png"])
    """

    def __init__(
        self, config: TowersConfig, models: dict[str, Any], backbone_path: Path | None = None
    ) -> None:
        self.config = config
        self.text_encoder = models["text"]
        self.image_encoder = models["image"]
        self.video_encoder = models["video"]
        self.audio_encoder = models["audio"]
        self.fusion = models["fusion"]
        self.backbone_path = backbone_path
        self._backbone = None

    # ---- construction and persistence

    @classmethod
    def create(cls, config: TowersConfig | None = None, seed: int = 0) -> Towers:
        """New towers with freshly initialised (untrained) weights."""
        keras = _keras()
        config = config or TowersConfig()
        backbone_path = None
        if config.image_backbone:
            from edgeshelf.sdk.backbone import ImageBackbone

            backbone_path = Path(config.image_backbone).resolve()
            dim = ImageBackbone(backbone_path).dim
            config = replace(config, image_backbone=str(backbone_path), backbone_dim=dim)
        keras.utils.set_random_seed(seed)
        models = {
            "text": build_text_encoder(config),
            "image": build_image_encoder(config),
            "video": build_video_encoder(config),
            "audio": build_audio_encoder(config),
            "fusion": build_fusion(config),
        }
        return cls(config, models, backbone_path)

    @property
    def models(self) -> dict[str, Any]:
        return {
            "text": self.text_encoder,
            "image": self.image_encoder,
            "video": self.video_encoder,
            "audio": self.audio_encoder,
            "fusion": self.fusion,
        }

    @property
    def trainable_weights(self) -> list[Any]:
        return [w for model in self.models.values() for w in model.trainable_weights]

    @property
    def space_id(self) -> str:
        """Hash of every weight and the preprocessing config (DESIGN.md contract 1)."""
        arrays = [
            np.asarray(w)
            for name in ("text", "image", "video", "audio", "fusion")
            for w in self.models[name].get_weights()
        ]
        pre = self.config.preprocess.to_dict()
        if self.backbone_path is not None:
            pre = {**pre, "image_backbone_sha256": sha256_file(self.backbone_path)}
        return compute_space_id(arrays, pre)

    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write a self-describing folder atomically: ``towers.json`` + one weights file per model.

        ``extra`` (e.g. training settings and figures) is stored under ``"training"``.
        """
        import keras
        import tensorflow as tf

        target = Path(path)
        with atomic_directory(target) as tmp:
            files = {}
            for name, model in self.models.items():
                filename = f"{name}.weights.h5"
                model.save_weights(str(tmp / filename))
                files[name] = filename
            config = self.config
            if self.backbone_path is not None:
                shutil.copyfile(self.backbone_path, tmp / "image_backbone.tflite")
                config = replace(config, image_backbone="image_backbone.tflite")
            meta = {
                "format": "edgeshelf-towers",
                "format_version": TOWERS_FORMAT_VERSION,
                "space_id": self.space_id,
                "config": config.to_dict(),
                "modalities": list(MODALITIES),
                "metric": "ip",
                "weights": files,
                "parameters": {name: int(m.count_params()) for name, m in self.models.items()},
                "versions": {
                    "edgeshelf": __version__,
                    "keras": keras.__version__,
                    "tensorflow": tf.__version__,
                    "numpy": np.__version__,
                    "python": platform.python_version(),
                },
                "training": extra or {},
            }
            (tmp / TOWERS_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return target

    @staticmethod
    def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
        """``towers.json`` of a saved towers folder, checked for format and version."""
        folder = Path(path)
        meta_path = folder / TOWERS_FILE
        if not meta_path.is_file():
            raise ModelNotFoundError(
                f"{folder} is not a towers folder (no {TOWERS_FILE}); train one with `edgeshelf train`"
            )
        meta = json.loads(meta_path.read_text())
        version = meta.get("format_version")
        if meta.get("format") != "edgeshelf-towers" or not isinstance(version, int):
            raise InvalidInputError(f"{meta_path} is not an edgeshelf towers description")
        if version > TOWERS_FORMAT_VERSION:
            raise FormatVersionError(
                f"{meta_path} has format version {version}; this edgeshelf reads up to "
                f"{TOWERS_FORMAT_VERSION}: upgrade edgeshelf"
            )
        return meta

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Towers:
        """Load towers saved by :meth:`save`; verifies the stored space id."""
        folder = Path(path)
        meta = cls.read_meta(folder)
        config = TowersConfig.from_dict(meta["config"])
        backbone_path = None
        if config.image_backbone:
            backbone_path = folder / config.image_backbone
            config = replace(config, image_backbone=str(backbone_path))
        models = {
            "text": build_text_encoder(config),
            "image": build_image_encoder(config),
            "video": build_video_encoder(config),
            "audio": build_audio_encoder(config),
            "fusion": build_fusion(config),
        }
        for name, filename in meta["weights"].items():
            models[name].load_weights(str(folder / filename))
        towers = cls(config, models, backbone_path)
        if towers.space_id != meta["space_id"]:
            raise InvalidInputError(
                f"{folder}: weights give space {towers.space_id} but towers.json says "
                f"{meta['space_id']}: the folder was modified; retrain or restore it"
            )
        return towers

    # ---- preprocessing

    def _backbone_runner(self):
        if self._backbone is None:
            from edgeshelf.sdk.backbone import ImageBackbone

            self._backbone = ImageBackbone(self.backbone_path)
        return self._backbone

    def _image_row(self, image: Any) -> np.ndarray:
        rgb = load_image(image) if isinstance(image, (str, os.PathLike)) else as_rgb(image)
        if self.backbone_path is not None:
            return self._backbone_runner().features_one(rgb)
        return resize_center_crop(rgb, self.config.preprocess.image.size)

    def prepare(
        self,
        texts: Sequence[str | None] | None = None,
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        audios: Sequence[Any] | None = None,
    ) -> PreparedBatch:
        """Preprocess aligned lists (``None`` = absent) into a :class:`PreparedBatch`."""
        lists = [x for x in (texts, images, videos, audios) if x is not None]
        if not lists:
            raise InvalidInputError("nothing to embed: pass at least one of texts, images, videos, audios")
        n = len(lists[0])
        if any(len(x) != n for x in lists):
            raise InvalidInputError(
                f"texts/images/videos/audios must have equal lengths, got {[len(x) for x in lists]}"
            )
        texts = texts or [None] * n
        images = images or [None] * n
        videos = videos or [None] * n
        audios = audios or [None] * n
        pre = self.config.preprocess
        s, frames = pre.image.size, pre.video.frames
        mask = np.zeros((n, len(MODALITIES)), np.float32)
        token_ids = tokenize_batch([t or "" for t in texts], pre.text)
        if self.backbone_path is not None:
            img_arr = np.zeros((n, self.config.backbone_dim), np.float32)
            vid_arr = np.zeros((n, frames, self.config.backbone_dim), np.float32)
        else:
            img_arr = np.zeros((n, s, s, 3), np.uint8)
            vid_arr = np.zeros((n, frames, s, s, 3), np.uint8)
        aud_arr = np.zeros((n, pre.audio.frames, pre.audio.n_mels), np.float32)
        for i in range(n):
            if texts[i]:
                mask[i, 0] = 1.0
            if images[i] is not None:
                img_arr[i] = self._image_row(images[i])
                mask[i, 1] = 1.0
            if videos[i] is not None:
                video = videos[i]
                clip = (
                    read_video_frames(video, pre.video)
                    if isinstance(video, (str, os.PathLike))
                    else sample_frames(video, frames)
                )
                vid_arr[i] = np.stack([self._image_row(frame) for frame in clip])
                mask[i, 2] = 1.0
            if audios[i] is not None:
                audio = audios[i]
                samples = (
                    load_audio(audio, pre.audio)
                    if isinstance(audio, (str, os.PathLike))
                    else np.asarray(audio, np.float32)
                )
                aud_arr[i] = log_mel(samples, pre.audio)
                mask[i, 3] = 1.0
        return PreparedBatch(token_ids, img_arr, vid_arr, aud_arr, mask)

    # ---- forward

    def _image_input(self, images: np.ndarray) -> np.ndarray:
        if self.backbone_path is not None:
            return images.astype(np.float32)
        return images.astype(np.float32) * (1.0 / 255.0)

    def forward(self, batch: PreparedBatch, training: bool = False):
        """Embeddings of a prepared batch as a (differentiable) tensor ``[B, dim]``.

        Each encoder runs only on the rows where its modality is present.
        """
        import tensorflow as tf

        n, m = len(batch), self.config.modality_dim
        outputs = {}
        for col, name in enumerate(MODALITIES):
            rows = np.flatnonzero(batch.mask[:, col] > 0)
            if rows.size == 0:
                outputs[name] = tf.zeros((n, m), tf.float32)
                continue
            if name == "text":
                enc = self.text_encoder(batch.token_ids[rows], training=training)
            elif name == "image":
                enc = self.image_encoder(self._image_input(batch.images[rows]), training=training)
            elif name == "audio":
                enc = self.audio_encoder(batch.audio[rows], training=training)
            else:
                clips = batch.videos[rows]
                flat = clips.reshape((-1, *clips.shape[2:]))
                per_frame = self.image_encoder(self._image_input(flat), training=training)
                per_frame = tf.reshape(per_frame, (rows.size, clips.shape[1], m))
                enc = self.video_encoder(per_frame, training=training)
            outputs[name] = tf.scatter_nd(rows[:, None].astype(np.int32), enc, (n, m))
        mask = tf.convert_to_tensor(batch.mask, tf.float32)
        return self.fusion([*(outputs[name] for name in MODALITIES), mask], training=training)

    # ---- embedding

    def embed(
        self,
        texts: Sequence[str | None] | None = None,
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        audios: Sequence[Any] | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        """Embed aligned lists (``None`` = absent modality): float32 ``[N, dim]``, L2-normalised."""
        lists = [x for x in (texts, images, videos, audios) if x is not None]
        n = len(lists[0]) if lists else 0
        out = np.zeros((n, self.config.dim), np.float32)
        from tqdm import tqdm

        bar = tqdm(total=n, desc="embedding", unit="item", disable=not progress, leave=False)
        for start in range(0, n, batch_size):
            sl = slice(start, min(n, start + batch_size))

            def part(x, sl=sl):
                return None if x is None else list(x[sl])

            batch = self.prepare(part(texts), part(images), part(videos), part(audios))
            out[sl] = np.asarray(self.forward(batch))
            bar.update(sl.stop - sl.start)
        bar.close()
        return out

    def embed_products(
        self, products: Sequence[Any], batch_size: int = 64, progress: bool = False, hide_titles: bool = False
    ) -> np.ndarray:
        """Embed catalogue products with every modality they have (``hide_titles`` drops text)."""
        texts = [None if hide_titles else product_text(p) for p in products]
        return self.embed(
            texts=texts,
            images=[p.image for p in products],
            videos=[p.video for p in products],
            audios=[p.audio for p in products],
            batch_size=batch_size,
            progress=progress,
        )

    def embed_queries(
        self, queries: Sequence[Any], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Embed labelled queries (their text and/or media)."""
        return self.embed(
            texts=[q.text for q in queries],
            images=[q.image for q in queries],
            videos=[q.video for q in queries],
            audios=[q.audio for q in queries],
            batch_size=batch_size,
            progress=progress,
        )


def product_text(product: Any) -> str:
    """The text a product is embedded with: its title, then its category."""
    parts = [product.title or ""]
    if getattr(product, "category", "") and product.category.lower() not in (product.title or "").lower():
        parts.append(product.category)
    return " ".join(p for p in parts if p).strip()


def preprocess_image_for(towers: Towers, image: Any) -> np.ndarray:
    """float32 image tensor exactly as the towers' image encoder sees it (no backbone)."""
    rgb = load_image(image) if isinstance(image, (str, os.PathLike)) else as_rgb(image)
    return preprocess_image(rgb, towers.config.preprocess.image)


__all__ = ["MODALITIES", "PreparedBatch", "Towers", "TowersConfig", "iter_chunks", "product_text"]
