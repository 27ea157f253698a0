"""Federated personalisation of the query side (FedAvg on Flower's Message API).

What is trained on devices is a small **query adapter** after the fusion tower::

    a(q) = normalize(q + W q + b)          W: [dim, dim], b: [dim], initialised to 0 (identity)

Products are never re-embedded, so every shard and the lookup index stay valid and the space id
does not change; the encoders and the fusion tower stay frozen. At ``dim = 128`` the adapter has
16,512 parameters: 66,048 bytes (float32) go each way per client and round.

A device learns from what its user picks: (query embedding, chosen product id) pairs recorded on
the device only (:mod:`edgeshelf.sdk.feedback`). Its local loss is the softmax cross-entropy of the
chosen product among the catalogue vectors it searches (temperature ``tau``).

Rounds follow the seed:

* server: ``M_glob = sum_i n_i M_loc^i / sum_i n_i`` (FedAvg weighted by example count), and
* client, on receiving ``M_glob``: ``M_loc' = M_loc + eta (M_glob - M_loc)``, then local
  training from ``M_loc'``. Each client keeps its own adapter in its Flower ``Context.state``:
  ``eta = 1`` is plain FedAvg; ``eta < 1`` keeps part of the personal model (personalisation).

Privacy option: Flower's ``DifferentialPrivacyServerSideFixedClipping`` wrapper clips every
client update to ``clipping_norm`` and adds Gaussian noise with standard deviation
``noise_multiplier * clipping_norm / clients`` to the average. :func:`gaussian_dp_epsilon` states
the guarantee with the Renyi-DP accountant of the Gaussian mechanism (Mironov 2017), composed
over rounds with every client taking part in every round (no subsampling amplification claimed):
``eps(delta) = min_alpha R * alpha / (2 z^2) + log(1 / delta) / (alpha - 1)``. This is
client-level DP of the released global adapter. Production would add secure aggregation
(Flower's SecAgg+), so the server sees only the sum of the clipped, noised updates.

Training here is plain numpy with hand-derived gradients (the adapter is linear + normalisation),
so a simulated client needs no TensorFlow; :func:`adapter_keras_model` builds the identical Keras
model that the converters quantize into the bundle.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from edgeshelf.sdk.adapter import (  # noqa: F401 - re-exported: the adapter API of this room
    ADAPTER_FORMAT_VERSION,
    ADAPTER_KEYS,
    QueryAdapter,
    adapter_loss_and_grads,
    apply_adapter,
    check_adapter,
    identity_adapter,
    load_adapter,
    local_step,
    save_adapter,
    train_adapter,
)
from edgeshelf.sdk.errors import InvalidInputError

# --------------------------------------------------------------------------------------------
# the adapter (numpy)


def federated_average(updates: Sequence[tuple[Sequence[np.ndarray], int]]) -> list[np.ndarray]:
    """``M_glob = sum_i n_i M_i / sum_i n_i`` over ``(weights, example_count)`` pairs."""
    if not updates:
        raise InvalidInputError("no client updates to average")
    total = float(sum(n for _, n in updates))
    if total <= 0:
        raise InvalidInputError("client example counts sum to zero")
    return [
        (sum(np.asarray(w[i], np.float64) * n for w, n in updates) / total).astype(np.float32)
        for i in range(len(updates[0][0]))
    ]


def recall_at_k(
    weights: Sequence[np.ndarray] | None,
    queries: np.ndarray,
    targets: np.ndarray,
    products: np.ndarray,
    k: int = 10,
) -> float:
    """Share of queries whose chosen product is in the top ``k`` (``weights=None``: no adapter)."""
    if len(targets) == 0:
        return float("nan")
    q = queries if weights is None else apply_adapter(weights, queries)
    scores = q @ products.T
    top = np.argpartition(-scores, kth=min(k, scores.shape[1] - 1), axis=1)[:, :k]
    return float(np.mean([t in row for t, row in zip(targets, top, strict=True)]))


def gaussian_dp_epsilon(noise_multiplier: float, rounds: int, delta: float = 1e-5) -> float:
    """(epsilon, delta)-DP of ``rounds`` Gaussian mechanisms with noise multiplier z (RDP accountant)."""
    if noise_multiplier <= 0:
        return math.inf
    alphas = [1.0 + x / 10.0 for x in range(1, 100)] + list(range(12, 256))
    return min(rounds * a / (2 * noise_multiplier**2) + math.log(1 / delta) / (a - 1) for a in alphas)


def adapter_keras_model(weights: Sequence[np.ndarray]):
    """The adapter as a Keras model (float32 ``[B, dim]`` -> ``[B, dim]``, L2-normalised), for the converters."""
    import keras
    from edgeshelf.towers.model import _layers

    _, _, L2Normalize, _ = _layers()
    kernel, bias = weights
    dim = kernel.shape[0]
    query = keras.Input((dim,), dtype="float32", name="query")
    delta = keras.layers.Dense(dim, name="adapter_dense")(query)
    out = L2Normalize(name="adapter_l2")(keras.layers.Add(name="adapter_residual")([query, delta]))
    model = keras.Model(query, out, name="query_adapter")
    model.get_layer("adapter_dense").set_weights([kernel, bias])
    return model


# --------------------------------------------------------------------------------------------
# simulated households


@dataclass
class ClientData:
    """One simulated device: its queries' embeddings and the product rows its user picked."""

    name: str
    groups: tuple[str, ...]
    preference: str
    train_queries: np.ndarray
    train_targets: np.ndarray
    test_queries: np.ndarray
    test_targets: np.ndarray
    query_texts: list[str] = field(default_factory=list)


def make_clients(
    products: Sequence[Any],
    embed_texts: Any,
    *,
    clients: int = 6,
    picks: int = 120,
    group_key: str = "gender",
    prefer_key: str = "baseColour",
    query_keys: Sequence[str] = ("gender", "category"),
    test_fraction: float = 0.3,
    seed: int = 0,
) -> list[ClientData]:
    """Non-IID households over a catalogue: each sees a few ``group_key`` values (e.g. genders) and
    prefers one ``prefer_key`` value (e.g. a colour). A query names the ``query_keys`` attributes
    of a product ("women tops"); the household picks, among the matching products, one with its
    preferred value when there is one. ``embed_texts(list[str]) -> float32 [N, dim]`` embeds the
    queries with the (frozen) towers.
    """

    def attr(p: Any, key: str) -> str:
        if key == "category":
            return p.category or ""
        return str(p.attributes.get(key, "") or "")

    rng = random.Random(seed)
    groups = sorted({attr(p, group_key) for p in products if attr(p, group_key)})
    prefs = sorted({attr(p, prefer_key) for p in products if attr(p, prefer_key)})
    if not groups or not prefs:
        raise InvalidInputError(
            f"the catalogue has no '{group_key}' or '{prefer_key}' attribute to make households from; "
            f"pass --group-by / --prefer with attribute names it has"
        )
    index_of = {p.id: i for i, p in enumerate(products)}
    by_query: dict[tuple[str, ...], list[Any]] = {}
    for p in products:
        key = tuple(attr(p, k) for k in query_keys)
        if all(key):
            by_query.setdefault(key, []).append(p)
    out: list[ClientData] = []
    for c in range(clients):
        chosen_groups = tuple(rng.sample(groups, k=min(len(groups), rng.choice([1, 2]))))
        keys = [k for k in by_query if attr(by_query[k][0], group_key) in chosen_groups]
        prefs_here = sorted({attr(p, prefer_key) for k in keys for p in by_query[k]})
        preference = rng.choice(prefs_here or prefs)
        texts, targets = [], []
        for _ in range(picks):
            key = rng.choice(keys)
            candidates = by_query[key]
            liked = [p for p in candidates if attr(p, prefer_key) == preference]
            pick = rng.choice(liked or candidates)
            texts.append(" ".join(key).lower())
            targets.append(index_of[pick.id])
        vectors = np.asarray(embed_texts(texts), np.float32)
        split = int(round(len(texts) * (1 - test_fraction)))
        out.append(
            ClientData(
                name=f"household-{c}",
                groups=chosen_groups,
                preference=preference,
                train_queries=vectors[:split],
                train_targets=np.asarray(targets[:split]),
                test_queries=vectors[split:],
                test_targets=np.asarray(targets[split:]),
                query_texts=texts,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Flower apps


@dataclass(frozen=True)
class FederatedOptions:
    """Settings of a federated run (see the module docstring for the maths).

    ``learning_rate`` and ``weight_decay`` default to what kept the global adapter from costing
    everyone else's queries on the fashion catalogue (6 households, 5 rounds; recall@10 of the
    households' held-out picks / of 600 product titles as queries, from 0.671 / 0.922): lr 0.02
    without decay 0.907 / 0.652; lr 0.005 without decay 0.912 / 0.813; lr 0.005, decay 0.1
    0.884 / 0.907. Through the converters' rollout gate (recall@10 of the fashion protocol's
    labelled queries, towers alone 0.7015): decay 0.1 costs 3.2 points (refused at 3), decay 0.3
    costs 1.2 points with households at 0.833 (the default).
    """

    rounds: int = 5
    eta: float = 1.0
    local_epochs: int = 3
    learning_rate: float = 0.005
    weight_decay: float = 0.3
    batch_size: int = 32
    tau: float = 0.05
    dp_noise: float = 0.0
    dp_clip: float = 0.5
    dp_delta: float = 1e-5
    seed: int = 0


@dataclass
class RoundReport:
    round: int
    clients: dict[str, dict[str, float]]
    mean_personal_recall: float
    mean_global_recall: float


@dataclass
class FederatedReport:
    options: FederatedOptions
    dim: int
    parameters: int
    bytes_per_round_per_client: int
    baseline_recall: dict[str, float]
    rounds: list[RoundReport]
    final_global: list[np.ndarray]
    epsilon: float | None
    failed_clients: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "options": asdict(self.options),
            "dim": self.dim,
            "parameters": self.parameters,
            "bytes_per_round_per_client": self.bytes_per_round_per_client,
            "baseline_recall_at_10": self.baseline_recall,
            "rounds": [asdict(r) for r in self.rounds],
            "dp": None
            if self.epsilon is None
            else {
                "noise_multiplier": self.options.dp_noise,
                "clipping_norm": self.options.dp_clip,
                "delta": self.options.dp_delta,
                "epsilon": self.epsilon,
                "accountant": "RDP of the Gaussian mechanism, composed over rounds, no subsampling",
            },
            "failed_clients": self.failed_clients,
        }


def _checked_fedavg_class():
    from flwr.app import ArrayRecord
    from flwr.serverapp.strategy import FedAvg

    class CheckedFedAvg(FedAvg):
        """FedAvg that drops replies whose update has the wrong shape or non-finite values.

        Replies carrying an error (a client that crashed mid-round) are dropped by Flower's FedAvg
        itself; the global model is the weighted average of the intact updates only.
        """

        def __init__(self, dim: int, rejected: list[str], on_metrics: Any = None, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim
            self.rejected = rejected
            self.on_metrics = on_metrics

        def configure_train(self, server_round, arrays, config, grid):
            messages = list(super().configure_train(server_round, arrays, config, grid))
            self.sent = {msg.metadata.dst_node_id for msg in messages}
            return messages

        def aggregate_train(self, server_round, replies):
            replies = list(replies)
            silent = getattr(self, "sent", set()) - {msg.metadata.src_node_id for msg in replies}
            for node in sorted(silent):
                self.rejected.append(
                    f"round {server_round}: node {node} failed: no reply (crashed or timed out)"
                )
            kept = []
            for msg in replies:
                if msg.has_error():
                    self.rejected.append(
                        f"round {server_round}: node {msg.metadata.src_node_id} failed: {msg.error.reason}"
                    )
                    continue
                try:
                    arrays = msg.content[self.arrayrecord_key]
                    if not isinstance(arrays, ArrayRecord):
                        raise InvalidInputError("reply carries no ArrayRecord")
                    check_adapter(arrays.to_numpy_ndarrays(), self.dim, f"node {msg.metadata.src_node_id}")
                except (InvalidInputError, KeyError) as exc:
                    self.rejected.append(f"round {server_round}: {exc}")
                    continue
                kept.append(msg)
                if self.on_metrics is not None and "metrics" in msg.content:
                    self.on_metrics(server_round, dict(msg.content["metrics"]))
            return super().aggregate_train(server_round, kept)

    return CheckedFedAvg


def simulate(
    products: np.ndarray,
    clients: list[ClientData],
    options: FederatedOptions = FederatedOptions(),
    faults: dict[int, str] | None = None,
    progress: bool = True,
) -> FederatedReport:
    """Run FedAvg rounds over ``clients`` with Flower's simulation runtime (Ray backend).

    The simulation runs in a spawned child process: Ray starts and stops a local cluster and
    installs its own process management, which must not touch the caller (a device app, a CLI,
    a test runner). The report comes back through a pipe.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_simulate_child,
        args=(sender, products, clients, options, faults, progress),
        name="edgeshelf-flower",
    )
    child.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        child.join()
        raise RuntimeError(
            f"the federated simulation process died (exit code {child.exitcode}) before reporting; "
            "see Flower's log above"
        ) from None
    child.join()
    if status == "error":
        raise RuntimeError(f"the federated simulation failed: {payload}")
    return payload


def _simulate_child(sender, products, clients, options, faults, progress) -> None:
    try:
        report = _simulate_in_process(products, clients, options, faults, progress)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        sender.send(("ok", report))
    finally:
        sender.close()


def _simulate_in_process(
    products: np.ndarray,
    clients: list[ClientData],
    options: FederatedOptions,
    faults: dict[int, str] | None,
    progress: bool,
) -> FederatedReport:
    """The simulation itself (see :func:`simulate`).

    ``products`` are the catalogue vectors (float32 ``[N, dim]``) every client searches.
    ``faults`` injects failures in round 1 for tests: ``{client_index: "crash" | "bad-shape"}``
    (the client raises mid-round, or sends an update of the wrong shape).
    """
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping
    from flwr.simulation import run_simulation

    dim = int(products.shape[1])
    n = len(clients)
    if n < 2:
        raise InvalidInputError(f"federated averaging needs at least 2 clients, got {n}")
    rejected: list[str] = []
    per_round: dict[int, dict[str, dict[str, float]]] = {}
    holder: dict[str, Any] = {}
    baseline = {c.name: recall_at_k(None, c.test_queries, c.test_targets, products) for c in clients}

    client_app = ClientApp()

    @client_app.train()
    def client_train(msg: Message, context: Context) -> Message:
        cid = int(context.node_config["partition-id"])
        data = clients[cid]
        cfg = msg.content["config"]
        rnd = int(cfg["server-round"])
        fault = (faults or {}).get(cid) if rnd == 1 else None
        if fault == "crash":
            raise RuntimeError(f"{data.name} crashed mid-round (fault injection)")
        global_w = check_adapter(msg.content["arrays"].to_numpy_ndarrays(), dim, "global model")
        state = context.state.get("personal")
        local = state.to_numpy_ndarrays() if isinstance(state, ArrayRecord) else [w.copy() for w in global_w]
        start = local_step(local, global_w, float(cfg["eta"]))
        trained, loss = train_adapter(
            start,
            data.train_queries,
            data.train_targets,
            products,
            epochs=int(cfg["epochs"]),
            learning_rate=float(cfg["lr"]),
            batch_size=int(cfg["batch"]),
            tau=float(cfg["tau"]),
            seed=int(cfg["seed"]) + 1000 * rnd + cid,
            weight_decay=float(cfg["wd"]),
        )
        context.state["personal"] = ArrayRecord(trained)
        metrics = {
            "num-examples": len(data.train_targets),
            "train-loss": loss,
            "personal-recall": recall_at_k(trained, data.test_queries, data.test_targets, products),
            "global-recall": recall_at_k(global_w, data.test_queries, data.test_targets, products),
        }
        metrics["client"] = cid
        sent = [trained[0][:, :-1].copy(), trained[1]] if fault == "bad-shape" else trained
        return Message(
            RecordDict({"arrays": ArrayRecord(sent), "metrics": MetricRecord(metrics)}), reply_to=msg
        )

    server_app = ServerApp()

    @server_app.main()
    def server_main(grid: Grid, context: Context) -> None:
        def record(rnd: int, metrics: dict[str, Any]) -> None:
            name = clients[int(metrics.pop("client"))].name
            per_round.setdefault(rnd, {})[name] = {k: float(v) for k, v in metrics.items()}

        strategy = _checked_fedavg_class()(
            dim,
            rejected,
            record,
            fraction_evaluate=0.0,
            min_train_nodes=n,  # FedAvg sizes its sample before all nodes have registered
            min_available_nodes=n,
        )
        if options.dp_noise > 0:
            strategy = DifferentialPrivacyServerSideFixedClipping(
                strategy, options.dp_noise, options.dp_clip, n
            )
        config = ConfigRecord(
            {
                "eta": options.eta,
                "epochs": options.local_epochs,
                "lr": options.learning_rate,
                "wd": options.weight_decay,
                "batch": options.batch_size,
                "tau": options.tau,
                "seed": options.seed,
            }
        )
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(identity_adapter(dim)),
            num_rounds=options.rounds,
            train_config=config,
        )
        holder["arrays"] = result.arrays.to_numpy_ndarrays()

    import logging

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    logging.getLogger("flwr").setLevel(logging.WARNING if not progress else logging.INFO)
    run_simulation(
        server_app,
        client_app,
        num_supernodes=n,
        backend_config={
            "client_resources": {"num_cpus": 1},
            "init_args": {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False},
        },
    )
    if "arrays" not in holder:
        raise RuntimeError("the federated simulation ended without a global model (see Flower's log above)")
    final = check_adapter(holder["arrays"], dim, "final global model")
    rounds = []
    for rnd in sorted(per_round):
        rows = per_round[rnd]
        rounds.append(
            RoundReport(
                round=rnd,
                clients=rows,
                mean_personal_recall=float(np.mean([r["personal-recall"] for r in rows.values()])),
                mean_global_recall=float(np.mean([r["global-recall"] for r in rows.values()])),
            )
        )
    params = dim * dim + dim
    return FederatedReport(
        options=options,
        dim=dim,
        parameters=params,
        bytes_per_round_per_client=4 * params,
        baseline_recall=baseline,
        rounds=rounds,
        final_global=final,
        epsilon=gaussian_dp_epsilon(options.dp_noise, options.rounds, options.dp_delta)
        if options.dp_noise > 0
        else None,
        failed_clients=rejected,
    )
