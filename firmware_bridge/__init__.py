"""edgeshelf.firmware_bridge: the framed protocol between device firmware (buttons, LEDs, mic
array, wake word, display) and the SDK process (DESIGN.md contract 5; PROTOCOL.md).

* Codec, pure functions: :mod:`.frames` (``encode_frame``, ``decode_frame``, ``FrameDecoder``)
  and :mod:`.messages` (one dataclass per message type).
* Transports, passed in: :mod:`.transports` (serial via pyserial, TCP, Unix sockets, pty,
  in-memory loopback).
* Reliability: :mod:`.link` (acks, retransmission, duplicate suppression, NACK, PING).
* Host: :mod:`.host` (``HostSession`` state machine calling a ``QueryHandler``) and
  :mod:`.handler` (the SDK speaker app as a handler).
* Firmware simulator: :mod:`.simulator`. C side: ``firmware_bridge/c/``.

Example (both ends in one process, over an in-memory link)::

    from edgeshelf.firmware_bridge import (BridgeAnswer, FirmwareSimulator, HostSession,
                                           LoopbackTransport, SimulatorOptions)

    class Echo:
        def answer_audio(self, pcm16, sample_rate):
            return BridgeAnswer(ids=("sku-1",), scores=(1.0,), transcript=f"{pcm16.size} samples")

    host_end, firmware_end = LoopbackTransport.pair()
    with HostSession.open(host_end, Echo()), FirmwareSimulator.open(firmware_end, SimulatorOptions(pace=0)) as fw:
        print(fw.query_wav("query.wav").result)
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module; imported on first use so that `edgeshelf --help` (which imports this
# package's cli) stays instant
_EXPORTS = {
    "FrameError": "errors",
    "FrameVersionError": "errors",
    "LinkClosedError": "errors",
    "LinkTimeoutError": "errors",
    "PayloadError": "errors",
    "UnknownMessageError": "errors",
    "MAX_PAYLOAD": "frames",
    "PROTOCOL_VERSION": "frames",
    "DecoderStats": "frames",
    "Frame": "frames",
    "FrameDecoder": "frames",
    "decode_frame": "frames",
    "encode_frame": "frames",
    "pack_frame": "frames",
    "unpack_frame": "frames",
    "BridgeAnswer": "host",
    "HostOptions": "host",
    "HostSession": "host",
    "QueryHandler": "host",
    "QueryRecord": "host",
    "Link": "link",
    "LinkOptions": "link",
    "MessageType": "messages",
    "frame_to_message": "messages",
    "message_to_frame": "messages",
    "FirmwareSimulator": "simulator",
    "SimulatedQuery": "simulator",
    "SimulatorOptions": "simulator",
    "LoopbackTransport": "transports",
    "SerialTransport": "transports",
    "SocketTransport": "transports",
    "Transport": "transports",
    "open_pty_pair": "transports",
    "open_transport": "transports",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
