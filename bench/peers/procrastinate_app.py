"""procrastinate on PostgreSQL: an asyncio worker whose task posts the body with aiohttp.

The database comes from ``BENCH_PROCRASTINATE_DSN``, set by the benchmark to
a fresh database it drops afterwards. One aiohttp session per worker process,
made on first use, so connections to the sink are pooled.
"""

from __future__ import annotations

import os

import aiohttp
from procrastinate import App, PsycopgConnector

DSN = os.environ.get("BENCH_PROCRASTINATE_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
QUEUE = "chathooks_bench"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

app = App(connector=PsycopgConnector(conninfo=DSN))

_session: list[aiohttp.ClientSession] = []


def _client() -> aiohttp.ClientSession:
    if not _session:
        _session.append(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=128),
                timeout=aiohttp.ClientTimeout(total=30),
            )
        )
    return _session[0]


@app.task(name="bench.deliver", queue=QUEUE)
async def deliver(url: str, body: str) -> None:
    """POST one form body; anything but 200 raises, so the job fails visibly."""
    async with _client().post(
        url, data=body.encode("ascii"), headers={"Content-Type": FORM_CONTENT_TYPE}
    ) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"the sink answered HTTP {response.status}")
