"""CLI commands of the towers room: ``edgeshelf train`` and ``edgeshelf evaluate``.

Nothing heavy is imported at module level (TensorFlow and Keras load inside the handlers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``evaluate``."""
    _register_train(subparsers)
    _register_evaluate(subparsers)


def _catalogue_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalogue",
        required=True,
        metavar="PATH",
        help="products file (CSV, JSONL, Parquet) or catalogue folder",
    )
    mapping = parser.add_mutually_exclusive_group()
    mapping.add_argument(
        "--columns",
        metavar="SPEC",
        help="column mapping, e.g. 'title=productDisplayName,image=images/{id}.jpg'",
    )
    mapping.add_argument("--preset", metavar="NAME", help="named column mapping: fashion, fashion-text")


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the towers contrastively on a catalogue",
        description=(
            "Train the text/image/audio/video encoders and the fusion tower on a catalogue (in-batch "
            "negatives, learned temperature, modality dropout) and save a self-describing towers folder. "
            "Checkpoints go to OUT/.checkpoint; --resume continues from there."
        ),
    )
    _catalogue_args(p)
    p.add_argument(
        "--queries", metavar="FILE", help="labelled TRAINING queries (JSONL); evaluation queries stay out"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="towers folder to write")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs (default 20)")
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="products per step (default 128)"
    )
    p.add_argument(
        "--learning-rate", type=float, default=None, metavar="LR", help="peak learning rate (default 2e-3)"
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (weights, batches, noise)")
    p.add_argument(
        "--text-warmup-epochs",
        type=int,
        default=0,
        metavar="N",
        help="first N epochs on the text alone (cheap steps)",
    )
    p.add_argument(
        "--image-backbone",
        metavar="FILE.tflite",
        help="frozen TFLite feature extractor under a trainable image head",
    )
    p.add_argument("--dim", type=int, default=None, metavar="N", help="embedding size (default 128)")
    p.add_argument(
        "--image-size", type=int, default=None, metavar="PX", help="image side for the CNN (default 96)"
    )
    p.add_argument(
        "--protocol",
        choices=["fashion"],
        help="train on this protocol's train split (with its template training queries)",
    )
    p.add_argument(
        "--split-seed", type=int, default=None, metavar="N", help="protocol split seed (default: --seed)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from OUT/.checkpoint (or the finished OUT)"
    )
    p.add_argument(
        "--max-minutes", type=float, default=None, metavar="M", help="stop (and checkpoint) after M minutes"
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=1, metavar="N", help="checkpoint every N epochs (0: never)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the training summary as JSON")
    p.set_defaults(func=_train)


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="retrieval quality of towers per query kind, beside BM25",
        description=(
            "Recall@1/10, MRR, nDCG@10 and P@5 per query kind for the towers, and the same figures for "
            "BM25 over titles (text queries) and optionally a pretrained image embedder (image queries)."
        ),
    )
    p.add_argument("--towers", required=True, metavar="DIR", help="towers folder (edgeshelf train --out)")
    _catalogue_args(p)
    p.add_argument(
        "--queries", metavar="FILE", help="labelled queries (JSONL); default: the catalogue's queries.jsonl"
    )
    p.add_argument(
        "--protocol", choices=["fashion"], help="evaluate on this protocol's test split and queries"
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="protocol split seed (default 0)")
    p.add_argument(
        "--peer",
        metavar="FILE.tflite",
        help="also score this pretrained image embedder (raw features, cosine)",
    )
    p.add_argument("--no-bm25", action="store_true", help="skip the BM25 baseline")
    p.add_argument(
        "--max-queries", type=int, default=None, metavar="N", help="at most N queries per kind (quick runs)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    p.set_defaults(func=_evaluate)


def _load(args: argparse.Namespace, queries: bool):
    from edgeshelf.catalogue.products import load_catalogue

    columns = args.columns or args.preset
    return load_catalogue(args.catalogue, columns=columns, queries=None if queries else False)


def _train(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.products import load_queries
    from edgeshelf.sdk.errors import InvalidInputError
    from edgeshelf.sdk.preprocess import ImageConfig, PreprocessConfig
    from edgeshelf.towers.model import TowersConfig
    from edgeshelf.towers.train import CHECKPOINT_DIR, TrainOptions, train

    out = Path(args.out)
    if args.resume and not out.exists():
        raise InvalidInputError(f"--resume: {out} does not exist; train without --resume first")
    catalogue = _load(args, queries=False)
    products: list[Any] = list(catalogue.products)
    queries = list(load_queries(args.queries)) if args.queries else []
    extra: dict[str, Any] = {
        "catalogue": {
            "source": str(catalogue.source),
            "columns": args.columns or args.preset,
            "products": len(catalogue.products),
            "skipped": len(catalogue.skipped),
        }
    }
    if args.protocol:
        from edgeshelf.towers.fashion import build_protocol, protocol_block, training_queries

        split_seed = args.seed if args.split_seed is None else args.split_seed
        protocol = build_protocol(catalogue, args.protocol, seed=split_seed)
        products = protocol.train_products(catalogue)
        queries += training_queries(catalogue, protocol)
        extra["protocol"] = protocol_block(protocol)
    defaults = TrainOptions()
    options = TrainOptions(
        epochs=args.epochs or defaults.epochs,
        batch_size=args.batch_size or defaults.batch_size,
        learning_rate=args.learning_rate or defaults.learning_rate,
        seed=args.seed,
        text_warmup_epochs=args.text_warmup_epochs,
        max_minutes=args.max_minutes,
        checkpoint_dir=str(out / CHECKPOINT_DIR),
        checkpoint_every=args.checkpoint_every,
    )
    base = TowersConfig()
    preprocess = base.preprocess
    if args.image_size:
        preprocess = PreprocessConfig(
            preprocess.text, ImageConfig(size=args.image_size), preprocess.audio, preprocess.video
        )
    config = TowersConfig(
        dim=args.dim or base.dim,
        image_backbone=args.image_backbone,
        preprocess=preprocess,
    )
    result = train(
        products,
        options,
        config=config,
        queries=queries,
        resume_from=out if args.resume else None,
        progress=not args.no_progress,
    )
    result.save(out, extra=extra)
    summary = {
        "towers": str(out),
        "space_id": result.towers.space_id,
        "completed": result.completed,
        "epochs_done": result.epochs_done,
        "steps_done": result.steps_done,
        "final_loss": result.training_block()["final_loss"],
        "seconds": round(result.seconds, 1),
        "products": result.products,
        "queries": result.queries,
        **({"protocol": extra["protocol"]} if "protocol" in extra else {}),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        state = (
            "done"
            if result.completed
            else f"stopped early (resume with --resume; checkpoint in {out / CHECKPOINT_DIR})"
        )
        print(
            f"trained {result.epochs_done} epochs on {result.products} products in {result.seconds:.0f} s: "
            f"loss {summary['final_loss']}, space {summary['space_id']}, {state}\nsaved {out}"
        )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edgeshelf.catalogue.products import load_queries
    from edgeshelf.sdk.errors import InvalidInputError
    from edgeshelf.towers.evaluate import (
        bm25_baseline,
        embedder_peer,
        evaluate,
        format_table,
        reports_to_dict,
    )
    from edgeshelf.towers.model import Towers
    from edgeshelf.towers.train import catalogue_fingerprint

    if args.max_queries is not None and args.max_queries < 1:
        raise InvalidInputError(f"--max-queries must be >= 1, got {args.max_queries}")
    if args.protocol and args.queries:
        raise InvalidInputError(
            f"--queries and --protocol {args.protocol} both name the queries; pass one of them"
        )
    meta = Towers.read_meta(args.towers)
    towers = Towers.load(args.towers)
    catalogue = _load(args, queries=not args.queries)
    progress = not args.no_progress
    extra: dict[str, Any] = {
        "towers": str(args.towers),
        "space_id": towers.space_id,
        "catalogue": str(catalogue.source),
    }
    if args.protocol:
        from edgeshelf.towers.fashion import build_protocol, check_split, evaluate_fashion

        protocol = build_protocol(
            catalogue, args.protocol, seed=args.seed, max_queries_per_kind=args.max_queries
        )
        notes = check_split(meta, protocol, catalogue_fingerprint(catalogue.products))
        reports = evaluate_fashion(
            towers, catalogue, protocol, peer_model=args.peer, bm25=not args.no_bm25, progress=progress
        )
        reports[0] = replace(reports[0], notes=(*reports[0].notes, *notes))
        extra["protocol"] = protocol.summary()
    else:
        queries = list(load_queries(args.queries)) if args.queries else list(catalogue.queries)
        if args.max_queries is not None:
            seen: dict[str, int] = {}
            kept = []
            for q in queries:
                seen[q.kind] = seen.get(q.kind, 0) + 1
                if seen[q.kind] <= args.max_queries:
                    kept.append(q)
            queries = kept
        reports = [evaluate(towers, catalogue, queries, progress=progress)]
        if not args.no_bm25 and any(q.text for q in queries):
            reports.append(bm25_baseline(catalogue, queries))
        if args.peer and any(q.image is not None and not q.text for q in queries):
            reports.append(embedder_peer(catalogue, args.peer, queries, progress=progress))
    if args.json:
        print(json.dumps(reports_to_dict(reports, **extra), indent=2))
    else:
        title = f"towers {args.towers} (space {towers.space_id}) on {catalogue.source}"
        if args.protocol:
            title += f", protocol {args.protocol} seed {args.seed}"
        print(format_table(reports, title=title))
    sys.stdout.flush()
    return 0
