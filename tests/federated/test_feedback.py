"""The on-device pick log that federated personalisation trains from."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.sdk.errors import CorruptArtifactError, InvalidInputError, SpaceMismatchError
from edgeshelf.sdk.feedback import FeedbackLog, FeedbackOptions
from edgeshelf.sdk.results import Embedding


def _emb(value: float, space: str = "space-a") -> Embedding:
    return Embedding(np.full(4, value, np.float32), space)


def test_picks_persist_in_order_and_the_log_is_bounded(tmp_path):
    path = tmp_path / "picks.npz"
    with FeedbackLog.open(path, FeedbackOptions(max_records=3)) as log:
        for i in range(5):
            log.record(_emb(i), f"p{i}")
        assert len(log) == 3
    vectors, ids = FeedbackLog.open(path).arrays()
    assert ids == ["p2", "p3", "p4"]
    np.testing.assert_allclose(vectors[:, 0], [2, 3, 4])


def test_clear_forgets_everything_on_disk(tmp_path):
    path = tmp_path / "picks.npz"
    log = FeedbackLog.open(path)
    log.record(_emb(1), "p1")
    log.clear()
    log.close()
    log.close()  # idempotent
    reopened = FeedbackLog.open(path)
    assert len(reopened) == 0 and reopened.space_id is None


def test_picks_of_another_space_are_refused_with_both_ids(tmp_path):
    log = FeedbackLog.open(tmp_path / "picks.npz")
    log.record(_emb(1, "aaaa"), "p1")
    with pytest.raises(SpaceMismatchError, match="bbbb != expected space aaaa"):
        log.record(_emb(1, "bbbb"), "p2")


@pytest.mark.parametrize(("kwargs", "phrase"), [({"max_records": 0}, "max_records")])
def test_bad_options(tmp_path, kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        FeedbackLog.open(tmp_path / "x.npz", FeedbackOptions(**kwargs))


def test_empty_product_id_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="product_id"):
        FeedbackLog.open(tmp_path / "x.npz").record(_emb(1), "")


def test_a_corrupt_log_names_the_file_and_the_remedy(tmp_path):
    path = tmp_path / "picks.npz"
    path.write_bytes(b"not an npz file")
    with pytest.raises(CorruptArtifactError, match="delete it"):
        FeedbackLog.open(path)
