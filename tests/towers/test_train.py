"""Contrastive training on the small sample catalogue: it learns, resumes, saves a self-describing folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError
from edgeshelf.towers.evaluate import evaluate
from edgeshelf.towers.model import Towers
from edgeshelf.towers.train import CHECKPOINT_DIR, TrainOptions, noisy_text, train

from tests.fixtures_towers import tiny_config, tiny_options


def _text_queries(catalogue, kinds=("clean",)):
    return [q for q in catalogue.queries if q.kind in kinds]


def test_training_reduces_the_loss(tiny_towers):
    history = tiny_towers.train.history
    assert len(history) == tiny_towers.train.options.epochs
    assert history[-1].loss < 0.6 * history[0].loss
    assert {"T-P", "I-T", "I-P"} <= set(history[-1].tasks)
    assert 0.01 <= history[-1].temperature <= 1.0


def _hit_at_10(towers, catalogue, queries):
    """Share of queries with a relevant product among the top 10 (full products)."""
    ids = [p.id for p in catalogue.products]
    scores = towers.embed_queries(queries) @ towers.embed_products(catalogue.products).T
    return np.mean(
        [any(q.relevant.get(ids[j], 0) for j in np.argsort(-row)[:10]) for q, row in zip(queries, scores)]
    )


def test_training_beats_untrained_towers_on_text_queries(tiny_towers, untrained_towers):
    catalogue = tiny_towers.catalogue
    queries = _text_queries(catalogue)
    trained = evaluate(tiny_towers.towers, catalogue, queries).kind("clean")
    untrained = evaluate(untrained_towers, catalogue, queries).kind("clean")
    assert trained.mrr > untrained.mrr + 0.3
    assert trained.ndcg_at_10 > untrained.ndcg_at_10 + 0.2
    # other rooms' end-to-end tests rely on this: a text query finds a relevant product in the top 10
    assert _hit_at_10(tiny_towers.towers, catalogue, queries) >= 0.8


def test_image_queries_find_the_product(tiny_towers):
    report = evaluate(tiny_towers.towers, tiny_towers.catalogue, tiny_towers.catalogue.queries_of("image"))
    assert report.kind("image").mrr > 0.3


def test_saved_folder_describes_itself(tiny_towers):
    meta = json.loads((tiny_towers.path / "towers.json").read_text())
    assert {"format", "format_version", "space_id", "config", "versions", "training", "weights"} <= set(meta)
    assert meta["space_id"] == tiny_towers.towers.space_id == tiny_towers.train.towers.space_id
    training = meta["training"]
    assert {"options", "seconds", "final_loss", "catalogue_fingerprint", "epochs_done", "history"} <= set(
        training
    )
    assert training["options"]["seed"] == 0
    assert training["completed"] is True
    assert not (tiny_towers.path / CHECKPOINT_DIR).exists()  # a finished run leaves no checkpoint
    assert {"keras", "tensorflow", "edgeshelf"} <= set(meta["versions"])


@pytest.fixture(scope="module")
def small_products(sample_catalogue):
    """32 products (every one with an image; 8 with video or audio) for quick runs."""
    products = [p for p in sample_catalogue.products if p.video or p.audio][:8]
    return products + [p for p in sample_catalogue.products if not (p.video or p.audio)][:24]


def _quick(**changes):
    return tiny_options(**{"epochs": 2, "text_warmup_epochs": 0, "batch_size": 16, **changes})


def test_resume_from_a_checkpoint_continues_exactly(small_products, tmp_path):
    straight = train(small_products, _quick(), config=tiny_config(), progress=False)
    out = tmp_path / "towers"
    opts = _quick(checkpoint_dir=str(out / CHECKPOINT_DIR))
    first = train(
        small_products, opts, config=tiny_config(), progress=False, on_epoch=lambda log: log.epoch < 1
    )
    assert not first.completed and first.epochs_done == 1
    state = json.loads((out / CHECKPOINT_DIR / "state.json").read_text())
    assert state["epochs_done"] == 1 and state["steps_done"] == first.steps_done
    resumed = train(small_products, opts, resume_from=out, progress=False)
    assert resumed.completed and resumed.epochs_done == 2
    assert [h.epoch for h in resumed.history] == [1, 2]
    assert resumed.history[0].loss == first.history[0].loss
    assert resumed.steps_done == straight.steps_done
    # the same weights as an uninterrupted run: the same space id
    assert resumed.towers.space_id == straight.towers.space_id
    resumed.save(out)
    assert Towers.load(out).space_id == straight.towers.space_id


def test_time_limit_stops_early_keeps_the_checkpoint_and_resume_finishes(small_products, tmp_path):
    out = tmp_path / "towers"
    opts = _quick(max_minutes=1e-6, checkpoint_dir=str(out / CHECKPOINT_DIR))
    stopped = train(small_products, opts, config=tiny_config(), progress=False)
    assert not stopped.completed and stopped.steps_done == 1 and stopped.epochs_done == 0
    stopped.save(out)
    assert (out / CHECKPOINT_DIR / "state.json").is_file()
    assert json.loads((out / "towers.json").read_text())["training"]["completed"] is False
    done = train(
        small_products, _quick(checkpoint_dir=str(out / CHECKPOINT_DIR)), resume_from=out, progress=False
    )
    assert done.completed and done.epochs_done == 2
    done.save(out)
    assert not (out / CHECKPOINT_DIR).exists()


def test_resume_from_a_finished_folder_adds_epochs(small_products, tmp_path):
    out = tmp_path / "towers"
    train(small_products, _quick(epochs=1), config=tiny_config(), progress=False).save(out)
    more = train(small_products, _quick(epochs=2), resume_from=out, progress=False)
    assert more.epochs_done == 2 and len(more.history) == 2


def test_resume_refuses_another_catalogue(small_products, tmp_path):
    out = tmp_path / "towers"
    train(small_products, _quick(epochs=1), config=tiny_config(), progress=False).save(out)
    with pytest.raises(InvalidInputError, match="trained on catalogue"):
        train(small_products[:20], _quick(), resume_from=out, progress=False)
    with pytest.raises(ModelNotFoundError, match="nothing to resume"):
        train(small_products, _quick(), resume_from=tmp_path / "nowhere", progress=False)


def test_training_queries_are_used(small_products):
    from edgeshelf.catalogue.products import LabelledQuery

    queries = [
        LabelledQuery(f"q{i}", "clean", text=p.title, relevant={p.id: 1})
        for i, p in enumerate(small_products)
    ]
    result = train(small_products, _quick(epochs=1), config=tiny_config(), queries=queries, progress=False)
    assert "Q-P" in result.history[-1].tasks and result.queries == len(queries)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"temperature": 5.0}, "temperature must be in"),
        ({"modality_dropout": 1.0}, "modality_dropout must be in [0, 1)"),
        ({"max_minutes": 0}, "max_minutes must be > 0"),
    ],
)
def test_bad_options(changes, phrase):
    with pytest.raises(InvalidInputError) as err:
        TrainOptions(**changes)
    assert phrase in str(err.value)


def test_empty_catalogue_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="has no products"):
        train([], TrainOptions(), progress=False)


def test_noisy_text_is_seeded():
    a = noisy_text("navy blue men shirts", np.random.default_rng(3))
    b = noisy_text("navy blue men shirts", np.random.default_rng(3))
    assert a == b and a
