"""An ASGI middleware: the body capped while it is read, the key checked before it is read.

Routes used to read and parse a whole body before looking at the key, with
no limit: 300 MB sent to any JSON route, without a key, took the service's
memory from 106 MB to over 1 GB. Here, before the app sees a request:

* a NUL in the path or the query is refused (``400``): no database stores
  one, and PostgreSQL answered such a lookup with a 500;
* a ``Content-Length`` over the route's limit is refused (``413``) without
  reading a byte of the body (one within it bounds the body: HTTP/1.1 framing
  ends the body there), and a body without one is counted while the app
  reads it and cut off at the limit, with the same ``413``;
* a ``gate`` (the API's key check) may refuse a request that carries a body
  before any of it is read, and before a ``100 Continue`` is sent.

Every refusal is the JSON error body ``{"error", "field", "message"}`` and
closes the connection, so what the client still sends is not parsed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from chathooks.wire import BodyTooLarge

__all__ = ["Gate", "Refusal", "RequestLimits"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of the app's."""

    status: int
    error: str
    field: str | None
    message: str
    headers: dict[str, str] | None = None

    def body(self) -> bytes:
        document = {"error": self.error, "field": self.field, "message": self.message}
        return json.dumps(document).encode("utf-8")


#: Looks at a request that carries a body, before the body is read; a refusal, or None.
Gate = Callable[[Scope], Awaitable[Refusal | None]]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in (b"0", b"")
    return _header(scope, b"transfer-encoding") is not None


def nul_refusal(scope: Scope) -> Refusal | None:
    """A 400 naming the path or the query parameter that holds a NUL."""
    if "\x00" in scope.get("path", ""):
        return Refusal(400, "bad_request", "path", "the path cannot contain a NUL character")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "") or "query"
                message = f"{shown}: a query parameter cannot contain a NUL character"
                return Refusal(400, "bad_request", shown, message)
        return Refusal(400, "bad_request", "query", "the query cannot contain a NUL character")
    return None


def _too_large(size: int, limit: int) -> Refusal:
    error = BodyTooLarge(size, limit)
    return Refusal(413, error.code, error.field, error.message)


class RequestLimits:
    """Wraps an ASGI app; ``limit_for(path)`` gives the body limit of a path in bytes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit_for: Callable[[str], int],
        gate: Gate | None = None,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = nul_refusal(scope)
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        framed = declared is not None and declared.strip().isdigit()
        size = int(declared) if framed and declared is not None else 0
        if refusal is None and size > limit:
            refusal = _too_large(size, limit)
        if refusal is None and self.gate is not None and _has_body(scope):
            refusal = await self.gate(scope)
        if refusal is not None:
            await _answer(send, refusal)
            return
        if framed and _header(scope, b"transfer-encoding") is None:
            # HTTP/1.1 framing ends the body at its Content-Length, which is within the
            # limit: nothing is left to count.
            await self.app(scope, receive, send)
            return
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        cut_off = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    if not started:
                        await _answer(send, _too_large(received, limit))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut_off and not started:
                return  # the 413 went out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not cut_off:
                raise
            # The app failed on the body it was denied; the 413 is the answer.


async def _answer(send: Send, refusal: Refusal) -> None:
    body = refusal.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in (refusal.headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
