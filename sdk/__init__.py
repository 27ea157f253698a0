"""edgeshelf.sdk: on-device multimodal product search (no TensorFlow; numpy, LiteRT, OpenCV).

A device app opens a bundle (the quantized encoders) and a shard (the cached catalogue) or a
lookup client, embeds what the user said or showed, and searches::

    from edgeshelf.sdk import QueryEncoder, Shard

    with QueryEncoder.open("speaker.bundle") as encoder, Shard.open("catalogue.shard") as shard:
        embedding = encoder.embed(text="red running shoes")
        for hit in shard.search(embedding, k=5):
            print(hit.product_id, hit.title, round(hit.score, 3))

or, in one line, with the apps (speech-to-text, camera, fusion and fallback included)::

    with open_device("speaker.bundle", shard="catalogue.shard") as device:
        print(device.answer_wav("query.wav").result.ids)

Public names (imported lazily, so ``import edgeshelf.sdk`` is instant and never loads LiteRT,
OpenCV or a speech model):

* encoding: :class:`QueryEncoder`, :class:`EncoderOptions`, :class:`Bundle`
* searching: :class:`Shard`, :class:`LookupClient`, :class:`LookupOptions`,
  :class:`HybridSearcher`, :class:`SearchPolicy`
* capture and speech: :class:`Microphone`, :class:`MicrophoneOptions`, :class:`WavFileSource`, :class:`Camera`,
  :class:`CameraOptions`, :class:`SpeechRecognizer`, :class:`RecognizerOptions`, :class:`Transcript`
* apps: :class:`SpeakerApp`, :class:`GlassesApp`, :class:`HubApp`, :class:`AppOptions`,
  :class:`Answer`, :func:`open_device`
* on-device picks (federated personalisation): :class:`FeedbackLog`, :class:`FeedbackOptions`
* results: :class:`Embedding`, :class:`Hit`, :class:`SearchResult`
* errors: :class:`EdgeshelfError` and its subclasses
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module (relative to edgeshelf.sdk) that defines it
_EXPORTS: dict[str, str] = {
    "QueryEncoder": "encoder",
    "EncoderOptions": "encoder",
    "Bundle": "bundle",
    "Shard": "shard",
    "LookupClient": "lookup",
    "LookupOptions": "lookup",
    "HybridSearcher": "hybrid",
    "SearchPolicy": "hybrid",
    "Microphone": "audio",
    "WavFileSource": "audio",
    "MicrophoneOptions": "audio",
    "Camera": "camera",
    "CameraOptions": "camera",
    "SpeechRecognizer": "asr",
    "RecognizerOptions": "asr",
    "Transcript": "asr",
    "SpeakerApp": "apps",
    "GlassesApp": "apps",
    "HubApp": "apps",
    "AppOptions": "apps",
    "Answer": "apps",
    "NoSpeechError": "apps",
    "open_device": "apps",
    "FeedbackLog": "feedback",
    "FeedbackOptions": "feedback",
    "Embedding": "results",
    "Hit": "results",
    "SearchResult": "results",
    "EdgeshelfError": "errors",
    "InvalidInputError": "errors",
    "SpaceMismatchError": "errors",
    "CorruptArtifactError": "errors",
    "FormatVersionError": "errors",
    "MissingDependencyError": "errors",
    "ModelNotFoundError": "errors",
    "DeviceError": "errors",
    "ServiceError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeshelf.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"edgeshelf.sdk.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
