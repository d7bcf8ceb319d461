"""The claim's plans on PostgreSQL once the queue has statistics (a real database).

The queue's SQL is written so that a claim reads a bounded number of rows
whatever the backlog. On a queue autovacuum has analysed, the planner plans
with what the statistics said at that moment, which for a queue is soon
wrong: these tests analyse a queue, change it the way a drain does, and look
at the plans a claim then runs with.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import deliveries, endpoints, sites
from chathooks.queue import SUCCEEDED, NewDelivery, claim, enqueue, open_endpoints

T0 = 1_700_000_000.0


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.execute(
            insert(sites).values(id="s", name="s", api_key_hash="h", created_at=T0)
        )
        await connection.execute(
            insert(endpoints).values(
                id="ep_a",
                site_id="s",
                url="https://a.example/",
                created_at=T0,
                updated_at=T0,
                max_in_flight=64,
            )
        )
    yield engine
    await engine.dispose()


async def _analysed_queue(engine: AsyncEngine, count: int) -> None:
    """``count`` deliveries due at ``T0``, one conversation each; then ``ANALYZE``."""
    await _put(engine, count)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("ANALYZE deliveries")


async def _put(engine: AsyncEngine, count: int) -> None:
    new = [
        NewDelivery(
            site_id="s",
            endpoint_id="ep_a",
            conversation_id=f"c{n}",
            payload_kind="transcript",
            trigger="api",
            payload="{}",
        )
        for n in range(count)
    ]
    async with engine.begin() as connection:
        await enqueue(connection, new, now=T0)


async def _explained(engine: AsyncEngine, sql: str, parameters: Any = ()) -> str:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        rows = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", parameters)
        plan = "\n".join(str(row[0]) for row in rows)
        await transaction.rollback()
    return plan


async def _claim_plan(engine: AsyncEngine, *, expected: int = 64) -> str:
    """The plan of a claim made now (the claim rolled back, then explained and rolled back)."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if sql.lstrip().startswith("WITH due"):
            seen.append((sql, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            claimed = await claim(connection, owner="w", limit=64, lease_seconds=60, now=T0 + 1)
            await transaction.rollback()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert len(claimed) == expected
    [(sql, parameters)] = seen
    return await _explained(engine, sql, parameters)


async def test_a_claim_on_an_analysed_queue_is_not_compiled_first(engine: AsyncEngine) -> None:
    """PostgreSQL's JIT compiled each claim once its estimated cost passed ``jit_above_cost``.

    On an analysed queue of 8,000 the claim's estimate passes it (its order checks
    are costed per candidate): compiling took about 37 ms of each claim, which ran in 2.
    """
    async with engine.connect() as connection:
        assert await connection.scalar(text("SHOW jit")) == "off"
    await _analysed_queue(engine, 8000)
    plan = await _claim_plan(engine)
    assert "JIT:" not in plan, plan


async def test_a_burst_after_an_analysed_quiet_time_is_claimed_by_key(engine: AsyncEngine) -> None:
    """Analysed with only finished deliveries (a quiet night), the queue then gets 2,000.

    The claiming UPDATE re-checks each chosen row's status and due time. Spelled
    as the partial indexes' predicate, that re-check let PostgreSQL, which
    expected one unfinished row, drive the UPDATE from the index of unfinished
    deliveries and match each of the 2,000 against the chosen batch (about
    6,600 buffers of a claim's 8,500). Driven by the chosen rows' keys, it
    reads the batch.
    """
    await _analysed_queue(engine, 1000)
    async with engine.begin() as connection:
        await connection.execute(
            update(deliveries).values(status=SUCCEEDED, finished_at=T0, next_attempt_at=T0)
        )
        await connection.exec_driver_sql("ANALYZE deliveries")
    await _put(engine, 2000)
    plan = await _claim_plan(engine)
    assert "Semi Join" not in plan, plan
    # The rows to update are found by key (the target table has no alias in the plan).
    assert re.search(r"Index Scan using pk_deliveries on deliveries\s+\(", plan), plan


async def test_an_endpoint_with_nothing_due_is_found_out_off_the_index(engine: AsyncEngine) -> None:
    """Analysed while all 3,000 were due, the queue then has none due (all in flight).

    With "has due work" as a plain ``LIMIT 1``, the planner expected the first
    row it read to be due, scanned the table for it, and read every row.
    """
    await _analysed_queue(engine, 3000)
    async with engine.begin() as connection:
        await connection.execute(update(deliveries).values(next_attempt_at=T0 + 3600))
    query = open_endpoints().params(claim_now=T0 + 1, claim_cap=8)
    async with engine.connect() as connection:
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    plan = await _explained(engine, sql)
    assert "Seq Scan on deliveries due" not in plan, plan
    # Read in due order off the endpoint's unfinished deliveries: the first entry, or
    # none, answers.
    assert "Scan using ix_deliveries_unfinished_endpoint_due on deliveries due" in plan, plan
