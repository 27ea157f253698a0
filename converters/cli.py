"""CLI commands of the converters room: ``edgeshelf convert``."""

from __future__ import annotations

import argparse

PROFILE_HELP = "device profile: speaker, glasses, hub, or the path of a profile .json file"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``convert``."""
    p = subparsers.add_parser(
        "convert",
        help="quantize trained towers into a validated device bundle",
        description=(
            "Convert trained towers into a bundle for one device profile: per-model TFLite "
            "conversion (int8 with a representative dataset from the calibration catalogue, "
            "float16, dynamic range or float32), then the validation gate (float vs quantized "
            "cosine, top-10 overlap, recall@10 / nDCG@10). A bundle that fails the gate is not "
            "written unless --force is given; the figures go into its manifest.json."
        ),
    )
    p.add_argument("--towers", required=True, help="towers folder (from `edgeshelf train`)")
    p.add_argument("--profile", required=True, help=PROFILE_HELP)
    p.add_argument("--calibration", required=True, help="calibration catalogue (folder or products file)")
    p.add_argument("--out", required=True, help="bundle folder to write (replaced atomically)")
    p.add_argument(
        "--quant",
        choices=("int8", "float16", "dynamic", "float32"),
        help="quantization mode (default: the profile's)",
    )
    p.add_argument("--force", action="store_true", help="write the bundle even if the gate fails (recorded)")
    p.add_argument("--archive", choices=("tar.gz", "zip"), help="also write OUT.tar.gz or OUT.zip")
    p.add_argument(
        "--calibration-count", type=int, default=200, metavar="N", help="calibration items (default 200)"
    )
    p.add_argument("--heldout-count", type=int, default=200, metavar="N", help="held-out items (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration / held-out split (default 0)")
    p.add_argument("--columns", help="column mapping of a foreign catalogue file, or a preset (e.g. fashion)")
    p.add_argument("--queries", help="labelled queries JSONL (default: queries.jsonl beside the catalogue)")
    p.add_argument(
        "--protocol",
        choices=("fashion",),
        help="validate with the fashion protocol's split and queries (calibration from its train split)",
    )
    p.add_argument("--protocol-seed", type=int, default=0, help="seed of the protocol's split (default 0)")
    p.add_argument(
        "--engine",
        choices=("auto", "converter", "aeq"),
        default="auto",
        help="quantizer: auto (the TFLite converter, see converters/quantize.py), or ai-edge-quantizer",
    )
    p.add_argument(
        "--threads", type=int, default=2, help="interpreter threads used for validation (default 2)"
    )
    p.add_argument(
        "--adapter",
        metavar="ADAPTER.npz",
        help="federated query adapter to run after the fusion tower (edgeshelf federated simulate --out)",
    )
    p.add_argument("--json", action="store_true", help="print the conversion report as one JSON document")
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    import json

    from edgeshelf.converters.convert import GateFailedError, convert

    try:
        report = convert(
            args.towers,
            args.profile,
            args.calibration,
            args.out,
            quant=args.quant,
            force=args.force,
            calibration_count=args.calibration_count,
            heldout_count=args.heldout_count,
            seed=args.seed,
            archive=args.archive,
            columns=args.columns,
            queries=args.queries,
            protocol=args.protocol,
            protocol_seed=args.protocol_seed,
            engine=args.engine,
            num_threads=args.threads,
            progress=True,
            adapter=args.adapter,
        )
    except GateFailedError as exc:
        if args.json:
            print(json.dumps({**exc.report.to_dict(), "error": str(exc)}, indent=2))
        else:
            print(exc.report.summary())
        raise
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0
