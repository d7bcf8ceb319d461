"""A real HTTP receiver on loopback that records what it is sent.

It runs an aiohttp server on its own event loop in a thread, so synchronous
tests, async tests and separate worker processes can all post to it. Tests
script its answers (status, body, headers, delay) and read back every request
exactly as it arrived on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from support.serving import ServingThread, start_aiohttp


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def document(self) -> dict[str, Any]:
        """The JSON payload, read as every Olark consumer reads it."""
        from chathooks.wire import decode_document

        return decode_document(self.body, self.content_type)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class RecordingReceiver:
    """Start with ``with RecordingReceiver() as receiver:``; post to ``receiver.url``."""

    def __init__(self, *, integration_base: str | None = "https://crm.example/leads/") -> None:
        self.requests: list[Received] = []
        #: Requests being answered right now, and the most there ever were at once.
        self.active = 0
        self.max_active = 0
        self._scripted: deque[Reply] = deque()
        #: How requests beyond the scripted ones are answered; None: 200 with an integrationUrl.
        self._default: Reply | None = None
        #: Set on exit: a reply still being delayed (a hanging receiver) ends at once.
        self._closing: asyncio.Event | None = None
        self._integration_base = integration_base
        self._lock = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._serving: ServingThread[tuple[web.AppRunner, int]] | None = None
        self.port = 0

    # -- scripting -----------------------------------------------------------------
    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests this way (then fall back to the default)."""
        with self._lock:
            for _ in range(times):
                self._scripted.append(Reply(status, body, dict(headers or {}), delay))

    def answer_all(
        self,
        status: int = 200,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer every request after the scripted ones this way, until told otherwise.

        ``delay`` past the sender's timeout makes a receiver that hangs.
        """
        with self._lock:
            self._default = Reply(status, body, dict(headers or {}), delay)

    def answer_normally(self) -> None:
        """Back to 200 with an integrationUrl for everything not scripted."""
        with self._lock:
            self._default = None

    # -- reading -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Block until ``count`` requests arrived; fail with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} requests within {timeout}s, got {len(self.requests)}"
                    )
                self._lock.wait(left)
            return list(self.requests)

    async def wait_for_async(self, count: int, timeout: float = 15.0) -> list[Received]:
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.document() for r in self.requests]

    # -- server --------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(
            method=request.method,
            path=request.path,
            query=request.raw_path.partition("?")[2],  # as sent, not re-decoded
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at=time.time(),
        )
        with self._lock:
            self.requests.append(received)
            reply = self._scripted.popleft() if self._scripted else self._default
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self._lock.notify_all()
        try:
            return await self._answer(received, reply)
        finally:
            with self._lock:
                self.active -= 1

    async def _answer(self, received: Received, reply: Reply | None) -> web.StreamResponse:
        if reply is None:
            document = {}
            if self._integration_base is not None:
                try:
                    document = {
                        "integrationUrl": self._integration_base
                        + str(received.document().get("id", ""))
                    }
                except Exception:
                    document = {}
            reply = Reply(200, document)
        if reply.delay and self._closing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        payload = reply.body
        if isinstance(payload, dict):
            return web.json_response(payload, status=reply.status, headers=reply.headers)
        text = payload.encode() if isinstance(payload, str) else (payload or b"")
        return web.Response(body=text, status=reply.status, headers=reply.headers)

    def __enter__(self) -> RecordingReceiver:
        serving = ServingThread("recording receiver", self._start, self._cleanup)
        self._loop, self._serving = serving.loop, serving
        self._runner, self.port = serving.run()
        return self

    async def _start(self) -> tuple[web.AppRunner, int]:
        self._closing = asyncio.Event()
        return await start_aiohttp(self._handle)

    @staticmethod
    async def _cleanup(started: tuple[web.AppRunner, int]) -> None:
        await started[0].cleanup()

    def __exit__(self, *exc: object) -> None:
        if self._serving is not None:
            if self._closing is not None:
                self._serving.loop.call_soon_threadsafe(self._closing.set)
            self._serving.stop()


def json_body(received: Received) -> Any:
    return json.loads(received.body)
