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
"""

from __future__ import annotations

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
