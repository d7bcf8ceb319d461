"""What a chat line costs as the chat grows, and what open consoles cost the ingest path.

Message cost: a few chats are filled line by line through
``POST .../messages``; the lines at two positions (the 10th and the 5,000th,
a window of consecutive lines from each) are then sent one at a time, and the
API process's CPU is read around each call from the scheduler's nanosecond
account of all its threads. The figure is the median CPU ms per call at each
position; the ratio far/near is what must stay flat (appending a line must
not rewrite the transcript).

Open streams: ``POST .../transcripts`` at a fixed rate, p99 of the API's
202, with no console open and with many consoles each listening to a chat's
event stream (``GET .../conversations/{id}/events``), in alternating rounds;
the API process's CPU per ingest under each condition is noted too, being
much steadier than a p99 on a shared machine.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.chats import chat_line, visitor
from bench.cpu import per_item_ms, scheduled_cpu_seconds
from bench.load import offer_steadily
from bench.payloads import Sample, conversation_id
from bench.results import percentile

#: Where a chat's line costs are compared: early in a chat, and deep into it.
NEAR_LINE = 10
FAR_LINE = 5_000
#: Consecutive lines measured at each position, in each chat.
WINDOW = 20
#: Requests in flight while chats are filled to the next position.
FILL_CONCURRENCY = 8


class GrowthFailed(RuntimeError):
    """The API refused a call the measurement needs."""


@dataclass
class LineCosts:
    """CPU ms of each measured call, per position."""

    near: int
    far: int
    chats: int
    near_ms: list[float] = field(default_factory=list)
    far_ms: list[float] = field(default_factory=list)
    fill_seconds: float = 0.0

    @property
    def near_median_ms(self) -> float | None:
        return percentile(self.near_ms, 0.5)

    @property
    def far_median_ms(self) -> float | None:
        return percentile(self.far_ms, 0.5)

    @property
    def ratio(self) -> float | None:
        near, far = self.near_median_ms, self.far_median_ms
        return far / near if near and far else None


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with session.post(url, json=body) as response:
        if response.status >= 300:
            text = await response.text()
            raise GrowthFailed(f"POST {url}: HTTP {response.status}: {text[:300]}")
        return await response.json()


async def line_costs(
    base_url: str,
    site_id: str,
    api_key: str,
    *,
    pid: int,
    chats: int,
    near: int = NEAR_LINE,
    far: int = FAR_LINE,
    window: int = WINDOW,
    prefix: str = "G",
) -> LineCosts:
    """Median CPU of line ``near`` and line ``far`` of ``chats`` chats (see the module)."""
    if scheduled_cpu_seconds(pid) is None:
        raise GrowthFailed("this system does not report per-thread CPU (/proc/<pid>/schedstat)")
    costs = LineCosts(near=near, far=far, chats=chats)
    url = f"{base_url}/api/v1/sites/{site_id}/conversations"
    headers = {"Authorization": f"Bearer {api_key}"}
    rngs = [random.Random(f"growth:{prefix}:{index}") for index in range(chats)]
    ids = [conversation_id(prefix, index) for index in range(chats)]
    written = [0] * chats
    connector = aiohttp.TCPConnector(limit=FILL_CONCURRENCY)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        for index, chat_id in enumerate(ids):
            await _post(session, url, {"id": chat_id, "visitor": visitor(index, rngs[index])})

        async def send(index: int) -> None:
            await _post(
                session, f"{url}/{ids[index]}/messages", chat_line(rngs[index], written[index])
            )
            written[index] += 1

        semaphore = asyncio.Semaphore(FILL_CONCURRENCY)

        async def fill(index: int, up_to: int) -> None:
            async with semaphore:
                while written[index] < up_to:
                    await send(index)

        for position, into in ((near, costs.near_ms), (far, costs.far_ms)):
            began = time.monotonic()
            await asyncio.gather(*(fill(index, position - 1) for index in range(chats)))
            costs.fill_seconds += time.monotonic() - began
            for _ in range(window):
                for index in range(chats):
                    before = scheduled_cpu_seconds(pid)
                    await send(index)
                    after = scheduled_cpu_seconds(pid)
                    if before is not None and after is not None:
                        into.append((after - before) * 1000)
    return costs


@dataclass
class StreamsRun:
    """Ingest with no stream open and with ``streams`` open, in alternating rounds."""

    streams: int
    rate: float
    rounds: int
    #: The API's time to 202 of every request, per condition, pooled over the rounds.
    alone_ms: list[float] = field(default_factory=list)
    beside_ms: list[float] = field(default_factory=list)
    #: The API process's CPU over each condition's requests, and how many were sent.
    alone_cpu: float = 0.0
    beside_cpu: float = 0.0
    alone_requests: int = 0
    beside_requests: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def alone_p99_ms(self) -> float | None:
        return percentile(self.alone_ms, 0.99)

    @property
    def beside_p99_ms(self) -> float | None:
        return percentile(self.beside_ms, 0.99)

    @property
    def ratio(self) -> float | None:
        alone, beside = self.alone_p99_ms, self.beside_p99_ms
        return beside / alone if alone and beside else None

    @property
    def alone_cpu_ms(self) -> float | None:
        """CPU ms per ingest with no stream open (the poll and the worker included)."""
        return per_item_ms(0.0, self.alone_cpu, self.alone_requests)

    @property
    def beside_cpu_ms(self) -> float | None:
        return per_item_ms(0.0, self.beside_cpu, self.beside_requests)


async def _open_streams(
    stack: AsyncExitStack, session: aiohttp.ClientSession, urls: Sequence[str]
) -> None:
    """Each stream opened and past its first ``: connected`` comment (it is listening)."""
    for url in urls:
        response = await stack.enter_async_context(session.get(url))
        if response.status != 200:
            raise GrowthFailed(f"GET {url}: HTTP {response.status}")
        line = await response.content.readline()
        if not line.startswith(b":"):
            raise GrowthFailed(f"GET {url}: the stream began with {line[:80]!r}")


async def ingest_beside_streams(
    base_url: str,
    site_id: str,
    api_key: str,
    *,
    pid: int,
    alone: Sequence[Sequence[Sample]],
    beside: Sequence[Sequence[Sample]],
    streams: int,
    rate: float,
    prefix: str = "S",
) -> StreamsRun:
    """``POST .../transcripts`` at ``rate``: a round alone, then a round with ``streams``
    consoles open, once per batch of ``alone`` and ``beside``, so that the machine's
    other work weighs on both conditions alike."""
    run = StreamsRun(streams=streams, rate=rate, rounds=len(alone))
    site = f"{base_url}/api/v1/sites/{site_id}"
    headers = {"Authorization": f"Bearer {api_key}"}
    transcripts = f"{site}/transcripts"

    async def offer(samples: Sequence[Sample], into: list[float]) -> float:
        before = scheduled_cpu_seconds(pid)
        load = await offer_steadily(
            transcripts,
            samples,
            rate=rate,
            headers=headers,
            content_type="application/json",
            expect=202,
        )
        after = scheduled_cpu_seconds(pid)
        if load.accepted < len(samples):
            run.failed.append(
                f"{len(samples) - load.accepted} of {len(samples)} refused: {load.first_error}"
            )
        into.extend(seconds * 1000 for seconds in load.response_seconds)
        return after - before if before is not None and after is not None else 0.0

    connector = aiohttp.TCPConnector(limit=streams + 8)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        ids = [conversation_id(prefix, index) for index in range(streams)]
        rng = random.Random(f"streams:{prefix}")
        for index, chat_id in enumerate(ids):
            body = {"id": chat_id, "visitor": visitor(index, rng)}
            await _post(session, f"{site}/conversations", body)
        urls = [f"{site}/conversations/{chat_id}/events" for chat_id in ids]
        for quiet, busy in zip(alone, beside, strict=True):
            run.alone_cpu += await offer(quiet, run.alone_ms)
            run.alone_requests += len(quiet)
            async with AsyncExitStack() as stack:
                await _open_streams(stack, session, urls)
                run.beside_cpu += await offer(busy, run.beside_ms)
                run.beside_requests += len(busy)
    return run
