"""Phase (a): the ceiling — a bare aiohttp loop posting the bodies, no persistence.

One ``ClientSession``, a fixed number of tasks each posting the next body as
soon as its previous request finished. Whatever chathooks adds (the queue,
the attempt log, signing) shows up as the distance from this figure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from chathooks.wire import FORM_CONTENT_TYPE


@dataclass(frozen=True)
class PostRun:
    """How a batch of POSTs went, measured on the client."""

    sent: int
    failed: int
    elapsed: float
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


async def post_all(
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    content_type: str = FORM_CONTENT_TYPE,
    headers: dict[str, str] | None = None,
    expect: int = 200,
) -> PostRun:
    """POST every body to ``url`` with ``concurrency`` requests in flight.

    Shared by the baseline and the API ingest phase: the same loop, so the two
    figures are comparable.
    """
    request_headers = {"Content-Type": content_type, **(headers or {})}
    next_index = 0
    failed = 0
    first_error: str | None = None
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async def poster(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, failed, first_error
        while next_index < len(bodies):
            body = bodies[next_index]
            next_index += 1
            async with session.post(url, data=body, headers=request_headers) as response:
                reply = await response.read()
                if response.status != expect:
                    failed += 1
                    if first_error is None:
                        first_error = f"HTTP {response.status}: {reply[:300]!r}"

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(poster(session))
        elapsed = time.perf_counter() - started
    return PostRun(sent=len(bodies), failed=failed, elapsed=elapsed, first_error=first_error)
