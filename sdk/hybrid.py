"""Hybrid search: the cached shard on the device and the catalogue lookup service, behind one call.

Policies (strings at the API, :class:`SearchPolicy` inside):

* ``"prefer-remote"`` (default): ask the lookup service; when it fails with a
  :class:`~edgeshelf.sdk.errors.ServiceError` (unreachable, timed out, rate-limited, token
  refused), answer from the shard and say so, with the reason, in ``SearchResult.note``
  (``"offline: ..."``). A space mismatch or a rejected request is raised, not hidden. Without a
  client it is the shard alone.
* ``"local-only"``: the shard only; nothing leaves the device.
* ``"remote-only"``: the lookup service only; a failure raises :class:`ServiceError`.
* ``"merge"``: ask both and merge by product id. Both score with the same metric (inner product
  of L2-normalised vectors in one space), so the scores are comparable; where a product comes
  back from both, the remote score wins (the server holds the exact vectors, the shard a
  quantized copy). The union is sorted by score and cut to ``k``; ties keep remote first. The
  shard can add products the server filtered or has not indexed yet; the server adds the long
  tail the shard does not carry. ``source`` is ``"remote"`` when any remote hit survived, and
  ``note`` counts how many hits came from each side. When the server is unreachable the shard
  answers alone, as with ``prefer-remote``.

Offline hold-off: once the service is unreachable (connection refused, time-outs, after the
client's own retries), ``prefer-remote`` and ``merge`` answer from the shard *without asking the
service* for ``offline_retry_s`` seconds (default 30), then ask again. Without it every query of
an offline device would wait out the client's retries first (measured: about 0.7 s each).

Only the query embedding (its vector and space id), ``k`` and the filters go to the server:
never the audio, image or text the embedding was made from (the :class:`Embedding` holds none).

Example::

    with HybridSearcher.open(shard="catalogue.shard", url="http://127.0.0.1:8000", token=t) as search:
        result = search.search(embedding, k=10)
        print(result.source, result.note, result.ids[:3])
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from edgeshelf.sdk.errors import InvalidInputError, ServiceError, SpaceMismatchError
from edgeshelf.sdk.results import Embedding, Hit, SearchResult

PolicyName = Literal["prefer-remote", "local-only", "remote-only", "merge"]


class SearchPolicy(str, enum.Enum):
    """Where a :class:`HybridSearcher` looks (see the module docstring)."""

    PREFER_REMOTE = "prefer-remote"
    LOCAL_ONLY = "local-only"
    REMOTE_ONLY = "remote-only"
    MERGE = "merge"

    @classmethod
    def parse(cls, value: str | SearchPolicy) -> SearchPolicy:
        if isinstance(value, SearchPolicy):
            return value
        try:
            return cls(str(value))
        except ValueError:
            choices = ", ".join(repr(p.value) for p in cls)
            raise InvalidInputError(f"unknown search policy {value!r}; choose one of {choices}") from None


def _space_of(searcher: Any) -> str | None:
    """The space id a shard or client declares, or None when it has not said yet."""
    space = getattr(searcher, "space_id", None)
    return str(space) if space else None


class HybridSearcher:
    """Searches a :class:`~edgeshelf.sdk.shard.Shard`, a :class:`~edgeshelf.sdk.lookup.LookupClient`, or both.

    ``search(embedding, k, filters) -> SearchResult``; ``embedding`` is an :class:`Embedding`
    (float32 ``[dim]``, L2-normalised, with its space id). The searcher does not close a shard or
    client it was given unless ``owns=True`` (as :meth:`open` sets); ``close()`` is idempotent.
    """

    def __init__(
        self,
        shard: Any | None = None,
        client: Any | None = None,
        policy: PolicyName | SearchPolicy = "prefer-remote",
        *,
        owns: bool = False,
        offline_retry_s: float = 30.0,
    ) -> None:
        self.policy = SearchPolicy.parse(policy)
        if offline_retry_s < 0:
            raise InvalidInputError(f"offline_retry_s must be >= 0, got {offline_retry_s}")
        self.offline_retry_s = float(offline_retry_s)
        self._offline_since: float | None = None  # monotonic time the service was found unreachable
        self._offline_reason = ""
        if shard is None and client is None:
            raise InvalidInputError("HybridSearcher needs a shard, a lookup client or both; got neither")
        if self.policy is SearchPolicy.LOCAL_ONLY and shard is None:
            raise InvalidInputError("policy 'local-only' needs a shard; pass shard=Shard.open(path)")
        if self.policy is SearchPolicy.REMOTE_ONLY and client is None:
            raise InvalidInputError(
                "policy 'remote-only' needs a lookup client; pass client=LookupClient.open(url, token)"
            )
        shard_space, client_space = _space_of(shard), _space_of(client)
        if shard_space and client_space and shard_space != client_space:
            raise SpaceMismatchError(
                f"shard {getattr(shard, 'path', '')} vs lookup service {getattr(client, 'url', '')}".strip(),
                client_space,
                shard_space,
                "download a fresh shard from this service (edgeshelf catalogue shard) or point the "
                "device at the service that made the shard",
            )
        self.shard = shard
        self.client = client
        self._owns = owns
        self._closed = False

    @classmethod
    def open(
        cls,
        shard: str | Path | None = None,
        url: str | None = None,
        token: str | None = None,
        policy: PolicyName | SearchPolicy = "prefer-remote",
        *,
        expected_space_id: str | None = None,
        lookup_options: Any | None = None,
        offline_retry_s: float = 30.0,
    ) -> HybridSearcher:
        """Open a shard file and/or a lookup client and search them under ``policy`` (owns both)."""
        opened_shard = opened_client = None
        try:
            if shard is not None:
                from edgeshelf.sdk.shard import Shard

                opened_shard = Shard.open(shard, expected_space_id=expected_space_id)
            if url is not None:
                from edgeshelf.sdk.lookup import LookupClient, LookupOptions

                opened_client = LookupClient.open(
                    url, token, lookup_options or LookupOptions(), space_id=expected_space_id
                )
            return cls(opened_shard, opened_client, policy, owns=True, offline_retry_s=offline_retry_s)
        except BaseException:
            for thing in (opened_client, opened_shard):
                if thing is not None:
                    thing.close()
            raise

    @property
    def space_id(self) -> str | None:
        """The space both sides search in (the shard's, else the client's when it has said)."""
        return _space_of(self.shard) or _space_of(self.client)

    def search(
        self,
        embedding: Embedding,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Top-``k`` products for one query embedding under this searcher's policy."""
        if self._closed:
            raise InvalidInputError("HybridSearcher is closed")
        if not isinstance(embedding, Embedding):
            raise InvalidInputError(
                f"HybridSearcher.search needs an Embedding (from QueryEncoder.embed), got "
                f"{type(embedding).__name__}"
            )
        if int(k) < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        start = time.perf_counter()
        policy = self.policy
        if policy is SearchPolicy.LOCAL_ONLY or self.client is None:
            result = self._local(embedding, k, filters)
        elif policy is SearchPolicy.REMOTE_ONLY:
            result = self.client.search(embedding, k, filters)
        elif self._holding_off():
            waited = time.monotonic() - (self._offline_since or 0.0)
            result = replace(
                self._local(embedding, k, filters),
                note=f"offline: lookup service unreachable {waited:.0f} s ago ({self._offline_reason}); "
                f"answered from the cached shard; asking the service again in "
                f"{max(0.0, self.offline_retry_s - waited):.0f} s",
            )
        else:
            try:
                remote = self.client.search(embedding, k, filters)
            except ServiceError as exc:
                if self.shard is None:
                    raise
                result = self._local(embedding, k, filters)
                unreachable = type(exc) is ServiceError
                what = "unreachable" if unreachable else f"refused the query ({type(exc).__name__})"
                if unreachable:
                    self._offline_since, self._offline_reason = time.monotonic(), str(exc)
                result = replace(
                    result, note=f"offline: lookup service {what} ({exc}); answered from the cached shard"
                )
            else:
                self._offline_since = None
                if policy is SearchPolicy.MERGE and self.shard is not None:
                    result = merge_results(remote, self._local(embedding, k, filters), k)
                else:
                    result = remote
        return replace(result, latency_ms=(time.perf_counter() - start) * 1000.0)

    def _holding_off(self) -> bool:
        """Whether the service was unreachable less than ``offline_retry_s`` ago (shard present)."""
        return (
            self._offline_since is not None
            and self.shard is not None
            and time.monotonic() - self._offline_since < self.offline_retry_s
        )

    def _local(self, embedding: Embedding, k: int, filters: Mapping[str, Any] | None) -> SearchResult:
        if self.shard is None:
            raise InvalidInputError("no shard to search locally; open the searcher with a shard")
        return self.shard.search(embedding, k, filters)

    def close(self) -> None:
        """Close the shard and client when this searcher owns them (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            for thing in (self.client, self.shard):
                if thing is not None:
                    thing.close()

    def __enter__(self) -> HybridSearcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        sides = [
            name for name, thing in (("shard", self.shard), ("remote", self.client)) if thing is not None
        ]
        return f"HybridSearcher(policy={self.policy.value}, {'+'.join(sides)}, space={self.space_id})"


def merge_results(remote: SearchResult, local: SearchResult, k: int) -> SearchResult:
    """Union of two result lists by product id, remote score winning, best ``k`` first.

    Both must be in the same space (raises :class:`SpaceMismatchError` otherwise).
    """
    if remote.space_id and local.space_id and remote.space_id != local.space_id:
        raise SpaceMismatchError(
            "merging shard and remote results",
            remote.space_id,
            local.space_id,
            "the shard and the lookup service must come from the same towers",
        )
    best: dict[str, tuple[Hit, int]] = {}
    for side, result in ((0, remote), (1, local)):
        for hit in result.hits:
            if hit.product_id not in best:
                best[hit.product_id] = (hit, side)
    ranked = sorted(best.values(), key=lambda pair: (-pair[0].score, pair[1]))[: int(k)]
    n_remote = sum(1 for _, side in ranked if side == 0)
    hits = tuple(hit for hit, _ in ranked)
    return SearchResult(
        hits=hits,
        source="remote" if n_remote else "shard",
        space_id=remote.space_id or local.space_id,
        latency_ms=remote.latency_ms + local.latency_ms,
        note=f"merged: {n_remote} from remote, {len(hits) - n_remote} from shard",
    )
