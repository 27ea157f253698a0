"""The hook between the bridge and the SDK's speaker pipeline.

``edgeshelf bridge`` builds its :class:`~edgeshelf.firmware_bridge.host.QueryHandler` through
:func:`make_speaker_handler` (from ``--bundle``, ``--shard``, ``--asr-engine``, ``--asr-model``,
``--k``), or, with ``--handler MODULE:FUNCTION``, through any factory taking the same argparse
namespace (a firmware author's stand-in, a test's recogniser).

The SDK is imported lazily, so the bridge's protocol side runs on a device (or a CI box)
without it; a missing SDK app module is reported as :class:`MissingDependencyError`.
"""

from __future__ import annotations

import argparse
import importlib
import time
from typing import Any

import numpy as np
from edgeshelf.firmware_bridge.host import BridgeAnswer, QueryHandler
from edgeshelf.firmware_bridge.messages import ShardState, ShardStatus
from edgeshelf.sdk.errors import InvalidInputError, MissingDependencyError


def answer_from_sdk(answer: Any) -> BridgeAnswer:
    """An ``edgeshelf.sdk.apps.Answer`` -> :class:`BridgeAnswer` (ids, scores, titles, transcript)."""
    hits = tuple(answer.result.hits)
    transcript = getattr(answer.transcript, "text", None) or answer.query
    return BridgeAnswer(
        ids=tuple(h.product_id for h in hits),
        scores=tuple(float(h.score) for h in hits),
        titles=tuple(h.title for h in hits),
        transcript=transcript,
    )


class SdkSpeakerHandler:
    """Answers spoken queries with an ``edgeshelf.sdk.apps.SpeakerApp`` (owned: closed with it).

    Audio contract: int16 mono at any rate (the app resamples to 16 kHz for the recogniser).
    Errors the SDK raises on purpose (no speech, low confidence) become error answers.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._closed = False

    def answer_audio(self, pcm16: np.ndarray, sample_rate: int) -> BridgeAnswer:
        return answer_from_sdk(self.app.answer_audio(pcm16, sample_rate))

    def shard_status(self) -> ShardStatus | None:
        shard = getattr(self.app.searcher, "shard", None)
        if shard is None:
            return None
        created = float(getattr(getattr(shard, "info", None), "created", 0.0) or 0.0)
        age = int(max(0.0, time.time() - created)) if created else 0
        return ShardStatus(int(ShardState.READY), int(shard.count), min(age, 0xFFFFFFFF), str(shard.space_id))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.app.close()


def make_speaker_handler(args: argparse.Namespace) -> QueryHandler:
    """The SDK speaker pipeline as a bridge handler: ``args.bundle`` (required), ``args.shard``,
    ``args.asr_engine``, ``args.asr_model``, ``args.k``.

    Raises :class:`MissingDependencyError` when ``edgeshelf.sdk.apps`` (or what it needs) is
    not installed, :class:`InvalidInputError` without ``--bundle``.
    """
    if not getattr(args, "bundle", None):
        raise InvalidInputError(
            "edgeshelf bridge needs --bundle PATH (a speaker bundle) and --shard PATH to answer queries, "
            "or --handler MODULE:FUNCTION for a handler of your own"
        )
    try:
        apps = importlib.import_module("edgeshelf.sdk.apps")
    except ImportError as exc:
        raise MissingDependencyError(
            f"the SDK's speaker app (edgeshelf.sdk.apps) cannot be imported ({exc}); install the device "
            "extra (pip install 'edgeshelf[device]') or pass --handler MODULE:FUNCTION"
        ) from exc
    options = apps.AppOptions(
        k=int(getattr(args, "k", 3)),
        asr_engine=getattr(args, "asr_engine", "pocketsphinx"),
        asr_model=getattr(args, "asr_model", None),
    )
    app = apps.SpeakerApp.open(args.bundle, shard=getattr(args, "shard", None), options=options)
    return SdkSpeakerHandler(app)


def load_handler_factory(spec: str):
    """``"package.module:function"`` -> the function (for ``--handler``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInputError(f"--handler must look like package.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(f"--handler {spec}: cannot import {module_name} ({exc})") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InvalidInputError(f"--handler {spec}: {module_name} has no callable {attr!r}")
    return factory
