"""CLI commands of the catalogue room: data (sample-catalogue, validate-catalogue), index
(catalogue build/shard/delta/update/stats) and service (serve, tokens, serve-publish, serve-loadtest)."""

from __future__ import annotations

import argparse

from edgeshelf.catalogue import data_cli, index_cli, serve_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    data_cli.register(subparsers)
    index_cli.register(subparsers)
    serve_cli.register(subparsers)
