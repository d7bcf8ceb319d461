"""A cap on the request line and headers, for uvicorn's httptools protocol.

httptools has no limit of its own, and it joins a header's pieces as they
arrive, so the work grows with the square of its length: a 40 MB header kept
the event loop, and with it every request and the in-process worker, busy
for seconds. This protocol counts the bytes of a request's head while they
arrive and answers ``431`` and closes the connection once they pass
:data:`MAX_HEAD_BYTES`, long before parsing gets expensive.

uvicorn's h11 protocol has a limit (``h11_max_incomplete_event_size``), but
answers a plain 400 and parses in pure Python; ``bench/http_head_guard.py``
compares the two.

The protocol also answers in one write where it can: uvicorn writes a
response's status line and headers as soon as the app starts the response,
and its body separately, so a small answer took two ``send`` calls (and two
TCP segments) where one does (:class:`_JoinedWrites`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD_BYTES", "GuardedHttpToolsProtocol", "head_too_large_response"]

#: The most a request line and its headers may take together (nginx allows 4 x 8 KiB).
MAX_HEAD_BYTES = 64 * 1024


def head_too_large_response(limit: int = MAX_HEAD_BYTES) -> bytes:
    """The whole ``431`` answer, as bytes on the wire, with the JSON error body."""
    body = json.dumps(
        {
            "error": "headers_too_large",
            "field": "headers",
            "message": f"the request line and headers exceed {limit} bytes together",
        }
    ).encode("ascii")
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode("ascii") + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head grows too large.

    Bytes are counted from the end of the previous request; when a request
    ends inside a chunk, the rest of that chunk is not counted, so the cap
    never refuses a legitimate request, and a head can run past the cap by at
    most one read (256 KiB), which parses in microseconds.
    """

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._completed = False
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_JoinedWrites(transport))

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._completed = False
        super().data_received(data)
        if self._in_head and not self._completed:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def on_message_begin(self) -> None:
        self._in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._completed = True

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("request head over %d bytes refused with 431", self.max_head_bytes)
        if not self.transport.is_closing():
            self.transport.write(head_too_large_response(self.max_head_bytes))
            self.transport.close()


class _JoinedWrites(asyncio.Transport):
    """A connection's transport whose writes wait to join the next one, until the loop's next turn.

    Every write of the connection goes through it, in order. A write is held
    until another follows (the two leave as one) or, at the latest, until the
    event loop's next turn: a response whose body follows its head at once
    leaves in one write, and nothing waits longer than that turn.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if self._held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        held, self._held = self._held, None
        self._transport.write(held + data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)
