"""`edgeshelf demo`: the main job on the embedded defaults."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the demo sub-command (not yet)."""
