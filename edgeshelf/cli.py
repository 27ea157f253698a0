"""The ``edgeshelf`` command: one entry point, one sub-command module per room.

Each room's ``cli`` module exposes ``register(subparsers)``; it must import nothing heavy at
module level (TensorFlow, LiteRT, OpenCV are imported inside the command functions), so that
``edgeshelf --help`` is instant and works on a device that has only the ``device`` extra.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgeshelf import __version__

# Order is the order of `edgeshelf --help`.
ROOM_CLIS = (
    "edgeshelf.catalogue.cli",
    "edgeshelf.towers.cli",
    "edgeshelf.towers.federated_cli",
    "edgeshelf.converters.cli",
    "edgeshelf.sdk.cli",
    "edgeshelf.firmware_bridge.cli",
    "edgeshelf.benchmarks.cli",
    "edgeshelf.demo",
)


class CliError(Exception):
    """An error the CLI reports as one line on stderr with exit status 2 (no traceback)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeshelf",
        description="On-device multimodal product search: train, convert, index, serve, query.",
    )
    parser.add_argument("--version", action="version", version=f"edgeshelf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in ROOM_CLIS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("edgeshelf: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI turns the library's errors into one line
        from edgeshelf.sdk.errors import EdgeshelfError

        if isinstance(exc, (EdgeshelfError, CliError, FileNotFoundError)):
            print(f"edgeshelf {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
