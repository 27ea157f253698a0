"""CLI commands of the catalogue room (data: sample-catalogue; index: catalogue, serve, tokens)."""

from __future__ import annotations

import argparse

from edgeshelf.catalogue import data_cli, index_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    data_cli.register(subparsers)
    index_cli.register(subparsers)
