"""CLI of the catalogue data: ``sample-catalogue`` (the demo catalogue) and ``validate-catalogue``.

Nothing heavy is imported at module level (OpenCV and pyarrow load inside the handlers).
"""

from __future__ import annotations

import argparse
import json
import sys

_COLUMNS_HELP = (
    "column mapping for a foreign file: field=SOURCE pairs separated by commas; fields: id, title, "
    "description, category, price, popularity, image, video, audio, attributes. SOURCE is a column "
    "name or a template with {column} placeholders (image=images/{id}.jpg, relative to the file's "
    "folder); attributes=COL+COL+... or attributes=* (every other column). Example: "
    "id=id,title=productDisplayName,category=articleType,image=images/{id}.jpg,"
    "attributes=gender+baseColour"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sample-catalogue`` and ``validate-catalogue``."""
    sample = subparsers.add_parser(
        "sample-catalogue",
        help="generate the demo catalogue (products, images, videos, audio, labelled queries)",
        description=(
            "Generate edgeshelf's own demo catalogue into OUT: products.csv, images/ (one PNG per product), "
            "videos/ and audio/ (about 10% of products each), queries.jsonl (clean, noisy, zh, image, "
            "text_to_image, video, audio queries with graded relevance) and catalogue.json. "
            "Byte-deterministic for a given --seed and --products."
        ),
    )
    sample.add_argument(
        "--out", required=True, help="folder to create (new, empty, or an earlier sample catalogue)"
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--products", type=int, default=3000, help="number of products (default 3000)")
    sample.add_argument("--image-size", type=int, default=96, help="image side in pixels (default 96)")
    sample.add_argument("--json", action="store_true", help="print a JSON summary to stdout")
    sample.set_defaults(func=_sample_catalogue)

    validate = subparsers.add_parser(
        "validate-catalogue",
        help="load a catalogue file and report products, media and bad rows (file:line)",
        description=(
            "Load a products file (CSV, TSV, JSONL or Parquet) or a catalogue folder the way every edgeshelf "
            "command does, and report how many products and media files loaded and which rows were skipped "
            "(file:line: reason). Exit status 0 when it loads (bad rows are skipped), 2 on an error "
            "(or on the first bad row with --strict)."
        ),
    )
    validate.add_argument("file", help="products file, or a folder holding products.csv/.jsonl/.parquet")
    group = validate.add_mutually_exclusive_group()
    group.add_argument("--columns", help=_COLUMNS_HELP)
    group.add_argument(
        "--preset",
        help="a named column mapping: fashion (../shared/data/catalogue/fashion/products.csv with images/{id}.jpg), "
        "fashion-text (its styles_text_only.csv, no images)",
    )
    validate.add_argument(
        "--queries", help="labelled queries JSONL (default: queries.jsonl beside the file, if any)"
    )
    validate.add_argument(
        "--strict", action="store_true", help="fail on the first bad row instead of skipping it"
    )
    validate.add_argument(
        "--verify-media",
        choices=("none", "exists", "header", "decode"),
        default="header",
        help="how media files are checked (default header: exists and has a known signature; decode also decodes images)",
    )
    validate.add_argument(
        "--show", type=int, default=20, help="bad rows to list (default 20; all with --json)"
    )
    validate.add_argument("--json", action="store_true", help="print one JSON document to stdout")
    validate.set_defaults(func=_validate_catalogue)


def _sample_catalogue(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.sample import SampleOptions, generate_sample_catalogue

    info = generate_sample_catalogue(
        args.out,
        seed=args.seed,
        products=args.products,
        options=SampleOptions(image_size=args.image_size),
        progress=sys.stderr.isatty() or not args.json,
    )
    if args.json:
        print(json.dumps(info.to_dict(), ensure_ascii=False))
    else:
        c = info.counts
        queries = ", ".join(f"{k} {v}" for k, v in c["queries"].items())
        print(
            f"wrote {info.path}: {c['products']} products in {c['categories']} categories, "
            f"{c['colours']} colours, {c['materials']} materials, {c['brands']} brands; "
            f"{c['images']} images, {c['videos']} videos, {c['audio']} audio clips, "
            f"{c['chinese_first']} Chinese-first titles; queries: {queries} ({info.seconds:.1f} s)"
        )
    return 0


def _validate_catalogue(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.products import load_catalogue

    columns = args.columns if args.columns is not None else args.preset
    catalogue = load_catalogue(
        args.file,
        columns=columns,
        strict=args.strict,
        queries=args.queries,
        verify_media=args.verify_media,
    )
    summary = catalogue.summary()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    media = summary["media"]
    print(
        f"{catalogue.source}: {summary['products']} products loaded, {summary['skipped']} rows skipped; "
        f"{summary['categories']} categories; media: {media['image']} images, {media['video']} videos, "
        f"{media['audio']} audio"
    )
    if summary["queries"]:
        kinds = ", ".join(f"{k} {v}" for k, v in summary["queries"].items())
        print(
            f"queries: {kinds}"
            + (f" ({catalogue.pruned_queries} pruned)" if catalogue.pruned_queries else "")
        )
    if not catalogue.products and catalogue.skipped and columns is None:
        print(
            "hint: no row loaded with the canonical layout; map the file's columns with --columns "
            "or a preset (--preset fashion, --preset fashion-text)"
        )
    for row in catalogue.skipped[: max(0, args.show)]:
        print(f"skipped {row}")
    if len(catalogue.skipped) > args.show:
        print(f"... and {len(catalogue.skipped) - args.show} more skipped rows (all of them with --json)")
    return 0
