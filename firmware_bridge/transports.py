"""Byte transports the link runs over: serial (pyserial), TCP, Unix sockets, a pseudo-terminal's
master side, and an in-memory loopback pair. All share one small interface (:class:`Transport`):

* ``write(data)``: send all bytes (raises :class:`~edgeshelf.sdk.errors.DeviceError`);
* ``read(max_bytes, timeout)``: the bytes available, waiting up to ``timeout`` seconds for the
  first; ``b""`` on time-out; raises :class:`LinkClosedError` once the peer has gone;
* ``close()``: idempotent.

:func:`open_transport` turns a port string into a transport::

    /dev/ttyUSB0, COM3, rfc2217://..., loop://   pyserial (serial_for_url), at ``baudrate``
    tcp://HOST:PORT          connect          tcp-listen://HOST:PORT    accept one connection
    unix:///path/to.sock     connect          unix-listen:///path       accept one connection
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from edgeshelf.firmware_bridge.errors import LinkClosedError, LinkTimeoutError
from edgeshelf.sdk.errors import DeviceError, InvalidInputError, require

DEFAULT_BAUDRATE = 921600  # 16 kHz PCM16 needs ~330 kbit/s on the wire with framing; 115200 is too slow


@runtime_checkable
class Transport(Protocol):
    """A full-duplex byte stream (one reader thread and one writer at a time)."""

    name: str

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes: ...

    def close(self) -> None: ...


# ---- in-memory loopback -------------------------------------------------------------------


class _Pipe:
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.cond = threading.Condition()
        self.closed = False


class LoopbackTransport:
    """One end of an in-memory, in-order, lossless byte pipe pair (:meth:`pair`). Unbounded:
    a writer never blocks (the link's flow control bounds what is in flight)."""

    def __init__(self, rx: _Pipe, tx: _Pipe, name: str) -> None:
        self._rx, self._tx, self.name = rx, tx, name

    @classmethod
    def pair(cls) -> tuple[LoopbackTransport, LoopbackTransport]:
        """Two connected ends: what one writes the other reads."""
        a_to_b, b_to_a = _Pipe(), _Pipe()
        return cls(b_to_a, a_to_b, "loopback:a"), cls(a_to_b, b_to_a, "loopback:b")

    def write(self, data: bytes) -> None:
        with self._tx.cond:
            if self._tx.closed:
                raise LinkClosedError(f"{self.name}: the loopback pipe is closed")
            self._tx.buffer += data
            self._tx.cond.notify_all()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        with self._rx.cond:
            if not self._rx.buffer and not self._rx.closed:
                self._rx.cond.wait(timeout)
            if self._rx.buffer:
                data = bytes(self._rx.buffer[:max_bytes])
                del self._rx.buffer[:max_bytes]
                return data
            if self._rx.closed:
                raise LinkClosedError(f"{self.name}: the peer closed the loopback pipe")
            return b""

    def close(self) -> None:
        for pipe in (self._rx, self._tx):
            with pipe.cond:
                pipe.closed = True
                pipe.cond.notify_all()

    def __repr__(self) -> str:
        return f"LoopbackTransport({self.name})"


# ---- serial (pyserial) ----------------------------------------------------------------------


class SerialTransport:
    """A serial port through pyserial: a device path (``/dev/ttyUSB0``, a pty slave) or any
    pyserial URL. Opened raw, 8N1, no flow control."""

    def __init__(self, port: object, name: str) -> None:
        self._port = port
        self.name = name
        self._timeout: float | None = None
        self._closed = False

    @classmethod
    def open(cls, port: str, baudrate: int = DEFAULT_BAUDRATE, write_timeout: float = 5.0) -> SerialTransport:
        serial = require("serial", "device")
        if baudrate <= 0:
            raise InvalidInputError(f"baudrate must be > 0, got {baudrate}")
        try:
            handle = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05, write_timeout=write_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(
                f"cannot open serial port {port!r} at {baudrate} baud ({exc}): check the device path, "
                "that no other program holds it, and that you may access it (e.g. the 'dialout' group)"
            ) from exc
        return cls(handle, f"serial:{port}")

    def write(self, data: bytes) -> None:
        serial = require("serial", "device")
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as exc:
            raise LinkTimeoutError(
                f"{self.name}: write timed out ({exc}); is the other side reading?"
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise LinkClosedError(f"{self.name}: write failed ({exc})") from exc

    def read(self, max_bytes: int, timeout: float) -> bytes:
        serial = require("serial", "device")
        try:
            if timeout != self._timeout:
                self._port.timeout = timeout
                self._timeout = timeout
            first = self._port.read(1)
            if not first:
                return b""
            waiting = self._port.in_waiting
            return first + (
                self._port.read(min(waiting, max_bytes - 1)) if waiting and max_bytes > 1 else b""
            )
        except (serial.SerialException, OSError) as exc:
            raise LinkClosedError(f"{self.name}: the serial line was closed or disconnected ({exc})") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._port.close()

    def __repr__(self) -> str:
        return f"SerialTransport({self.name})"


# ---- file descriptors (a pseudo-terminal's master side) ------------------------------------


class FdTransport:
    """A raw file descriptor (the master side of a pseudo-terminal), read with ``select``."""

    def __init__(self, fd: int, name: str, keep_open: tuple[int, ...] = ()) -> None:
        self._fd = fd
        self._keep = keep_open
        self.name = name
        self._closed = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                _, writable, _ = select.select([], [self._fd], [], 5.0)
                written = os.write(self._fd, view) if writable else 0
            except (OSError, ValueError) as exc:
                raise LinkClosedError(f"{self.name}: write failed ({exc})") from exc
            if not writable:
                raise LinkTimeoutError(f"{self.name}: write timed out; is the other side reading?")
            view = view[written:]

    def read(self, max_bytes: int, timeout: float) -> bytes:
        try:
            readable, _, _ = select.select([self._fd], [], [], timeout)
            if not readable:
                return b""
            data = os.read(self._fd, max_bytes)
        except (OSError, ValueError) as exc:
            raise LinkClosedError(f"{self.name}: the line was closed ({exc})") from exc
        if not data:
            raise LinkClosedError(f"{self.name}: end of file")
        return data

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self._fd, *self._keep):
            with contextlib.suppress(OSError):  # already closed by its owner is fine
                os.close(fd)

    def __repr__(self) -> str:
        return f"FdTransport({self.name})"


@dataclass(frozen=True)
class PtyPair:
    """A pseudo-terminal: ``master`` (a transport, the simulated firmware's end) and
    ``slave_path`` (``/dev/pts/N``, the path the host opens with pyserial)."""

    master: FdTransport
    slave_path: str


def open_pty_pair() -> PtyPair:
    """Create a pseudo-terminal in raw mode (no echo, no line editing, 8-bit clean).

    The slave stays open (raw) until the master is closed, so bytes written before the host
    opens it are neither mangled nor lost.
    """
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    return PtyPair(FdTransport(master, f"pty:{path}", keep_open=(slave,)), path)


# ---- sockets --------------------------------------------------------------------------------


class SocketTransport:
    """A connected TCP or Unix stream socket."""

    def __init__(self, sock: socket.socket, name: str, write_timeout: float = 5.0) -> None:
        sock.settimeout(write_timeout)  # reads go through select, so this bounds sendall only
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self.name = name
        self._closed = False

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise LinkTimeoutError(f"{self.name}: write timed out; is the other side reading?") from exc
        except OSError as exc:
            raise LinkClosedError(f"{self.name}: write failed ({exc})") from exc

    def read(self, max_bytes: int, timeout: float) -> bytes:
        try:
            readable, _, _ = select.select([self._sock], [], [], timeout)
            if not readable:
                return b""
            data = self._sock.recv(max_bytes)
        except (OSError, ValueError) as exc:
            raise LinkClosedError(f"{self.name}: the connection failed ({exc})") from exc
        if not data:
            raise LinkClosedError(f"{self.name}: the peer closed the connection")
        return data

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):  # the peer may have reset it already
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def __repr__(self) -> str:
        return f"SocketTransport({self.name})"


class SocketListener:
    """A listening TCP or Unix socket that hands out one :class:`SocketTransport` per accept."""

    def __init__(self, sock: socket.socket, name: str, unix_path: str | None = None) -> None:
        self._sock = sock
        self.name = name
        self._unix_path = unix_path
        self._closed = False

    @classmethod
    def bind(cls, url: str) -> SocketListener:
        """``tcp-listen://HOST:PORT`` (port 0 picks a free one) or ``unix-listen:///path``."""
        scheme, target = _split(url)
        try:
            if scheme == "tcp-listen":
                host, port = _host_port(url, target)
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(1)
                bound = sock.getsockname()
                return cls(sock, f"tcp://{bound[0]}:{bound[1]}")
            if scheme == "unix-listen":
                if os.path.exists(target):
                    os.unlink(target)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.bind(target)
                sock.listen(1)
                return cls(sock, f"unix://{target}", unix_path=target)
        except OSError as exc:
            raise DeviceError(f"cannot listen on {url} ({exc}): pick another port or path") from exc
        raise InvalidInputError(
            f"{url!r} is not a listening address (tcp-listen://HOST:PORT, unix-listen:///path)"
        )

    @property
    def address(self) -> str:
        """The URL a peer connects to (``tcp://127.0.0.1:PORT`` or ``unix:///path``)."""
        return self.name

    def accept(self, timeout: float | None = None) -> SocketTransport:
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            raise LinkTimeoutError(f"no peer connected to {self.name} within {timeout} s")
        conn, peer = self._sock.accept()
        return SocketTransport(conn, f"{self.name}<-{peer or 'peer'}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sock.close()
        if self._unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unix_path)


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme in ("unix", "unix-listen"):
        return parts.scheme, parts.path
    return parts.scheme, parts.netloc


def _host_port(url: str, netloc: str) -> tuple[str, int]:
    host, sep, port = netloc.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInputError(f"{url!r} needs HOST:PORT, e.g. tcp://127.0.0.1:7000")
    return host.strip("[]") or "127.0.0.1", int(port)


def connect_socket(url: str, timeout: float = 5.0) -> SocketTransport:
    """Connect to ``tcp://HOST:PORT`` or ``unix:///path``, retrying until ``timeout`` seconds
    have passed (the peer may still be starting)."""
    scheme, target = _split(url)
    if scheme == "tcp":
        host, port = _host_port(url, target)
        family, address = (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, port)
    elif scheme == "unix":
        family, address = socket.AF_UNIX, target
    else:
        raise InvalidInputError(f"{url!r} is not a socket address (tcp://HOST:PORT, unix:///path)")
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.connect(address)
            return SocketTransport(sock, url)
        except OSError as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise DeviceError(
                    f"cannot connect to {url} within {timeout} s ({exc}): is the other side listening?"
                ) from exc
            time.sleep(0.05)


def open_transport(
    port: str,
    *,
    baudrate: int = DEFAULT_BAUDRATE,
    timeout: float = 30.0,
    on_listen: Callable[[str], None] | None = None,
) -> Transport:
    """Open ``port`` (see the module docstring). For the ``*-listen`` forms, ``on_listen`` is
    called with the address to connect to before waiting up to ``timeout`` s for the peer."""
    if not port:
        raise InvalidInputError("the port is empty; give a device path, tcp://HOST:PORT or unix:///path")
    scheme = urlsplit(port).scheme
    if scheme in ("tcp", "unix"):
        return connect_socket(port, timeout)
    if scheme in ("tcp-listen", "unix-listen"):
        listener = SocketListener.bind(port)
        try:
            if on_listen is not None:
                on_listen(listener.address)
            return listener.accept(timeout)
        finally:
            listener.close()
    return SerialTransport.open(port, baudrate)


# ---- fault injection ------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """Seeded damage applied per ``write`` call (the link writes one frame per call):
    probabilities of dropping the write, flipping one bit in it, and writing ``1..garbage_bytes``
    random bytes before it."""

    drop: float = 0.0
    flip: float = 0.0
    garbage: float = 0.0
    garbage_bytes: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop", "flip", "garbage"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"Faults.{name} must be a probability in [0, 1], got {value}")
        if self.garbage_bytes < 1:
            raise InvalidInputError(f"Faults.garbage_bytes must be >= 1, got {self.garbage_bytes}")


class FaultyTransport:
    """Wraps a transport and damages what is written through it (:class:`Faults`), to test the
    link's retransmission, duplicate suppression and resynchronisation. ``counts`` says what
    was done."""

    def __init__(self, inner: Transport, faults: Faults) -> None:
        self._inner = inner
        self.faults = faults
        self.name = f"faulty:{inner.name}"
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()
        self.counts = {"writes": 0, "dropped": 0, "flipped": 0, "garbage": 0}

    def write(self, data: bytes) -> None:
        with self._lock:
            rng, faults = self._rng, self.faults
            self.counts["writes"] += 1
            if rng.random() < faults.drop:
                self.counts["dropped"] += 1
                return
            out = bytearray(data)
            if out and rng.random() < faults.flip:
                bit = rng.randrange(len(out) * 8)
                out[bit // 8] ^= 1 << (bit % 8)
                self.counts["flipped"] += 1
            if rng.random() < faults.garbage:
                out[:0] = rng.randbytes(rng.randint(1, faults.garbage_bytes))
                self.counts["garbage"] += 1
        self._inner.write(bytes(out))

    def read(self, max_bytes: int, timeout: float) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def close(self) -> None:
        self._inner.close()
