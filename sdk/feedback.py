"""On-device record of what the user picked: (query embedding, chosen product id) pairs.

This is the training data of federated personalisation (``edgeshelf.towers.federated``). It stays
on the device: this module has no network code, and nothing in the SDK sends it anywhere. The log
is bounded (oldest records dropped first), clearable, and written atomically as one ``.npz``.

Example::

    with FeedbackLog.open("~/.local/share/edgeshelf/picks.npz", FeedbackOptions(max_records=5000)) as log:
        log.record(embedding, "15970")
        queries, product_ids = log.arrays()
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgeshelf.sdk.errors import CorruptArtifactError, InvalidInputError, SpaceMismatchError
from edgeshelf.sdk.fileio import atomic_write_bytes
from edgeshelf.sdk.results import Embedding

FEEDBACK_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeedbackOptions:
    """``max_records``: the log keeps the newest this many picks."""

    max_records: int = 10_000


class FeedbackLog:
    """A bounded, local log of picks; a context manager (``close()`` flushes, idempotent)."""

    def __init__(self, path: Path, options: FeedbackOptions) -> None:
        if options.max_records < 1:
            raise InvalidInputError(f"max_records must be >= 1, got {options.max_records}")
        self.path = path
        self.options = options
        self.space_id: str | None = None
        self._vectors: list[np.ndarray] = []
        self._ids: list[str] = []
        self._times: list[float] = []
        self._dirty = False
        self._closed = False

    @classmethod
    def open(cls, path: str | Path, options: FeedbackOptions = FeedbackOptions()) -> FeedbackLog:
        """Open (or start) the log at ``path``."""
        log = cls(Path(path).expanduser(), options)
        if log.path.exists():
            try:
                with np.load(log.path, allow_pickle=False) as data:
                    if int(data["format_version"]) > FEEDBACK_FORMAT_VERSION:
                        raise CorruptArtifactError(
                            f"{log.path} was written by a newer edgeshelf (format {int(data['format_version'])})"
                        )
                    log.space_id = str(data["space_id"]) or None
                    log._vectors = list(data["vectors"].astype(np.float32))
                    log._ids = [str(x) for x in data["product_ids"]]
                    log._times = [float(x) for x in data["times"]]
            except (OSError, KeyError, ValueError) as exc:
                raise CorruptArtifactError(
                    f"feedback log {log.path} is unreadable ({exc}); delete it to start a new one"
                ) from exc
        return log

    def __len__(self) -> int:
        return len(self._ids)

    def record(self, embedding: Embedding, product_id: str) -> None:
        """Remember that the user picked ``product_id`` for the query ``embedding``; saved at once."""
        if self.space_id is not None and embedding.space_id != self.space_id:
            raise SpaceMismatchError(
                f"feedback log {self.path}",
                self.space_id,
                embedding.space_id,
                "picks from another embedding space cannot be mixed; clear() the log after a bundle update",
            )
        if not product_id:
            raise InvalidInputError("product_id must be a non-empty string")
        self.space_id = embedding.space_id
        self._vectors.append(np.asarray(embedding.vector, np.float32).reshape(-1))
        self._ids.append(str(product_id))
        self._times.append(time.time())
        overflow = len(self._ids) - self.options.max_records
        if overflow > 0:
            del self._vectors[:overflow], self._ids[:overflow], self._times[:overflow]
        self._dirty = True
        self.flush()

    def arrays(self) -> tuple[np.ndarray, list[str]]:
        """(float32 ``[N, dim]`` query embeddings, the N chosen product ids), oldest first."""
        if not self._vectors:
            return np.zeros((0, 0), np.float32), []
        return np.stack(self._vectors), list(self._ids)

    def clear(self) -> None:
        """Forget every pick (and the space id)."""
        self._vectors, self._ids, self._times = [], [], []
        self.space_id = None
        self._dirty = True
        self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        buffer = io.BytesIO()
        vectors, ids = self.arrays()
        np.savez(
            buffer,
            format_version=np.int32(FEEDBACK_FORMAT_VERSION),
            space_id=np.str_(self.space_id or ""),
            vectors=vectors,
            product_ids=np.asarray(ids, dtype=np.str_),
            times=np.asarray(self._times, np.float64),
        )
        atomic_write_bytes(self.path, buffer.getvalue(), mode=0o600)  # the user's queries: owner only
        self._dirty = False

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
