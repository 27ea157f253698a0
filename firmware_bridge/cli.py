"""CLI commands of the firmware_bridge room.

    edgeshelf bridge --port /dev/ttyUSB0|tcp://HOST:PORT|unix:///path --bundle B --shard S
    edgeshelf bridge simulate --port PORT|pty --wav query.wav
    edgeshelf bridge bench [--json]
    edgeshelf bridge vectors [--out firmware_bridge/test_vectors.json]

Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

PORT_HELP = (
    "serial device (/dev/ttyUSB0, a pty such as /dev/pts/3, any pyserial URL), tcp://HOST:PORT or "
    "unix:///path to connect, tcp-listen://HOST:PORT or unix-listen:///path to wait for the peer"
)


# the C codec's size: the host compiler, and Cortex-M0+/M4 when a bare-metal ARM gcc is installed
C_SIZE_BUILDS = (
    ("gcc", "-Os"),
    ("gcc", "-O2"),
    ("arm-none-eabi-gcc", "-Os -mcpu=cortex-m0plus -mthumb -ffreestanding"),
    ("arm-none-eabi-gcc", "-Os -mcpu=cortex-m4 -mthumb -ffreestanding"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``edgeshelf bridge`` and its sub-commands."""
    bridge = subparsers.add_parser(
        "bridge",
        help="run the firmware bridge (speaker pipeline driven by device firmware)",
        description=(
            "Run the host side of the firmware bridge: wait for the firmware's HELLO, then answer every "
            "wake -> audio -> end-of-utterance with a RESULT frame (ASR -> search), driving the LEDs on "
            "the way. Sub-commands: simulate (play the firmware from a WAV), bench, vectors."
        ),
    )
    bridge.add_argument("--port", help=PORT_HELP)
    bridge.add_argument("--baud", type=int, default=921600, help="serial baud rate (default 921600)")
    bridge.add_argument("--bundle", help="speaker bundle folder or archive (edgeshelf convert)")
    bridge.add_argument("--shard", help="catalogue shard file to search on the device")
    bridge.add_argument(
        "--asr-engine", choices=("pocketsphinx", "vosk"), default="pocketsphinx", help="speech recogniser"
    )
    bridge.add_argument("--asr-model", help="recogniser model folder (default: the engine's bundled model)")
    bridge.add_argument("--k", type=int, default=3, help="products per RESULT frame (default 3)")
    bridge.add_argument(
        "--handler",
        metavar="MODULE:FUNCTION",
        help="build the query handler with FUNCTION(args) instead of the SDK speaker app",
    )
    bridge.add_argument(
        "--credit-window", type=int, default=16, help="audio chunks the firmware may send ahead (default 16)"
    )
    bridge.add_argument("--max-queries", type=int, help="exit after answering this many queries")
    bridge.add_argument("--duration", type=float, help="exit after this many seconds")
    bridge.add_argument(
        "--hello-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the firmware or peer (default 60)",
    )
    bridge.add_argument(
        "--json", action="store_true", help="print one JSON document (queries, link stats) on exit"
    )
    bridge.set_defaults(func=_run_bridge)

    commands = bridge.add_subparsers(dest="bridge_command", metavar="SUBCOMMAND")

    simulate = commands.add_parser(
        "simulate",
        help="play the firmware side from a WAV file",
        description=(
            "Simulate device firmware: say HELLO, then for each query send WAKE, the WAV's audio as "
            "credit-controlled chunks at real-time pace, END_OF_UTTERANCE and STATUS, and wait for the "
            "host's RESULT. With --port pty a pseudo-terminal is created and its path printed."
        ),
    )
    simulate.add_argument("--port", required=True, help=PORT_HELP + ", or pty")
    simulate.add_argument("--wav", required=True, help="16-bit PCM WAV of the spoken query")
    simulate.add_argument("--repeat", type=int, default=1, help="send the query this many times (default 1)")
    simulate.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="1 = real time, 0 = as fast as the host grants credit (default 1)",
    )
    simulate.add_argument("--chunk-ms", type=int, default=20, help="audio chunk length (default 20 ms)")
    simulate.add_argument("--ring", type=int, default=8, help="firmware audio buffer in chunks (default 8)")
    simulate.add_argument("--baud", type=int, default=921600, help="serial baud rate (default 921600)")
    simulate.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the host (default 60)"
    )
    simulate.add_argument("--json", action="store_true", help="print the results as one JSON document")
    simulate.set_defaults(func=_run_simulate)

    bench = commands.add_parser(
        "bench",
        help="measure decoder throughput, audio drops under a slow host, C code size",
        description="Measure the Python frame decoder (frames/s, bytes/s), the audio drop count under "
        "a deliberately slow host, and the C codec's compiled size.",
    )
    bench.add_argument("--frames", type=int, default=20000, help="frames per decoder run (default 20000)")
    bench.add_argument(
        "--slow-ms", type=float, default=40.0, help="slow host's ms per 20 ms chunk (default 40)"
    )
    bench.add_argument("--json", action="store_true", help="print one JSON document")
    bench.set_defaults(func=_run_bench)

    vectors = commands.add_parser(
        "vectors",
        help="regenerate the shared Python/C test vectors",
        description="Write firmware_bridge/test_vectors.json from the Python codec (deterministic).",
    )
    vectors.add_argument("--out", help="output path (default: the package's test_vectors.json)")
    vectors.set_defaults(func=_run_vectors)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _make_handler(args: argparse.Namespace) -> Any:
    from edgeshelf.firmware_bridge.handler import load_handler_factory, make_speaker_handler

    if args.handler:
        return load_handler_factory(args.handler)(args)
    return make_speaker_handler(args)


def _run_bridge(args: argparse.Namespace) -> int:
    from edgeshelf.firmware_bridge.host import HostOptions, HostSession, QueryRecord
    from edgeshelf.firmware_bridge.transports import open_transport
    from edgeshelf.sdk.errors import InvalidInputError

    if not args.port:
        raise InvalidInputError(
            "edgeshelf bridge needs --port (a serial device, tcp://HOST:PORT or unix:///path)"
        )
    options = HostOptions(credit_window=args.credit_window, k=args.k)
    handler = _make_handler(args)
    records: list[QueryRecord] = []

    def show(record: QueryRecord) -> None:
        records.append(record)
        if args.json:
            return
        answer = record.answer
        head = (
            f"error: {answer.error}"
            if answer.error
            else ", ".join(
                f"{i} ({s:.3f}) {t}".rstrip()
                for i, s, t in zip(answer.ids, answer.scores, answer.titles or ("",) * len(answer.ids))
            )
            or "no match"
        )
        print(f'query {record.query}: "{answer.transcript}" -> {head}', flush=True)
        if record.dropped_chunks or record.lost_chunks:
            _log(
                f"query {record.query}: the firmware dropped {record.dropped_chunks} audio chunks and "
                f"{record.lost_chunks} were damaged in transit (host too slow, or line too slow/noisy)"
            )

    try:
        transport = open_transport(
            args.port,
            baudrate=args.baud,
            timeout=args.hello_timeout,
            on_listen=lambda address: _log(f"edgeshelf bridge: waiting for the firmware on {address}"),
        )
        session = HostSession.open(transport, handler, options, on_query=show)
        try:
            hello = session.wait_for_hello(args.hello_timeout)
            _log(
                f"edgeshelf bridge: {hello.name or 'firmware'} {'.'.join(map(str, hello.firmware_version))} "
                f"connected on {transport.name} ({hello.sample_rate} Hz)"
            )
            try:
                session.serve(max_queries=args.max_queries, duration_s=args.duration)
            except KeyboardInterrupt:
                _log("edgeshelf bridge: stopped")
            stats = session.stats
        finally:
            session.close()
    finally:
        close = getattr(handler, "close", None)
        if callable(close):
            close()
    if args.json:
        print(
            json.dumps(
                {"port": args.port, "queries": [r.to_dict() for r in records], "stats": stats.to_dict()},
                indent=2,
            )
        )
    elif stats.firmware_dropped:
        _log(
            f"edgeshelf bridge: the firmware reports {stats.firmware_dropped} audio chunks dropped since boot"
        )
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    from edgeshelf.firmware_bridge.simulator import FirmwareSimulator, SimulatorOptions, read_wav_pcm16
    from edgeshelf.firmware_bridge.transports import open_pty_pair, open_transport
    from edgeshelf.sdk.errors import InvalidInputError

    if args.repeat < 1:
        raise InvalidInputError(f"--repeat must be >= 1, got {args.repeat}")
    options = SimulatorOptions(
        pace=args.pace,
        chunk_ms=args.chunk_ms,
        ring_chunks=args.ring,
        hello_timeout_s=args.timeout,
        result_timeout_s=args.timeout,
    )
    pcm = read_wav_pcm16(args.wav, options.sample_rate)
    if args.port == "pty":
        pair = open_pty_pair()
        _log(
            f"edgeshelf bridge simulate: firmware on {pair.slave_path}; run: edgeshelf bridge --port {pair.slave_path}"
        )
        transport = pair.master
    else:
        transport = open_transport(
            args.port,
            baudrate=args.baud,
            timeout=args.timeout,
            on_listen=lambda address: _log(f"edgeshelf bridge simulate: waiting for the host on {address}"),
        )
    replies = []
    with FirmwareSimulator.open(transport, options) as firmware:
        for _ in range(args.repeat):
            reply = firmware.query_audio(pcm)
            replies.append(reply)
            if not args.json:
                result = reply.result
                hits = ", ".join(f"{h.product_id} ({h.score:.3f}) {h.title}".rstrip() for h in result.hits)
                text = f"error: {result.error}" if result.error else (hits or "no match")
                print(
                    f'query {reply.query}: "{result.transcript}" -> {text} '
                    f"[{reply.sent}/{reply.chunks} chunks sent, {reply.dropped} dropped, {reply.seconds:.2f} s]",
                    flush=True,
                )
        status = firmware.status()
    if args.json:
        print(
            json.dumps(
                {
                    "wav": args.wav,
                    "queries": [r.to_dict() for r in replies],
                    "status": {
                        "audio_captured": status.audio_captured,
                        "audio_sent": status.audio_sent,
                        "audio_dropped": status.audio_dropped,
                        "retransmits": status.retransmits,
                        "rx_errors": status.rx_errors,
                    },
                },
                indent=2,
            )
        )
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from edgeshelf.firmware_bridge.bench import c_code_size, decoder_throughput, slow_host_drops
    from edgeshelf.sdk.errors import MissingDependencyError

    decoder = [decoder_throughput(kind, frames=args.frames) for kind in ("control", "audio", "max")]
    drops = slow_host_drops(host_ms_per_chunk=args.slow_ms)
    sizes = []
    for compiler, flags in C_SIZE_BUILDS:
        try:
            sizes.append(c_code_size(compiler, flags))
        except MissingDependencyError as exc:
            _log(f"edgeshelf bridge bench: C size with {compiler} skipped ({exc})")
    if args.json:
        print(
            json.dumps(
                {
                    "decoder": [d.to_dict() for d in decoder],
                    "slow_host": drops.to_dict(),
                    "c_size": [s.to_dict() for s in sizes],
                },
                indent=2,
            )
        )
        return 0
    for d in decoder:
        print(
            f"decoder {d.label:8s} payload {d.payload_bytes:5d} B: {d.frames_per_s:12,.0f} frames/s "
            f"{d.bytes_per_s / 1e6:8.1f} MB/s"
        )
    print(
        f"slow host ({drops.host_ms_per_chunk:.0f} ms per {drops.chunk_ms} ms chunk, window {drops.credit_window}, "
        f"ring {drops.ring_chunks}): {drops.dropped}/{drops.chunks} chunks dropped by the firmware "
        f"(STATUS says {drops.status_dropped}), {drops.sent} sent, answered={drops.answered}"
    )
    for s in sizes:
        print(f"C codec ({s.compiler} {s.flags}): text {s.text} B, data {s.data} B, bss {s.bss} B")
    return 0


def _run_vectors(args: argparse.Namespace) -> int:
    from edgeshelf.firmware_bridge.vectors import VECTORS_PATH, write_vectors

    print(write_vectors(args.out or VECTORS_PATH))
    return 0
