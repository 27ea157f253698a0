"""The on-device query encoder: raw text / image / video / audio -> one :class:`Embedding`.

Input contract (what :meth:`QueryEncoder.embed` takes; any non-empty combination):

* ``text``: ``str`` (speech goes through ASR to text first, in the apps);
* ``image``: uint8 ``[H, W, 3]`` **RGB** (OpenCV frames are BGR: convert with
  ``cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)`` first), or a path to an image file;
* ``video``: uint8 ``[F, H, W, 3]`` RGB frames (any F >= 1; the bundle's frame count is sampled
  evenly), or a path to a video file;
* ``audio``: float32 mono samples at 16 kHz in ``[-1, 1]`` (non-speech sound for the audio
  tower), or a path to a WAV file (resampled to 16 kHz).

Preprocessing is :mod:`edgeshelf.sdk.preprocess` with the bundle's settings (the same code the
host towers use), so host and device feed identical tensors. The image model takes the uint8
crop directly when its input is uint8 with scale 1/255 (int8 bundles); a float model gets
``pixels / 255``. With a pretrained backbone the crop goes through the backbone, then the head.
The output is the fusion tower's vector, re-normalised in float32 (metric: inner product). A
bundle converted with a federated query adapter (``edgeshelf convert --adapter``) runs it after
the fusion tower: ``normalize(q + W q + b)``, in the same space.

Example::

    with QueryEncoder.open("bundles/glasses", EncoderOptions(num_threads=2)) as encoder:
        emb = encoder.embed(text="red running shoes", image=rgb_frame)
        print(emb, emb.timings_ms["total"])
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.bundle import Bundle, Manifest
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.litert import INTERPRETERS, ModelRunner
from edgeshelf.sdk.preprocess import (
    PreprocessConfig,
    as_rgb,
    load_audio,
    load_image,
    log_mel,
    read_video_frames,
    resize_center_crop,
    sample_frames,
    tokenize,
)
from edgeshelf.sdk.results import Embedding

MODALITIES: tuple[str, ...] = ("text", "image", "video", "audio")  # fusion input / mask order


@dataclass(frozen=True)
class EncoderOptions:
    """How a bundle is run.

    ``num_threads``: interpreter threads per model (``None``: the profile's ``threads``).
    ``use_xnnpack``: LiteRT's XNNPACK CPU delegate (on by default). ``interpreters``: the
    fallback order. ``verify``: check every file's sha256 at open. ``expected_space_id``: refuse
    a bundle from another embedding space.
    """

    num_threads: int | None = 1
    use_xnnpack: bool = True
    interpreters: tuple[str, ...] = INTERPRETERS
    verify: bool = True
    expected_space_id: str | None = None

    def __post_init__(self) -> None:
        if self.num_threads is not None and self.num_threads < 1:
            raise InvalidInputError(
                f"EncoderOptions.num_threads must be >= 1 or None, got {self.num_threads}"
            )


@dataclass(frozen=True)
class PreparedQuery:
    """The tensors a query feeds the models, before quantization (``None`` = absent).

    ``token_ids`` int32 ``[max_tokens]``; ``image`` uint8 ``[S, S, 3]`` RGB; ``video`` uint8
    ``[F, S, S, 3]`` RGB; ``audio`` float32 ``[frames, n_mels]`` log-mel. ``S`` is the image
    model's input size (the backbone's, when there is one).
    """

    token_ids: np.ndarray | None = None
    image: np.ndarray | None = None
    video: np.ndarray | None = None
    audio: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        present = {"text": self.token_ids, "image": self.image, "video": self.video, "audio": self.audio}
        return tuple(m for m in MODALITIES if present[m] is not None)

    def tensor(self, modality: str) -> np.ndarray | None:
        return self.token_ids if modality == "text" else getattr(self, modality)


class QueryEncoder:
    """Runs a bundle: one interpreter per model, created at open and reused (see module doc)."""

    def __init__(self, bundle: Bundle, runners: dict[str, ModelRunner], options: EncoderOptions) -> None:
        self._bundle: Bundle | None = bundle
        self._runners = runners
        self.options = options
        manifest = bundle.manifest
        self.manifest: Manifest = manifest
        self.preprocess = PreprocessConfig.from_dict(manifest.preprocess)
        self.modalities: tuple[str, ...] = tuple(m for m in MODALITIES if m in manifest.modalities)
        fusion = runners["fusion"]
        self._mdim = {s.name: int(np.prod(s.shape[1:])) for s in fusion.inputs if s.name in MODALITIES}
        self._zeros = {name: np.zeros(dim, np.float32) for name, dim in self._mdim.items()}
        self._mask = np.zeros(len(MODALITIES), np.float32)
        if "image_backbone" in runners:
            shape = runners["image_backbone"].inputs[0].shape
            self.image_size = int(shape[1])
        elif "image" in runners:
            self.image_size = int(runners["image"].inputs[0].shape[1])
        else:
            self.image_size = self.preprocess.image.size
        self.frames = (
            int(runners["video"].inputs[0].shape[1]) if "video" in runners else self.preprocess.video.frames
        )
        self._frame_out = (
            np.zeros((self.frames, self._mdim.get("image", 0)), np.float32) if "video" in runners else None
        )

    # ---- construction

    @classmethod
    def open(cls, bundle_path: str | os.PathLike[str], options: EncoderOptions | None = None) -> QueryEncoder:
        """Open a bundle folder or archive and create every model's interpreter."""
        options = options or EncoderOptions()
        bundle = Bundle.open(bundle_path, verify=options.verify, expected_space_id=options.expected_space_id)
        threads = options.num_threads or int(bundle.manifest.runtime.get("num_threads", 1))
        runners: dict[str, ModelRunner] = {}
        try:
            for role, spec in bundle.manifest.models.items():
                runners[role] = ModelRunner.open(
                    bundle.model_path(role),
                    spec,
                    num_threads=threads,
                    use_xnnpack=options.use_xnnpack,
                    interpreters=options.interpreters,
                )
        except BaseException:
            for runner in runners.values():
                runner.close()
            bundle.close()
            raise
        return cls(bundle, runners, options)

    @classmethod
    def create_from_bundle(
        cls, bundle_path: str | os.PathLike[str], options: EncoderOptions | None = None
    ) -> QueryEncoder:
        """Same as :meth:`open` (MediaPipe-style name)."""
        return cls.open(bundle_path, options)

    # ---- properties

    @property
    def space_id(self) -> str:
        return self.manifest.space_id

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def profile_name(self) -> str:
        return self.manifest.profile_name

    @property
    def path(self) -> Path:
        return self._open_bundle().source

    @property
    def interpreter_names(self) -> dict[str, str]:
        """Which interpreter runs each model (``ai_edge_litert``, ``tflite_runtime``, ...)."""
        return {role: r.interpreter_name for role, r in self._runners.items()}

    def runner(self, role: str) -> ModelRunner:
        """The :class:`ModelRunner` of one model (``text``, ``image``, ``fusion``, ...)."""
        self._open_bundle()
        if role not in self._runners:
            raise InvalidInputError(
                f"bundle {self.path} (profile {self.profile_name!r}) has no {role!r} model; "
                f"it has {sorted(self._runners)}"
            )
        return self._runners[role]

    # ---- preprocessing

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            raise InvalidInputError(
                f"the {self.profile_name!r} bundle {self.path} takes {', '.join(self.modalities)} queries, "
                f"not {modality}: use a bundle converted with a profile that includes {modality} "
                f"(edgeshelf convert --profile ...)"
            )

    def _crop(self, image: Any) -> np.ndarray:
        rgb = load_image(image) if isinstance(image, (str, os.PathLike)) else as_rgb(image)
        return resize_center_crop(rgb, self.image_size)

    def prepare_inputs(
        self,
        text: str | None = None,
        image: Any = None,
        video: Any = None,
        audio: Any = None,
    ) -> PreparedQuery:
        """Preprocess raw inputs into the tensors the models are fed (see :class:`PreparedQuery`)."""
        self._open_bundle()
        timings: dict[str, float] = {}
        if text is not None and not isinstance(text, str):
            raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
        given = {"text": bool(text and text.strip()), "image": image is not None}
        given |= {"video": video is not None, "audio": audio is not None}
        if not any(given.values()):
            raise InvalidInputError("nothing to embed: pass at least one of text, image, video, audio")
        for modality, present in given.items():
            if present:
                self._require(modality)
        token_ids = crop = clip = mel = None
        if given["text"]:
            t0 = time.perf_counter()
            token_ids = tokenize(text, self.preprocess.text)
            timings["tokenize"] = (time.perf_counter() - t0) * 1e3
        if image is not None:
            t0 = time.perf_counter()
            crop = self._crop(image)
            timings["image_preprocess"] = (time.perf_counter() - t0) * 1e3
        if video is not None:
            t0 = time.perf_counter()
            frames = (
                read_video_frames(video, self.preprocess.video)
                if isinstance(video, (str, os.PathLike))
                else sample_frames(_frames_of(video), self.frames)
            )
            if len(frames) != self.frames:
                frames = sample_frames(frames, self.frames)
            clip = np.stack([resize_center_crop(f, self.image_size) for f in frames])
            timings["video_preprocess"] = (time.perf_counter() - t0) * 1e3
        if audio is not None:
            t0 = time.perf_counter()
            samples = (
                load_audio(audio, self.preprocess.audio)
                if isinstance(audio, (str, os.PathLike))
                else _samples_of(audio)
            )
            mel = log_mel(samples, self.preprocess.audio)
            timings["audio_preprocess"] = (time.perf_counter() - t0) * 1e3
        return PreparedQuery(token_ids, crop, clip, mel, timings)

    # ---- models

    def _image_features(self, crop: np.ndarray) -> np.ndarray:
        """One uint8 crop -> image-encoder output (float32 [m], runner-owned buffer)."""
        head = self._runners["image"]
        backbone = self._runners.get("image_backbone")
        if backbone is not None:
            spec = backbone.inputs[0]
            if spec.dtype == "uint8":
                backbone.set_input_raw(spec.name, crop)
            else:
                backbone.set_pixels(spec.name, crop)
            backbone.invoke()
            head.set_input(head.inputs[0].name, backbone.output())
        else:
            head.set_pixels(head.inputs[0].name, crop)
        head.invoke()
        return head.output().reshape(-1)

    def encode(self, modality: str, tensor: np.ndarray) -> np.ndarray:
        """Run one modality's encoder on a prepared tensor: float32 ``[m]`` (a copy).

        ``tensor`` is as in :class:`PreparedQuery` (video runs the image model per frame, then
        the video model).
        """
        self._open_bundle()
        self._require(modality)
        if modality == "text":
            runner = self._runners["text"]
            runner.set_input(runner.inputs[0].name, tensor)
        elif modality == "image":
            return self._image_features(tensor).copy()
        elif modality == "video":
            for i, frame in enumerate(tensor):
                self._frame_out[i] = self._image_features(frame)
            runner = self._runners["video"]
            runner.set_input(runner.inputs[0].name, self._frame_out)
        else:
            runner = self._runners["audio"]
            runner.set_input(runner.inputs[0].name, tensor)
        runner.invoke()
        return runner.output().reshape(-1).copy()

    def fuse(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """Fusion of encoder outputs (``{modality: float32 [m]}``; absent = missing key), then
        the query adapter where the bundle has one: float32 ``[dim]``, L2-normalised."""
        self._open_bundle()
        fusion = self._runners["fusion"]
        self._mask[:] = 0.0
        for i, modality in enumerate(MODALITIES):
            if modality in parts:
                self._mask[i] = 1.0
                fusion.set_input(modality, parts[modality])
            elif modality in self._zeros:
                fusion.set_input_zeros(modality)
        fusion.set_input("mask", self._mask)
        fusion.invoke()
        vector = fusion.output().reshape(-1).astype(np.float32, copy=True)
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        adapter = self._runners.get("adapter")
        if adapter is not None:
            adapter.set_input(adapter.inputs[0].name, vector[None, :])
            adapter.invoke()
            vector = adapter.output().reshape(-1).astype(np.float32, copy=True)
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                vector /= norm
        return vector

    # ---- embedding

    def embed(
        self,
        text: str | None = None,
        image: Any = None,
        audio: Any = None,
        video: Any = None,
    ) -> Embedding:
        """Embed one query from any non-empty combination of modalities (see module doc).

        ``timings_ms`` has ``"tokenize"`` and one entry per present modality (``"text"``,
        ``"image"``, ``"video"``, ``"audio"``: preprocessing plus model), ``"fusion"`` and
        ``"total"``. Raises :class:`InvalidInputError` for a modality the bundle lacks.
        """
        t_start = time.perf_counter()
        prepared = self.prepare_inputs(text=text, image=image, video=video, audio=audio)
        timings = (
            {"tokenize": prepared.timings_ms.get("tokenize", 0.0)} if prepared.token_ids is not None else {}
        )
        parts: dict[str, np.ndarray] = {}
        for modality in prepared.modalities:
            t0 = time.perf_counter()
            parts[modality] = self.encode(modality, prepared.tensor(modality))
            pre = prepared.timings_ms.get(f"{modality}_preprocess", 0.0)
            timings[modality] = (time.perf_counter() - t0) * 1e3 + pre
        t0 = time.perf_counter()
        vector = self.fuse(parts)
        timings["fusion"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        return Embedding(vector, self.space_id, prepared.modalities, timings)

    def embed_batch(
        self,
        texts: Sequence[str | None] | None = None,
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        audios: Sequence[Any] | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Embed aligned lists (``None`` = absent), one query at a time: float32 ``[N, dim]``."""
        lists = [x for x in (texts, images, videos, audios) if x is not None]
        if not lists:
            raise InvalidInputError("nothing to embed: pass at least one of texts, images, videos, audios")
        n = len(lists[0])
        if any(len(x) != n for x in lists):
            raise InvalidInputError(f"inputs must have equal lengths, got {[len(x) for x in lists]}")
        from tqdm import tqdm

        out = np.zeros((n, self.dim), np.float32)
        for i in tqdm(range(n), desc="embedding", unit="query", disable=not progress, leave=False):
            out[i] = self.embed(
                text=texts[i] if texts is not None else None,
                image=images[i] if images is not None else None,
                video=videos[i] if videos is not None else None,
                audio=audios[i] if audios is not None else None,
            ).vector
        return out

    # ---- lifecycle

    def _open_bundle(self) -> Bundle:
        if self._bundle is None:
            raise InvalidInputError("the query encoder is closed")
        return self._bundle

    def close(self) -> None:
        """Release the interpreters (and an extracted archive); safe to call twice."""
        for runner in self._runners.values():
            runner.close()
        if self._bundle is not None:
            self._bundle.close()
            self._bundle = None

    def __enter__(self) -> QueryEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._bundle is None else f"{len(self._runners)} models"
        return (
            f"QueryEncoder(profile={self.profile_name}, space={self.space_id}, "
            f"modalities={'+'.join(self.modalities)}, quant={self.manifest.quantization}, {state})"
        )


def _frames_of(video: Any) -> Any:
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[-1] not in (3, 4):
            raise InvalidInputError(
                f"video must be uint8 [F, H, W, 3] RGB frames, got shape {list(video.shape)}"
            )
        return video
    if isinstance(video, (list, tuple)):
        return video
    raise InvalidInputError(
        f"video must be a numpy array of frames or a file path, got {type(video).__name__}"
    )


def _samples_of(audio: Any) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.dtype.kind != "f":
        raise InvalidInputError(
            f"audio must be float32 samples in [-1, 1] at 16 kHz, got dtype {samples.dtype}; "
            "convert int16 PCM with edgeshelf.sdk.preprocess.pcm16_to_float"
        )
    if samples.ndim != 1:
        raise InvalidInputError(f"audio must be mono [N] samples, got shape {list(samples.shape)}")
    if samples.size == 0:
        raise InvalidInputError("audio has no samples")
    return samples.astype(np.float32, copy=False)


__all__ = ["EncoderOptions", "PreparedQuery", "QueryEncoder"]
