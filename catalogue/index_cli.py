"""CLI of the catalogue index: ``edgeshelf catalogue build | update | shard | delta | stats``.

Nothing heavy is imported at module level (TensorFlow loads inside ``build`` / ``update``,
pymilvus only for ``--backend milvus``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_COLUMNS_HELP = "column mapping for a foreign catalogue file (field=SOURCE,...; see `edgeshelf validate-catalogue --help`)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``catalogue`` command group."""
    group = subparsers.add_parser(
        "catalogue",
        help="build and update the catalogue index; cut shards and shard deltas",
        description=(
            "The catalogue index (product metadata in SQLite, vectors in segment files; or Milvus) and the "
            "shards devices cache. Sub-commands: build, update, shard, delta, stats."
        ),
    )
    commands = group.add_subparsers(dest="catalogue_command", metavar="SUBCOMMAND", required=True)

    build = commands.add_parser(
        "build",
        help="embed every product of a catalogue into an index (resumable)",
        description=(
            "Embed every product of CATALOGUE with the towers and store the vectors and display metadata in "
            "the index folder OUT, recording the towers' space id. Batches are committed one by one: run the "
            "same command again after an interruption and it embeds only what is missing."
        ),
    )
    _catalogue_args(build)
    build.add_argument("--out", required=True, help="index folder to create (or resume)")
    build.add_argument(
        "--dtype",
        choices=("float32", "float16", "int8"),
        default="float16",
        help="stored vector type (default float16)",
    )
    build.add_argument(
        "--batch-size", type=int, default=256, help="products per embedded and committed batch (256)"
    )
    build.add_argument("--backend", choices=("embedded", "milvus"), default="embedded", help="index backend")
    build.add_argument(
        "--uri", help="Milvus URI for --backend milvus (default: Milvus Lite file OUT/milvus.db)"
    )
    build.add_argument("--no-resume", action="store_true", help="refuse to continue an existing index")
    build.add_argument(
        "--keep-missing", action="store_true", help="keep indexed products absent from CATALOGUE"
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    build.set_defaults(func=_build)

    update = commands.add_parser(
        "update",
        help="add, change and remove products without rebuilding",
        description=(
            "Bring INDEX in line with CATALOGUE: embed new products and products whose text or media changed, "
            "update price/popularity/title edits in place, remove products no longer listed (unless "
            "--keep-missing, for partial update files) and the ids given with --remove. Readers of the index "
            "see the old or the new state, never a mix."
        ),
    )
    update.add_argument("--index", required=True, help="index folder")
    _catalogue_args(update, required=False)
    update.add_argument("--remove", nargs="+", default=[], metavar="ID", help="product ids to remove")
    update.add_argument(
        "--keep-missing", action="store_true", help="keep indexed products absent from CATALOGUE"
    )
    update.add_argument("--batch-size", type=int, default=256, help="products per embedded batch (256)")
    update.add_argument("--no-progress", action="store_true", help="no progress bar")
    update.add_argument("--json", action="store_true", help="print the update report as JSON")
    update.set_defaults(func=_update)

    shard = commands.add_parser(
        "shard",
        help="cut a shard (one memory-mappable file) of the top N products for devices",
        description=(
            "Write a shard of INDEX to OUT: the top N products by popularity (or of the named categories), their "
            "vectors (int8 with per-dimension scales, or float16) and display metadata, with a header carrying "
            "the space id, version and checksum. The file is replaced atomically."
        ),
    )
    shard.add_argument("--index", required=True, help="index folder (or Milvus URI with --backend milvus)")
    shard.add_argument("--out", required=True, help="shard file to write (e.g. top10k.shard)")
    shard.add_argument("--top", type=int, help="number of products (default: all selected)")
    shard.add_argument(
        "--by", default="popularity", help="popularity (default) or category=NAME (category=A|B for several)"
    )
    shard.add_argument(
        "--dtype", choices=("int8", "float16"), default="int8", help="vector type (default int8)"
    )
    shard.add_argument(
        "--scales",
        choices=("dimension", "vector"),
        default="dimension",
        help="int8 scales: per dimension (default; fast SIMD search) or per vector",
    )
    shard.add_argument("--backend", choices=("embedded", "milvus"), help="open --index with this backend")
    shard.add_argument("--json", action="store_true", help="print the shard header as JSON")
    shard.set_defaults(func=_shard)

    delta = commands.add_parser(
        "delta",
        help="write the delta from an older shard to the index's current content",
        description=(
            "Compare the shard BASE with what the same selection of INDEX holds now and write the delta "
            "(added, changed, removed products) to OUT; a device applies it to its cached copy of BASE. "
            "--shard-out also writes the new full shard."
        ),
    )
    delta.add_argument("--index", required=True, help="index folder")
    delta.add_argument("--base", required=True, help="the older shard the devices hold")
    delta.add_argument("--out", required=True, help="delta file to write")
    delta.add_argument("--shard-out", help="also write the new full shard here")
    delta.add_argument("--json", action="store_true", help="print the delta header as JSON")
    delta.set_defaults(func=_delta)

    stats = commands.add_parser("stats", help="counts, sizes and settings of an index")
    stats.add_argument("--index", required=True, help="index folder (or Milvus URI with --backend milvus)")
    stats.add_argument("--backend", choices=("embedded", "milvus"), help="open --index with this backend")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_stats)


def _catalogue_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--catalogue", required=required, help="products file (CSV, JSONL, Parquet) or a catalogue folder"
    )
    parser.add_argument("--towers", required=required, help="towers folder (edgeshelf train writes it)")
    mapping = parser.add_mutually_exclusive_group()
    mapping.add_argument("--columns", help=_COLUMNS_HELP)
    mapping.add_argument("--preset", help="a named column mapping (fashion, fashion-text)")


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from edgeshelf.catalogue.products import load_catalogue
    from edgeshelf.towers.model import Towers

    catalogue = load_catalogue(args.catalogue, columns=args.columns or args.preset, queries=False)
    if catalogue.skipped:
        print(
            f"edgeshelf catalogue: skipped {len(catalogue.skipped)} bad row(s), e.g. {catalogue.skipped[0]}",
            file=sys.stderr,
        )
    return catalogue, Towers.load(args.towers)


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> int:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print("\n".join(lines))
    return 0


def _report_lines(report: Any) -> list[str]:
    r = report.to_dict()
    return [
        f"index {r['index']} (space {r['space_id']}, generation {r['generation']}): {r['count']} products",
        f"  added {r['added']}, changed {r['changed']}, metadata only {r['metadata_only']}, removed {r['removed']}, "
        f"unchanged {r['unchanged']}",
        f"  embedded {r['embedded']} in {r['embed_seconds']:.1f} s ({r['products_per_s']:.1f} products/s); "
        f"total {r['seconds']:.1f} s",
    ]


def _build(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.build import build_index

    catalogue, towers = _load(args)
    report = build_index(
        catalogue,
        towers,
        args.out,
        batch_size=args.batch_size,
        dtype=args.dtype,
        resume=not args.no_resume,
        progress=not args.no_progress,
        backend=args.backend,
        uri=args.uri,
        remove_missing=not args.keep_missing,
    )
    return _emit(args, report.to_dict(), _report_lines(report))


def _update(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.build import update_index
    from edgeshelf.catalogue.index import CatalogueIndex
    from edgeshelf.sdk.errors import InvalidInputError

    if (args.catalogue is None) != (args.towers is None):
        raise InvalidInputError(
            "catalogue update needs both --catalogue and --towers (or neither, with --remove)"
        )
    if args.catalogue is None and not args.remove:
        raise InvalidInputError("nothing to do: give --catalogue and --towers, and/or --remove ID ...")
    with CatalogueIndex.open(args.index) as index:
        data: dict[str, Any] = {}
        lines: list[str] = []
        if args.catalogue is not None:
            catalogue, towers = _load(args)
            report = update_index(
                index,
                catalogue,
                towers,
                batch_size=args.batch_size,
                progress=not args.no_progress,
                remove_missing=not args.keep_missing,
            )
            data = report.to_dict()
            lines = _report_lines(report)
        if args.remove:
            present = [pid for pid in args.remove if pid in index]
            generation = index.remove(args.remove)
            data.update({"removed_ids": present, "generation": generation, "count": index.count})
            lines.append(
                f"removed {len(present)} of {len(args.remove)} id(s); {index.count} products, generation {generation}"
            )
        return _emit(args, data, lines)


def _shard(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.build import cut_shard
    from edgeshelf.catalogue.index import CatalogueIndex

    with CatalogueIndex.open(args.index, backend=args.backend) as index:
        info = cut_shard(index, args.out, top=args.top, by=args.by, dtype=args.dtype, scales=args.scales)
    data = {"path": args.out, **info.to_dict()}
    lines = [
        f"wrote {args.out}: {info.count} products x {info.dim} {info.dtype} ({info.scale_mode} scales), "
        f"{info.size} bytes",
        f"  space {info.space_id}, version {info.version}, checksum crc32:{info.checksum:08x}",
    ]
    return _emit(args, data, lines)


def _delta(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeshelf.catalogue.build import make_delta
    from edgeshelf.catalogue.index import CatalogueIndex

    with CatalogueIndex.open(args.index) as index:
        info = make_delta(args.base, index, args.out, new_shard=args.shard_out)
    data = {"path": args.out, "size_bytes": Path(args.out).stat().st_size, **info.to_dict()}
    lines = [
        f"wrote {args.out} ({data['size_bytes']} bytes): version {info.base_version} -> {info.target_version}, "
        f"+{len(info.added)} added, ~{len(info.changed)} changed, -{len(info.removed)} removed"
    ]
    if args.shard_out:
        lines.append(f"wrote the new full shard {args.shard_out}")
    return _emit(args, data, lines)


def _stats(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.index import CatalogueIndex

    with CatalogueIndex.open(args.index, backend=args.backend) as index:
        data = index.stats()
    lines = [f"{key}: {value}" for key, value in data.items()]
    return _emit(args, data, lines)
