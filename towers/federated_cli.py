"""`edgeshelf federated simulate`: FedAvg personalisation of the query adapter on simulated devices."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    fed = subparsers.add_parser(
        "federated",
        help="federated fine-tuning of the query adapter (Flower)",
        description="Federated personalisation of the query side (see edgeshelf.towers.federated).",
    )
    sub = fed.add_subparsers(dest="federated_command", metavar="SUBCOMMAND", required=True)
    sim = sub.add_parser(
        "simulate",
        help="run FedAvg rounds over simulated non-IID households on this machine",
        description=(
            "Simulate N devices (households that each see a few --group-by values and prefer one "
            "--prefer value), train the query adapter by FedAvg with the seed's local step on "
            "Flower's simulation runtime, and print per-round global and per-client recall@10."
        ),
    )
    sim.add_argument("--catalogue", required=True, help="products file (CSV/JSONL/Parquet) or its folder")
    sim.add_argument("--columns", help="column mapping or preset name for a foreign file (e.g. fashion)")
    sim.add_argument("--preset", help="a named column mapping (fashion, fashion-text)")
    sim.add_argument("--towers", required=True, help="trained towers folder (edgeshelf train --out)")
    sim.add_argument("--clients", type=int, default=6, help="simulated devices (default 6)")
    sim.add_argument("--rounds", type=int, default=5, help="federated rounds (default 5)")
    sim.add_argument(
        "--eta", type=float, default=1.0, help="local step toward the global model; 1 = plain FedAvg"
    )
    sim.add_argument("--local-epochs", type=int, default=3)
    sim.add_argument("--learning-rate", type=float, default=0.005, help="local Adam step (default 0.005)")
    sim.add_argument(
        "--weight-decay",
        type=float,
        default=0.3,
        help="L2 pull of the adapter toward identity, so it does not bend other queries (default 0.3)",
    )
    sim.add_argument(
        "--picks", type=int, default=120, help="recorded picks per device (70%% train, 30%% held out)"
    )
    sim.add_argument(
        "--group-by", default="gender", help="attribute that makes households non-IID (default gender)"
    )
    sim.add_argument(
        "--prefer", default="baseColour", help="attribute a household prefers (default baseColour)"
    )
    sim.add_argument(
        "--query-keys", default="gender,category", help="attributes a query names (default gender,category)"
    )
    sim.add_argument("--dp-noise", type=float, default=0.0, help="Gaussian noise multiplier (0 = no DP)")
    sim.add_argument("--dp-clip", type=float, default=0.5, help="update clipping norm under DP")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--out", help="write the final global adapter here (.npz) for `edgeshelf convert --adapter`"
    )
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.products import load_catalogue
    from edgeshelf.towers.federated import (
        FederatedOptions,
        make_clients,
        recall_at_k,
        save_adapter,
        simulate,
    )
    from edgeshelf.towers.model import Towers

    catalogue = load_catalogue(args.catalogue, columns=args.preset or args.columns)
    towers = Towers.load(args.towers)
    products = list(catalogue.products)
    print(f"federated: embedding {len(products)} products with {args.towers}", file=sys.stderr)
    vectors = towers.embed_products(products, progress=True)
    clients = make_clients(
        products,
        lambda texts: towers.embed(texts=texts),
        clients=args.clients,
        picks=args.picks,
        group_key=args.group_by,
        prefer_key=args.prefer,
        query_keys=tuple(k.strip() for k in args.query_keys.split(",") if k.strip()),
        seed=args.seed,
    )
    options = FederatedOptions(
        rounds=args.rounds,
        eta=args.eta,
        local_epochs=args.local_epochs,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        dp_noise=args.dp_noise,
        dp_clip=args.dp_clip,
        seed=args.seed,
    )
    report = simulate(vectors, clients, options, progress=not args.json)
    final = {
        c.name: recall_at_k(report.final_global, c.test_queries, c.test_targets, vectors) for c in clients
    }
    result = report.to_dict()
    result["space_id"] = towers.space_id
    result["final_global_recall_at_10"] = final
    result["clients"] = [
        {
            "name": c.name,
            "groups": list(c.groups),
            "preference": c.preference,
            "train_picks": len(c.train_targets),
            "held_out_picks": len(c.test_targets),
        }
        for c in clients
    ]
    if args.out:
        save_adapter(
            args.out,
            report.final_global,
            towers.space_id,
            rounds=args.rounds,
            eta=args.eta,
            clients=args.clients,
            dp_noise=args.dp_noise,
            dp_clip=args.dp_clip if args.dp_noise > 0 else None,
            epsilon=report.epsilon,
            catalogue=str(args.catalogue),
        )
        result["adapter"] = str(args.out)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
        return 0
    print(
        f"adapter: {report.parameters} parameters, {report.bytes_per_round_per_client} bytes per client per round"
    )
    if report.epsilon is not None:
        print(
            f"DP: noise multiplier {args.dp_noise}, clipping norm {args.dp_clip}, "
            f"epsilon {report.epsilon:.2f} at delta {options.dp_delta} (RDP accountant)"
        )
    print(f"{'round':>5}  {'global R@10':>11}  {'personal R@10':>13}")
    print(f"{'start':>5}  {np.mean(list(report.baseline_recall.values())):>11.3f}  {'':>13}")
    for r in report.rounds:
        print(f"{r.round:>5}  {r.mean_global_recall:>11.3f}  {r.mean_personal_recall:>13.3f}")
    print(f"{'final':>5}  {np.mean(list(final.values())):>11.3f}")
    print("per client (recall@10 on held-out picks): start -> final global / last personal")
    last = report.rounds[-1].clients if report.rounds else {}
    for c in clients:
        personal = last.get(c.name, {}).get("personal-recall", float("nan"))
        print(
            f"  {c.name} ({'+'.join(c.groups)}, likes {c.preference}): "
            f"{report.baseline_recall[c.name]:.3f} -> {final[c.name]:.3f} / {personal:.3f}"
        )
    if report.failed_clients:
        print("dropped updates: " + "; ".join(report.failed_clients))
    return 0
