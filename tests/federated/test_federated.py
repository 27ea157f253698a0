"""Federated personalisation: the maths (FedAvg, the seed's local step, DP accounting), the
adapter's gradients, and a real Flower simulation with a crashing and a malformed client."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.towers.federated import (
    FederatedOptions,
    adapter_loss_and_grads,
    apply_adapter,
    check_adapter,
    federated_average,
    gaussian_dp_epsilon,
    identity_adapter,
    local_step,
    make_clients,
    recall_at_k,
    simulate,
    train_adapter,
)


def test_fedavg_of_known_arrays_is_the_weighted_average():
    a = [np.array([[1.0, 2.0]], np.float32), np.array([0.0], np.float32)]
    b = [np.array([[3.0, 6.0]], np.float32), np.array([4.0], np.float32)]
    avg = federated_average([(a, 1), (b, 3)])
    np.testing.assert_allclose(avg[0], [[2.5, 5.0]])
    np.testing.assert_allclose(avg[1], [3.0])
    # equal counts: plain mean
    np.testing.assert_allclose(federated_average([(a, 2), (b, 2)])[0], [[2.0, 4.0]])


@pytest.mark.parametrize("bad", [[], [([np.zeros(1)], 0)]])
def test_fedavg_rejects_empty_or_weightless_rounds(bad):
    with pytest.raises(InvalidInputError):
        federated_average(bad)


@pytest.mark.parametrize(
    ("local", "glob", "eta", "expected"),
    [(0.0, 10.0, 1.0, 10.0), (0.0, 10.0, 0.0, 0.0), (2.0, 10.0, 0.25, 4.0), (-4.0, 4.0, 0.5, 0.0)],
)
def test_local_step_formula(local, glob, eta, expected):
    out = local_step([np.full(3, local, np.float32)], [np.full(3, glob, np.float32)], eta)
    np.testing.assert_allclose(out[0], expected)


def test_local_step_rejects_eta_outside_unit_interval():
    with pytest.raises(InvalidInputError, match="eta"):
        local_step([np.zeros(2)], [np.zeros(2)], 1.5)


def test_identity_adapter_leaves_queries_unchanged():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(apply_adapter(identity_adapter(8), q), q, atol=1e-6)


def test_adapter_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    dim = 6
    w = [rng.normal(scale=0.1, size=(dim, dim)).astype(np.float64), rng.normal(scale=0.1, size=dim)]
    q = rng.normal(size=(4, dim))
    products = rng.normal(size=(7, dim))
    targets = np.array([0, 3, 6, 2])
    _, grads = adapter_loss_and_grads(w, q, targets, products, tau=0.5)
    eps = 1e-5
    for which, index in [(0, (1, 2)), (0, (4, 0)), (1, (3,))]:
        plus = [x.copy() for x in w]
        minus = [x.copy() for x in w]
        plus[which][index] += eps
        minus[which][index] -= eps
        numeric = (
            adapter_loss_and_grads(plus, q, targets, products, 0.5)[0]
            - adapter_loss_and_grads(minus, q, targets, products, 0.5)[0]
        ) / (2 * eps)
        analytic = grads[which][index]
        assert numeric == pytest.approx(analytic, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(
    ("weights", "phrase"),
    [
        ([np.zeros((4, 3)), np.zeros(4)], "expected shapes"),
        ([np.zeros((4, 4))], "expected 2 arrays"),
        ([np.full((4, 4), np.nan), np.zeros(4)], "NaN"),
    ],
)
def test_updates_of_the_wrong_shape_or_non_finite_are_rejected(weights, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        check_adapter(weights, 4, "node 7")


def test_dp_epsilon_grows_with_rounds_and_shrinks_with_noise():
    assert math.isinf(gaussian_dp_epsilon(0.0, 5))
    assert gaussian_dp_epsilon(1.0, 10) > gaussian_dp_epsilon(1.0, 5)
    assert gaussian_dp_epsilon(2.0, 5) < gaussian_dp_epsilon(1.0, 5)
    # a known value: z = 1, one round, delta = 1e-5 is about 4.8 under the RDP bound
    assert 4.0 < gaussian_dp_epsilon(1.0, 1) < 5.5


def _synthetic_catalogue(seed: int = 0):
    """Products whose vectors are sums of attribute directions (gender + category + colour)."""
    rng = np.random.default_rng(seed)
    values = {
        "gender": ["men", "women", "boys"],
        "category": ["shirt", "shoe", "bag", "watch"],
        "baseColour": ["black", "red", "blue", "white", "green"],
    }
    direction = {v: rng.normal(size=48) for vs in values.values() for v in vs}
    products, vectors = [], []
    for i in range(300):
        g, c, col = (str(rng.choice(values[k])) for k in ("gender", "category", "baseColour"))
        products.append(SimpleNamespace(id=f"p{i}", category=c, attributes={"gender": g, "baseColour": col}))
        v = direction[g] + direction[c] + direction[col] + 0.8 * rng.normal(size=48)
        vectors.append(v / np.linalg.norm(v))

    def embed(texts):
        out = [sum(direction[w] for w in t.split()) + 0.3 * rng.normal(size=48) for t in texts]
        return np.asarray([v / np.linalg.norm(v) for v in out], np.float32)

    return products, np.asarray(vectors, np.float32), embed


def test_local_training_learns_a_household_preference():
    products, vectors, embed = _synthetic_catalogue()
    (client,) = make_clients(products, embed, clients=1, picks=150, seed=3)
    before = recall_at_k(None, client.test_queries, client.test_targets, vectors)
    trained, _ = train_adapter(
        identity_adapter(48), client.train_queries, client.train_targets, vectors, epochs=8
    )
    after = recall_at_k(trained, client.test_queries, client.test_targets, vectors)
    assert after > before + 0.2, (before, after)


def test_make_clients_names_missing_attributes():
    products, _, embed = _synthetic_catalogue()
    with pytest.raises(InvalidInputError, match="--group-by"):
        make_clients(products, embed, group_key="brand")


@pytest.mark.slow
def test_flower_simulation_survives_a_crashing_and_a_malformed_client():
    products, vectors, embed = _synthetic_catalogue()
    clients = make_clients(products, embed, clients=4, picks=90, seed=1)
    report = simulate(
        vectors,
        clients,
        FederatedOptions(rounds=2, eta=1.0, local_epochs=3),
        faults={1: "crash", 2: "bad-shape"},
        progress=False,
    )
    # both faulty round-1 replies were dropped, and said so
    assert any("failed" in r for r in report.failed_clients), report.failed_clients
    assert any("expected shapes" in r for r in report.failed_clients), report.failed_clients
    final = check_adapter(report.final_global, 48, "final")  # finite, right shape
    assert np.abs(final[0]).sum() > 0  # training happened
    # round 2 reports every client, and the global adapter beats the frozen towers on held-out picks
    assert set(report.rounds[-1].clients) == {c.name for c in clients}
    base = np.mean(list(report.baseline_recall.values()))
    glob = np.mean([recall_at_k(final, c.test_queries, c.test_targets, vectors) for c in clients])
    assert glob > base, (base, glob)
    assert report.parameters == 48 * 48 + 48 and report.bytes_per_round_per_client == 4 * report.parameters
