"""Shared helpers of the converters tests: raw queries from the sample catalogue."""

from __future__ import annotations

from typing import Any

import numpy as np


def raw_queries(catalogue: Any) -> list[dict[str, Any]]:
    """Raw inputs (text, RGB arrays, 16 kHz float audio, RGB frames) of a few catalogue items."""
    from edgeshelf.sdk.preprocess import AudioConfig, VideoConfig, load_audio, load_image, read_video_frames

    products = list(catalogue.products)
    with_audio = [p for p in products if p.audio is not None][:2]
    with_video = [p for p in products if p.video is not None][:2]
    queries: list[dict[str, Any]] = [{"text": products[i].title} for i in range(0, 12, 3)]
    queries += [{"image": load_image(p.image)} for p in products[:3]]
    queries += [{"audio": load_audio(p.audio, AudioConfig())} for p in with_audio]
    queries += [{"video": read_video_frames(p.video, VideoConfig(frames=5))} for p in with_video]
    queries.append({"text": products[5].title, "image": load_image(products[5].image)})
    return queries


def keras_embedding(towers: Any, query: dict[str, Any]) -> np.ndarray:
    """The host towers' embedding of one raw query: float32 [dim]."""
    return towers.embed(
        texts=[query.get("text")],
        images=[query.get("image")],
        videos=[query.get("video")],
        audios=[query.get("audio")],
    )[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
