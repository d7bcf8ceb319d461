"""``Idempotency-Key`` for every ``POST /api/v1/sites/{site}/...`` (the IETF httpapi draft).

A chat platform that retries a request which timed out sends it again with
the same key. The first request with a key runs and its answer (status,
body, content type) is stored; a repeat with the same method, path and body
within 24 hours gets that answer again, with ``Idempotent-Replayed: true``,
and nothing runs a second time. The same key with a different request is
refused (``422 idempotency_key_reused``); a repeat while the first is still
running gets ``409``, to be retried later. Keys are per site, and are only
taken for a request whose API key opens that site, so no one else can take
(or read the answer of) another site's key. An answer in the 5xx range is
not kept: the key is released and a retry runs afresh.

It is ASGI middleware rather than a route dependency so that the answer
stored is exactly the one sent, whatever route, validation error or handler
produced it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chathooks.api.auth import bearer_key
from chathooks.idempotency.store import (
    KEEP_SECONDS,
    find_key,
    forget_key,
    store_answer,
    take_key,
)
from chathooks.queue import write_transaction

__all__ = ["HEADER", "MAX_KEY_LENGTH", "IdempotencyMiddleware", "replaying"]

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
#: A key still "running" after this long belongs to a request that never finished
#: (its process died); the next repeat runs it again rather than wait forever.
ABANDONED_AFTER_SECONDS = 300.0
_SITE_POST = re.compile(r"^/api/v1/sites/(?P<site>[^/]+)/.+")


async def _refuse(
    send: Send, status: int, code: str, message: str, *, retry_after: bool = False
) -> None:
    """Answer with the API's error body naming the header."""
    body = json.dumps({"error": code, "field": HEADER, "message": message}).encode()
    await _answer(send, status, body, "application/json", retry_after=retry_after)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _SITE_POST.match(scope["path"])
        raw_key = None if match is None else _header(scope)
        if match is None or raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _refuse(
                send,
                400,
                "invalid_idempotency_key",
                f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} characters",
            )
            return
        site = match.group("site")
        services = scope["app"].state.services
        if not await _opens(services, scope, site):
            await self.app(scope, receive, send)  # the route answers 401 or 404 as usual
            return
        body, replay = await _read_body(receive)
        fingerprint = hashlib.sha256(b"POST\n" + scope["path"].encode() + b"\n" + body).hexdigest()
        engine = services.engine
        now = time.time()
        if not await _take(engine, site, key, fingerprint, now):
            await self._repeat(send, engine, site, key, fingerprint, now)
            return

        async def settle(status: int, body: bytes, content_type: str | None) -> None:
            # Before the last byte goes out: a client that has the answer finds it stored.
            if status >= 500:
                await _release(engine, site, key)
                return
            async with write_transaction(engine) as connection:
                await store_answer(
                    connection,
                    site,
                    key,
                    status_code=status,
                    body=body.decode("utf-8", errors="replace"),
                    content_type=content_type,
                )

        captured = _Capture(send, settle)
        try:
            await self.app(scope, replay, captured.send)
        except BaseException:
            if not captured.settled:
                await _release(engine, site, key)
            raise
        if not captured.settled:  # the app never answered in full
            await _release(engine, site, key)

    async def _repeat(
        self, send: Send, engine: Any, site: str, key: str, fingerprint: str, now: float
    ) -> None:
        async with engine.connect() as connection:
            stored = await find_key(connection, site, key)
        if stored is None:  # released meanwhile: the first attempt failed; ask for a retry
            await _refuse(
                send,
                409,
                "idempotency_key_in_use",
                f"a request with this {HEADER} is being retried",
            )
            return
        if stored.request_hash != fingerprint:
            await _refuse(
                send,
                422,
                "idempotency_key_reused",
                f"this {HEADER} was used for a different request; use a new key for a new request",
            )
            return
        if stored.status_code is None:
            await _refuse(
                send,
                409,
                "idempotency_key_in_use",
                f"the first request with this {HEADER} is still running; retry shortly",
                retry_after=True,
            )
            return
        await _answer(
            send,
            stored.status_code,
            (stored.response_body or "").encode(),
            stored.response_type,
            replayed=True,
        )


_HEADER_NAME = HEADER.lower().encode("latin-1")


def _header(scope: Scope) -> bytes | None:
    """The value of the request's last ``Idempotency-Key`` header, if any."""
    found = None
    for name, value in scope["headers"]:
        if name.lower() == _HEADER_NAME:
            found = value
    return found


async def _opens(services: Any, scope: Scope, site: str) -> bool:
    """Whether the request's bearer key opens ``site`` (the route checks it again)."""
    key = bearer_key(scope)
    owner = None if key is None else await services.auth.owner(key)
    return owner is not None and await services.auth.opens(owner, site)


async def _take(engine: Any, site: str, key: str, fingerprint: str, now: float) -> bool:
    """Take ``key`` for this request; False when an earlier request holds it."""
    try:
        async with write_transaction(engine) as connection:
            stored = await find_key(connection, site, key)
            if stored is not None:
                expired = stored.created_at < now - KEEP_SECONDS
                abandoned = (
                    stored.status_code is None and stored.created_at < now - ABANDONED_AFTER_SECONDS
                )
                if not (expired or abandoned):
                    return False
                await forget_key(connection, site, key)
            await take_key(connection, site, key, request_hash=fingerprint, now=now)
    except IntegrityError:
        return False  # taken by a concurrent request between the look and the insert
    return True


async def _release(engine: Any, site: str, key: str) -> None:
    async with write_transaction(engine) as connection:
        await forget_key(connection, site, key)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, replaying(body, receive)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands ``body`` (already read from ``receive``) to an app again."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _Capture:
    """Passes the app's answer through to the client, settling the key before its end."""

    def __init__(
        self, send: Send, settle: Callable[[int, bytes, str | None], Awaitable[None]]
    ) -> None:
        self._send = send
        self._settle = settle
        self.settled = False
        self._status: int | None = None
        self._content_type: str | None = None
        self._chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = int(message["status"])
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    self._content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body" and self._status is not None:
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False) and not self.settled:
                await self._settle(self._status, b"".join(self._chunks), self._content_type)
                self.settled = True
        await self._send(message)


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: str | None,
    *,
    replayed: bool = False,
    retry_after: bool = False,
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    if replayed:
        # A replay is this client's own answer, which may hold a secret (a created
        # site's key, a rotated secret): no cache on the way may keep it.
        headers += [(b"idempotent-replayed", b"true"), (b"cache-control", b"no-store")]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
