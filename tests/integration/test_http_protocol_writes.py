"""The serving protocol's joined writes: a small answer in one write, nothing held back.

``chathooks serve`` runs uvicorn with :class:`GuardedHttpToolsProtocol`, whose
transport holds a write until the next one (or the event loop's next turn), so
a response's head and body leave together. These tests serve a small ASGI app
with it on loopback and check what a client relies on: a head whose body is
not ready yet still arrives, ``100 Continue`` arrives before the client sends
its body, pipelined answers keep their order, and a head with its body is one
write.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from chathooks.http_limits.head import GuardedHttpToolsProtocol

Scope = dict[str, Any]


class _App:
    """``/small`` answers at once; ``/stream`` sends its head, then its body once released."""

    def __init__(self) -> None:
        self.release: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["path"] == "/stream":
            self.release = asyncio.Event()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await self.release.wait()
            await send({"type": "http.response.body", "body": b"late", "more_body": False})
            return
        if scope["path"] == "/release":
            assert self.release is not None
            self.release.set()
        answer = b"got:" + body if body else scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@contextmanager
def _served(app: _App) -> Iterator[int]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        http=GuardedHttpToolsProtocol,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)


def _read_until(sock: socket.socket, marker: bytes, already: bytes = b"") -> bytes:
    received = already
    while marker not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before {marker!r}; got {received!r}"
        received += chunk
    return received


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def test_a_head_goes_out_before_a_body_that_is_not_ready() -> None:
    app = _App()
    with (
        _served(app) as port,
        socket.create_connection(("127.0.0.1", port), timeout=20) as streaming,
    ):
        streaming.sendall(_get("/stream"))
        head = _read_until(streaming, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head
        with socket.create_connection(("127.0.0.1", port), timeout=20) as other:
            other.sendall(_get("/release"))
            assert _read_until(other, b"/release").startswith(b"HTTP/1.1 200 OK\r\n")
        rest = _read_until(streaming, b"0\r\n\r\n", head)
        assert rest.endswith(b"4\r\nlate\r\n0\r\n\r\n")


def test_100_continue_arrives_before_the_body_is_sent() -> None:
    with (
        _served(_App()) as port,
        socket.create_connection(("127.0.0.1", port), timeout=20) as sock,
    ):
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        interim = _read_until(sock, b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answer = _read_until(sock, b"got:hello")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_answers_keep_their_order() -> None:
    with (
        _served(_App()) as port,
        socket.create_connection(("127.0.0.1", port), timeout=20) as sock,
    ):
        sock.sendall(_get("/one") + _get("/two") + _get("/three"))
        received = _read_until(sock, b"/three")
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.index(b"/one") < received.index(b"/two") < received.index(b"/three")


class _Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def test_a_head_and_the_body_after_it_are_one_write() -> None:
    async def scenario() -> list[list[bytes]]:
        seen = []
        protocol = GuardedHttpToolsProtocol(
            config=uvicorn.Config(_App(), http=GuardedHttpToolsProtocol),
            server_state=uvicorn.server.ServerState(),
            app_state={},
        )
        transport = _Recording()
        protocol.connection_made(transport)
        joined = protocol.transport
        joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        joined.write(b"ok")
        seen.append(list(transport.writes))
        joined.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        seen.append(list(transport.writes))
        await asyncio.sleep(0)  # the loop's next turn
        seen.append(list(transport.writes))
        joined.write(b"last")
        joined.close()
        seen.append(list(transport.writes))
        return seen

    joined, held, flushed, closed = asyncio.run(scenario())
    head_and_body = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert joined == [head_and_body]
    assert held == [head_and_body]
    assert flushed == [head_and_body, b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert closed == [*flushed, b"last"]
