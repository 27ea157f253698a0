"""Picks recorded by the apps for federated personalisation: on the device, bounded, clearable."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.sdk import AppOptions, FeedbackLog, InvalidInputError, SpeakerApp


def test_picks_are_recorded_locally_and_feed_the_adapter_log(speaker_bundle, apps_shard, tmp_path):
    log_path = tmp_path / "picks.npz"
    options = AppOptions(k=5, policy="local-only", feedback_path=str(log_path), feedback_max_records=2)
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=options) as app:
        answers = [app.answer_text(words) for words in ("red shirt", "blue mug", "black boots")]
        for answer in answers:
            assert app.pick(answer, answer.hits[-1].product_id) is True
        with pytest.raises(InvalidInputError, match="not among this answer's hits"):
            app.pick(answers[0], "no-such-product")
    with FeedbackLog.open(log_path) as log:
        queries, product_ids = log.arrays()
        assert len(log) == 2  # bounded: the oldest pick was dropped
        assert product_ids == [answers[1].hits[-1].product_id, answers[2].hits[-1].product_id]
        np.testing.assert_allclose(queries[1], answers[2].embedding.vector, atol=1e-6)
        log.clear()
        assert len(log) == 0


def test_without_a_feedback_path_nothing_is_recorded(speaker_bundle, apps_shard, tmp_path):
    with SpeakerApp.open(speaker_bundle, shard=apps_shard, options=AppOptions(policy="local-only")) as app:
        answer = app.answer_text("green scarf")
        assert app.pick(answer, answer.best.product_id) is False
    assert list(tmp_path.iterdir()) == []
