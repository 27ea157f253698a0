"""CLI of the lookup service: ``serve``, ``tokens create|list|revoke``, ``serve-publish``,
``serve-loadtest``. Heavy modules (fastapi, uvicorn, httpx) are imported inside the handlers."""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_TOKENS = os.environ.get("EDGESHELF_TOKENS", "tokens.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve``, ``tokens``, ``serve-publish`` and ``serve-loadtest`` sub-commands."""
    serve = subparsers.add_parser(
        "serve",
        help="run the catalogue lookup service (HTTP, search by embedding, shard downloads)",
        description=(
            "Serve an index over HTTP: POST /v1/search (embeddings only), GET /v1/shards/{name} "
            "(ETag) and /delta, GET /healthz, GET /metrics. API docs at /docs. Devices authenticate "
            "with tokens from `edgeshelf tokens create`."
        ),
    )
    serve.add_argument("--index", required=True, help="catalogue index folder (edgeshelf catalogue build)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--tokens", default=DEFAULT_TOKENS, help=f"device token file (default {DEFAULT_TOKENS})"
    )
    serve.add_argument("--shards", default=None, help="folder of <name>.shard files to offer (serve-publish)")
    serve.add_argument("--rate", type=float, default=20.0, help="requests/s per device token (0 = no limit)")
    serve.add_argument("--burst", type=int, default=40, help="burst size of the per-token rate limit")
    serve.add_argument(
        "--max-body", type=int, default=64 * 1024, help="largest request body in bytes (413 beyond)"
    )
    serve.add_argument("--max-k", type=int, default=1000, help="largest k a search may ask for")
    serve.add_argument(
        "--refresh-s", type=float, default=30.0, help="re-read the index every N s (0 = never)"
    )
    serve.add_argument(
        "--no-auth", action="store_true", help="accept requests without a token (experiments only)"
    )
    serve.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=_serve)

    tokens = subparsers.add_parser(
        "tokens",
        help="create, list and revoke per-device tokens of the lookup service",
        description="Per-device tokens, stored as salted scrypt hashes; the raw token is shown once.",
    )
    actions = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="issue a token for a device (printed once)")
    create.add_argument("--device", required=True, help="device name (letters, digits, . _ -)")
    create.add_argument(
        "--tokens", default=DEFAULT_TOKENS, help=f"token file (default {DEFAULT_TOKENS}; created)"
    )
    create.add_argument("--json", action="store_true", help="print one JSON document")
    create.set_defaults(func=_tokens_create)
    listing = actions.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("--tokens", default=DEFAULT_TOKENS, help=f"token file (default {DEFAULT_TOKENS})")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(func=_tokens_list)
    revoke = actions.add_parser("revoke", help="revoke the active token of a device (or a token id)")
    revoke.add_argument("name", help="device name or token id")
    revoke.add_argument("--tokens", default=DEFAULT_TOKENS, help=f"token file (default {DEFAULT_TOKENS})")
    revoke.add_argument("--json", action="store_true", help="print one JSON document")
    revoke.set_defaults(func=_tokens_revoke)

    publish = subparsers.add_parser(
        "serve-publish",
        help="make a shard file the current shard NAME of a service's shard folder (with deltas)",
        description=(
            "Copy SHARD into DIR as NAME.shard, keep the previous version, and write deltas from the "
            "kept versions so devices can update with a small download. A running service picks it up."
        ),
    )
    publish.add_argument("shard", help="shard file (edgeshelf catalogue shard)")
    publish.add_argument("--shards", required=True, help="the service's shard folder")
    publish.add_argument("--name", required=True, help="name devices download it by")
    publish.add_argument("--keep", type=int, default=3, help="old versions to keep deltas from (default 3)")
    publish.add_argument("--json", action="store_true", help="print one JSON document")
    publish.set_defaults(func=_publish)

    load = subparsers.add_parser(
        "serve-loadtest",
        help="bounded load test of a running lookup service (throughput, p50/p99, errors)",
        description="N concurrent clients send searches back to back for T seconds; loopback only by default.",
    )
    load.add_argument(
        "--url", default="http://127.0.0.1:8080", help="service URL (default http://127.0.0.1:8080)"
    )
    load.add_argument(
        "--token", default=os.environ.get("EDGESHELF_TOKEN"), help="device token (or $EDGESHELF_TOKEN)"
    )
    load.add_argument("--seconds", type=float, default=60.0, help="duration (default 60, at most 3600)")
    load.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    load.add_argument("--k", type=int, default=10, help="k per search (default 10)")
    load.add_argument("--dtype", default="float16", choices=["float32", "float16", "int8"], help="wire dtype")
    load.add_argument("--seed", type=int, default=0, help="seed of the query vectors")
    load.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback URL (a service you run)"
    )
    load.add_argument("--json", action="store_true", help="print one JSON document")
    load.set_defaults(func=_loadtest)


def _serve(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.service import ServiceOptions, create_app
    from edgeshelf.sdk.errors import require

    uvicorn = require("uvicorn", "server")
    options = ServiceOptions(
        auth=not args.no_auth,
        rate_per_s=args.rate,
        burst=args.burst,
        max_body_bytes=args.max_body,
        max_k=args.max_k,
        refresh_s=args.refresh_s,
    )
    app = create_app(args.index, None if args.no_auth else args.tokens, args.shards, options)
    state = app.state.edgeshelf
    auth = "no authentication" if args.no_auth else f"tokens from {args.tokens}"
    limit = "no rate limit" if args.rate == 0 else f"{args.rate:g} req/s per token"
    print(
        f"edgeshelf serve: index {args.index} (space {state.index.space_id}, {state.index.count} products, "
        f"dim {state.index.dim}) on http://{args.host}:{args.port} ({auth}, {limit}); docs at /docs",
        file=sys.stderr,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "edgeshelf serve: plain HTTP on a non-loopback address: put TLS in front of it", file=sys.stderr
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def _tokens_create(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.tokens import TokenStore

    issued = TokenStore.open(args.tokens, create=True).create(args.device)
    record = issued.record
    if args.json:
        print(json.dumps({**record.to_dict(), "token": issued.token, "tokens_file": args.tokens}))
    else:
        print(f"device {record.device}: token id {record.token_id}")
        print(issued.token)
        print(f"(stored hashed in {args.tokens}; this is the only time the token is shown)", file=sys.stderr)
    return 0


def _tokens_list(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.tokens import TokenStore

    records = TokenStore.open(args.tokens).list()
    if args.json:
        print(json.dumps({"tokens_file": args.tokens, "tokens": [r.to_dict() for r in records]}))
        return 0
    if not records:
        print(f"no tokens in {args.tokens}")
    for r in records:
        d = r.to_dict()
        state = "active" if r.active else f"revoked {d['revoked']}"
        print(f"{r.device:<24} {r.token_id}  created {d['created']}  {state}")
    return 0


def _tokens_revoke(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.tokens import TokenStore

    revoked = TokenStore.open(args.tokens).revoke(args.name)
    if args.json:
        print(json.dumps({"tokens_file": args.tokens, "revoked": [r.to_dict() for r in revoked]}))
    else:
        for r in revoked:
            print(f"revoked token {r.token_id} of device {r.device}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.service import publish_shard

    result = publish_shard(args.shards, args.name, args.shard, keep=args.keep)
    if args.json:
        print(json.dumps(result))
    else:
        deltas = ", ".join(f"v{v}" for v in result["deltas_from"]) or "none"
        print(
            f"published {args.shard} as {result['path']} (version {result['version']}); deltas from: {deltas}"
        )
        for version, why in result["deltas_skipped"].items():
            print(f"  no delta from v{version}: {why}", file=sys.stderr)
    return 0


def _loadtest(args: argparse.Namespace) -> int:
    from edgeshelf.catalogue.loadtest import LoadTestOptions, run_load_test

    options = LoadTestOptions(
        seconds=args.seconds,
        clients=args.clients,
        k=args.k,
        dtype=args.dtype,
        seed=args.seed,
        token=args.token,
        allow_remote=args.allow_remote,
    )
    print(
        f"serve-loadtest: {args.clients} clients for {args.seconds:g} s against {args.url} ...",
        file=sys.stderr,
    )
    report = run_load_test(args.url, options)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        lat = report.latency_ms
        print(
            f"{report.requests} requests in {report.seconds:.1f} s from {report.clients} clients: "
            f"{report.throughput_rps:.0f} req/s, latency p50 {lat.get('p50', 0):.2f} ms, "
            f"p90 {lat.get('p90', 0):.2f} ms, p99 {lat.get('p99', 0):.2f} ms, max {lat.get('max', 0):.2f} ms; "
            f"errors {report.errors} {report.errors_by_kind or ''}"
        )
    return 0 if report.errors == 0 else 1
