"""One bad receiver cannot stall the others: per-endpoint caps, fair claims, the breaker.

Real HTTP over loopback to recording receivers, on SQLite and PostgreSQL;
the PostgreSQL cases also run two ``chathooks worker`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import endpoints, sites
from chathooks.queue import NewDelivery, enqueue, get_delivery
from chathooks.settings import Settings
from chathooks.worker import Worker
from support.receiver import RecordingReceiver

CHATHOOKS = Path(sys.executable).with_name("chathooks")
SITE_A, SITE_B = "site_stuck", "site_fine"
#: Longer than the sender's 15 s timeout, as the hanging receiver of the report did.
HANG_SECONDS = 20.0


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        for site_id in (SITE_A, SITE_B):
            await connection.execute(
                insert(sites).values(
                    id=site_id, name=site_id, api_key_hash=f"h-{site_id}", created_at=time.time()
                )
            )
    yield engine
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.dispose(), 20)


def settings_for(engine: AsyncEngine, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "allowed_destinations": ["127.0.0.0/8"],
        "retry_schedule": [0.1, 0.1, 0.1],
        "poll_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


async def add_endpoint(
    engine: AsyncEngine, endpoint_id: str, site_id: str, url: str, **fields: Any
) -> str:
    now = time.time()
    async with engine.begin() as connection:
        await connection.execute(
            insert(endpoints).values(
                id=endpoint_id, site_id=site_id, url=url, created_at=now, updated_at=now, **fields
            )
        )
    return endpoint_id


async def put(
    engine: AsyncEngine,
    site_id: str,
    endpoint_id: str,
    conversations: list[str],
    *,
    trigger: str = "api",
    payload_kind: str = "transcript",
    document: Callable[[str], dict[str, Any]] | None = None,
) -> list[str]:
    """Queue one delivery per conversation id given; their delivery ids, in order."""
    items = [
        NewDelivery(
            site_id=site_id,
            endpoint_id=endpoint_id,
            conversation_id=conversation,
            payload_kind=payload_kind,
            trigger=trigger,
            payload=json.dumps(
                document(conversation) if document else {"kind": "Conversation", "id": conversation}
            ),
        )
        for conversation in conversations
    ]
    async with engine.begin() as connection:
        return [ref.id for ref in await enqueue(connection, items)]


async def delivery(engine: AsyncEngine, site_id: str, delivery_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        found = await get_delivery(connection, site_id, delivery_id)
    assert found is not None
    return found


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def abandoned_on_exit(worker: Worker) -> AsyncIterator[Worker]:
    """``worker.run()`` for the block, then cancelled: requests left hanging are abandoned
    to their leases rather than waited for."""
    task = asyncio.create_task(worker.run(asyncio.Event()))
    try:
        yield worker
    finally:
        task.cancel()
        # Bounded: a connection cancelled in the middle of opening can leave the task's
        # clean-up waiting on a socket; the test has said what it checks by now.
        await asyncio.wait({task}, timeout=20)


@contextmanager
def worker_processes(database_url: str, log: Path, count: int, **env: str) -> Iterator[None]:
    """``count`` real ``chathooks worker`` processes, SIGKILLed at the end of the block."""
    environment = {
        **os.environ,
        "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
        "CHATHOOKS_POLL_INTERVAL": "0.1",
        **env,
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with log.open("ab") as output:
            for _ in range(count):
                processes.append(
                    subprocess.Popen(
                        [str(CHATHOOKS), "worker", "--database-url", database_url],
                        env=environment,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(10)


# -- a fair share per endpoint ---------------------------------------------------------------


async def test_a_hanging_endpoint_with_a_deep_backlog_does_not_delay_another_site(
    engine: AsyncEngine,
) -> None:
    with RecordingReceiver() as stuck, RecordingReceiver() as healthy:
        stuck.answer_all(delay=HANG_SECONDS)
        await add_endpoint(engine, "ep_stuck", SITE_A, stuck.url)
        await add_endpoint(engine, "ep_fine", SITE_B, healthy.url)
        await put(engine, SITE_A, "ep_stuck", [f"a{i}" for i in range(400)])
        worker = Worker(engine, settings_for(engine, total_timeout=15.0))

        async with abandoned_on_exit(worker):
            await stuck.wait_for_async(8, timeout=20)  # its share of requests is hanging now
            started = time.monotonic()
            ids = await put(engine, SITE_B, "ep_fine", [f"b{i}" for i in range(50)])
            arrived = await healthy.wait_for_async(50, timeout=10)
            elapsed = time.monotonic() - started

    assert elapsed < 10
    assert {r.header("webhook-id") for r in arrived} == set(ids)
    # The hanging endpoint never held more than its cap of the worker's 64 request slots.
    assert stuck.max_active == 8


async def test_an_endpoint_may_set_its_own_cap(engine: AsyncEngine) -> None:
    with RecordingReceiver() as slow:
        slow.answer_all(delay=HANG_SECONDS)
        await add_endpoint(engine, "ep_slow", SITE_A, slow.url, max_in_flight=3)
        await put(engine, SITE_A, "ep_slow", [f"a{i}" for i in range(30)])

        async with abandoned_on_exit(Worker(engine, settings_for(engine))):
            await slow.wait_for_async(3, timeout=20)
            await asyncio.sleep(1.0)  # a claim or two more had the chance to exceed it
            assert slow.max_active == 3


async def test_a_deep_queue_is_shared_out_round_robin_across_endpoints(
    engine: AsyncEngine,
) -> None:
    """Oldest-first would send all of A's 300 before any of B's; ranks interleave them."""
    with RecordingReceiver() as receiver_a, RecordingReceiver() as receiver_b:
        await add_endpoint(engine, "ep_a", SITE_A, receiver_a.url)
        await add_endpoint(engine, "ep_b", SITE_B, receiver_b.url)
        await put(engine, SITE_A, "ep_a", [f"a{i}" for i in range(300)])
        await put(engine, SITE_B, "ep_b", [f"b{i}" for i in range(20)])
        settings = settings_for(engine, worker_concurrency=4, claim_batch_size=8)

        async with abandoned_on_exit(Worker(engine, settings)):
            await receiver_b.wait_for_async(20, timeout=30)
            sent_to_a = len(receiver_a.requests)

    # B's 20 went out alongside A's, not after A's 300.
    assert sent_to_a < 150


async def test_two_worker_processes_on_postgresql_keep_the_cap_and_the_healthy_site_flowing(
    postgres_url: str, tmp_path: Path
) -> None:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            for site_id in (SITE_A, SITE_B):
                await connection.execute(
                    insert(sites).values(
                        id=site_id, name=site_id, api_key_hash=f"h-{site_id}", created_at=0.0
                    )
                )
        with RecordingReceiver() as stuck, RecordingReceiver() as healthy:
            stuck.answer_all(delay=HANG_SECONDS)
            await add_endpoint(engine, "ep_stuck", SITE_A, stuck.url)
            await add_endpoint(engine, "ep_fine", SITE_B, healthy.url)
            await put(engine, SITE_A, "ep_stuck", [f"a{i}" for i in range(400)])
            log = tmp_path / "workers.log"
            with worker_processes(postgres_url, log, 2):
                await stuck.wait_for_async(8, timeout=30)
                started = time.monotonic()
                ids = await put(engine, SITE_B, "ep_fine", [f"b{i}" for i in range(50)])
                arrived = await healthy.wait_for_async(50, timeout=10)
                elapsed = time.monotonic() - started
                in_flight_at_stuck = stuck.max_active
    finally:
        await engine.dispose()

    assert elapsed < 10, log.read_text()[-3000:]
    assert {r.header("webhook-id") for r in arrived} == set(ids)
    # The cap is per endpoint across both processes, not 8 each.
    assert in_flight_at_stuck == 8
