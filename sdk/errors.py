"""The SDK's one exception hierarchy, shared by every room.

Every error message names what was wrong (expected vs actual, and which file) and what to do.
Subclasses also derive from the built-in that fits, so ``except ValueError`` still works.
"""

from __future__ import annotations


class EdgeshelfError(Exception):
    """Root of every error edgeshelf raises on purpose."""


class InvalidInputError(EdgeshelfError, ValueError):
    """An argument or a piece of data has the wrong shape, type, range or content."""


class SpaceMismatchError(EdgeshelfError, ValueError):
    """Two artifacts come from different embedding spaces (DESIGN.md contract 1)."""

    def __init__(self, what: str, expected: str, actual: str, remedy: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: space {actual} != expected space {expected}: {remedy}")


class CorruptArtifactError(EdgeshelfError, ValueError):
    """A bundle, shard, model or frame failed a checksum, magic or structure check."""


class FormatVersionError(EdgeshelfError, ValueError):
    """An artifact was written by a format version this library cannot read."""


class MissingDependencyError(EdgeshelfError, ImportError):
    """An optional package (an extra) is not installed."""


class ModelNotFoundError(EdgeshelfError, FileNotFoundError):
    """A model (towers, bundle, ASR model) is not where the caller said."""


class DeviceError(EdgeshelfError, OSError):
    """A microphone, camera, serial port or socket could not be opened or read."""


class ServiceError(EdgeshelfError, OSError):
    """The lookup service could not be reached or answered with an error."""


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); install it with: pip install 'edgeshelf[{extra}]'"
        ) from exc
