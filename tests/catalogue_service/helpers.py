"""Small helpers shared by the lookup-service tests (raw HTTP requests, the CLI, a broken server)."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np


def unit(dim: int, seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")


def search_body(server: Any, query: np.ndarray | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "space_id": server.space_id,
        "dtype": "float32",
        "vector": b64((unit(server.dim, 0) if query is None else query).astype("<f4")),
        "k": 10,
    }
    body.update(overrides)
    return body


def post_search(
    server: Any,
    body: Any = None,
    *,
    token: str | None = "default",
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /v1/search with the server's token (``token=None`` sends none), JSON ``body`` or ``raw`` bytes."""
    sent = {"content-type": "application/json"}
    if token == "default":
        token = server.token
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    content = (
        raw if raw is not None else json.dumps(body if body is not None else search_body(server)).encode()
    )
    return httpx.post(f"{server.url}/v1/search", content=content, headers=sent, timeout=10.0)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``edgeshelf ARGV`` in-process the way the hub does; return (exit code, stdout, stderr).

    Uses the hub's parser, adding this room's commands when the hub does not register them yet.
    """
    from edgeshelf.catalogue import serve_cli

    from edgeshelf import cli as hub

    parser = hub.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "tokens" not in sub.choices:
        serve_cli.register(sub)
    original = hub.build_parser
    out, err = io.StringIO(), io.StringIO()
    try:
        hub.build_parser = lambda: parser
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = hub.main(argv)
    finally:
        hub.build_parser = original
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def truncating_server(payload: bytes, headers: dict[str, str], send: int) -> Iterator[tuple[str, list[str]]]:
    """A real HTTP/1.1 server on 127.0.0.1 that dies mid-download.

    Every ``GET .../delta`` gets a 404 JSON error (no delta); every other GET gets a 200 that
    announces ``len(payload)`` bytes, sends the first ``send`` of them, and closes the
    connection. Yields ``(url, request lines seen)``.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    seen: list[str] = []
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode("latin-1")
            seen.append(line)
            if "/delta" in line:
                body = json.dumps(
                    {"error": {"code": "no_delta", "message": "no delta", "field": None}}
                ).encode()
                conn.sendall(
                    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                    + body
                )
                return
            head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
            head += f"content-length: {len(payload)}\r\nconnection: close\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            conn.sendall(head.encode("latin-1") + payload[:send])

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handle(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        stop.set()
        thread.join(5.0)
        listener.close()
