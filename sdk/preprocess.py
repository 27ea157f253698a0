"""Preprocessing shared by training (host) and inference (device): one implementation, numpy + OpenCV.

Tensor contracts (what the towers and the bundles expect):

* text: ``tokenize(text) -> int32 [max_tokens]``: hashed word unigrams, word bigrams and
  character n-grams, ids in ``[1, buckets)``, 0 = padding. No vocabulary file: any script works
  (CJK runs are split into characters and character bigrams).
* image: ``preprocess_image(rgb) -> float32 [size, size, 3]``, RGB, values in ``[0, 1]``,
  shorter side resized to ``size`` (area interpolation) then centre-cropped.
* audio: ``log_mel(samples) -> float32 [frames, n_mels]``: 16 kHz mono float samples in
  ``[-1, 1]``, 25 ms Hann windows every 10 ms, 512-point FFT, HTK mel filters, natural log,
  then ``(x + 8) / 4`` so values sit near ``[-1, 2]``; padded or cut to ``frames``.
* video: ``read_video_frames(path) -> uint8 [frames, H, W, 3]`` RGB, evenly sampled.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import wave
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError

MIN_IMAGE_SIDE = 8


@dataclass(frozen=True)
class TextConfig:
    """Hashed tokenizer settings: ``buckets`` ids (0 is padding), ``max_tokens`` per text."""

    max_tokens: int = 64
    buckets: int = 16384
    char_ngram: int = 3
    word_bigrams: bool = True


@dataclass(frozen=True)
class ImageConfig:
    """Square RGB input of ``size`` pixels a side, float32 in [0, 1]."""

    size: int = 96


@dataclass(frozen=True)
class AudioConfig:
    """Log-mel front end: 16 kHz mono, ``n_mels`` bands, 10 ms hop, ``max_seconds`` long."""

    sample_rate: int = 16000
    n_mels: int = 40
    n_fft: int = 512
    win_ms: float = 25.0
    hop_ms: float = 10.0
    max_seconds: float = 3.0

    @property
    def frames(self) -> int:
        return int(round(self.max_seconds * 1000.0 / self.hop_ms))

    @property
    def hop(self) -> int:
        return int(self.sample_rate * self.hop_ms / 1000.0)

    @property
    def win(self) -> int:
        return int(self.sample_rate * self.win_ms / 1000.0)


@dataclass(frozen=True)
class VideoConfig:
    """``frames`` evenly sampled frames per clip, each preprocessed like an image."""

    frames: int = 4


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that turns raw input into tensors; part of the space id."""

    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    video: VideoConfig = field(default_factory=VideoConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        try:
            return cls(
                text=TextConfig(**data.get("text", {})),
                image=ImageConfig(**data.get("image", {})),
                audio=AudioConfig(**data.get("audio", {})),
                video=VideoConfig(**data.get("video", {})),
            )
        except TypeError as exc:
            raise InvalidInputError(f"bad preprocessing settings {data!r}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# text

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_RE = re.compile(rf"[{_CJK}]+|[^\W_]+", re.UNICODE)
_CJK_RE = re.compile(rf"^[{_CJK}]+$")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (NFKC); a CJK run becomes its characters."""
    out: list[str] = []
    for match in _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower()):
        if _CJK_RE.match(match):
            out.extend(match)
        else:
            out.append(match)
    return out


def _hash(token: str, buckets: int) -> int:
    return 1 + zlib.crc32(token.encode("utf-8")) % (buckets - 1)


def text_features(text: str, config: TextConfig = TextConfig()) -> list[str]:
    """The string features hashed by :func:`tokenize`: words, then bigrams, then char n-grams."""
    toks = words(text)
    feats = [f"w:{w}" for w in toks]
    if config.word_bigrams:
        feats.extend(f"b:{a} {b}" for a, b in zip(toks, toks[1:]))
    n = config.char_ngram
    for w in toks:
        padded = f"<{w}>"
        if len(padded) > n:
            feats.extend(f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1))
    return feats


def tokenize(text: str, config: TextConfig = TextConfig()) -> np.ndarray:
    """Token ids of ``text``: int32 ``[config.max_tokens]``, zero-padded, never empty of meaning.

    Raises :class:`InvalidInputError` when ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
    ids = np.zeros(config.max_tokens, dtype=np.int32)
    feats = text_features(text, config)[: config.max_tokens]
    for i, feat in enumerate(feats):
        ids[i] = _hash(feat, config.buckets)
    return ids


def tokenize_batch(texts: Sequence[str], config: TextConfig = TextConfig()) -> np.ndarray:
    """Token ids of each text: int32 ``[len(texts), config.max_tokens]``."""
    out = np.zeros((len(texts), config.max_tokens), dtype=np.int32)
    for row, text in enumerate(texts):
        out[row] = tokenize(text, config)
    return out


# --------------------------------------------------------------------------------------------
# images


def _cv2():
    import cv2  # OpenCV is a device dependency; imported lazily so `import sdk` stays light

    return cv2


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 ``[H, W, 3]`` RGB (alpha dropped, grey expanded)."""
    cv2 = _cv2()
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise InvalidInputError(f"image file {path} does not exist")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise InvalidInputError(f"image file {path} is not a readable image (PNG, JPEG, BMP, ...)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check an RGB frame and return it as uint8 ``[H, W, 3]``.

    Accepts uint8 ``[H, W, 3]`` (RGB), ``[H, W, 4]`` (RGBA, alpha dropped) and ``[H, W]`` (grey).
    """
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InvalidInputError(
            f"image dtype must be uint8 (0..255 RGB), got {image.dtype}; convert with "
            "(img * 255).clip(0, 255).astype(np.uint8) if it is float in [0, 1]"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InvalidInputError(f"image must have shape [H, W, 3] (RGB), got {list(image.shape)}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise InvalidInputError(
            f"image is {w}x{h} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed "
            "(was a thumbnail or an empty crop passed?)"
        )
    return np.ascontiguousarray(image)


def resize_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side of a uint8 RGB image to ``size`` and centre-crop: uint8 ``[size, size, 3]``."""
    cv2 = _cv2()
    image = as_rgb(image)
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    top, left = (nh - size) // 2, (nw - size) // 2
    return resized[top : top + size, left : left + size]


def preprocess_image(image: np.ndarray, config: ImageConfig = ImageConfig()) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` -> float32 ``[size, size, 3]`` RGB in ``[0, 1]``."""
    return resize_center_crop(image, config.size).astype(np.float32) * (1.0 / 255.0)


# --------------------------------------------------------------------------------------------
# audio


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file: (float32 mono samples in [-1, 1], sample rate in Hz)."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise InvalidInputError(f"WAV file {path} does not exist") from None
    except (wave.Error, EOFError) as exc:
        raise InvalidInputError(f"{path} is not a PCM WAV file ({exc})") from exc
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise InvalidInputError(f"{path}: {8 * width}-bit WAV is not supported (use 16-bit PCM)")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), rate


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of a mono float signal (FFT method): float32."""
    samples = np.asarray(samples, dtype=np.float32)
    if src_rate == dst_rate or samples.size == 0:
        return samples
    if src_rate <= 0 or dst_rate <= 0:
        raise InvalidInputError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    n_out = int(round(samples.size * dst_rate / src_rate))
    spectrum = np.fft.rfft(samples)
    out = np.fft.irfft(spectrum, n=n_out) * (n_out / samples.size)
    return out.astype(np.float32)


def pcm16_to_float(pcm: bytes | np.ndarray) -> np.ndarray:
    """16-bit little-endian PCM (bytes or int16 array) -> float32 in [-1, 1]."""
    data = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else pcm
    return np.asarray(data, dtype=np.float32) / 32768.0


@functools.lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    mels = np.linspace(hz_to_mel(20.0), hz_to_mel(sample_rate / 2.0), n_mels + 2)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    hz = mel_to_hz(mels)
    filters = np.zeros((n_mels, bins.size), dtype=np.float32)
    for i in range(n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (bins - lo) / max(mid - lo, 1e-9)
        down = (hi - bins) / max(hi - mid, 1e-9)
        filters[i] = np.maximum(0.0, np.minimum(up, down))
    return filters.T.copy()  # [n_fft/2+1, n_mels]


def log_mel(samples: np.ndarray, config: AudioConfig = AudioConfig()) -> np.ndarray:
    """float32 16 kHz mono samples -> float32 ``[config.frames, config.n_mels]`` log-mel."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(samples)):
        raise InvalidInputError("audio samples contain NaN or infinite values")
    win, hop, frames = config.win, config.hop, config.frames
    needed = win + hop * (frames - 1)
    if samples.size < needed:
        samples = np.pad(samples, (0, needed - samples.size))
    else:
        samples = samples[:needed]
    idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
    windowed = samples[idx] * np.hanning(win).astype(np.float32)
    power = np.abs(np.fft.rfft(windowed, n=config.n_fft)) ** 2
    mel = power @ _mel_filters(config.sample_rate, config.n_fft, config.n_mels)
    return ((np.log(mel + 1e-6) + 8.0) / 4.0).astype(np.float32)


def load_audio(path: str | Path, config: AudioConfig = AudioConfig()) -> np.ndarray:
    """A WAV file as float32 mono samples at ``config.sample_rate``."""
    samples, rate = read_wav(path)
    return resample(samples, rate, config.sample_rate)


# --------------------------------------------------------------------------------------------
# video


def sample_frames(frames: Sequence[np.ndarray] | np.ndarray, count: int) -> np.ndarray:
    """``count`` evenly spaced frames (repeating when there are fewer): uint8 ``[count, H, W, 3]``."""
    if len(frames) == 0:
        raise InvalidInputError("video has no frames")
    idx = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return np.stack([as_rgb(np.asarray(frames[i])) for i in idx])


def read_video_frames(path: str | Path, config: VideoConfig = VideoConfig()) -> np.ndarray:
    """Read a video file (or an image-sequence pattern) as uint8 ``[frames, H, W, 3]`` RGB."""
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InvalidInputError(f"video {path} cannot be opened (missing file or codec)")
        frames: list[np.ndarray] = []
        while len(frames) < 10_000:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise InvalidInputError(f"video {path} has no readable frames")
    return sample_frames(frames, config.frames)


def iter_chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
