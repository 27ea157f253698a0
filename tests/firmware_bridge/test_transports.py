"""Transports: in-memory loopback, TCP and Unix sockets on the loopback interface, and a real
pseudo-terminal driven through pyserial (the serial code path a device uses)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from edgeshelf.firmware_bridge.errors import LinkClosedError, LinkTimeoutError
from edgeshelf.firmware_bridge.transports import (
    Faults,
    FaultyTransport,
    LoopbackTransport,
    SerialTransport,
    SocketListener,
    Transport,
    connect_socket,
    open_pty_pair,
    open_transport,
)
from edgeshelf.sdk.errors import DeviceError, InvalidInputError

# every byte value, with the ones a tty line discipline would eat or rewrite (NUL, ^C, ^D, XON/XOFF, CR, LF, DEL)
ALL_BYTES = bytes(range(256)) + b"\x00\x03\x04\x11\x13\r\n\x7f" * 64


def _read_exactly(transport: Transport, n: int, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n and time.monotonic() < deadline:
        data += transport.read(n - len(data), 0.05)
    return data


def _exchange(a: Transport, b: Transport) -> None:
    a.write(ALL_BYTES)
    assert _read_exactly(b, len(ALL_BYTES)) == ALL_BYTES
    b.write(ALL_BYTES[::-1])
    assert _read_exactly(a, len(ALL_BYTES)) == ALL_BYTES[::-1]
    assert a.read(10, 0.01) == b""  # nothing more: a time-out is an empty read


def test_loopback_pair_is_lossless_and_reports_closing() -> None:
    a, b = LoopbackTransport.pair()
    _exchange(a, b)
    a.write(b"last")
    a.close()
    assert b.read(100, 0.1) == b"last"  # what was written before closing still arrives
    with pytest.raises(LinkClosedError, match="peer closed"):
        b.read(100, 0.1)
    with pytest.raises(LinkClosedError, match="closed"):
        a.write(b"x")
    a.close()  # idempotent


def test_pty_through_pyserial_is_eight_bit_clean() -> None:
    pair = open_pty_pair()
    serial_end = SerialTransport.open(pair.slave_path, baudrate=921600)
    try:
        assert serial_end.name == f"serial:{pair.slave_path}"
        _exchange(pair.master, serial_end)
        _exchange(serial_end, pair.master)
    finally:
        serial_end.close()
        serial_end.close()
        pair.master.close()


def test_serial_open_errors_name_the_port() -> None:
    with pytest.raises(DeviceError, match=r"cannot open serial port '/dev/ttyNOPE0' at 921600 baud"):
        open_transport("/dev/ttyNOPE0")
    with pytest.raises(InvalidInputError, match="baudrate must be > 0"):
        SerialTransport.open("/dev/null", baudrate=0)


def test_tcp_listen_and_connect_on_loopback() -> None:
    listener = SocketListener.bind("tcp-listen://127.0.0.1:0")
    accepted: list[Transport] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept(5.0)))
    thread.start()
    client = connect_socket(listener.address, timeout=5.0)
    thread.join()
    listener.close()
    try:
        _exchange(client, accepted[0])
        client.close()
        with pytest.raises(LinkClosedError, match="peer closed the connection"):
            _read_exactly(accepted[0], 1)
    finally:
        accepted[0].close()


def test_unix_socket_via_open_transport(tmp_path: Path) -> None:
    path = tmp_path / "bridge.sock"
    addresses: list[str] = []
    server: list[Transport] = []
    thread = threading.Thread(
        target=lambda: server.append(
            open_transport(f"unix-listen://{path}", timeout=5.0, on_listen=addresses.append)
        )
    )
    thread.start()
    client = open_transport(f"unix://{path}", timeout=5.0)  # retries until the listener exists
    thread.join()
    try:
        assert addresses == [f"unix://{path}"]
        _exchange(client, server[0])
    finally:
        client.close()
        server[0].close()
    assert not path.exists()  # the listener removed its socket file


@pytest.mark.parametrize(
    ("url", "error", "phrase"),
    [
        ("", InvalidInputError, "the port is empty"),
        ("tcp://127.0.0.1", InvalidInputError, "needs HOST:PORT"),
        ("tcp://127.0.0.1:1", DeviceError, "cannot connect to tcp://127.0.0.1:1 within 0.2 s"),
        ("unix:///nonexistent/dir/sock", DeviceError, "is the other side listening"),
    ],
)
def test_socket_errors(url: str, error: type, phrase: str) -> None:
    with pytest.raises(error, match=phrase):
        open_transport(url, timeout=0.2)


def test_listener_times_out_without_a_peer() -> None:
    listener = SocketListener.bind("tcp-listen://127.0.0.1:0")
    try:
        with pytest.raises(LinkTimeoutError, match="no peer connected"):
            listener.accept(0.05)
    finally:
        listener.close()
    with pytest.raises(InvalidInputError, match="not a listening address"):
        SocketListener.bind("tcp://127.0.0.1:0")


def test_faulty_transport_is_seeded_and_counts_what_it_did() -> None:
    def run() -> tuple[bytes, dict[str, int]]:
        a, b = LoopbackTransport.pair()
        faulty = FaultyTransport(a, Faults(drop=0.2, flip=0.3, garbage=0.2, seed=3))
        for i in range(200):
            faulty.write(bytes([i]) * 8)
        faulty.close()
        received = b""
        while True:
            try:
                received += b.read(1 << 16, 0.01)
            except LinkClosedError:
                return received, faulty.counts

    first, counts = run()
    assert run() == (first, counts)  # same seed, same damage
    assert (
        counts["writes"] == 200
        and counts["dropped"] > 10
        and counts["flipped"] > 10
        and counts["garbage"] > 10
    )
    with pytest.raises(InvalidInputError, match=r"Faults.drop must be a probability in \[0, 1\]"):
        Faults(drop=1.5)
