"""The benchmark's side of the sink: start it, reset it, read what arrived."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bench.cpu import process_cpu_seconds
from bench.processes import Child, Children, python_module
from bench.sink import HANG_PATH, READY_PREFIX, WEBHOOK_PATH


@dataclass(frozen=True)
class SinkStats:
    """Arrivals since the last reset, as the sink counted them."""

    requests: int
    distinct: int
    unreadable: int
    #: Requests the hanging endpoint is holding (or held) since the last release.
    held: int
    first_at: float | None
    last_at: float | None

    def drain_rate(self, *, requests: bool = False) -> float:
        """Deliveries per second from the first arrival to the last one."""
        count = self.requests if requests else self.distinct
        if self.first_at is None or self.last_at is None or count < 2:
            return 0.0
        span = self.last_at - self.first_at
        return (count - 1) / span if span > 0 else 0.0


class Sink:
    """A running sink process and an HTTP client for its control routes."""

    def __init__(self, child: Child, port: int, session: aiohttp.ClientSession) -> None:
        self.child = child
        self.port = port
        self._session = session
        self.base = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, children: Children, session: aiohttp.ClientSession) -> Sink:
        child = children.start("sink", python_module("bench.sink", "--port", "0"))
        line = child.wait_for_log(READY_PREFIX, timeout=30)
        port = int(line.split(READY_PREFIX, 1)[1].strip())
        return cls(child, port, session)

    def cpu_seconds(self) -> float | None:
        """CPU the sink process has used so far."""
        return process_cpu_seconds(self.child.pid)

    @property
    def webhook_url(self) -> str:
        return f"{self.base}{WEBHOOK_PATH}"

    @property
    def hanging_url(self) -> str:
        """An endpoint that holds every request until :meth:`release`."""
        return f"{self.base}{HANG_PATH}"

    async def reset(self) -> None:
        async with self._session.post(f"{self.base}/reset") as response:
            response.raise_for_status()

    async def release(self) -> None:
        """Let the hanging endpoint answer every request it holds."""
        async with self._session.post(f"{self.base}/release") as response:
            response.raise_for_status()

    async def stats(self) -> SinkStats:
        async with self._session.get(f"{self.base}/stats") as response:
            response.raise_for_status()
            data = await response.json()
        return SinkStats(
            requests=int(data["requests"]),
            distinct=int(data["distinct"]),
            unreadable=int(data["unreadable"]),
            held=int(data.get("held", 0)),
            first_at=data["first_at"],
            last_at=data["last_at"],
        )

    async def arrivals(self) -> dict[str, float]:
        """Transcript id → when it first arrived (epoch seconds)."""
        async with self._session.get(f"{self.base}/arrivals") as response:
            response.raise_for_status()
            data: dict[str, float] = await response.json()
        return data

    async def wait_for(
        self,
        count: int,
        *,
        timeout: float,
        watch: tuple[Child, ...] = (),
        requests: bool = False,
        deadline: float | None = None,
    ) -> SinkStats:
        """Poll until ``count`` distinct transcripts arrived or nothing arrives for ``timeout`` s.

        ``timeout`` is a stall limit, not a total: a slow but moving delivery
        keeps waiting. ``watch`` are processes whose death ends the wait early.
        With ``requests`` every POST counts, not only the first of each
        transcript id (a chat is posted after ``!lead`` and again when it closes).
        ``deadline`` (a ``time.monotonic()`` value) ends the wait regardless.
        """

        def counted(stats: SinkStats) -> int:
            return stats.requests if requests else stats.distinct

        stats = await self.stats()
        progress_at, seen = time.monotonic(), counted(stats)
        while counted(stats) < count:
            for child in (self.child, *watch):
                child.check_alive()
            if time.monotonic() - progress_at > timeout:
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
            stats = await self.stats()
            if counted(stats) != seen:
                progress_at, seen = time.monotonic(), counted(stats)
        return stats
