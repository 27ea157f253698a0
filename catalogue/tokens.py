"""Per-device tokens for the lookup service: salted scrypt hashes in one JSON file.

A token looks like ``esk_<token id>_<secret>``: the token id (8 hex characters) finds the
record, the secret is checked against its salted ``hashlib.scrypt`` hash. The raw token exists
only in the return value of :meth:`TokenStore.create` (the CLI prints it once); the file holds
``{"format": "edgeshelf-tokens", "format_version": 1, "kdf": {...}, "tokens": [record, ...]}``
with one record per token (device, token id, salt, hash, created, revoked), written atomically
with mode 0600 and under an advisory lock so two ``edgeshelf tokens`` commands do not race.

A server keeps one :class:`TokenStore` open and calls :meth:`TokenStore.verify` per request:
a verified token is remembered (by its sha256, in memory only) so scrypt runs once per token,
and the file is re-read when it changes on disk, so ``edgeshelf tokens revoke`` takes effect
on a running server within one request.

Example::

    store = TokenStore.open("tokens.json", create=True)
    issued = store.create("kitchen-speaker")     # issued.token is shown once
    store.verify(issued.token).device            # "kitchen-speaker"
    store.revoke("kitchen-speaker")
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from edgeshelf.sdk.errors import CorruptArtifactError, EdgeshelfError, FormatVersionError, InvalidInputError
from edgeshelf.sdk.fileio import atomic_write_text

TOKENS_FORMAT = "edgeshelf-tokens"
TOKENS_FORMAT_VERSION = 1
TOKEN_PREFIX = "esk"
DEFAULT_TOKENS_FILE = "tokens.json"

# scrypt cost: 16 MiB and ~50 ms per check on a small core; verified tokens are cached.
_KDF = {"name": "scrypt", "n": 1 << 14, "r": 8, "p": 1, "dklen": 32}
_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{8}})_([A-Za-z0-9_-]{{20,128}})$")
_CACHE_SIZE = 4096

AuthProblem = Literal["missing", "malformed", "unknown", "revoked"]


class TokenError(EdgeshelfError, PermissionError):
    """A token is missing, malformed, unknown or revoked; ``problem`` says which."""

    def __init__(self, problem: AuthProblem, message: str) -> None:
        self.problem = problem
        super().__init__(message)


@dataclass(frozen=True)
class TokenRecord:
    """One stored token (never the raw token): which device, when created, whether revoked."""

    device: str
    token_id: str
    created: float
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "token_id": self.token_id,
            "created": _iso(self.created),
            "revoked": None if self.revoked is None else _iso(self.revoked),
            "active": self.active,
        }


@dataclass(frozen=True, repr=False)
class IssuedToken:
    """What :meth:`TokenStore.create` returns: the record and the raw token (shown once)."""

    record: TokenRecord
    token: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"IssuedToken(device={self.record.device!r}, token_id={self.record.token_id})"


class TokenStore:
    """The token file: create, list, revoke and verify per-device tokens (thread-safe).

    Construct with :meth:`open`. Verification is cached in memory (sha256 of the raw token ->
    token id) and the cache is dropped whenever the file changes on disk.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._rejected: OrderedDict[bytes, str] = OrderedDict()
        self._load()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = False) -> TokenStore:
        """Open the token file at ``path``; ``create=True`` starts an empty one when absent."""
        target = Path(path)
        if not target.exists():
            if not create:
                raise FileNotFoundError(
                    f"token file {target} does not exist: create a device token with "
                    f"`edgeshelf tokens create --device NAME --tokens {target}` (or serve with --no-auth)"
                )
            with _file_lock(target):
                if not target.exists():
                    _write(target, [])
        return cls(target)

    @property
    def path(self) -> Path:
        return self._path

    # ---- management

    def create(self, device: str) -> IssuedToken:
        """Issue a new token for ``device`` (letters, digits, ``._-``; at most 64 characters).

        Raises :class:`InvalidInputError` when the name is invalid or the device already holds
        an active token (revoke it first).
        """
        if not isinstance(device, str) or not _DEVICE_RE.match(device):
            raise InvalidInputError(
                f"device name {device!r} is invalid: use 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        with self._lock, _file_lock(self._path):
            self._load(force=True)
            active = [r for r in self._records.values() if r["device"] == device and r["revoked"] is None]
            if active:
                raise InvalidInputError(
                    f"device {device!r} already has an active token ({active[0]['token_id']}) in {self._path}: "
                    f"revoke it first with `edgeshelf tokens revoke {device}`"
                )
            token_id = secrets.token_hex(4)
            while token_id in self._records:
                token_id = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_bytes(16)
            record = {
                "device": device,
                "token_id": token_id,
                "salt": salt.hex(),
                "hash": _hash(secret, salt).hex(),
                "created": time.time(),
                "revoked": None,
            }
            _write(self._path, [*self._records.values(), record])
            self._load(force=True)
            return IssuedToken(record=_record(record), token=f"{TOKEN_PREFIX}_{token_id}_{secret}")

    def list(self) -> list[TokenRecord]:
        """Every token record (active and revoked), oldest first."""
        with self._lock:
            self._load()
            return sorted((_record(r) for r in self._records.values()), key=lambda r: (r.created, r.token_id))

    def revoke(self, name: str) -> list[TokenRecord]:
        """Revoke the active token(s) of device ``name`` (or the token whose id is ``name``).

        Returns the revoked records; raises :class:`InvalidInputError` when nothing active matches.
        """
        with self._lock, _file_lock(self._path):
            self._load(force=True)
            hits = [
                r
                for r in self._records.values()
                if r["revoked"] is None and (r["device"] == name or r["token_id"] == name)
            ]
            if not hits:
                known = sorted({r["device"] for r in self._records.values() if r["revoked"] is None})
                raise InvalidInputError(
                    f"no active token for device or token id {name!r} in {self._path}; "
                    f"active devices: {', '.join(known) or '(none)'}"
                )
            now = time.time()
            for r in hits:
                r["revoked"] = now
            _write(self._path, list(self._records.values()))
            self._load(force=True)
            return [_record(r) for r in hits]

    # ---- verification

    def verify(self, token: str | None) -> TokenRecord:
        """The record of a valid, active ``token``; raises :class:`TokenError` otherwise."""
        # with allow_kdf=True every path returns a record or raises
        return cast(TokenRecord, self._verify(token, allow_kdf=True))

    def verify_cached(self, token: str | None) -> TokenRecord | None:
        """Like :meth:`verify` without running the slow hash: None when only the hash can decide
        (a well-formed token of a known id not seen yet); an async server then calls
        :meth:`verify` in a worker thread."""
        return self._verify(token, allow_kdf=False)

    def _verify(self, token: str | None, allow_kdf: bool) -> TokenRecord | None:
        if not token:
            raise TokenError(
                "missing",
                "missing device token: send 'Authorization: Bearer <token>'; "
                "create one with `edgeshelf tokens create --device NAME`",
            )
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        unknown = "unknown device token: create one with `edgeshelf tokens create --device NAME`"
        needs_kdf = False
        with self._lock:
            self._load()
            token_id = self._verified.get(digest)
            if token_id is None:
                if digest in self._rejected:
                    raise TokenError("unknown", unknown)
                match = _TOKEN_RE.match(token)
                if match is None:
                    raise TokenError(
                        "malformed",
                        f"malformed device token (expected '{TOKEN_PREFIX}_<8 hex>_<secret>', got {len(token)} "
                        "characters): create one with `edgeshelf tokens create --device NAME`",
                    )
                token_id, secret = match.groups()
                record = self._records.get(token_id)
                if record is None:
                    _remember(self._rejected, digest, token_id)
                    raise TokenError("unknown", unknown)
                if not allow_kdf:
                    return None
                salt, expected, stamp = (
                    bytes.fromhex(record["salt"]),
                    bytes.fromhex(record["hash"]),
                    self._stamp,
                )
                needs_kdf = True
        if needs_kdf:
            # the slow hash runs outside the lock, so other tokens are checked meanwhile
            ok = hmac.compare_digest(_hash(secret, salt), expected)
            with self._lock:
                if self._stamp == stamp:
                    _remember(self._verified if ok else self._rejected, digest, token_id)
            if not ok:
                raise TokenError("unknown", unknown)
        with self._lock:
            record = self._records.get(token_id)
            if record is None:  # dropped from the file since it was verified
                self._verified.pop(digest, None)
                raise TokenError("unknown", unknown)
            if record["revoked"] is not None:
                raise TokenError(
                    "revoked",
                    f"the token of device {record['device']!r} ({token_id}) was revoked at "
                    f"{_iso(record['revoked'])}: create a new one with "
                    f"`edgeshelf tokens create --device {record['device']}`",
                )
            return _record(record)

    # ---- file

    def _load(self, force: bool = False) -> None:
        """(Re)read the file when it changed on disk (or always, with ``force``)."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"token file {self._path} disappeared; create a token with `edgeshelf tokens create`"
            ) from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if not force and stamp == self._stamp:
            return
        records = _read(self._path)
        self._records = {r["token_id"]: r for r in records}
        self._stamp = stamp
        self._verified.clear()
        self._rejected.clear()


# ---- helpers


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt,
        n=_KDF["n"],
        r=_KDF["r"],
        p=_KDF["p"],
        dklen=_KDF["dklen"],
        maxmem=64 << 20,
    )


def _record(raw: dict[str, Any]) -> TokenRecord:
    return TokenRecord(
        device=raw["device"], token_id=raw["token_id"], created=float(raw["created"]), revoked=raw["revoked"]
    )


def _remember(cache: OrderedDict[bytes, str], key: bytes, value: str) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptArtifactError(
            f"token file {path} is unreadable ({exc}); restore it or start a new one"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != TOKENS_FORMAT:
        raise CorruptArtifactError(f"{path} is not an edgeshelf token file (format != {TOKENS_FORMAT!r})")
    if int(data.get("format_version", 0)) > TOKENS_FORMAT_VERSION:
        raise FormatVersionError(
            f"{path}: token file version {data['format_version']} is newer than this library reads "
            f"({TOKENS_FORMAT_VERSION}); upgrade edgeshelf"
        )
    kdf = data.get("kdf", {})
    if kdf != _KDF:
        raise CorruptArtifactError(f"{path}: token hashes use {kdf}, this library checks {_KDF}")
    records = data.get("tokens")
    if not isinstance(records, list):
        raise CorruptArtifactError(f"{path}: 'tokens' must be a list")
    keys = {"device", "token_id", "salt", "hash", "created", "revoked"}
    for n, r in enumerate(records):
        if not isinstance(r, dict) or not keys <= set(r):
            raise CorruptArtifactError(f"{path}: token record {n} lacks one of {sorted(keys)}")
    return records


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    document = {
        "format": TOKENS_FORMAT,
        "format_version": TOKENS_FORMAT_VERSION,
        "kdf": _KDF,
        "tokens": records,
    }
    # Only salted hashes are stored, but the file is still readable by its owner alone.
    atomic_write_text(path, json.dumps(document, indent=2) + "\n", mode=0o600)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An advisory lock beside the token file, held across read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


__all__ = [
    "DEFAULT_TOKENS_FILE",
    "IssuedToken",
    "TokenError",
    "TokenRecord",
    "TokenStore",
]
