"""Privacy: every request the SDK sends during a voice and a camera query carries only the query
embedding, k, the space id and filters: never audio, image or the words of the query."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from edgeshelf.sdk import AppOptions, Camera, CameraOptions, HubApp, LookupOptions, SpeakerApp
from edgeshelf.sdk.lookup import SEARCH_KEYS

from tests.sdk_apps.conftest import VOICE

MEDIA_MAGIC = (b"RIFF", b"WAVE", b"\x89PNG", b"\xff\xd8\xff", b"\x1a\x45\xdf\xa3")  # WAV, PNG, JPEG, Matroska


class Recorder:
    """Keeps every request the lookup client sends (method, path, headers, body bytes)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def __call__(self, request) -> None:
        self.requests.append((request.method, request.url.path, dict(request.headers), request.read()))


def check_bodies(recorder: Recorder, dim: int, forbidden_words: list[str], filters: dict | None) -> None:
    assert recorder.requests, "no request was sent"
    for method, path, headers, body in recorder.requests:
        assert (method, path) == ("POST", "/v1/search")
        payload = json.loads(body)
        assert set(payload) <= set(SEARCH_KEYS), sorted(payload)
        assert payload["k"] == 10 and len(payload["space_id"]) == 16
        assert payload.get("filters") == filters
        raw = base64.b64decode(payload["vector"])
        assert len(raw) == dim * np.dtype(payload["dtype"].replace("int8", "i1")).itemsize
        assert len(body) < 1024, f"a {len(body)}-byte body is more than an embedding"
        lowered = body.lower()
        for word in forbidden_words:
            assert word.lower().encode() not in lowered, f"{word!r} left the device"
        assert not any(magic in body for magic in MEDIA_MAGIC)
        for value in headers.values():
            assert not any(word.lower() in value.lower() for word in forbidden_words)


@pytest.mark.parametrize("filters", [None, {"max_price": 80.0}])
def test_voice_query_sends_only_the_embedding(speaker_bundle, apps_shard, apps_server, espeak_wav, filters):
    recorder = Recorder()
    with SpeakerApp.open(
        speaker_bundle,
        shard=apps_shard,
        remote=apps_server.url,
        token=apps_server.token,
        options=AppOptions(policy="prefer-remote"),
        lookup_options=LookupOptions(on_request=recorder),
    ) as app:
        answer = app.answer_wav(espeak_wav("leather sandals", voice=VOICE), filters=filters)
        dim = app.encoder.dim
    assert answer.result.source == "remote" and answer.transcript.text == "leather sandals"
    check_bodies(recorder, dim, ["leather", "sandals"], filters)


def test_camera_query_sends_only_the_embedding(hub_bundle, apps_shard, apps_server, sample_catalogue):
    recorder = Recorder()
    video = next(p.video for p in sample_catalogue.products if p.video is not None)
    with (
        HubApp.open(
            hub_bundle,
            shard=apps_shard,
            remote=apps_server.url,
            token=apps_server.token,
            lookup_options=LookupOptions(on_request=recorder),
        ) as app,
        Camera.open(CameraOptions(source=str(video))) as camera,
    ):
        answer = app.look(camera, "the same in black")
        dim = app.encoder.dim
    assert answer.result.source == "remote" and answer.modalities == ("text", "image")
    assert list(answer.timings_ms)[0] == "capture"
    check_bodies(recorder, dim, ["black", "same"], None)
