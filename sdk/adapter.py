"""The query adapter in numpy: ``a(q) = normalize(q + q W + b)`` after the fusion tower.

Shared by federated training on the host (:mod:`edgeshelf.towers.federated`) and by the device,
which keeps a personal adapter trained on its own picks (:class:`PersonalAdapter`, used by the
apps). Linear plus a normalisation, so the gradients are written out by hand and nothing here
needs TensorFlow. ``W`` and ``b`` start at zero: the identity.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError

ADAPTER_KEYS = ("kernel", "bias")


def identity_adapter(dim: int) -> list[np.ndarray]:
    """Adapter weights that leave every query unchanged: ``[W (dim, dim) = 0, b (dim,) = 0]``."""
    return [np.zeros((dim, dim), np.float32), np.zeros((dim,), np.float32)]


def check_adapter(weights: Sequence[np.ndarray], dim: int, origin: str = "adapter") -> list[np.ndarray]:
    """Validate adapter weights (shapes, finite values); raise InvalidInputError naming ``origin``."""
    if len(weights) != 2:
        raise InvalidInputError(f"{origin}: expected 2 arrays (kernel, bias), got {len(weights)}")
    kernel, bias = (np.asarray(w, dtype=np.float32) for w in weights)
    if kernel.shape != (dim, dim) or bias.shape != (dim,):
        raise InvalidInputError(
            f"{origin}: expected shapes ({dim}, {dim}) and ({dim},), got {kernel.shape} and {bias.shape}"
        )
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        raise InvalidInputError(f"{origin}: update contains NaN or infinite values")
    return [kernel, bias]


def apply_adapter(weights: Sequence[np.ndarray], queries: np.ndarray) -> np.ndarray:
    """``normalize(q + q W + b)`` for float32 queries ``[B, dim]`` (row vectors)."""
    kernel, bias = weights
    u = queries + queries @ kernel + bias
    return (u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def adapter_loss_and_grads(
    weights: Sequence[np.ndarray], queries: np.ndarray, targets: np.ndarray, products: np.ndarray, tau: float
) -> tuple[float, list[np.ndarray]]:
    """Mean softmax cross-entropy of ``targets`` (row indices into ``products``) and its gradients."""
    kernel, bias = weights
    u = queries + queries @ kernel + bias
    norm = np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    f = u / norm
    logits = f @ products.T / tau
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    loss = float(-np.log(np.maximum(probs[rows, targets], 1e-12)).mean())
    dlogits = probs
    dlogits[rows, targets] -= 1.0
    dlogits /= len(targets)
    df = dlogits @ products / tau
    du = (df - f * np.sum(df * f, axis=1, keepdims=True)) / norm
    return loss, [(queries.T @ du).astype(np.float32), du.sum(axis=0).astype(np.float32)]


def local_step(local: Sequence[np.ndarray], global_: Sequence[np.ndarray], eta: float) -> list[np.ndarray]:
    """The seed's local step: ``M_loc' = M_loc + eta (M_glob - M_loc)`` (eta = 1 gives M_glob)."""
    if not 0.0 <= eta <= 1.0:
        raise InvalidInputError(f"eta must be in [0, 1], got {eta}")
    return [(loc + eta * (glob - loc)).astype(np.float32) for loc, glob in zip(local, global_, strict=True)]


def train_adapter(
    weights: Sequence[np.ndarray],
    queries: np.ndarray,
    targets: np.ndarray,
    products: np.ndarray,
    *,
    epochs: int = 5,
    learning_rate: float = 0.05,
    batch_size: int = 32,
    tau: float = 0.05,
    seed: int = 0,
    weight_decay: float = 0.0,
) -> tuple[list[np.ndarray], float]:
    """Local training (Adam) of the adapter on a client's picks; returns (weights, last loss).

    ``weight_decay`` adds ``weight_decay * w`` to the gradients: an L2 pull toward the identity
    adapter, so what a few households teach does not bend every other query (see
    :class:`FederatedOptions`)."""
    w = [np.array(x, dtype=np.float32, copy=True) for x in weights]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    rng = np.random.default_rng(seed)
    step, loss = 0, float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(targets))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss, grads = adapter_loss_and_grads(w, queries[idx], targets[idx], products, tau)
            if weight_decay:
                grads = [g + weight_decay * x for g, x in zip(grads, w, strict=True)]
            step += 1
            for i, g in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                mhat = m[i] / (1 - 0.9**step)
                vhat = v[i] / (1 - 0.999**step)
                w[i] -= learning_rate * mhat / (np.sqrt(vhat) + 1e-8)
    return w, loss


ADAPTER_FORMAT_VERSION = 1


def save_adapter(
    path: str | os.PathLike[str],
    weights: Sequence[np.ndarray],
    space_id: str,
    *,
    mode: int = 0o644,
    **meta: Any,
) -> Path:
    """Write adapter weights to ``path`` (``.npz``, atomically) with the space id they belong to
    and optional JSON-able ``meta`` (rounds, eta, DP settings); the input of
    ``edgeshelf convert --adapter``. ``mode``: file permissions (a personal adapter is 0600)."""
    from edgeshelf.sdk.fileio import atomic_write_bytes

    kernel, bias = check_adapter(weights, int(np.asarray(weights[1]).shape[0]))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        kernel=kernel,
        bias=bias,
        space_id=np.str_(space_id),
        format_version=np.int32(ADAPTER_FORMAT_VERSION),
        meta=np.str_(json.dumps(meta, default=float)),
    )
    return atomic_write_bytes(path, buffer.getvalue(), mode)


@dataclass(frozen=True)
class QueryAdapter:
    """Adapter weights read from a file, with the space id they were trained in."""

    kernel: np.ndarray
    bias: np.ndarray
    space_id: str
    meta: dict[str, Any]
    source: str

    @property
    def weights(self) -> list[np.ndarray]:
        return [self.kernel, self.bias]

    @property
    def dim(self) -> int:
        return int(self.bias.shape[0])


def load_adapter(
    path: str | os.PathLike[str], *, space_id: str | None = None, dim: int | None = None
) -> QueryAdapter:
    """Read an adapter written by :func:`save_adapter` (``edgeshelf federated simulate --out``).

    Raises :class:`~edgeshelf.sdk.errors.CorruptArtifactError` for an unreadable file and
    :class:`~edgeshelf.sdk.errors.SpaceMismatchError` when it was trained in another space than
    ``space_id`` (its query vectors would point into the wrong space).
    """
    from edgeshelf.sdk.errors import CorruptArtifactError, ModelNotFoundError, SpaceMismatchError

    source = Path(path)
    if not source.is_file():
        raise ModelNotFoundError(
            f"adapter file {source} does not exist; write one with `edgeshelf federated simulate --out`"
        )
    try:
        with np.load(source, allow_pickle=False) as data:
            version = int(data["format_version"])
            kernel, bias = data["kernel"], data["bias"]
            adapter_space = str(data["space_id"])
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CorruptArtifactError(
            f"{source} is not an edgeshelf adapter file ({exc}); re-run `edgeshelf federated simulate --out`"
        ) from exc
    if version != ADAPTER_FORMAT_VERSION:
        raise CorruptArtifactError(
            f"{source}: adapter format version {version}, this edgeshelf reads {ADAPTER_FORMAT_VERSION}"
        )
    kernel, bias = check_adapter([kernel, bias], dim if dim is not None else int(bias.shape[0]), str(source))
    if space_id is not None and adapter_space != space_id:
        raise SpaceMismatchError(
            f"adapter {source}",
            space_id,
            adapter_space,
            "train the adapter on these towers (edgeshelf federated simulate --towers TOWERS --out ...)",
        )
    return QueryAdapter(kernel, bias, adapter_space, dict(meta), str(source))


class PersonalAdapter:
    """This device's own query adapter, trained on its user's picks and kept in one file.

    It runs after the bundle (which may carry the federated global adapter), so it is a residual
    on top of the global model; the seed's local step toward a new global model
    (``M_loc' = M_loc + eta (M_glob - M_loc)``) is then :meth:`pull_toward_global`: the residual
    shrinks by ``1 - eta``. Products are not re-embedded; the space id is the bundle's.

    Example::

        personal = PersonalAdapter.open("~/.local/share/edgeshelf/personal.npz", space_id, dim)
        personal.train(queries, targets, shard_vectors)   # the device's picks
        vector = personal.apply(embedding.vector)
    """

    def __init__(self, path: Path, space_id: str, weights: list[np.ndarray], meta: dict[str, Any]) -> None:
        self.path = path
        self.space_id = space_id
        self.weights = weights
        self.meta = meta

    @classmethod
    def open(cls, path: str | os.PathLike[str], space_id: str, dim: int) -> PersonalAdapter:
        """The adapter in ``path``, or the identity when the file does not exist yet. Raises
        :class:`~edgeshelf.sdk.errors.SpaceMismatchError` for an adapter of another space."""
        target = Path(path).expanduser()
        if not target.is_file():
            return cls(target, space_id, identity_adapter(dim), {"picks_trained": 0})
        stored = load_adapter(target, space_id=space_id, dim=dim)
        return cls(target, space_id, stored.weights, dict(stored.meta))

    @property
    def is_identity(self) -> bool:
        return not (np.any(self.weights[0]) or np.any(self.weights[1]))

    def apply(self, vector: np.ndarray) -> np.ndarray:
        """The personalised query vector (float32 ``[dim]``, L2-normalised)."""
        if self.is_identity:
            return np.asarray(vector, np.float32)
        return apply_adapter(self.weights, np.asarray(vector, np.float32)[None, :])[0]

    def train(
        self,
        queries: np.ndarray,
        targets: np.ndarray,
        products: np.ndarray,
        *,
        epochs: int = 5,
        learning_rate: float = 0.005,
        weight_decay: float = 0.3,
        seed: int = 0,
    ) -> float:
        """Train on picks (``queries [N, dim]``, ``targets``: rows of ``products [M, dim]``),
        starting from the current weights; save atomically; return the last loss."""
        if len(targets) == 0:
            raise InvalidInputError("no picks to train on; record picks with app.pick(answer, product_id)")
        self.weights, loss = train_adapter(
            self.weights,
            np.asarray(queries, np.float32),
            np.asarray(targets, np.int64),
            np.asarray(products, np.float32),
            epochs=epochs,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            seed=seed,
        )
        self.meta = {**self.meta, "picks_trained": int(len(targets)), "last_loss": float(loss)}
        self.save()
        return loss

    def pull_toward_global(self, eta: float) -> None:
        """The seed's local step after a new global adapter arrived in a bundle: the personal
        residual moves ``eta`` of the way to the identity (``eta = 1`` forgets it); saved."""
        self.weights = local_step(self.weights, identity_adapter(len(self.weights[1])), eta)
        self.save()

    def save(self) -> Path:
        """Write the adapter atomically, readable by its owner only (it encodes the user's taste)."""
        return save_adapter(self.path, self.weights, self.space_id, mode=0o600, **self.meta)
