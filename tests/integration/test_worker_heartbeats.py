"""Worker heartbeats and the release of dead workers' claims, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import deliveries, endpoints, sites, workers
from chathooks.queue import NewDelivery, claim, enqueue, write_transaction
from chathooks.queue.workers import (
    FORGET_AFTER_SECONDS,
    beat,
    list_workers,
    register,
    release_claims_of_dead_workers,
    this_host,
)

T0 = 1_700_000_000.0
TIMEOUT = 20.0


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url, inline=True)
    async with engine.begin() as connection:
        await connection.execute(
            insert(sites).values(id="site_h", name="h", api_key_hash="h", created_at=T0)
        )
        await connection.execute(
            insert(endpoints).values(
                id="ep_h", site_id="site_h", url="https://h.example/", created_at=T0, updated_at=T0
            )
        )
    yield engine
    await engine.dispose()


async def _queue(engine: AsyncEngine, count: int) -> None:
    async with write_transaction(engine) as connection:
        await enqueue(
            connection,
            [
                NewDelivery(
                    site_id="site_h",
                    endpoint_id="ep_h",
                    conversation_id=f"c{n}",
                    payload_kind="transcript",
                    trigger="api",
                    payload="{}",
                )
                for n in range(count)
            ],
            now=T0,
        )


async def _claim_as(engine: AsyncEngine, owner: str, limit: int) -> None:
    async with write_transaction(engine) as connection:
        got = await claim(connection, owner=owner, limit=limit, lease_seconds=120, now=T0)
    assert len(got) == limit


async def _owners(engine: AsyncEngine) -> dict[str | None, list[str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(deliveries.c.lease_owner, deliveries.c.status))
        found: dict[str | None, list[str]] = {}
        for owner, status in rows:
            found.setdefault(owner, []).append(status)
        return found


async def _add_worker(
    engine: AsyncEngine, worker_id: str, *, host: str, pid: int, seen: float
) -> None:
    async with write_transaction(engine) as connection:
        await connection.execute(
            insert(workers).values(
                id=worker_id, host=host, pid=pid, kind="worker", started_at=T0, last_seen_at=seen
            )
        )


async def test_claims_of_stale_or_vanished_workers_are_released_and_no_others(
    engine: AsyncEngine,
) -> None:
    await _queue(engine, 4)
    # Elsewhere and silent for longer than the timeout; elsewhere and fresh; here and gone.
    await _add_worker(engine, "w-stale", host="other-host", pid=1, seen=T0 - TIMEOUT - 1)
    await _add_worker(engine, "w-fresh", host="other-host", pid=1, seen=T0 - 1)
    await _add_worker(engine, "w-gone", host=this_host(), pid=2**22 + 12345, seen=T0)
    for owner in ("w-stale", "w-fresh", "w-gone"):
        await _claim_as(engine, owner, 1)

    async with write_transaction(engine) as connection:
        await register(connection, "w-me", kind="serve", now=T0)
        dead, released = await release_claims_of_dead_workers(
            connection, me="w-me", timeout_seconds=TIMEOUT, now=T0
        )
    assert sorted(dead) == ["w-gone", "w-stale"]
    assert released == 2
    owners = await _owners(engine)
    assert owners == {None: ["pending"] * 3, "w-fresh": ["delivering"]}
    async with engine.connect() as connection:
        listed = {row.id: row for row in await list_workers(connection)}
    # Their rows stay, as they were: status shows when each was last seen.
    assert listed["w-stale"].last_seen_at == T0 - TIMEOUT - 1
    assert listed["w-me"].pid == os.getpid() and listed["w-me"].kind == "serve"


async def test_a_beat_refreshes_last_seen_and_week_old_workers_are_forgotten(
    engine: AsyncEngine,
) -> None:
    await _add_worker(
        engine, "w-ancient", host="other-host", pid=1, seen=T0 - FORGET_AFTER_SECONDS - 1
    )
    async with write_transaction(engine) as connection:
        await register(connection, "w-me", kind="worker", now=T0)
        assert await beat(connection, "w-me", now=T0 + 5)
        assert not await beat(connection, "w-unknown", now=T0 + 5)
        await release_claims_of_dead_workers(
            connection, me="w-me", timeout_seconds=TIMEOUT, now=T0 + 5
        )
    async with engine.connect() as connection:
        listed = await list_workers(connection)
    assert [(row.id, row.last_seen_at) for row in listed] == [("w-me", T0 + 5)]


async def test_a_released_claim_that_was_attempted_before_is_retrying(engine: AsyncEngine) -> None:
    await _queue(engine, 1)
    await _add_worker(engine, "w-stale", host="other-host", pid=1, seen=T0 - TIMEOUT - 1)
    await _claim_as(engine, "w-stale", 1)
    async with write_transaction(engine) as connection:
        await connection.execute(update(deliveries).values(attempt_count=2))
        await release_claims_of_dead_workers(
            connection, me="w-me", timeout_seconds=TIMEOUT, now=T0 + 1
        )
    async with engine.connect() as connection:
        row = (await connection.execute(select(deliveries))).one()
    assert (row.status, row.next_attempt_at, row.lease_owner) == ("retrying", T0 + 1, None)
