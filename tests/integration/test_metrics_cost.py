"""A scrape of /metrics, ``chathooks status`` and retention never scan the finished history.

The statements are captured as the real functions run them against a table
holding thousands of finished deliveries and a handful of unfinished ones,
then explained by the database itself (with statistics, on PostgreSQL): none
may read the deliveries table whole. The timing side, a million rows against
a thousand, is the benchmark's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import deliveries, endpoints, sites
from chathooks.queue import queue_stats
from chathooks.queue.overview import endpoint_problems
from chathooks.queue.retention import purge_finished_deliveries

T0 = 1_700_000_000.0
FINISHED_ROWS = 5000


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            insert(sites).values(id="s", name="s", api_key_hash="s", created_at=T0)
        )
        await connection.execute(
            insert(endpoints).values(
                id="e", site_id="s", url="https://e.example/", created_at=T0, updated_at=T0
            )
        )
        rows: list[dict[str, Any]] = [
            {
                "id": f"d{n}",
                "site_id": "s",
                "endpoint_id": "e",
                "conversation_id": f"c{n}",
                "payload_kind": "transcript",
                "status": "succeeded" if n % 3 else "failed",
                "next_attempt_at": T0 + n,
                "created_at": T0 + n,
                "updated_at": T0 + n,
                "finished_at": T0 + n,
            }
            for n in range(FINISHED_ROWS)
        ]
        for n, status in enumerate(("pending", "retrying", "delivering", "held")):
            rows.append({**rows[0], "id": f"u{n}", "status": status, "finished_at": None})
        await connection.execute(insert(deliveries), rows)
    async with engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
        await connection.commit()
    yield engine
    await engine.dispose()


async def _plans(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[object]]
) -> list[str]:
    """The plan of every statement ``work`` runs on the deliveries table."""
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "deliveries" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as connection:
            await work(connection)
            await connection.rollback()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert captured, "nothing ran on deliveries"
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    plans = []
    async with engine.connect() as connection:
        for statement, parameters in captured:
            if statement.lstrip().upper().startswith("DELETE"):
                continue  # deletes go by primary key, after the select that chose them
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            if engine.dialect.name == "sqlite":
                cursor = await driver.execute(f"{explain} {statement}", parameters)
                rows = await cursor.fetchall()
            else:
                rows = await driver.fetch(f"{explain} {statement}", *parameters)
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


#: Partial indexes: they hold unfinished (or held) deliveries only, so reading one whole is cheap.
PARTIAL = ("ix_deliveries_unfinished_", "ix_deliveries_held")


def _scans_deliveries(plan: str) -> bool:
    """Whether the plan reads all of ``deliveries`` (or a full index of it) rather than
    searching an index or reading a partial one."""
    for line in plan.splitlines():
        text = line.strip()
        if "Seq Scan on deliveries" in text:
            return True
        if text.startswith("SCAN deliveries") and not any(name in text for name in PARTIAL):
            return True
    return False


async def test_the_metrics_queries_read_unfinished_work_only(engine: AsyncEngine) -> None:
    plans = await _plans(engine, queue_stats)
    assert plans and not any(_scans_deliveries(plan) for plan in plans), plans


async def test_status_reads_unfinished_work_only(engine: AsyncEngine) -> None:
    plans = await _plans(engine, endpoint_problems)
    assert plans and not any(_scans_deliveries(plan) for plan in plans), plans


async def test_retention_finds_its_batch_by_the_finished_index(engine: AsyncEngine) -> None:
    async def batch(connection: AsyncConnection) -> object:
        return await purge_finished_deliveries(connection, finished_before=T0 + 10, limit=100)

    plans = await _plans(engine, batch)
    assert plans and not any(_scans_deliveries(plan) for plan in plans), plans
