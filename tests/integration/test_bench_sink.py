"""The benchmark's sink over real loopback HTTP: arrivals, and the hanging endpoint."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bench.processes import Children
from bench.sink import make_app
from bench.sink_control import Sink

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def held(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/stats") as response:
        return int((await response.json())["held"])


async def test_the_hanging_endpoint_holds_requests_until_released_not_until_reset(
    base_url: str,
) -> None:
    async with aiohttp.ClientSession() as session:
        hanging = asyncio.create_task(session.post(f"{base_url}/hang", data=b"data=%7B%7D"))
        deadline = asyncio.get_running_loop().time() + 10
        while await held(session, base_url) < 1:
            assert asyncio.get_running_loop().time() < deadline, "the request never arrived"
            await asyncio.sleep(0.02)
        # A reset between phases forgets arrivals but keeps the neighbour hanging.
        async with session.post(f"{base_url}/reset") as response:
            assert response.status == 200
        await asyncio.sleep(0.2)
        assert not hanging.done()
        assert await held(session, base_url) == 1
        async with session.post(f"{base_url}/release") as response:
            assert response.status == 200
        answer = await asyncio.wait_for(hanging, timeout=10)
        assert answer.status == 200
        answer.release()
        assert await held(session, base_url) == 0
        async with session.get(f"{base_url}/stats") as response:
            stats = await response.json()
        assert stats["requests"] == 0  # a held request is not an arrival


async def test_every_post_of_a_conversation_is_counted_by_the_sink_process(
    tmp_path: Path,
) -> None:
    children = Children(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        async with aiohttp.ClientSession() as session:
            sink = Sink.start(children, session)
            for _ in range(2):
                async with session.post(sink.webhook_url, data=b'{"id": "chat-1"}') as response:
                    assert response.status == 200
            stats = await sink.wait_for(2, timeout=30, requests=True)
            assert (stats.requests, stats.distinct) == (2, 1)
    finally:
        children.stop_all()
