"""Concurrent ingests share transactions, and each caller still gets exactly its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db import create_engine, tables
from chathooks.db.migrate import upgrade_async
from chathooks.ingest import GATHER_TURNS, Ingestor
from chathooks.queue import write_transaction
from chathooks.repository.endpoints import create_endpoint
from chathooks.repository.sites import create_site
from chathooks.wire import (
    OfflineMessage,
    OfflineMessageTranscript,
    Transcript,
    dumps,
)


async def test_concurrent_payloads_are_routed_and_committed_each_to_its_own_caller(
    database_url: str,
) -> None:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with write_transaction(engine) as connection:
            site = (await create_site(connection, "Acme")).site
            other = (await create_site(connection, "Other")).site
            auto = await create_endpoint(connection, site.id, url="http://127.0.0.1:9/a")
            manual_only = await create_endpoint(
                connection,
                site.id,
                url="http://127.0.0.1:9/b",
                auto_send=False,
                send_offline=False,
            )
            other_endpoint = await create_endpoint(connection, other.id, url="http://127.0.0.1:9/c")
        ingestor = Ingestor(engine, max_batch=16)

        async def one(number: int) -> tuple[int, list[str]]:
            site_id = other.id if number % 5 == 0 else site.id
            payload: Transcript | OfflineMessageTranscript
            if number % 3 == 0:
                payload = OfflineMessageTranscript(
                    id=f"off{number}", items=[OfflineMessage(body="hi", timestamp="1.0")]
                )
            else:
                payload = Transcript(id=f"c{number}", manually_submitted=number % 2 == 0)
            refs = await ingestor.ingest(site_id, payload, dumps(payload.to_wire()))
            return number, sorted(ref.endpoint_id for ref in refs)

        results = dict(await asyncio.gather(*(one(n) for n in range(100))))

        for number, endpoint_ids in results.items():
            if number % 5 == 0:
                expected = [other_endpoint.id]
            elif number % 3 == 0 or number % 2 == 1:
                expected = [auto.id]  # offline, or an automatic transcript
            else:
                expected = sorted([auto.id, manual_only.id])  # manuallySubmitted: every endpoint
            assert endpoint_ids == expected, number
        async with engine.connect() as connection:
            stored = await connection.scalar(select(func.count()).select_from(tables.deliveries))
        assert stored == sum(len(ids) for ids in results.values())
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _one_site(database_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """A migrated database with one site and one endpoint: its engine and the site's id."""
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with write_transaction(engine) as connection:
            site = (await create_site(connection, "Acme")).site
            await create_endpoint(connection, site.id, url="http://127.0.0.1:9/a")
        yield engine, site.id
    finally:
        await engine.dispose()


async def test_a_payload_the_database_refuses_fails_alone(database_url: str) -> None:
    async with _one_site(database_url) as (engine, site_id):
        ingestor = Ingestor(engine)
        ids = ["ok1", "bad\ud800", "ok2", "ok3"]  # a lone surrogate cannot be stored as text

        async def one(conversation_id: str) -> list[str]:
            payload = Transcript(id=conversation_id)
            text = dumps(payload.to_wire())
            return [ref.id for ref in await ingestor.ingest(site_id, payload, text)]

        results = await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)

        assert isinstance(results[1], Exception)
        assert all(isinstance(r, list) and len(r) == 1 for i, r in enumerate(results) if i != 1)
        async with engine.connect() as connection:
            stored = await connection.scalar(select(func.count()).select_from(tables.deliveries))
        assert stored == 3


async def test_requests_arriving_over_a_few_turns_of_the_loop_share_one_transaction(
    database_url: str,
) -> None:
    # On SQLite a batch commits without yielding: a request that reached the
    # ingestor a turn after the first used to wait for a transaction of its own.
    async with _one_site(database_url) as (engine, site_id):
        ingestor = Ingestor(engine)

        async def after(turns: int) -> str:
            for _ in range(turns):
                await asyncio.sleep(0)
            payload = Transcript(id=f"late{turns}")
            [ref] = await ingestor.ingest(site_id, payload, dumps(payload.to_wire()))
            return ref.id

        ids = await asyncio.gather(*(after(turns) for turns in range(GATHER_TURNS)))
        async with engine.connect() as connection:
            created = await connection.scalars(
                select(tables.deliveries.c.created_at).where(tables.deliveries.c.id.in_(ids))
            )
            # One enqueue stamps its whole batch with one time.
            assert len(set(created.all())) == 1


async def test_a_caller_that_gives_up_leaves_its_batch_committed_and_answered(
    database_url: str,
) -> None:
    async with _one_site(database_url) as (engine, site_id):
        ingestor = Ingestor(engine)

        async def one(conversation_id: str) -> list[str]:
            payload = Transcript(id=conversation_id)
            text = dumps(payload.to_wire())
            return [ref.id for ref in await ingestor.ingest(site_id, payload, text)]

        callers = [asyncio.ensure_future(one(f"c{n}")) for n in range(4)]
        await asyncio.sleep(0)  # every item is waiting for its batch
        callers[1].cancel()
        results = await asyncio.gather(*callers, return_exceptions=True)

        assert isinstance(results[1], asyncio.CancelledError)
        assert all(isinstance(r, list) and len(r) == 1 for i, r in enumerate(results) if i != 1)
        async with engine.connect() as connection:
            stored = await connection.scalars(select(tables.deliveries.c.conversation_id))
            # The payload was taken before its caller gave up: it is queued, as before.
            assert sorted(stored.all()) == ["c0", "c1", "c2", "c3"]
