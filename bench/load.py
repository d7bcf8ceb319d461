"""Phase loads against the chathooks API: bulk ingest and a steady offered load.

The offered load is open-loop: request *i* is sent at ``start + i / rate``
whether or not earlier requests were answered, and its send time is noted
then. A slow service therefore shows up as latency, instead of quietly
lowering the rate the benchmark offers (coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.payloads import Sample


@dataclass
class OfferedLoad:
    """What the client did during a steady-rate phase."""

    target_rate: float
    #: Transcript id → epoch seconds when its enqueue request was sent.
    sent_at: dict[str, float] = field(default_factory=dict)
    #: Seconds from sending each request to its response (accepted ones only).
    response_seconds: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    first_error: str | None = None
    send_span: float = 0.0
    #: Epoch seconds of the last response, to tell how fast the API really accepted.
    last_answer_at: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(n for code, n in self.statuses.items() if isinstance(code, int) and code < 300)

    @property
    def achieved_rate(self) -> float:
        """Requests per second actually sent (the offered load)."""
        sent = len(self.sent_at)
        return (sent - 1) / self.send_span if self.send_span > 0 and sent > 1 else 0.0

    @property
    def accepted_rate(self) -> float:
        """Requests per second the API answered 2xx, first send to last answer."""
        if not self.sent_at or self.last_answer_at <= 0:
            return 0.0
        span = self.last_answer_at - min(self.sent_at.values())
        return self.accepted / span if span > 0 else 0.0


async def offer_steadily(
    url: str,
    samples: Sequence[Sample],
    *,
    rate: float,
    headers: dict[str, str],
    content_type: str,
    expect: int,
) -> OfferedLoad:
    """Send one sample every ``1 / rate`` seconds; return send times and outcomes."""
    load = OfferedLoad(target_rate=rate)
    bodies = [_body(sample, content_type) for sample in samples]
    request_headers = {"Content-Type": content_type, **headers}
    connector = aiohttp.TCPConnector(limit=1024)
    timeout = aiohttp.ClientTimeout(total=180)

    async def enqueue(session: aiohttp.ClientSession, sample: Sample, body: bytes) -> None:
        sent = load.sent_at[sample.id]
        try:
            async with session.post(url, data=body, headers=request_headers) as response:
                reply = await response.read()
                load.last_answer_at = max(load.last_answer_at, time.time())
                load.statuses[response.status] += 1
                if response.status == expect:
                    load.response_seconds.append(time.time() - sent)
                elif load.first_error is None:
                    load.first_error = f"HTTP {response.status}: {reply[:300]!r}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            load.statuses[type(exc).__name__] += 1
            if load.first_error is None:
                load.first_error = f"{type(exc).__name__}: {exc}"

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        pending: list[asyncio.Task[None]] = []
        started = time.monotonic()
        for index, (sample, body) in enumerate(zip(samples, bodies, strict=True)):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            load.sent_at[sample.id] = time.time()
            pending.append(asyncio.create_task(enqueue(session, sample, body)))
            load.send_span = time.monotonic() - started
        await asyncio.gather(*pending)
    return load


def _body(sample: Sample, content_type: str) -> bytes:
    return sample.json_body() if content_type.endswith("json") else sample.form_body()
