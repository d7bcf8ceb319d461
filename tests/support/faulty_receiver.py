"""A loopback receiver that misbehaves on a fixed share of the requests it gets.

Each request draws its answer from a generator seeded with its
``webhook-id`` and attempt number, so a run is the same every time: with
probability ``fault_rate`` one of the faults below, otherwise a 200 with an
``integrationUrl``. It records every request and what it answered, for the
fault-injection suite to check delivery against.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

from aiohttp import web

from support.serving import ServingThread, start_aiohttp

#: Answers the sender must treat as success, however odd their bodies.
SUCCESSES = ("ok", "nul", "invalid_utf8", "ten_mb")
#: Answers the sender must retry.
FAILURES = ("http_503", "timeout", "reset")
FAULTS = ("http_503", "timeout", "reset", "nul", "invalid_utf8", "ten_mb")
TEN_MB = b"x" * (10 * 1024 * 1024)


@dataclass(frozen=True)
class Answered:
    webhook_id: str
    kind: str
    at: float


class FaultyReceiver:
    """Start with ``with FaultyReceiver(timeout_seconds=...) as r:``; post to ``r.url``."""

    def __init__(self, *, fault_rate: float = 0.3, timeout_seconds: float = 4.0) -> None:
        self.fault_rate = fault_rate
        self.timeout_seconds = timeout_seconds
        self.answers: list[Answered] = []
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serving: ServingThread[tuple[web.AppRunner, int]] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def kind_for(self, webhook_id: str, attempt: int) -> str:
        draw = random.Random(f"{webhook_id}:{attempt}")
        if draw.random() >= self.fault_rate:
            return "ok"
        return draw.choice(FAULTS)

    def successes(self) -> Counter[str]:
        """How many success answers each webhook-id got."""
        with self._lock:
            return Counter(a.webhook_id for a in self.answers if a.kind in SUCCESSES)

    def arrivals(self) -> list[Answered]:
        with self._lock:
            return list(self.answers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        with self._lock:
            self._attempts[webhook_id] += 1
            kind = self.kind_for(webhook_id, self._attempts[webhook_id])
            self.answers.append(Answered(webhook_id, kind, time.time()))
        if kind == "http_503":
            return web.Response(status=503, text="overloaded")
        if kind == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return web.Response(status=200, text="too late")
        if kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPInternalServerError()
        if kind == "nul":
            return web.Response(body=b'{"ok": true}\x00', content_type="application/json")
        if kind == "invalid_utf8":
            return web.Response(body=b"\xff\xfe\xc3 not UTF-8", content_type="text/plain")
        if kind == "ten_mb":
            return web.Response(body=TEN_MB, content_type="text/plain")
        return web.json_response({"integrationUrl": f"https://crm.example/{webhook_id}"})

    def __enter__(self) -> FaultyReceiver:
        serving = ServingThread("faulty receiver", self._start, _cleanup)
        self._loop, self._serving = serving.loop, serving
        self.port = serving.run()[1]
        return self

    async def _start(self) -> tuple[web.AppRunner, int]:
        return await start_aiohttp(self._handle)

    def __exit__(self, *exc: object) -> None:
        if self._serving is not None:
            self._serving.stop()


async def _cleanup(started: tuple[web.AppRunner, int]) -> None:
    await started[0].cleanup()
