"""CLI commands of the towers room."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this room's sub-commands (none yet)."""
