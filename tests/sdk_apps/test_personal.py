"""The device's own query adapter: trained on its user's picks, on the device, applied before search."""

from __future__ import annotations

import stat

import numpy as np
import pytest
from edgeshelf.sdk import AppOptions, InvalidInputError, SpaceMismatchError, SpeakerApp
from edgeshelf.sdk.adapter import PersonalAdapter, save_adapter

QUERIES = ("red shirt", "blue mug", "black boots", "green scarf")


def _options(tmp_path, **extra):
    return AppOptions(
        k=10,
        policy="local-only",
        feedback_path=str(tmp_path / "picks.npz"),
        personal_adapter_path=str(tmp_path / "personal.npz"),
        **extra,
    )


def test_picks_teach_the_device_what_its_user_wants(speaker_bundle, apps_shard, tmp_path):
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=_options(tmp_path)) as app:
        wanted = {}
        for words in QUERIES:  # this user always wants the 8th product shown
            answer = app.answer_text(words)
            wanted[words] = answer.hits[7].product_id
            for _ in range(6):
                app.pick(answer, wanted[words])
        before = {w: app.answer_text(w).result.ids.index(wanted[w]) for w in QUERIES}
        report = app.personalize(epochs=30, learning_rate=0.02, weight_decay=0.0)
        after = {w: app.answer_text(w).result.ids for w in QUERIES}
    assert report["picks"] == 24 and report["skipped"] == 0
    assert all(rank == 7 for rank in before.values())
    for words in QUERIES:  # each wanted product moved up (or at least stayed in the top 10)
        assert wanted[words] in after[words][:7], (words, after[words])
    mode = stat.S_IMODE((tmp_path / "personal.npz").stat().st_mode)
    assert mode == 0o600  # the user's taste, readable by the owner only
    # a new app on the same device picks the adapter up again
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=_options(tmp_path)) as app:
        assert not app.personal_adapter.is_identity
        assert app.answer_text(QUERIES[0]).result.ids == after[QUERIES[0]]


def test_pulling_toward_the_global_model_forgets_by_eta(speaker_bundle, apps_shard, tmp_path):
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=_options(tmp_path)) as app:
        plain = app.answer_text("red shirt")
        app.pick(plain, plain.hits[5].product_id)
        app.personalize(epochs=20, learning_rate=0.02, weight_decay=0.0)
        personal = app.personal_adapter
        kernel = personal.weights[0].copy()
        personal.pull_toward_global(0.25)
        np.testing.assert_allclose(personal.weights[0], 0.75 * kernel, rtol=1e-5, atol=1e-7)
        personal.pull_toward_global(1.0)
        assert personal.is_identity
        assert app.answer_text("red shirt").result.ids == plain.result.ids


def test_personalize_without_picks_or_settings_says_what_to_do(speaker_bundle, apps_shard, tmp_path):
    with (
        SpeakerApp.open(speaker_bundle, shard=apps_shard, options=_options(tmp_path)) as app,
        pytest.raises(InvalidInputError, match="record picks"),
    ):
        app.personalize()
    options = AppOptions(policy="local-only")
    with (
        SpeakerApp.open(speaker_bundle, shard=apps_shard, options=options) as app,
        pytest.raises(InvalidInputError, match="personal_adapter_path"),
    ):
        app.personalize()


def test_a_personal_adapter_of_another_space_is_refused(speaker_bundle, apps_shard, tmp_path):
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=_options(tmp_path)) as app:
        dim = app.encoder.dim
    save_adapter(
        tmp_path / "personal.npz", [np.eye(dim, dtype=np.float32), np.zeros(dim, np.float32)], "0" * 16
    )
    with pytest.raises(SpaceMismatchError, match="0000000000000000"):
        PersonalAdapter.open(tmp_path / "personal.npz", "f" * 16, dim)
