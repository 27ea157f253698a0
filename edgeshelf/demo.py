"""`edgeshelf demo`: the main job on the embedded defaults, end to end on a fresh machine.

Builds what is missing (each step cached in the work folder, so a second run is fast):

1. the demo catalogue (``edgeshelf sample-catalogue``),
2. the towers (``edgeshelf train``: text-only warm-up epochs, then every modality; about
   three minutes on a 2-core machine),
3. the speaker bundle (``edgeshelf convert --profile speaker``, int8),
4. the catalogue index (``edgeshelf catalogue build``),
5. the device shard (``edgeshelf catalogue shard``),

then synthesises a spoken query for a known product with ``espeak-ng`` (or, when it is not
installed, answers the same words typed, and says so), answers it on the speaker runtime
(:class:`edgeshelf.sdk.apps.SpeakerApp`: speech-to-text restricted to the shard's vocabulary,
int8 text encoder, local search) and prints the transcript, the top products and the latency
breakdown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeshelf.sdk.errors import EdgeshelfError, InvalidInputError

DEFAULT_WORKDIR = Path("~/.cache/edgeshelf/demo")
STAMP = "demo.json"
DEMO_FORMAT_VERSION = 2


@dataclass(frozen=True)
class DemoConfig:
    """What the cached artifacts depend on (a change rebuilds them)."""

    products: int = 1000
    seed: int = 0
    # Measured on the 1000-product demo catalogue (2 cores, about three minutes): 8 epochs of
    # every task leave the text tower untrained (clean R@1 0.15); 60 cheap text-only epochs
    # first, then 10 with every modality, reach clean R@1 0.81, noisy 0.75 (BM25: 1.00, 0.59).
    epochs: int = 10  # with every modality, after the text warm-up
    text_warmup_epochs: int = 60
    shard_top: int = 0  # 0 = every product

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": DEMO_FORMAT_VERSION,
            "products": self.products,
            "seed": self.seed,
            "epochs": self.epochs,
            "text_warmup_epochs": self.text_warmup_epochs,
            "shard_top": self.shard_top,
        }


class DemoError(EdgeshelfError):
    """A demo step failed; the message names the step and the command to run by hand."""


def _log(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _run_cli(argv: list[str]) -> None:
    """Run one ``edgeshelf`` sub-command in this process; raise when it fails."""
    import contextlib

    from edgeshelf.cli import main

    with contextlib.redirect_stdout(sys.stderr):  # the steps' own reports are progress here
        code = main(argv)
    if code != 0:
        raise DemoError(f"`edgeshelf {' '.join(argv)}` failed with exit status {code} (see above)")


@dataclass(frozen=True)
class _Step:
    name: str
    output: Path
    argv: list[str]


def _steps(work: Path, config: DemoConfig) -> list[_Step]:
    catalogue, towers = work / "catalogue", work / "towers"
    bundle, index, shard = work / "speaker.bundle", work / "catalogue.index", work / "catalogue.shard"
    top = ["--top", str(config.shard_top)] if config.shard_top else []
    return [
        _Step(
            "sample catalogue",
            catalogue,
            [
                "sample-catalogue",
                "--out",
                str(catalogue),
                "--products",
                str(config.products),
                "--seed",
                str(config.seed),
            ],
        ),
        _Step(
            "train towers",
            towers,
            [
                "train",
                "--catalogue",
                str(catalogue),
                "--out",
                str(towers),
                "--epochs",
                str(config.text_warmup_epochs + config.epochs),
                "--text-warmup-epochs",
                str(config.text_warmup_epochs),
                "--seed",
                str(config.seed),
            ],
        ),
        _Step(
            "convert speaker bundle (int8)",
            bundle,
            [
                "convert",
                "--towers",
                str(towers),
                "--profile",
                "speaker",
                "--calibration",
                str(catalogue),
                "--out",
                str(bundle),
                # a short demo training can miss the gate by a little; the bundle is still the
                # right one to show, and the report prints the gate's verdict from its manifest
                "--force",
            ],
        ),
        _Step(
            "build catalogue index",
            index,
            [
                "catalogue",
                "build",
                "--catalogue",
                str(catalogue),
                "--towers",
                str(towers),
                "--out",
                str(index),
            ],
        ),
        _Step(
            "cut device shard",
            shard,
            ["catalogue", "shard", "--index", str(index), "--out", str(shard), *top],
        ),
    ]


def build(
    work: Path, config: DemoConfig, rebuild: bool = False, log: Callable[[str], None] = _log
) -> dict[str, Any]:
    """Build whatever is missing under ``work``; return ``{step: seconds}`` (0 for cached ones).

    A step counts as cached only when its output exists *and* the stamp file records it as
    finished with the same settings, so an interrupted run is redone, not trusted.
    """
    from edgeshelf.sdk.fileio import atomic_write_text

    work.mkdir(parents=True, exist_ok=True)
    stamp_path = work / STAMP
    wanted = config.to_dict()
    try:
        stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    except (OSError, ValueError):
        stamp = {}
    steps = _steps(work, config)
    done = set(stamp.get("done", [])) if stamp.get("config") == wanted and not rebuild else set()
    if (rebuild or stamp.get("config") not in (None, wanted)) and any(s.output.exists() for s in steps):
        log(f"rebuilding everything in {work} ({'--rebuild' if rebuild else 'settings changed'})")
    seconds: dict[str, float] = {}
    stale = False
    for i, step in enumerate(steps, 1):
        if step.name in done and step.output.exists() and not stale:
            log(f"[{i}/{len(steps)}] {step.name}: cached ({step.output})")
            seconds[step.name] = 0.0
            continue
        stale = True  # everything after a rebuilt step depends on it
        done.discard(step.name)
        atomic_write_text(stamp_path, json.dumps({"config": wanted, "done": sorted(done)}, indent=2))
        _remove(step.output)
        log(f"[{i}/{len(steps)}] {step.name} ...")
        start = time.perf_counter()
        _run_cli(step.argv)
        seconds[step.name] = round(time.perf_counter() - start, 2)
        done.add(step.name)
        atomic_write_text(stamp_path, json.dumps({"config": wanted, "done": sorted(done)}, indent=2))
        log(f"[{i}/{len(steps)}] {step.name}: done in {seconds[step.name]:.1f} s")
    return seconds


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


VOICE = "en-us+f5"  # measured: of espeak-ng's English voices, pocketsphinx's model hears this one best


@dataclass(frozen=True)
class DemoQuery:
    """The demo's spoken query: its words, the product it names, and that product's category."""

    words: str
    product_id: str
    title: str
    category: str


def pick_query(catalogue_dir: Path, shard: Any, grammar: Any) -> DemoQuery:
    """What a shopper would say for a known product: among the shard's English products whose
    title ends in its category noun with a phrase of two or more words that the recogniser's
    grammar holds, the one with the longest phrase, then the most popular (e.g. "Lumen Men's Red
    Suede Wallet" -> "red suede wallet"). Longer phrases name the product more precisely: on the
    demo catalogue 81% of the three-word ones find their product in the top 10, 62% of the
    two-word ones."""
    from edgeshelf.catalogue.products import load_catalogue
    from edgeshelf.sdk.apps import spoken_phrase
    from edgeshelf.sdk.asr import normalize_phrase

    catalogue = load_catalogue(catalogue_dir)
    in_shard = set(shard.ids)
    candidates = []
    for product in catalogue.products:
        if product.id not in in_shard or not product.title.isascii():
            continue
        phrase = spoken_phrase(product.title, grammar or ())
        noun = normalize_phrase(product.category).split()[-1:]
        if phrase and phrase.split()[-1:] == noun:  # "red suede wallet", not "sandals by marlow"
            candidates.append((-len(phrase.split()), -product.popularity, product.id, phrase, product))
    if candidates:
        *_, phrase, product = min(candidates, key=lambda c: c[:3])
        return DemoQuery(phrase, product.id, product.title, product.category)
    raise DemoError(
        f"no English product title of {catalogue_dir} ends in a phrase of the speaker's grammar; "
        "rebuild with --rebuild"
    )


def synthesise(words: str, out: Path) -> Path | None:
    """Speak ``words`` into a WAV file with espeak-ng; None when espeak-ng is not installed."""
    from edgeshelf.sdk.tts import espeak_available, speak_to_wav

    return speak_to_wav(words, out, VOICE, 150) if espeak_available() else None


def run_demo(
    work: Path, config: DemoConfig, rebuild: bool = False, log: Callable[[str], None] = _log
) -> dict[str, Any]:
    """Build (cached), then answer one spoken query on the speaker runtime; a JSON-ready report."""
    from edgeshelf.sdk.apps import AppOptions, SpeakerApp

    start = time.perf_counter()
    seconds = build(work, config, rebuild, log)
    options = AppOptions(k=10, policy="local-only")
    with SpeakerApp.open(work / "speaker.bundle", shard=work / "catalogue.shard", options=options) as app:
        load_start = time.perf_counter()
        grammar = app.recognizer.grammar  # loading the speech model is not part of the query's latency
        load_ms = (time.perf_counter() - load_start) * 1000.0
        query = pick_query(work / "catalogue", app.searcher.shard, grammar)
        wav = synthesise(query.words, work / "query.wav")
        spoken = wav is not None
        if not spoken:
            log("espeak-ng is not installed: answering the query as typed text instead of speech")
        log(f'query for product {query.product_id} ("{query.title}"): "{query.words}"')
        answer = app.answer_wav(wav) if spoken else app.answer_text(query.words)
        categories = {hit.product_id: hit.category for hit in answer.hits}
    ids = answer.result.ids
    return {
        "workdir": str(work),
        "bundle": str(work / "speaker.bundle"),
        "shard": str(work / "catalogue.shard"),
        "query_wav": str(wav) if spoken else None,
        "build_seconds": seconds,
        "bundle_gate": _gate(work / "speaker.bundle"),
        "query": {
            "words": query.words,
            "product_id": query.product_id,
            "title": query.title,
            "category": query.category,
            "spoken": spoken,
        },
        "product_rank": ids.index(query.product_id) + 1 if query.product_id in ids else None,
        "same_category_in_top": sum(1 for pid in ids if categories.get(pid) == query.category),
        "asr_load_ms": round(load_ms, 1),
        "answer": answer.to_dict(),
        "total_seconds": round(time.perf_counter() - start, 2),
    }


def _gate(bundle: Path) -> dict[str, Any]:
    """The validation gate's verdict recorded in the bundle's manifest."""
    validation = json.loads((bundle / "manifest.json").read_text()).get("validation", {})
    return {
        "passed": bool(validation.get("passed")),
        "forced": bool(validation.get("forced")),
        "failures": [str(f) for f in validation.get("failures", [])],
    }


def _print_report(report: dict[str, Any]) -> None:
    answer, query = report["answer"], report["query"]
    print(f'asked:   "{query["words"]}" (for {query["product_id"]} "{query["title"]}", {query["category"]})')
    if "transcript" in answer:
        conf = answer["transcript"].get("confidence")
        extra = f" (confidence {conf:.2f})" if isinstance(conf, (int, float)) else ""
        print(f'heard:   "{answer["transcript"]["text"]}"{extra}')
    else:
        print("heard:   (espeak-ng is not installed: the words were typed, not spoken)")
    print("top products:")
    for rank, hit in enumerate(answer["hits"], 1):
        mark = "  <- asked for" if hit["product_id"] == query["product_id"] else ""
        price = "" if hit["price"] is None else f"{hit['price']:.2f}"
        print(
            f"  {rank:>2}. {hit['product_id']:<8} {hit['title'][:42]:<42} {hit['category'][:12]:<12} "
            f"{price:>7}  {hit['score']:.3f}{mark}"
        )
    rank = report["product_rank"]
    print(
        f"{query['product_id']}: {'rank ' + str(rank) if rank else 'not in the top 10'}; "
        f"{report['same_category_in_top']} of the top {len(answer['hits'])} are {query['category']}"
    )
    if answer.get("note"):
        print(f"note:    {answer['note']}")
    gate = report["bundle_gate"]
    if not gate["passed"]:
        print(
            f"bundle:  the int8 speaker bundle failed its validation gate ({'; '.join(gate['failures'])}); "
            "train longer (--epochs, --text-warmup-epochs) for a bundle that passes"
        )
    stages = {k: v for k, v in answer["timings_ms"].items() if "." not in k}
    print("latency: " + " | ".join(f"{k} {v:.1f} ms" for k, v in stages.items()))
    built = {k: v for k, v in report["build_seconds"].items() if v}
    if built:
        print("built:   " + ", ".join(f"{k} {v:.1f} s" for k, v in built.items()))
    print(f"demo finished in {report['total_seconds']:.1f} s (artifacts cached in {report['workdir']})")


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.products < 50:
        raise InvalidInputError(
            f"--products must be >= 50 (the demo needs a few categories), got {args.products}"
        )
    if args.epochs < 1:
        raise InvalidInputError(f"--epochs must be >= 1, got {args.epochs}")
    if args.text_warmup_epochs < 0:
        raise InvalidInputError(f"--text-warmup-epochs must be >= 0, got {args.text_warmup_epochs}")
    config = DemoConfig(
        products=args.products,
        seed=args.seed,
        epochs=args.epochs,
        text_warmup_epochs=args.text_warmup_epochs,
    )
    work = Path(args.workdir).expanduser()
    report = run_demo(work, config, rebuild=args.rebuild)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="the main job: build the demo catalogue, towers, bundle, shard; answer a spoken query",
        description="Generate the demo catalogue, train the towers, convert the speaker bundle "
        "(int8), build the index and the shard (each cached in --workdir), then synthesise a "
        "spoken query for a known product with espeak-ng and answer it on the speaker runtime, "
        "printing the transcript, the top products and the latency of each stage.",
    )
    p.add_argument(
        "--workdir",
        default=str(DEFAULT_WORKDIR),
        help=f"where the artifacts are built and cached (default {DEFAULT_WORKDIR})",
    )
    p.add_argument("--products", type=int, default=DemoConfig.products, help="catalogue size (default 1000)")
    p.add_argument(
        "--epochs",
        type=int,
        default=DemoConfig.epochs,
        help=f"training epochs with every modality, after the text warm-up (default {DemoConfig.epochs})",
    )
    p.add_argument(
        "--text-warmup-epochs",
        type=int,
        default=DemoConfig.text_warmup_epochs,
        help=f"cheap text-only epochs first (default {DemoConfig.text_warmup_epochs}; "
        "about three minutes in all on 2 cores)",
    )
    p.add_argument("--seed", type=int, default=0, help="catalogue and training seed (default 0)")
    p.add_argument("--rebuild", action="store_true", help="rebuild every artifact, cached or not")
    p.add_argument("--json", action="store_true", help="print the report as one JSON document")
    p.set_defaults(func=_cmd_demo)
